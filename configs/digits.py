"""The embedded default: MobileNetV1 (Howard et al. 2017, arXiv:1704.04861; alpha 0.25, CIFAR
stem) on scikit-learn's digits.

Runs offline anywhere (the 1,797 8x8 digits ship inside scikit-learn), upscaled to 32x32.

    lightjax train                                  # this config, into runs/digits-<time>
    lightjax train --config digits --config.model.activation=relu_hswish
    lightjax train --config digits:tiny --workdir /tmp/tiny

Reaches >= 95% test top-1 (360 test images) in well under 5 minutes on a 2-core CPU; the measured
figure is in the README. ``get_config('tiny')`` is a test-sized run (few steps, 16x16).
"""
import ml_collections

from lightjax.train.defaults import train_section


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.model = ml_collections.ConfigDict(dict(
        name="mobilenet_v1", alpha=0.25, stem_stride=1, activation="relu", variant="standard"))
    cfg.data = ml_collections.ConfigDict(dict(name="digits", resolution=32, augment="auto",
                                              data_dir=None, root=None))
    cfg.train = train_section(
        epochs=30, batch_size=64, eval_batch_size=256, nesterov=True, schedule="cosine",
        decay_epochs=(), warmup_epochs=1.0, log_every_steps=10)
    if arg == "tiny":
        cfg.data.resolution = 16
        cfg.train.epochs = 2
        cfg.train.batch_size = 128
    elif arg:
        raise ValueError(f"digits config: unknown argument {arg!r} (allowed: tiny)")
    return cfg
