"""Masks: MobileNet-rhs pruning counts (pw13 −256 kernels = −288,512 params; pw11/12/13 = −545,152), masked updates keep pruned filters at zero, bad masks."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lightjax import cost, models
from lightjax.prune import compact, groups as groups_lib, masking, optim, ranking
from lightjax import tasks
from lightjax.prune.plugin import Pruning, Schedule
from lightjax.train import step as step_lib

from model_fixtures import random_variables


@pytest.fixture(scope="module")
def rhs():
    """MobileNet-rhs on CIFAR-100 with pointwise biases (3,315,428 params, as the MobileNet-rhs source counts them)."""
    model = models.create("mobilenet_v1", num_classes=100, variant="rhs", pointwise_bias=True,
                          stem_stride=1)
    return model, groups_lib.derive(model, (1, 8, 8, 3), check=False)


def _removed_params(model, groups, removal):
    gm = groups.ones()
    for name, n in removal.items():
        gm[name][-n:] = 0
    small = model.clone(widths=compact.compact_widths(model, groups, gm))
    before = cost.count(model, (1, 32, 32, 3)).params
    return before, before - cost.count(small, (1, 32, 32, 3)).params


def test_rhs_pw13_minus_256_kernels(rhs):
    before, removed = _removed_params(*rhs, {"unit13/pw": 256})
    assert before == 3_315_428
    assert removed == 288_512  # published: -288,512 params (-8.7%)
    assert round(100 * removed / before, 1) == 8.7


def test_rhs_three_layers(rhs):
    _, removed = _removed_params(*rhs, {"unit11/pw": 64, "unit12/pw": 128, "unit13/pw": 256})
    assert removed == 545_152  # published: 545,152 fewer params (-16.4%)


X = jnp.asarray(np.random.default_rng(0).standard_normal((8, 16, 16, 3)), jnp.float32)
Y = jnp.asarray(np.arange(8) % 10)


def test_pruned_filters_stay_zero_after_finetuning():
    """The pruning plug-in through the generic train step (which knows nothing of pruning)."""
    model = models.create("mobilenet_v1", alpha=0.25, num_classes=10, stem_stride=1)
    groups = groups_lib.derive(model, (1, 8, 8, 3))
    plugin = Pruning(groups, model, [Schedule()], None, (1, 16, 16, 3))
    net = plugin.transform(model)
    variables = random_variables(net, X, False)
    tx = plugin.wrap(optax.sgd(0.05, momentum=0.9))
    state = step_lib.TrainState(jnp.zeros((), jnp.int32), variables["params"],
                                variables["batch_stats"], tx.init(variables["params"]),
                                jax.random.PRNGKey(0),
                                compression={"prune": jax.tree.map(jnp.asarray, groups.ones())})
    task = tasks.create("classification", num_classes=10)
    train = jax.jit(step_lib.make_train_step(net, tx, task, [plugin]))
    batch = {"image": X, "label": Y}
    for _ in range(3):  # momentum builds up while nothing is pruned
        state, _ = train(state, batch)
    scores = ranking.scores(groups, {"params": state.params}, "l1")
    gm = ranking.select(groups, groups.ones(), scores, 0.5)
    assert ranking.sparsity(groups, gm) == pytest.approx(0.5, abs=0.01)
    pm = masking.param_masks(groups, gm, state.params)
    state = state.replace(params=jax.tree.map(lambda p, m: p * m, state.params, pm),
                          compression={"prune": jax.tree.map(jnp.asarray, gm)})
    for _ in range(4):
        state, metrics = train(state, batch)
    assert np.isfinite(float(metrics["loss"]))
    zero = jax.tree.map(lambda p, m: np.all(np.asarray(p)[np.broadcast_to(m, p.shape) == 0] == 0),
                        state.params, pm)
    assert all(jax.tree.leaves(zero))
    kernel = state.params["unit5"]["pw"]["conv"]["kernel"]
    pruned = np.asarray(gm["unit5/pw"]) == 0
    assert pruned.sum() == 32 and np.all(np.asarray(kernel)[..., pruned] == 0)
    assert np.all(np.any(np.asarray(kernel)[..., ~pruned] != 0, axis=(0, 1, 2)))
    # consumers' input channels too (unit6's depthwise follows; unit6/pw reads them)
    assert np.all(np.asarray(state.params["unit6"]["pw"]["conv"]["kernel"])[:, :, pruned] == 0)
    momentum = state.opt_state.inner[0].trace
    assert np.all(np.asarray(momentum["unit5"]["pw"]["conv"]["kernel"])[..., pruned] == 0)
    assert np.all(np.asarray(momentum["unit5"]["pw"]["bn"]["scale"])[pruned] == 0)


def test_bad_masks_are_rejected():
    model = models.create("mobilenet_v1", alpha=0.25, num_classes=10)
    groups = groups_lib.derive(model, (1, 8, 8, 3), check=False)
    other = groups_lib.derive(models.create("mobilenet_v2", alpha=0.35, num_classes=10),
                              (1, 8, 8, 3), check=False)
    with pytest.raises(ValueError, match="another architecture"):
        masking.check(groups, other.ones())
    gm = groups.ones()
    gm["unit4/pw"][:] = 0
    with pytest.raises(ValueError, match="prunes all 64 channels"):
        masking.check(groups, gm)
    gm = groups.ones()
    gm["stem"][0] = 0
    with pytest.raises(ValueError, match="group stem cannot be pruned"):
        masking.check(groups, gm)
    gm = groups.ones()
    gm["unit4/pw"] = np.ones(65, np.float32)
    with pytest.raises(ValueError, match=r"expected \(64,\)"):
        masking.check(groups, gm)
    scores = {g.name: np.ones(g.size) for g in groups.prunable}
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"ratio must be a number in \[0, 1\)"):
            ranking.select(groups, groups.ones(), scores, bad)
    with pytest.raises(ValueError, match="no channel group or prunable layer named 'unit99/pw'"):
        ranking.select(groups, groups.ones(), scores, {"unit99/pw": 0.5})
    with pytest.raises(ValueError, match="group stem cannot be pruned"):
        ranking.select(groups, groups.ones(), scores, {"stem": 0.5})


def test_local_global_rounding_and_caps():
    model = models.create("mobilenet_v1", alpha=0.25, num_classes=10)
    groups = groups_lib.derive(model, (1, 8, 8, 3), check=False)
    rng = np.random.default_rng(0)
    scores = {g.name: rng.random(g.size) for g in groups.prunable}
    local = ranking.select(groups, groups.ones(), scores, 0.3, round_to=8)
    for g in groups.prunable:
        kept = int(local[g.name].sum())
        assert kept % 8 == 0 and kept >= g.size * 0.7 - 1e-9 or kept == 8
    # global: one layer's scores 100x smaller are not pruned first just by scale
    scaled = dict(scores, **{"unit13/pw": scores["unit13/pw"] * 0.01})
    glob = ranking.select(groups, groups.ones(), scaled, 0.5, ranking="global", max_ratio=0.6)
    assert 1 - glob["unit13/pw"].mean() <= 0.6 + 1e-9
    assert ranking.sparsity(groups, glob) == pytest.approx(0.5, abs=0.05)
    # already-pruned channels are never re-selected: pruning 0.5 then 0.5 keeps half
    again = ranking.select(groups, local, scores, 0.5)
    assert all(np.all(again[g.name] <= local[g.name]) for g in groups.prunable)
    assert int(again["unit13/pw"].sum()) == 128
    capped = ranking.select(groups, groups.ones(), scores, 0.5,
                            max_ratio={"*": 0.9, "unit13/pw": 0.25})
    assert int(capped["unit13/pw"].sum()) == 192 and int(capped["unit12/pw"].sum()) == 128
    one_kept = ranking.select(groups, groups.ones(), scores, 0.99, max_ratio=0.99)
    assert min(int(one_kept[g.name].sum()) for g in groups.prunable) >= 1
