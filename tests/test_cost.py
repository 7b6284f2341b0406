"""Cost accounting reproduces the papers' published counts (Howard et al. 2017, arXiv:1704.04861; Sandler et al. 2018; Zhang et al. 2018; Ma et al. 2018), from the modules themselves."""
import flax.linen as nn
import jax.numpy as jnp
import pytest

from lightjax import cost, models
from lightjax.layers import LayerFactory


def mnv1(res=224, **kwargs):
    return cost.count(models.create("mobilenet_v1", **kwargs), (1, res, res, 3))


def test_mobilenet_v1_224_exact():
    report = mnv1()
    assert report.params == 4_231_976
    assert report.macs == 568_740_352


def test_mobilenet_v1_body_only():
    report = mnv1()
    body = [r for r in report.layers if r.type in ("standard", "depthwise", "pointwise")]
    assert sum(r.params for r in body) == 3_185_088
    assert sum(r.macs for r in body) == 567_716_352


@pytest.mark.parametrize("alpha,res,macs_m,params", [
    (0.75, 224, 325.4, None), (0.5, 224, 149.5, None), (0.25, 224, 41.0, None),
    (1.0, 192, 418.1, 4_231_976), (1.0, 160, 290.7, 4_231_976), (1.0, 128, 186.4, 4_231_976),
])
def test_mobilenet_v1_alpha_rho_rows(alpha, res, macs_m, params):
    report = mnv1(res, alpha=alpha)
    assert round(report.macs / 1e6, 1) == macs_m
    if params is not None:
        assert report.params == params


@pytest.mark.parametrize("alpha,paper_m", [(0.75, 2.6), (0.5, 1.3), (0.25, 0.5)])
def test_mobilenet_v1_alpha_params_match_paper_to_its_precision(alpha, paper_m):
    assert round(mnv1(224, alpha=alpha).params / 1e6, 1) == paper_m


def test_mobilenet_v1_paper_table2_mac_shares():
    by_type = mnv1().by_type()
    total = sum(v["macs"] for v in by_type.values())
    assert round(100 * by_type["pointwise"]["macs"] / total, 2) == 94.86
    assert round(100 * by_type["depthwise"]["macs"] / total, 2) == 3.06
    assert round(100 * by_type["fc"]["macs"] / total, 2) == 0.18


def test_mobilenet_rhs_cifar100_exact():
    report = mnv1(32, variant="rhs", pointwise_bias=True, num_classes=100, stem_stride=1)
    assert report.params == 3_315_428


def test_macs_are_per_image_and_rows_are_named_by_module_path():
    one = mnv1(64, alpha=0.25)
    four = cost.count(models.create("mobilenet_v1", alpha=0.25), (4, 64, 64, 3))
    assert one.macs == four.macs and one.params == four.params
    names = [r.name for r in one.layers]
    assert "stem/conv" in names and "unit13/pw/conv" in names and "head/fc" in names
    row = next(r for r in one.layers if r.name == "unit1/dw/conv")
    assert row.type == "depthwise" and row.kernel_shape == (3, 3, 1, 8)
    assert row.macs == 9 * 8 * 32 * 32  # k² · C · Hout · Wout


def test_transposed_conv_macs_count_input_pixels_times_the_whole_kernel():
    class Up(nn.Module):
        @nn.compact
        def __call__(self, x, train=False):
            x = LayerFactory().conv_transpose(4, 4, 2, use_bias=True, name="up")(x, train=train)
            return LayerFactory().conv_transpose(2, 16, 8, name="up8")(x, train=train)

    report = cost.count(Up(), (2, 5, 6, 3))
    up, up8 = report.layers
    assert up.type == "transposed" and up.kernel_shape == (4, 4, 3, 4)
    assert up.output_shape == (2, 10, 12, 4) and up8.output_shape == (2, 80, 96, 2)
    # k·k·Cin·Cout·Hin·Win per image: 4·4·3·4 · 5·6 and 16·16·4·2 · 10·12 (not × output pixels)
    assert up.macs == 5_760 and up8.macs == 245_760
    assert up.params == 4 * 4 * 3 * 4 + 4 and up8.params == 16 * 16 * 4 * 2
    assert report.by_type()["transposed"] == {"params": 2_244, "macs": 251_520, "layers": 2}


def test_parameters_of_unknown_modules_are_reported_not_lost():
    class Foreign(nn.Module):
        @nn.compact
        def __call__(self, x, train=False):
            x = models.create("mobilenet_v1", num_classes=4, alpha=0.25)(x, train)
            return nn.Dense(3)(x)  # flax's own Dense: not one of ours

    report = cost.count(Foreign(), (1, 32, 32, 3))
    other = [r for r in report.layers if r.type == "other"]
    assert len(other) == 1 and other[0].params == 4 * 3 + 3
    assert report.params == mnv1(32, num_classes=4, alpha=0.25).params + 15


def test_trainable_activation_parameters_are_counted():
    plain = mnv1(32, alpha=0.25, num_classes=10)
    rrelu = mnv1(32, alpha=0.25, num_classes=10, activation="rrelu")
    widths = models.create("mobilenet_v1", alpha=0.25).resolved_widths()
    # one slope per channel after the stem, each depthwise and each pointwise conv
    assert rrelu.params - plain.params == widths[0] + sum(widths[:-1]) + sum(widths[1:])
    assert rrelu.by_type()["activation"]["params"] == rrelu.params - plain.params


def test_table_lists_every_type_and_the_total():
    text = cost.format_table(mnv1(), per_layer=True)
    for word in ("standard", "depthwise", "pointwise", "fc", "norm", "total", "4,231,976",
                 "568,740,352", "unit13/pw/conv"):
        assert word in text
    _ = jnp  # noqa


def test_cost_of_a_run_directory_is_its_model_at_its_input_size(tmp_path, capsys):
    """``lightjax cost --workdir`` reads the run's model (compact widths included) and input
    size: the same figures as the flags that describe that model."""
    import json

    from run_fixtures import initial_run

    from lightjax import cli

    widths = [8, 16, 16, 32, 32, 64, 64, 64, 64, 64, 64, 64, 128, 128] + [16, 24, 16, 24, 16, 24] * 3
    initial_run(tmp_path / "run", "yolov3_mobilenet_v1_shapes:tiny",
                [f"--config.model.widths={widths}"])
    assert cli.main(["cost", "--workdir", str(tmp_path / "run"), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert cli.main(["cost", "--model", "yolov3_mobilenet_v1", "--alpha", "0.25", "--head-width",
                     "0.25", "--head-conv", "separable", "--stem-stride", "1", "--num-classes",
                     "5", "--resolution", "32", "--widths", ",".join(map(str, widths)),
                     "--json"]) == 0
    assert got == json.loads(capsys.readouterr().out)
    assert cli.main(["cost", "--workdir", str(tmp_path / "run"), "--alpha", "0.5"]) == 2
    assert "drop --alpha" in capsys.readouterr().err
    assert cli.main(["cost"]) == 2
    assert "--model NAME" in capsys.readouterr().err
