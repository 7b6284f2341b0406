"""PyTorch state dict -> lightjax variables, layer by layer, every shape checked.

::

    import torchvision
    from lightjax.interop import torch_weights
    sd = torchvision.models.shufflenet_v2_x1_0(weights="DEFAULT").state_dict()
    converted = torch_weights.convert("torchvision:shufflenet_v2_x1_0", sd)
    model = converted.model()                       # lightjax ShuffleNetV2, scale 1.0
    logits = model.apply(converted.variables, images_nhwc)   # = the torch model's logits

The state dict is a mapping of names to ``torch.Tensor`` or numpy arrays (torch itself is not
imported here). Layers are matched by structure: the architecture's ordered layer list
(:mod:`lightjax.interop.torch_architectures`) names each PyTorch prefix and the lightjax module
it fills. Layouts: conv ``(O, I, kh, kw)`` -> HWIO ``(kh, kw, I, O)``; depthwise ``(C, 1, kh,
kw)`` -> ``(kh, kw, 1, C)``; linear ``(out, in)`` -> ``(in, out)``; BatchNorm ``weight``,
``bias``, ``running_mean``, ``running_var`` -> ``params`` ``scale``, ``bias`` and
``batch_stats`` ``mean``, ``var``; ``num_batches_tracked`` is ignored. Every tensor must be
consumed and every lightjax leaf filled; the first missing tensor, wrong shape or left-over
tensor is one :class:`~lightjax.errors.ValidationError` line naming the PyTorch key (and the
expected and actual shapes). A ``module.`` prefix on every key (``nn.DataParallel``) is removed.
Values are stored as float32.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from lightjax import models
from lightjax.errors import ValidationError
from lightjax.interop import torch_architectures as arch_lib

#: BatchNorm tensors -> (collection, lightjax leaf).
BN_TENSORS = {"weight": ("params", "scale"), "bias": ("params", "bias"),
              "running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}
#: PyTorch bookkeeping tensors that hold no weights (skipped when present).
IGNORED_SUFFIXES = (".num_batches_tracked",)
#: HWIO <- OIHW (and (kh, kw, 1, C) <- (C, 1, kh, kw)).
_CONV_PERMUTATION = (2, 3, 1, 0)


@dataclasses.dataclass(frozen=True)
class Converted:
    """A converted state dict.

    Attributes:
      architecture: the :class:`~lightjax.interop.torch_architectures.Architecture`.
      variables: ``{'params': ..., 'batch_stats': ...}`` nested dicts of float32 numpy arrays,
        what ``model.apply`` takes.
      tensors: PyTorch tensors consumed (``num_batches_tracked`` not counted).
    """

    architecture: arch_lib.Architecture
    variables: dict[str, Any]
    tensors: int

    def model(self, **overrides: Any) -> nn.Module:
        """The lightjax model these variables belong to (``overrides``: e.g. ``layers=``)."""
        return build_model(self.architecture, **overrides)

    @property
    def values(self) -> int:
        """Number of scalars converted (parameters and BN statistics)."""
        return sum(int(np.size(v)) for v in jax.tree.leaves(self.variables))


def build_model(architecture: arch_lib.Architecture, **overrides: Any) -> nn.Module:
    """``models.create`` of the architecture's lightjax model and hyper-parameters."""
    return models.create(architecture.model, **{**architecture.hyperparameters, **overrides})


def to_numpy(value: Any, key: str) -> np.ndarray:
    """A ``torch.Tensor`` (duck-typed, torch is not imported) or array-like as numpy; floating
    tensors of any precision (bfloat16 included) as float32."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        tensor = value.detach().cpu()
        if tensor.is_floating_point():
            tensor = tensor.float()
        return tensor.numpy()
    array = np.asarray(value)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number)
                                     or array.dtype == bool):
        raise ValidationError(f"state dict entry {key!r} is a {type(value).__name__}, not a "
                              f"tensor or numeric array")
    return array


def _strip_module_prefix(keys: list[str]) -> dict[str, str]:
    """key -> original key, without a ``module.`` prefix that every key has."""
    if keys and all(k.startswith("module.") for k in keys):
        return {k[len("module."):]: k for k in keys}
    return {k: k for k in keys}


def _expected_leaves(model: nn.Module) -> dict[tuple[str, ...], tuple[int, ...]]:
    """(collection, *module path, leaf) -> shape of every variable of ``model`` (no compute)."""
    shapes = jax.eval_shape(lambda: model.init(
        jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3), jnp.float32), train=False))
    return {k: tuple(v.shape) for k, v in traverse_util.flatten_dict(shapes).items()}


class _Reader:
    """Takes tensors out of a state dict, checking presence and shape against lightjax's."""

    def __init__(self, source: str, state_dict: Mapping[str, Any],
                 expected: dict[tuple[str, ...], tuple[int, ...]]):
        if not isinstance(state_dict, Mapping):
            raise ValidationError(f"a state dict must be a mapping of names to tensors, got "
                                  f"{type(state_dict).__name__}")
        bad = [k for k in state_dict if not isinstance(k, str)]
        if bad:
            raise ValidationError(f"state dict keys must be strings, got {bad[0]!r}")
        self.source = source
        self.state_dict = state_dict
        self.names = _strip_module_prefix(list(state_dict))
        self.expected = expected
        self.used: set[str] = set()
        self.filled: dict[tuple[str, ...], np.ndarray] = {}

    def _hint(self) -> str:
        first = next(iter(self.names), None)
        return (f"the state dict holds {len(self.names)} tensors"
                + (f" (first: {first})" if first else "")
                + f"; is it a {self.source} state dict?")

    def take(self, key: str, leaf: tuple[str, ...], permutation: tuple[int, ...] | None) -> None:
        """Fill lightjax ``leaf`` with tensor ``key`` transposed by ``permutation`` (``None``:
        as it is)."""
        if leaf not in self.expected:
            raise RuntimeError(f"{self.source}: no lightjax variable {'/'.join(leaf)} for {key}")
        shape = self.expected[leaf]
        torch_shape = (shape if permutation is None
                       else tuple(shape[i] for i in np.argsort(permutation)))
        if key not in self.names:
            raise ValidationError(f"{self.source}: missing tensor {key} (expected shape "
                                  f"{torch_shape}); {self._hint()}")
        value = to_numpy(self.state_dict[self.names[key]], key)
        if tuple(value.shape) != torch_shape:
            raise ValidationError(
                f"{self.source}: tensor {key} has shape {tuple(value.shape)}, expected "
                f"{torch_shape} (lightjax {'/'.join(leaf[1:])}): the state dict is of another "
                f"architecture or width")
        if permutation is not None:
            value = np.transpose(value, permutation)
        self.used.add(key)
        self.filled[leaf] = np.ascontiguousarray(value, dtype=np.float32)

    def layer(self, layer: arch_lib.TorchLayer) -> None:
        path = tuple(layer.path.split("/"))
        if layer.kind in ("conv", "depthwise"):
            self.take(f"{layer.torch}.weight", ("params", *path, "kernel"), _CONV_PERMUTATION)
        elif layer.kind == "linear":
            self.take(f"{layer.torch}.weight", ("params", *path, "kernel"), (1, 0))
            self.take(f"{layer.torch}.bias", ("params", *path, "bias"), None)
        elif layer.kind == "bn":
            for tensor, (collection, leaf) in BN_TENSORS.items():
                self.take(f"{layer.torch}.{tensor}", (collection, *path, leaf), None)
        else:
            raise RuntimeError(f"unknown layer kind {layer.kind!r}")

    def finish(self) -> dict[str, Any]:
        left = [k for k in self.names if k not in self.used and not k.endswith(IGNORED_SUFFIXES)]
        if left:
            more = f" and {len(left) - 3} more" if len(left) > 3 else ""
            raise ValidationError(
                f"{self.source}: unexpected tensors {', '.join(left[:3])}{more} (not part of "
                f"{self.source}): the state dict is of another architecture")
        unfilled = sorted(set(self.expected) - set(self.filled))
        if unfilled:  # the architecture table misses a layer: a bug, not bad input
            raise RuntimeError(f"{self.source}: lightjax variables left unfilled: "
                               f"{', '.join('/'.join(k) for k in unfilled[:5])}")
        return traverse_util.unflatten_dict(self.filled)


def convert(source: str, state_dict: Mapping[str, Any],
            width_mult: float | None = None) -> Converted:
    """Convert the PyTorch ``state_dict`` of ``source`` (see
    :func:`lightjax.interop.torch_architectures.sources`) into lightjax variables.

    ``width_mult``: torchvision ``mobilenet_v2``'s width multiplier (default 1.0). Raises
    :class:`~lightjax.errors.ValidationError` (one line) for an unknown source, a missing or
    extra tensor, or a shape of another architecture or width.
    """
    architecture = arch_lib.get(source, width_mult)
    reader = _Reader(source, state_dict, _expected_leaves(build_model(architecture)))
    for layer in architecture.layers:
        reader.layer(layer)
    variables = reader.finish()
    return Converted(architecture, variables, len(reader.used))
