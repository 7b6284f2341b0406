"""Sweep definitions and the planner: static axes make groups, traced axes are members."""
import json
import os

import pytest

from lightjax import cli
from lightjax.sweep import Sweep, load, plan as plan_lib, product, spec, zip_axes

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_product_and_zip():
    members = product({"model.alpha": [1.0, 0.5]}, zip_axes({"train.seed": [0, 1],
                                                             "train.lr": [0.1, 0.2]}))
    assert members == [{"model.alpha": 1.0, "train.seed": 0, "train.lr": 0.1},
                       {"model.alpha": 1.0, "train.seed": 1, "train.lr": 0.2},
                       {"model.alpha": 0.5, "train.seed": 0, "train.lr": 0.1},
                       {"model.alpha": 0.5, "train.seed": 1, "train.lr": 0.2}]
    with pytest.raises(ValueError, match="different lengths"):
        zip_axes({"a": [1], "b": [1, 2]})


def test_static_axes_group_traced_axes_vmap():
    sweep = Sweep("digits:tiny", product({"model.alpha": [0.5, 0.25]},
                                         {"train.seed": [0, 1, 2]}, {"train.lr": [0.1, 0.05]}))
    groups = plan_lib.plan(sweep)
    assert [g.members for g in groups] == [(0, 1, 2, 3, 4, 5), (6, 7, 8, 9, 10, 11)]
    assert groups[0].static == {"model.alpha": 0.5}
    chunks = plan_lib.plan(sweep, max_members=4)
    assert [len(g.members) for g in chunks] == [4, 2, 4, 2]
    # chunks of the same size and static config share one compiled program
    assert [g.program for g in chunks] == [0, 1, 2, 3]
    same = plan_lib.plan(Sweep("digits:tiny", product({"train.seed": list(range(8))})), 4)
    assert [g.program for g in same] == [0, 0]


def test_repository_sweeps_load():
    sweep = load(os.path.join(REPO, "sweeps", "mobilenet_v1_alpha_rho.py"))
    assert len(sweep.members) == 4 * 3 * 2
    assert len(plan_lib.plan(sweep)) == 12  # alpha x rho groups, the 2 seeds vmapped


@pytest.mark.parametrize("body,message", [
    ("x = 1\n", "defines no get_sweep"),
    ("def get_sweep(arg=None):\n    return {'a': 1}\n", "must return a lightjax.sweep.Sweep"),
    ("from lightjax.sweep import Sweep\ndef get_sweep(arg=None):\n    return Sweep('digits', [])\n",
     "empty grid"),
    ("from lightjax.sweep import Sweep, product\ndef get_sweep(arg=None):\n"
     "    return Sweep('digits', product({'model.width': [1]}))\n",
     "axis 'model.width' is not a config field"),
    ("raise RuntimeError('boom')\n", "could not be loaded: RuntimeError: boom"),
    ("def get_sweep(arg=None):\n    return {}['foo']\n", "get_sweep raised KeyError: 'foo'"),
    ("from lightjax.sweep import Sweep\ndef get_sweep(arg=None):\n"
     "    return Sweep('configs/missing.py', [{'train.seed': 0}])\n",
     "config file configs/missing.py does not exist"),
])
def test_bad_sweep_files(tmp_path, capsys, body, message):
    path = tmp_path / "s.py"
    path.write_text(body)
    with pytest.raises(ValueError, match=message):
        load(str(path))
    status = cli.main(["sweep", str(path), "--workdir", str(tmp_path / "w"), "--dry-run"])
    err = capsys.readouterr().err
    assert status == 2 and message.split(":")[0] in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "w").exists()


def test_bundled_sweeps_by_name_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert {"activations", "mobilenet_v1_alpha_rho", "pruning_schedules"} <= set(
        spec.bundled_names())
    path, arg = spec.resolve_path("mobilenet_v1_alpha_rho:tiny")
    assert os.path.basename(path) == "mobilenet_v1_alpha_rho.py" and arg == "tiny"
    assert len(load("mobilenet_v1_alpha_rho:tiny").members) == 8
    # the base of a bundled sweep is a bundled config, found from here too
    assert {c.data.name for c in load("activations:cifar100").configs()} == {"cifar100"}
    with pytest.raises(ValueError, match="sweep 'nope' not found.*bundled sweep: activations"):
        load("nope")
    with pytest.raises(ValueError, match="sweep file nope.py does not exist"):
        load("nope.py")


def test_local_sweep_wins_over_bundled(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "sweeps" / "activations.py").write_text(
        "from lightjax.sweep import Sweep\n"
        "def get_sweep(arg=None):\n"
        "    return Sweep('digits:tiny', [{'train.seed': 5}])\n")
    assert load("activations").members == ({"train.seed": 5},)
    assert load("sweeps/activations.py:x").members == ({"train.seed": 5},)


def test_dry_run_prints_the_plan(capsys, tmp_path):
    status = cli.main(["sweep", os.path.join(REPO, "sweeps", "mobilenet_v1_alpha_rho.py:tiny"),
                       "--workdir", str(tmp_path / "w"), "--dry-run"])
    out = capsys.readouterr().out
    assert status == 0 and "8 members in 4 groups, 4 compiled programs" in out
    assert "277,696 MACs" in out and not (tmp_path / "w").exists()
    json.dumps(out)


@pytest.mark.parametrize("args, message", [
    (["--num-processes", "2"], "need --coordinator"),
    (["--coordinator", "127.0.0.1:1234"], "needs --num-processes"),
    (["--coordinator", "127.0.0.1:1234", "--num-processes", "2", "--process-id", "2"],
     "--process-id must be in [0, 2)"),
    (["--distributed", "--coordinator", "127.0.0.1:1", "--num-processes", "1",
      "--process-id", "0"], "either --distributed or --coordinator"),
])
def test_bad_distributed_options(capsys, tmp_path, args, message):
    status = cli.main(["sweep", os.path.join(REPO, "sweeps", "mobilenet_v1_alpha_rho.py:tiny"),
                       "--workdir", str(tmp_path / "w"), *args])
    err = capsys.readouterr().err
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "w").exists()
