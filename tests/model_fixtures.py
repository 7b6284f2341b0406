"""Test helpers shared by model tests: random variables without compiling ``init``, CIFAR runs.

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


#: A fixed (2, 32, 32, 3) batch for CIFAR-size forward passes.
X32 = jnp.asarray(np.random.default_rng(1).standard_normal((2, 32, 32, 3)), jnp.float32)


def cifar_runs(name, **kwargs):
    """Build ``name`` (10 classes, stride-1 stem) and run it on :data:`X32` once: eval and train
    mode with the 'xla' depthwise conv, eval mode with 'shifted'. For module-scoped fixtures."""
    from lightjax import models
    from lightjax.layers import LayerFactory

    model = models.create(name, num_classes=10, stem_stride=1,
                          layers=LayerFactory(depthwise_impl="xla"), **kwargs)
    variables = random_variables(model, X32)
    both = jax.jit(lambda v, x: (model.apply(v, x, False),
                                 model.apply(v, x, True, mutable=["batch_stats"])))
    logits, (train_logits, updates) = both(variables, X32)
    shifted = model.clone(layers=LayerFactory(depthwise_impl="shifted"))
    shifted_logits = jax.jit(lambda v, x: shifted.apply(v, x, False))(variables, X32)
    return dict(model=model, variables=variables, logits=logits, train_logits=train_logits,
                updates=updates, shifted_logits=shifted_logits)


def check_impls_agree(runs):
    """The 'xla' and 'shifted' depthwise implementations give the same eval logits."""
    np.testing.assert_allclose(runs["logits"], runs["shifted_logits"], rtol=1e-4, atol=1e-4)


def check_train_mode_updates_batch_stats(runs):
    """Train mode updates every running statistic and uses batch statistics."""
    old, new = runs["variables"]["batch_stats"], runs["updates"]["batch_stats"]
    assert jax.tree.structure(old) == jax.tree.structure(new)
    changed = jax.tree.leaves(jax.tree.map(lambda a, b: not np.allclose(a, b), old, new))
    assert all(changed)
    assert not np.allclose(runs["logits"], runs["train_logits"])  # batch statistics used


def half_masks(groups, rng):
    """Channel masks keeping a random half of every prunable group (whole groups otherwise)."""
    out = {}
    for g in groups.groups:
        m = np.ones(g.size, np.float32)
        if g.prunable:
            m[rng.choice(g.size, size=g.size // 2, replace=False)] = 0
        out[g.name] = m
    return out
