"""YOLOv3-Mobile on Pascal VOC 2007+2012 with PaddleDetection's published recipe
(``configs/yolov3/yolov3_mobilenet_v1_270e_voc.yml``, the model its 76.2% VOC07 mAP@0.5 at 416
belongs to), scored on VOC2007 test (11-point mAP@0.5, difficult boxes ignored).

    lightjax train --config yolov3_mobilenet_v1_voc --workdir runs/yolo-voc \\
        --config.data.data_dir=/data/tensorflow_datasets
    lightjax eval --workdir runs/yolo-voc                        # mAP@0.5 (VOC07), COCO AP
    lightjax predict --workdir runs/yolo-voc photo.jpg --out pictures

The recipe, as PaddleDetection states it: 270 epochs of VOC 2007+2012 trainval (16,551 images),
batch 64 (8 per GPU on 8 GPUs), SGD momentum 0.9, lr 1e-3 after 1,000 iterations of linear
warm-up (~3.9 epochs), x0.1 at epochs 216 and 243, L2 weight decay 5e-4, input 416 at test
time, the COCO anchors, ``ignore_thresh`` 0.7, label smoothing off for VOC. Its augmentation
(mixup, photometric distortion, random expand + crop, flip, multi-scale 320-608) is richer than
ours: here letterbox to 416, random horizontal flip and the same multi-scale training
(``data.multiscale=(320, 608, 32)``: each batch resized to one of ten sizes, the train step
compiled once per size). Its backbone starts from ImageNet
weights (MobileNetV1 at 70.99% top-1); start from a lightjax ImageNet run the same way.

Nothing is downloaded: ``voc/2007`` and ``voc/2012`` must be prepared for TFDS in
``data.data_dir`` (see the README, "Datasets"). ``data.name='voc/2007+2012'`` trains on both
years' train+validation and evaluates on voc/2007 test. Expected mAP: not yet measured by us
(the published 76.2% needs the full recipe and ImageNet weights).
"""
import ml_collections

from lightjax.train.defaults import train_section


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    if arg:
        raise ValueError(f"yolov3_mobilenet_v1_voc config: unknown argument {arg!r} "
                         f"(it takes none)")
    cfg = ml_collections.ConfigDict()
    cfg.model = ml_collections.ConfigDict(dict(
        name="yolov3_mobilenet_v1", alpha=1.0, head_width=1.0, head_conv="standard"))
    cfg.data = ml_collections.ConfigDict(dict(
        name="voc/2007+2012", task="detection", resolution=416, resize="letterbox",
        augment="auto", multiscale=(320, 608, 32), data_dir=None))
    cfg.task = ml_collections.ConfigDict(dict(name="detection", ignore_thresh=0.7, voc07=True))
    cfg.train = train_section(
        epochs=270, batch_size=64, eval_batch_size=64, optimizer="sgd", lr=1e-3, momentum=0.9,
        weight_decay=5e-4, decay_depthwise=True, schedule="step", decay_epochs=(216, 243),
        decay_factor=0.1, warmup_epochs=3.9, log_every_steps=50, checkpoint_every_epochs=1)
    return cfg
