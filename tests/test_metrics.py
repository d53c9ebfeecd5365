"""Motion quality measures on real clips and on a frozen pose sliding along the same path."""
import numpy as np

from motioncore import metrics
from conftest import DATA
from motioncore import Motion, canonical, read_bvh


def test_body_speed_and_skating_tell_a_walk_from_a_sliding_statue():
    walk = canonical.to_canonical(read_bvh(DATA / "bandai-1" / "dataset-1_walk_normal_002.bvh"))
    statue = Motion(walk.skeleton, walk.fps, walk.root_position,
                    np.repeat(walk.local_rotations[:1], walk.num_frames, axis=0))
    assert metrics.body_speed(walk) > 0.2
    assert metrics.body_speed(statue) < 1e-6
    assert metrics.foot_skating(statue) > 2 * metrics.foot_skating(walk)
    assert metrics.bone_length_spread(walk) < 1e-6
