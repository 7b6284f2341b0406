"""MobileNetV1-FCN: shapes, layer names, exact counts, bad input, training, vmap, pruning."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lightjax import cost, models
from lightjax.errors import ValidationError
from lightjax.layers import LayerFactory
from lightjax.models import mobilenet_v1_fcn as fcn
from lightjax.prune import compact, groups as groups_lib, masking

from model_fixtures import half_masks, random_variables

NAME = "mobilenet_v1_fcn"
XLA = LayerFactory(depthwise_impl="xla")
RNG = np.random.default_rng(7)
X32 = jnp.asarray(RNG.standard_normal((4, 32, 32, 3)), jnp.float32)
X16 = jnp.asarray(RNG.standard_normal((2, 16, 32, 3)), jnp.float32)


def small(**kwargs):
    kwargs = {"num_classes": 5, "alpha": 0.25, "layers": XLA, **kwargs}
    return models.create(NAME, **kwargs)


def test_registered_with_its_hyperparameters():
    assert NAME in models.names()
    hp = models.hyperparameters(NAME)
    for field in ("num_classes", "alpha", "activation", "variant", "stem_stride",
                  "decoder_channels", "skips", "widths", "input_channels", "layers"):
        assert field in hp


@pytest.mark.parametrize("stem_stride,shape", [(2, (1, 64, 64, 3)), (2, (2, 32, 64, 3)),
                                               (1, (2, 16, 32, 3)), (1, (1, 32, 32, 3))])
def test_logits_have_the_input_resolution(stem_stride, shape):
    model = small(stem_stride=stem_stride)
    out = jax.eval_shape(lambda: model.init_with_output(jax.random.PRNGKey(0),
                                                        jnp.zeros(shape), False)[0])
    assert out.shape == shape[:3] + (5,)
    assert model.output_stride() == 16 * stem_stride
    assert model.upsample_factor() == 4 * stem_stride
    assert model.min_input_size() == model.output_stride()


def test_tensorflow_padding_keeps_the_resolution_too():
    model = small(layers=LayerFactory(depthwise_impl="xla", padding="same"))
    out = jax.eval_shape(lambda: model.init_with_output(jax.random.PRNGKey(0),
                                                        jnp.zeros((1, 32, 64, 3)), False)[0])
    assert out.shape == (1, 32, 64, 5)


def test_layer_names_widths_and_the_last_layer():
    model = small(decoder_channels=24)
    names = model.prunable_layers()
    assert len(names) == 19 == len(model.resolved_widths())
    assert names[:2] == ("backbone/stem", "backbone/unit1/pw")
    assert names[14:] == fcn.DECODER_LAYERS
    assert model.resolved_widths()[14:] == (24,) * 5
    # default decoder width: make_divisible(128 * alpha, 8), at least 8
    assert small().resolved_widths()[14:] == (32,) * 5
    assert small(alpha=0.05).resolved_widths()[14:] == (8,) * 5
    shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)),
                                               False))
    params = shapes["params"]
    assert sorted(params) == ["backbone", "decoder", "head"]
    assert "head" not in params["backbone"]  # the backbone's classifier is never built
    dec = params["decoder"]
    assert sorted(dec) == ["proj", "skip1", "skip2", "up1", "up2"]
    assert dec["proj"]["conv"]["kernel"].shape == (1, 1, 256, 24)
    assert dec["up1"]["conv"]["kernel"].shape == (4, 4, 24, 24)
    assert dec["skip1"]["conv"]["kernel"].shape == (1, 1, 128, 24)
    assert dec["up2"]["conv"]["kernel"].shape == (4, 4, 24, 24)
    assert dec["skip2"]["conv"]["kernel"].shape == (1, 1, 64, 24)
    assert "bias" not in dec["up1"]["conv"] and "scale" in dec["up1"]["bn"]
    head = params["head"]["classifier"]
    assert head["kernel"].shape == (16, 16, 24, 5) and head["bias"].shape == (5,)
    report = cost.count(model, (1, 64, 64, 3))
    convs = [r for r in report.layers if r.kernel_shape is not None]
    assert convs[-1].name == fcn.LAST_LAYER
    assert [r.name for r in convs if r.type == "transposed"] == list(fcn.TRANSPOSED_LAYERS)
    info = model.layer_info()
    assert [i["name"] for i in info if i["kind"] == "transposed"] == list(fcn.TRANSPOSED_LAYERS)
    assert info[-1] == dict(name=fcn.LAST_LAYER, kind="transposed", kernel=16, stride=8,
                            input="decoder/fuse2", input_stride=8, output_stride=1, channels=5)


def test_finer_skips_add_stride_4_and_2_levels_and_a_smaller_classifier():
    model = small(skips=4)
    names = model.prunable_layers()
    assert names[14:] == ("decoder/proj", "decoder/up1", "decoder/skip1", "decoder/up2",
                          "decoder/skip2", "decoder/up3", "decoder/skip3", "decoder/up4",
                          "decoder/skip4") == fcn.decoder_layers(4)
    # levels 3 and 4 default to min(D, their tap's channels): unit3 32, unit1 16 at alpha 0.25
    assert model.resolved_widths()[14:] == (32,) * 7 + (16, 16)
    assert model.skip_taps() == ("unit11", "unit5", "unit3", "unit1")
    assert (model.upsample_factor(), small(skips=3).upsample_factor(),
            small(skips=3, stem_stride=1).upsample_factor()) == (2, 4, 2)
    params = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)),
                                               False))["params"]
    dec = params["decoder"]
    assert dec["skip3"]["conv"]["kernel"].shape == (1, 1, 32, 32)  # unit3: 128 * 0.25
    assert dec["up4"]["conv"]["kernel"].shape == (4, 4, 32, 16)
    assert dec["skip4"]["conv"]["kernel"].shape == (1, 1, 16, 16)  # unit1: 64 * 0.25
    assert params["head"]["classifier"]["kernel"].shape == (4, 4, 16, 5)
    info = model.layer_info()
    assert [i["name"] for i in info if i["kind"] == "transposed"] == list(
        fcn.transposed_layers(4))
    assert info[-1] == dict(name=fcn.LAST_LAYER, kind="transposed", kernel=4, stride=2,
                            input="decoder/fuse4", input_stride=2, output_stride=1, channels=5)
    groups = groups_lib.derive(model, (1, 32, 32, 3))
    for i in (3, 4):
        assert groups[f"decoder/skip{i}"] is groups[f"decoder/up{i}"]
        assert groups[f"decoder/up{i}"].producers == (f"decoder/up{i}/conv",
                                                      f"decoder/skip{i}/conv")
    with pytest.raises(ValidationError, match="skips must be one of 2, 3, 4, got 5"):
        small(skips=5)
    with pytest.raises(ValidationError, match="widths has 19 entries but this model has 23"):
        small(skips=4, widths=(8,) * 19)


#: Depthwise stride of each of MobileNetV1's 13 units, written out again here.
UNIT_STRIDES = (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1)


def test_params_and_macs_match_a_hand_count():
    backbone = (8, 16, 16, 16, 32, 32, 32, 32, 32, 32, 32, 32, 64, 48)
    decoder = (24, 16, 16, 8, 8)  # proj, up1 = skip1, up2 = skip2
    k = 3
    model = models.create(NAME, num_classes=k, widths=backbone + decoder)
    # backbone at 64x64: stem 3x3 stride 2 -> 32x32
    size = 32
    params = 27 * 8 + 2 * 8
    macs = 27 * 8 * size * size
    for c_in, c_out, stride in zip(backbone[:-1], backbone[1:], UNIT_STRIDES):
        size //= stride
        params += 9 * c_in + 2 * c_in + c_in * c_out + 2 * c_out
        macs += (9 * c_in + c_in * c_out) * size * size
    assert size == 2
    u5, u11, u13 = backbone[5], backbone[11], backbone[13]
    proj, up1, skip1, up2, skip2 = decoder
    # 1x1 convs + BN: Cin*Cout*H*W MACs; transposed convs: k*k*Cin*Cout*H_in*W_in MACs
    params += u13 * proj + 2 * proj
    macs += u13 * proj * 2 * 2
    params += 16 * proj * up1 + 2 * up1
    macs += 16 * proj * up1 * 2 * 2
    params += u11 * skip1 + 2 * skip1
    macs += u11 * skip1 * 4 * 4
    params += 16 * up1 * up2 + 2 * up2
    macs += 16 * up1 * up2 * 4 * 4
    params += u5 * skip2 + 2 * skip2
    macs += u5 * skip2 * 8 * 8
    params += 16 * 16 * up2 * k + k  # classifier, with bias
    macs += 16 * 16 * up2 * k * 8 * 8
    report = cost.count(model, (1, 64, 64, 3))
    assert (report.params, report.macs) == (params, macs)
    rows = {r.name: r for r in report.layers}
    assert rows["decoder/up1/conv"].macs == 16 * 24 * 16 * 2 * 2 == 24_576
    assert rows[fcn.LAST_LAYER].macs == 256 * 8 * 3 * 64 == 393_216
    assert rows[fcn.LAST_LAYER].output_shape == (1, 64, 64, 3)
    assert report.by_type()["transposed"]["layers"] == 3


def test_reference_figures_alpha_025_at_64():
    report = cost.count(models.create(NAME, num_classes=4, alpha=0.25), (1, 64, 64, 3))
    # backbone (MobileNetV1 0.25 without its FC) + decoder D = 32 + classifier (16x16x32x4 + 4)
    v1 = cost.count(models.create("mobilenet_v1", num_classes=4, alpha=0.25), (1, 64, 64, 3))
    fc = 256 * 4
    decoder_params = (256 * 32 + 16 * 32 * 32 + 128 * 32 + 16 * 32 * 32 + 64 * 32 + 5 * 2 * 32
                      + 16 * 16 * 32 * 4 + 4)
    decoder_macs = (256 * 32 * 4 + 16 * 32 * 32 * 4 + 128 * 32 * 16 + 16 * 32 * 32 * 16
                    + 64 * 32 * 64 + 16 * 16 * 32 * 4 * 64)
    assert report.params == v1.params - fc - 4 + decoder_params == 293_268
    assert report.macs == v1.macs - fc + decoder_macs == 5_982_720


@pytest.mark.parametrize("kwargs,match", [
    (dict(alpha=0), "alpha must be a finite number > 0"),
    (dict(alpha=0.01), "leave layers with no channels"),
    (dict(num_classes=0), "num_classes must be a positive integer"),
    (dict(stem_stride=4), "stem_stride must be 1 or 2"),
    (dict(activation="gelu_fancy"), "unknown activation 'gelu_fancy'"),
    (dict(variant="fast"), "unknown variant 'fast'; allowed: standard, rhs"),
    (dict(decoder_channels=0), "decoder_channels must be a positive integer or None"),
    (dict(decoder_channels=2.5), "decoder_channels must be a positive integer or None"),
    (dict(decoder_channels=True), "decoder_channels must be a positive integer or None"),
    (dict(widths=(8,) * 14), "widths has 14 entries but this model has 19"),
    (dict(widths=(8,) * 18 + (0,)), "layer decoder/skip2 got 0"),
    (dict(widths=(8,) * 15 + (16, 8, 8, 8)),
     "decoder/up1 and decoder/skip1 are added, so their widths must be equal; widths gives "
     "decoder/up1=16 and decoder/skip1=8"),
    (dict(widths=(8,) * 17 + (16, 8)), "decoder/up2=16 and decoder/skip2=8"),
])
def test_bad_hyperparameters_are_validation_errors(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        models.create(NAME, **kwargs)


@pytest.mark.parametrize("stem_stride,shape,match", [
    (2, (1, 48, 64, 3), "multiples of 32 .*got 48x64; resize or pad the images, or use "
                        "stem_stride=1"),
    (2, (1, 16, 16, 3), "multiples of 32"),
    (1, (1, 32, 40, 3), "multiples of 16 .*got 32x40; resize or pad the images(?!, or)"),
    (2, (1, 64, 64, 1), "expected 3 input channels"),
    (2, (64, 64, 3), "NHWC"),
])
def test_bad_images_fail_before_tracing(stem_stride, shape, match):
    model = small(stem_stride=stem_stride)
    with pytest.raises(ValidationError, match=match):
        jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros(shape), False))


def test_hooks_reach_every_decoder_layer_with_the_train_flag():
    seen = {}

    def record(layer, kernel, train=False):
        seen.setdefault("/".join(layer.path), set()).add(bool(train))
        return kernel

    model = small(stem_stride=1, layers=LayerFactory(depthwise_impl="xla", kernel_hook=record))
    variables = random_variables(model, X16, False)
    jax.eval_shape(lambda v: model.apply(v, X16, True, mutable=["batch_stats"]), variables)
    decoder = [f"{n}/conv" for n in fcn.DECODER_LAYERS] + [fcn.LAST_LAYER]
    for path in decoder + ["backbone/stem/conv", "backbone/unit13/pw/conv"]:
        assert True in seen[path], path


def test_rules_select_every_layer_but_the_last_or_only_the_last_deconv():
    from lightjax.layers.rules import Rule, matches

    model = small(stem_stride=1)
    convs = ("standard", "depthwise", "pointwise", "transposed")
    all_but_last = Rule(module_path=rf"(?!backbone/stem/|{fcn.LAST_LAYER}$).*", kinds=convs)
    last_deconv = Rule(module_path=fcn.TRANSPOSED_LAYERS[-1], kinds=("transposed",))
    found = matches(model, (1, 16, 16, 3), (all_but_last, last_deconv))
    assert len(found) == 27 + 5 + 1  # stem + 13 dw + 13 pw, the decoder's 5 convs, classifier
    assert found["backbone/stem/conv"] == [] and found[fcn.LAST_LAYER] == [1]
    assert all(found[f"{n}/conv"] == [0] for n in fcn.DECODER_LAYERS)
    assert found["backbone/unit7/dw/conv"] == [0]


def test_jitted_train_step_has_finite_gradients_and_updates_statistics():
    model = small(stem_stride=1)
    variables = random_variables(model, X16, False)
    labels = jnp.asarray(RNG.integers(0, 5, X16.shape[:3]))

    @jax.jit
    def step(params):
        def loss_fn(p):
            logits, upd = model.apply({**variables, "params": p}, X16, True,
                                      mutable=["batch_stats"])
            logp = jax.nn.log_softmax(logits)
            return -jnp.take_along_axis(logp, labels[..., None], -1).mean(), upd
        return jax.value_and_grad(loss_fn, has_aux=True)(params)

    (loss, updates), grads = step(variables["params"])
    assert np.isfinite(float(loss))
    leaves = jax.tree_util.tree_flatten_with_path(grads)[0]
    assert all(np.all(np.isfinite(g)) for _, g in leaves)
    for layer in ("decoder/up1", "decoder/skip1", "decoder/up2", "decoder/proj"):
        a, b = layer.split("/")
        assert np.abs(grads[a][b]["conv"]["kernel"]).max() > 0, layer
    assert np.abs(grads["head"]["classifier"]["kernel"]).max() > 0
    old = variables["batch_stats"]["decoder"]["up2"]["bn"]["mean"]
    assert not np.allclose(updates["batch_stats"]["decoder"]["up2"]["bn"]["mean"], old)


def test_vmap_over_two_parameter_sets():
    model = small(stem_stride=1)
    members = [random_variables(model, X16, False, seed=s) for s in (0, 1)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *members)
    forward = lambda v: model.apply(v, X16, False)  # noqa: E731
    out = jax.jit(jax.vmap(forward))(stacked)
    assert out.shape == (2,) + X16.shape[:3] + (5,)
    one = jax.jit(forward)
    for i, v in enumerate(members):
        np.testing.assert_allclose(out[i], one(v), rtol=1e-4, atol=1e-5)
    assert not np.allclose(out[0], out[1])


@pytest.fixture(scope="module")
def traced():
    model = small(stem_stride=2)
    return model, groups_lib.derive(model, (1, 32, 32, 3))


def test_channel_groups_tie_the_skip_projections_to_the_upsampling(traced):
    model, groups = traced
    for name, producers in (("decoder/proj", ("decoder/proj/conv",)),
                            ("decoder/up1", ("decoder/up1/conv", "decoder/skip1/conv")),
                            ("decoder/up2", ("decoder/up2/conv", "decoder/skip2/conv"))):
        g = groups[name]
        assert g.name == name and g.prunable and g.size == 32, groups.describe()
        assert g.producers == producers
    assert groups["decoder/skip1"] is groups["decoder/up1"]
    assert groups[fcn.LAST_LAYER].prunable is False  # the classes are not pruned
    assert all(groups[f"backbone/unit{i}/pw"].prunable for i in range(1, 14))
    assert not groups["backbone/stem"].prunable


def test_compact_model_reproduces_the_masked_one(traced):
    model, groups = traced
    rng = np.random.default_rng(0)
    gm = half_masks(groups, rng)
    net = masking.masked(model)
    # one compiled program instead of ~150 eager gathers
    variables = jax.jit(lambda v: masking.apply(v, groups, gm))(random_variables(net, X32, False))
    small_model, small_vars = compact.compact(net, variables, groups, gm, (1, 32, 32, 3))
    assert type(small_model) is type(model)
    assert small_model.resolved_widths()[14:] == (16,) * 5

    def both(m):  # eval and train-mode logits, one compilation per model
        return jax.jit(lambda v, x: (m.apply(v, x, False),
                                     m.apply(v, x, True, mutable=["batch_stats"])[0]))

    full = both(net)(variables, X32)
    comp = both(small_model)(small_vars, X32)
    np.testing.assert_allclose(full[0], comp[0], rtol=1e-4, atol=1e-4)
    # train-mode BN over 4 x 1 x 1 positions at unit12-13 amplifies float32 rounding
    np.testing.assert_allclose(full[1], comp[1], rtol=2e-3, atol=2e-3)
    report = cost.count(small_model, (1, 64, 64, 3))
    again = cost.count(models.create(NAME, num_classes=5, widths=small_model.widths),
                       (1, 64, 64, 3))
    assert (report.params, report.macs) == (again.params, again.macs)
    assert report.macs < cost.count(model, (1, 64, 64, 3)).macs
