"""The top-level API: ``import lightjax`` is cheap (no jax, no flax) and its sub-packages load on
first use; the README's "own loop" example trains, prunes in the loop and compacts exactly."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

LAZY_SCRIPT = """
import contextlib, io, json, sys
import lightjax
imported = sorted(m for m in ("jax", "flax", "optax", "lightjax.models", "lightjax.cost")
                  if m in sys.modules)
listed = dir(lightjax)
model = lightjax.models.create("mobilenet_v1", num_classes=10, alpha=0.25)
report = lightjax.cost.count(model, (1, 32, 32, 3))
from lightjax import cli
out = io.StringIO()
with contextlib.redirect_stdout(out):
    rc = cli.main(["cost", "--model", "mobilenet_v1", "--num-classes", "10", "--alpha", "0.25",
                   "--resolution", "32", "--json"])
try:
    lightjax.no_such_thing
    error = None
except AttributeError as err:
    error = str(err)
print(json.dumps({"imported": imported, "dir": listed, "model": type(model).__name__,
                  "params": report.params, "macs": report.macs, "rc": rc,
                  "cli": json.loads(out.getvalue()), "error": error,
                  "load_run": lightjax.load_run.__module__, "version": lightjax.__version__}))
"""


def test_import_is_lazy_then_models_and_cost_work_like_the_cli():
    proc = subprocess.run([sys.executable, "-c", LAZY_SCRIPT], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.splitlines()[-1])
    assert got["imported"] == []  # `import lightjax` loaded neither jax, flax nor a sub-package
    assert {"models", "cost", "prune", "binary", "train", "data", "tasks", "load_run"} <= set(
        got["dir"])
    assert got["model"] == "MobileNetV1" and got["rc"] == 0
    assert got["params"] > 0 and got["macs"] > 0
    assert (got["params"], got["macs"]) == (got["cli"]["params"], got["cli"]["macs"])
    assert got["error"].startswith("module 'lightjax' has no attribute 'no_such_thing'; "
                                   "available: binary, cost, data,")
    assert got["load_run"] == "lightjax.train.run" and got["version"].count(".") == 2


def _example():
    spec = importlib.util.spec_from_file_location("own_loop", ROOT / "examples" / "own_loop.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_own_loop_example_trains_prunes_in_the_loop_and_compacts_exactly():
    messages = []
    result = _example().main(steps=60, prune_at=(20,), ratios=(0.5,), log=messages.append)
    losses = np.asarray(result["losses"])
    assert len(losses) == 60 and losses[-10:].mean() < losses[:10].mean() - 0.1
    assert "step 20: pruned 50% of the prunable filters" in messages
    # the compact model (half the filters of every prunable group) computes the masked one
    assert result["max_logit_difference"] < 1e-4
    assert result["compact_accuracy"] == result["accuracy"]
    assert result["compact_params"] < 0.5 * result["params"]
    assert result["compact_widths"][-1] == 128  # unit13/pw: 256 filters at alpha 0.25
