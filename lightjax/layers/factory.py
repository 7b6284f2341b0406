"""``LayerFactory``: the one object through which models and blocks create their layers.

Models hold a ``layers: LayerFactory`` field (like the flax ImageNet example's ``conv``/``norm``
fields) and never instantiate convolutions directly, so swapping the depthwise implementation,
the compute dtype, or installing compression hooks is one argument::

    from lightjax import models
    from lightjax.layers import LayerFactory
    model = models.create('mobilenet_v1', layers=LayerFactory(depthwise_impl='xla'))

Per-layer hooks and padding constants are rules (:class:`lightjax.layers.rules.Rule`)::

    from lightjax.layers.rules import Rule
    every_conv_but_first = Rule(module_path=r'(?!stem/|head/).*',
                                kinds=('standard', 'depthwise', 'pointwise', 'group', 'transposed'),
                                kernel_hook=my_kernel_hook, pad_value=-1.0)
    model = models.create('mobilenet_v1', layers=LayerFactory(rules=(every_conv_but_first,)))
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

from lightjax.layers import activations
from lightjax.layers import batch_norm as bn_lib
from lightjax.layers import conv as conv_lib
from lightjax.layers import depthwise as dw
from lightjax.layers import hooks
from lightjax.layers import rules as rules_lib
from lightjax.layers.padding import check_padding


@dataclasses.dataclass(frozen=True)
class LayerFactory:
    """Creates convolutions, dense layers, norms and activations with shared settings.

    Attributes:
      depthwise_impl: ``'auto'``, ``'shifted'`` or ``'xla'`` (see :mod:`lightjax.layers.depthwise`).
      padding: ``'symmetric'`` (PyTorch, default) or ``'same'`` (TensorFlow).
      kernel_hook / input_hook: compression hooks ``hook(layer, value, train)`` applied by every
        conv and dense layer: shorthand for a catch-all rule applied before ``rules``.
      rules: per-layer :class:`lightjax.layers.rules.Rule` tuple (hooks, padding constant), matched
        by module path and layer kind; every matching rule applies, in order.
      dtype: computation dtype (e.g. ``jnp.bfloat16``); parameters stay ``param_dtype``.
      bn_momentum / bn_epsilon: BatchNorm running-average momentum and epsilon (flax convention:
        ``new = momentum * old + (1 - momentum) * batch``; 0.9 equals PyTorch's 0.1).
      bn_unbiased_variance: update BN running variances with PyTorch's unbiased batch variance
        (``n / (n - 1)``; see :mod:`lightjax.layers.batch_norm`); off by default.
    """

    depthwise_impl: str = "auto"
    padding: str = "symmetric"
    kernel_hook: hooks.KernelHook | None = None
    input_hook: hooks.InputHook | None = None
    rules: tuple[rules_lib.Rule, ...] = ()
    dtype: Any = None
    param_dtype: Any = jnp.float32
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    bn_unbiased_variance: bool = False

    def __post_init__(self) -> None:
        dw.check(self.depthwise_impl)  # resolved at call time: importing starts no backend
        check_padding(self.padding)
        hooks.check(self.kernel_hook, "LayerFactory: kernel_hook")
        hooks.check(self.input_hook, "LayerFactory: input_hook")
        object.__setattr__(self, "rules", rules_lib.check_rules(self.rules, "LayerFactory: rules"))

    def _common(self, bias_init: Callable | None = None) -> dict[str, Any]:
        extra = {} if bias_init is None else {"bias_init": bias_init}
        return dict(kernel_hook=self.kernel_hook, input_hook=self.input_hook, rules=self.rules,
                    dtype=self.dtype, param_dtype=self.param_dtype, **extra)

    def conv(self, features: int, kernel_size: int = 3, strides: int = 1,
             use_bias: bool = False, name: str | None = None,
             bias_init: Callable | None = None) -> nn.Module:
        """Standard convolution (a 1x1 one becomes a matmul ``PointwiseConv``); ``bias_init``:
        the bias initializer (default zeros)."""
        if kernel_size == 1:
            return self.pointwise(features, strides, use_bias, name, bias_init)
        return conv_lib.Conv(features, kernel_size=kernel_size, strides=strides,
                             use_bias=use_bias, padding=self.padding, name=name,
                             **self._common(bias_init))

    def pointwise(self, features: int, strides: int = 1, use_bias: bool = False,
                  name: str | None = None, bias_init: Callable | None = None) -> nn.Module:
        return conv_lib.PointwiseConv(features, strides=strides, use_bias=use_bias, name=name,
                                      **self._common(bias_init))

    def group_conv(self, features: int, groups: int, kernel_size: int = 1, strides: int = 1,
                   use_bias: bool = False, name: str | None = None) -> nn.Module:
        if groups == 1:
            return self.conv(features, kernel_size, strides, use_bias, name)
        return conv_lib.GroupConv(features, groups=groups, kernel_size=kernel_size,
                                  strides=strides, use_bias=use_bias, padding=self.padding,
                                  name=name, **self._common())

    def depthwise(self, features: int, kernel_size: int = 3, strides: int = 1,
                  use_bias: bool = False, name: str | None = None) -> nn.Module:
        return conv_lib.DepthwiseConv(features, kernel_size=kernel_size, strides=strides,
                                      use_bias=use_bias, padding=self.padding,
                                      impl=self.depthwise_impl, name=name, **self._common())

    def conv_transpose(self, features: int, kernel_size: int = 4, strides: int = 2,
                       use_bias: bool = False, name: str | None = None) -> nn.Module:
        """Transposed convolution: (N, H, W, Cin) -> (N, H * strides, W * strides, features),
        cropped per the factory's ``padding`` (see :class:`lightjax.layers.conv.ConvTranspose`)."""
        return conv_lib.ConvTranspose(features, kernel_size=kernel_size, strides=strides,
                                      use_bias=use_bias, padding=self.padding, name=name,
                                      **self._common())

    def dense(self, features: int, use_bias: bool = True, name: str | None = None) -> nn.Module:
        return conv_lib.Dense(features, use_bias=use_bias, name=name, **self._common())

    def norm(self, train: bool, name: str | None = None,
             activation: str | None = None) -> nn.Module:
        """BatchNorm over the channel axis; batch statistics when ``train``.

        A :class:`lightjax.layers.batch_norm.BatchNorm` (a ``flax.linen.BatchNorm`` with the same
        variables and forward numerics, and a closed-form train-mode backward). ``activation``
        (``None``, ``'relu'``, ``'relu6'``, see ``batch_norm.FUSED_ACTIVATIONS``) is fused after it.
        """
        return bn_lib.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                                epsilon=self.bn_epsilon, dtype=self.dtype,
                                param_dtype=self.param_dtype, activation=activation,
                                unbiased_variance=self.bn_unbiased_variance, name=name)

    def act(self, name: str, module_name: str | None = None, **kwargs: Any) -> nn.Module:
        """Activation by registered name (see :mod:`lightjax.layers.activations`)."""
        return activations.create(name, name=module_name, **kwargs)
