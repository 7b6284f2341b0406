"""Tasks: loss arithmetic, evaluators over padded batches, mIoU, output and dataset checks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lightjax import tasks
from lightjax.errors import ValidationError
from lightjax.tasks.classification import cross_entropy
from lightjax.tasks.segmentation import miou_from_confusion


def evaluate(task, outputs, batch):
    ev = task.evaluator()
    ev.update({k: np.asarray(v) for k, v in task.eval_outputs(outputs, batch).items()})
    return ev.result()


def test_cross_entropy_with_label_smoothing_matches_closed_form():
    logits = jnp.array([[2.0, 0.0, -1.0]])
    logp = logits - jnp.log(jnp.exp(logits).sum())
    plain = cross_entropy(logits, jnp.array([0]), 3)
    assert float(plain[0]) == pytest.approx(float(-logp[0, 0]), rel=1e-6)
    smooth = cross_entropy(logits, jnp.array([0]), 3, label_smoothing=0.3)
    targets = np.array([0.7 + 0.1, 0.1, 0.1])
    assert float(smooth[0]) == pytest.approx(float(-(targets * logp[0]).sum()), rel=1e-6)


def test_classification_evaluator_counts_only_real_examples():
    logits = jnp.array([[0.0, 1, 2, 3, 4, 5, 6],    # label 6: top-1 hit
                        [6.0, 5, 4, 3, 2, 1, 0],    # label 4: top-5 hit only
                        [6.0, 5, 4, 3, 2, 1, 0],    # label 6: miss
                        [0.0, 0, 0, 0, 0, 0, 9]])   # padding row (valid False)
    batch = {"label": jnp.array([6, 4, 6, 6]), "valid": jnp.array([True, True, True, False])}
    result = evaluate(tasks.create("classification", num_classes=7), logits, batch)
    assert result["count"] == 3
    assert result["top1"] == pytest.approx(1 / 3) and result["top5"] == pytest.approx(2 / 3)


def test_segmentation_loss_and_miou_ignore_unlabelled_pixels_and_padding():
    task = tasks.create("segmentation", num_classes=3)
    logits = jnp.zeros((3, 2, 2, 3)).at[..., 1].set(1.0)  # predicts class 1 everywhere
    mask = jnp.array([[[1, 1], [0, 255]],                  # 2 hits, 1 miss, 1 ignored
                      [[2, 2], [2, 2]],                    # 4 misses
                      [[1, 1], [1, 1]]])                   # padding row
    batch = {"mask": mask, "valid": jnp.array([True, True, False])}
    result = evaluate(task, logits, batch)
    # confusion (true x pred): class 0 -> 1 once, class 1 -> 1 twice, class 2 -> 1 four times
    assert result["pixels"] == 7 and result["count"] == 2
    assert result["pixel_acc"] == pytest.approx(2 / 7)
    assert result["iou"] == [0.0, pytest.approx(2 / 7), 0.0]
    assert result["miou"] == pytest.approx((2 / 7) / 3)
    loss, metrics = task.loss(logits, batch)
    per_pixel = float(cross_entropy(logits[:1, :1, :1], jnp.array([[[0]]]), 3)[0, 0, 0])
    hit = float(cross_entropy(logits[:1, :1, :1], jnp.array([[[1]]]), 3)[0, 0, 0])
    assert float(loss) == pytest.approx((2 * hit + 5 * per_pixel) / 7, rel=1e-6)
    assert float(metrics["pixel_acc"]) == pytest.approx(2 / 7)


def test_miou_skips_classes_absent_from_labels_and_predictions():
    confusion = np.array([[5, 0, 0], [1, 3, 0], [0, 0, 0]])
    out = miou_from_confusion(confusion)
    assert out["iou"][2] is None
    assert out["miou"] == pytest.approx((5 / 6 + 3 / 4) / 2)
    assert out["pixel_acc"] == pytest.approx(8 / 9)


def test_output_shape_and_options_are_checked_before_tracing():
    seg = tasks.create("segmentation", num_classes=4)
    with pytest.raises(ValidationError, match="per-pixel logits"):
        seg.check_output((2, 4), (1, 32, 32, 3), "mobilenet_v1")
    seg.check_output((1, 32, 32, 4), (1, 32, 32, 3), "mobilenet_v1_fcn")
    with pytest.raises(ValidationError, match="expects logits"):
        tasks.create("classification", num_classes=10).check_output((1, 8, 8, 10), (1, 8, 8, 3),
                                                                    "mobilenet_v1_fcn")
    with pytest.raises(ValidationError, match="unknown task"):
        tasks.create("detectionx", num_classes=3)
    with pytest.raises(ValidationError, match="does not take"):
        tasks.create("classification", num_classes=3, ignore_label=255)
    with pytest.raises(ValidationError, match="ignore_label"):
        tasks.create("segmentation", num_classes=3, ignore_label=1)


def test_primary_metric_direction():
    seg = tasks.create("segmentation", num_classes=3)
    assert seg.primary == "miou" and seg.higher_is_better
    assert seg.drop(0.8, 0.75) == pytest.approx(0.05) and seg.better(0.8, 0.75)


def test_per_class_iou_and_accuracy_equal_a_hand_count():
    # 2 images of 2x3 pixels, 3 classes; one pixel unlabelled (255), the second image padding
    labels = np.array([[[0, 0, 1], [2, 2, 255]], [[1, 1, 1], [1, 1, 1]]])
    pred = np.array([[[0, 1, 1], [2, 0, 0]], [[0, 0, 0], [0, 0, 0]]])
    seg = tasks.create("segmentation", num_classes=3)
    logits = jnp.asarray(np.eye(3)[pred] * 5.0)
    batch = {"mask": jnp.asarray(labels), "valid": jnp.asarray([True, False])}
    ev = seg.evaluator()
    ev.update({k: np.asarray(v) for k, v in seg.eval_outputs(logits, batch).items()})
    got = ev.result()
    # by hand, over the 5 labelled pixels of image 0: class 0: TP 1 (pixel 0), FP 1 (a 2
    # predicted 0), FN 1 (a 0 predicted 1) -> 1/3; class 1: TP 1, FP 1, FN 0 -> 1/2;
    # class 2: TP 1, FP 0, FN 1 -> 1/2
    assert got["iou"] == pytest.approx([1 / 3, 1 / 2, 1 / 2])
    assert got["miou"] == pytest.approx((1 / 3 + 1 / 2 + 1 / 2) / 3)
    assert got["pixel_acc"] == pytest.approx(3 / 5)
    lines = seg.per_class_table(got, ("background", "disc", "bar"))
    assert lines == ["per class IoU:", "  background    33.33%", "  disc          50.00%",
                     "  bar           50.00%"]
    cls = tasks.create("classification", num_classes=3)
    ev = cls.evaluator()
    logits = jnp.asarray(np.eye(3)[[0, 1, 1, 0, 2]] * 5.0)
    batch = {"label": jnp.asarray([0, 1, 2, 0, 2]), "valid": jnp.asarray([1, 1, 1, 1, 0], bool)}
    ev.update({k: np.asarray(v) for k, v in cls.eval_outputs(logits, batch).items()})
    got = ev.result()
    assert got["top1_per_class"] == pytest.approx([1.0, 1.0, 0.0]) and got["count"] == 4
    assert got["top1"] == pytest.approx(3 / 4)
    assert cls.per_class_table({"top1_per_class": [0.5, None]}, ("a",))[1:] == [
        "  a          50.00%", "  class 1    (absent)"]


def test_class_weights_weigh_the_loss_and_median_frequency_comes_from_the_masks():
    from lightjax.data import ArraySource
    from lightjax.tasks.segmentation import class_frequencies, median_frequency_weights

    labels = np.array([[[0, 0, 0], [0, 1, 2]]])  # 4 background, 1 of class 1, 1 of class 2
    logits = jnp.zeros((1, 2, 3, 3))  # uniform: every pixel's cross-entropy is log 3
    seg = tasks.create("segmentation", num_classes=3, class_weights=(1.0, 2.0, 3.0))
    loss, _ = seg.loss(logits, {"mask": jnp.asarray(labels)})
    assert float(loss) == pytest.approx(np.log(3))  # a weighted mean of equal losses
    logits = logits.at[0, 1, 1, 1].set(10.0)  # the class-1 pixel is now nearly free
    ce1 = float(-jax.nn.log_softmax(jnp.array([0.0, 10.0, 0.0]))[1])
    loss, _ = seg.loss(logits, {"mask": jnp.asarray(labels)})
    assert float(loss) == pytest.approx((4 * np.log(3) + 2 * ce1 + 3 * np.log(3)) / 9, rel=1e-5)
    source = ArraySource(np.zeros((1, 2, 3, 3), np.uint8), masks=labels.astype(np.uint8))
    freq = class_frequencies(source, 4)
    np.testing.assert_allclose(freq, [4 / 6, 1 / 6, 1 / 6, 0])
    # median of the present frequencies (1/6) over each; an absent class weighs 1
    np.testing.assert_allclose(median_frequency_weights(freq), [0.25, 1, 1, 1])
    with pytest.raises(ValidationError, match="class_weights must be None, 'median_frequency' "
                                              "or 3 positive numbers"):
        tasks.create("segmentation", num_classes=3, class_weights=(1.0, -1.0, 1.0))
