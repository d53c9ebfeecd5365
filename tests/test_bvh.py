
import numpy as np
import pytest

from motioncore import BVHError, read_bvh, write_bvh
from motioncore.bvh import bvh_from_text
from motioncore.canonical import to_canonical


def test_round_trip_of_real_files_keeps_every_joint(clip_path, tmp_path):
    original = read_bvh(clip_path)
    assert original.fps == 30.0
    assert len(original.skeleton) == 22
    out = tmp_path / "rt.bvh"
    write_bvh(out, original)
    again = read_bvh(out)
    assert again.skeleton.names == original.skeleton.names
    # World positions after FK, in the file's units (centimetres): within 1e-4.
    err_cm = np.abs(again.positions() - original.positions()).max() * 100
    assert err_cm < 1e-4


@pytest.mark.parametrize("order", ["XYZ", "YZX", "ZYX"])
def test_three_channel_joints_other_orders_and_units(walk_path, tmp_path, order):
    motion = to_canonical(read_bvh(walk_path))  # no per-joint translations: 3-channel joints
    out = tmp_path / f"{order}.bvh"
    write_bvh(out, motion, scale=1000.0, order=order)  # millimetres
    text = out.read_text()
    assert f"CHANNELS 3 {order[0]}rotation {order[1]}rotation {order[2]}rotation" in text
    again = read_bvh(out, scale=0.001)
    assert np.abs(again.positions() - motion.positions()).max() < 1e-6


def test_end_sites_and_z_up(walk_path, tmp_path):
    motion = read_bvh(walk_path)
    assert set(motion.skeleton.end_sites) == {motion.skeleton.index(n)
                                              for n in ("Head", "Hand_L", "Hand_R", "Toes_L", "Toes_R")}
    # Z up: the head is above the feet on every frame, at human height in metres.
    pos = motion.positions()
    head = pos[:, motion.skeleton.index("Head"), 2]
    toes = pos[:, motion.skeleton.index("Toes_L"), 2]
    assert np.all(head - toes > 1.2) and np.all(head < 2.0)
    yup = read_bvh(walk_path, y_up=False, scale=1.0)  # file units and axes
    assert np.allclose(yup.positions()[..., 1] / 100, pos[..., 2], atol=1e-9)


# -- malformed files ------------------------------------------------------------------------

@pytest.fixture
def walk_text(walk_path) -> str:
    return walk_path.read_text()


def _error(text: str) -> str:
    with pytest.raises(BVHError) as info:
        bvh_from_text(text, source="clip.bvh")
    return str(info.value)


def test_truncated_motion(walk_text):
    lines = walk_text.splitlines()
    cut = "\n".join(lines[:-10]) + "\n" + lines[-10][: len(lines[-10]) // 2]
    msg = _error(cut)
    assert f"clip.bvh:{len(lines) - 9}:" in msg and "truncated" in msg


def test_truncated_hierarchy(walk_text):
    msg = _error(walk_text[: walk_text.index("JOINT LowerLeg_R")])
    assert "truncated" in msg and "clip.bvh:" in msg


def test_missing_frames(walk_text):
    lines = walk_text.splitlines()
    msg = _error("\n".join(lines[:-5]))
    assert "declares" in msg and "truncated" in msg


def test_wrong_channel_count_in_hierarchy(walk_text):
    line = walk_text[: walk_text.index("JOINT Spine")].count("\n") + 4  # Spine's CHANNELS line
    bad = walk_text.replace("JOINT Spine\n    {\n      OFFSET 15.7357 0 0\n      CHANNELS 6",
                            "JOINT Spine\n    {\n      OFFSET 15.7357 0 0\n      CHANNELS 5", 1)
    assert bad != walk_text
    msg = _error(bad)
    assert f"clip.bvh:{line}:" in msg and "'Spine' declares 5 channels" in msg


def test_wrong_value_count_in_motion(walk_text):
    lines = walk_text.splitlines()
    k = lines.index("MOTION") + 10
    lines[k] = lines[k] + " 1.0 2.0"
    msg = _error("\n".join(lines))
    assert f"clip.bvh:{k + 1}:" in msg and "expected 132 values" in msg and "found 134" in msg


@pytest.mark.parametrize("token", ["nan", "inf", "-NaN"])
def test_non_finite_values(walk_text, token):
    lines = walk_text.splitlines()
    k = lines.index("MOTION") + 7
    vals = lines[k].split()
    vals[40] = token
    lines[k] = " ".join(vals)
    msg = _error("\n".join(lines))
    assert f"clip.bvh:{k + 1}:" in msg and "not a finite number" in msg


def test_non_numeric_value(walk_text):
    lines = walk_text.splitlines()
    k = lines.index("MOTION") + 4
    lines[k] = lines[k].replace(" ", " abc ", 1)
    msg = _error("\n".join(lines))
    assert f"clip.bvh:{k + 1}:" in msg


def test_bad_channel_name_and_not_bvh(walk_text):
    msg = _error(walk_text.replace("Zrotation", "Qrotation", 1))
    assert "'Qrotation' is not a channel name" in msg
    assert "starts with 'HIERARCHY'" in _error("hello\nworld\n")


def test_unknown_joints_are_named(walk_text):
    renamed = walk_text.replace("JOINT Neck", "JOINT Tail", 1)
    motion = bvh_from_text(renamed)
    with pytest.raises(ValueError, match=r"unknown joints \['Tail'\]; missing joints \['Neck'\]"):
        to_canonical(motion)


def test_write_is_atomic(walk_path, tmp_path):
    motion = read_bvh(walk_path)
    target = tmp_path / "keep.bvh"
    target.write_text("precious")
    with pytest.raises(ValueError):
        write_bvh(target, motion, order="XXY")  # fails while formatting, before any write
    assert target.read_text() == "precious"
    assert not list(tmp_path.glob("*.partial"))
