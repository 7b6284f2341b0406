"""Object detection (YOLOv3-Mobile): box geometry, anchor targets and the YOLOv3 loss, decoding
with non-maximum suppression inside ``jit``. Boxes are ``(x_min, y_min, x_max, y_max)`` fractions
of the image width / height (the data pipeline's convention, :mod:`lightjax.data.fields`)."""
