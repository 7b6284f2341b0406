"""Test helper: XLA's grouped convolution as the depthwise reference, and a relative error."""
import jax.numpy as jnp
from jax import lax

from lightjax.layers.padding import pad_amounts


def reference(x, kernel, stride, padding):
    """Depthwise conv of NHWC ``x`` with a (k, k, 1, C) kernel by ``lax`` at highest precision."""
    kh = kernel.shape[0]
    pads = (pad_amounts(x.shape[1], kh, stride, padding),
            pad_amounts(x.shape[2], kh, stride, padding))
    return lax.conv_general_dilated(x, kernel, (stride, stride), pads,
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                    feature_group_count=x.shape[-1],
                                    precision=lax.Precision.HIGHEST)


def rel_err(a, b):
    """max |a - b| / max |b|, in float32."""
    a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
    return float(jnp.abs(a - b).max() / (jnp.abs(b).max() + 1e-12))
