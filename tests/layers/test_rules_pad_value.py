"""pad_value: every padded conv kind and depthwise implementation equals an explicit jnp.pad with
that constant followed by a VALID conv, in value and gradient; rules set it (ConvBN included)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from lightjax.layers import Conv, ConvBN, DepthwiseConv, GroupConv, LayerFactory, Rule
from lightjax.layers.padding import pad_amounts

C = -1.0
X = jax.random.normal(jax.random.PRNGKey(0), (2, 7, 6, 4))


def reference(x, kernel, stride, padding, groups, c):
    k = kernel.shape[0]
    pads = [pad_amounts(x.shape[a], k, stride, padding) for a in (1, 2)]
    xp = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=c)
    return lax.conv_general_dilated(xp, kernel, (stride, stride), "VALID",
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                    feature_group_count=groups, precision="highest")


LAYERS = {
    "standard": (lambda s, p: Conv(6, 3, s, p, pad_value=C), 1),
    "group": (lambda s, p: GroupConv(6, 3, s, p, groups=2, pad_value=C), 2),
    "depthwise_shifted": (lambda s, p: DepthwiseConv(4, 3, s, p, impl="shifted", pad_value=C), 4),
    "depthwise_xla": (lambda s, p: DepthwiseConv(4, 3, s, p, impl="xla", pad_value=C), 4),
    "depthwise_auto": (lambda s, p: DepthwiseConv(4, 3, s, p, impl="auto", pad_value=C), 4),
}
#: (stride, padding); at stride 1 both conventions pad an odd kernel the same way. 7 x 6 inputs:
#: 'same' pads the odd side asymmetrically at stride 2.
GEOMETRIES = ((1, "symmetric"), (2, "symmetric"), (2, "same"))


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_pad_value_equals_explicit_padding_value_and_gradient(kind):
    make, groups = LAYERS[kind]
    for stride, padding in GEOMETRIES:
        layer = make(stride, padding)
        kernel = layer.init(jax.random.PRNGKey(2), X)["params"]["kernel"]

        def ours(x, k):
            return layer.apply({"params": {"kernel": k}}, x)

        def ref(x, k):
            return reference(x, k, stride, padding, groups, C)

        (y, vjp), (want, want_vjp) = jax.vjp(ours, X, kernel), jax.vjp(ref, X, kernel)
        msg = f"{kind} stride {stride} {padding}"
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5, err_msg=msg)
        g = jax.random.normal(jax.random.PRNGKey(1), y.shape)  # cotangent
        for a, b in zip(vjp(g), want_vjp(g)):  # d/dx and d/dkernel
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=msg + " grad")


def test_pad_value_applies_after_the_input_hook_and_reaches_conv_bn():
    """A +-1 binarizing input hook and padding with -1: the conv sees only +-1 values."""
    rule = Rule(kinds=("depthwise",), pad_value=C,
                input_hook=lambda layer, x, train: jnp.where(x >= 0, 1.0, -1.0))
    block = ConvBN(4, 3, 2, depthwise=True, activation=None,
                   layers=LayerFactory(rules=(rule,), depthwise_impl="shifted"))
    variables = block.init(jax.random.PRNGKey(3), X, train=False)
    # BN in eval mode as the identity up to 1/sqrt(1 + eps)
    y = block.apply(variables, X, train=False) * np.sqrt(1.0 + 1e-5)
    kernel = variables["params"]["conv"]["kernel"]
    want = reference(jnp.where(X >= 0, 1.0, -1.0), kernel, 2, "symmetric", 4, C)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    # pointwise layers have no padding: the rule's pad value changes nothing there
    pw = LayerFactory(rules=(Rule(pad_value=C),)).pointwise(3)
    v = pw.init(jax.random.PRNGKey(0), X)
    np.testing.assert_array_equal(pw.apply(v, X), pw.clone(rules=()).apply(v, X))
