"""Feet that stick (motioncore.footlock) on real capture: a walk made to slide as generated
walks do is brought back to the capture's own foot sliding, by turning the legs only, without
pops; motion without contacts, and frames far from any, come back bit-identical."""
import numpy as np
import pytest
from conftest import DATA

from motioncore import canonical, footlock, metrics, read_bvh
from motioncore import rotations as rot
from motioncore.canonical import CANONICAL_JOINTS
from motioncore.clip import Motion

LEG_JOINTS = {n for leg in footlock.LEGS for n in leg}


@pytest.fixture(scope="module")
def walk():
    return canonical.to_canonical(read_bvh(DATA / "bandai-1" / "dataset-1_walk_normal_002.bvh"))


def sliding(motion: Motion, amplitude: float = 0.04, period: float = 0.9) -> Motion:
    """The body swayed side to side and back and forth under the same poses: planted feet
    slide with it (the drift generated motion shows)."""
    t = np.arange(motion.num_frames) / motion.fps
    root = motion.root_position.copy()
    root[:, 0] += amplitude * np.sin(2 * np.pi * t / period)
    root[:, 1] += amplitude * np.sin(2 * np.pi * t / (1.3 * period))
    return Motion(motion.skeleton, motion.fps, root, motion.local_rotations.copy())


def steps_deg(motion: Motion, joints) -> np.ndarray:
    idx = [CANONICAL_JOINTS.index(j) for j in joints]
    q = motion.local_rotations[:, idx]
    return np.degrees(rot.angle_between(q[1:], q[:-1]))


def test_a_sliding_walk_slides_no_more_than_the_capture_once_locked(walk):
    slid = sliding(walk)
    locked = footlock.lock_feet(slid)
    real, before, after = (metrics.foot_skating(m) for m in (walk, slid, locked))
    assert before > 2.5 * real  # the sway is real sliding
    assert after <= real, (real, before, after)
    # Only the legs turned; the hips, the root and the upper body are as they were.
    others = [CANONICAL_JOINTS.index(j) for j in CANONICAL_JOINTS if j not in LEG_JOINTS]
    assert np.array_equal(locked.local_rotations[:, others], slid.local_rotations[:, others])
    assert np.array_equal(locked.root_position, slid.root_position)
    # No pops: no leg joint turns between frames by much more than it did.
    assert steps_deg(locked, LEG_JOINTS).max() < 1.5 * steps_deg(slid, LEG_JOINTS).max() + 2.0
    # Bones keep their lengths (rotations only) and the feet stay out of the floor.
    assert metrics.bone_length_spread(locked) < 1e-6
    assert metrics.ground_penetration(locked) <= metrics.ground_penetration(slid) + 0.002


def test_the_capture_itself_is_barely_changed(walk):
    locked = footlock.lock_feet(walk)
    assert metrics.foot_skating(locked) <= metrics.foot_skating(walk)
    feet = [CANONICAL_JOINTS.index(j) for j in ("Foot_L", "Foot_R", "Toes_L", "Toes_R")]
    moved = np.linalg.norm(locked.positions()[:, feet] - walk.positions()[:, feet], axis=-1)
    assert np.median(moved) < 0.02 and moved.max() < 0.08


def test_contacts_are_the_planted_frames(walk):
    planted = footlock.contacts(walk)
    assert planted.shape == (walk.num_frames, 4)
    # A walk plants each foot about half the time, and one foot at least nearly always.
    assert 0.3 < planted.mean() < 0.8 and planted.any(axis=1).mean() > 0.9
    flight = Motion(walk.skeleton, walk.fps, walk.root_position + np.linspace(0, 1, walk.num_frames)[:, None]
                    * [3.0 * walk.duration, 0.0, 0.0], walk.local_rotations)
    assert not footlock.contacts(flight).any()  # everything moving at 3 m/s: nothing planted


def test_motion_without_contacts_and_frames_far_from_them_are_bit_identical(walk):
    racing = Motion(walk.skeleton, walk.fps, walk.root_position + np.linspace(0, 1, walk.num_frames)[:, None]
                    * [3.0 * walk.duration, 0.0, 0.0], walk.local_rotations)
    assert footlock.lock_feet(racing) is racing
    # The walk's first half planted, the rest carried away: frames well after the last contact are untouched.
    T = walk.num_frames
    carried = walk.root_position.copy()
    carried[T // 2:] += np.arange(T - T // 2)[:, None] * [0.2, 0.0, 0.0]
    half = Motion(walk.skeleton, walk.fps, carried, walk.local_rotations)
    locked = footlock.lock_feet(half)
    last = np.flatnonzero(footlock.contacts(half).any(axis=1)).max()
    far = last + 1 + int(round(footlock.BLEND_SECONDS * walk.fps)) + 1
    assert far < T and np.array_equal(locked.local_rotations[far:], half.local_rotations[far:])


def test_feet_the_keys_show_planted_stay_planted_between_them():
    """Keys every 6 frames of a real walk, the frames between made to slide: where two keys
    show a foot low and still, the locked foot stays between its places at those keys, and
    every key comes back bit-identical."""
    from motioncore import blend

    giant = canonical.to_canonical(read_bvh(DATA / "styles" / "dataset-1_walk_giant_001.bvh"))
    keys = np.arange(0, giant.num_frames, 6)
    filled = sliding(blend.interpolate_keys(giant, keys), amplitude=0.05, period=0.4)
    filled = blend.pin_to_keys(filled, giant, keys)
    planted = footlock.key_contacts(filled, keys)
    assert planted.any() and not planted.all()
    locked = footlock.lock_feet(filled, fixed=keys)
    assert np.array_equal(locked.local_rotations[keys], filled.local_rotations[keys])
    sk = giant.skeleton
    feet = [sk.index(n) for n in canonical.FEET]
    before, after = (m.positions()[:, feet, :2] for m in (filled, locked))
    drift_before, drift_after = [], []
    for a, b in zip(keys[:-1], keys[1:]):
        for j in range(4):
            if planted[a: b + 1, j].all():
                line = np.linspace(after[a, j], after[b, j], b - a + 1)  # the straight glide between its keys
                drift_after.append(np.linalg.norm(after[a: b + 1, j] - line, axis=-1).max())
                drift_before.append(np.linalg.norm(before[a: b + 1, j] - line, axis=-1).max())
    assert len(drift_after) >= 5
    assert np.median(drift_after) < 0.005 < np.median(drift_before)
    # A foot that moved between two keys is not taken for planted.
    moved = footlock.key_contacts(giant, [0, 30])
    step = np.linalg.norm(giant.positions()[30, feet, :2] - giant.positions()[0, feet, :2], axis=-1)
    assert not moved[:, step > footlock.KEY_STILL].any()
