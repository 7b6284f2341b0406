"""``train.init_from``: a detector's backbone from a classification run (matching paths and
shapes copied, the rest kept and reported), through ``lightjax train``; bad sources refused."""
import jax
import numpy as np
import pytest
from flax import traverse_util

from lightjax import cli
from lightjax.errors import ValidationError
from lightjax.train import config as config_lib
from lightjax.train import warm_start
from lightjax.train.experiment import Experiment
from run_fixtures import initial_run

#: the tiny detector's backbone: MobileNetV1 alpha 0.25, stem stride 1, RGB
SOURCE = ("shapes_classification:tiny", ["--config.model.alpha=0.25"])


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    work = tmp_path_factory.mktemp("warm") / "classifier"
    _, state = initial_run(work, SOURCE[0], SOURCE[1])
    return work, state


def _flat(tree):
    return {"/".join(k): np.asarray(v) for k, v in traverse_util.flatten_dict(
        jax.device_get(tree)).items()}


def test_backbone_tensors_are_copied_and_the_rest_reported(source):
    work, src_state = source
    exp = Experiment(config_lib.load("yolov3_mobilenet_v1_shapes:tiny"))
    fresh = exp.init_state()
    merged, report = warm_start.merge(fresh, warm_start.source_tensors(str(work)))
    src, before, after = _flat(src_state.params), _flat(fresh.params), _flat(merged.params)
    backbone = [k for k in after if k.startswith("backbone/")]
    assert backbone and all(np.array_equal(after[k], src[k[len("backbone/"):]]) for k in backbone)
    assert not any(np.array_equal(before[k], after[k]) for k in backbone if k.endswith("kernel"))
    rest = [k for k in after if not k.startswith("backbone/")]
    assert rest and all(np.array_equal(after[k], before[k]) for k in rest)  # neck, heads: fresh
    stats_src, stats = _flat(src_state.batch_stats), _flat(merged.batch_stats)
    assert all(np.array_equal(stats[k], stats_src[k[len("backbone/"):]]) for k in stats
               if k.startswith("backbone/"))
    n_stats = sum(k.startswith("backbone/") for k in stats)
    assert len(report.loaded) == len(backbone) + n_stats and not report.shape_mismatch
    assert report.missing and all("neck" in m or "head" in m for m in report.missing)
    line = report.line(str(work))
    assert f"loaded {len(report.loaded)} of" in line and "not in the source kept fresh" in line


def test_shape_mismatch_is_reported_not_copied(source, tmp_path):
    work = tmp_path / "wide"
    initial_run(work, SOURCE[0], ["--config.model.alpha=0.5"])  # every width doubles
    exp = Experiment(config_lib.load("yolov3_mobilenet_v1_shapes:tiny"))
    with pytest.raises(ValidationError, match="no tensor of that run matches"):
        warm_start.merge(exp.init_state(), warm_start.source_tensors(str(work)))


def test_lightjax_train_warm_starts_and_refuses_bad_sources(source, tmp_path, capsys):
    work, _ = source
    run = tmp_path / "det"
    status = cli.main(["train", "--config", "yolov3_mobilenet_v1_shapes:tiny", "--workdir",
                       str(run), "--max-steps", "1", "--no-progress",
                       f"--config.train.init_from={work}"])
    assert status == 0
    assert f"init_from {work}: loaded" in capsys.readouterr().err
    capsys.readouterr()
    status = cli.main(["train", "--config", "yolov3_mobilenet_v1_shapes:tiny", "--workdir",
                       str(tmp_path / "other"), f"--config.train.init_from={tmp_path}/nothing"])
    err = capsys.readouterr().err
    assert status == 2 and "train.init_from must be the directory of a lightjax run" in err
    assert not (tmp_path / "other").exists()  # refused before anything was written
