"""The detection task: its evaluator over a split (perfect detections score 1, misses lower it),
output checks and options, and a tiny YOLOv3-Mobile run through the engine that eval reloads."""
import json

import jax.numpy as jnp
import numpy as np
import pytest

from lightjax import cli, tasks
from lightjax.detect import anchors as anchors_lib
from lightjax.errors import ValidationError
from lightjax.train import config as config_lib
from lightjax.train import run as run_lib


def _batch_outputs(boxes, classes, count, det_boxes, det_scores, det_classes, det_count,
                   valid=None):
    n = len(count)
    return {"boxes": det_boxes, "scores": det_scores, "classes": det_classes, "count": det_count,
            "gt_boxes": boxes, "gt_classes": classes, "box_count": count,
            "gt_difficult": np.zeros(classes.shape, bool),
            "valid": np.ones(n, bool) if valid is None else valid, "loss": 2.0 * n,
            "image_hw": np.array([64, 64])}


def test_evaluator_scores_perfect_detections_one_and_skips_padded_rows():
    task = tasks.create("detection", num_classes=3)
    boxes = np.array([[[0.1, 0.1, 0.5, 0.5], [0.6, 0.6, 0.9, 0.95]],
                      [[0.2, 0.3, 0.4, 0.7], [0, 0, 0, 0]]], np.float32)
    classes = np.array([[0, 2], [1, -1]], np.int32)
    count = np.array([2, 1], np.int32)
    ev = task.evaluator()
    ev.update(_batch_outputs(boxes, classes, count, boxes, np.array([[0.9, 0.8], [0.7, 0.0]]),
                             classes, count))
    # a padded row (valid False) with a wrong detection changes nothing
    ev.update(_batch_outputs(boxes[:1], classes[:1], count[:1], boxes[:1, ::-1],
                             np.array([[0.9, 0.9]]), classes[:1], count[:1],
                             valid=np.array([False])))
    out = ev.result()
    assert out["map50"] == pytest.approx(1.0) and out["coco_ap"] == pytest.approx(1.0)
    assert out["count"] == 2 and out["detections"] == 3
    miss = task.evaluator()
    shifted = boxes + np.array([0.2, 0, 0.2, 0], np.float32)  # IoU < 0.5 for the small boxes
    miss.update(_batch_outputs(boxes, classes, count, shifted, np.array([[0.9, 0.8], [0.7, 0]]),
                               classes, count))
    assert miss.result()["map50"] < 1.0


def test_output_check_and_options():
    task = tasks.create("detection", num_classes=5)
    task.check_output(((2, 2, 2, 30), (2, 4, 4, 30), (2, 8, 8, 30)), (2, 64, 64, 3), "yolo")
    with pytest.raises(ValidationError, match="expects 3 prediction maps"):
        task.check_output((2, 5), (2, 64, 64, 3), "mobilenet_v1")
    with pytest.raises(ValidationError, match="task.ignore_thresh"):
        tasks.create("detection", num_classes=5, ignore_thresh=1.5)
    with pytest.raises(ValidationError, match="does not take"):
        tasks.create("detection", num_classes=5, anchor_count=3)
    assert "detection" in tasks.names() and task.primary == "map50"


@pytest.mark.parametrize("anchors,masks,message", [
    (3, None, "task.anchors must be a list of"),
    ([[10, 13], [0, 5]], None, "task.anchors must be a list of"),
    ([[10, 13], [float("nan"), 5]], None, "task.anchors must be a list of"),
    (None, [[6, 7, 8], [3, 4, 5], [0, 1, 9]], "indices into the 9 anchors"),
    (None, [[6, 7, 8], [3, 4, 5], [0, 1]], "the same number of distinct"),
    (None, [[6, 7, 8], [3, 4, 5], [0, 1, 1]], "the same number of distinct"),
    ([[10, 13]], None, "indices into the 1 anchors"),
])
def test_unknown_anchor_layouts_are_refused_in_one_line(anchors, masks, message):
    with pytest.raises(ValidationError, match=message) as err:
        tasks.create("detection", num_classes=5, anchors=anchors, anchor_masks=masks)
    assert "\n" not in str(err.value)


def test_custom_anchors_are_used_and_a_layout_the_model_lacks_is_refused():
    scaled = [[w / 2, h / 2] for w, h in anchors_lib.ANCHORS]
    task = tasks.create("detection", num_classes=5, anchors=scaled)
    assert task.anchors[0] == (5.0, 6.5) and task.masks == anchors_lib.ANCHOR_MASKS
    two = tasks.create("detection", num_classes=5, anchor_masks=[[3, 4, 5], [0, 1, 2]])
    with pytest.raises(ValidationError, match="expects 2 prediction maps.*3 outputs of 3"):
        two.check_output(((2, 2, 2, 30), (2, 4, 4, 30), (2, 8, 8, 30)), (2, 64, 64, 3),
                         "yolov3_mobilenet_v1")


def test_tiny_yolov3_run_trains_evaluates_and_reloads(tmp_path, capsys):
    """Through the one training loop (multi-scale): the YOLOv3 loss decreases within the run,
    detections are scored over the test split (mAP, COCO AP), and ``lightjax eval`` reproduces
    the figures."""
    cfg = config_lib.override(config_lib.load("yolov3_mobilenet_v1_shapes:tiny"),
                              ["--config.train.epochs=2", "--config.train.eval_every_epochs=2"])
    cfg.data.multiscale = (32, 64, 32)  # multi-scale training: each batch 32x32 or 64x64
    work = tmp_path / "det"
    summary = run_lib.train(cfg, str(work), progress=False)
    assert summary["task"] == "detection" and summary["metric"] == "map50"
    assert 0.0 <= summary["map50"] <= 1.0 and summary["detections"] > 0
    rows = [json.loads(line) for line in open(work / "metrics.jsonl")]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert {"train_loss_obj", "train_loss_xy", "test_map50", "test_coco_ap"} <= set(rows[-1])
    assert "test_map50" not in rows[0]  # train.eval_every_epochs=2: evaluated after epoch 2
    capsys.readouterr()
    assert cli.main(["eval", "--workdir", str(work)]) == 0
    out = capsys.readouterr().out
    assert f"mAP@0.5 {100 * summary['map50']:.2f}%" in out


def test_a_detection_sweep_is_one_vmapped_group(tmp_path):
    """The bundled lr x seed sweep of the shapes demo (tiny): two members, one group, one compiled
    program; each member is scored by mAP and the members differ."""
    from lightjax.sweep import plan, runner, spec

    sweep = spec.load("yolov3_shapes_lr:tiny")
    assert len(plan.plan(sweep)) == 1
    rows = runner.run(sweep, str(tmp_path / "sweep"), progress=False)
    assert [r["config"]["train.lr"] for r in rows] == [1e-3, 2e-3]
    assert all(r["status"] == "finished" and r["metric"] == "map50" for r in rows)
    assert rows[0]["group"] == rows[1]["group"] and rows[0]["members_in_group"] == 2
    assert all(0.0 <= r["map50"] <= 1.0 for r in rows) and rows[0]["loss"] != rows[1]["loss"]
    assert "map50" in runner.format_table(rows).splitlines()[0]
