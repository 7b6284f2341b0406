"""Tests for MobileNetV2 and its InvertedResidual block.

Costs at 224 are counted abstractly (``cost.count`` uses ``jax.eval_shape``). Forward passes use
32x32 inputs with ``stem_stride=1``; variables are filled by numpy from ``jax.eval_shape(init)`` so
that no test pays for compiling ``init``, and each jitted forward function is compiled once.
"""
from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lightjax.models.mobilenet_v2  # noqa: F401  (registers 'mobilenet_v2')
from lightjax import cost, models
from lightjax.layers import LayerFactory
from lightjax.layers.inverted_residual import InvertedResidual
from lightjax.models.channels import make_divisible
from lightjax.models.mobilenet_v2 import MobileNetV2

XLA = LayerFactory(depthwise_impl="xla")
SHIFTED = LayerFactory(depthwise_impl="shifted")
SMALL = dict(num_classes=10, stem_stride=1)
X_SHAPE = (2, 32, 32, 3)
TV_TABLE = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1))  # torchvision's t, c, n, s
#: Blocks with a residual add at alpha = 1 (stride 1 and equal input/output channels).
RESIDUAL_BLOCKS = (3, 5, 6, 8, 9, 10, 12, 13, 15, 16)


# ------------------------------------------------------------------------------------- helpers
def _random_variables(model: nn.Module, shape, *args, seed: int = 0):
    """Variables with ``model.init``'s structure, filled by numpy (no XLA compile of ``init``).

    Kernels: He-normal; BN scale / running var in [0.5, 1.5]; biases / running means N(0, 0.1).
    """
    abstract = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, *args),
                              jnp.zeros(shape, jnp.float32))
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        key = path[-1].key
        if key == "kernel":
            value = rng.normal(0.0, math.sqrt(2.0 / math.prod(leaf.shape[:-1])), leaf.shape)
        elif key in ("scale", "var"):
            value = rng.uniform(0.5, 1.5, leaf.shape)
        else:
            value = rng.normal(0.0, 0.1, leaf.shape)
        return jnp.asarray(value, leaf.dtype)

    return jax.tree_util.tree_map_with_path(fill, abstract)


def _torchvision_cost(alpha: float, num_classes: int = 1000, res: int = 224):
    """Closed-form params and MACs of torchvision's ``mobilenet_v2(width_mult=alpha)``.

    Written from torchvision's rules, independent of the model code (it shares only
    ``make_divisible``, tested on its own). BN contributes 2 params per channel.
    """
    params = macs = 0

    def conv(cin, cout, k, hw, groups=1):
        nonlocal params, macs
        params += k * k * cin // groups * cout + 2 * cout
        macs += k * k * cin // groups * cout * hw * hw

    hw = (res + 1) // 2
    cin = make_divisible(32 * alpha)
    conv(3, cin, 3, hw)
    for t, c, n, s in TV_TABLE:
        cout = make_divisible(c * alpha)
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = int(round(cin * t))
            if t != 1:
                conv(cin, hidden, 1, hw)
            hw = (hw + stride - 1) // stride
            conv(hidden, hidden, 3, hw, groups=hidden)
            conv(hidden, cout, 1, hw)
            cin = cout
    last = make_divisible(1280 * max(1.0, alpha))
    conv(cin, last, 1, hw)
    params += last * num_classes + num_classes
    macs += last * num_classes
    return params, macs


def _residual_blocks(feats) -> tuple[int, ...]:
    """Blocks whose output is input + 1, for variables whose project BN outputs exactly 1."""
    found, prev = [], np.asarray(feats["stem"])
    for i in range(1, 18):
        out = np.asarray(feats[f"block{i}"])
        if out.shape == prev.shape and np.allclose(out, prev + 1.0, atol=1e-5):
            found.append(i)
        else:  # no residual: the output is the project branch alone, i.e. exactly 1
            np.testing.assert_allclose(out, 1.0, atol=1e-6)
        prev = out
    return tuple(found)


def _constant_projects(variables):
    """Project BN scale 0 and shift 1: each block's projection branch outputs exactly 1."""
    params = {k: dict(v) for k, v in variables["params"].items()}
    for name, sub in params.items():
        if name.startswith("block"):
            sub["project"] = {**sub["project"], "bn": {
                "scale": jnp.zeros_like(sub["project"]["bn"]["scale"]),
                "bias": jnp.ones_like(sub["project"]["bn"]["bias"])}}
    return {**variables, "params": params}


# ------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def small():
    """A 10-class, stem-stride-1 model (xla depthwise), its variables and a 32x32 batch."""
    model = models.create("mobilenet_v2", layers=XLA, **SMALL)
    variables = _random_variables(model, X_SHAPE)
    x = jax.random.normal(jax.random.PRNGKey(1), X_SHAPE)
    return model, variables, x


@pytest.fixture(scope="module")
def eval_outputs(small):
    """Eval-mode logits and the batch_stats returned with ``mutable=['batch_stats']``."""
    model, variables, x = small
    return jax.jit(lambda v, x: model.apply(v, x, train=False, mutable=["batch_stats"]))(
        variables, x)


@pytest.fixture(scope="module")
def train_outputs(small):
    model, variables, x = small
    return jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"],
                                            rngs={"dropout": jax.random.PRNGKey(2)}))(
        variables, x)


@pytest.fixture(scope="module")
def features_fn(small):
    """Eval-mode ``features``, compiled once and called with several variable sets."""
    model = small[0]
    return jax.jit(lambda v, x: model.apply(v, x, False, method="features"))


# ------------------------------------------------------------------------------------- registry
def test_registered():
    assert "mobilenet_v2" in models.names()
    assert models.get("mobilenet_v2") is MobileNetV2
    assert set(models.hyperparameters("mobilenet_v2")) == {
        "num_classes", "alpha", "activation", "stem_stride", "dropout", "widths",
        "input_channels", "layers"}
    model = models.create("mobilenet_v2")
    assert (model.num_classes, model.alpha, model.activation, model.stem_stride,
            model.dropout) == (1000, 1.0, "relu6", 2, 0.2)


# ------------------------------------------------------------------------------------- costs
def test_reference_cost_width_1():
    model = models.create("mobilenet_v2")
    report = cost.count(model, (1, 224, 224, 3))
    assert report.params == 3_504_872            # torchvision mobilenet_v2()
    assert report.macs == 300_774_272
    assert _torchvision_cost(1.0) == (report.params, report.macs)
    assert round(report.macs / 1e6, 2) == 300.77
    by_type = report.by_type()
    assert by_type["depthwise"]["layers"] == 17
    assert by_type["fc"] == {"params": 1280 * 1000 + 1000, "macs": 1280 * 1000, "layers": 1}
    # Every prunable layer is a ConvBN whose conv has the resolved width.
    rows = {r.name: r for r in report.layers}
    for name, width in zip(model.prunable_layers(), model.resolved_widths()):
        assert rows[f"{name}/conv"].kernel_shape[-1] == width
        assert rows[f"{name}/conv"].output_shape[-1] == width


# Exact torchvision counts: a plain-torch transcription of torchvision's MobileNetV2 counted with
# numel() gives these, as does _torchvision_cost. (1.4 is 6,108,776; a figure of 6,109,848 that
# has been quoted for it does not match torchvision's construction rules.)
TORCHVISION_PARAMS = {0.35: 1_677_128, 0.5: 1_968_680, 1.0: 3_504_872, 1.4: 6_108_776}


@pytest.mark.parametrize("alpha", [0.35, 0.5, 1.4])
def test_cost_matches_torchvision(alpha):
    report = cost.count(models.create("mobilenet_v2", alpha=alpha), (1, 224, 224, 3))
    assert report.params == TORCHVISION_PARAMS[alpha]
    assert (report.params, report.macs) == _torchvision_cost(alpha)


def test_cost_other_classes_and_resolution():
    report = cost.count(models.create("mobilenet_v2", num_classes=100, stem_stride=1),
                        (1, 32, 32, 3))
    expected_params, _ = _torchvision_cost(1.0, num_classes=100)
    assert report.params == expected_params
    # stem stride 1 on 32x32 gives every layer the output size of stride 2 on 64x64
    assert report.macs == _torchvision_cost(1.0, 100, res=64)[1]


# ------------------------------------------------------------------------------------- channels
def _stage_outputs(model):
    names = model.prunable_layers()
    widths = dict(zip(names, model.resolved_widths()))
    last_blocks = np.cumsum([n for _, _, n, _ in TV_TABLE])
    return tuple(widths[f"block{i}/project"] for i in last_blocks)


@pytest.mark.parametrize("alpha, stem, stages, last", [
    (1.0, 32, (16, 24, 32, 64, 96, 160, 320), 1280),
    (1.4, 48, (24, 32, 48, 88, 136, 224, 448), 1792),   # 44.8 -> 48, 22.4 -> 24
    (0.35, 16, (8, 8, 16, 24, 32, 56, 112), 1280),      # 11.2 -> 16 (10% rule), 5.6 -> 8
    (0.5, 16, (8, 16, 16, 32, 48, 80, 160), 1280),
])
def test_channel_tables(alpha, stem, stages, last):
    model = models.create("mobilenet_v2", alpha=alpha)
    widths = model.resolved_widths()
    assert widths[0] == stem and widths[-1] == last
    assert _stage_outputs(model) == stages
    names = model.prunable_layers()
    assert widths[names.index("block2/expand")] == int(round(stages[0] * 6))


def test_prunable_layers():
    names = MobileNetV2.prunable_layers()
    assert len(names) == 35
    assert names[:4] == ("stem", "block1/project", "block2/expand", "block2/project")
    assert names[-3:] == ("block17/expand", "block17/project", "head_conv")
    assert "block1/expand" not in names
    assert MobileNetV2().resolved_widths() == (
        32, 16, 96, 24, 144, 24, 144, 32, 192, 32, 192, 32, 192, 64, 384, 64, 384, 64, 384, 64,
        384, 96, 576, 96, 576, 96, 576, 160, 960, 160, 960, 160, 960, 320, 1280)


def test_parameter_tree(abstract_224):
    _, _, variables = abstract_224
    params = variables["params"]
    assert set(params) == {"stem", "head_conv", "head"} | {f"block{i}" for i in range(1, 18)}
    assert set(params["block1"]) == {"dw", "project"}                # t = 1: no expand conv
    for i in range(2, 18):
        assert set(params[f"block{i}"]) == {"expand", "dw", "project"}
    assert params["block2"]["dw"]["conv"]["kernel"].shape == (3, 3, 1, 96)
    assert params["head"]["fc"]["bias"].shape == (1000,)


# ------------------------------------------------------------------------------------- shapes
@pytest.fixture(scope="module")
def abstract_224():
    """The default model, and its logits and variables for 224x224 inputs (abstract)."""
    model = models.create("mobilenet_v2")
    logits, variables = jax.eval_shape(
        functools.partial(model.init_with_output, jax.random.PRNGKey(0)),
        jnp.zeros((3, 224, 224, 3)))
    return model, logits, variables


def test_logits_shape_224(abstract_224):
    assert abstract_224[1].shape == (3, 1000)


def test_feature_shapes_and_strides_224(abstract_224):
    model, _, variables = abstract_224
    feats = jax.eval_shape(lambda v, x: model.apply(v, x, False, method="features"),
                           variables, jnp.zeros((1, 224, 224, 3)))
    names = model.prunable_layers()
    widths = dict(zip(names, model.resolved_widths()))
    strides = {"stem": 2, "block1": 2, "block2": 4, "block3": 4, "head_conv": 32}
    strides.update({f"block{i}": 8 for i in (4, 5, 6)})
    strides.update({f"block{i}": 16 for i in range(7, 14)})
    strides.update({f"block{i}": 32 for i in range(14, 18)})
    assert set(feats) == set(strides)
    for name, s in strides.items():
        channels = widths[name if name in widths else f"{name}/project"]
        assert feats[name].shape == (1, 224 // s, 224 // s, channels), name


def test_features_order_and_backbone_use():
    """``features`` keeps network order and works from a parent's compact method."""

    keys = []

    class Parent(nn.Module):
        @nn.compact
        def __call__(self, x):
            feats = MobileNetV2(stem_stride=1, name="backbone").features(x, False)
            keys.extend(feats)
            return feats["head_conv"]

    x = jnp.zeros((1, 32, 32, 3))
    variables = jax.eval_shape(Parent().init, jax.random.PRNGKey(0), x)
    assert keys == ["stem"] + [f"block{i}" for i in range(1, 18)] + ["head_conv"]
    assert "head" not in variables["params"]["backbone"]  # features alone build no classifier


def test_small_forward(small, eval_outputs, features_fn):
    model, variables, x = small
    logits, _ = eval_outputs
    feats = features_fn(variables, x)
    assert logits.shape == (2, 10)
    assert np.isfinite(np.asarray(logits)).all()
    assert feats["head_conv"].shape == (2, 2, 2, 1280)        # 32 / 16 with stem_stride 1
    # __call__ = features -> global average pool -> (eval: no dropout) FC with bias
    fc = variables["params"]["head"]["fc"]
    expected = feats["head_conv"].mean(axis=(1, 2)) @ fc["kernel"] + fc["bias"]
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------- modes
def test_train_updates_batch_stats_eval_does_not(small, eval_outputs, train_outputs):
    _, variables, _ = small
    (eval_logits, eval_state), (train_logits, train_state) = eval_outputs, train_outputs
    old = jax.tree.leaves(variables["batch_stats"])
    for a, b in zip(old, jax.tree.leaves(eval_state["batch_stats"])):
        np.testing.assert_array_equal(a, b)
    changed = [not np.allclose(a, b) for a, b in zip(old, jax.tree.leaves(
        train_state["batch_stats"]))]
    assert len(changed) == 2 * (1 + 16 * 3 + 2 + 1)    # mean + var of every BN
    assert all(changed)
    assert not np.allclose(train_logits, eval_logits)


def test_train_momentum_matches_layer_factory(small, train_outputs):
    """Stem BN running mean: 0.9 * old + 0.1 * batch mean of the stem conv's output."""
    model, variables, x = small
    _, train_state = train_outputs
    kernel = variables["params"]["stem"]["conv"]["kernel"]
    conv = jax.lax.conv_general_dilated(x, kernel, (1, 1), ((1, 1), (1, 1)),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    old = variables["batch_stats"]["stem"]["bn"]["mean"]
    expected = 0.9 * old + 0.1 * conv.mean(axis=(0, 1, 2))
    np.testing.assert_allclose(train_state["batch_stats"]["stem"]["bn"]["mean"], expected,
                               rtol=1e-4, atol=1e-5)


def test_residual_exactly_on_expected_blocks(small, features_fn):
    model, variables, x = small
    feats = features_fn(_constant_projects(variables), x)
    assert _residual_blocks(feats) == RESIDUAL_BLOCKS
    assert tuple(i for i, r in enumerate(model.default_residuals(), 1) if r) == RESIDUAL_BLOCKS


@pytest.mark.parametrize("alpha", [0.1, 0.35, 1.0, 1.4])
def test_residual_rule_is_torchvisions(alpha):
    """Residual iff stride 1 and equal channels in the default architecture (torchvision)."""
    expected, cin = [], make_divisible(32 * alpha)
    for _, c, n, s in TV_TABLE:
        cout = make_divisible(c * alpha)
        for i in range(n):
            expected.append((s if i == 0 else 1) == 1 and cin == cout)
            cin = cout
    assert MobileNetV2(alpha=alpha).default_residuals() == tuple(expected)
    if alpha == 0.1:  # 32 * 0.1 and 16 * 0.1 both round to 8: block1 has a residual there
        assert expected[0]


def test_depthwise_impls_agree(small, eval_outputs):
    model, variables, x = small
    xla_logits, _ = eval_outputs
    shifted = models.create("mobilenet_v2", layers=SHIFTED, **SMALL)
    shifted_logits = jax.jit(shifted.apply)(variables, x)
    np.testing.assert_allclose(shifted_logits, xla_logits, atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------------------------- widths
def _tiny_widths():
    """stem 8, every expand 16, every project 8, head_conv 8 (all residual ties hold)."""
    return tuple(16 if n.endswith("/expand") else 8 for n in MobileNetV2.prunable_layers())


def test_widths_override_tiny_hand_count():
    model = models.create("mobilenet_v2", num_classes=10, stem_stride=1,
                          widths=list(_tiny_widths()))
    report = cost.count(model, (1, 32, 32, 3))
    # By hand (conv kernel + BN 2/channel):
    stem = 3 * 3 * 3 * 8 + 2 * 8                                   # 232
    block1 = (9 * 8 + 2 * 8) + (8 * 8 + 2 * 8)                     # dw + project = 168
    block = (8 * 16 + 2 * 16) + (9 * 16 + 2 * 16) + (16 * 8 + 2 * 8)  # 480
    head = (8 * 8 + 2 * 8) + (8 * 10 + 10)                         # head_conv + fc = 170
    assert report.params == stem + block1 + 16 * block + head == 8_250
    assert report.macs < cost.count(models.create("mobilenet_v2", **SMALL), (1, 32, 32, 3)).macs
    logits, _ = jax.eval_shape(functools.partial(model.init_with_output, jax.random.PRNGKey(0)),
                               jnp.zeros((2, 32, 32, 3)))
    assert logits.shape == (2, 10)
    # block1 is now 8 -> 8 at stride 1, but the default block1 has no residual: none is added.
    assert model.block_specs()[0]["residual"] is False
    assert model.block_specs()[2]["residual"] is True


def test_widths_halved_matches_closed_form():
    default = MobileNetV2().resolved_widths()
    model = MobileNetV2(widths=tuple(w // 2 for w in default))
    params = cost.count(model, (1, 224, 224, 3)).params
    names = model.prunable_layers()
    w = dict(zip(names, model.resolved_widths()))
    expected = 27 * w["stem"] + 2 * w["stem"]
    cin = w["stem"]
    for i in range(1, 18):
        hidden = w.get(f"block{i}/expand", cin)
        if f"block{i}/expand" in w:
            expected += cin * hidden + 2 * hidden
        out = w[f"block{i}/project"]
        expected += 9 * hidden + 2 * hidden + hidden * out + 2 * out
        cin = out
    expected += cin * w["head_conv"] + 2 * w["head_conv"] + w["head_conv"] * 1000 + 1000
    assert params == expected
    assert params < 3_504_872


@pytest.mark.parametrize("widths, match", [
    ((8,) * 34, "35 prunable layers"),
    ((8,) * 36, "35 prunable layers"),
    ((0,) + (8,) * 34, "stem"),
    ((8,) * 34 + (-1,), "head_conv"),
    ((8.0,) + (8,) * 34, "stem"),
])
def test_bad_widths(widths, match):
    with pytest.raises(ValueError, match=match):
        models.create("mobilenet_v2", widths=widths)


@pytest.mark.parametrize("layer", ["block2/project", "block3/project"])
def test_widths_breaking_a_residual_raise(layer):
    """block3 adds its input (block2's output) to its output: the two widths are tied."""
    names = MobileNetV2.prunable_layers()
    widths = list(MobileNetV2().resolved_widths())
    widths[names.index(layer)] = 16
    with pytest.raises(ValueError, match=r"block3 has a residual add.*block2/project=.*"
                                         r"block3/project="):
        models.create("mobilenet_v2", widths=widths)


def test_widths_tied_stage_can_shrink_together():
    names = MobileNetV2.prunable_layers()
    widths = list(MobileNetV2().resolved_widths())
    for i in (2, 3):  # stage 2 (blocks 2-3) shares one width through block3's residual
        widths[names.index(f"block{i}/project")] = 16
    model = models.create("mobilenet_v2", widths=widths)
    assert model.block_specs()[2]["in_channels"] == model.block_specs()[2]["out"] == 16


# ------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("kwargs, match", [
    (dict(alpha=0), "alpha"),
    (dict(alpha=-1.0), "alpha"),
    (dict(alpha="1"), "alpha"),
    (dict(num_classes=0), "num_classes"),
    (dict(stem_stride=3), "stem_stride"),
    (dict(activation="nope"), "unknown activation"),
])
def test_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.create("mobilenet_v2", **kwargs)


@pytest.mark.parametrize("shape, match", [
    ((32, 32, 3), "NHWC"),
    ((1, 32, 32, 1), "3 input channels"),
    ((1, 32, 32, 4), "3 input channels"),
])
def test_bad_images_raise_before_tracing(shape, match):
    model = models.create("mobilenet_v2", **SMALL)
    with pytest.raises(ValueError, match=match):
        model.init(jax.random.PRNGKey(0), jnp.zeros(shape))


def test_input_channels_and_other_activations():
    model = models.create("mobilenet_v2", input_channels=1, activation="hard_swish", **SMALL)
    logits, _ = jax.eval_shape(functools.partial(model.init_with_output, jax.random.PRNGKey(0)),
                               jnp.zeros((2, 32, 32, 1)))
    assert logits.shape == (2, 10)
    # A parameterised activation shows where activations are: everywhere but the projections.
    model = models.create("mobilenet_v2", activation="rrelu", **SMALL)
    report = cost.count(model, (1, 32, 32, 3))
    acts = [r.name for r in report.layers if r.type == "activation"]
    assert len(acts) == 1 + 16 + 17 + 1                 # stem, expands, depthwise, head_conv
    assert not any("project" in name for name in acts)
    assert "stem/act" in acts and "head_conv/act" in acts and "block1/dw/act" in acts


# ------------------------------------------------------------------------------------- block
def test_inverted_residual_shapes_and_names():
    block = InvertedResidual(hidden=48, features=16, strides=2, expand=True, layers=XLA)
    x = jnp.ones((2, 9, 9, 8))
    out, variables = jax.eval_shape(
        lambda x: block.init_with_output(jax.random.PRNGKey(0), x, False), x)
    assert out.shape == (2, 5, 5, 16)
    assert set(variables["params"]) == {"expand", "dw", "project"}
    assert variables["params"]["expand"]["conv"]["kernel"].shape == (1, 1, 8, 48)
    assert variables["params"]["dw"]["conv"]["kernel"].shape == (3, 3, 1, 48)
    assert variables["params"]["project"]["conv"]["kernel"].shape == (1, 1, 48, 16)

    block = InvertedResidual(hidden=8, features=8, strides=1, expand=False, layers=XLA)
    out, variables = jax.eval_shape(
        lambda x: block.init_with_output(jax.random.PRNGKey(0), x, False), x)
    assert out.shape == (2, 9, 9, 8)
    assert set(variables["params"]) == {"dw", "project"}


def test_inverted_residual_validation():
    x = jnp.ones((1, 8, 8, 8))
    block = InvertedResidual(hidden=16, features=8, strides=1, expand=False, layers=XLA)
    with pytest.raises(ValueError, match="hidden.*must equal the input channels"):
        block.init(jax.random.PRNGKey(0), x, False)
    block = InvertedResidual(hidden=16, features=8, strides=2, residual=True, layers=XLA)
    with pytest.raises(ValueError, match="residual=True"):
        block.init(jax.random.PRNGKey(0), x, False)
    for bad in (dict(hidden=0, features=8), dict(hidden=8, features=-1),
                dict(hidden=8, features=8, strides=0)):
        with pytest.raises(ValueError, match="positive integer"):
            InvertedResidual(**bad)


@pytest.mark.parametrize("residual, expect_identity", [(None, True), (False, False)])
def test_inverted_residual_shortcut(residual, expect_identity):
    """With the projection's BN zeroed the block outputs x (shortcut) or 0 (none)."""
    block = InvertedResidual(hidden=16, features=8, strides=1, residual=residual, layers=XLA)
    x = jax.random.normal(jax.random.PRNGKey(0), (1, 5, 5, 8))
    variables = _random_variables(block, x.shape, False)
    bn = variables["params"]["project"]["bn"]
    variables["params"]["project"]["bn"] = {"scale": jnp.zeros_like(bn["scale"]),
                                            "bias": jnp.zeros_like(bn["bias"])}
    out = jax.jit(lambda v, x: block.apply(v, x, False))(variables, x)
    np.testing.assert_allclose(out, x if expect_identity else jnp.zeros_like(x), atol=1e-6)
