"""YOLOv3 anchors: the YOLOv3 paper's COCO clusters and which output scale uses which."""

#: (width, height) in pixels at the 416/608 training scale (Redmon & Farhadi, 2018).
ANCHORS = ((10, 13), (16, 30), (33, 23), (30, 61), (62, 45), (59, 119), (116, 90), (156, 198),
           (373, 326))
#: Anchor indices of each output scale, coarsest (stride 32) first.
ANCHOR_MASKS = ((6, 7, 8), (3, 4, 5), (0, 1, 2))
