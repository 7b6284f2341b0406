"""The notebooks in ``notebooks/`` executed headless (nbclient): parameters injected after the
``parameters`` cell (papermill convention), the PNG checked, and the drawn figure compared with the
results table it was drawn from (read here independently of ``lightjax.sweep.table``).

Kept under ~90 s on a 2-core CPU: the alpha-rho notebook runs its small sweep itself (2 compiled
groups), the pruning notebook trains and analyses a tiny run itself, the activation notebook reads
a results table written here, the detection notebook evaluates an untrained run written here.
"""
import json
import os
from pathlib import Path

import lightjax
import nbformat
import numpy as np
import pytest
from matplotlib.image import imread
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ("alpha_rho_tradeoff", "activation_study", "pruning_sensitivity", "binarization",
         "detection")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# A 2-group alpha-rho sweep (alpha 0.5, 0.25 at 8x8, 2 vmapped seeds, 1 epoch): the tiniest
# real run of the notebook's small-sweep mode.
MICRO_SWEEP = """
from lightjax.sweep import Sweep, product


def get_sweep(arg=None):
    return Sweep("digits:tiny", product({"model.alpha": [0.5, 0.25]}, {"data.resolution": [8]},
                                        {"train.seed": [0, 1]}, {"train.epochs": [1]}))
"""

# Appended to each notebook: prints what the figure ``fig`` holds as one JSON line.
INSPECT = {
    "alpha_rho_tradeoff": """
import json
macs_ax, params_ax = fig.axes
print(json.dumps({
    "results": str(RESULTS),
    "lines": {l.get_label(): [float(x) for x in l.get_xdata()] for l in macs_ax.get_lines()
              if not l.get_label().startswith("_")},
    "points": [[float(c.lines[0].get_xdata()[0]), float(c.lines[0].get_ydata()[0])]
               for c in macs_ax.containers],
    "param_points": len(params_ax.containers),
    "xscale": [macs_ax.get_xscale(), params_ax.get_xscale()],
}))
""",
    "activation_study": """
import json
ax = fig.axes[0]
print(json.dumps({
    "labels": [t.get_text() for t in ax.get_yticklabels()],
    "means": [float(c.lines[0].get_xdata()[0]) for c in ax.containers],
}))
""",
    "pruning_sensitivity": """
import json
print(json.dumps({"results": str(RESULTS), "groups": groups, "ratios": ratios,
                  "chosen": chosen,
                  "curves": [ln.get_label() for ln in fig.axes[0].get_lines()],
                  "points": [len(ln.get_xdata()) for ln in fig.axes[0].get_lines()]}))
""",
    "detection": """
import json
ax = fig.axes[0]
print(json.dumps({"results": str(RESULTS), "shown": shown, "curves": curves,
                  "panels": sum(1 for a in grid.axes if a.images),
                  "labels": [ln.get_label() for ln in ax.get_lines()],
                  "lines": [[[float(v) for v in ln.get_xdata()], [float(v) for v in ln.get_ydata()]]
                            for ln in ax.get_lines()],
                  "ap50_per_class": result["ap50_per_class"], "map50": result["map50"]}))
""",
    "binarization": """
import json
ax = fig.axes[0]
print(json.dumps({"runs": runs, "points": [[float(v) for v in c.get_offsets()[0]]
                                           for c in ax.collections]}))
""",
}


def execute(name: str, tmp_path: Path, monkeypatch, **parameters) -> dict:
    """Run notebook ``name`` with ``parameters`` in a fresh kernel (cwd ``tmp_path``); returns the
    JSON printed by its :data:`INSPECT` cell."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", ()))
    source = "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
    nb.cells.insert(index + 1, new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    nb.cells.append(new_code_cell(INSPECT[name]))
    # the kernel imports the lightjax under test, wherever it is installed
    package_root = str(Path(lightjax.__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (package_root, os.environ.get("PYTHONPATH")) if p))
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    finally:  # the executed notebook, for a look after a failure
        nbformat.write(nb, tmp_path / f"{name}.executed.ipynb")
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    return json.loads(text.strip().splitlines()[-1])


def assert_png(path: Path) -> tuple[int, int]:
    """``path`` is a complete, non-empty PNG; returns its (height, width) in pixels."""
    assert path.is_file() and path.stat().st_size > 0
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = imread(path)  # decodes every row: a truncated file fails here
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    return image.shape[:2]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_are_clean(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].metadata.get("tags") == ["parameters"]
    assert "RESULTS = None" in code[0].source and "OUT_PNG" in code[0].source
    assert all(not c.outputs and c.execution_count is None for c in code), "clear the outputs"


def test_alpha_rho_notebook_runs_its_small_sweep(tmp_path, monkeypatch):
    sweep_file = tmp_path / "micro_alpha_rho.py"
    sweep_file.write_text(MICRO_SWEEP)
    workdir = tmp_path / "sweep"
    got = execute("alpha_rho_tradeoff", tmp_path, monkeypatch, RESULTS=None,
                  SWEEP=str(sweep_file), WORKDIR=str(workdir), OUT_PNG="tradeoff.png")
    assert_png(tmp_path / "tradeoff.png")  # relative OUT_PNG: in the kernel's directory
    assert got["results"] == str(workdir)
    rows = read_jsonl(workdir / "results.jsonl")
    assert len(rows) == 4 and all(r["status"] == "finished" for r in rows)
    configs = {(r["config"]["model.alpha"], r["config"]["data.resolution"]) for r in rows}
    assert len(got["points"]) == got["param_points"] == len(configs) == 2
    # one line per alpha through its MACs; each point is the mean top-1 (%) of its two seeds
    macs = {a: sorted({r["macs"] for r in rows if r["config"]["model.alpha"] == a})
            for a, _ in configs}
    assert got["lines"] == {f"alpha {a:g}": m for a, m in macs.items()}
    assert macs[0.5][0] > 3 * macs[0.25][0]  # ~alpha^2 MACs
    for a, _ in configs:
        member = [r for r in rows if r["config"]["model.alpha"] == a]
        mean = 100 * np.mean([r["top1"] for r in member])
        assert [member[0]["macs"], pytest.approx(mean)] in got["points"]
    assert got["xscale"] == ["log", "log"]


def test_activation_notebook_reads_a_results_table(tmp_path, monkeypatch):
    top1 = {"relu": (0.90, 0.86), "hard_swish": (0.93, 0.95), "leaky_relu_0.1": (0.80, 0.84)}
    rows = [{"member": 2 * i + seed, "config": {"model.activation": act, "train.seed": seed},
             "group": f"group{i:03d}", "loss": 0.3, "top1": acc[seed], "top5": 1.0,
             "status": "finished", "params": 215_498, "macs": 3_183_616, "latency_ms": 0.5,
             "seconds": 9.0, "members_in_group": 2}
            for i, (act, acc) in enumerate(top1.items()) for seed in (0, 1)]
    rows[0].update(status="diverged", top1=0.1)  # relu seed 0: left out of the mean
    results = tmp_path / "act" / "results.jsonl"
    results.parent.mkdir()
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = execute("activation_study", tmp_path, monkeypatch, RESULTS=str(results.parent),
                  OUT_PNG=str(tmp_path / "act.png"))
    assert_png(tmp_path / "act.png")
    assert got["labels"] == ["hard_swish", "relu", "leaky_relu_0.1"]  # best first
    assert got["means"] == pytest.approx([94.0, 86.0, 82.0])


def test_pruning_notebook_trains_and_analyses_a_tiny_run(tmp_path, monkeypatch):
    workdir = tmp_path / "run"
    got = execute("pruning_sensitivity", tmp_path, monkeypatch, RESULTS=None,
                  WORKDIR=str(workdir), CONFIG="digits:tiny",
                  OVERRIDES=["--config.train.epochs=1", "--config.data.resolution=8"],
                  RATIOS="0.5,0.9", GROUPS="unit1/pw,unit13/pw", OUT_PNG=str(tmp_path / "s.png"))
    assert_png(tmp_path / "s.png")
    assert got["results"] == str(workdir / "sensitivity")
    written = json.loads((workdir / "sensitivity" / "sensitivity.json").read_text())
    assert [r["group"] for r in written] == ["(none)"] + ["unit1/pw"] * 2 + ["unit13/pw"] * 2
    assert got["groups"] == ["unit1/pw", "unit13/pw"] and got["ratios"] == [0.5, 0.9]
    assert set(got["chosen"]) == set(got["groups"])
    assert all(0.0 <= r <= 0.7 for r in got["chosen"].values())
    # one curve per group, from the baseline through each ratio
    assert got["curves"] == got["groups"] and got["points"] == [3, 3]


def test_binarization_notebook_binarizes_a_tiny_run(tmp_path, monkeypatch):
    workdir = tmp_path / "runs"
    got = execute("binarization", tmp_path, monkeypatch, RESULTS=None, WORKDIR=str(workdir),
                  CONFIG="digits:tiny", OVERRIDES=["--config.train.epochs=1",
                                                   "--config.data.resolution=8"],
                  METHODS="bwn,xnor", EPOCHS=0.5, LAYERS=None, OUT_PNG=str(tmp_path / "b.png"))
    assert_png(tmp_path / "b.png")
    names = [r["name"] for r in got["runs"]]
    assert sorted(names) == ["bwn", "float", "xnor"] and names[0] == "float"  # largest first
    for r, point in zip(got["runs"], got["points"]):
        summary = json.loads((workdir / r["name"] / "summary.json").read_text())
        assert r["value"] == pytest.approx(100 * summary["top1"])
        assert point == pytest.approx([r["bits"] / 8192, r["value"]])
    float_run = got["runs"][0]
    assert all(r["bits"] < float_run["bits"] / 5 for r in got["runs"][1:])


def test_detection_notebook_draws_predictions_and_pr_curves(tmp_path, monkeypatch):
    """An untrained tiny detection run (outputs at the priors: every score is ~0.002) with a score
    threshold below that, so each scene has its 100 kept detections and every class a curve."""
    from run_fixtures import initial_run

    from lightjax.detect import metrics

    workdir = tmp_path / "det"
    exp, state = initial_run(workdir, "yolov3_mobilenet_v1_shapes:tiny",
                             ["--config.task.score_threshold=0.001",
                              "--config.data.test_size=12"])
    evaluator = exp.run_evaluator(state, "test")
    expected = evaluator.result()
    got = execute("detection", tmp_path, monkeypatch, RESULTS=str(workdir), IMAGES=6,
                  SCORE=0.0015, OUT_PNG=str(tmp_path / "d.png"), PR_PNG=str(tmp_path / "pr.png"))
    assert_png(tmp_path / "d.png")
    assert_png(tmp_path / "pr.png")
    assert got["results"] == str(workdir) and got["panels"] == 6
    assert got["map50"] == pytest.approx(expected["map50"])
    for i, s in enumerate(got["shown"]):  # boxes drawn: the detections at or above SCORE
        boxes, scores, _ = evaluator.detections[i]
        assert s == {"drawn": int((scores >= 0.0015).sum()), "truth": len(evaluator.truth[i][0])}
    assert sum(s["drawn"] for s in got["shown"]) > 0
    names = exp.dataset.class_names
    present = [c for c, ap in enumerate(expected["ap50_per_class"]) if ap is not None]
    assert [label.split(" (AP")[0] for label in got["labels"]] == [names[c] for c in present]
    for (recall, precision), c in zip(got["lines"], present):
        # each curve is the class's recall/precision per detection; its AP is the run's AP
        assert len(recall) == sum(int((k == c).sum()) for _, _, k in evaluator.detections) > 0
        assert np.all(np.diff(recall) >= 0) and max(recall) <= 1.0
        assert metrics.voc_ap(np.array(recall), np.array(precision)) == \
            pytest.approx(expected["ap50_per_class"][c])
        assert got["curves"][names[c]]["ap"] == pytest.approx(expected["ap50_per_class"][c])
