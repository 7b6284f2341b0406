"""Activation functions and a by-name registry.

Every function is element-wise: it maps an array of any shape ``(...)`` to an
array of the same shape and dtype (bf16 in -> bf16 out).  Modules act on NHWC
(or any channels-last) tensors of shape ``(..., C)``; learnable parameters are
stored in ``param_dtype`` (float32 by default) and cast to ``x.dtype`` on use.

Derivative conventions at kinks (deterministic, tested):

* ``relu``: 0 at x=0.  ``relu6``: 0 at x=0 and at x=6 (``jax.nn`` convention).
* ``leaky_relu`` / ``RReLU``: the negative-side slope at x=0 (so slope 0 gives
  exactly ``relu``'s gradient); the positive branch is taken for x > 0 only.
* ``hard_sigmoid``: 0 at x=-3 and x=3.  ``hard_swish``: 0 at x=-3, 1 at x=3
  (interior derivative is (2x+3)/6).
* ``relu_hswish``: value 0 at x=0 with derivative hard_swish'(0) = 0.5 (the
  left derivative; the right derivative is 1).

Registry names: see :func:`names`; in addition ``leaky_relu_<slope>`` (e.g.
``leaky_relu_0.1``) is parsed into a leaky ReLU with that slope.
"""

from __future__ import annotations

import functools
import inspect
import math
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
from lightjax.errors import InvalidTypeError, ValidationError

Array = jax.Array
Dtype = Any

__all__ = [
    "relu", "relu6", "leaky_relu", "swish", "hard_sigmoid", "hard_swish",
    "relu_hswish", "sigmoid", "identity", "Activation", "RReLU", "Swish",
    "create", "names", "register", "TRAINABLE_PARAMS", "set_trainable_init",
]


# --------------------------------------------------------------------------
# Pure functions: (...) -> (...), same dtype as x.
# --------------------------------------------------------------------------
def identity(x: ArrayLike) -> Array:
    """x (no activation: binary networks use the sign of their inputs as the non-linearity)."""
    return jnp.asarray(x)


def relu(x: ArrayLike) -> Array:
    """max(x, 0). Shape (...) -> (...). Derivative 0 at x=0."""
    return jax.nn.relu(x)


def relu6(x: ArrayLike) -> Array:
    """min(max(x, 0), 6). Shape (...) -> (...). Derivative 0 at x=0 and x=6."""
    return jax.nn.relu6(x)


def leaky_relu(x: ArrayLike, negative_slope: float = 0.01) -> Array:
    """x for x > 0, negative_slope * x otherwise. Shape (...) -> (...).

    Derivative at x=0 is ``negative_slope``.
    """
    x = jnp.asarray(x)
    return jnp.where(x > 0, x, negative_slope * x)


def sigmoid(x: ArrayLike) -> Array:
    """1 / (1 + exp(-x)). Shape (...) -> (...)."""
    return jax.nn.sigmoid(x)


def swish(x: ArrayLike, beta: ArrayLike = 1.0) -> Array:
    """x * sigmoid(beta * x). Shape (...) -> (...); ``beta`` scalar/broadcastable.

    beta=1 is SiLU, beta=0 gives x/2, beta -> inf approaches relu.
    An array ``beta`` is cast to ``x.dtype``.
    """
    x = jnp.asarray(x)
    if not isinstance(beta, (int, float)):
        beta = jnp.asarray(beta).astype(x.dtype)
    return x * jax.nn.sigmoid(beta * x)


def hard_sigmoid(x: ArrayLike) -> Array:
    """relu6(x + 3) / 6. Shape (...) -> (...). Derivative 0 at x = +-3."""
    return relu6(jnp.asarray(x) + 3.0) / 6.0


def hard_swish(x: ArrayLike) -> Array:
    """x * relu6(x + 3) / 6. Shape (...) -> (...).

    Derivative: 0 for x <= -3, (2x+3)/6 on (-3, 3), 1 for x >= 3.
    """
    x = jnp.asarray(x)
    return x * hard_sigmoid(x)


def relu_hswish(x: ArrayLike) -> Array:
    """x for x > 0, hard_swish(x) for x <= 0. Shape (...) -> (...).

    Value 0 at x=0; derivative at exactly 0 is hard_swish'(0) = 0.5.
    """
    x = jnp.asarray(x)
    return jnp.where(x > 0, x, hard_swish(x))


# --------------------------------------------------------------------------
# Modules: (..., C) -> (..., C).
# --------------------------------------------------------------------------
class Activation(nn.Module):
    """Stateless wrapper around an element-wise ``fn``: (..., C) -> (..., C)."""

    fn: Callable[[Array], Array]

    def __call__(self, x: ArrayLike) -> Array:
        return self.fn(x)


class RReLU(nn.Module):
    """Learnable per-channel negative slope (PReLU-style "RReLU").

    f(x) = x for x > 0, a_c * x otherwise; x: (..., C) -> (..., C).
    Param ``slope``: shape (C,), collection ``params``, init ``slope_init``.
    Slope 0 gives relu. Derivative w.r.t. x at x=0 is a_c.
    """

    slope_init: float = 0.25
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: ArrayLike) -> Array:
        x = jnp.asarray(x)
        slope = self.param(
            "slope", nn.initializers.constant(self.slope_init),
            (x.shape[-1],), self.param_dtype)
        return jnp.where(x > 0, x, slope.astype(x.dtype) * x)


class Swish(nn.Module):
    """x * sigmoid(beta * x); x: (..., C) -> (..., C).

    If ``trainable``, ``beta`` is a scalar param (shape ()) initialised to
    ``beta_init``; otherwise it is the fixed constant ``beta_init`` (no params).
    """

    beta_init: float = 1.0
    trainable: bool = False
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: ArrayLike) -> Array:
        beta: ArrayLike = self.beta_init
        if self.trainable:
            beta = self.param("beta", nn.initializers.constant(self.beta_init),
                              (), self.param_dtype)
        return swish(x, beta)


#: Leaf names of trainable activation parameters (RReLU ``slope``, trainable Swish ``beta``).
TRAINABLE_PARAMS = ("slope", "beta")


def set_trainable_init(params: Any, value: ArrayLike) -> Any:
    """``params`` with every trainable activation parameter (:data:`TRAINABLE_PARAMS`) set to
    ``value`` (a float or a traced scalar, so sweep members can each start from their own init).

    ``ValueError`` when the model has no trainable activation parameters.
    """
    found = []

    def fill(path, leaf):
        if getattr(path[-1], "key", None) in TRAINABLE_PARAMS:
            found.append(path)
            return jnp.full(jnp.shape(leaf), value, jnp.result_type(leaf))
        return leaf

    out = jax.tree_util.tree_map_with_path(fill, params)
    if not found:
        raise ValidationError("activation_init is set but the model has no trainable activation "
                         f"parameters ({'/'.join(TRAINABLE_PARAMS)}); use a trainable activation "
                         "such as 'rrelu' or 'swish_trainable'")
    return out


# --------------------------------------------------------------------------
# Registry.
# --------------------------------------------------------------------------
Factory = Callable[..., nn.Module]
_LEAKY_PREFIX = "leaky_relu_"


def _stateless(fn: Callable[..., Array]) -> Factory:
    """Factory building ``Activation(fn)``; kwargs bind fn's extra arguments."""
    sig = inspect.signature(fn)

    def factory(name: str | None = None, **kwargs: Any) -> nn.Module:
        sig.bind(None, **kwargs)  # TypeError on unknown kwargs, at build time.
        f = functools.partial(fn, **kwargs) if kwargs else fn
        return Activation(f, name=name)

    return factory


def _check_slope(slope: Any) -> float:
    if isinstance(slope, bool) or not isinstance(slope, (int, float)):
        raise InvalidTypeError(f"negative_slope must be a real number, got {slope!r}")
    if not math.isfinite(slope) or slope < 0:
        raise ValidationError(f"negative_slope must be finite and >= 0, got {slope!r}")
    return float(slope)


def _leaky(name: str | None = None, negative_slope: float = 0.01) -> nn.Module:
    slope = _check_slope(negative_slope)
    return Activation(functools.partial(leaky_relu, negative_slope=slope), name=name)


def _parse_leaky_slope(suffix: str) -> float:
    try:
        if suffix != suffix.strip():
            raise ValueError
        return _check_slope(float(suffix))
    except ValueError:
        raise ValidationError(
            f"malformed activation name {_LEAKY_PREFIX + suffix!r}: expected "
            f"'{_LEAKY_PREFIX}<slope>' with a finite non-negative number, e.g. "
            f"'{_LEAKY_PREFIX}0.1'") from None


_REGISTRY: dict[str, Factory] = {
    "identity": _stateless(identity),
    "relu": _stateless(relu),
    "relu6": _stateless(relu6),
    "leaky_relu": _leaky,
    "rrelu": RReLU,
    "swish": functools.partial(Swish, beta_init=1.0, trainable=False),
    "silu": functools.partial(Swish, beta_init=1.0, trainable=False),
    "swish_trainable": functools.partial(Swish, trainable=True),
    "hard_sigmoid": _stateless(hard_sigmoid),
    "hard_swish": _stateless(hard_swish),
    "relu_hswish": _stateless(relu_hswish),
    "sigmoid": _stateless(sigmoid),
}


def names() -> tuple[str, ...]:
    """Registered activation names, sorted (``leaky_relu_<slope>`` also accepted)."""
    return tuple(sorted(_REGISTRY))


def register(name: str, factory: Factory, *, overwrite: bool = False) -> None:
    """Register ``factory(name=None, **kwargs) -> nn.Module`` under ``name``."""
    if not isinstance(name, str):
        raise InvalidTypeError(f"activation name must be a str, got {type(name).__name__}")
    if not name:
        raise ValidationError("activation name must be non-empty")
    if not callable(factory):
        raise InvalidTypeError(f"factory for {name!r} must be callable, got {factory!r}")
    if name in _REGISTRY and not overwrite:
        raise ValidationError(f"activation {name!r} is already registered "
                         "(pass overwrite=True to replace it)")
    _REGISTRY[name] = factory


def create(name: str, /, **kwargs: Any) -> nn.Module:
    """Build the activation module registered as ``name``.

    ``name`` is positional-only so that ``name=`` in ``kwargs`` reaches the
    flax Module constructor. ``kwargs`` pass through to the factory, e.g.
    ``create('rrelu', slope_init=0.0)``, ``create('swish', beta_init=2.0)``.
    The returned module maps (..., C) -> (..., C), preserving dtype.
    """
    if not isinstance(name, str):
        raise InvalidTypeError(
            f"activation must be given by name (str), got {type(name).__name__}")
    if name in _REGISTRY:
        return _REGISTRY[name](**kwargs)
    if name.startswith(_LEAKY_PREFIX):
        slope = _parse_leaky_slope(name[len(_LEAKY_PREFIX):])
        return _leaky(negative_slope=slope, **kwargs)
    allowed = ", ".join(names()) + f", {_LEAKY_PREFIX}<slope>"
    raise ValidationError(f"unknown activation {name!r}; allowed names: {allowed}")
