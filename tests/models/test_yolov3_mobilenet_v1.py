"""YOLOv3-Mobile model: output maps per stride, layer paths, parameter counts from the structure
(standard and separable neck), the published size, and bad hyper-parameters / images."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lightjax import cost, models
from lightjax.errors import ValidationError
from lightjax.layers import LayerFactory
from lightjax.models import mobilenet_v1 as v1
from lightjax.models import yolov3_mobilenet_v1 as yolo

NAME = "yolov3_mobilenet_v1"
XLA = LayerFactory(depthwise_impl="xla")


def small(**kwargs):
    return models.create(NAME, **{"num_classes": 3, "alpha": 0.25, "head_width": 0.25,
                                  "layers": XLA, **kwargs})


def _conv_bn(cin, cout, k=1):
    return k * k * cin * cout + 2 * cout


def _neck_params(num_classes, alpha=1.0, head_width=1.0, separable=False):
    """The neck and heads counted by hand from the YOLOv3 structure (widths c, 2c; transition
    1x1(c) of the coarser route, upsampled and concatenated before the backbone feature)."""
    taps = {"unit13": int(1024 * alpha), "unit6": int(512 * alpha), "unit4": int(256 * alpha)}

    def conv3(cin, cout):
        return (9 * cin + 2 * cin) + _conv_bn(cin, cout) if separable else _conv_bn(cin, cout, 3)

    total, prev = 0, None
    for tap, c0 in zip(yolo.TAPS, yolo.NECK_CHANNELS):
        c = max(8, int(c0 * head_width + 4) // 8 * 8)
        cin = taps[tap]
        if prev is not None:
            total += _conv_bn(prev, c)
            cin += c
        total += (_conv_bn(cin, c) + conv3(c, 2 * c) + _conv_bn(2 * c, c) + conv3(c, 2 * c)
                  + _conv_bn(2 * c, c) + conv3(c, 2 * c))
        total += 2 * c * 3 * (5 + num_classes) + 3 * (5 + num_classes)
        prev = c
    return total


def _backbone_params(alpha=1.0):
    m = models.create("mobilenet_v1", num_classes=1, alpha=alpha)
    report = cost.count(m, (1, 64, 64, 3))
    return report.params - (int(1024 * alpha) + 1)  # without the 1-class classifier


@pytest.mark.parametrize("head_conv", ["standard", "separable"])
def test_parameter_count_equals_the_structure(head_conv):
    for alpha, head_width, classes in ((1.0, 1.0, 80), (0.25, 0.25, 3)):
        m = models.create(NAME, num_classes=classes, alpha=alpha, head_width=head_width,
                          head_conv=head_conv)
        report = cost.count(m, (1, 64, 64, 3))
        expected = _backbone_params(alpha) + _neck_params(classes, alpha, head_width,
                                                          head_conv == "separable")
        assert report.params == expected


def test_published_size_and_the_separable_saving():
    """About 24M parameters and 10 GMACs at 416x416 (80 classes); the separable neck cuts the
    model by about two thirds (the YOLOv3-Mobile paper: -67.9%)."""
    std = cost.count(models.create(NAME), (1, 416, 416, 3))
    sep = cost.count(models.create(NAME, head_conv="separable"), (1, 416, 416, 3))
    assert 23.5e6 < std.params < 25e6 and 9.5e9 < std.macs < 11e9
    assert 0.30 < sep.params / std.params < 0.36 and sep.macs < 0.45 * std.macs


def test_three_output_maps_per_stride_with_anchor_channels():
    m = small()
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 64, 96, 3)), jnp.float32)
    variables = jax.jit(m.init)(jax.random.PRNGKey(0), x)
    outs = jax.jit(lambda v, x: m.apply(v, x))(variables, x)
    assert [o.shape for o in outs] == [(2, 2, 3, 24), (2, 4, 6, 24), (2, 8, 12, 24)]
    assert m.output_strides() == (32, 16, 8) and m.neck_channels() == (128, 64, 32)
    assert m.anchors()[0] == ((116, 90), (156, 198), (373, 326))
    assert all(np.isfinite(np.asarray(o)).all() for o in outs)
    tiny = small(stem_stride=1)
    assert tiny.output_strides() == (16, 8, 4)
    shapes = jax.eval_shape(lambda: tiny.init_with_output(jax.random.PRNGKey(0),
                                                          jnp.zeros((1, 32, 32, 3)))[0])
    assert [s.shape[1] for s in shapes] == [2, 4, 8]


def test_layer_paths_and_kinds():
    kinds = {row.name: row.type for row in cost.count(small(), (1, 64, 64, 3)).layers
             if row.type not in ("norm", "activation")}
    assert kinds["backbone/unit13/pw/conv"] == "pointwise"
    assert kinds["neck0/conv1/conv"] == "standard" and "neck0/transition/conv" not in kinds
    assert kinds["neck1/transition/conv"] == "pointwise" and kinds["head2"] == "pointwise"
    sep = {row.name: row.type for row in cost.count(small(head_conv="separable"),
                                                    (1, 64, 64, 3)).layers}
    assert sep["neck2/tip_dw/conv"] == "depthwise" and sep["neck2/tip_pw/conv"] == "pointwise"
    assert not any(t == "standard" for n, t in sep.items() if n.startswith("neck"))


@pytest.mark.parametrize("kwargs,message", [
    ({"head_conv": "dense"}, "unknown head_conv 'dense'"),
    ({"head_width": 0}, "head_width must be a finite number > 0"),
    ({"neck_activation": "nope"}, "nope"),
    ({"num_classes": 0}, "num_classes must be a positive integer"),
])
def test_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        models.create(NAME, **kwargs)


def test_image_sizes_must_be_multiples_of_the_coarsest_stride():
    m = small()
    with pytest.raises(ValidationError, match="multiples of 32"):
        m.init(jax.random.PRNGKey(0), jnp.zeros((1, 48, 64, 3)))
    assert len(v1.UNITS) == 13 and yolo.TAPS == ("unit13", "unit6", "unit4")


@pytest.mark.parametrize("head_conv", ["standard", "separable"])
def test_pruned_neck_compacts_to_the_same_outputs(head_conv):
    """Channel groups trace through the route, upsample and concat: pruning the detection blocks
    (PaddleSlim's 18 convs) and the backbone gives a compact model computing the same maps."""
    from lightjax.prune import compact, groups as groups_lib, masking
    from model_fixtures import half_masks, random_variables

    model = small(head_conv=head_conv, stem_stride=1)
    groups = groups_lib.derive(model, (1, 32, 32, 3))
    names = model.prunable_layers()
    assert len(names) == 32 and all(groups[n].prunable for n in names[1:]), groups.describe()
    assert not groups["backbone/stem"].prunable  # the first conv is kept, as in every model
    assert not groups["head0"].prunable and not groups["neck1/transition/conv"].prunable
    rng = np.random.default_rng(0)
    gm = half_masks(groups, rng)
    net = masking.masked(model)
    x = jnp.asarray(rng.standard_normal((2, 32, 32, 3)), jnp.float32)
    variables = jax.jit(lambda v: masking.apply(v, groups, gm))(random_variables(net, x, False))
    small_model, small_vars = compact.compact(net, variables, groups, gm, (1, 32, 32, 3))
    halved = tuple(w // 2 for w in model.resolved_widths()[14:])
    assert small_model.resolved_widths()[14:] == halved
    full = jax.jit(lambda v, x: net.apply(v, x, False))(variables, x)
    comp = jax.jit(lambda v, x: small_model.apply(v, x, False))(small_vars, x)
    for a, b in zip(full, comp):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    assert cost.count(small_model, (1, 64, 64, 3)).macs < cost.count(model, (1, 64, 64, 3)).macs
