"""Stopping on a plateau: the loop stops (finished) once the evaluated metric has not improved for
``patience`` epochs after ``after_epochs``, decided from the metrics log so a resumed run stops
exactly where an uninterrupted one did."""
import json

import pytest

from lightjax.binary import methods
from lightjax.errors import ValidationError
from lightjax.train import config as config_lib
from lightjax.train import loop as loop_lib
from lightjax.train.metrics_log import MetricsLog

SCORES = [0.1, 0.5, 0.4, 0.6, 0.6, 0.55, 0.9, 0.95]  # per epoch, as the evaluator reports them


def _loop(tmp_path, plateau, scores=SCORES):
    seen = []

    def evaluate(state):
        seen.append(state)
        return [{"top1": scores[state - 1]}]

    return loop_lib.Loop(steps_per_epoch=3, total_steps=3 * len(scores),
                         step=lambda s, b, i: (s + (i % 3 == 2), {"loss": 1.0}),
                         batches=lambda epoch, start: range(start, 3), evaluate=evaluate,
                         log=MetricsLog(str(tmp_path / "metrics.jsonl")), plateau=plateau), seen


def _epochs(tmp_path):
    return [json.loads(line)["epoch"] for line in open(tmp_path / "metrics.jsonl")]


@pytest.mark.parametrize("patience,after,stopped", [
    (2, 0, 6),     # best 0.6 at epoch 4 (epoch 5 only equals it), then 5 and 6: stop after 6
    (1, 0, 3),     # epoch 3 is worse than epoch 2
    (1, 2, 5),     # counting from epoch 3: best 0.6 at 4, 5 only equals it
    (2, 4, None),  # counting from epoch 5: 0.6, 0.55, then 0.9 improves in time
    (3, 0, None),  # never 3 epochs without improvement: trains to the end
])
def test_the_loop_stops_patience_epochs_after_the_best(tmp_path, patience, after, stopped):
    plateau = loop_lib.Plateau("top1", True, patience, after)
    loop, _ = _loop(tmp_path, plateau)
    result = loop_lib.run(loop, 0, 0)
    assert result.finished and result.plateau_epoch == stopped
    assert _epochs(tmp_path) == list(range(1, (stopped or len(SCORES)) + 1))
    assert result.step == 3 * (stopped or len(SCORES))


def test_a_resumed_run_stops_where_the_uninterrupted_one_did(tmp_path):
    plateau = loop_lib.Plateau("top1", True, 2)
    loop, _ = _loop(tmp_path, plateau)
    first = loop_lib.run(loop, 0, 0, stop_at=12)  # interrupted after epoch 4
    assert not first.finished
    again = loop_lib.run(loop, first.state, 12)
    assert again.plateau_epoch == 6 and again.step == 18
    loop, seen = _loop(tmp_path, plateau)  # once more, from the stopping point: nothing trains
    done = loop_lib.run(loop, again.state, 18)
    assert done.finished and done.step == 18 and done.plateau_epoch == 6 and not seen
    assert _epochs(tmp_path) == [1, 2, 3, 4, 5, 6]


def test_lower_is_better_and_the_requirements():
    plateau = loop_lib.Plateau("loss", False, 1)
    assert plateau.reached([{"epoch": 1, "test_loss": 2.0}, {"epoch": 2, "test_loss": 2.5}])
    assert not plateau.reached([{"epoch": 1, "test_loss": 2.0}, {"epoch": 2, "test_loss": 1.5}])
    loop = loop_lib.Loop(steps_per_epoch=1, total_steps=2, step=None, batches=None,
                         members=2, plateau=plateau)
    with pytest.raises(ValueError, match="one run with a metrics log"):
        loop_lib.run(loop, None, 0)


def test_srb_patience_sets_the_final_stage_plateau_and_bad_values_fail():
    base = config_lib.load("digits:tiny")
    cfg = methods.config(base, "srb", None, epochs=1, ratios=(0.5, 1.0), final_epochs=10,
                         patience=2)
    assert (cfg.train.plateau_patience, cfg.train.plateau_after_epochs) == (2, 4)
    assert cfg.train.epochs == 14
    with pytest.raises(ValidationError, match="--patience applies to --method srb"):
        methods.config(base, "xnor", None, patience=2)
    bad = config_lib.override(base, ["--config.train.plateau_after_epochs=2"])
    from lightjax.train import validate
    with pytest.raises(ValidationError, match="plateau_after_epochs"):
        validate.check_train(bad.train)
    sparse = config_lib.override(base, ["--config.train.plateau_patience=2",
                                        "--config.train.eval_every_epochs=2"])
    with pytest.raises(ValidationError, match="needs an evaluation every epoch"):
        validate.check_train(sparse.train)
    with pytest.raises(ValidationError, match="eval_every_epochs"):
        validate.check_train(config_lib.override(base, ["--config.train.eval_every_epochs=-1"]).train)
