"""Export a binarized run with its weights as real bits, and load it back for inference.

``export(workdir, path)`` writes one ``.npz`` file: the run's config (JSON), for every binarized
layer the signs of its kernel as packed bits (``numpy.packbits`` of ``kernel < 0``: bit 1 = -1, as
in Larq Compute Engine) plus the per-output-channel scale ``alpha`` (float32) and the weight
selection, the kernels of output channels that stay float (partial binarization), every other
parameter and the BN statistics in float32. The latent float weights of binary channels are not
stored: the file is what the binary model *is*.

``load(path)`` rebuilds the model (with its binarization rule) and variables from the file alone:
binary kernels become ``alpha * (+-1)``, which the binarizing hook maps to exactly themselves
(``mean |alpha * s| = alpha``, ``sign(alpha * s) = s``), so the loaded model computes what the run
computes.
"""
from __future__ import annotations

import io
import json
import os
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np

from lightjax.errors import ValidationError

_BINARY = "binary:"
_FLOAT = "float:"


def _flat(tree: Any) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in
            flax.traverse_util.flatten_dict(flax.core.unfreeze(jax.device_get(tree)),
                                            sep="/").items()}


def _plugin(exp: Any) -> Any:
    found = [p for p in exp.plugins if p.name == "binary"]
    if not found:
        raise ValidationError(f"{exp.cfg.model.name} run has no binary section: binarize it first "
                              f"(lightjax binarize)")
    return found[0]


def export(workdir: str, path: str) -> dict[str, int]:
    """Write the binarized run ``workdir`` to ``path`` (``.npz``); returns the byte counts of the
    file and of the float32 parameters it replaces."""
    from lightjax.train import config as config_lib
    from lightjax.train import run as run_lib
    from lightjax.train import step as step_lib

    if os.path.exists(path):
        raise ValidationError(f"{path} already exists; choose a new file")
    cfg, exp, state = run_lib.load_run(workdir)
    plugin = _plugin(exp)
    params, arrays = _flat(step_lib.eval_params(state)), {}
    selections = jax.device_get(state.compression["binary"])
    for row in plugin.layers:
        key = f"{row.name}/kernel"
        kernel = params.pop(key)
        chosen = np.asarray(selections[row.name]["weights"]) > 0
        alpha = np.abs(kernel).reshape(-1, kernel.shape[-1]).mean(axis=0).astype(np.float32)
        arrays[f"{_BINARY}{key}/bits"] = np.packbits((kernel[..., chosen] < 0).ravel())
        arrays[f"{_BINARY}{key}/alpha"] = alpha[chosen]
        arrays[f"{_BINARY}{key}/selection"] = chosen
        arrays[f"{_BINARY}{key}/shape"] = np.asarray(kernel.shape)
        arrays[f"{_BINARY}{key}/float"] = kernel[..., ~chosen].astype(np.float32)
    for key, value in params.items():
        arrays[f"{_FLOAT}params/{key}"] = value.astype(np.float32)
    for key, value in _flat(state.batch_stats).items():
        arrays[f"{_FLOAT}batch_stats/{key}"] = value.astype(np.float32)
    export_cfg = config_lib.from_json(config_lib.to_json(cfg))
    export_cfg.binary.init_from = None
    arrays["config"] = np.frombuffer(config_lib.to_json(export_cfg).encode(), np.uint8)
    arrays["selections"] = np.frombuffer(json.dumps(
        {k: {f: np.asarray(v).tolist() for f, v in e.items()} for k, e in selections.items()}
    ).encode(), np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    with open(path, "wb") as f:
        f.write(buffer.getvalue())
    return {"file_bytes": len(buffer.getvalue()), "float32_param_bytes": 4 * exp.cost.params}


def load(path: str) -> tuple[Any, Any, dict[str, Any]]:
    """``(config, model, variables)`` from an exported file: ``model.apply(variables, images)``
    (NHWC) gives the binarized run's outputs."""
    from lightjax.train import config as config_lib
    from lightjax.train.experiment import Experiment

    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    cfg = config_lib.from_json(arrays.pop("config").tobytes().decode())
    selections = json.loads(arrays.pop("selections").tobytes().decode())
    exp = Experiment(cfg)
    params, stats = {}, {}
    for key, value in arrays.items():
        if key.startswith(_FLOAT + "params/"):
            params[key[len(_FLOAT + "params/"):]] = value
        elif key.startswith(_FLOAT + "batch_stats/"):
            stats[key[len(_FLOAT + "batch_stats/"):]] = value
    for key in {k[len(_BINARY):].rsplit("/", 1)[0] for k in arrays if k.startswith(_BINARY)}:
        part = {f: arrays[f"{_BINARY}{key}/{f}"] for f in ("bits", "alpha", "selection",
                                                          "shape", "float")}
        shape, chosen = tuple(int(d) for d in part["shape"]), part["selection"].astype(bool)
        n_binary = int(chosen.sum())
        binary_shape = shape[:-1] + (n_binary,)
        signs = np.unpackbits(part["bits"], count=int(np.prod(binary_shape)))
        kernel = np.zeros(shape, np.float32)
        kernel[..., chosen] = np.where(signs.reshape(binary_shape) > 0, -1.0, 1.0) * part["alpha"]
        kernel[..., ~chosen] = part["float"]
        params[key] = kernel
    extra = {k: {f: jnp.asarray(v, jnp.float32) for f, v in e.items()}
             for k, e in selections.items()}
    variables = {"params": flax.traverse_util.unflatten_dict(params, sep="/"),
                 "batch_stats": flax.traverse_util.unflatten_dict(stats, sep="/"),
                 **_plugin(exp).collections(extra)}
    return cfg, exp.model, variables
