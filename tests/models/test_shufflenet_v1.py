"""ShuffleNet V1: paper/reference-code counts, channel tables, shapes, widths and validation."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from model_fixtures import (X32, cifar_runs, check_impls_agree,
                            check_train_mode_updates_batch_stats)

import lightjax.models.shufflenet_v1  # noqa: F401  (registers the model)
from lightjax import cost, models
from lightjax.models.shufflenet_v1 import GROUPS, REPEATS, stage_channels

NAME = "shufflenet_v1"

#: Measured at 224, 1000 classes, scale 1x, bias-free classifier: (params, MACs).
MEASURED_1X = {1: (1_530_936, 143_078_976), 2: (1_732_848, 140_836_512),
               3: (1_864_728, 137_460_672), 4: (1_967_344, 134_339_776),
               8: (2_433_768, 138_365_952)}
#: Paper Table 1: stage 2/3/4 output channels and complexity (MFLOPs = mult-adds) at 1x.
PAPER_1X = {1: ((144, 288, 576), 143), 2: ((200, 400, 800), 140), 3: ((240, 480, 960), 137),
            4: ((272, 544, 1088), 133), 8: ((384, 768, 1536), 137)}
#: megvii ShuffleNet-Series ShuffleNetV1/network.py ``stage_out_channels[1:]`` (stem, stages).
MEGVII_CHANNELS = {(3, 0.5): (12, 120, 240, 480), (3, 1.0): (24, 240, 480, 960),
                   (3, 1.5): (24, 360, 720, 1440), (3, 2.0): (48, 480, 960, 1920),
                   (8, 0.5): (16, 192, 384, 768), (8, 1.0): (24, 384, 768, 1536),
                   (8, 1.5): (24, 576, 1152, 2304), (8, 2.0): (48, 768, 1536, 3072)}
#: megvii's README (MFLOPs, M params) and what we measure (MACs, params); g=8 0.5x is the case
#: whose stem (16) differs from 24 * scale. The others agree as well (g=3 0.5x: 37,589,856 /
#: 717,324; 1.5x: 292,443,552 / 3,441,168; g=8 1.5x: 290,188,800 / 4,268,952; 2x: 521,942,016 /
#: 6,521,232); only g=3 1x differs by rounding (README 138M, measured 137.46M, paper 137).
MEGVII_README = {(8, 0.5): (40, 1.0, 40_469_760, 1_010_448),
                 (3, 2.0): (524, 5.4, 524_045_184, 5_449_776)}


@functools.lru_cache(maxsize=None)
def _report(**kwargs):
    return cost.count(models.create(NAME, **kwargs), (1, 224, 224, 3))


def _kernels(report):
    """Kernel shape by ConvBN / dense module path (``stage2_unit1/gconv1``, ``head/fc``)."""
    return {r.name.removesuffix("/conv"): r.kernel_shape for r in report.layers if r.kernel_shape}


@pytest.mark.parametrize("groups", GROUPS)
def test_counts_at_224_match_the_paper(groups):
    report = _report(groups=groups)
    assert (report.params, report.macs) == MEASURED_1X[groups]
    paper = PAPER_1X[groups][1]
    fc_macs = sum(r.macs for r in report.layers if r.type == "fc")
    assert fc_macs == 4 * PAPER_1X[groups][0][0] * 1000
    # Table 1's complexity is the conv layers' MACs (the FC excluded), rounded to 1M: exact.
    assert round((report.macs - fc_macs) / 1e6) == paper
    # With the classifier the total stays within 1.1% (g=4: 134.3M vs 133, g=8: 138.4 vs 137).
    assert abs(report.macs / 1e6 - paper) / paper < 0.011


def test_g3_reference_code_param_count():
    report = _report(groups=3)
    assert report.params == 1_864_728  # ShuffleNet (Zhang et al. 2018), megvii's implementation: bias-free classifier
    assert [r.params for r in report.layers if r.type == "fc"] == [960 * 1000]


@pytest.mark.parametrize("groups", GROUPS)
def test_channel_table(groups):
    stages = PAPER_1X[groups][0]
    assert stage_channels(groups, 1.0) == (24,) + stages
    k = _kernels(_report(groups=groups))
    assert k["stem"] == (3, 3, 3, 24)
    assert k["head/fc"] == (stages[-1], 1000)
    cin = 24
    for stage, (out, repeats) in enumerate(zip(stages, REPEATS), start=2):
        units = sorted({n.split("/")[0] for n in k if n.startswith(f"stage{stage}_unit")})
        assert len(units) == repeats
        for i in range(1, repeats + 1):
            unit = f"stage{stage}_unit{i}"
            grouped_in = groups if (stage, i) != (2, 1) else 1  # stage 2's first 1x1 conv
            assert k[f"{unit}/gconv1"] == (1, 1, cin // grouped_in, out // 4)  # bottleneck out/4
            assert k[f"{unit}/dw"] == (3, 3, 1, out // 4)
            branch = out - cin if i == 1 else out  # stride 2: concat with the avg-pooled input
            assert k[f"{unit}/gconv2"] == (1, 1, out // 4 // groups, branch)
            cin = out


@pytest.mark.parametrize("key", sorted(MEGVII_CHANNELS))
def test_scaled_channels_reproduce_megvii_tables(key):
    assert stage_channels(*key) == MEGVII_CHANNELS[key]


@pytest.mark.parametrize("key", sorted(MEGVII_README))
def test_scaled_counts_match_megvii_readme(key):
    mflops, mparams, macs, params = MEGVII_README[key]
    report = _report(groups=key[0], scale=key[1])
    assert (report.macs, report.params) == (macs, params)
    assert round(report.macs / 1e6) == mflops
    assert round(report.params / 1e5) / 10 == mparams


@pytest.mark.parametrize("groups,scale", [(2, 0.5), (4, 0.5), (1, 0.25), (8, 0.75)])
def test_scales_off_megvii_table_stay_divisible(groups, scale):
    stem, *stages = stage_channels(groups, scale)
    assert stem % groups == 0
    for out in stages:
        assert out % (4 * groups) == 0 and out > stem
    models.create(NAME, groups=groups, scale=scale)  # validates every width


# ------------------------------------------------------------------ forward passes


@pytest.fixture(scope="module")
def cifar():
    """g=3, 10 classes, stem_stride=1: eval + train ('xla') and eval ('shifted') at 32x32."""
    return cifar_runs(NAME)


def test_forward_32x32(cifar):
    assert cifar["logits"].shape == (2, 10)
    assert np.all(np.isfinite(cifar["logits"]))
    assert not np.allclose(cifar["logits"][0], cifar["logits"][1])
    feats = jax.eval_shape(lambda v: cifar["model"].apply(v, X32, False, method="features"),
                           cifar["variables"])
    assert {k: v.shape for k, v in feats.items()} == {
        "stem": (2, 32, 32, 24), "stage2": (2, 16, 16, 240), "stage3": (2, 8, 8, 480),
        "stage4": (2, 4, 4, 960)}


def test_depthwise_impls_agree(cifar):
    check_impls_agree(cifar)


def test_train_mode_updates_batch_stats(cifar):
    check_train_mode_updates_batch_stats(cifar)


def test_shapes_at_224():
    model = models.create(NAME, groups=8)
    x = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), x)
    feats = jax.eval_shape(lambda v, x: model.apply(v, x, False, method="features"), variables, x)
    assert {k: v.shape for k, v in feats.items()} == {
        "stem": (1, 112, 112, 24), "stage2": (1, 28, 28, 384), "stage3": (1, 14, 14, 768),
        "stage4": (1, 7, 7, 1536)}
    assert jax.eval_shape(lambda v, x: model.apply(v, x), variables, x).shape == (1, 1000)


# ------------------------------------------------------------------ widths
def test_prunable_layers_and_default_widths():
    model = models.create(NAME)
    names = model.prunable_layers()
    assert len(names) == 1 + 16 + 3
    assert names[:4] == ("stem", "stage2_unit1/gconv1", "stage2_unit1/gconv2",
                         "stage2_unit2/gconv1")
    assert names[-1] == "stage4_unit4/gconv1"
    widths = dict(zip(names, model.resolved_widths()))
    assert widths["stem"] == 24
    assert widths["stage2_unit1/gconv2"] == 240 - 24 and widths["stage3_unit1/gconv2"] == 240
    assert widths["stage4_unit3/gconv1"] == 960 // 4
    # every prunable layer is a ConvBN module of the model
    kernels = _kernels(_report(groups=3))
    assert all(n in kernels for n in names)
    # explicit default widths reproduce the default model
    same = cost.count(models.create(NAME, widths=list(model.resolved_widths())), (1, 224, 224, 3))
    assert (same.params, same.macs) == MEASURED_1X[3]


def test_widths_override_gives_a_smaller_model():
    model = models.create(NAME)
    widths = [w // 2 if w % 6 == 0 else w for w in model.resolved_widths()]
    widths[0] = 12
    small = models.create(NAME, widths=tuple(widths))
    specs = small.unit_specs()
    assert specs[0]["out"] == 12 + widths[2]  # stem concatenated with the stride-2 branch
    report = cost.count(small, (1, 224, 224, 3))
    assert report.params < MEASURED_1X[3][0] and report.macs < MEASURED_1X[3][1]
    k = _kernels(report)
    assert k["stem"][-1] == 12 and k["stage3_unit5/gconv1"][-1] == widths[
        small.prunable_layers().index("stage3_unit5/gconv1")]
    assert k["head/fc"][0] == specs[-1]["out"]


def test_widths_errors():
    default = list(models.create(NAME).resolved_widths())
    with pytest.raises(ValueError, match="prunable layers"):
        models.create(NAME, widths=default[:-1])
    bad = default.copy()
    bad[5] = 0
    with pytest.raises(ValueError, match="positive"):
        models.create(NAME, widths=bad)
    bad = default.copy()
    bad[1] = 61  # stage2_unit1/gconv1, not divisible by groups=3
    with pytest.raises(ValueError, match=r"stage2_unit1/gconv1.*divisible by groups=3"):
        models.create(NAME, widths=bad)
    bad = default.copy()
    bad[0] = 25
    with pytest.raises(ValueError, match=r"layer stem .*groups=3"):
        models.create(NAME, widths=bad)
    bad = default.copy()
    bad[2] = 100  # stage2_unit1/gconv2
    with pytest.raises(ValueError, match="stage2_unit1/gconv2"):
        models.create(NAME, widths=bad)
    # groups=1 accepts any positive widths
    models.create(NAME, groups=1, widths=[w + 1 for w in models.create(
        NAME, groups=1).resolved_widths()])


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize("kwargs,match", [
    (dict(groups=5), "groups"), (dict(groups=0), "groups"), (dict(groups=True), "groups"),
    (dict(groups=3.0), "groups"),
    (dict(scale=0), "scale"), (dict(scale=-1.0), "scale"), (dict(scale="1x"), "scale"),
    (dict(stem_stride=3), "stem_stride"), (dict(num_classes=0), "num_classes"),
    (dict(activation="nope"), "nope")])
def test_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.create(NAME, **kwargs)


@pytest.mark.parametrize("shape,match", [((32, 32, 3), "NHWC"), ((1, 32, 32, 1), "channels")])
def test_bad_inputs_raise_value_error(shape, match):
    model = models.create(NAME, stem_stride=1, num_classes=10)
    with pytest.raises(ValueError, match=match):
        jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros(shape)))


def test_registered():
    assert NAME in models.names()
    assert set(models.hyperparameters(NAME)) == {
        "num_classes", "groups", "scale", "activation", "stem_stride", "classifier_bias",
        "widths", "input_channels", "layers"}
    grey = models.create(NAME, input_channels=1, stem_stride=1, num_classes=10,
                         classifier_bias=True)
    logits, variables = jax.eval_shape(lambda: grey.init_with_output(
        jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 1))))
    assert logits.shape == (1, 10)
    assert variables["params"]["stem"]["conv"]["kernel"].shape == (3, 3, 1, 24)
    assert variables["params"]["head"]["fc"]["bias"].shape == (10,)
