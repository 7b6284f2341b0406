"""``sweeps/activations.py``: valid axes and activation names, one compiled group per activation."""
import pytest

from lightjax import cost, models
from lightjax.layers import activations
from lightjax.sweep import load, plan as plan_lib

STUDY = {"relu", "relu6", "leaky_relu_0.1", "swish", "hard_swish", "rrelu", "relu_hswish"}


@pytest.mark.parametrize("arg", ["", "tiny", "cifar100"])
def test_activation_sweeps_load_and_group_per_activation(arg):
    sweep = load(f"activations:{arg}" if arg else "activations")
    acts = [m["model.activation"] for m in sweep.members]
    assert set(acts) == (STUDY if arg != "tiny" else {"relu", "hard_swish", "relu_hswish"})
    for name in set(acts):
        activations.create(name)  # a registry name (or leaky_relu_<slope>)
    assert all(acts.count(a) == 2 for a in acts)  # two seeds each
    groups = plan_lib.plan(sweep)
    assert len(groups) == len(set(acts)) and all(len(g.members) == 2 for g in groups)
    configs = sweep.configs()
    assert {c.model.name for c in configs} == {"mobilenet_v1"}
    # ReLU-h-swish is the whole MobileNet-rhs unit (with the pointwise bias its source counts);
    # every other activation plugs into the standard unit
    for c in configs:
        rhs = c.model.activation == "relu_hswish"
        assert (c.model.variant, c.model.pointwise_bias) == (("rhs", True) if rhs else
                                                             ("standard", False))
    if arg == "tiny":
        assert {(c.data.resolution, c.train.epochs, c.data.name) for c in configs} == \
            {(8, 1, "digits")}


def _model(cfg, num_classes=10):
    kwargs = {k: v for k, v in cfg.model.to_dict().items() if k != "name"}
    return models.create(cfg.model.name, num_classes=num_classes, **kwargs)


def test_relu_hswish_member_builds_mobilenet_rhs():
    configs = {(c.model.activation, c.train.seed): c for c in load("activations").configs()}
    rhs, relu = _model(configs["relu_hswish", 0]), _model(configs["relu", 0])
    assert rhs.variant == "rhs" and rhs.pointwise_bias and rhs._activations() == (
        "relu_hswish", None)
    assert relu.variant == "standard" and not relu.pointwise_bias
    # same widths; the rhs unit adds one bias per pointwise output channel and nothing else
    shape = (1, 32, 32, 3)
    pw = sum(relu.resolved_widths()[1:])
    assert cost.count(rhs, shape).params == cost.count(relu, shape).params + pw
    # on CIFAR-100 the member is exactly the mobilenet_v1_cifar100:rhs model (3,315,428 params)
    c100 = {c.model.activation: c for c in load("activations:cifar100").configs()}
    assert cost.count(_model(c100["relu_hswish"], 100), (1, 32, 32, 3)).params == 3_315_428


def test_variant_by_activation_grid():
    sweep = load("activations:grid")
    configs = sweep.configs()
    cells = [(c.model.variant, c.model.activation) for c in configs]
    assert len(cells) == 2 * len(STUDY) * 2
    assert set(cells) == {(v, a) for v in ("standard", "rhs") for a in STUDY}
    assert all(cells.count(cell) == 2 for cell in cells)  # two seeds each
    assert all(c.model.pointwise_bias == (c.model.variant == "rhs") for c in configs)
    groups = plan_lib.plan(sweep, configs=configs)
    assert len(groups) == 2 * len(STUDY) and all(len(g.members) == 2 for g in groups)
    c100 = load("activations:grid_cifar100").configs()
    assert {c.data.name for c in c100} == {"cifar100"} and len(c100) == len(configs)


def test_unknown_argument():
    with pytest.raises(ValueError, match="unknown argument 'big'"):
        load("activations:big")


def test_trainable_activation_init_is_a_traced_axis():
    sweep = load("activations:rrelu_init")
    groups = plan_lib.plan(sweep)
    assert len(groups) == 1 and len(groups[0].members) == 6
    assert sorted({m["train.activation_init"] for m in sweep.members}) == [0.0, 0.1, 0.25]


def test_activation_init_needs_a_value_for_every_member_and_a_trainable_activation(tmp_path):
    from lightjax.sweep import Sweep, runner

    mixed = Sweep("digits:tiny", [{"model.activation": "rrelu", "train.activation_init": 0.1},
                                  {"model.activation": "rrelu", "train.seed": 1}])
    with pytest.raises(ValueError, match="some members of a group and not for others"):
        runner.run(mixed, str(tmp_path / "s"), progress=False)
    assert not (tmp_path / "s").exists()
    with pytest.raises(ValueError, match="no trainable activation parameters"):
        activations.set_trainable_init({"conv": {"kernel": 0.0}}, 0.1)
