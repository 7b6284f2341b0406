"""Binarization through the engine: ``lightjax binarize`` writes a run that ``eval`` reloads, stage
schedules set the selections, an interrupted binarization resumes to the same weights, ratios are
traced sweep axes (one vmapped group), and bad settings fail in one line with nothing written."""
import json
import os
import subprocess
import sys

import flax
import jax
import numpy as np
import pytest

from lightjax.binary import export, inference, methods, plugin, selection
from lightjax.errors import ValidationError
from lightjax.sweep import Sweep, plan, runner
from lightjax.train import config as config_lib
from lightjax.train import run as run_lib
from lightjax.train import step as step_lib
from lightjax.train.experiment import Experiment


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("trained") / "run")
    cfg = config_lib.load("digits:tiny")
    cfg.train.epochs, cfg.data.resolution = 1, 16
    run_lib.train(cfg, workdir, progress=False)
    return workdir


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "lightjax", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def binarized(trained, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("binarized") / "srb")
    proc = _cli("binarize", "--workdir", trained, "--method", "srb", "--ratios", "1",
                "--epochs", "0.25", "--patience", "1", "--out", out, "--no-progress",
                "--export", out + ".npz")
    assert proc.returncode == 0, proc.stderr
    assert f"exported {out}.npz" in proc.stdout
    return out


def test_binarize_writes_a_run_that_eval_reloads(trained, binarized):
    out = binarized
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    # every conv/dense layer but the first and the last is binary (BN and those two stay float)
    assert summary["binary_macs_share"] > 0.9 and summary["float_model_bits"] > 10 * \
        summary["model_bits"]
    cfg, exp, state = run_lib.load_run(out)
    assert cfg.binary.method == "horq" and cfg.binary.init_from == trained
    layers = plugin.eligible_layers(exp.cost)
    binarized = set(state.compression["binary"])
    assert layers[0].name not in binarized and layers[-1].name not in binarized
    assert binarized == {row.name for row in layers[1:-1]}
    for entry in state.compression["binary"].values():  # the last stage: everything binary
        assert np.all(np.asarray(entry["weights"]) == 1) and np.all(np.asarray(entry["inputs"]) == 1)
    evaluated = _cli("eval", "--workdir", out)
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"{100 * summary['top1']:.2f}%" in evaluated.stdout


def _experiment(trained, **fields):
    cfg = methods.config(run_lib.read_config(trained), "staged", trained, epochs=1,
                         ratios=(0.5, 1.0))
    for k, v in fields.items():
        cfg.binary[k] = v
    return Experiment(cfg)


def test_stages_grow_the_lowest_error_channels_and_windows(trained):
    exp = _experiment(trained, method="xnor", input_ratios=(0.25, 1.0))
    binary = exp.plugins[-1]
    state = binary.before_step(exp.access, exp.init_state(), 0)
    params = flax.traverse_util.flatten_dict(jax.device_get(state.params), sep="/")
    for row in binary.layers[:4]:
        kernel = np.asarray(params[f"{row.name}/kernel"])
        chosen = np.asarray(state.compression["binary"][row.name]["weights"])
        n = kernel.shape[-1]
        assert chosen.sum() == selection.count(0.5, n)
        error = selection.quantization_error(kernel)
        assert error[chosen > 0].max() <= error[chosen == 0].min()
        window = np.asarray(state.compression["binary"][row.name]["inputs"]).ravel()
        k = selection.count(0.25, window.size)
        assert window[:k].all() and not window[k:].any()  # raster order from the top-left
    later = binary.before_step(exp.access, state, exp.steps_per_epoch)
    assert all(np.all(np.asarray(e["weights"]) == 1)
               for e in later.compression["binary"].values())
    assert binary.before_step(exp.access, state, 3) is state  # no stage starts at step 3


def test_stochastic_selection_depends_on_the_seed_only(trained):
    def draw(seed):
        exp = _experiment(trained, selection="stochastic", seed=seed)
        state = exp.plugins[-1].before_step(exp.access, exp.init_state(), 0)
        return {k: np.asarray(v["weights"]) for k, v in state.compression["binary"].items()}

    a, b, c = draw(0), draw(0), draw(1)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_interrupted_binarization_resumes_to_the_same_weights(trained, tmp_path):
    cfg = methods.config(run_lib.read_config(trained), "sq", trained, epochs=0.5,
                         ratios=(0.5, 1.0))
    whole = run_lib.train(cfg, str(tmp_path / "whole"), progress=False)
    part = str(tmp_path / "part")
    assert not run_lib.train(cfg, part, progress=False, max_steps=4)["finished"]
    resumed = run_lib.train(cfg, part, progress=False)
    assert resumed["top1"] == whole["top1"] and resumed["loss"] == whole["loss"]
    _, _, a = run_lib.load_run(str(tmp_path / "whole"))
    _, _, b = run_lib.load_run(part)
    jax.tree.map(np.testing.assert_array_equal, a.params, b.params)
    jax.tree.map(np.testing.assert_array_equal, a.compression, b.compression)


def test_binarization_ratios_are_one_vmapped_sweep_group(trained, tmp_path):
    base = {"binary.method": "xnor", "binary.init_from": trained, "train.epochs": 1}
    sweep = Sweep(trained, [{**base, "binary.weight_ratios": (r,), "binary.input_ratios": (r,)}
                            for r in (0.0, 0.5, 1.0)])
    assert len(plan.plan(sweep)) == 1
    rows = runner.run(sweep, str(tmp_path / "sweep"), progress=False)
    shares = [r["binary_macs_share"] for r in rows]
    assert shares[0] == 0 < shares[1] < shares[2] and all(r["status"] == "finished" for r in rows)
    assert rows[0]["model_bits"] == rows[0]["float_model_bits"] > rows[2]["model_bits"]


@pytest.mark.parametrize("args,message", [
    (["--method", "ternary"], "unknown binarization method 'ternary'"),
    (["--method", "sq", "--ratios", "0.5,1.5"], "must be a number in [0, 1]"),
    (["--method", "horq", "--order", "0"], "HORQ order) must be an integer >= 1"),
    (["--layers", "nothing/.*"], "matches no layer"),
    (["--pad-value", "2"], "binary.pad_value must be -1, 0 or 1"),
    (["--method", "bwn", "--input-scale"], "input_scale (XNOR-Net's K) needs sign inputs"),
    (["--export", "/"], "--export / already exists"),
])
def test_bad_binarize_settings_fail_in_one_line_and_write_nothing(trained, tmp_path, args,
                                                                   message):
    out = tmp_path / "out"
    proc = _cli("binarize", "--workdir", trained, "--out", str(out), *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_binarizing_a_missing_run_fails_in_one_line(tmp_path):
    proc = _cli("binarize", "--workdir", str(tmp_path / "nothing"))
    assert proc.returncode == 2 and "holds no lightjax run" in proc.stderr
    assert not (tmp_path / "nothing-binary-xnor").exists()


def test_export_stores_bits_and_the_loaded_model_computes_the_same(binarized, tmp_path):
    path = str(tmp_path / "model.npz")
    sizes = export.export(binarized, path)
    assert sizes["file_bytes"] == os.path.getsize(path) < sizes["float32_param_bytes"] / 4
    with np.load(path) as data:  # real bits: no float copy of a binary kernel is stored
        bits = [k for k in data.files if k.endswith("/bits")]
        assert bits and all(data[k].dtype == np.uint8 for k in bits)
        assert all(data[k.replace("/bits", "/float")].size == 0 for k in bits)
    _, exp, state = run_lib.load_run(binarized)
    batch = next(iter(exp.eval_batches("test")))
    variables = step_lib.model_variables(state, state.params, exp.plugins)
    expected = np.asarray(jax.jit(exp.model.apply)(variables, batch["image"]))
    _, model, loaded = export.load(path)
    got = np.asarray(jax.jit(model.apply)(loaded, batch["image"]))
    # alpha is re-derived from +-alpha (1 ulp) and a +-1e-7 change can flip a later sign at an
    # exact tie: nearly every logit agrees to rounding, the predictions agree
    assert np.mean(np.isclose(got, expected, rtol=1e-5, atol=1e-5)) > 0.98
    assert np.mean(got.argmax(-1) == expected.argmax(-1)) > 0.98
    with pytest.raises(ValidationError, match="already exists"):
        export.export(binarized, path)
    with np.load(path) as direct, np.load(binarized + ".npz") as from_cli:  # binarize --export
        assert direct.files == from_cli.files
        for key in direct.files:
            np.testing.assert_array_equal(direct[key], from_cli[key])


def test_packed_inference_equals_the_binarized_model(trained, tmp_path):
    """XNOR run with XNOR-Net's K: the layers computed with XOR + popcount (times alpha and K)
    give the model's outputs."""
    cfg = methods.config(run_lib.read_config(trained), "xnor", trained, epochs=0.2,
                         input_scale=True)
    cfg.binary.pad_value = -1.0
    out = str(tmp_path / "xnor")
    run_lib.train(cfg, out, progress=False, max_steps=2)
    _, exp, state = run_lib.load_run(out)
    variables = step_lib.model_variables(state, state.params, exp.plugins)
    fast = inference.from_plugin(exp.model, variables, exp.plugins[-1])
    assert len(fast.paths) == 13 and all(p.endswith("pw/conv") for p in fast.paths)
    images = next(iter(exp.eval_batches("test")))["image"]
    np.testing.assert_allclose(np.asarray(jax.jit(fast.apply)(images)),
                               np.asarray(jax.jit(exp.model.apply)(variables, images)),
                               rtol=1e-4, atol=1e-4)


def test_bundled_ratio_sweep_is_one_compiled_group(capsys):
    from lightjax import cli
    from lightjax.sweep.spec import load

    sweep = load("binarization_ratios:tiny")
    groups = plan.plan(sweep)
    assert len(sweep.members) == 9 and len(groups) == 1 and len(groups[0].members) == 9
    with pytest.raises(ValueError, match="give a trained run directory"):
        load("binarization_ratios")
    assert cli.main(["sweep", "binarization_ratios:tiny", "--workdir", "/nonexistent/x",
                     "--dry-run"]) == 0
    assert "9 members in 1 groups, 1 compiled programs" in capsys.readouterr().out
