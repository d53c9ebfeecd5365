"""Retargeting math on rigs built in numpy: round trips, positions, presets."""
import numpy as np
import pytest

from motioncore import rotations as rot
from motioncore.bvh import read_bvh
from motioncore.canonical import CANONICAL_JOINTS, canonical_skeleton, to_canonical
from motioncore.retarget import Retarget
from motioncore.rigs import PRESETS, Rig, detect_preset


def rig_like_canonical(scale=1.0, arm_down_deg=0.0, seed=0, extra_spine=False, prefix=""):
    """A rig on the canonical skeleton's joints (scaled), bones with random rolls; the arms
    optionally lowered into an A-pose; optionally an extra unmapped bone inside the spine."""
    sk = canonical_skeleton()
    rng = np.random.default_rng(seed)
    rest = sk.rest_positions() * scale
    rest = rest - [0, 0, rest[:, 2].min()]
    # A-pose: rotate each arm chain about the shoulder joint.
    for side, sign in (("L", 1), ("R", -1)):
        pivot = rest[sk.index(f"UpperArm_{side}")]
        q = rot.axis_rotation("Y", np.radians(arm_down_deg) * sign)
        for name in (f"UpperArm_{side}", f"LowerArm_{side}", f"Hand_{side}"):
            j = sk.index(name)
            rest[j] = pivot + rot.rotate(q, rest[j] - pivot)
    names, parents, mats = [], [], []
    for j, name in enumerate(sk.names):
        m = np.eye(4)
        m[:3, :3] = rot.to_matrix(rot.normalize(rng.normal(size=4)))
        m[:3, 3] = rest[j]
        names.append(prefix + name)
        parents.append(sk.parents[j] + (1 if extra_spine and 0 < j and sk.parents[j] >= 1 else 0)
                       if sk.parents[j] >= 0 else -1)
        mats.append(m)
        if extra_spine and name == "Hips":  # an unmapped bone between Hips and Spine
            e = np.eye(4)
            e[:3, 3] = 0.5 * (rest[0] + rest[sk.index("Spine")])
            names.append("spine_extra")
            parents.append(0)
            mats.append(e)
    if extra_spine:  # Spine now hangs from the extra bone
        parents[names.index(prefix + "Spine")] = names.index("spine_extra")
    return Rig(names, parents, np.array(mats))


@pytest.fixture(scope="module")
def walk(request):
    from pathlib import Path

    path = Path(__file__).parent / "data" / "bandai-1" / "dataset-1_walk_normal_002.bvh"
    return to_canonical(read_bvh(path))


@pytest.mark.parametrize("kw", [{}, {"scale": 100.0, "arm_down_deg": 40.0}, {"extra_spine": True, "seed": 3}])
def test_round_trip_and_positions(walk, kw):
    rig = rig_like_canonical(**kw)
    mapping = {j: j for j in CANONICAL_JOINTS}
    rt = Retarget(rig, mapping)
    basis, loc = rt.to_rig(walk)
    back = rt.from_rig(basis, loc, walk.fps)
    # Mapped joints' rotations come back (sign-free comparison).
    assert rot.angle_between(back.local_rotations, walk.local_rotations).max() < 1e-6
    assert np.allclose(back.root_position, walk.root_position, atol=1e-6 * kw.get("scale", 1.0))
    # World positions on the rig follow the source, scaled: exact here, the proportions match.
    _, heads = rt.pose(basis, loc)
    scale = kw.get("scale", 1.0)
    src = walk.positions() * scale
    idx = [rig.index(n) for n in CANONICAL_JOINTS]
    height = np.ptp(canonical_skeleton().rest_positions()[:, 2]) * scale
    err = np.linalg.norm(heads[:, idx] - src, axis=-1)
    assert err.max() < 0.02 * height
    if not kw.get("extra_spine"):
        assert err.max() < 1e-6 * scale
    else:  # the extra bone takes its share of the turn between hips and spine: a bend, not a kink
        W, _ = rt.pose(basis, loc)
        hips, extra, spine = (rig.index(n) for n in ("Hips", "spine_extra", "Spine"))
        rel = lambda a, b: rot.angle_between(rot.multiply(W[:, b], rot.conjugate(rt.rest_rot[b])),  # noqa: E731
                                             rot.multiply(W[:, a], rot.conjugate(rt.rest_rot[a])))
        total, lower = rel(hips, spine), rel(hips, extra)
        moving = total > 0.05
        assert moving.any() and np.allclose(lower[moving] / total[moving], 0.5, atol=0.05)


def test_in_place_keeps_the_hips_over_the_rest_spot(walk):
    rt = Retarget(rig_like_canonical(), {j: j for j in CANONICAL_JOINTS})
    basis, loc = rt.to_rig(walk, root="IN_PLACE")
    _, heads = rt.pose(basis, loc)
    assert np.ptp(walk.root_position[:, 1]) > 0.5  # the walk travels...
    assert np.allclose(heads[:, 0, :2], rt.heads[0, :2])  # ...the rig does not
    assert np.allclose(heads[:, 0, 2], walk.root_position[:, 2], atol=1e-9)


def test_detect_preset_each_and_with_namespace():
    for name, preset in PRESETS.items():
        bones = list(preset.values()) + ["finger_01", "prop"]
        found, confidence, mapping = detect_preset(bones)
        assert found == name and confidence == 1.0
        assert set(mapping.values()) <= set(bones)
    found, confidence, mapping = detect_preset(["mixamorig1:" + b.split(":")[1] for b in PRESETS["mixamo"].values()])
    assert found == "mixamo" and mapping["Hips"] == "mixamorig1:Hips"
    assert detect_preset(["Bone", "Bone.001"])[0] is None


def _sided(names):
    return [n.format(Side=S, S=S[0], side=S.lower()) for n in names for S in ("Left", "Right")]


FULL_SKELETONS = {  # every bone of the real skeletons, not only the mapped ones
    "cmu": ["Hips", "LowerBack", "Spine", "Spine1", "Neck", "Neck1", "Head"] + _sided([
        "{S}HipJoint", "{Side}UpLeg", "{Side}Leg", "{Side}Foot", "{Side}ToeBase", "{Side}Shoulder", "{Side}Arm",
        "{Side}ForeArm", "{Side}Hand", "{Side}FingerBase", "{Side}HandIndex1", "{S}Thumb"]),
    "lafan1": ["Hips", "Spine", "Spine1", "Spine2", "Neck", "Head"] + _sided([
        "{Side}UpLeg", "{Side}Leg", "{Side}Foot", "{Side}Toe", "{Side}Shoulder", "{Side}Arm", "{Side}ForeArm",
        "{Side}Hand"]),
    "mixamo": ["Hips", "Spine", "Spine1", "Spine2", "Neck", "Head", "HeadTop_End"] + _sided([
        "{Side}UpLeg", "{Side}Leg", "{Side}Foot", "{Side}ToeBase", "{Side}Toe_End", "{Side}Shoulder", "{Side}Arm",
        "{Side}ForeArm", "{Side}Hand", "{Side}HandIndex1"]),
    "smpl": ["pelvis", "spine1", "spine2", "spine3", "neck", "head", "jaw"] + _sided([
        "{side}_hip", "{side}_knee", "{side}_ankle", "{side}_foot", "{side}_collar", "{side}_shoulder",
        "{side}_elbow", "{side}_wrist", "{side}_index1"]),
}


@pytest.mark.parametrize("preset", sorted(FULL_SKELETONS))
def test_similar_skeletons_are_told_apart(preset):
    found, confidence, mapping = detect_preset(FULL_SKELETONS[preset])
    assert (found, confidence) == (preset, 1.0)


def test_bad_mappings_are_named():
    rig = rig_like_canonical()
    with pytest.raises(ValueError, match="Hips"):
        Retarget(rig, {"Spine": "Spine"})
    with pytest.raises(KeyError, match="nope"):
        Retarget(rig, {"Hips": "nope"})
    with pytest.raises(ValueError, match="Tail"):
        Retarget(rig, {"Hips": "Hips", "Tail": "Spine"})
    with pytest.raises(ValueError, match="parents must come first"):
        Rig(["a", "b"], [1, -1], np.tile(np.eye(4), (2, 1, 1)))


def test_split_keys_tells_whole_poses_from_keys_on_some_bones():
    rig = rig_like_canonical(extra_spine=True)
    rt = Retarget(rig, {n: n for n in CANONICAL_JOINTS})
    every = {n: {1.0, 30.0} for n in CANONICAL_JOINTS if n != "Toes_R"}  # Toes_R never keyed: not counted
    every["UpperArm_L"] = {1.0, 15.0, 30.0}
    every["Hand_L"] = {1.0, 15.0, 30.0}
    every["spine_extra"] = {7.0}  # an unmapped bone's key is no key of the canonical body
    full, partial = rt.split_keys(every)
    assert full == [1.0, 30.0]
    assert partial == {15.0: ["UpperArm_L", "Hand_L"]}


@pytest.mark.parametrize("kw", [{}, {"arm_down_deg": 45.0}, {"extra_spine": True, "scale": 0.01}])
def test_hierarchy_alone_maps_a_rig_with_meaningless_names(walk, kw):
    from motioncore.rigs import detect, guess_from_hierarchy

    named = rig_like_canonical(**kw)
    anonymous = Rig([f"bone_{i:02d}" for i in range(len(named.names))], named.parents, named.rest)
    truth = {j: anonymous.names[named.names.index(j)] for j in CANONICAL_JOINTS}
    assert guess_from_hierarchy(anonymous) == truth
    preset, confidence, mapping = detect(anonymous)
    assert preset == "hierarchy" and confidence == 1.0 and mapping == truth
    assert detect(named)[0] == "bandai"  # names win where they fit
    rt = Retarget(anonymous, mapping)
    back = rt.from_rig(*rt.to_rig(walk), walk.fps)
    assert rot.angle_between(back.local_rotations, walk.local_rotations).max() < 1e-4


def test_hierarchy_guess_passes_by_hip_joints_twist_bones_and_end_bones():
    from motioncore.rigs import guess_from_hierarchy

    base = rig_like_canonical()
    names, parents, rest = list(base.names), list(base.parents), list(base.rest)

    def add(name, parent, at):
        m = np.eye(4)
        m[:3, 3] = at
        names.append(name)
        parents.append(names.index(parent))
        rest.append(m)

    heads = base.rest[:, :3, 3]
    for side in ("L", "R"):
        ul = names.index(f"UpperLeg_{side}")
        add(f"twist_thigh_{side}", f"UpperLeg_{side}", heads[ul] + [0, 0, -0.1])
        add(f"twist_arm_{side}", f"UpperArm_{side}", heads[names.index(f"UpperArm_{side}")] + [0.05 if side == "L" else -0.05, 0, 0])
        add(f"toe_end_{side}", f"Toes_{side}", heads[names.index(f"Toes_{side}")] + [0, -0.1, 0])
    add("head_end", "Head", heads[names.index("Head")] + [0, 0, 0.2])
    rig = Rig(names, parents, np.array(rest))
    assert guess_from_hierarchy(rig) == {j: j for j in CANONICAL_JOINTS}


@pytest.mark.parametrize("places", [(0.5,), (1 / 3, 2 / 3), (0.0, 0.0)])
def test_forearm_twist_bones_share_the_wrists_twist_along_the_forearm(walk, places):
    """A twist bone takes the fraction of the wrist's twist given by where it sits between
    elbow and wrist (UE5 has two per forearm); bones all at the elbow take half."""
    base = rig_like_canonical(seed=5)
    names, parents, rest = list(base.names), list(base.parents), [m.copy() for m in base.rest]
    fore, hand = names.index("LowerArm_L"), names.index("Hand_L")
    along = rest[hand][:3, 3] - rest[fore][:3, 3]
    rest[fore][:3, :3] = rot.to_matrix(rot.shortest_arc(np.array([0.0, 1.0, 0.0]), along))  # Y down the bone
    for k, place in enumerate(places):
        twist_rest = rest[fore].copy()
        twist_rest[:3, 3] += place * along
        names.append(f"lowerarm_twist_0{k + 1}_l")
        parents.append(fore)
        rest.append(twist_rest)
    rig = Rig(names, parents, np.array(rest))
    rt = Retarget(rig, {j: j for j in CANONICAL_JOINTS})
    basis, loc = rt.to_rig(walk)
    W, _ = rt.pose(basis, loc)
    turn = lambda b: rot.multiply(W[:, b], rot.conjugate(rt.rest_rot[b]))  # noqa: E731
    axis = along / np.linalg.norm(along)
    wrist = rot.multiply(rot.conjugate(turn(fore)), turn(hand))
    twist_angle = 2 * np.arctan2(wrist[:, 1:] @ axis, wrist[:, 0])
    wrap = lambda a: (a + np.pi) % (2 * np.pi) - np.pi  # noqa: E731
    assert np.abs(twist_angle).max() > 0.05
    for k, place in enumerate(places):
        t_bone = names.index(f"lowerarm_twist_0{k + 1}_l")
        want = place if place > 0 else 0.5
        assert t_bone in rt.written and rt.twist[t_bone][:2] == (fore, CANONICAL_JOINTS.index("Hand_L"))
        assert rt.twist[t_bone][2] == pytest.approx(want)
        own = rot.multiply(rot.conjugate(turn(fore)), turn(t_bone))
        own_angle = 2 * np.arctan2(own[:, 1:] @ axis, own[:, 0])
        assert np.abs(np.cross(own[:, 1:], axis)).max() < 1e-6  # turns about the forearm only
        assert np.abs(wrap(own_angle - want * twist_angle)).max() < 1e-6
    back = rt.from_rig(basis, loc, walk.fps)  # the mapped joints are untouched by them
    assert rot.angle_between(back.local_rotations, walk.local_rotations).max() < 1e-6


def _turned(rig, world):
    """The rig's rest pose moved by the inverse of `world`: in world space it stands as `rig`
    does, as an imported Y-up armature under its object transform does."""
    inv = np.linalg.inv(world)
    rest = inv @ rig.rest
    rest[:, :3, :3] /= np.cbrt(np.linalg.det(inv[:3, :3]))  # bone frames carry no scale
    return Rig(rig.names, rig.parents, rest)


def _y_up_cm():
    """An FBX-style object matrix: turned 90 degrees about X, scale 0.01."""
    world = np.eye(4)
    world[:3, :3] = 0.01 * rot.to_matrix(rot.axis_rotation("X", np.pi / 2))
    world[:3, 3] = [1.0, -2.0, 0.0]
    return world


@pytest.mark.parametrize("yaw", [0.0, np.pi, 1.1])
def test_world_matrix_and_facing_leave_the_motion_as_it_was(walk, yaw):
    """A rig whose armature is Y-up in centimetres under its object matrix, facing any way:
    bones turn exactly as on the plain rig (same world rotations, relative to its facing),
    locations come out in armature units, and from_rig is the exact inverse."""
    plain = rig_like_canonical()
    mapping = {j: j for j in CANONICAL_JOINTS}
    facing = np.eye(4)
    facing[:3, :3] = rot.to_matrix(rot.yaw_rotation(np.asarray(yaw)))
    stood = Rig(plain.names, plain.parents, facing @ plain.rest)  # the plain rig turned by yaw
    world = _y_up_cm()
    rt = Retarget(_turned(stood, world), mapping, world=world)
    ref = Retarget(plain, mapping)
    assert rt.unit == pytest.approx(0.01) and abs(np.angle(np.exp(1j * (rt.facing - yaw)))) < 1e-9
    basis, loc = rt.to_rig(walk)
    W, H = rt.pose(basis, loc)
    W0, H0 = ref.pose(*ref.to_rig(walk))
    assert rot.angle_between(W, W0).max() < 1e-6  # the upright frame turns the facing away
    assert np.abs(H - (H0 + rt.heads[0] - ref.heads[0])).max() < 1e-6
    assert np.abs(loc).max() > 10.0  # centimetres in armature space, not metres
    back = rt.from_rig(basis, loc, walk.fps)
    assert rot.angle_between(back.local_rotations, walk.local_rotations).max() < 1e-4
    assert np.abs(back.root_position - walk.root_position).max() < 1e-6


def test_place_starts_where_asked_and_keeps_the_pose(walk):
    from motioncore.canonical import heading_yaw
    from motioncore.retarget import place

    out = place(walk, np.array([2.0, -1.0]), 0.7)
    assert np.allclose(out.root_position[0, :2], [2.0, -1.0])
    assert heading_yaw(out.positions()[:1])[0] == pytest.approx(0.7, abs=1e-6)
    assert np.allclose(out.root_position[:, 2], walk.root_position[:, 2])
    assert np.allclose(out.local_rotations[:, 1:], walk.local_rotations[:, 1:])
    steps = np.linalg.norm(np.diff(out.root_position, axis=0), axis=-1)
    assert np.allclose(steps, np.linalg.norm(np.diff(walk.root_position, axis=0), axis=-1))


@pytest.mark.parametrize("kw", [{"arm_down_deg": 80.0}, {"extra_spine": True}])
@pytest.mark.parametrize("yaw", [0.0, np.pi, -2.0])
def test_hierarchy_reads_the_shape_in_world_space_any_facing(kw, yaw):
    """Y-up armature space under its object matrix, arms hanging down, facing any way: the
    guess on the rig in world space finds every joint, left as left."""
    from motioncore.rigs import detect, guess_from_hierarchy

    named = rig_like_canonical(**kw)
    facing = np.eye(4)
    facing[:3, :3] = rot.to_matrix(rot.yaw_rotation(np.asarray(yaw)))
    named = Rig(named.names, named.parents, facing @ named.rest)
    world = _y_up_cm()
    armature = _turned(named, world)
    anonymous = Rig([f"b{i}" for i in range(len(named.names))], armature.parents, armature.rest)
    truth = {j: anonymous.names[named.names.index(j)] for j in CANONICAL_JOINTS}
    assert guess_from_hierarchy(anonymous.in_world(world)) == truth
    assert detect(anonymous.in_world(world))[1] == 1.0
    assert len(guess_from_hierarchy(anonymous)) < len(truth) or guess_from_hierarchy(anonymous) != truth  # lying down
