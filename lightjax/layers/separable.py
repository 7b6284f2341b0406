"""Depthwise-separable unit of MobileNetV1 and its MobileNet-rhs variant."""
from __future__ import annotations

import flax.linen as nn
import jax

from lightjax.layers.conv_bn import ConvBN
from lightjax.layers.factory import LayerFactory
from lightjax.layers.squeeze_excite import SqueezeExcite

VARIANTS = ("standard", "rhs")


class SeparableUnit(nn.Module):
    """dw3x3 -> BN -> act -> [SE] -> pw1x1 -> BN -> act (``variant='standard'``, Howard et al.).

    ``variant='rhs'`` (MobileNet-rhs): the pointwise conv's activation is removed, i.e.
    dw3x3 -> BN -> act -> pw1x1 -> BN; the model picks ReLU-h-swish as ``dw_activation`` for it.

    Attributes:
      features: pointwise output channels.
      strides: depthwise stride.
      dw_activation / pw_activation: activation names (``pw_activation=None``: linear).
      pointwise_bias: bias in the pointwise conv (the MobileNet-rhs counting convention).
      se_reduction: 0 for no SE block, else its reduction r (applied after the depthwise conv).
    """

    features: int
    strides: int = 1
    dw_activation: str = "relu"
    pw_activation: str | None = "relu"
    pointwise_bias: bool = False
    se_reduction: int = 0
    layers: LayerFactory = LayerFactory()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        y = ConvBN(x.shape[-1], 3, self.strides, depthwise=True, activation=self.dw_activation,
                   layers=self.layers, name="dw")(x, train)
        if self.se_reduction:
            y = SqueezeExcite(self.se_reduction, layers=self.layers, name="se")(y, train)
        return ConvBN(self.features, 1, use_bias=self.pointwise_bias,
                      activation=self.pw_activation, layers=self.layers, name="pw")(y, train)
