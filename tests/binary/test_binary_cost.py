"""``lightjax cost --binary``: binary vs float parameters, size in bits and binarized MAC shares,
counted from the model's own layers (first and last layer float by default)."""
import json
import math

import pytest

from lightjax import cli, cost, models
from lightjax.binary import plugin


def _json(capsys, *argv):
    assert cli.main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_binary_cost_counts_every_binarized_kernel_as_one_bit(capsys):
    out = _json(capsys, "cost", "--model", "mobilenet_v1", "--alpha", "0.25", "--resolution",
                "32", "--num-classes", "10", "--binary", "xnor", "--json")
    report = cost.count(models.create("mobilenet_v1", alpha=0.25, num_classes=10),
                        (1, 32, 32, 3))
    rows = [r for r in report.layers if r.kernel_shape is not None]
    middle = rows[1:-1]  # stem conv and classifier stay float
    binary_params = sum(math.prod(r.kernel_shape) for r in middle)
    b = out["binary"]
    assert b["layers"] == len(middle) == 26
    assert b["binary_params"] == binary_params
    assert b["float_params"] == report.params - binary_params
    assert b["model_bits"] == binary_params + 32 * (report.params - binary_params)
    assert b["binary_macs_share"] == round(sum(r.macs for r in middle) / report.macs, 4)
    bwn = _json(capsys, "cost", "--model", "mobilenet_v1", "--alpha", "0.25", "--resolution",
                "32", "--binary", "bwn", "--binary-layers", r"unit1/.*", "--json")["binary"]
    assert bwn["layers"] == 2 and bwn["binary_macs_share"] == 0  # BWN: inputs stay float
    assert bwn["binary_weight_macs_share"] > 0


@pytest.mark.parametrize("args,message", [
    (["--binary", "ternary"], "unknown method 'ternary'"),
    (["--binary", "xnor", "--binary-layers", "nothing"], "matches no layer"),
])
def test_bad_binary_cost_flags_are_one_line(capsys, args, message):
    assert cli.main(["cost", "--model", "mobilenet_v1", "--resolution", "32", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_selected_layers_default_to_all_but_first_and_last():
    report = cost.count(models.create("mobilenet_v1_fcn", alpha=0.25, num_classes=3),
                        (1, 64, 64, 3))
    names = [r.name for r in plugin.select_layers(report, None)]
    eligible = [r.name for r in plugin.eligible_layers(report)]
    assert names == eligible[1:-1] and "head/classifier" not in names
    assert [r.name for r in plugin.select_layers(report, r"head/classifier")] == \
        ["head/classifier"]


def test_detector_keeps_its_three_output_convs_full_precision():
    """YOLOv3's outputs come from head0/1/2 (the last layer is only head2): by default the stem
    and all three stay full precision; the neck alone is selected by a module-path pattern."""
    model = models.create("yolov3_mobilenet_v1", alpha=0.25, head_width=0.25, num_classes=3)
    report = cost.count(model, (1, 32, 32, 3))
    outputs = plugin.output_layers(model)
    assert outputs == ("head0", "head1", "head2")
    names = [r.name for r in plugin.select_layers(report, None, outputs=outputs)]
    eligible = [r.name for r in plugin.eligible_layers(report)]
    assert names == [n for n in eligible[1:] if not n.startswith("head")]
    assert len(names) == len(eligible) - 4
    neck = [r.name for r in plugin.select_layers(report, "neck.*", outputs=outputs)]
    assert neck and all(n.startswith("neck") for n in neck)
    assert len(neck) == sum(n.startswith("neck") for n in eligible)
