"""An imported PyTorch model as a lightjax run directory (what ``lightjax import-weights``
writes).

::

    from lightjax.interop import torch_run
    cfg = torch_run.import_weights("torchvision:mobilenet_v2", state_dict, "runs/mnv2-tv")

The run holds ``config.json`` (model and hyper-parameters of the architecture, an ImageNet data
section with the normalization the weights were trained with, a fine-tuning ``train`` section
with PyTorch's BatchNorm epsilon and momentum), an orbax checkpoint at step 0 whose ``params``
and ``batch_stats`` are the converted weights (:func:`lightjax.train.run.load_run` restores it),
and ``imported.json`` (source, file, tensor count). Nothing is written until the state dict has
converted without error; an existing non-empty ``out`` is refused.

The data section names a dataset with the 1000 ImageNet classes in PyTorch's index order (the
sorted WordNet IDs): TFDS ``imagenet2012`` (prepared in ``data_dir``; the default) or an image
``folder`` (``root/train/<wnid>/...``, ``root/val/<wnid>/...``). It is only read when the run is
used (``lightjax eval``, ``prune``, ``binarize``, ``sweep``, ``train``); ``train.init_from`` of
another run reads only the weights.
"""
from __future__ import annotations

import json
import os
import types
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import ml_collections

from lightjax import cost
from lightjax.errors import ValidationError
from lightjax.interop import torch_architectures as arch_lib
from lightjax.interop import torch_weights
from lightjax.train import checkpoint, defaults, experiment, optimizer
from lightjax.train import run as run_lib
from lightjax.train import step as step_lib
from lightjax.train import workdir as workdir_lib

NUM_CLASSES = 1000
DEFAULT_DATA = "imagenet2012"
DEFAULT_DATA_DIR = "~/tensorflow_datasets"
#: Built-in datasets without the 1000 ImageNet classes.
NOT_IMAGENET = ("digits", "shapes", "cifar10", "cifar100")


def _fine_tuning() -> ml_collections.ConfigDict:
    """A fine-tuning recipe for the imported weights (torchvision's MobileNetV2/ShuffleNetV2
    weight decay 4e-5, SGD at a tenth of a from-scratch batch-256 rate, cosine to 0), with
    PyTorch's BatchNorm2d epsilon 1e-5 and momentum 0.1 (flax's 0.9), written out in the run."""
    return defaults.train_section(epochs=10, batch_size=256, eval_batch_size=250, lr=0.01,
                                  weight_decay=4e-5, schedule="cosine", decay_epochs=(),
                                  checkpoint_every_epochs=1, bn_momentum=0.9, bn_epsilon=1e-5,
                                  bn_unbiased_variance=False)


def _check_resolution(resolution: Any) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 32:
        raise ValidationError(f"resolution must be an integer >= 32 (pixels per side), got "
                              f"{resolution!r}")
    return resolution


def data_section(architecture: arch_lib.Architecture, data: str = DEFAULT_DATA,
                 data_dir: str | None = None, root: str | None = None,
                 resolution: int = 224) -> ml_collections.ConfigDict:
    """The run's ``data`` section: ``data`` (a TFDS name with ImageNet's classes, or
    ``'folder'`` with ``root``) at ``resolution`` with the architecture's mean/std."""
    if not isinstance(data, str) or not data or data in NOT_IMAGENET:
        raise ValidationError(f"data must be a dataset with the {NUM_CLASSES} ImageNet classes: "
                              f"'imagenet2012' (TFDS, default), another TFDS name or 'folder'; "
                              f"got {data!r}")
    section: dict[str, Any] = dict(name=data, resolution=_check_resolution(resolution),
                                   augment="auto", mean=architecture.mean, std=architecture.std)
    if data == "folder":
        if root is None or data_dir is not None:
            raise ValidationError("data 'folder' needs root=<directory> (train/<wnid>/<images>, "
                                  "val/<wnid>/<images>) and no data_dir")
        section["root"] = os.fspath(root)
    else:
        if root is not None:
            raise ValidationError(f"root applies to data 'folder' only, not {data!r} (use "
                                  f"data_dir for TFDS)")
        section["data_dir"] = os.fspath(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
    return ml_collections.ConfigDict(section)


def run_config(architecture: arch_lib.Architecture, **data: Any) -> ml_collections.ConfigDict:
    """The run config of an imported ``architecture`` (``data``: see :func:`data_section`)."""
    cfg = ml_collections.ConfigDict()
    cfg.model = ml_collections.ConfigDict(dict(name=architecture.model,
                                               **architecture.hyperparameters))
    cfg.data = data_section(architecture, **data)
    cfg.train = _fine_tuning()
    return cfg


def initial_state(cfg: ml_collections.ConfigDict, variables: Mapping[str, Any]
                  ) -> step_lib.TrainState:
    """The train state of ``cfg`` at step 0 holding ``variables`` (``params``, ``batch_stats``),
    built as :meth:`lightjax.train.experiment.Experiment.init_state` builds one (same model,
    optimizer and weight-decay mask, no compression) but without reading the dataset."""
    side = int(cfg.data.resolution)
    shape = (1, side, side, 3)
    stand_in = types.SimpleNamespace(name=cfg.data.name, num_classes=NUM_CLASSES,
                                     image_shape=shape[1:])
    model = experiment.build_model(cfg, stand_in)
    tx = optimizer.from_config(cfg.train, 1, cost.count(model, shape))
    seed = int(cfg.train.seed)
    abstract = jax.eval_shape(lambda: step_lib.init_state(model, tx, seed, shape))
    params, batch_stats = jax.device_put((dict(variables["params"]),
                                          dict(variables["batch_stats"])))
    state = step_lib.TrainState(
        step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
        opt_state=jax.jit(tx.init)(params),  # one small program, not an op per leaf
        rng=jax.random.split(jax.random.PRNGKey(seed))[1], compression=None)
    got = jax.tree.map(lambda a: (a.shape, a.dtype), state)
    want = jax.tree.map(lambda a: (a.shape, a.dtype), abstract)
    if got != want:  # the converted variables or this function disagree with init_state: a bug
        raise RuntimeError("the imported train state does not match init_state's structure")
    return state


def write_run(cfg: ml_collections.ConfigDict, variables: Mapping[str, Any], out: str,
              provenance: Mapping[str, Any] | None = None) -> None:
    """Write the run directory ``out`` (must not exist, or be empty): ``config.json``, the step-0
    checkpoint of ``variables`` and ``imported.json`` (``provenance``)."""
    out = workdir_lib.check_new(out)
    state = initial_state(cfg, variables)
    run_lib.claim(cfg, out)
    ckpt = checkpoint.Checkpoints(out, keep=int(cfg.train.keep_checkpoints))
    try:
        ckpt.save(0, state)
        ckpt.wait()
    finally:
        ckpt.close()
    with open(os.path.join(out, "imported.json"), "w") as f:
        json.dump(dict(provenance or {}), f, indent=2)


def import_weights(source: str, state_dict: Mapping[str, Any], out: str, *,
                   width_mult: float | None = None, data: str = DEFAULT_DATA,
                   data_dir: str | None = None, root: str | None = None,
                   resolution: int = 224, state_dict_file: str | None = None
                   ) -> ml_collections.ConfigDict:
    """Convert ``state_dict`` of ``source`` and write it as the run ``out``; return its config.

    Everything (source, data options, every tensor) is checked before anything is written.
    """
    workdir_lib.check_new(out)
    cfg = run_config(arch_lib.get(source, width_mult), data=data, data_dir=data_dir, root=root,
                     resolution=resolution)  # bad options fail before the conversion
    converted = torch_weights.convert(source, state_dict, width_mult)
    provenance = dict(source=source, state_dict=state_dict_file and os.path.abspath(
        state_dict_file), tensors=converted.tensors,
                      values=converted.values, model=converted.architecture.model,
                      hyperparameters=converted.architecture.hyperparameters)
    write_run(cfg, converted.variables, out, provenance)
    return cfg
