"""``lightjax export`` / :func:`lightjax.interop.export.export_run`: the serialized inference
function of classification, segmentation, detection, compact (pruned) and binarized runs, reloaded
in a subprocess that imports only jax and numpy, gives the run's own outputs; a symbolic batch
serves several batch sizes; bad input fails in one line with nothing written.

Each run directory is a config's checkpoint 0 holding random weights drawn with numpy into the
abstract initial state (``jax.eval_shape``): a run like any other to ``export``, made without
compiling the training init (which takes 10-20 s per model on a 2-core CPU)."""
import contextlib
import io
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lightjax import cli
from lightjax.binary import methods
from lightjax.detect import postprocess
from lightjax.errors import ValidationError
from lightjax.interop import export as export_lib
from lightjax.train import config as config_lib
from lightjax.train import step as step_lib

from run_fixtures import write_run

#: the compact widths `lightjax prune --ratio 0.5` gives digits:tiny (tests/prune/test_prune_cli.py)
COMPACT_WIDTHS = "(8,8,16,16,32,32,64,64,64,64,64,64,128,128)"

#: what a user outside lightjax runs: deserialize, call on each input batch, save the outputs
RELOAD = r"""
import sys
import numpy as np
import jax
from jax import export

results = {}
for artifact, inputs in zip(sys.argv[2::2], sys.argv[3::2]):
    with open(artifact, "rb") as f:
        exported = export.deserialize(f.read())
    batches = np.load(inputs)
    for key in batches.files:
        for name, value in exported.call(batches[key]).items():
            results[f"{artifact}|{key}|{name}"] = np.asarray(value)
assert not [m for m in sys.modules if m.split(".")[0] == "lightjax"], "lightjax was imported"
np.savez(sys.argv[1], **results)
"""


def _random_state(abstract, seed: int):
    """Host arrays of the abstract train state: He-normal kernels, BN scale/variance near 1,
    small biases/means, compression selections 1 (everything binarized), integers 0."""
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        dtype, shape = np.dtype(leaf.dtype), tuple(leaf.shape)
        if not np.issubdtype(dtype, np.floating):
            return np.zeros(shape, dtype)
        name = str(getattr(path[-1], "key", getattr(path[-1], "name", "")))
        if getattr(path[0], "name", None) == "compression":
            return np.ones(shape, dtype)
        if name == "kernel":
            fan_in = max(1, int(np.prod(shape[:-1])))
            return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)
        if name in ("scale", "var"):
            return (1.0 + 0.2 * rng.random(shape)).astype(dtype)
        return (0.1 * rng.standard_normal(shape)).astype(dtype)

    return jax.tree_util.tree_map_with_path(fill, abstract)


def _write_run(workdir, cfg, seed=0):
    """A run directory (``config.json``, ``checkpoints/0``) of ``cfg`` with random weights:
    ``(exp, state)``."""
    return write_run(workdir, cfg, lambda exp: _random_state(exp.abstract_state(), seed))


def _config(name, *overrides):
    return config_lib.override(config_lib.load(name), list(overrides))


def _reference(exp, state, images, score_threshold=None):
    """The run's own inference (as ``lightjax predict`` computes it), in this process."""
    task = exp.task
    hw = tuple(exp.dataset.image_shape[:2])

    def forward(variables, x):
        out = exp.model.apply(variables, x, train=False)
        if task.name == "detection":
            threshold = task.score_threshold if score_threshold is None else score_threshold
            return postprocess.detect(out, hw, task.anchors, task.masks, task.iou_threshold,
                                      threshold, task.max_detections)._asdict()
        if task.name == "segmentation":
            return {"mask": jnp.argmax(out, -1).astype(jnp.int32), "logits": out}
        return {"probabilities": jax.nn.softmax(out.astype(jnp.float32), -1), "logits": out}

    variables = step_lib.model_variables(state, state.params, exp.plugins)
    return jax.device_get(jax.jit(forward)(variables, images))


def _images(exp, n, seed):
    return np.random.default_rng(seed).standard_normal(
        (n, *exp.dataset.image_shape)).astype(np.float32)


def _reload(tmp_path, *artifacts_and_batches):
    """Run :data:`RELOAD` on ``(artifact, {key: images})`` pairs in a fresh python that imports
    only jax and numpy: ``{(artifact, key): {output: array}}``."""
    argv = []
    for i, (artifact, batches) in enumerate(artifacts_and_batches):
        inputs = tmp_path / f"inputs{i}.npz"
        np.savez(inputs, **batches)
        argv += [str(artifact), str(inputs)]
    result = tmp_path / "outputs.npz"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", RELOAD, str(result), *argv], capture_output=True,
                          text=True, timeout=300, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict = {}
    with np.load(result) as saved:
        for name in saved.files:
            artifact, key, output = name.split("|")
            out.setdefault((artifact, key), {})[output] = saved[name]
    return out


def _close(actual, expected, names):
    assert sorted(actual) == sorted(names)
    for name in names:
        a, e = np.asarray(actual[name]), np.asarray(expected[name])
        assert a.shape == e.shape and a.dtype == e.dtype, name
        if np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(a, e, err_msg=name)


def _call(capsys, *argv):
    capsys.readouterr()
    status = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# --- runs and exports (one module-wide reload subprocess: starting python + jax costs 2-4 s) ------
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """name -> (workdir, exp, state): a digits run, a compact pruned digits run binarized with
    XNOR (``lightjax prune`` then ``lightjax binarize``), a segmentation and a detection run."""
    root = tmp_path_factory.mktemp("export-runs")
    compact = _config("digits:tiny", f"--config.model.widths={COMPACT_WIDTHS}")
    configs = {
        "digits": _config("digits:tiny"),
        "binarized": methods.config(compact, "xnor"),
        "segmentation": _config("shapes_segmentation:tiny"),
        "detection": _config("yolov3_mobilenet_v1_shapes:tiny"),
    }
    return {name: (root / name, *_write_run(root / name, cfg, seed))
            for seed, (name, cfg) in enumerate(configs.items())}


@pytest.fixture(scope="module")
def exported(runs, tmp_path_factory):
    """name -> (artifact, export summary, {batch key: images}) and the reloaded outputs
    ``{(artifact, key): {output: array}}``."""
    root = tmp_path_factory.mktemp("export-files")
    done = {}

    def export(name, n, **options):
        work, exp, _ = runs[name]
        out = root / f"{name}.jax"
        info = export_lib.export_run(str(work), str(out), **options)
        done[name] = (out, info, {"x": _images(exp, n, len(done))})

    # the Python API exports three runs, the command line the digits run
    export("binarized", 2, batch=2, platforms="cpu,cuda,tpu", logits=True)
    export("segmentation", 2)
    export("detection", 2, score_threshold=0.5)
    cli_out, stdout = root / "digits.jax", io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert cli.main(["export", "--workdir", str(runs["digits"][0]), "--out",
                         str(cli_out)]) == 0
    images = _images(runs["digits"][1], 5, 9)
    info = {**json.loads((root / "digits.jax.json").read_text()), "stdout": stdout.getvalue()}
    done["digits"] = (cli_out, info, {"one": images[:1], "five": images})
    reloaded = _reload(root, *[(out, batches) for out, _, batches in done.values()])
    return done, reloaded


def _check(runs, exported, name, names, key="x", **reference):
    (out, info, batches), reloaded = exported[0][name], exported[1]
    _, exp, state = runs[name]
    expected = _reference(exp, state, batches[key], **reference)
    _close(reloaded[(str(out), key)], expected, names)
    return info, expected


# --- tests ----------------------------------------------------------------------------------------
def test_classification_cli_symbolic_batch_and_sidecar(runs, exported):
    exp = runs["digits"][1]
    info, expected = _check(runs, exported, "digits", ["probabilities"], key="five")
    # the same symbolic export called with batch 1 gives the first row of batch 5
    out = exported[0]["digits"][0]
    one = exported[1][(str(out), "one")]["probabilities"]
    np.testing.assert_allclose(one, expected["probabilities"][:1], rtol=1e-5, atol=1e-6)
    assert "images (b, 16, 16, 1) float32 -> probabilities (b, 10) float32" in info["stdout"]
    assert info["task"] == "classification" and info["input"]["shape"] == ["b", 16, 16, 1]
    assert info["input"]["dtype"] == "float32" and info["platforms"] == ["cpu"]
    assert info["input"]["mean"] == pytest.approx(list(exp.dataset.mean))
    assert info["input"]["std"] == pytest.approx(list(exp.dataset.std))
    assert info["outputs"] == [{"name": "probabilities", "shape": ["b", 10], "dtype": "float32",
                                "description": export_lib.DESCRIPTIONS["probabilities"]}]
    assert info["classes"] == [str(c) for c in exp.dataset.class_names]
    assert len(info["classes"]) == 10
    assert info["versions"]["jax"] == jax.__version__ and info["step"] == 0
    assert out.stat().st_size > 4 * 200_000  # the float32 parameters are inside the file


def test_compact_binarized_run_fixed_batch_multi_platform_logits(runs, exported):
    _, exp, state = runs["binarized"]
    assert tuple(exp.cfg.model.widths) == (8, 8, 16, 16, 32, 32, 64, 64, 64, 64, 64, 64, 128, 128)
    assert [p.name for p in exp.plugins] == ["binary"] and exp.cfg.binary.method == "xnor"
    info, expected = _check(runs, exported, "binarized", ["logits"])
    assert info["platforms"] == ["cpu", "cuda", "tpu"] and info["input"]["shape"] == [2, 16, 16, 1]
    assert [(o["name"], o["shape"]) for o in info["outputs"]] == [("logits", [2, 10])]
    # the binarization hooks are in the export: the float model computes something else
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    float_model = jax.jit(lambda v, x: exp.base_model.apply(v, x, train=False))
    logits = float_model(variables, exported[0]["binarized"][2]["x"])
    assert np.abs(np.asarray(logits) - expected["logits"]).max() > 1e-2
    artifact = jax.export.deserialize(exported[0]["binarized"][0].read_bytes())
    with pytest.raises(ValueError, match="shape"):  # a fixed batch takes that batch only
        artifact.call(_images(exp, 3, 3))


def test_segmentation_mask(runs, exported):
    info, expected = _check(runs, exported, "segmentation", ["mask"])
    assert [(o["name"], o["shape"], o["dtype"]) for o in info["outputs"]] == \
        [("mask", ["b", 32, 32], "int32")]
    assert len(np.unique(expected["mask"])) > 1  # a mask that could differ
    assert info["input"]["resize"].startswith("stretch")


def test_detection_after_nms(runs, exported):
    info, expected = _check(runs, exported, "detection", ["boxes", "classes", "count", "scores"],
                            score_threshold=0.5)
    assert [(o["name"], o["shape"]) for o in info["outputs"]] == [
        ("boxes", ["b", 100, 4]), ("classes", ["b", 100]), ("count", ["b"]),
        ("scores", ["b", 100])]
    assert info["detection"]["score_threshold"] == 0.5
    assert info["detection"]["max_detections"] == 100
    assert info["input"]["resize"].startswith("letterbox")
    count = expected["count"]
    assert np.all(count > 0) and np.all(count < 100)  # NMS and the threshold both acted
    assert np.all(expected["scores"][0, :count[0]] > 0.5)


def test_bad_input_is_one_line_and_writes_nothing(runs, tmp_path, capsys):
    work = runs["digits"][0]
    existing = tmp_path / "taken.jax"
    existing.write_bytes(b"keep")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text((work / "config.json").read_text())
    out = tmp_path / "new.jax"
    cases = [
        (["--workdir", tmp_path / "missing", "--out", out], "no such directory"),
        (["--workdir", empty, "--out", out], "no checkpoint"),
        (["--workdir", work, "--out", existing], "already exists"),
        (["--workdir", work, "--out", out, "--batch", "0"], "--batch must be a positive integer"),
        (["--workdir", work, "--out", out, "--batch", "two"], "invalid int value"),
        (["--workdir", work, "--out", out, "--platforms", "cpu,gpu"], "unknown platform 'gpu'"),
        (["--workdir", work, "--out", out, "--score-threshold", "0.5"], "applies to detection"),
        (["--workdir", runs["detection"][0], "--out", out, "--logits"],
         "--logits applies to classification and segmentation"),
    ]
    for argv, message in cases:
        status, stdout, err = _call(capsys, "export", *argv)
        assert status == 2 and message in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert existing.read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "taken.jax"]
    assert [p.name for p in empty.iterdir()] == ["config.json"]
    (tmp_path / "side.jax.json").write_text("{}")  # an existing sidecar is refused too
    with pytest.raises(ValidationError, match="side.jax.json already exists"):
        export_lib.export_run(str(work), str(tmp_path / "side.jax"))
