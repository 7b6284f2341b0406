r"""Binary quantizers with straight-through estimators (larq's names and numerics).

Every quantizer's forward pass is a sign-like step function, whose true derivative is 0 almost
everywhere; the backward pass instead uses a *pseudo-gradient* :math:`q'(x)` so that
``jax.grad`` returns ``q'(x) * upstream``. They are implemented with ``jax.custom_jvp`` and so
work under ``jit``, ``vmap``, ``grad`` and forward mode; the output has the input's dtype.

========================  ========================  ==============================================
name                      forward                   pseudo-gradient :math:`q'(x)`
========================  ========================  ==============================================
``ste_sign``              :math:`\mathrm{sign}(x)`  :math:`1[|x| \le c]` (1 everywhere if c=None)
``approx_sign``           :math:`\mathrm{sign}(x)`  :math:`(2 - 2|x|)\,1[|x| \le 1]`
``swish_sign``            :math:`\mathrm{sign}(x)`  :math:`\beta(2 - \beta x\tanh(\beta x/2))
                                                    / (1 + \cosh \beta x)`
``magnitude_aware_sign``  :math:`s\,\mathrm{sign}`  :math:`s\,1[|w| \le c]`, s = stop_grad(mean|w|)
``ste_heaviside``         :math:`1[x > 0]`          :math:`1[|x| \le c]`
========================  ========================  ==============================================

with :math:`\mathrm{sign}(x) = +1` for :math:`x \ge 0` and :math:`-1` otherwise (so sign(0) = +1,
unlike ``jnp.sign``; NaN maps to -1). ``get(name, **kwargs)`` looks a quantizer up by name.
"""
from __future__ import annotations

import functools
import inspect
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from lightjax.errors import InvalidTypeError, ValidationError

Array = jax.Array
Quantizer = Callable[[Array], Array]


def sign(x: Array) -> Array:
    """+1 where ``x >= 0``, -1 elsewhere (NaN too), in ``x``'s dtype; plain JAX gradient (0)."""
    x = jnp.asarray(x)
    return jnp.where(x >= 0, jnp.ones_like(x), -jnp.ones_like(x))


def _heaviside(x: Array) -> Array:
    x = jnp.asarray(x)
    return jnp.where(x > 0, jnp.ones_like(x), jnp.zeros_like(x))


def _with_pseudo_grad(forward: Callable[[Array], Array],
                      derivative: Callable[..., Array]) -> Callable[..., Array]:
    """``forward(x)`` whose derivative w.r.t. ``x`` is ``derivative(x, *params)`` (elementwise).

    The parameters get no gradient. The derivative is evaluated in at least float32 and cast to
    the tangent's dtype, so bfloat16 inputs get accurately rounded pseudo-gradients.
    """

    @jax.custom_jvp
    def fn(x, *params):
        return forward(x)

    @fn.defjvp
    def _jvp(primals, tangents):
        x, *params = primals
        x_dot = tangents[0]
        wide = x.astype(jnp.promote_types(x.dtype, jnp.float32))
        return fn(x, *params), derivative(wide, *params).astype(x_dot.dtype) * x_dot

    return fn


def _check_positive(name: str, value: Any, fn: str, none_ok: bool = False) -> Any:
    """``value`` if it is a positive finite number (or a traced array, not checkable)."""
    if value is None and none_ok:
        return None
    if isinstance(value, jax.core.Tracer):
        return value
    allowed = "a positive finite number" + (" or None" if none_ok else "")
    array = np.asarray(value)
    if array.ndim or array.dtype.kind not in "iuf" or not 0 < float(array) < math.inf:
        raise ValidationError(f"{fn}: {name} must be {allowed}, got {value!r}")
    return value


_clipped = _with_pseudo_grad(sign, lambda x, c: (jnp.abs(x) <= c).astype(x.dtype))
_identity = _with_pseudo_grad(sign, lambda x: jnp.ones_like(x))
_clipped_heaviside = _with_pseudo_grad(_heaviside, lambda x, c: (jnp.abs(x) <= c).astype(x.dtype))
_identity_heaviside = _with_pseudo_grad(_heaviside, lambda x: jnp.ones_like(x))
_approx = _with_pseudo_grad(sign, lambda x: jnp.where(jnp.abs(x) <= 1, 2 - 2 * jnp.abs(x), 0))


def _swish_derivative(x: Array, beta: Any) -> Array:
    bx = beta * x
    return beta * (2 - bx * jnp.tanh(bx / 2)) / (1 + jnp.cosh(bx))


_swish = _with_pseudo_grad(sign, _swish_derivative)


def ste_sign(x: Array, clip_value: float | None = 1.0) -> Array:
    r"""Sign with the straight-through estimator (BinaryNet, Courbariaux et al. 2016).

    Forward :math:`\mathrm{sign}(x)`; pseudo-gradient :math:`1` where :math:`|x| \le c`
    (``c = clip_value``, the bound included as in larq) and :math:`0` where :math:`|x| > c`.
    ``clip_value=None``: the identity gradient everywhere.
    """
    if _check_positive("clip_value", clip_value, "ste_sign", none_ok=True) is None:
        return _identity(x)
    return _clipped(x, clip_value)


def approx_sign(x: Array) -> Array:
    r"""Sign with Bi-Real Net's ApproxSign gradient (Liu et al. 2018).

    Forward :math:`\mathrm{sign}(x)`; pseudo-gradient :math:`2 - 2|x|` where :math:`|x| \le 1`,
    else 0 (the derivative of the piecewise quadratic that approximates the sign).
    """
    return _approx(x)


def swish_sign(x: Array, beta: float = 5.0) -> Array:
    r"""Sign with BNN+'s SignSwish gradient (Darabi et al. 2018).

    Forward :math:`\mathrm{sign}(x)`; pseudo-gradient, the derivative of
    :math:`2\sigma(\beta x)(1 + \beta x(1 - \sigma(\beta x))) - 1`:

    .. math:: q'(x) = \frac{\beta\,(2 - \beta x \tanh(\beta x / 2))}{1 + \cosh(\beta x)}

    Larger ``beta`` is a closer approximation of the sign; :math:`q'(0) = \beta`.
    """
    return _swish(x, _check_positive("beta", beta, "swish_sign"))


def magnitude_aware_sign(w: Array, clip_value: float | None = 1.0) -> Array:
    r"""Scaled sign for weights (Bi-Real Net): :math:`s \cdot \mathrm{sign}(w)`.

    :math:`s` is per output channel (the last axis): the mean of :math:`|w|` over all the other
    axes (over all of ``w`` for rank 1, giving one scale), under ``stop_gradient``. The
    pseudo-gradient is that of :func:`ste_sign`, scaled: :math:`s \cdot 1[|w| \le c]`.
    (larq's rank-1 case would use :math:`|w|` elementwise.)
    """
    w = jnp.asarray(w)
    if w.ndim < 1:
        raise ValidationError(f"magnitude_aware_sign: weights must have rank >= 1, "
                              f"got shape {w.shape}")
    axes = tuple(range(w.ndim - 1)) if w.ndim > 1 else (0,)
    scale = jax.lax.stop_gradient(jnp.mean(jnp.abs(w), axis=axes, keepdims=True))
    return scale * ste_sign(w, clip_value)


def ste_heaviside(x: Array, clip_value: float | None = 1.0) -> Array:
    r"""Heaviside step with the straight-through estimator (larq's AND-binarization).

    Forward :math:`1` where :math:`x > 0`, :math:`0` where :math:`x \le 0`; pseudo-gradient
    :math:`1[|x| \le c]` as for :func:`ste_sign` (``clip_value=None``: identity everywhere).
    """
    if _check_positive("clip_value", clip_value, "ste_heaviside", none_ok=True) is None:
        return _identity_heaviside(x)
    return _clipped_heaviside(x, clip_value)


QUANTIZERS: dict[str, Callable[..., Array]] = {
    "ste_sign": ste_sign,
    "approx_sign": approx_sign,
    "swish_sign": swish_sign,
    "magnitude_aware_sign": magnitude_aware_sign,
    "ste_heaviside": ste_heaviside,
}


def names() -> tuple[str, ...]:
    """The registered quantizer names, sorted."""
    return tuple(sorted(QUANTIZERS))


def register(name: str, fn: Callable[..., Array]) -> None:
    """Register ``fn(x, **kwargs) -> array`` under ``name``.

    ``fn`` must accept a float array of any rank >= 1 (``get`` traces it on a (2, 2) array).
    Re-registering the same ``fn`` is a no-op; another ``fn`` under a taken name is an error.
    """
    if not isinstance(name, str) or not name:
        raise InvalidTypeError(f"quantizer name must be a non-empty string, got {name!r}")
    if not callable(fn):
        raise InvalidTypeError(f"quantizer {name!r} must be callable, got {type(fn).__name__}")
    if QUANTIZERS.get(name, fn) is not fn:
        raise ValidationError(f"quantizer {name!r} is already registered; pick another name")
    QUANTIZERS[name] = fn


def get(name: str, **kwargs: Any) -> Quantizer:
    """The quantizer ``name`` with ``kwargs`` bound: ``x -> QUANTIZERS[name](x, **kwargs)``.

    Unknown names and keyword arguments the quantizer does not take raise ``ValidationError``;
    the values are checked by tracing the quantizer once on an abstract (2, 2) float32 array.
    """
    if name not in QUANTIZERS:
        raise ValidationError(f"unknown quantizer {name!r}; allowed: {', '.join(names())}")
    fn = QUANTIZERS[name]
    signature = inspect.signature(fn)
    allowed = [p.name for p in list(signature.parameters.values())[1:]
               if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    try:
        signature.bind(None, **kwargs)
    except TypeError as e:
        unknown = [k for k in kwargs if k not in allowed]
        what = f"takes no argument {unknown[0]!r}" if unknown else f"cannot take {kwargs}: {e}"
        raise ValidationError(f"quantizer {name!r} {what}; allowed: "
                              f"{', '.join(allowed) or '(none)'}") from None
    quantizer = functools.partial(fn, **kwargs)
    jax.eval_shape(quantizer, jax.ShapeDtypeStruct((2, 2), jnp.float32))
    return quantizer
