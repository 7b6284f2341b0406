"""Straight-through quantizers: larq's forward values and pseudo-gradients, exactly."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lightjax.binary import quantizers as q
from lightjax.errors import ValidationError

X = jax.random.uniform(jax.random.key(0), (1000,), minval=-2.0, maxval=2.0)
G = jax.random.normal(jax.random.key(1), (1000,))


def _ste(x, c):
    return np.ones_like(x) if c is None else (np.abs(x) <= np.float32(c)).astype(np.float64)


def _approx(x):
    return np.where(np.abs(x) <= 1, 2 - 2 * np.abs(x), 0.0)


def _swish(x, beta):
    bx = beta * x
    return beta * (2 - bx * np.tanh(bx / 2)) / (1 + np.cosh(bx))


# (quantizer, expected forward, expected pseudo-gradient) on float64 numpy arrays
CASES = {
    "ste_sign": (q.ste_sign, lambda x: np.where(x >= 0, 1.0, -1.0), lambda x: _ste(x, 1.0)),
    "ste_sign_0.5": (functools.partial(q.ste_sign, clip_value=0.5),
                     lambda x: np.where(x >= 0, 1.0, -1.0), lambda x: _ste(x, 0.5)),
    "ste_sign_none": (functools.partial(q.ste_sign, clip_value=None),
                      lambda x: np.where(x >= 0, 1.0, -1.0), lambda x: _ste(x, None)),
    "approx_sign": (q.approx_sign, lambda x: np.where(x >= 0, 1.0, -1.0), _approx),
    "swish_sign": (q.swish_sign, lambda x: np.where(x >= 0, 1.0, -1.0), lambda x: _swish(x, 5.0)),
    "swish_sign_2": (functools.partial(q.swish_sign, beta=2.0),
                     lambda x: np.where(x >= 0, 1.0, -1.0), lambda x: _swish(x, 2.0)),
    "ste_heaviside": (q.ste_heaviside, lambda x: np.where(x > 0, 1.0, 0.0), lambda x: _ste(x, 1.0)),
    "ste_heaviside_none": (functools.partial(q.ste_heaviside, clip_value=None),
                           lambda x: np.where(x > 0, 1.0, 0.0), lambda x: _ste(x, None)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_forward_and_gradient_at_random_points(case):
    fn, forward, derivative = CASES[case]
    x = np.asarray(X, np.float64)
    np.testing.assert_array_equal(np.asarray(fn(X)), forward(x))
    grad = jax.grad(lambda v: jnp.sum(fn(v) * G))(X)  # random cotangent: catches broadcasting
    np.testing.assert_allclose(np.asarray(grad), np.asarray(G, np.float64) * derivative(x),
                               rtol=1e-5, atol=1e-6)
    _, tangent = jax.jvp(fn, (X,), (G,))  # forward mode gives the same pseudo-derivative
    np.testing.assert_allclose(np.asarray(tangent), np.asarray(grad), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("fn,clip", [(q.ste_sign, 1.0), (q.ste_sign, 0.25),
                                     (q.ste_heaviside, 1.0), (q.ste_heaviside, 0.5)])
def test_clipped_gradient_at_the_edges(fn, clip):
    c = np.float32(clip)
    x = jnp.array([0.0, -0.0, c, -c, np.nextafter(c, np.float32(9)),
                   -np.nextafter(c, np.float32(9)), 3.0, -3.0, 1e30], jnp.float32)
    grad = jax.grad(lambda v: fn(v, clip_value=clip).sum())(x)
    np.testing.assert_array_equal(np.asarray(grad), [1, 1, 1, 1, 0, 0, 0, 0, 0])
    free = jax.grad(lambda v: fn(v, clip_value=None).sum())(x)
    np.testing.assert_array_equal(np.asarray(free), np.ones(9))


def test_forward_values_at_zero_and_tiny_inputs():
    x = jnp.array([0.0, -0.0, 1e-30, -1e-30, 1e-37, -1e-37, 7.0, -7.0])  # normal floats
    np.testing.assert_array_equal(np.asarray(q.sign(x)), [1, 1, 1, -1, 1, -1, 1, -1])
    for fn in (q.ste_sign, q.approx_sign, q.swish_sign):
        np.testing.assert_array_equal(np.asarray(fn(x)), [1, 1, 1, -1, 1, -1, 1, -1])
    np.testing.assert_array_equal(np.asarray(q.ste_heaviside(x)), [0, 0, 1, 0, 1, 0, 1, 0])
    assert float(jax.grad(lambda v: q.sign(v).sum())(x).sum()) == 0.0  # sign: no special gradient


def test_approx_and_swish_gradients_at_special_points():
    x = jnp.array([0.0, 0.5, -0.5, 1.0, -1.0, 1.0001, -1.5])
    grad = jax.grad(lambda v: q.approx_sign(v).sum())(x)
    np.testing.assert_array_equal(np.asarray(grad), [2, 1, 1, 0, 0, 0, 0])
    for beta in (5.0, 1.0, 10.0):
        g0 = jax.grad(lambda v: q.swish_sign(v, beta=beta).sum())(jnp.zeros(1))
        assert float(g0[0]) == pytest.approx(beta, rel=1e-6)
    far = jax.grad(lambda v: q.swish_sign(v).sum())(jnp.array([100.0, -1e6, 1e30]))
    np.testing.assert_array_equal(np.asarray(far), [0, 0, 0])  # cosh overflows to inf: 0, not NaN


@pytest.mark.parametrize("name", q.names())
def test_bfloat16_is_preserved(name):
    fn = q.get(name)
    x = X.reshape(100, 10).astype(jnp.bfloat16)
    out, grad = fn(x), jax.grad(lambda v: fn(v).sum())(x)
    assert out.dtype == grad.dtype == jnp.bfloat16
    ref_grad = jax.grad(lambda v: fn(v).sum())(x.astype(jnp.float32))
    np.testing.assert_allclose(np.asarray(grad, np.float32), np.asarray(ref_grad), rtol=8e-3,
                               atol=1e-6)
    # equal signs; magnitude_aware_sign's scale is rounded to bfloat16
    np.testing.assert_allclose(np.asarray(out, np.float32),
                               np.asarray(fn(x.astype(jnp.float32))), rtol=4e-3)


@pytest.mark.parametrize("name", q.names())
def test_jit_and_vmap_agree_with_eager(name):
    fn = q.get(name)
    x = X.reshape(10, 4, 25)  # vmap over the first axis: per-example 2-D "weights"
    eager = jnp.stack([fn(x[i]) for i in range(10)])
    np.testing.assert_array_equal(np.asarray(jax.jit(jax.vmap(fn))(x)), np.asarray(eager))

    def loss(v, g):
        return jnp.sum(fn(v) * g)

    g = G.reshape(10, 4, 25)
    eager_grad = jnp.stack([jax.grad(loss)(x[i], g[i]) for i in range(10)])
    np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(jax.grad(loss)))(x, g)),
                               np.asarray(eager_grad), rtol=1e-6, atol=1e-7)


def test_traced_clip_value():
    f = jax.jit(lambda x, c: jax.grad(lambda v: q.ste_sign(v, c).sum())(x))
    np.testing.assert_array_equal(np.asarray(f(jnp.array([0.3, 0.6, -0.6]), 0.5)), [1, 0, 0])
    np.testing.assert_array_equal(np.asarray(f(jnp.array([0.3, 0.6, -0.6]), 0.7)), [1, 1, 1])


@pytest.mark.parametrize("shape", [(3, 3, 8, 16), (8, 16), (7,)])
def test_magnitude_aware_sign_scale_and_gradient(shape):
    w = jax.random.uniform(jax.random.key(2), shape, minval=-1.5, maxval=1.5)
    g = jax.random.normal(jax.random.key(3), shape)
    wn = np.asarray(w, np.float64)
    axes = tuple(range(len(shape) - 1)) or (0,)
    scale = np.abs(wn).mean(axis=axes, keepdims=True)  # per output channel; one scale for rank 1
    np.testing.assert_allclose(np.asarray(q.magnitude_aware_sign(w)),
                               scale * np.where(wn >= 0, 1.0, -1.0), rtol=1e-6)
    grad = jax.grad(lambda v: jnp.sum(q.magnitude_aware_sign(v) * g))(w)
    expected = np.asarray(g, np.float64) * scale * (np.abs(wn) <= 1)  # the scale is stopped
    np.testing.assert_allclose(np.asarray(grad), expected, rtol=1e-5, atol=1e-7)
    free = jax.grad(lambda v: jnp.sum(q.magnitude_aware_sign(v, clip_value=None) * g))(w)
    np.testing.assert_allclose(np.asarray(free), np.asarray(g, np.float64) * scale, rtol=1e-5)


def test_magnitude_aware_sign_rejects_scalars():
    with pytest.raises(ValidationError, match="rank >= 1"):
        q.magnitude_aware_sign(jnp.float32(0.5))


def test_registry_lookup_binds_arguments():
    assert q.names() == ("approx_sign", "magnitude_aware_sign", "ste_heaviside", "ste_sign",
                         "swish_sign")
    x = jnp.array([-0.7, 0.2, 0.4])
    grad = jax.grad(lambda v: q.get("ste_sign", clip_value=0.3)(v).sum())(x)
    np.testing.assert_array_equal(np.asarray(grad), [0, 1, 0])
    grad = jax.grad(lambda v: q.get("swish_sign", beta=2.0)(v).sum())(x)
    np.testing.assert_allclose(np.asarray(grad), _swish(np.asarray(x, np.float64), 2.0), rtol=1e-6)


@pytest.mark.parametrize("name,kwargs,match", [
    ("ste_sgn", {}, r"unknown quantizer 'ste_sgn'; allowed: approx_sign, magnitude_aware_sign"),
    ("ste_sign", {"beta": 2.0}, r"'ste_sign' takes no argument 'beta'; allowed: clip_value"),
    ("approx_sign", {"clip_value": 1.0}, r"takes no argument 'clip_value'; allowed: \(none\)"),
    ("swish_sign", {"x": 1.0}, r"allowed: beta"),
    ("ste_sign", {"clip_value": -1.0}, r"clip_value must be a positive finite number or None"),
    ("ste_heaviside", {"clip_value": 0}, r"clip_value must be a positive finite number"),
    ("ste_sign", {"clip_value": float("nan")}, r"positive finite"),
    ("ste_sign", {"clip_value": "1"}, r"positive finite"),
    ("ste_sign", {"clip_value": True}, r"positive finite"),
    ("magnitude_aware_sign", {"clip_value": float("inf")}, r"positive finite"),
    ("swish_sign", {"beta": 0.0}, r"beta must be a positive finite number, got 0.0"),
    ("swish_sign", {"beta": None}, r"beta must be"),
])
def test_registry_errors(name, kwargs, match):
    with pytest.raises(ValidationError, match=match):
        q.get(name, **kwargs)


def test_register():
    def scaled(x, factor=2.0):
        return factor * q.ste_sign(x)

    q.register("test_scaled", scaled)
    try:
        q.register("test_scaled", scaled)  # the same function again: fine
        assert "test_scaled" in q.names()
        np.testing.assert_array_equal(np.asarray(q.get("test_scaled", factor=3.0)(jnp.ones(2))),
                                      [3, 3])
        with pytest.raises(ValidationError, match="already registered"):
            q.register("test_scaled", q.approx_sign)
        with pytest.raises(ValidationError, match="already registered"):
            q.register("ste_sign", scaled)
        with pytest.raises(ValidationError, match="must be callable"):
            q.register("other", 3)
    finally:
        del q.QUANTIZERS["test_scaled"]
