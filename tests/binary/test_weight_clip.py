"""weight_clip keeps latent binary weights in [-c, c] and otherwise leaves updates bit for bit."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lightjax.binary.optim import weight_clip
from lightjax.binary.quantizers import ste_sign
from lightjax.errors import ValidationError


def _params():
    keys = jax.random.split(jax.random.key(0), 3)
    return {"kernel": jax.random.uniform(keys[0], (64, 32), minval=-1.0, maxval=1.0),
            "bias": jax.random.normal(keys[1], (32,)),
            "inner": {"scale": jax.random.uniform(keys[2], (32,), minval=0.5, maxval=3.0)}}


def _grads(step):
    return jax.tree.map(lambda p: jax.random.normal(jax.random.key(step), p.shape), _params())


def _train(tx, steps=5):
    params = _params()
    state = tx.init(params)

    @jax.jit
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    for i in range(steps):
        params, state = step(params, state, _grads(i + 1))
    return params


@pytest.mark.parametrize("clip", [1.0, 0.7, 0.3, 2.5])
def test_large_steps_stay_inside_the_bound(clip):
    params = _train(optax.chain(optax.sgd(10.0), weight_clip(clip)))
    c = np.float32(clip)
    for leaf in jax.tree.leaves(params):
        assert float(jnp.abs(leaf).max()) <= c  # exact, also for bounds float32 cannot represent
        assert int((jnp.abs(leaf) == c).sum()) > leaf.size // 4  # large steps end on the bound


def test_rounding_cannot_overshoot_the_bound():
    # clip(p + u) - p, added back to p, overshoots c for most of these in float32
    p = jax.random.uniform(jax.random.key(4), (100_000,), minval=-3.0, maxval=3.0)
    u = 5 * jax.random.normal(jax.random.key(5), (100_000,))
    for clip in (0.7, 1.0, 0.1, 3.3):
        tx = weight_clip(clip)
        updates, _ = tx.update(u, tx.init(p), p)
        new = optax.apply_updates(p, updates)
        assert float(jnp.abs(new).max()) <= np.float32(clip)
        outside = jnp.abs(p + u) > clip  # on the bound, or a few float32 ulps inside it
        np.testing.assert_allclose(np.asarray(jnp.abs(new)[outside]), np.float32(clip), atol=1e-6)


def test_masked_leaves_are_bit_identical_to_the_plain_optimizer():
    plain = _train(optax.sgd(10.0))
    mask = {"kernel": True, "bias": False, "inner": {"scale": False}}
    for m in (mask, lambda params: mask):
        clipped = _train(optax.chain(optax.sgd(10.0), weight_clip(1.0, mask=m)))
        assert float(jnp.abs(clipped["kernel"]).max()) <= 1.0
        assert float(jnp.abs(plain["kernel"]).max()) > 5.0
        for name in ("bias", "inner"):
            for a, b in zip(jax.tree.leaves(clipped[name]), jax.tree.leaves(plain[name])):
                np.testing.assert_array_equal(np.asarray(a).view(np.uint32),
                                              np.asarray(b).view(np.uint32))


def test_prefix_mask():
    clipped = _train(optax.chain(optax.sgd(10.0), weight_clip(1.0, mask={
        "kernel": False, "bias": False, "inner": True})))
    assert float(jnp.abs(clipped["inner"]["scale"]).max()) <= 1.0
    assert float(jnp.abs(clipped["kernel"]).max()) > 5.0


def test_in_range_entries_keep_the_inner_updates_bit_for_bit():
    params = _params()
    inner = optax.adam(0.3)
    inner_updates, _ = inner.update(_grads(7), inner.init(params), params)
    tx = weight_clip(1.0)
    updates, _ = jax.jit(tx.update)(inner_updates, tx.init(params), params)
    for u, ref, p in zip(jax.tree.leaves(updates), jax.tree.leaves(inner_updates),
                         jax.tree.leaves(params)):
        inside = np.asarray(jnp.abs(p + ref) <= 1.0)
        assert 0 < inside.sum() < inside.size  # both kinds of entries are exercised
        np.testing.assert_array_equal(np.asarray(u).view(np.uint32)[inside],
                                      np.asarray(ref).view(np.uint32)[inside])
        assert not np.array_equal(np.asarray(u)[~inside], np.asarray(ref)[~inside])


def test_clipping_keeps_binary_weights_from_starving():
    # push one latent weight up, then ask for the opposite sign
    up, down = (lambda w: -ste_sign(w).sum()), (lambda w: ste_sign(w).sum())

    def run(tx):
        w = jnp.array([0.5])
        state = tx.init(w)
        for loss in (up,) * 3 + (down,) * 3:
            updates, state = tx.update(jax.grad(loss)(w), state, w)
            w = optax.apply_updates(w, updates)
        return float(w[0])

    assert run(optax.sgd(1.0)) == 1.5  # beyond the STE's clip: zero gradient, stuck at +1
    assert run(optax.chain(optax.sgd(1.0), weight_clip(1.0))) == -1.0  # flips to -1


def test_nan_is_not_hidden():
    p = jnp.array([0.5, 0.5])
    tx = weight_clip(1.0)
    updates, _ = tx.update(jnp.array([jnp.nan, 0.1]), tx.init(p), p)
    assert np.isnan(np.asarray(updates)[0]) and float(updates[1]) == pytest.approx(0.1)


def test_params_are_required():
    p = {"w": jnp.ones(3)}
    for tx in (weight_clip(1.0), weight_clip(1.0, mask=lambda params: {"w": True}),
               optax.chain(optax.sgd(0.1), weight_clip(1.0))):
        with pytest.raises(ValidationError, match="needs the params"):
            tx.update(p, tx.init(p))


@pytest.mark.parametrize("clip", [0, -1.0, float("inf"), float("nan"), None, "1", True, [1.0]])
def test_bad_clip_value(clip):
    with pytest.raises(ValidationError, match="clip_value must be a positive finite number"):
        weight_clip(clip)
