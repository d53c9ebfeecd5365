"""The HumanML3D reader on the one real clip in ../shared/humanml3d_sample (a fixture only: it
is read from there at test time, never copied into the project)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.data import dataset, humanml3d
from motioncore import canonical

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "humanml3d_sample"
JOINTS = SAMPLE / "new_joints_012314.npy"
pytestmark = pytest.mark.skipif(not JOINTS.is_file(), reason=f"the HumanML3D sample is not in {SAMPLE}")


@pytest.fixture
def layout(tmp_path) -> Path:
    """The sample in HumanML3D's layout, with a whole-clip caption, a captioned span, a split
    list, HumanML3D's own mirror of it and two files that are not joint positions."""
    root = tmp_path / "HumanML3D"
    (root / "new_joints").mkdir(parents=True)
    (root / "texts").mkdir()
    shutil.copy(JOINTS, root / "new_joints" / "012314.npy")
    mirror = np.load(JOINTS) * np.array([-1.0, 1.0, 1.0], dtype=np.float32)
    np.save(root / "new_joints" / "M012314.npy", mirror)
    (root / "texts" / "012314.txt").write_text(
        "a person serves a tennis ball.#a/DET person/NOUN#0.0#0.0\n"
        "someone throws a ball up and hits it overhead.#x#0.0#0.0\n"
        "a person swings the right arm.#x#2.0#5.0\n")
    (root / "test.txt").write_text("012314\n")
    np.save(root / "new_joints" / "000001.npy", np.zeros((40, 24, 3), np.float32))  # not SMPL's 22
    np.save(root / "new_joints" / "000002.npy", np.array([{"x": 1}] * 3, dtype=object), allow_pickle=True)
    return root


def test_fitted_rotations_reproduce_every_joint_within_a_centimetre():
    joints = np.load(JOINTS)
    motion = humanml3d.motion_on_clip_skeleton(joints)
    target = humanml3d.canonical_positions(joints)
    err = np.linalg.norm(motion.positions() - target, axis=-1)
    assert err.max() < 0.01, f"worst joint {err.max() * 100:.2f} cm off"
    # Its own axes -> canonical ones: Y up becomes Z up, and the clip starts facing -Y (yaw 0).
    np.testing.assert_allclose(target[:, 0, 2], joints[:, 0, 1], atol=1e-6)
    assert abs(np.degrees(canonical.heading_yaw(target[:1]))[0]) < 15


def test_canonical_motion_stands_on_the_floor_with_the_clips_turns():
    joints = np.load(JOINTS)
    motion = humanml3d.to_canonical(joints)
    assert motion.skeleton.same_shape(canonical.canonical_skeleton())
    feet = motion.positions()[:, [canonical.CANONICAL_JOINTS.index(n) for n in canonical.FEET], 2]
    assert -0.01 < feet.min() < 0.03, f"lowest foot at {feet.min():.3f} m"
    # The body turns as the clip's does: heading from the hip line, frame by frame.
    own = canonical.heading_yaw(humanml3d.canonical_positions(joints))
    retargeted = canonical.heading_yaw(motion.positions())
    turn = np.angle(np.exp(1j * (retargeted - own)))
    assert np.abs(turn).max() < np.radians(3)


def test_build_reads_the_layout_with_captions_spans_and_splits(layout, tmp_path):
    ds, skipped, rebuilt = dataset.build([layout], tmp_path / "cache", workers=1, progress=False)
    assert rebuilt
    by_name = {c.name: c for c in ds.clips}
    assert sorted(by_name) == ["012314", "012314#2-5"], "the M mirror is skipped; the span is a clip"
    whole, span = by_name["012314"], by_name["012314#2-5"]
    assert whole.captions == ["a person serves a tennis ball.", "someone throws a ball up and hits it overhead."]
    assert span.captions == ["a person swings the right arm."]
    assert whole.split == span.split == "test"
    assert (whole.length, span.length) == (170, 60)
    # The span is that stretch of the clip (its first frame's velocities start afresh).
    diff = np.abs(ds.clip_features(span)[1:] - ds.clip_features(whole)[41:100])
    assert np.median(diff) < 1e-4 and diff.mean() < 0.01
    problems = "\n".join(skipped)
    assert "000001.npy" in problems and "(frames, 22, 3)" in problems
    assert "000002.npy" in problems and "not a plain .npy" in problems


def test_cli_builds_it(layout, tmp_path):
    cache = tmp_path / "cache"
    out = subprocess.run([sys.executable, "-m", "backend", "data", "build", "--source", str(layout),
                          "--cache", str(cache), "--workers", "1"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "built 2 clips" in out.stdout
    manifest = json.loads((cache / "dataset" / "manifest.json").read_text())
    assert manifest["clips"] == 2 and len(manifest["skipped"]) == 2
