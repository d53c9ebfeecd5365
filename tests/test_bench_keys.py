"""`dynamicpose bench keys` pieces on a real capture: Blender's own Bezier curves pass through
every key and differ from slerp between them; the run's figures are per gap and method, with
the capture's own sliding beside them."""
import numpy as np
import pytest
from conftest import DATA, needs_backend

pytestmark = needs_backend


@pytest.fixture(scope="module")
def walk():
    from motioncore import canonical, read_bvh

    return canonical.to_canonical(read_bvh(DATA / "bandai-1" / "dataset-1_walk_normal_002.bvh"))


def test_blenders_curves_pass_through_the_keys_and_bend_between_them(walk):
    pytest.importorskip("bpy")
    from backend.evaluation.keys import bezier
    from motioncore import blend
    from motioncore import rotations as rot

    keys = [0, 10, 20, 30]
    curve = bezier(walk.trim(0, 31), keys)
    assert np.abs(curve.root_position[keys] - walk.root_position[keys]).max() < 1e-5
    assert rot.angle_between(curve.local_rotations[keys], walk.local_rotations[keys]).max() < 1e-3
    slerp = blend.interpolate_keys(walk.trim(0, 31), np.array(keys))
    between = [5, 15, 25]
    assert rot.angle_between(curve.local_rotations[between], slerp.local_rotations[between]).max() > 1e-3


def test_a_run_reports_every_gap_and_method(walk, tiny_weights):
    pytest.importorskip("bpy")
    from backend.engine import Engine
    from backend.evaluation import keys as bench
    from motioncore import metrics

    engine = Engine(tiny_weights, device="cpu")
    result = bench.run(engine, [("walk", walk)], gaps=(5, 20))
    assert result["clips"] == 1
    for mode in ("keys every N", "two keys"):
        for gap in ("5", "20"):
            row = result[mode][gap]
            assert set(row) == {"engine", "engine, feet locked", "bezier", "slerp", "capture"}
            assert all(row[m]["error_cm"] > 0 for m in ("engine", "bezier", "slerp")) and row["capture"]["error_cm"] == 0
    every = result["keys every N"]["5"]["capture"]["sliding_cm_per_frame"]
    assert every == pytest.approx(100 * metrics.foot_skating(walk) / 30.0, abs=0.01)
    assert "gap  5" in bench.table(result)


def test_the_command_writes_figures_and_a_plot_for_a_folder_of_bvh(tiny_weights, tmp_path):
    pytest.importorskip("bpy")
    import json
    import shutil

    from test_inbetweener import run_cli

    folder = tmp_path / "takes"
    folder.mkdir()
    shutil.copy(DATA / "bandai-1" / "dataset-1_walk_normal_002.bvh", folder)
    out, png = tmp_path / "keys.json", tmp_path / "keys.png"
    r = run_cli("bench", "keys", "--data", str(folder), "--weights", str(tiny_weights), "--device", "cpu",
                "--json", str(out), "--plot", str(png))
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    assert result["clips"] == 1 and "10" in result["two keys"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "gap 10" in r.stdout
