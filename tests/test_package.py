"""The backend as a package: a wheel built from this repository, the default weights inside,
installed into a fresh Python 3.11 environment, runs from there (not from the checkout) with
its weights verified; the add-on finds it through its `dynamicpose` command on PATH and Check
says what it is."""
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, needs_backend

pytestmark = needs_backend


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv holding the wheel (its dependencies from the test environment's
    site-packages, as a second environment on this machine would have them from PyPI)."""
    root = tmp_path_factory.mktemp("package")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT),
                            "-w", str(root / "dist")], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((root / "dist").glob("dynamicpose-*.whl"))
    env = root / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=300)
    python = env / "bin" / "python"
    own = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True,
                         text=True, check=True).stdout.strip()
    Path(own, "dynamicpose-deps.pth").write_text(site.getsitepackages()[0] + "\n")
    pip = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                         capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-2000:]
    return env, wheel


def clean_env(bin_dir):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DYNAMICPOSE_WEIGHTS")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_the_wheel_runs_from_its_environment_with_its_own_weights(installed, tmp_path):
    env, wheel = installed
    assert wheel.stat().st_size > 30e6  # the default model is inside (37 MB of weights)
    run = subprocess.run([str(env / "bin" / "python"), "-c",
                          "import backend, backend.paths as p; print(backend.__file__); print(p.default_weights_dir())"],
                         capture_output=True, text=True, cwd=tmp_path, env=clean_env(env / "bin"), timeout=120)
    assert run.returncode == 0, run.stderr
    where, weights = run.stdout.split()
    assert str(env) in where and str(ROOT) not in where
    assert weights == str(env / "share" / "dynamicpose" / "weights" / "default")
    check = subprocess.run([str(env / "bin" / "dynamicpose"), "check-install"], capture_output=True, text=True,
                           cwd=tmp_path, env=clean_env(env / "bin"), timeout=300)
    assert check.returncode == 0, check.stderr[-2000:]
    assert "match their SHA256SUMS" in check.stdout and "share/dynamicpose/weights/default" in check.stdout


def test_the_addon_finds_the_installed_backend_and_check_says_what_it_is(installed, dp, monkeypatch):
    from dynamic_pose.client import places, session

    env, _ = installed
    bpy = dp
    monkeypatch.setenv("PATH", clean_env(env / "bin")["PATH"])
    monkeypatch.delenv("PYTHONPATH", raising=False)
    assert places.installed_backend_python() == str(env / "bin" / "python")
    prefs = bpy.context.preferences.addons["dynamic_pose"].preferences
    session.disconnect()
    prefs.mode, prefs.python, prefs.backend_dir, prefs.weights = "PROCESS", "", "", ""
    try:
        assert bpy.ops.dynamicpose.backend_check() == {"FINISHED"}
        status = bpy.context.scene.dynamicpose.status
        assert "over HTTP" in status and str(env / "share" / "dynamicpose") in status, status
    finally:
        session.disconnect()
