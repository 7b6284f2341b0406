"""ConvTranspose: the scatter-add definition, PyTorch's padding, the strided conv it transposes
(value and gradients), hooks/rules, vmap over parameters, validation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from lightjax.errors import ValidationError
from lightjax.layers import ConvTranspose, LayerFactory, Rule
from lightjax.layers import transposed

X = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 4, 3))


def scatter_reference(x, kernel, s, lo):
    """The definition: every input pixel adds x[i, j] @ kernel[a, b] at (i*s + a, j*s + b) of
    the full (H - 1) * s + k output, which is then cropped by ``lo`` to H * s (numpy, float64)."""
    x, kernel = np.asarray(x, np.float64), np.asarray(kernel, np.float64)
    n, h, w, _ = x.shape
    k, cout = kernel.shape[0], kernel.shape[3]
    full = np.zeros((n, (h - 1) * s + k, (w - 1) * s + k, cout))
    for i in range(h):
        for j in range(w):
            full[:, i * s:i * s + k, j * s:j * s + k] += np.einsum("nc,abco->nabo", x[:, i, j],
                                                                   kernel)
    return full[:, lo:lo + h * s, lo:lo + w * s]


def strided_conv(z, kernel, s, lo, hi):
    """The strided convolution whose transpose ConvTranspose is: (N, Hs, Ws, Cout) -> (N, H, W,
    Cin), the kernel's I/O axes swapped, padded (lo, hi)."""
    return lax.conv_general_dilated(z, kernel.transpose(0, 1, 3, 2), (s, s), ((lo, hi), (lo, hi)),
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                    precision="highest")


# (k, s, padding, lo): PyTorch nn.ConvTranspose2d(k, s, padding=(k - s) // 2) for even k - s;
# odd k - s: 'symmetric' = PyTorch padding=1, output_padding=1; 'same' = TensorFlow SAME
CASES = [(4, 2, "symmetric", 1), (2, 2, "symmetric", 0), (16, 8, "symmetric", 4),
         (3, 2, "symmetric", 1), (3, 2, "same", 0), (3, 1, "same", 1)]


def test_crop_conventions():
    # PyTorch padding=(k - s) // 2 for even k - s, where TensorFlow's SAME agrees
    for k, s in ((4, 2), (2, 2), (16, 8), (6, 2)):
        assert transposed.crop_amounts(k, s, "symmetric") == ((k - s) // 2,) * 2
        assert transposed.crop_amounts(k, s, "same") == ((k - s) // 2,) * 2
    assert transposed.crop_amounts(3, 2, "symmetric") == (1, 0)  # padding=1, output_padding=1
    assert transposed.crop_amounts(3, 2, "same") == (0, 1)       # TF: the extra row at the end


@pytest.mark.parametrize("k,s,padding,lo", CASES)
def test_matches_scatter_definition_and_is_the_transpose_of_a_strided_conv(k, s, padding, lo):
    assert transposed.crop_amounts(k, s, padding) == (lo, k - s - lo)
    layer = ConvTranspose(5, k, s, padding, use_bias=True,
                          bias_init=jax.nn.initializers.normal(1.0))
    variables = layer.init(jax.random.PRNGKey(1), X)
    kernel, bias = variables["params"]["kernel"], variables["params"]["bias"]
    assert kernel.shape == (k, k, 3, 5)
    y = layer.apply(variables, X)
    assert y.shape == (2, 3 * s, 4 * s, 5)
    np.testing.assert_allclose(y, scatter_reference(X, kernel, s, lo) + np.asarray(bias),
                               rtol=1e-5, atol=1e-5)
    # gradients: d<T(x), g>/dx is the strided conv of g; d/dkernel equals that of <x, conv(g)>
    g = jax.random.normal(jax.random.PRNGKey(2), y.shape)
    _, vjp = jax.vjp(lambda x_, k_: layer.apply({"params": {"kernel": k_, "bias": bias}}, x_),
                     X, kernel)
    dx, dk = vjp(g)
    np.testing.assert_allclose(dx, strided_conv(g, kernel, s, lo, k - s - lo), rtol=1e-4,
                               atol=1e-4)
    want_dk = jax.grad(lambda k_: jnp.sum(X * strided_conv(g, k_, s, lo, k - s - lo)))(kernel)
    np.testing.assert_allclose(dk, want_dk, rtol=1e-4, atol=1e-4)


def test_hooks_and_rules_apply_and_pad_value_does_not():
    def zero_first_input(layer, x, train):
        return x.at[..., 0].set(0.0)

    def scale_kernel(layer, kernel, train):
        return 3.0 * kernel

    factory = LayerFactory(rules=(Rule(kinds=("transposed",), input_hook=zero_first_input,
                                       kernel_hook=scale_kernel, pad_value=-1.0),))
    layer = factory.conv_transpose(4, name="up")
    assert isinstance(layer, ConvTranspose) and layer.kind == "transposed"
    variables = layer.init(jax.random.PRNGKey(0), X)
    kernel = variables["params"]["kernel"]
    want = scatter_reference(X.at[..., 0].set(0.0), 3.0 * kernel, 2, 1)
    np.testing.assert_allclose(layer.apply(variables, X, train=True), want, rtol=1e-5, atol=1e-5)


def test_vmap_over_parameters_is_a_batched_matmul():
    layer = ConvTranspose(4, 4, 2)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    params = jax.vmap(lambda key: layer.init(key, X))(keys)
    xs = jnp.stack([X, 2 * X, -X])
    ys = jax.vmap(layer.apply)(params, xs)
    for m in range(3):
        one = jax.tree.map(lambda p: p[m], params)
        np.testing.assert_allclose(ys[m], layer.apply(one, xs[m]), rtol=1e-5, atol=1e-5)
    jaxpr = str(jax.make_jaxpr(jax.vmap(layer.apply))(params, xs))
    assert "dot_general" in jaxpr and "conv_general_dilated" not in jaxpr


def test_bad_geometry_is_rejected_at_construction():
    with pytest.raises(ValidationError, match=r"kernel_size \(1\) must be >= strides \(2\)"):
        ConvTranspose(4, 1, 2)
    with pytest.raises(ValidationError, match="strides must be a positive integer"):
        LayerFactory().conv_transpose(4, 4, 0)
    with pytest.raises(ValidationError, match="unknown padding"):
        ConvTranspose(4, 4, 2, "valid")
    with pytest.raises(ValidationError, match="rank-4 input"):
        ConvTranspose(4).init(jax.random.PRNGKey(0), jnp.ones((3, 4, 3)))
