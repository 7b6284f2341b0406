"""Tests for lightjax.layers.activations (values vs. closed forms, gradients, registry)."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lightjax.layers import activations as act

ATOL = 1e-6


def _grad(fn):
    """Element-wise derivative of a scalar->scalar function, vectorised."""
    return jax.vmap(jax.grad(fn))


def _sig(z):
    return 1.0 / (1.0 + math.exp(-z))


def _check(fn, xs, values, grads):
    x = jnp.asarray(xs, jnp.float32)
    np.testing.assert_allclose(fn(x), values, atol=ATOL)
    np.testing.assert_allclose(_grad(fn)(x), grads, atol=ATOL)


# ------------------------------------------------------------------ pure functions
def test_relu():
    _check(act.relu, [-3, -1, 0, 1, 3], [0, 0, 0, 1, 3], [0, 0, 0, 1, 1])


def test_relu6():
    _check(act.relu6, [-3, 0, 3, 6, 7], [0, 0, 3, 6, 6], [0, 0, 1, 0, 0])


@pytest.mark.parametrize("slope", [0.01, 0.1])
def test_leaky_relu(slope):
    xs = [-3, -1, 0, 1, 3]
    _check(lambda x: act.leaky_relu(x, slope), xs,
           [-3 * slope, -slope, 0, 1, 3], [slope, slope, slope, 1, 1])


def test_leaky_relu_default_slope():
    np.testing.assert_allclose(act.leaky_relu(jnp.array([-2.0])), [-0.02], atol=ATOL)


def test_sigmoid():
    xs = [-3, 0, 3]
    _check(act.sigmoid, xs, [_sig(v) for v in xs],
           [_sig(v) * (1 - _sig(v)) for v in xs])


def test_swish_beta1_is_silu():
    xs = [-3, -1, 0, 1, 3]
    vals = [v * _sig(v) for v in xs]
    grads = [_sig(v) + v * _sig(v) * (1 - _sig(v)) for v in xs]
    _check(act.swish, xs, vals, grads)
    assert abs(vals[3] - 0.7310585786) < 1e-9  # sanity of the closed form


def test_swish_beta0_is_half_x():
    xs = [-3, -1, 0, 1, 3]
    _check(lambda x: act.swish(x, 0.0), xs, [v / 2 for v in xs], [0.5] * 5)


def test_swish_large_beta_approaches_relu():
    x = jnp.array([-3.0, -1.0, 1.0, 3.0])
    np.testing.assert_allclose(act.swish(x, 50.0), [0, 0, 1, 3], atol=1e-6)
    np.testing.assert_allclose(_grad(lambda v: act.swish(v, 50.0))(x), [0, 0, 1, 1], atol=1e-6)


def test_swish_beta2():
    xs = [-1, 1]
    _check(lambda x: act.swish(x, 2.0), xs, [v * _sig(2 * v) for v in xs],
           [_sig(2 * v) + 2 * v * _sig(2 * v) * (1 - _sig(2 * v)) for v in xs])


def test_hard_sigmoid():
    _check(act.hard_sigmoid, [-4, -3, -1, 0, 1, 3, 4],
           [0, 0, 1 / 3, 0.5, 2 / 3, 1, 1],
           [0, 0, 1 / 6, 1 / 6, 1 / 6, 0, 0])


def test_hard_swish():
    xs = [-4, -3, -1, 0, 1, 3, 4]
    # derivative (2x+3)/6 on (-3, 3); 0 at/below -3, 1 at/above 3.
    _check(act.hard_swish, xs, [0, 0, -1 / 3, 0, 2 / 3, 3, 4],
           [0, 0, 1 / 6, 0.5, 5 / 6, 1, 1])


def test_hard_swish_interior_derivative():
    xs = np.linspace(-2.9, 2.9, 59).astype(np.float32)
    np.testing.assert_allclose(_grad(act.hard_swish)(jnp.asarray(xs)), (2 * xs + 3) / 6, atol=1e-5)


def test_relu_hswish():
    xs = [-4, -3, -1, -1e-3, 0, 1e-3, 1, 3]
    vals = [0, 0, -1 * 2 / 6, -1e-3 * (3 - 1e-3) / 6, 0, 1e-3, 1, 3]
    grads = [0, 0, 1 / 6, (3 - 2e-3) / 6, 0.5, 1, 1, 1]
    _check(act.relu_hswish, xs, vals, grads)


@pytest.mark.parametrize("fn", [act.relu, act.relu6, act.leaky_relu, act.swish, act.sigmoid,
                                act.hard_sigmoid, act.hard_swish, act.relu_hswish])
def test_pure_functions_keep_shape_dtype_and_jit(fn):
    x = jnp.linspace(-4, 4, 2 * 4 * 4 * 3).reshape(2, 4, 4, 3).astype(jnp.bfloat16)
    y = jax.jit(fn)(x)
    assert y.shape == x.shape and y.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(y, np.float32),
                               np.asarray(fn(x.astype(jnp.float32))), atol=0.05)


# ------------------------------------------------------------------ RReLU
X_RRELU = jnp.array([-2.0, 1.0, -4.0, 3.0, -1.0, 0.0]).reshape(2, 1, 1, 3)


def test_rrelu_param_shape_and_init():
    m = act.RReLU()
    params = m.init(jax.random.PRNGKey(0), X_RRELU)
    slope = params["params"]["slope"]
    assert slope.shape == (3,) and slope.dtype == jnp.float32
    np.testing.assert_allclose(slope, [0.25] * 3)


def test_rrelu_slope_zero_is_relu():
    m = act.RReLU(slope_init=0.0)
    params = m.init(jax.random.PRNGKey(0), X_RRELU)
    np.testing.assert_allclose(m.apply(params, X_RRELU), np.maximum(X_RRELU, 0))


def test_rrelu_per_channel_slopes():
    slopes = jnp.array([0.0, 0.1, 0.5])
    out = act.RReLU().apply({"params": {"slope": slopes}}, X_RRELU)
    expected = np.array([[0.0, 1.0, -2.0], [3.0, -0.1, 0.0]]).reshape(2, 1, 1, 3)
    np.testing.assert_allclose(out, expected, atol=ATOL)


def test_rrelu_slope_gradient_only_from_negative_inputs():
    m = act.RReLU()
    slopes = jnp.array([0.0, 0.1, 0.5])
    loss = lambda s, x: m.apply({"params": {"slope": s}}, x).sum()
    # d/da_c = sum of non-positive inputs of channel c.
    np.testing.assert_allclose(jax.grad(loss)(slopes, X_RRELU), [-2.0, -1.0, -4.0])
    pos = jnp.abs(X_RRELU) + 1.0
    np.testing.assert_allclose(jax.grad(loss)(slopes, pos), [0.0, 0.0, 0.0])
    # w.r.t. x: 1 for x > 0, a_c for x <= 0 (including exactly 0).
    gx = jax.grad(loss, argnums=1)(slopes, X_RRELU)
    np.testing.assert_allclose(gx.reshape(2, 3), [[0.0, 1.0, 0.5], [1.0, 0.1, 0.5]])


def test_rrelu_bf16_input_keeps_dtype_param_stays_f32():
    m = act.RReLU()
    x = X_RRELU.astype(jnp.bfloat16)
    params = m.init(jax.random.PRNGKey(0), x)
    assert params["params"]["slope"].dtype == jnp.float32
    assert m.apply(params, x).dtype == jnp.bfloat16


# ------------------------------------------------------------------ Swish module
def test_swish_fixed_has_no_params():
    m = act.Swish(beta_init=2.0)
    x = jnp.array([-1.0, 1.0])
    variables = m.init(jax.random.PRNGKey(0), x)
    assert not jax.tree_util.tree_leaves(variables)
    np.testing.assert_allclose(m.apply(variables, x), [-_sig(-2), _sig(2)], atol=ATOL)


def test_swish_trainable_beta_gets_gradient():
    m = act.Swish(trainable=True)
    x = jnp.array([1.0])
    params = m.init(jax.random.PRNGKey(0), x)
    beta = params["params"]["beta"]
    assert beta.shape == () and beta.dtype == jnp.float32 and float(beta) == 1.0
    g = jax.grad(lambda p: m.apply(p, x).sum())(params)["params"]["beta"]
    # d/dbeta x*sig(beta x) = x^2 sig(beta x)(1 - sig(beta x))
    np.testing.assert_allclose(g, _sig(1) * (1 - _sig(1)), atol=ATOL)


def test_swish_trainable_bf16():
    m = act.Swish(trainable=True, beta_init=0.0)
    x = jnp.array([2.0, -4.0], jnp.bfloat16)
    params = m.init(jax.random.PRNGKey(0), x)
    y = m.apply(params, x)
    assert y.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(y, np.float32), [1.0, -2.0])


# ------------------------------------------------------------------ registry
ALL_NAMES = act.names() + ("leaky_relu_0.1",)


def test_names_content():
    assert set(act.names()) == {
        "relu", "relu6", "leaky_relu", "rrelu", "swish", "silu", "swish_trainable",
        "hard_sigmoid", "hard_swish", "relu_hswish", "sigmoid", "identity"}
    assert act.names() == tuple(sorted(act.names()))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("name", ALL_NAMES)
def test_registry_builds_and_runs(name, dtype):
    m = act.create(name)
    assert isinstance(m, nn.Module)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 4, 4, 3)) * 4, dtype)
    variables = m.init(jax.random.PRNGKey(0), x)
    y = m.apply(variables, x)
    assert y.shape == x.shape and y.dtype == dtype


def test_registry_values_match_closed_forms():
    x = jnp.array([-3.0, -1.0, 0.0, 1.0, 3.0])
    expected = {
        "relu": [0, 0, 0, 1, 3],
        "relu6": [0, 0, 0, 1, 3],
        "leaky_relu": [-0.03, -0.01, 0, 1, 3],
        "leaky_relu_0.1": [-0.3, -0.1, 0, 1, 3],
        "rrelu": [-0.75, -0.25, 0, 1, 3],
        "swish": [v * _sig(v) for v in (-3, -1, 0, 1, 3)],
        "silu": [v * _sig(v) for v in (-3, -1, 0, 1, 3)],
        "swish_trainable": [v * _sig(v) for v in (-3, -1, 0, 1, 3)],
        "hard_sigmoid": [0, 1 / 3, 0.5, 2 / 3, 1],
        "hard_swish": [0, -1 / 3, 0, 2 / 3, 3],
        "relu_hswish": [0, -1 / 3, 0, 1, 3],
        "sigmoid": [_sig(v) for v in (-3, -1, 0, 1, 3)],
        "identity": [-3, -1, 0, 1, 3],
    }
    assert set(expected) == set(ALL_NAMES)
    for name, vals in expected.items():
        m = act.create(name)
        y = m.apply(m.init(jax.random.PRNGKey(0), x), x)
        np.testing.assert_allclose(y, vals, atol=ATOL, err_msg=name)


def test_registry_kwargs_pass_through():
    m = act.create("rrelu", slope_init=0.0)
    x = jnp.array([-2.0, 2.0])
    np.testing.assert_allclose(m.apply(m.init(jax.random.PRNGKey(0), x), x), [0, 2])
    m = act.create("swish", beta_init=2.0)
    np.testing.assert_allclose(m.apply({}, x), [-2 * _sig(-4), 2 * _sig(4)], atol=ATOL)
    m = act.create("leaky_relu", negative_slope=0.2)
    np.testing.assert_allclose(m.apply({}, x), [-0.4, 2.0], atol=ATOL)
    assert act.create("swish_trainable").trainable
    assert not act.create("silu").trainable


def test_registry_name_passes_to_flax():
    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = act.create("rrelu", name="prelu")(x)
            return act.create("relu6", name="act6")(x)

    params = Net().init(jax.random.PRNGKey(0), jnp.ones((1, 2, 2, 3)))["params"]
    assert set(params) == {"prelu"} and params["prelu"]["slope"].shape == (3,)
    assert act.create("leaky_relu_0.1", name="lk").name == "lk"


def test_parse_leaky_slope():
    m = act.create("leaky_relu_0.1")
    np.testing.assert_allclose(m.apply({}, jnp.array([-5.0])), [-0.5], atol=ATOL)
    m = act.create("leaky_relu_2e-1")
    np.testing.assert_allclose(m.apply({}, jnp.array([-5.0])), [-1.0], atol=ATOL)


def test_unknown_name_error_lists_allowed():
    with pytest.raises(ValueError) as e:
        act.create("gelu_fancy")
    msg = str(e.value)
    assert "gelu_fancy" in msg and all(n in msg for n in act.names())


@pytest.mark.parametrize("bad", [None, 3, act.RReLU, act.relu])
def test_non_string_name_type_error(bad):
    with pytest.raises(TypeError):
        act.create(bad)


@pytest.mark.parametrize("bad", ["leaky_relu_xyz", "leaky_relu_", "leaky_relu_-0.1",
                                 "leaky_relu_nan", "leaky_relu_inf", "leaky_relu_ 0.1"])
def test_malformed_leaky_name(bad):
    with pytest.raises(ValueError, match="leaky_relu"):
        act.create(bad)


def test_negative_slope_kwarg_and_unknown_kwarg():
    with pytest.raises(ValueError):
        act.create("leaky_relu", negative_slope=-0.1)
    with pytest.raises(TypeError):
        act.create("relu", foo=1)


def test_register(monkeypatch):
    monkeypatch.setattr(act, "_REGISTRY", dict(act._REGISTRY))
    act.register("neg", lambda name=None: act.Activation(lambda x: -x, name=name))
    assert "neg" in act.names()
    np.testing.assert_allclose(act.create("neg").apply({}, jnp.array([2.0])), [-2.0])
    with pytest.raises(ValueError):
        act.register("neg", lambda name=None: None)
    act.register("neg", lambda name=None: act.Activation(act.relu, name=name), overwrite=True)
    np.testing.assert_allclose(act.create("neg").apply({}, jnp.array([-2.0])), [0.0])
    with pytest.raises(TypeError):
        act.register(1, lambda: None)
    with pytest.raises(TypeError):
        act.register("x", "not callable")
