"""``lightjax binarize``: binarize a trained run (straight-through estimators), staged, into a new run.

Examples::

    lightjax binarize --workdir runs/digits --method xnor --epochs 5
    lightjax binarize --workdir runs/digits --method horq --order 2
    lightjax binarize --workdir runs/digits --method sq --ratios 0.5,0.75,0.875,1 --epochs 2
    lightjax binarize --workdir runs/seg --method srb --epochs 2 --final-epochs 10 --patience 2
    lightjax binarize --workdir runs/seg --method srb --layers 'head/classifier'  # last DECONV only
    lightjax binarize --workdir runs/digits --method xnor --layers 'unit.*/pw/conv' --activation identity
    lightjax binarize --workdir runs/digits --method xnor --input-scale --export xnor.npz
    lightjax binarize --workdir runs/digits --method bwn --config.train.optimizer=adam
    lightjax eval --workdir runs/digits-binary-xnor

By default every conv/dense layer but the first and the last is binarized (``--layers``: a regular
expression on module paths, e.g. 'unit.*'). ``--config.SECTION.FIELD=VALUE`` overrides the
binarizing run's config after the method is applied (e.g. its optimizer, learning rate, weight
decay). The output (``--out``, default ``<workdir>-binary-<method>``) is an ordinary run directory
(config with a ``binary`` section, orbax checkpoints, metrics.jsonl); an interrupted binarization
resumes with the same command.
``--export FILE.npz`` also writes the finished model with its binary weights as packed bits
(lightjax.binary.export.load reads it back).
"""
from __future__ import annotations

import argparse
import os

from lightjax.errors import ValidationError


def _ratios(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--ratios must be comma-separated numbers, got "
                                         f"{text!r}") from None


def add_parser(subparsers) -> None:
    from lightjax.binary import methods, selection

    p = subparsers.add_parser("binarize", help="binary weights/activations for a trained run",
                              description=__doc__.replace("``", ""),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", required=True, help="a run directory written by lightjax train")
    p.add_argument("--out", help="new run directory (default: <workdir>-binary-<method>)")
    p.add_argument("--method", default="xnor", help=f"one of {', '.join(methods.METHODS)}")
    p.add_argument("--epochs", type=float, default=2.0, help="epochs per stage (default 2)")
    p.add_argument("--final-epochs", type=float, help="srb: epochs of the final fine-tuning "
                                                      "stage (default: --epochs)")
    p.add_argument("--patience", type=int, default=0,
                   help="srb: stop the final stage once the metric has not improved for this "
                        "many epochs (default 0: train all --final-epochs)")
    p.add_argument("--ratios", type=_ratios, default=methods.DEFAULT_RATIOS,
                   help="stage ratios of sq/staged/srb (default 0.5,0.75,0.875,1)")
    p.add_argument("--order", type=int, default=2, help="HORQ order (horq, srb; default 2)")
    p.add_argument("--mode", default="xnor",
                   help=f"layer mode of sq/staged: one of {', '.join(methods.MODES)}")
    p.add_argument("--selection", help=f"channel selection: {', '.join(selection.MODES)} "
                                       f"(default: stochastic for sq, error for staged, first "
                                       f"for srb)")
    p.add_argument("--activations-first", action="store_true",
                   help="srb: binarize the activations before the weights")
    p.add_argument("--layers", help="regular expression on layer paths (default: every conv/"
                                    "dense layer but the first and the last)")
    p.add_argument("--activation", help="the model's activation while binarizing: 'model' (keep "
                                        "it), or a name, e.g. identity (default: identity when "
                                        "every layer but the first and last gets +-1 inputs)")
    p.add_argument("--input-scale", action="store_true",
                   help="bnn/xnor: XNOR-Net's input scale K (channel-mean |x| averaged over each "
                        "kernel window)")
    p.add_argument("--export", metavar="FILE.npz",
                   help="when finished, write the model with packed binary weights to this new "
                        "file")
    p.add_argument("--pad-value", type=float, default=0.0,
                   help="padding constant of binarized inputs: -1, 0 (default) or 1")
    p.add_argument("--lr-scale", type=float, default=0.1,
                   help="learning rate as a fraction of the run's (default 0.1)")
    p.add_argument("--seed", type=int, default=0, help="seed of stochastic channel selection")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run, accepts_overrides=True)


def run(args: argparse.Namespace) -> int:
    from lightjax.binary import methods, plugin
    from lightjax.train import config as config_lib
    from lightjax.train import run as run_lib

    if not os.path.isfile(os.path.join(args.workdir, "config.json")):
        raise ValidationError(f"{args.workdir} holds no lightjax run (no config.json); binarize "
                              f"a run written by lightjax train")
    cfg = methods.config(
        run_lib.read_config(args.workdir), args.method, args.workdir, epochs=args.epochs,
        ratios=args.ratios, order=args.order, mode=args.mode, selection_mode=args.selection,
        layers=args.layers, pad_value=args.pad_value, lr_scale=args.lr_scale,
        activations_first=args.activations_first, final_epochs=args.final_epochs,
        seed=args.seed, activation=args.activation, input_scale=args.input_scale,
        patience=args.patience)
    cfg = config_lib.override(cfg, args.overrides)  # --config.SECTION.FIELD=VALUE, as train
    plugin.check(cfg)
    if args.export is not None and os.path.exists(args.export):
        raise ValidationError(f"--export {args.export} already exists; choose a new file")  # train() then builds the experiment (layers matched) before writing
    out = args.out or f"{os.path.normpath(args.workdir)}-binary-{args.method}"
    summary = run_lib.train(cfg, out, progress=not args.no_progress)
    if not summary.get("finished", True):
        return 0
    print(run_lib.describe(summary))
    print(f"binarized run: {out} (lightjax eval --workdir {out})")
    if args.export is not None:
        from lightjax.binary import export

        sizes = export.export(out, args.export)
        print(f"exported {args.export}: {sizes['file_bytes']:,} bytes (float32 parameters: "
              f"{sizes['float32_param_bytes']:,})")
    return 0
