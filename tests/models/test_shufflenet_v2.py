"""ShuffleNet V2: torchvision counts, channel tables, shapes, widths and validation."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from model_fixtures import (X32, cifar_runs, check_impls_agree,
                            check_train_mode_updates_batch_stats)

import lightjax.models.shufflenet_v2  # noqa: F401  (registers the model)
from lightjax import cost, models
from lightjax.models.shufflenet_v2 import CHANNELS, REPEATS

NAME = "shufflenet_v2"

#: ShuffleNet V2 (Ma et al. 2018) as torchvision builds it (classifier with bias), 224, 1000
#: classes: exact params, ≈MACs.
PUBLISHED = {0.5: (1_366_792, 40.5), 1.0: (2_278_604, 144.9), 1.5: (3_503_624, 295.8),
             2.0: (7_393_996, 583.3)}
#: Measured MACs (conv + FC multiply-adds per image).
MEASURED_MACS = {0.5: 40_476_448, 1.0: 144_907_992, 1.5: 295_759_392, 2.0: 583_253_464}
TORCHVISION_CHANNELS = {0.5: (24, 48, 96, 192, 1024), 1.0: (24, 116, 232, 464, 1024),
                        1.5: (24, 176, 352, 704, 1024), 2.0: (24, 244, 488, 976, 2048)}


@functools.lru_cache(maxsize=None)
def _report(**kwargs):
    return cost.count(models.create(NAME, **kwargs), (1, 224, 224, 3))


def _kernels(report):
    """Kernel shape by ConvBN / dense module path (``stage2_unit1/branch1_pw``, ``head/fc``)."""
    return {r.name.removesuffix("/conv"): r.kernel_shape for r in report.layers if r.kernel_shape}


@pytest.mark.parametrize("scale", sorted(PUBLISHED))
def test_counts_at_224_match_torchvision(scale):
    report = _report(scale=scale)
    params, mmacs = PUBLISHED[scale]
    assert report.params == params
    assert report.macs == MEASURED_MACS[scale]
    assert round(report.macs / 1e6, 1) == mmacs


@pytest.mark.parametrize("scale", sorted(PUBLISHED))
def test_channel_table(scale):
    assert CHANNELS[scale] == TORCHVISION_CHANNELS[scale]
    stem, *stages, last = TORCHVISION_CHANNELS[scale]
    k = _kernels(_report(scale=scale))
    assert k["stem"] == (3, 3, 3, stem)
    cin = stem
    for stage, (out, repeats) in enumerate(zip(stages, REPEATS), start=2):
        half = out // 2
        units = sorted({n.split("/")[0] for n in k if n.startswith(f"stage{stage}_unit")})
        assert len(units) == repeats
        assert k[f"stage{stage}_unit1/branch1_dw"] == (3, 3, 1, cin)
        assert k[f"stage{stage}_unit1/branch1_pw"] == (1, 1, cin, half)
        assert k[f"stage{stage}_unit1/branch2_pw1"] == (1, 1, cin, half)
        for i in range(1, repeats + 1):
            unit = f"stage{stage}_unit{i}"
            if i > 1:
                assert f"{unit}/branch1_pw" not in k
                assert k[f"{unit}/branch2_pw1"] == (1, 1, half, half)  # the split half
            assert k[f"{unit}/branch2_dw"] == (3, 3, 1, half)
            assert k[f"{unit}/branch2_pw2"] == (1, 1, half, half)
        cin = out
    assert k["conv5"] == (1, 1, stages[-1], last)
    assert k["head/fc"] == (last, 1000)
    assert _report(scale=scale).layers[-1].params == last * 1000 + 1000  # FC with bias


# ------------------------------------------------------------------ forward passes


@pytest.fixture(scope="module")
def cifar():
    """1x, 10 classes, stem_stride=1: eval + train ('xla') and eval ('shifted') at 32x32."""
    return cifar_runs(NAME)


def test_forward_32x32(cifar):
    assert cifar["logits"].shape == (2, 10)
    assert np.all(np.isfinite(cifar["logits"]))
    assert not np.allclose(cifar["logits"][0], cifar["logits"][1])
    feats = jax.eval_shape(lambda v: cifar["model"].apply(v, X32, False, method="features"),
                           cifar["variables"])
    assert {k: v.shape for k, v in feats.items()} == {
        "stem": (2, 32, 32, 24), "stage2": (2, 16, 16, 116), "stage3": (2, 8, 8, 232),
        "stage4": (2, 4, 4, 464), "conv5": (2, 4, 4, 1024)}


def test_depthwise_impls_agree(cifar):
    check_impls_agree(cifar)


def test_train_mode_updates_batch_stats(cifar):
    check_train_mode_updates_batch_stats(cifar)


def test_shapes_at_224():
    model = models.create(NAME, scale=2.0)
    x = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), x)
    feats = jax.eval_shape(lambda v, x: model.apply(v, x, False, method="features"), variables, x)
    assert {k: v.shape for k, v in feats.items()} == {
        "stem": (1, 112, 112, 24), "stage2": (1, 28, 28, 244), "stage3": (1, 14, 14, 488),
        "stage4": (1, 7, 7, 976), "conv5": (1, 7, 7, 2048)}
    assert jax.eval_shape(lambda v, x: model.apply(v, x), variables, x).shape == (1, 1000)


# ------------------------------------------------------------------ widths
def test_prunable_layers_and_default_widths():
    model = models.create(NAME)
    names = model.prunable_layers()
    assert len(names) == 1 + 3 * 3 + 13 * 2 + 1
    assert names[:6] == ("stem", "stage2_unit1/branch1_pw", "stage2_unit1/branch2_pw1",
                         "stage2_unit1/branch2_pw2", "stage2_unit2/branch2_pw1",
                         "stage2_unit2/branch2_pw2")
    assert names[-1] == "conv5"
    widths = dict(zip(names, model.resolved_widths()))
    assert widths["stem"] == 24 and widths["conv5"] == 1024
    assert widths["stage3_unit4/branch2_pw1"] == 116 and widths["stage4_unit1/branch1_pw"] == 232
    kernels = _kernels(_report(scale=1.0))
    assert all(n in kernels for n in names)  # every prunable layer is a ConvBN of the model
    same = cost.count(models.create(NAME, widths=list(model.resolved_widths())), (1, 224, 224, 3))
    assert same.params == PUBLISHED[1.0][0] and same.macs == MEASURED_MACS[1.0]


def test_widths_override_gives_a_smaller_model():
    model = models.create(NAME)
    names = model.prunable_layers()
    widths = dict(zip(names, model.resolved_widths()))
    # Stage 2 pruned from 116 to 58 channels: the stride-2 unit's branches give 30 + 28; each
    # stride-1 unit passes 58 // 2 = 29 through and must add an odd branch (29) to stay even.
    widths["stage2_unit1/branch1_pw"] = 30
    widths["stage2_unit1/branch2_pw2"] = 28
    for i in range(2, 5):
        widths[f"stage2_unit{i}/branch2_pw1"] = 17
        widths[f"stage2_unit{i}/branch2_pw2"] = 29
    widths["conv5"] = 512
    small = models.create(NAME, widths=tuple(widths[n] for n in names))
    specs = {s["name"]: s for s in small.unit_specs()}
    assert specs["stage2_unit1"]["out"] == 58 and specs["stage2_unit4"]["out"] == 58
    assert specs["stage3_unit1"]["in_channels"] == 58
    report = cost.count(small, (1, 224, 224, 3))
    assert report.params < PUBLISHED[1.0][0] and report.macs < MEASURED_MACS[1.0]
    k = _kernels(report)
    assert k["stage2_unit3/branch2_pw1"] == (1, 1, 29, 17)
    assert k["stage2_unit3/branch2_pw2"] == (1, 1, 17, 29)
    assert k["stage3_unit1/branch1_dw"] == (3, 3, 1, 58)
    assert k["head/fc"] == (512, 1000)


def test_widths_errors():
    names = models.create(NAME).prunable_layers()
    default = list(models.create(NAME).resolved_widths())
    with pytest.raises(ValueError, match="prunable layers"):
        models.create(NAME, widths=default + [8])
    bad = default.copy()
    bad[-1] = -4
    with pytest.raises(ValueError, match="positive"):
        models.create(NAME, widths=bad)
    bad = default.copy()
    bad[names.index("stage3_unit1/branch1_pw")] = 115  # 115 + 116 odd: shuffle(2) impossible
    with pytest.raises(ValueError, match=r"stage3_unit1 .*even"):
        models.create(NAME, widths=bad)
    bad = default.copy()
    bad[names.index("stage2_unit3/branch2_pw2")] = 57  # 58 + 57 odd
    with pytest.raises(ValueError, match=r"stage2_unit3/branch2_pw2"):
        models.create(NAME, widths=bad)


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize("scale", [0.75, 3.0, 0, "1.0x", True])
def test_unknown_scale_lists_allowed(scale):
    with pytest.raises(ValueError, match=r"allowed: 0.5, 1.0, 1.5, 2.0"):
        models.create(NAME, scale=scale)


@pytest.mark.parametrize("kwargs,match", [
    (dict(stem_stride=4), "stem_stride"), (dict(num_classes=-1), "num_classes"),
    (dict(activation="nope"), "nope")])
def test_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.create(NAME, **kwargs)


@pytest.mark.parametrize("shape,match", [((1, 32, 32), "NHWC"), ((1, 32, 32, 4), "channels")])
def test_bad_inputs_raise_value_error(shape, match):
    model = models.create(NAME, stem_stride=1, num_classes=10)
    with pytest.raises(ValueError, match=match):
        jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros(shape)))


def test_registered():
    assert NAME in models.names()
    assert set(models.hyperparameters(NAME)) == {
        "num_classes", "scale", "activation", "stem_stride", "widths", "input_channels",
        "layers"}
    assert models.create(NAME, scale=1).resolved_widths() == models.create(NAME).resolved_widths()
