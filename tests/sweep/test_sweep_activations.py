"""``sweeps/activations.py``: valid axes and activation names, one compiled group per activation."""
import pytest

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
    if arg == "tiny":
        assert {(c.data.resolution, c.train.epochs, c.data.name) for c in configs} == \
            {(8, 1, "digits")}


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
