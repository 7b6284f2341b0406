"""Every depthwise implementation agrees with lax.conv_general_dilated, outputs and gradients."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from depthwise_reference import reference, rel_err

from lightjax.layers import depthwise as dw


CASES = [  # (H, W, kernel, stride, padding)
    (8, 8, 3, 1, "symmetric"), (8, 8, 3, 2, "symmetric"), (7, 9, 3, 1, "symmetric"),
    (7, 9, 3, 2, "symmetric"), (9, 7, 3, 2, "same"), (8, 8, 3, 2, "same"), (5, 5, 5, 1, "same"),
    (11, 6, 5, 2, "symmetric"), (1, 1, 3, 2, "symmetric"), (3, 2, 3, 2, "same"),
]


@pytest.mark.parametrize("impl", ["shifted", "xla"])
@pytest.mark.parametrize("h,w,k,stride,padding", CASES)
def test_matches_lax_outputs_and_gradients(impl, h, w, k, stride, padding):
    kx, kk, kg = jax.random.split(jax.random.PRNGKey(h * 100 + w * 10 + k + stride), 3)
    x = jax.random.normal(kx, (2, h, w, 6))
    kernel = jax.random.normal(kk, (k, k, 1, 6))
    want = reference(x, kernel, stride, padding)
    got = dw.depthwise_conv(x, kernel, stride, padding, impl=impl)
    assert got.shape == want.shape
    assert rel_err(got, want) < 1e-5
    cot = jax.random.normal(kg, want.shape)
    _, vjp_want = jax.vjp(lambda a, b: reference(a, b, stride, padding), x, kernel)
    _, vjp_got = jax.vjp(lambda a, b: dw.depthwise_conv(a, b, stride, padding, impl), x, kernel)
    for g_got, g_want in zip(vjp_got(cot), vjp_want(cot)):
        assert rel_err(g_got, g_want) < 1e-5


def test_output_size_is_ceil_of_input_over_stride():
    x = jnp.ones((1, 7, 10, 2))
    y = dw.depthwise_conv(x, jnp.ones((3, 3, 1, 2)), 2, "symmetric", impl="shifted")
    assert y.shape == (1, 4, 5, 2)


def test_vmapped_shifted_has_no_convolution():
    """Under vmap over the kernel the shifted form stays elementwise (no grouped conv)."""
    x = jnp.ones((3, 2, 8, 8, 4))
    kernels = jnp.ones((3, 3, 3, 1, 4))
    jaxpr = jax.make_jaxpr(jax.vmap(lambda a, k: dw.depthwise_shifted(a, k, 2)))(x, kernels)
    assert "conv_general_dilated" not in str(jaxpr)
    jaxpr_xla = jax.make_jaxpr(jax.vmap(lambda a, k: dw.depthwise_xla(a, k, 2)))(x, kernels)
    assert "conv_general_dilated" in str(jaxpr_xla)


def test_auto_resolves_to_shifted_on_cpu():
    assert dw.resolve("auto") == ("shifted" if jax.default_backend() == "cpu" else "xla")


def test_unknown_implementation_is_a_value_error():
    with pytest.raises(ValueError, match="allowed: auto, xla, shifted"):
        dw.depthwise_conv(jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 1, 2)), impl="fast")


def test_bfloat16_input_stays_bfloat16():
    x = jnp.ones((1, 4, 4, 2), jnp.bfloat16)
    y = dw.depthwise_shifted(x, jnp.ones((3, 3, 1, 2)), 1)
    assert y.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(y[0, 1, 1], np.float32), [9.0, 9.0])
