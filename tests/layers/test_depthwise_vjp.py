"""The shifted depthwise conv's custom VJP: both input-gradient paths, vmap, bfloat16."""
import jax
import jax.numpy as jnp
import pytest
from depthwise_reference import reference, rel_err

from lightjax.layers import depthwise as dw


CASES = [  # (N, H, W, kernel, stride, padding)
    (2, 8, 8, 3, 1, "symmetric"), (2, 7, 9, 3, 2, "symmetric"), (2, 9, 7, 3, 2, "same"),
    (2, 11, 6, 5, 2, "symmetric"), (2, 3, 2, 3, 2, "same"), (4, 6, 5, 3, 3, "symmetric"),
    (2, 4, 4, 1, 2, "symmetric"),
]


def _grads(fn, x, kernel, cot):
    return jax.jit(lambda a, b, c: jax.vjp(fn, a, b)[1](c))(x, kernel, cot)


@pytest.mark.parametrize("n,h,w,k,stride,padding", CASES)
def test_explicit_input_gradient_matches_lax(monkeypatch, n, h, w, k, stride, padding):
    """The written-out input gradient (large images; small ones use autodiff of the shifted
    sum, covered by test_depthwise.py) on every geometry."""
    monkeypatch.setattr(dw, "_EXPLICIT_DX_MIN_PIXELS", 0)
    kx, kk, kg = jax.random.split(jax.random.PRNGKey(h * 31 + w * 7 + k + stride), 3)
    x = jax.random.normal(kx, (n, h, w, 5))
    kernel = jax.random.normal(kk, (k, k, 1, 5))
    want = reference(x, kernel, stride, padding)
    cot = jax.random.normal(kg, want.shape)
    got = _grads(lambda a_, b_: dw.depthwise_shifted(a_, b_, stride, padding), x, kernel, cot)
    ref = _grads(lambda a_, b_: reference(a_, b_, stride, padding), x, kernel, cot)
    for g_got, g_want in zip(got, ref):
        assert g_got.shape == g_want.shape
        assert rel_err(g_got, g_want) < 1e-5


@pytest.mark.parametrize("n,group", [(7, 8), (12, 8), (6, 4)])
def test_kernel_gradient_batch_grouping(monkeypatch, n, group):
    """Batches the group size does not divide (groups of the largest divisor below it)."""
    monkeypatch.setattr(dw, "_KGRAD_GROUP", group)
    x = jax.random.normal(jax.random.PRNGKey(n), (n, 6, 6, 3))
    kernel = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 1, 3))
    cot = jax.random.normal(jax.random.PRNGKey(2), (n, 3, 3, 3))
    got = _grads(lambda a, b: dw.depthwise_shifted(a, b, 2), x, kernel, cot)
    want = _grads(lambda a, b: reference(a, b, 2, "symmetric"), x, kernel, cot)
    for a, b in zip(got, want):
        assert rel_err(a, b) < 1e-5


@pytest.mark.parametrize("explicit", [True, False])
def test_vmap_over_members_is_elementwise_and_matches(monkeypatch, explicit):
    monkeypatch.setattr(dw, "_EXPLICIT_DX_MIN_PIXELS", 0 if explicit else 1 << 30)
    members = 3
    x = jax.random.normal(jax.random.PRNGKey(0), (members, 2, 7, 7, 4))
    kernels = jax.random.normal(jax.random.PRNGKey(1), (members, 3, 3, 1, 4))
    cot = jax.random.normal(jax.random.PRNGKey(2), (members, 2, 4, 4, 4))

    def member(a, k, c):
        return jax.vjp(lambda a_, k_: dw.depthwise_shifted(a_, k_, 2), a, k)[1](c)

    jaxpr = str(jax.make_jaxpr(jax.vmap(member))(x, kernels, cot))
    assert "conv_general_dilated" not in jaxpr
    got = jax.jit(jax.vmap(member))(x, kernels, cot)
    for i in range(members):
        want = _grads(lambda a_, k_: reference(a_, k_, 2, "symmetric"), x[i], kernels[i], cot[i])
        for a, b in zip(got, want):
            assert rel_err(a[i], b) < 1e-5


@pytest.mark.parametrize("explicit", [True, False])
def test_bfloat16_gradients(monkeypatch, explicit):
    monkeypatch.setattr(dw, "_EXPLICIT_DX_MIN_PIXELS", 0 if explicit else 1 << 30)
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 9, 9, 4))
    kernel = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 1, 4))
    cot = jax.random.normal(jax.random.PRNGKey(2), (2, 5, 5, 4))
    dx, dk = _grads(lambda a, b: dw.depthwise_shifted(a, b, 2), x.astype(jnp.bfloat16),
                    kernel, cot.astype(jnp.bfloat16))
    assert dx.dtype == jnp.bfloat16 and dk.dtype == jnp.float32
    want_dx, want_dk = _grads(lambda a, b: reference(a, b, 2, "symmetric"), x, kernel, cot)
    assert rel_err(dx, want_dx) < 2e-2 and rel_err(dk, want_dk) < 2e-2
