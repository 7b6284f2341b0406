"""Masked forward == compact forward for every model family, with random masks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lightjax import cost, models
from lightjax.layers import LayerFactory
from lightjax.prune import compact, groups as groups_lib, masking

from model_fixtures import random_variables

X16 = jnp.asarray(np.random.default_rng(3).standard_normal((4, 16, 16, 3)), jnp.float32)

FAMILIES = {
    "mobilenet_v1": dict(alpha=0.25),
    "mobilenet_v1_rhs_bias": dict(alpha=0.25, variant="rhs", pointwise_bias=True,
                                  activation="rrelu"),
    "mobilenet_v2": dict(alpha=0.35, dropout=0.0),
    "shufflenet_v1": dict(groups=1, scale=0.5),
    "shufflenet_v2": dict(scale=0.5),
}


def random_masks(groups, rng):
    out = {}
    for g in groups.groups:
        m = np.ones(g.size, np.float32)
        if g.prunable:
            drop = rng.integers(1, g.size // 2 + 1) // g.step * g.step
            m[rng.choice(g.size, size=drop, replace=False)] = 0
        out[g.name] = m
    return out


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request):
    kwargs = dict(FAMILIES[request.param])
    name = request.param.split("_rhs")[0]
    model = models.create(name, num_classes=10, stem_stride=1,
                          layers=LayerFactory(depthwise_impl="xla"), **kwargs)
    groups = groups_lib.derive(model, (1, 8, 8, 3))
    return name, model, groups


def test_masked_equals_compact(family):
    name, model, groups = family
    assert groups.prunable, groups.describe()
    rng = np.random.default_rng(0)
    gm = random_masks(groups, rng)
    net = masking.masked(model)
    variables = random_variables(net, X16, False)
    variables = masking.apply(variables, groups, gm)
    small, small_vars = compact.compact(net, variables, groups, gm, (1, 16, 16, 3))
    assert type(small) is type(model)
    for train in (False, True):
        kw = dict(mutable=["batch_stats"]) if train else {}
        full = jax.jit(lambda v, x: net.apply(v, x, train, **kw))(variables, X16)
        comp = jax.jit(lambda v, x: small.apply(v, x, train, **kw))(small_vars, X16)
        if train:
            (full, full_upd), (comp, comp_upd) = full, comp
            # running statistics of the kept channels are updated identically
            sliced = compact.slice_variables(groups, full_upd, compact.kept_slots(groups, gm))
            jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
                         sliced["batch_stats"], comp_upd["batch_stats"])
        # train-mode BN over 4 x 2 x 2 positions at stage 4 amplifies float32 rounding (the same
        # comparison in float64 agrees to 1e-13)
        tol = 2e-3 if train else 1e-4
        np.testing.assert_allclose(full, comp, rtol=tol, atol=tol)
    # counts of the compact model == `lightjax cost --widths ...`
    report = cost.count(small, (1, 32, 32, 3))
    again = cost.count(models.create(name, **{**small_kwargs(small)}), (1, 32, 32, 3))
    assert (report.params, report.macs) == (again.params, again.macs)
    n_params = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(small_vars["params"]))
    assert n_params == report.params
    full_report = cost.count(model, (1, 32, 32, 3))
    assert report.params < full_report.params and report.macs < full_report.macs


def small_kwargs(small):
    import dataclasses
    fields = {f.name for f in dataclasses.fields(small)} - {"parent", "name", "layers"}
    return {k: getattr(small, k) for k in fields}
