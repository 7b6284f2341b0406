"""BatchNorm (+ optional fused ReLU / ReLU6) with a closed-form custom VJP in train mode.

:class:`BatchNorm` subclasses :class:`flax.linen.BatchNorm`: same fields, same variables
(``params``: ``scale``, ``bias``; ``batch_stats``: ``mean``, ``var``), same forward numerics
(float32 statistics with flax's fast variance ``E[x^2] - E[x]^2``, ``y = (x - mean) * (scale *
rsqrt(var + eps)) + bias`` cast to the compute dtype) and same running-average update. What
differs is the train-mode backward pass, which autodiff of flax's graph makes several
full-size passes (it also saves ``x - mean`` as a residual). Here it is the standard closed form

    g' = g * act'(y)                              (act: identity, relu or relu6)
    dbias = sum(g'),  dscale = rsqrt(var + eps) * sum(g' * (x - mean))
    dx = scale * r * (g' - mean(g') - xhat * mean(g' * xhat)),   r = rsqrt(var + eps)

i.e. one reduction pass over (g, x) and one elementwise pass (which XLA fuses into the
consumer: the conv's backward); the only residuals are ``x`` and per-channel vectors, the
activation mask is recomputed from ``x``. ``sum(g' * (x - mean))`` is computed as
``sum(g' * x) - mean * sum(g')``: XLA:CPU's reductions want materialized operands, and a centred
copy of every activation was most of the backward's cost (MobileNetV1 0.25, 32x32, batch 128:
step 146 -> 104 ms). Cotangents of the batch statistics (zero in training,
where they only feed ``batch_stats``) are handled too, so the op is a correct VJP everywhere.

``activation`` (``None``, ``'relu'``, ``'relu6'``) fuses that activation after the norm with
``jax.nn``'s derivative convention (0 at the kinks). Configurations this fast path does not
cover (``axis_name``, ``mask``, feature axes other than the last, exact variance,
``force_float32_reductions=False``, no scale or no bias) fall back to flax's implementation
followed by the activation, so results never depend on which path ran.

``unbiased_variance=True`` (opt-in; off by default) updates the running variance with the batch
variance times ``n / (n - 1)`` (``n``: values per channel in the batch, N*H*W), PyTorch's
convention (``torch.nn.BatchNorm2d``): the batch is still normalized with the biased variance,
only ``batch_stats['var']`` differs. For users who continue training a model imported from
PyTorch (:mod:`lightjax.interop.torch_weights`) and want its running statistics to evolve as
they would in PyTorch. With ``n == 1`` the factor is 1 (PyTorch refuses such a batch).
"""
from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax
from lightjax.errors import ValidationError

#: Input dtypes of the fast path (statistics in float32, as flax computes them for these).
_FAST_DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))

#: Activations that can be fused into the norm (value and derivative convention of jax.nn).
FUSED_ACTIVATIONS = ("relu", "relu6")


def _activate(y: jax.Array, activation: str | None) -> jax.Array:
    if activation is None:
        return y
    if activation == "relu":
        return jax.nn.relu(y)
    if activation == "relu6":
        return jax.nn.relu6(y)
    raise ValidationError(f"activation {activation!r} cannot be fused into BatchNorm; allowed: "
                     f"None, {', '.join(FUSED_ACTIVATIONS)}")


def _active(y: jax.Array, activation: str | None) -> jax.Array | None:
    """Where act'(y) is 1 (it is 0 elsewhere); None for the identity."""
    if activation is None:
        return None
    if activation == "relu":
        return y > 0
    return (y > 0) & (y < 6)


def _stats(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """flax's fast-variance statistics over all but the last axis, in float32."""
    axes = tuple(range(x.ndim - 1))
    xf = x.astype(jnp.float32)
    mean = xf.mean(axes)
    mean2 = lax.square(xf).mean(axes)
    return mean, jnp.maximum(0.0, mean2 - lax.square(mean))


def _normalize(x, mean, var, scale, bias, epsilon, dtype):
    """flax's ``_normalize`` (same operation order), result in ``dtype``."""
    mul = lax.rsqrt(var + epsilon) * scale
    y = (x - mean) * mul + bias
    return y.astype(dtype), mul


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5))
def batch_norm_train(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float,
                     dtype: Any, activation: str | None):
    """Train-mode BatchNorm over all but the last axis, then ``activation``.

    Returns ``(y, mean, var)``: ``y`` in ``dtype``, the batch statistics in float32 (at least).
    """
    mean, var = _stats(x)
    y, _ = _normalize(x, mean, var, scale, bias, epsilon, dtype)
    return _activate(y, activation), mean, var


def _bn_fwd(x, scale, bias, epsilon, dtype, activation):
    mean, var = _stats(x)
    y, _ = _normalize(x, mean, var, scale, bias, epsilon, dtype)
    return (_activate(y, activation), mean, var), (x, mean, var, scale, bias)


def _bn_bwd(epsilon, dtype, activation, residuals, cotangents):
    x, mean, var, scale, bias = residuals
    g, g_mean, g_var = cotangents
    stat_dtype = mean.dtype
    m = x.size // x.shape[-1]
    axes = tuple(range(x.ndim - 1))
    r = lax.rsqrt(var + epsilon)
    g = g.astype(stat_dtype)
    active = _active(_normalize(x, mean, var, scale, bias, epsilon, dtype)[0], activation)
    if active is not None:
        g = jnp.where(active, g, jnp.zeros((), stat_dtype))
    # sum(g * (x - mean)) as sum(g * x) - mean * sum(g): both sums read only (g, x), so no
    # centred copy of x is materialized
    sum_g = g.sum(axes)
    sum_gx = (g * x.astype(stat_dtype)).sum(axes)
    sum_gxc = sum_gx - mean * sum_g
    d_bias = sum_g
    d_scale = sum_gxc * r
    a = (scale * r).astype(stat_dtype)
    # dx = a * g + b * (x - mean) + c, per-channel coefficients (statistics' cotangents included)
    b = -a * r * r * sum_gxc / m + 2.0 * g_var / m
    c = -a * sum_g / m + g_mean / m
    dx = a * g + b * x.astype(stat_dtype) + (c - b * mean)
    return (dx.astype(x.dtype), d_scale.astype(scale.dtype), d_bias.astype(bias.dtype))


batch_norm_train.defvjp(_bn_fwd, _bn_bwd)


class BatchNorm(nn.BatchNorm):
    """:class:`flax.linen.BatchNorm` with a fast train-mode backward and a fusable activation.

    Attributes (besides flax's):
      activation: ``None``, ``'relu'`` or ``'relu6'``, applied after the norm.
      unbiased_variance: update the running variance with ``var * n / (n - 1)`` (PyTorch's
        convention, module docstring) instead of the biased batch variance.
    """

    activation: str | None = None
    unbiased_variance: bool = False

    @nn.compact
    def __call__(self, x, use_running_average: bool | None = None, *, mask=None):
        if self.activation is not None and self.activation not in FUSED_ACTIVATIONS:
            raise ValidationError(f"BatchNorm {self.name!r}: activation {self.activation!r} cannot be "
                             f"fused; allowed: None, {', '.join(FUSED_ACTIVATIONS)}")
        call_arg = use_running_average
        use_running_average = nn.merge_param(
            "use_running_average", self.use_running_average, use_running_average)
        axis = self.axis if isinstance(self.axis, int) else tuple(self.axis)
        fast = (not use_running_average and mask is None and self.axis_name is None
                and axis in (-1, x.ndim - 1, (-1,), (x.ndim - 1,)) and self.use_fast_variance
                and self.force_float32_reductions and self.use_scale and self.use_bias
                and x.ndim >= 2 and not self.is_initializing()
                and jnp.dtype(x.dtype) in _FAST_DTYPES)
        if not fast:
            y = self._flax_call(x, call_arg, mask, use_running_average)
            return _activate(y, self.activation)
        features = (x.shape[-1],)
        ra_mean = self.variable("batch_stats", "mean",
                                lambda s: jnp.zeros(s, jnp.float32), features)
        ra_var = self.variable("batch_stats", "var", lambda s: jnp.ones(s, jnp.float32), features)
        scale = self.param("scale", self.scale_init, features, self.param_dtype)
        bias = self.param("bias", self.bias_init, features, self.param_dtype)
        # flax's output dtype: the compute dtype, else x, scale and bias promoted
        dtype = nn.dtypes.canonicalize_dtype(x, scale, bias, dtype=self.dtype)
        y, mean, var = batch_norm_train(
            x, scale.astype(jnp.float32), bias.astype(jnp.float32), self.epsilon,
            jnp.dtype(dtype), self.activation)
        if self.unbiased_variance:
            var = var * _bessel(x.size // x.shape[-1])
        ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
        ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var
        return y

    def _flax_call(self, x, call_arg, mask, use_running_average: bool):
        """flax's implementation; with ``unbiased_variance`` its running-variance update
        ``new = m * old + (1 - m) * v`` becomes ``m * old + (1 - m) * v * n / (n - 1)``, i.e.
        ``new + (new - m * old) / (n - 1)``."""
        update = (self.unbiased_variance and not use_running_average
                  and not self.is_initializing())
        if update and (mask is not None or self.axis_name is not None):
            raise ValidationError(f"BatchNorm {self.name!r}: unbiased_variance is not supported "
                                  f"with mask or axis_name; allowed: unbiased_variance=False")
        old = self.get_variable("batch_stats", "var") if update else None
        y = super().__call__(x, call_arg, mask=mask)
        if update and old is not None:
            axes = (self.axis,) if isinstance(self.axis, int) else tuple(self.axis)
            features = 1
            for a in axes:
                features *= x.shape[a]
            n = x.size // features
            new = self.get_variable("batch_stats", "var")
            if n > 1:
                self.put_variable("batch_stats", "var",
                                  new + (new - self.momentum * old) / (n - 1))
        return y


def _bessel(n: int) -> float:
    """PyTorch's ``n / (n - 1)`` running-variance factor (1 for ``n == 1``)."""
    return n / (n - 1) if n > 1 else 1.0
