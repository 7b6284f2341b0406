"""Squeeze-and-excitation block (Hu et al.): channel gating from globally pooled features."""
from __future__ import annotations

import flax.linen as nn
import jax

from lightjax.layers.factory import LayerFactory


def reduced_channels(channels: int, reduction: int) -> int:
    """Hidden width of the excitation MLP: ``channels // reduction``, at least 1."""
    return max(1, channels // reduction)


class SqueezeExcite(nn.Module):
    """x * gate(FC(C/r -> C)(act(FC(C -> C/r)(mean_hw(x))))). NHWC in and out.

    ``train`` is passed to the two dense layers (their hooks see it).

    Attributes:
      reduction: r (16 in the SE paper).
      activation: hidden activation name (``'relu'``).
      gate: gating activation name (``'sigmoid'``; MobileNetV3 uses ``'hard_sigmoid'``).
    """

    reduction: int = 16
    activation: str = "relu"
    gate: str = "sigmoid"
    layers: LayerFactory = LayerFactory()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        channels = x.shape[-1]
        s = x.mean(axis=(1, 2), keepdims=True)
        s = self.layers.dense(reduced_channels(channels, self.reduction), name="reduce")(
            s, train=train)
        s = self.layers.act(self.activation, module_name="act")(s)
        s = self.layers.dense(channels, name="expand")(s, train=train)
        return x * self.layers.act(self.gate, module_name="gate")(s).astype(x.dtype)
