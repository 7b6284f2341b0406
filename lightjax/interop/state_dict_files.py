"""Reading a PyTorch state dict from a file: ``.pth``/``.pt``/``.bin`` (``torch.save``),
``.safetensors`` (the Hugging Face hub's format, e.g. timm's ``model.safetensors``) or ``.npz``.

``torch.load`` runs with ``weights_only=True`` (no pickled code is executed) on the CPU. A
training checkpoint that wraps the weights (``{'state_dict': ...}`` or ``{'model': ...}``) is
unwrapped. A file holding a whole pickled ``nn.Module`` is refused: save ``model.state_dict()``.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from lightjax.errors import ValidationError

TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
SUFFIXES = TORCH_SUFFIXES + (".safetensors", ".npz")
#: Keys under which training checkpoints commonly keep the model's state dict.
WRAPPER_KEYS = ("state_dict", "model")


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:200]}" if text else type(err).__name__


def _torch_load(path: str) -> Any:
    try:
        import torch
    except ImportError:
        raise ValidationError(f"reading {path} needs PyTorch (pip install torch), or save the "
                              f"state dict as .safetensors or .npz") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a foreign or damaged file: one line
        raise ValidationError(f"{path} is not a PyTorch state dict torch.load(weights_only=True) "
                              f"can read ({_one_line(err)}); save model.state_dict()") from err


def _unwrap(obj: Any, path: str) -> Mapping[str, Any]:
    if isinstance(obj, Mapping):
        for key in WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(k, str) for k in inner):
                return inner
        return obj
    raise ValidationError(f"{path} holds a {type(obj).__name__}, not a state dict; save "
                          f"model.state_dict()")


def load(path: str) -> Mapping[str, Any]:
    """The state dict stored in ``path`` (names -> tensors or numpy arrays)."""
    path = os.path.expanduser(os.fspath(path))
    if not os.path.isfile(path):
        raise ValidationError(f"state dict file {path} does not exist")
    lower = path.lower()
    if lower.endswith(".safetensors"):
        try:
            from safetensors.numpy import load_file
        except ImportError:
            raise ValidationError(f"reading {path} needs safetensors (pip install "
                                  f"safetensors)") from None
        try:
            return load_file(path)
        except Exception as err:
            raise ValidationError(f"{path} is not a readable safetensors file "
                                  f"({_one_line(err)})") from err
    if lower.endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as arrays:
                return {k: arrays[k] for k in arrays.files}
        except (OSError, ValueError) as err:
            raise ValidationError(f"{path} is not a readable .npz file ({_one_line(err)})") \
                from err
    if lower.endswith(TORCH_SUFFIXES):
        return _unwrap(_torch_load(path), path)
    raise ValidationError(f"state dict file {path}: unknown suffix; allowed: "
                          f"{', '.join(SUFFIXES)}")
