"""``lightjax cost``: parameters and MACs of a model, per layer type or per layer.

Examples::

    lightjax cost --model mobilenet_v1 --alpha 0.5 --resolution 160
    lightjax cost --model shufflenet_v1 --groups 3 --json
    lightjax cost --model mobilenet_v1 --variant rhs --pointwise-bias --num-classes 100 \\
        --resolution 32 --stem-stride 1
    lightjax cost --model mobilenet_v1 --binary xnor          # + binarized params, bits, MACs
    lightjax cost --model yolov3_mobilenet_v1 --num-classes 20 --resolution 416 --head-conv separable
    lightjax cost --workdir runs/det-pruned-oneshot   # a run's model at its input size (compact
                                                      # widths, binarized layers included)
"""
from __future__ import annotations

import argparse
import json
import math
import re

from lightjax import cost, models
from lightjax.errors import ValidationError

#: command-line flag -> model keyword argument (passed only when given).
MODEL_FLAGS = {
    "alpha": "alpha", "num_classes": "num_classes", "groups": "groups", "scale": "scale",
    "variant": "variant", "pointwise_bias": "pointwise_bias", "activation": "activation",
    "stem_stride": "stem_stride", "se_reduction": "se_reduction", "widths": "widths",
    "input_channels": "input_channels", "head_conv": "head_conv", "head_width": "head_width",
}


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _positive_number(text: str, flag: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValidationError(f"{flag} must be a finite number > 0, got {text}")
    return value


def _integer(text: str, flag: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValidationError(f"{flag} must be {what}, got {text}")
    return value


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        widths = ()
    if not widths or any(w < 1 for w in widths):
        raise ValidationError(f"--widths must be comma-separated positive integers (one per "
                              f"prunable layer), got {text!r}")
    return widths


#: How each numeric flag is parsed and checked (the message names the flag as typed).
PARSERS = {
    "alpha": lambda t: _positive_number(t, "--alpha"),
    "scale": lambda t: _positive_number(t, "--scale"),
    "head_width": lambda t: _positive_number(t, "--head-width"),
    "resolution": lambda t: _integer(t, "--resolution", 1),
    "num_classes": lambda t: _integer(t, "--num-classes", 1),
    "groups": lambda t: _integer(t, "--groups", 1),
    "stem_stride": lambda t: _integer(t, "--stem-stride", 1),
    "se_reduction": lambda t: _integer(t, "--se-reduction", 0),
    "input_channels": lambda t: _integer(t, "--input-channels", 1),
    "widths": _widths,
}


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("cost", help="parameters and MACs per layer type",
                              description=__doc__.replace("``", ""))
    p.add_argument("--model", help=f"one of: {', '.join(models.names())}")
    p.add_argument("--workdir", help="instead of --model: the model of a run directory at its "
                                     "input size (a pruned run's widths, a binarized run's "
                                     "method and layers)")
    p.add_argument("--resolution", help="input height = width in pixels (default 224)")
    p.add_argument("--alpha", help="width multiplier > 0 (MobileNet)")
    p.add_argument("--num-classes", help="classifier outputs (default: the model's, 1000)")
    p.add_argument("--groups", help="group count (ShuffleNet V1: 1, 2, 3, 4, 8)")
    p.add_argument("--scale", help="scale factor (ShuffleNet)")
    p.add_argument("--variant", help="unit variant (MobileNetV1: standard, rhs)")
    p.add_argument("--pointwise-bias", action="store_true", default=None,
                   help="bias in pointwise convs (MobileNet-rhs counting convention)")
    p.add_argument("--activation", help="activation name")
    p.add_argument("--stem-stride", help="first conv stride (1 for CIFAR-size inputs)")
    p.add_argument("--se-reduction", help="add SE blocks with this reduction")
    p.add_argument("--input-channels", help="channels of the input images (default 3)")
    p.add_argument("--head-conv", help="detection neck 3x3 convs (YOLOv3): standard, separable")
    p.add_argument("--head-width", help="detection neck width multiplier > 0 (YOLOv3)")
    p.add_argument("--widths", help="comma-separated output channels of each prunable layer")
    p.add_argument("--binary", help="also report the model binarized with this method (bwn, "
                                    "bnn, xnor, horq): binary/float parameters, size in bits, "
                                    "binarized MAC shares")
    p.add_argument("--binary-layers", help="regular expression on layer paths to binarize "
                                           "(default: every conv/dense but the first and last)")
    p.add_argument("--per-layer", action="store_true", help="also list every layer")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def parse_flags(args: argparse.Namespace) -> None:
    """Parse and check the numeric flags in place (``ValidationError`` naming the flag)."""
    for dest, parse in PARSERS.items():
        value = getattr(args, dest, None)
        if isinstance(value, str):
            setattr(args, dest, parse(value))


def build_model(args: argparse.Namespace):
    """The model the flags describe; a flag the model does not take is an error, and a value the
    model rejects is reported with the flag that gave it."""
    if args.model not in models.names():
        raise ValidationError(f"--model: unknown model {args.model!r}; available: "
                              f"{', '.join(models.names())}")
    parse_flags(args)
    accepted = models.hyperparameters(args.model)
    kwargs, flags = {}, {}
    for dest, kwarg in MODEL_FLAGS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if kwarg not in accepted:
            raise ValidationError(f"{_flag(dest)} does not apply to {args.model}")
        kwargs[kwarg], flags[kwarg] = value, _flag(dest)
    try:
        return models.create(args.model, **kwargs)
    except ValidationError as err:
        named = [flag for kwarg, flag in flags.items()
                 if re.search(rf"\b{re.escape(kwarg)}\b", str(err))]
        if len(named) == 1:
            raise ValidationError(f"{named[0]}: {err}") from err
        raise


def _run_model(args: argparse.Namespace):
    """``(model, input shape (1, H, W, C), name)`` of ``--workdir``; its binarization, if any,
    becomes ``--binary``/``--binary-layers`` unless given."""
    from lightjax.train import run as run_lib
    from lightjax.train.experiment import Experiment

    given = [_flag(d) for d in (*MODEL_FLAGS, "model", "resolution")
             if getattr(args, d, None) not in (None, False)]
    if given:
        raise ValidationError(f"--workdir takes the model and input size from the run; drop "
                              f"{', '.join(given)}")
    cfg = run_lib.read_config(args.workdir)
    exp = Experiment(cfg)
    section = cfg.get("binary")
    if section is not None and section.get("method") and args.binary is None:
        args.binary, args.binary_layers = section.method, section.get("layers")
    return exp.base_model, tuple(exp.input_shape), cfg.model.name


def run(args: argparse.Namespace) -> int:
    if (args.model is None) == (args.workdir is None):
        raise ValidationError("give one of --model NAME (with its flags) or --workdir RUN")
    if args.workdir is not None:
        model, shape, name = _run_model(args)
    else:
        args.resolution = args.resolution or "224"
        model, name = build_model(args), args.model
        shape = (1, args.resolution, args.resolution, getattr(model, "input_channels", 3))
    report = cost.count(model, shape)
    binary = _binary(report, args.binary, args.binary_layers, model) if args.binary else None
    if args.json:
        print(json.dumps({"model": name, **report.as_dict(),
                          **({"binary": binary} if binary else {})}))
        return 0
    where = f" ({args.workdir})" if args.workdir else ""
    print(f"{name}{where} at {shape[1]}x{shape[2]}: "
          f"{report.params:,} params, {report.macs:,} MACs")
    print(cost.format_table(report, per_layer=args.per_layer))
    if binary:
        print(f"binarized ({args.binary}, {binary['layers']} layers): "
              f"{binary['binary_params']:,} binary + {binary['float_params']:,} float params, "
              f"{binary['model_bits'] / 8 / 1024:,.1f} KiB vs {binary['float_model_bits'] / 8 / 1024:,.1f} "
              f"KiB float ({binary['float_model_bits'] / binary['model_bits']:.1f}x smaller); "
              f"MACs with binary weights {100 * binary['binary_weight_macs_share']:.1f}%, "
              f"with both operands binary {100 * binary['binary_macs_share']:.1f}%")
    return 0


def _binary(report: cost.CostReport, method: str, layers: str | None, model) -> dict:
    """The binarized model's figures (every selected layer fully binary)."""
    from lightjax.binary import plugin

    if method not in plugin.METHODS:
        raise ValidationError(f"--binary: unknown method {method!r}; allowed: "
                              f"{', '.join(plugin.METHODS)}")
    rows = plugin.select_layers(report, layers, outputs=plugin.output_layers(model))
    inputs = 0.0 if plugin.METHODS[method][1] == 0 else 1.0
    return {"method": method, "layers": len(rows),
            **plugin.binary_cost(report, {r.name: (1.0, inputs) for r in rows})}
