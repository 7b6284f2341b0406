"""``lightjax cost``: parameters and MACs of a model, per layer type or per layer.

Examples::

    lightjax cost --model mobilenet_v1 --alpha 0.5 --resolution 160
    lightjax cost --model shufflenet_v1 --groups 3 --json
    lightjax cost --model mobilenet_v1 --variant rhs --pointwise-bias --num-classes 100 \\
        --resolution 32 --stem-stride 1
"""
from __future__ import annotations

import argparse
import json

from lightjax import cost, models
from lightjax.errors import ValidationError

#: command-line flag -> model keyword argument (passed only when given).
MODEL_FLAGS = {
    "alpha": "alpha", "num_classes": "num_classes", "groups": "groups", "scale": "scale",
    "variant": "variant", "pointwise_bias": "pointwise_bias", "activation": "activation",
    "stem_stride": "stem_stride", "se_reduction": "se_reduction", "widths": "widths",
    "input_channels": "input_channels",
}


def _widths(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--widths must be comma-separated integers, got {text!r}") from None


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("cost", help="parameters and MACs per layer type",
                              description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help=f"one of: {', '.join(models.names())}")
    p.add_argument("--resolution", type=int, default=224, help="input height = width (pixels)")
    p.add_argument("--alpha", type=float, help="width multiplier (MobileNet)")
    p.add_argument("--num-classes", type=int)
    p.add_argument("--groups", type=int, help="group count (ShuffleNet V1)")
    p.add_argument("--scale", type=float, help="scale factor (ShuffleNet)")
    p.add_argument("--variant", help="unit variant (MobileNetV1: standard, rhs)")
    p.add_argument("--pointwise-bias", action="store_true", default=None,
                   help="bias in pointwise convs (MobileNet-rhs counting convention)")
    p.add_argument("--activation", help="activation name")
    p.add_argument("--stem-stride", type=int, help="first conv stride (1 for CIFAR-size inputs)")
    p.add_argument("--se-reduction", type=int, help="add SE blocks with this reduction")
    p.add_argument("--input-channels", type=int)
    p.add_argument("--widths", type=_widths, help="output channels of each prunable layer")
    p.add_argument("--per-layer", action="store_true", help="also list every layer")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def build_model(args: argparse.Namespace):
    """The model the flags describe; a flag the model does not take is an error."""
    accepted = models.hyperparameters(args.model)
    kwargs = {}
    for flag, kwarg in MODEL_FLAGS.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        if kwarg not in accepted:
            raise ValidationError(f"--{flag.replace('_', '-')} does not apply to {args.model}")
        kwargs[kwarg] = value
    return models.create(args.model, **kwargs)


def run(args: argparse.Namespace) -> int:
    model = build_model(args)
    if args.resolution < 1:
        raise ValidationError(f"--resolution must be a positive number of pixels, got "
                         f"{args.resolution}")
    channels = getattr(model, "input_channels", 3)
    report = cost.count(model, (1, args.resolution, args.resolution, channels))
    if args.json:
        print(json.dumps({"model": args.model, **report.as_dict()}))
    else:
        print(f"{args.model} at {args.resolution}x{args.resolution}: "
              f"{report.params:,} params, {report.macs:,} MACs")
        print(cost.format_table(report, per_layer=args.per_layer))
    return 0
