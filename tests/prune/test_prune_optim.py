"""The optax wrapper keeps pruned entries and their optimizer state exactly zero."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lightjax.prune.optim import masked_updates


@pytest.mark.parametrize("inner", [optax.sgd(0.1, momentum=0.9), optax.adam(0.1),
                                   optax.sgd(0.1, momentum=0.9, nesterov=True)])
def test_momentum_cannot_revive_pruned_filters(inner):
    params = {"kernel": jnp.ones((2, 3)), "bias": jnp.ones(3)}
    tx = masked_updates(inner)
    state = tx.init(params)
    loss = lambda p: ((p["kernel"] - 5.0) ** 2).sum() + ((p["bias"] + 1.0) ** 2).sum()
    full = {"kernel": jnp.ones((1, 3)), "bias": jnp.ones(3)}
    for _ in range(3):  # build up momentum with everything active
        updates, state = tx.update(jax.grad(loss)(params), state, params, param_masks=full)
        params = optax.apply_updates(params, updates)
    # prune output channel 1 (kernel column and bias entry): zero it, as compaction-by-mask does
    masks = {"kernel": jnp.array([[1.0, 0.0, 1.0]]), "bias": jnp.array([1.0, 0.0, 1.0])}
    params = jax.tree.map(lambda p, m: p * m, params, masks)
    for _ in range(5):
        updates, state = tx.update(jax.grad(loss)(params), state, params, param_masks=masks)
        params = optax.apply_updates(params, updates)
    assert float(jnp.abs(params["kernel"][:, 1]).max()) == 0.0
    assert float(params["bias"][1]) == 0.0
    for leaf in jax.tree.leaves(optax.tree_map_params(
            inner, lambda s: s, state.inner, transform_non_params=lambda _: None)):
        if leaf is not None and leaf.ndim == 2:
            assert float(jnp.abs(leaf[:, 1]).max()) == 0.0
        elif leaf is not None and leaf.ndim == 1:
            assert float(leaf[1]) == 0.0
    assert float(jnp.abs(params["kernel"][:, 0] - 1.0).min()) > 0  # active ones still train


def test_masks_are_required():
    tx = masked_updates(optax.sgd(0.1))
    params = {"w": jnp.ones(2)}
    with pytest.raises(ValueError, match="param_masks"):
        tx.update(params, tx.init(params), params)


def test_vmaps_over_members():
    tx = masked_updates(optax.sgd(0.1, momentum=0.9))
    params = {"w": jnp.ones((4, 3))}
    masks = {"w": jnp.array([[1.0, 0, 1], [0, 1, 1], [1, 1, 1], [0, 0, 1]])}
    state = jax.vmap(tx.init)(params)
    step = jax.vmap(lambda p, s, m: tx.update(p, s, p, param_masks=m))
    updates, _ = step(params, state, masks)
    np.testing.assert_array_equal(updates["w"] == 0, masks["w"] == 0)
