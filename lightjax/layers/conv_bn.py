"""``ConvBN``: convolution -> BatchNorm -> optional activation, the unit every model stacks."""
from __future__ import annotations

import flax.linen as nn
import jax

from lightjax.layers.batch_norm import FUSED_ACTIVATIONS
from lightjax.layers.factory import LayerFactory


class ConvBN(nn.Module):
    """conv (standard / pointwise / group / depthwise) -> BN -> activation. NHWC.

    Submodules are named ``conv``, ``bn`` and ``act`` so parameter paths read
    ``<block>/conv/kernel``, ``<block>/bn/scale``.

    Attributes:
      features: output channels (for ``depthwise`` it must equal the input channels).
      kernel_size, strides: square kernel size and stride.
      groups: group count for a grouped conv (1 = ordinary conv).
      depthwise: a depthwise conv (one k x k filter per channel).
      use_bias: conv bias (off by default: BN follows).
      activation: registered activation name, or ``None`` for a linear output.
    """

    features: int
    kernel_size: int = 1
    strides: int = 1
    groups: int = 1
    depthwise: bool = False
    use_bias: bool = False
    activation: str | None = "relu"
    layers: LayerFactory = LayerFactory()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        if self.depthwise:
            conv = self.layers.depthwise(self.features, self.kernel_size, self.strides,
                                         self.use_bias, name="conv")
        else:
            conv = self.layers.group_conv(self.features, self.groups, self.kernel_size,
                                          self.strides, self.use_bias, name="conv")
        y = conv(x, train=train)
        if self.activation in FUSED_ACTIVATIONS:
            # a parameter-free activation fused into the norm (one backward pass, no extra mask)
            return self.layers.norm(train, name="bn", activation=self.activation)(y)
        y = self.layers.norm(train, name="bn")(y)
        if self.activation is not None:
            y = self.layers.act(self.activation, module_name="act")(y)
        return y
