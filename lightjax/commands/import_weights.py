"""``lightjax import-weights``: a PyTorch (torchvision / timm) state dict as a lightjax run.

Examples::

    lightjax import-weights --from torchvision:mobilenet_v2 --state-dict mobilenet_v2.pth \\
        --out runs/mnv2-tv
    lightjax import-weights --from timm:mobilenetv1_100 --state-dict model.safetensors \\
        --out runs/mnv1-timm --data folder --root ~/data/imagenet
    lightjax eval --workdir runs/mnv2-tv          # needs the data section's ImageNet

The run (config.json + an orbax checkpoint) computes what the PyTorch model computes; `lightjax
eval`, `prune`, `binarize`, `sweep` and `train` use it like a trained run, given ImageNet: TFDS
imagenet2012 prepared in --data-dir (default ~/tensorflow_datasets), or --data folder with
--root holding train/<wnid>/<images> and val/<wnid>/<images>.
"""
from __future__ import annotations

import argparse
import sys


def add_parser(subparsers) -> None:
    from lightjax.interop import state_dict_files, torch_architectures, torch_run

    p = subparsers.add_parser("import-weights", help="import PyTorch (torchvision/timm) weights "
                                                     "as a lightjax run",
                              description=__doc__.replace("``", ""))
    p.add_argument("--from", dest="source", required=True, metavar="SOURCE",
                   help=f"the PyTorch architecture: {', '.join(torch_architectures.sources())}")
    p.add_argument("--state-dict", required=True, metavar="FILE",
                   help=f"the weights ({', '.join(state_dict_files.SUFFIXES)})")
    p.add_argument("--out", required=True, help="new run directory (must not exist)")
    p.add_argument("--width-mult", type=float, default=None,
                   help=f"width multiplier of "
                        f"{', '.join(torch_architectures.WIDTH_MULT_SOURCES)} (torchvision's "
                        f"width_mult; default 1.0)")
    p.add_argument("--data", default=torch_run.DEFAULT_DATA,
                   help="dataset the run evaluates and trains on: imagenet2012 (TFDS, default), "
                        "another TFDS name with the ImageNet classes, or folder (with --root)")
    p.add_argument("--data-dir", default=None,
                   help=f"TFDS data directory (default {torch_run.DEFAULT_DATA_DIR})")
    p.add_argument("--root", default=None, help="image folder root (--data folder)")
    p.add_argument("--resolution", type=int, default=224,
                   help="input resolution of the data section (default 224)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from lightjax.interop import state_dict_files, torch_architectures, torch_run
    from lightjax.train import workdir as workdir_lib

    workdir_lib.check_new(args.out)  # bad options before the file is read
    torch_run.run_config(torch_architectures.get(args.source, args.width_mult), data=args.data,
                         data_dir=args.data_dir, root=args.root, resolution=args.resolution)
    state_dict = state_dict_files.load(args.state_dict)
    cfg = torch_run.import_weights(
        args.source, state_dict, args.out, width_mult=args.width_mult, data=args.data,
        data_dir=args.data_dir, root=args.root, resolution=args.resolution,
        state_dict_file=args.state_dict)
    hp = ", ".join(f"{k}={v}" for k, v in cfg.model.items() if k not in ("name", "num_classes"))
    data = cfg.data.get("root") or cfg.data.get("data_dir")
    print(f"imported {args.source} from {args.state_dict} into {args.out}: {cfg.model.name} "
          f"({hp}), {torch_run.NUM_CLASSES} classes, {cfg.data.resolution}x"
          f"{cfg.data.resolution} inputs", file=sys.stderr)
    print(f"evaluate with `lightjax eval --workdir {args.out}` (reads {cfg.data.name} from "
          f"{data})")
    return 0
