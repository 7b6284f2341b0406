"""lightjax BatchNorm (custom train-mode VJP, fused relu/relu6) matches flax's nn.BatchNorm."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lightjax import cost
from lightjax.layers import ConvBN, LayerFactory
from lightjax.layers import batch_norm as bn_lib

ACTS = {None: lambda y: y, "relu": jax.nn.relu, "relu6": jax.nn.relu6}


def rel_err(a, b):
    a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
    return float(jnp.abs(a - b).max() / (jnp.abs(b).max() + 1e-12))


class FlaxRef(nn.Module):
    """flax BatchNorm then the activation, with the same variable paths as bn_lib.BatchNorm."""
    activation: str | None
    kwargs: tuple

    @nn.compact
    def __call__(self, x, train):
        bn = nn.BatchNorm(use_running_average=not train, name="BatchNorm_0", **dict(self.kwargs))
        return ACTS[self.activation](bn(x))


class Ours(nn.Module):
    activation: str | None
    kwargs: tuple

    @nn.compact
    def __call__(self, x, train):
        return bn_lib.BatchNorm(use_running_average=not train, activation=self.activation,
                                name="BatchNorm_0", **dict(self.kwargs))(x)


def _variables(x, c, seed=0):
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(seed), 4)
    return {"params": {"BatchNorm_0": {"scale": 1 + 0.5 * jax.random.normal(k1, (c,)),
                                       "bias": jax.random.normal(k2, (c,))}},
            "batch_stats": {"BatchNorm_0": {"mean": 0.1 * jax.random.normal(k3, (c,)),
                                            "var": 1 + jax.random.uniform(k4, (c,))}}}


@functools.partial(jax.jit, static_argnums=(0, 4))
def _run(module, variables, x, cot, train):
    def loss(params, x):
        y, upd = module.apply({**variables, "params": params}, x, train,
                              mutable=["batch_stats"])
        return (y.astype(jnp.float32) * cot).sum(), (y, upd)
    (_, (y, upd)), grads = jax.value_and_grad(loss, (0, 1), has_aux=True)(
        variables["params"], x)
    return y, upd, grads


@pytest.mark.parametrize("train, activation, shape", [
    (True, None, (3, 5, 7, 6)), (True, "relu", (3, 5, 7, 6)), (True, "relu6", (3, 5, 7, 6)),
    (False, "relu", (3, 5, 7, 6)), (False, "relu6", (3, 5, 7, 6)), (True, "relu", (16, 5)),
])
def test_matches_flax_outputs_gradients_and_stats(train, activation, shape):
    kx, kc = jax.random.split(jax.random.PRNGKey(len(shape) * 7 + shape[0]))
    x = 2.0 * jax.random.normal(kx, shape) + 0.5  # relu6 sees values on both sides of 0 and 6
    cot = jax.random.normal(kc, shape)
    kwargs = (("momentum", 0.9), ("epsilon", 1e-5))
    variables = _variables(x, shape[-1])
    y0, upd0, g0 = _run(FlaxRef(activation, kwargs), variables, x, cot, train)
    y1, upd1, g1 = _run(Ours(activation, kwargs), variables, x, cot, train)
    assert y1.dtype == y0.dtype and y1.shape == y0.shape
    assert rel_err(y1, y0) < 1e-5
    assert jax.tree.structure(upd1) == jax.tree.structure(upd0)
    for a, b in zip(jax.tree.leaves(upd1), jax.tree.leaves(upd0)):
        assert rel_err(a, b) < 1e-5
    assert jax.tree.structure(g1) == jax.tree.structure(g0)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g0)):
        assert rel_err(a, b) < 1e-5


@pytest.mark.parametrize("x_dtype, activation", [(jnp.float32, "relu6"), (jnp.bfloat16, None)])
def test_bfloat16_compute_dtype(x_dtype, activation):
    kx, kc = jax.random.split(jax.random.PRNGKey(3))
    x = (2.0 * jax.random.normal(kx, (4, 6, 5, 8)) + 0.5).astype(x_dtype)
    cot = jax.random.normal(kc, x.shape)
    kwargs = (("momentum", 0.9), ("epsilon", 1e-5), ("dtype", jnp.bfloat16))
    variables = _variables(x, 8)
    y0, upd0, g0 = _run(FlaxRef(activation, kwargs), variables, x, cot, True)
    y1, upd1, g1 = _run(Ours(activation, kwargs), variables, x, cot, True)
    assert y1.dtype == y0.dtype == jnp.bfloat16
    assert rel_err(y1, y0) < 1e-2  # bfloat16 rounding of the same float32 values
    for a, b in zip(jax.tree.leaves(upd1), jax.tree.leaves(upd0)):  # float32 statistics
        assert a.dtype == b.dtype == jnp.float32 and rel_err(a, b) < 1e-5
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g0)):
        assert a.dtype == b.dtype
        assert rel_err(a, b) < 2e-2


def test_vmap_over_parameters_matches_per_member():
    members, shape = 3, (4, 5, 5, 6)
    x = jax.random.normal(jax.random.PRNGKey(0), (members,) + shape)
    cot = jax.random.normal(jax.random.PRNGKey(1), (members,) + shape)
    stacked = jax.tree.map(lambda *v: jnp.stack(v),
                           *[_variables(x[0], 6, seed=i) for i in range(members)])
    mod = Ours("relu", (("momentum", 0.9), ("epsilon", 1e-5)))
    ref = FlaxRef("relu", (("momentum", 0.9), ("epsilon", 1e-5)))
    vm = jax.vmap(lambda v, x, c: _run(mod, v, x, c, True))(stacked, x, cot)
    for i in range(members):
        want = _run(ref, jax.tree.map(lambda v: v[i], stacked), x[i], cot[i], True)
        for a, b in zip(jax.tree.leaves(vm), jax.tree.leaves(want)):
            assert rel_err(a[i], b) < 1e-5


def test_statistics_cotangents_are_correct():
    """The op is a full VJP: gradients through the returned batch statistics too."""
    x = jax.random.normal(jax.random.PRNGKey(0), (6, 4, 3)) * 1.5 + 0.3
    scale, bias = jnp.linspace(0.5, 1.5, 3), jnp.linspace(-1.0, 1.0, 3)

    def ours(x, s, b):
        y, m, v = bn_lib.batch_norm_train(x, s, b, 1e-5, jnp.dtype(jnp.float32), "relu")
        return (y ** 2).sum() + (m * jnp.arange(3.0)).sum() + (v * jnp.arange(1.0, 4.0)).sum()

    def ref(x, s, b):
        m, v = bn_lib._stats(x)
        y = jax.nn.relu((x - m) * (jax.lax.rsqrt(v + 1e-5) * s) + b)
        return (y ** 2).sum() + (m * jnp.arange(3.0)).sum() + (v * jnp.arange(1.0, 4.0)).sum()

    for a, b in zip(jax.jit(jax.grad(ours, (0, 1, 2)))(x, scale, bias),
                    jax.jit(jax.grad(ref, (0, 1, 2)))(x, scale, bias)):
        assert rel_err(a, b) < 1e-5


def test_fallback_paths_match_flax():
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 3, 5))
    mask = jnp.arange(60).reshape(4, 3, 5) % 3 > 0
    ours = bn_lib.BatchNorm(use_running_average=False, activation="relu")
    ref = nn.BatchNorm(use_running_average=False)
    v = ref.init(jax.random.PRNGKey(0), x)
    y0, u0 = ref.apply(v, x, mask=mask, mutable=["batch_stats"])
    y1, u1 = ours.apply(v, x, mask=mask, mutable=["batch_stats"])
    assert rel_err(y1, jax.nn.relu(y0)) < 1e-6
    assert rel_err(u1["batch_stats"]["var"], u0["batch_stats"]["var"]) < 1e-6
    # call-time use_running_average (constructor left unset)
    free = bn_lib.BatchNorm()
    want = nn.BatchNorm().apply(v, x, use_running_average=True)
    assert rel_err(free.apply(v, x, use_running_average=True), want) < 1e-6


def test_is_a_flax_batchnorm_and_rejects_unfusable_activations():
    layer = LayerFactory().norm(True, activation="relu")
    assert isinstance(layer, nn.BatchNorm)
    with pytest.raises(ValueError, match="cannot be fused"):
        bn_lib.BatchNorm(activation="swish").init(jax.random.PRNGKey(0), jnp.ones((2, 3)))


@pytest.mark.parametrize("activation", ["relu", "hard_swish"])
def test_conv_bn_fused_activation_same_variables_and_outputs(activation):
    """ConvBN fuses relu/relu6 into the norm: same variable tree, outputs, gradients."""
    class Unfused(nn.Module):
        @nn.compact
        def __call__(self, x, train):
            y = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                             name="bn")(LayerFactory().conv(8, 3, name="conv")(x))
            return y if activation is None else LayerFactory().act(activation)(y)

    x = jax.random.normal(jax.random.PRNGKey(0), (2, 7, 7, 3))
    block = ConvBN(8, kernel_size=3, activation=activation)
    v = block.init(jax.random.PRNGKey(1), x, False)
    assert jax.tree.structure(v) == jax.tree.structure(
        Unfused().init(jax.random.PRNGKey(1), x, False))
    for train in (True, False):
        def loss(mod, p):
            y, _ = mod.apply({**v, "params": p}, x, train, mutable=["batch_stats"])
            return (y * jnp.cos(y)).sum()
        l0, g0 = jax.jit(jax.value_and_grad(lambda p: loss(Unfused(), p)))(v["params"])
        l1, g1 = jax.jit(jax.value_and_grad(lambda p: loss(block, p)))(v["params"])
        assert rel_err(l1, l0) < 1e-5
        for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g0)):
            assert rel_err(a, b) < 1e-5
    rows = cost.count(block, (1, 7, 7, 3), train=False).layers
    assert [r.type for r in rows] == ["standard", "norm"]
