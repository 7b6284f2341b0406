"""Channel tracing and channel groups, derived from the models (no per-model tables)."""
import flax.linen as nn
import jax
import numpy as np
import pytest

from lightjax import models
from lightjax.layers import LayerFactory, channel_shuffle
from lightjax.layers.shuffle import shuffle_permutation
from lightjax.prune import groups as groups_lib
from lightjax.prune import trace as trace_lib


class ShuffleNet(nn.Module):
    """A user's own model from lightjax layers: conv(6) -> shuffle(2) -> split -> two consumers."""
    layers: LayerFactory = LayerFactory()

    @nn.compact
    def __call__(self, x, train=False):
        x = self.layers.conv(6, 3, name="a")(x)
        x = channel_shuffle(x, 2)
        left = self.layers.pointwise(4, name="left")(x[..., :2])
        both = self.layers.pointwise(5, name="both")(x)
        return left.mean() + both.mean()


def test_trace_follows_shuffle_and_split():
    tr = trace_lib.trace_channels(ShuffleNet(), (1, 4, 4, 3))
    a = tr.layer("a")
    perm = shuffle_permutation(6, 2)
    assert tr.inputs["both"] == tuple((a.first_id + int(p),) for p in perm)
    assert tr.inputs["left"] == tuple((a.first_id + int(p),) for p in perm[:2])
    assert tr.inputs["a"] == ((), (), ())  # the network input carries no producer channel


@pytest.fixture(scope="module")
def v1_groups():
    return groups_lib.derive(models.create("mobilenet_v1", alpha=0.25, num_classes=10),
                             (1, 8, 8, 3))


def test_mobilenet_v1_groups(v1_groups):
    g = v1_groups
    assert [x.name for x in g.prunable] == [f"unit{i}/pw" for i in range(1, 14)]
    assert not g["stem"].prunable and "first convolution" in g["stem"].reason
    assert not g["head/fc"].prunable
    # the depthwise conv after unit3/pw and its BN share the slots of unit3/pw
    sl = g.slots("unit3/pw")
    np.testing.assert_array_equal(g.outputs["unit4/dw/conv"], np.arange(sl.start, sl.stop))
    np.testing.assert_array_equal(g.inputs["unit4/dw/bn"], np.arange(sl.start, sl.stop))
    np.testing.assert_array_equal(g.inputs["unit4/pw/conv"], np.arange(sl.start, sl.stop))
    assert g["unit3/pw"].size == 32


def test_skip_and_unknown_names():
    model = models.create("mobilenet_v1", alpha=0.25, num_classes=10)
    g = groups_lib.derive(model, (1, 8, 8, 3), skip=["unit13/pw"], check=False)
    assert not g["unit13/pw"].prunable and g["unit13/pw"].reason == "skipped by the user"
    with pytest.raises(ValueError, match="no prunable layer, group or module path prefix named "
                                         "'unit14/pw'"):
        groups_lib.derive(model, (1, 8, 8, 3), skip=["unit14/pw"], check=False)
    with pytest.raises(ValueError, match="no channel group or prunable layer named"):
        g.check_name("nope")
    with pytest.raises(ValueError, match="no channel group or prunable layer named 'unit'"):
        g.select(["unit"])  # a prefix ends at a '/': unit is not a prefix of unit1/pw
    assert [x.name for x in g.select(["unit1"])] == ["unit1/pw"]  # not unit10/pw ... unit13/pw


def test_module_path_prefixes_select_groups():
    """``skip=['backbone']`` keeps every group with a layer under backbone/ (YOLOv3: the head
    alone is pruned, as in the YOLOv3-Mobile paper); ``select`` expands prefixes in model order."""
    model = models.create("yolov3_mobilenet_v1", num_classes=3, alpha=0.25, head_width=0.25)
    g = groups_lib.derive(model, (1, 32, 32, 3), skip=["backbone"], check=False)
    prunable = [x.name for x in g.prunable]
    assert prunable == [f"neck{i}/{n}" for i in range(3)
                        for n in ("conv0", "conv1", "conv2", "conv3", "route", "tip")]
    assert all(x.reason == "skipped by the user" for x in g.groups
               if x.name.startswith("backbone/") and x.name != "backbone/stem")
    assert [x.name for x in g.select(["neck1", "neck0/tip"])] == \
        ["neck0/tip"] + [f"neck1/{n}" for n in ("transition/conv", "conv0", "conv1", "conv2",
                                                  "conv3", "route", "tip")]


def test_mobilenet_v2_residuals_tie_projects():
    g = groups_lib.derive(models.create("mobilenet_v2", alpha=0.35, num_classes=10),
                          (1, 8, 8, 3))
    tied = g["block3/project"]
    assert tied.name == "block2/project" and tied.layers == ("block2/project", "block3/project")
    assert g["block5/project"].layers == ("block4/project", "block5/project", "block6/project")
    assert g["block2/expand"].prunable and g["head_conv"].prunable


def test_shufflenet_v2_split_and_shuffle_fix_stage_outputs():
    g = groups_lib.derive(models.create("shufflenet_v2", scale=0.5, num_classes=10),
                          (1, 8, 8, 3))
    assert g["stage3_unit2/branch2_pw1"].prunable and g["conv5"].prunable
    for name in ("stage2_unit1/branch1_pw", "stage3_unit4/branch2_pw2"):
        assert not g[name].prunable and g[name].reason


def test_shufflenet_v1_grouped_convs_are_reported():
    g3 = groups_lib.derive(models.create("shufflenet_v1", groups=3, scale=0.5, num_classes=10),
                           (1, 8, 8, 3))
    assert not g3.prunable
    assert "grouped convolution" in g3["stage3_unit2/gconv1"].reason
    g1 = groups_lib.derive(models.create("shufflenet_v1", groups=1, scale=0.5, num_classes=10),
                           (1, 8, 8, 3))
    assert len(g1.prunable) == 16  # every bottleneck
    # stage outputs: the stem, each stage's first gconv2 and all residual gconv2 are one group
    assert g1["stem"].layers[:2] == ("stem", "stage2_unit1/gconv2")


def test_se_width_rule_detected():
    g = groups_lib.derive(models.create("mobilenet_v1", alpha=0.25, num_classes=10,
                                        se_reduction=4), (1, 8, 8, 3))
    assert not g["unit5/pw"].prunable and "unit6/se/reduce" in g["unit5/pw"].reason
    assert g["unit13/pw"].prunable


def test_groups_are_static_and_jit_friendly(v1_groups):
    from lightjax.prune import masking
    gm = v1_groups.ones()
    gm["unit2/pw"][:5] = 0
    lm = jax.jit(lambda m: masking.layer_masks(v1_groups, m))(gm)
    assert float(lm["unit3"]["dw"]["conv"]["input"].sum()) == 27
    # vmapped over a member axis of the masks
    stacked = jax.tree.map(lambda a: np.stack([a, np.ones_like(a)]), gm)
    lm2 = jax.vmap(lambda m: masking.layer_masks(v1_groups, m))(stacked)
    assert lm2["unit3"]["pw"]["conv"]["input"].shape == (2, 32)
