"""Test helper: variables of a module's shapes filled from numpy, without compiling ``init``.

``module.init`` would compile every initializer; ``jax.eval_shape`` compiles nothing. Kernels are
fan-in scaled, BN statistics and affine parameters are far from the identity, so reference
comparisons exercise every term. Importable from any test module: pytest puts ``tests/`` (the
directory of the root ``conftest.py``) on ``sys.path``.
"""
import jax
import jax.numpy as jnp
import numpy as np


def random_variables(module, x, *args, seed=0):
    """Variables for ``module.apply(v, x, *args)``, filled deterministically from ``seed``."""
    shapes = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), x, *args))
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        noise = rng.standard_normal(leaf.shape).astype(np.float32)
        name = path[-1].key
        if name == "kernel":
            return jnp.asarray(noise / np.sqrt(np.prod(leaf.shape[:-1])))
        if name == "var":
            return jnp.asarray(1.0 + 0.5 * np.abs(noise))
        return jnp.asarray((1.0 if name == "scale" else 0.0) + 0.2 * noise)
    return jax.tree.map_with_path(fill, shapes)
