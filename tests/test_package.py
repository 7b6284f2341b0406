"""The installed package: a wheel of this checkout, installed into a fresh virtual environment,
runs ``lightjax train`` / ``lightjax sweep`` with bundled configs and sweeps from an empty
directory, i.e. nothing depends on the checkout's ``configs/`` and ``sweeps/`` folders.

The wheel is built without build isolation (nothing is downloaded): the test extra brings
setuptools and wheel. The virtual environment sees the system site-packages (jax, flax, ... are
not installed again), and its own lightjax must shadow the editable install of the checkout.
"""
from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What a wheel build reads: the package, the folders mapped into it, the metadata files.
SOURCES = ("lightjax", "configs", "sweeps", "benchmarks")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


def _run(argv, cwd, env, timeout, what):
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"{what} failed (exit {proc.returncode}): {' '.join(map(str, argv))}\n"
                    f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}")
    return proc


def _check_build_tools() -> None:
    """Fail (never skip) with a clear message when this environment cannot build a wheel."""
    missing = []
    try:
        import setuptools
        if int(setuptools.__version__.split(".")[0]) < 64:
            missing.append(f"setuptools>=64 (found {setuptools.__version__})")
    except ImportError:
        missing.append("setuptools>=64")
    try:
        import wheel  # noqa: F401  (setuptools < 70.1 builds wheels through it)
    except ImportError:
        missing.append("wheel")
    if missing:
        pytest.fail(f"cannot build a wheel without build isolation: {', '.join(missing)} not "
                    f"installed; run pip install -e '.[test]'")


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env.update(JAX_PLATFORMS="cpu", PYTHONNOUSERSITE="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_NO_INPUT="1")
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel path, venv bin directory, env) of this checkout's wheel installed in a new venv."""
    _check_build_tools()
    base = tmp_path_factory.mktemp("package")
    src = base / "src"
    src.mkdir()
    for entry in ROOT.iterdir():  # setup.cfg, pyproject.toml, MANIFEST.in, README.md, ...
        if entry.is_file():
            shutil.copy2(entry, src / entry.name)
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=IGNORE)
    env = _environment()
    dist = base / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "-q", "-w", dist, src], base, env, 600, "building the wheel")
    wheels = sorted(dist.glob("lightjax-*.whl"))
    assert len(wheels) == 1, f"expected one lightjax wheel in {dist}: {os.listdir(dist)}"
    envdir = base / "venv"
    venv.create(envdir, system_site_packages=True, with_pip=False, symlinks=True)
    bindir = envdir / ("Scripts" if os.name == "nt" else "bin")
    # the system pip, run by the venv's interpreter, installs into the venv
    _run([bindir / "python", "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheels[0]],
         base, env, 300, "installing the wheel into the venv")
    return wheels[0], bindir, envdir, env


def _packages_in_checkout() -> set[str]:
    return {".".join(p.parent.relative_to(ROOT).parts)
            for p in (ROOT / "lightjax").rglob("__init__.py") if "__pycache__" not in p.parts}


def test_setup_cfg_lists_every_package():
    """setup.cfg lists the packages explicitly (configs and sweeps are mapped into lightjax):
    a new subpackage must be added there or it is missing from wheels."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = set(cfg["options"]["packages"].split())
    missing = _packages_in_checkout() - listed
    assert not missing, f"add {sorted(missing)} to [options] packages in setup.cfg"
    assert {"lightjax.configs", "lightjax.sweeps"} <= listed
    mapped = dict(line.split("=") for line in cfg["options"]["package_dir"].split("\n") if line)
    assert {k.strip(): v.strip() for k, v in mapped.items()} == {
        "lightjax.configs": "configs", "lightjax.sweeps": "sweeps"}
    for folder in ("configs", "sweeps"):
        assert (ROOT / folder / "__init__.py").is_file()


def test_wheel_holds_the_package_configs_and_sweeps(installed):
    wheel_path = installed[0]
    with zipfile.ZipFile(wheel_path) as zf:
        names = set(zf.namelist())
        entry_points = next(zf.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    for folder in ("configs", "sweeps"):
        for f in (ROOT / folder).glob("*.py"):
            assert f"lightjax/{folder}/{f.name}" in names, f"{folder}/{f.name} not in the wheel"
    for package in _packages_in_checkout():
        assert package.replace(".", "/") + "/__init__.py" in names, f"{package} not in the wheel"
    assert "lightjax = lightjax.cli:main" in entry_points
    assert not any(n.startswith(("configs/", "sweeps/", "tests/")) for n in names)


def test_venv_imports_its_own_copy(installed, tmp_path):
    _, bindir, envdir, env = installed
    probe = ("import json, lightjax, lightjax.configs\n"
             "from lightjax.train import config\n"
             "from lightjax.sweep import spec\n"
             "print(json.dumps({'file': lightjax.__file__, 'configs': config.bundled_names(),\n"
             "                  'digits': config.resolve_path('digits')[0],\n"
             "                  'sweeps': spec.bundled_names()}))\n")
    out = json.loads(_run([bindir / "python", "-c", probe], tmp_path, env, 120,
                          "importing lightjax in the venv").stdout)
    venv_root = os.path.realpath(envdir)
    assert os.path.realpath(out["file"]).startswith(venv_root), out["file"]
    assert os.path.realpath(out["digits"]).startswith(venv_root), out["digits"]
    assert set(out["configs"]) == {f.stem for f in (ROOT / "configs").glob("[!_]*.py")}
    assert set(out["sweeps"]) == {f.stem for f in (ROOT / "sweeps").glob("[!_]*.py")}


def test_train_default_config_from_an_empty_directory(installed, tmp_path):
    _, bindir, _, env = installed
    # one epoch: the digits config's 1-epoch warm-up must be shorter than the run
    proc = _run([bindir / "lightjax", "train", "--config", "digits", "--config.train.epochs=1",
                 "--config.train.warmup_epochs=0", "--config.data.resolution=16", "--no-progress",
                 "--workdir", "w"], tmp_path,
                env, 900,
                "lightjax train (installed wheel)")
    assert os.listdir(tmp_path) == ["w"]
    summary = json.loads((tmp_path / "w" / "summary.json").read_text())
    assert 0.0 <= summary["top1"] <= 1.0 and summary["params"] > 0
    config = json.loads((tmp_path / "w" / "config.json").read_text())
    assert config["train"]["epochs"] == 1 and config["data"]["name"] == "digits"
    assert "test" in proc.stdout and "top-1" in proc.stdout


def test_sweep_bundled_name_dry_run_from_an_empty_directory(installed, tmp_path):
    _, bindir, _, env = installed
    proc = _run([bindir / "lightjax", "sweep", "mobilenet_v1_alpha_rho", "--workdir", "s",
                 "--dry-run"], tmp_path, env, 600, "lightjax sweep --dry-run (installed wheel)")
    assert "24 members in 12 groups" in proc.stdout
    assert os.listdir(tmp_path) == []  # a dry run writes nothing
    help_text = _run([bindir / "lightjax", "--help"], tmp_path, env, 120, "lightjax --help").stdout
    assert "mobilenet_v1_alpha_rho" in help_text and "mobilenet_v1_cifar100" in help_text
