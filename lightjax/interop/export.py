"""Serialize a run's inference function with :mod:`jax.export`: one self-contained file.

``export_run(workdir, out)`` traces the latest checkpoint of a run (plain, compact pruned or
binarized: the model is rebuilt from the run's config with its compression plug-ins, exactly as
``lightjax eval`` does) into a function ``images -> outputs`` whose parameters are baked in as
constants, lowers it to StableHLO with :func:`jax.export.export` and writes the bytes of
``Exported.serialize()`` to ``out``, plus a JSON sidecar ``out + '.json'`` saying how to call it.

Input: ``images`` float32 NHWC ``(b, H, W, C)`` at the run's resolution, pixels in [0, 1]
normalised as ``(x - mean) / std`` per channel (the sidecar holds mean, std and how to resize).
The batch ``b`` is symbolic (any ``b >= 1``, one file) unless a fixed ``batch`` is asked for.

Outputs (a dict; the StableHLO results are in sorted-key order):

==============  ===============================================================================
task            outputs
==============  ===============================================================================
classification  ``probabilities`` (b, classes) float32, the softmax of the logits;
                with ``logits=True``: ``logits`` (b, classes) float32
segmentation    ``mask`` (b, H, W) int32, the argmax class of every pixel;
                with ``logits=True``: ``logits`` (b, H, W, classes) float32
detection       ``boxes`` (b, D, 4) float32 ``(x_min, y_min, x_max, y_max)`` fractions of the
                input, ``classes`` (b, D) int32 (-1 on padding), ``count`` (b,) int32,
                ``scores`` (b, D) float32 (0 on padding): the run's decoding, score threshold,
                class-aware NMS and top-``D`` (``D`` = the task's ``max_detections``), real
                detections first by decreasing score
==============  ===============================================================================

Reloading needs only JAX: ``jax.export.deserialize(open(out, 'rb').read()).call(images)``.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Callable, Sequence

import numpy as np

from lightjax.errors import ValidationError

TASKS = ("classification", "segmentation", "detection")
#: platform names :func:`jax.export.export` lowers for
PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
SIDECAR_SUFFIX = ".json"
INPUT_NAME = "images"

#: what each output holds, for the sidecar
DESCRIPTIONS = {
    "probabilities": "softmax of the logits over the classes (float32)",
    "logits": "the network's raw class scores (before softmax)",
    "mask": "argmax class of every pixel",
    "boxes": "(x_min, y_min, x_max, y_max) fractions of the network input (after resizing); "
             "rows >= count are 0",
    "scores": "sigmoid(objectness) * sigmoid(class logit), decreasing; 0 on padding",
    "classes": "class index (into 'classes'); -1 on padding",
    "count": "number of real detections per image (the first rows)",
}


def sidecar_path(out: str) -> str:
    """The JSON sidecar written next to ``out``."""
    return out + SIDECAR_SUFFIX


def parse_platforms(platforms: str | Sequence[str] | None) -> tuple[str, ...]:
    """``'cpu,cuda'`` or ``['cpu', 'cuda']`` -> ``('cpu', 'cuda')`` (order kept, duplicates
    dropped); ``None``: the current backend's. ``ValidationError`` for an unknown name."""
    import jax

    if platforms is None:
        return (jax.export.default_export_platform(),)
    items = platforms.split(",") if isinstance(platforms, str) else list(platforms)
    names: list[str] = []
    for item in items:
        name = str(item).strip().lower()
        if name not in PLATFORMS:
            raise ValidationError(f"--platforms: unknown platform {str(item).strip()!r}; allowed: "
                                  f"{', '.join(PLATFORMS)} (comma-separated)")
        if name not in names:
            names.append(name)
    if not names:
        raise ValidationError(f"--platforms must name at least one of {', '.join(PLATFORMS)}")
    return tuple(names)


def check_batch(batch: int | None) -> int | None:
    """``None`` (symbolic batch) or a positive integer; ``ValidationError`` otherwise."""
    if batch is None:
        return None
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValidationError(f"--batch must be a positive integer (a fixed batch size) or "
                              f"omitted (a symbolic batch), got {batch!r}")
    return int(batch)


def check_out(out: str) -> None:
    """``ValidationError`` when ``out`` or its sidecar already exists (nothing is overwritten)."""
    if not isinstance(out, (str, os.PathLike)) or not str(out):
        raise ValidationError(f"--out must be a file path, got {out!r}")
    for path in (str(out), sidecar_path(str(out))):
        if os.path.lexists(path):
            raise ValidationError(f"{path} already exists; choose a new --out (existing files "
                                  f"are never overwritten)")


def check_serializer() -> None:
    """``ValidationError`` when ``flatbuffers`` (``Exported.serialize()`` needs it) is missing."""
    import importlib.util

    if importlib.util.find_spec("flatbuffers") is None:
        raise ValidationError("lightjax export needs the 'flatbuffers' package (jax.export "
                              "serialization uses it): pip install flatbuffers")


def check_workdir(workdir: str) -> None:
    """``ValidationError`` unless ``workdir`` holds a run with at least one checkpoint."""
    if not os.path.isdir(workdir):
        raise ValidationError(f"--workdir {workdir}: no such directory")
    if not os.path.isfile(os.path.join(workdir, "config.json")):
        raise ValidationError(f"{workdir} holds no lightjax run (no config.json)")
    directory = os.path.join(workdir, "checkpoints")
    steps = [n for n in os.listdir(directory) if n.isdigit()] if os.path.isdir(directory) else []
    if not steps:
        raise ValidationError(f"{workdir} holds no checkpoint (checkpoints/ is missing or empty); "
                              f"train it first: lightjax train --workdir {workdir}")


def _depthwise_for(model: Any, platforms: Sequence[str]) -> Any:
    """``model`` with its ``'auto'`` depthwise implementation chosen for ``platforms`` (the
    exporting machine's backend would decide otherwise): ``'shifted'`` for CPU only, ``'xla'``
    without CPU; a mix keeps ``'auto'`` (the exporting backend's choice). Both compute the same
    convolution; only speed differs."""
    layers = getattr(model, "layers", None)
    if layers is None or getattr(layers, "depthwise_impl", None) != "auto":
        return model
    if set(platforms) == {"cpu"}:
        impl = "shifted"
    elif "cpu" not in platforms:
        impl = "xla"
    else:
        return model
    return model.clone(layers=dataclasses.replace(layers, depthwise_impl=impl))


def inference_function(exp: Any, state: Any, logits: bool = False,
                       score_threshold: float | None = None,
                       platforms: Sequence[str] = ()) -> Callable[[Any], dict[str, Any]]:
    """``images (b, H, W, C) float32 -> dict of outputs`` (module docstring) of the run ``exp``
    at ``state``, with every parameter, BN statistic and plug-in collection (pruning masks,
    binarization selections) closed over as a constant. ``score_threshold``: detection only
    (default: the task's). ``platforms`` picks the depthwise implementation."""
    import jax

    from lightjax.train import step as step_lib

    model = _depthwise_for(exp.model, platforms) if platforms else exp.model
    variables = jax.tree.map(np.asarray, jax.device_get(
        step_lib.model_variables(state, step_lib.eval_params(state), exp.plugins)))
    hw = tuple(int(s) for s in exp.dataset.image_shape[:2])

    def infer(images):
        return dict(exp.task.predictions(model.apply(variables, images, train=False), hw,
                                         logits, score_threshold))

    return infer


def _check_threshold(score_threshold: float | None) -> None:
    if score_threshold is None:
        return
    if isinstance(score_threshold, bool) or not isinstance(score_threshold, (int, float)) or \
            not math.isfinite(score_threshold) or not 0.0 <= score_threshold < 1.0:
        raise ValidationError(f"--score-threshold must be a number in [0, 1), got "
                              f"{score_threshold!r}")


def _check_task(task: str, workdir: str, logits: bool, score_threshold: float | None) -> None:
    """``ValidationError`` for a task export does not handle or an option it does not take."""
    if task not in TASKS:
        raise ValidationError(f"lightjax export handles {', '.join(TASKS)} runs; {workdir} is a "
                              f"{task!r} run")
    if logits and task == "detection":
        raise ValidationError("--logits applies to classification and segmentation runs; a "
                              "detection export returns boxes, scores, classes and count")
    if score_threshold is not None and task != "detection":
        raise ValidationError(f"--score-threshold applies to detection runs; {workdir} is a "
                              f"{task} run")


def _dims(shape: Sequence[Any]) -> list[int | str]:
    return [int(d) if isinstance(d, (int, np.integer)) else str(d) for d in shape]


def _outputs(exported: Any) -> list[dict[str, Any]]:
    """Name, shape (symbolic dims as strings), dtype and meaning of each result, in the order of
    the StableHLO module's results."""
    import jax

    tree = jax.tree_util.tree_unflatten(exported.out_tree, list(exported.out_avals))
    rows = []
    for path, aval in jax.tree_util.tree_flatten_with_path(tree)[0]:
        name = str(path[0].key)
        rows.append({"name": name, "shape": _dims(aval.shape), "dtype": str(aval.dtype),
                     "description": DESCRIPTIONS.get(name, "")})
    return rows


def _preprocessing(cfg: Any, exp: Any) -> dict[str, Any]:
    dataset = exp.dataset
    if exp.task.name == "detection" and (cfg.data.get("resize") or "letterbox") == "letterbox":
        resize = ("letterbox: scale to fit H x W with the aspect ratio kept, centred on grey "
                  "128/255 padding")
    else:
        resize = "stretch: bilinear resize to H x W"
    channels = int(dataset.image_shape[-1])
    kind = {1: "greyscale", 3: "RGB"}.get(channels, f"{channels} channels")
    return {"pixels": f"{kind} as float32 in [0, 1]",
            "normalize": "(pixels - mean) / std per channel",
            "mean": [float(m) for m in dataset.mean], "std": [float(s) for s in dataset.std],
            "resize": resize}


def export_run(workdir: str, out: str, batch: int | None = None,
               platforms: str | Sequence[str] | None = None, logits: bool = False,
               score_threshold: float | None = None) -> dict[str, Any]:
    """Export the latest checkpoint of ``workdir`` to ``out`` (serialized
    :class:`jax.export.Exported`) and its JSON sidecar ``out + '.json'``; return the sidecar's
    content plus ``bytes`` (the size of ``out``).

    ``batch``: a fixed batch size (default: symbolic ``b``); ``platforms``: the platforms to
    lower for (``'cpu,cuda,tpu'``; default: the current backend); ``logits``: raw logits instead
    of probabilities / mask (classification, segmentation); ``score_threshold``: detection
    (default: the run's task setting). Every user error is a ``ValidationError`` raised before
    anything is traced or written; existing files are never overwritten."""
    import jax

    import lightjax
    from lightjax.train import run as run_lib

    out = os.fspath(out) if isinstance(out, os.PathLike) else out
    check_out(out)
    check_serializer()
    batch = check_batch(batch)
    platforms = parse_platforms(platforms)
    _check_threshold(score_threshold)
    workdir = os.fspath(workdir)
    check_workdir(workdir)
    section = run_lib.read_config(workdir).get("task")
    if section is not None and section.get("name"):  # named in the config: check before loading
        _check_task(str(section.name), workdir, logits, score_threshold)
    from lightjax.train import run as run_lib

    cfg, exp, state = run_lib.load_run(workdir)
    task = exp.task.name
    _check_task(task, workdir, logits, score_threshold)

    h, w, c = (int(s) for s in exp.dataset.image_shape)
    shape = (batch, h, w, c) if batch is not None else \
        jax.export.symbolic_shape(f"b, {h}, {w}, {c}")
    spec = jax.ShapeDtypeStruct(shape, np.float32)
    infer = inference_function(exp, state, logits, score_threshold, platforms)
    exported = jax.export.export(jax.jit(infer), platforms=platforms)(spec)
    data = exported.serialize()

    info: dict[str, Any] = {
        "format": "jax.export (Exported.serialize())",
        "file": os.path.basename(out),
        "call": f"jax.export.deserialize(open({os.path.basename(out)!r}, 'rb').read())"
                f".call(images) -> dict of the outputs",
        "workdir": os.path.abspath(workdir), "step": int(jax.device_get(state.step)),
        "task": task, "model": str(cfg.model.name),
        "input": {"name": INPUT_NAME, "shape": _dims(spec.shape), "dtype": "float32",
                  "layout": "NHWC", "batch": "symbolic (any b >= 1)" if batch is None else batch,
                  **_preprocessing(cfg, exp)},
        "outputs": _outputs(exported),
        "classes": [str(n) for n in exp.dataset.class_names] or
                   [f"class {i}" for i in range(exp.dataset.num_classes)],
        "platforms": list(exported.platforms),
        "versions": {"lightjax": lightjax.__version__, "jax": jax.__version__,
                     "jaxlib": _jaxlib_version(),
                     "calling_convention": int(exported.calling_convention_version)},
    }
    if task == "detection":
        t = exp.task
        info["detection"] = {
            "score_threshold": float(t.score_threshold if score_threshold is None
                                     else score_threshold),
            "iou_threshold": float(t.iou_threshold), "max_detections": int(t.max_detections),
            "nms": "class-aware greedy NMS"}
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    with open(out, "xb") as f:  # exclusive: never replaces a file created meanwhile
        f.write(bytes(data))
    with open(sidecar_path(out), "x") as f:
        json.dump(info, f, indent=2)
    return {**info, "bytes": len(data)}


def _jaxlib_version() -> str:
    try:
        import jaxlib

        return str(jaxlib.__version__)
    except (ImportError, AttributeError):
        return "unknown"
