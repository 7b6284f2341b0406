"""``lightjax export``: serialize a run's inference function with jax.export (one file).

Examples::

    lightjax export --workdir runs/d --out exported/digits.jax
    lightjax export --workdir runs/det --out det.jax --batch 8 --platforms cpu,cuda,tpu
    lightjax export --workdir runs/seg --out seg.jax --logits

The latest checkpoint of the run (plain, compact pruned or binarized) becomes a function of
float32 NHWC images (b, H, W, C) at the run's resolution, normalised with the dataset's mean/std,
with its parameters baked in: classification -> probabilities (b, classes) (--logits: logits),
segmentation -> mask (b, H, W) int32 (--logits: per-pixel logits), detection -> boxes, scores,
classes, count after NMS (fixed max detections). The batch b is symbolic (any size, one file)
unless --batch fixes it. Written: FILE (Exported.serialize() bytes) and FILE.json (input shape and
dtype, mean/std, resizing, output names/shapes, class names, versions). Existing files are
refused. Reload with JAX alone:

    exported = jax.export.deserialize(open("FILE", "rb").read())
    outputs = exported.call(images)          # a dict of arrays
"""
from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("export", help="serialize a run's inference function (jax.export)",
                              description=__doc__.replace("``", ""))
    p.add_argument("--workdir", required=True, help="a directory written by lightjax train, "
                   "prune or binarize")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="the file to write (FILE.json is written next to it); must not exist")
    p.add_argument("--batch", type=int, default=None,
                   help="a fixed batch size (default: symbolic, any batch size)")
    p.add_argument("--platforms", default=None,
                   help="comma-separated platforms to lower for: cpu, cuda, rocm, tpu "
                        "(default: the current backend)")
    p.add_argument("--logits", action="store_true",
                   help="classification/segmentation: output the logits instead of "
                        "probabilities / the argmax mask")
    p.add_argument("--score-threshold", type=float, default=None,
                   help="detection: keep boxes scoring above this (default: the run's task "
                        "setting, 0.01 unless configured)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from lightjax.interop import export

    info = export.export_run(args.workdir, args.out, batch=args.batch, platforms=args.platforms,
                             logits=args.logits, score_threshold=args.score_threshold)
    outputs = ", ".join(f"{o['name']} ({', '.join(map(str, o['shape']))}) {o['dtype']}"
                        for o in info["outputs"])
    shape = ", ".join(map(str, info["input"]["shape"]))
    print(f"exported {args.workdir} ({info['task']}, step {info['step']}) to {args.out} "
          f"({info['bytes']:,} bytes; {','.join(info['platforms'])}): images ({shape}) float32 "
          f"-> {outputs}; call signature in {export.sidecar_path(args.out)}")
    return 0
