"""In-betweening and editing: keys exact, frames outside an edit identical, seams continuous."""
import numpy as np
import pytest

from conftest import DATA
from motioncore import blend, canonical, read_bvh
from motioncore import rotations as rot


@pytest.fixture(scope="module")
def run_clip():
    return canonical.to_canonical(read_bvh(DATA / "bandai-2" / "dataset-2_run_normal_001.bvh"))


@pytest.fixture(scope="module")
def engine(tiny_weights):
    from backend.engine import Engine

    return Engine(tiny_weights, device="cpu", dtype="float32")


def wobble(motion, amount=0.2, seed=0):
    """The motion with a smooth random rotation added to every joint: a stand-in for model output."""
    rng = np.random.default_rng(seed)
    T = motion.num_frames
    phase = rng.uniform(0, 6, size=(1, len(motion.skeleton), 3))
    aa = amount * np.sin(np.arange(T)[:, None, None] / 7.0 + phase)
    local = rot.multiply(rot.from_axis_angle(aa), motion.local_rotations)
    return type(motion)(motion.skeleton, motion.fps, motion.root_position + 0.1, local)


def test_pin_to_keys_is_exact_at_keys_and_smooth_between(run_clip):
    gen = wobble(run_clip)
    keys = np.array([0, 12, 13, 40, run_clip.num_frames - 1])
    out = blend.pin_to_keys(gen, run_clip, keys)
    assert rot.angle_between(out.local_rotations[keys], run_clip.local_rotations[keys]).max() < 1e-7
    assert np.abs(out.root_position[keys] - run_clip.root_position[keys]).max() < 1e-12
    # No pop: frame-to-frame change stays of the order of the inputs' own.
    step = rot.angle_between(out.local_rotations[1:], out.local_rotations[:-1]).max()
    own = max(rot.angle_between(gen.local_rotations[1:], gen.local_rotations[:-1]).max(),
              rot.angle_between(run_clip.local_rotations[1:], run_clip.local_rotations[:-1]).max())
    assert step < 1.5 * own


def test_splice_leaves_outside_frames_bit_identical(run_clip):
    gen = wobble(run_clip)
    out = blend.splice(gen, run_clip, 10, 30)
    assert np.array_equal(out.local_rotations[:10], run_clip.local_rotations[:10])
    assert np.array_equal(out.local_rotations[30:], run_clip.local_rotations[30:])
    assert np.array_equal(out.root_position[30:], run_clip.root_position[30:])
    assert rot.angle_between(out.local_rotations[10:30], gen.local_rotations[10:30]).max() < 1e-6  # arccos resolution


def test_engine_edit_changes_only_the_range(engine, run_clip):
    out = engine.edit(run_clip, 15, 35, "a person jumps", seed=1)
    assert out.num_frames == run_clip.num_frames
    for sl in (slice(0, 15), slice(35, None)):
        assert np.array_equal(out.local_rotations[sl], run_clip.local_rotations[sl])
        assert np.array_equal(out.root_position[sl], run_clip.root_position[sl])
    assert not np.allclose(out.local_rotations[15:35], run_clip.local_rotations[15:35], atol=1e-3)
    # Seams: no step across them larger than the generated frames' own steps (this tiny model
    # is untrained, so its own steps are large; the trained model's are measured in the benchmark).
    steps = rot.angle_between(out.local_rotations[1:], out.local_rotations[:-1]).max(axis=1)
    assert max(steps[14], steps[34]) <= steps[15:34].max() + 1e-9


@pytest.mark.parametrize("part", ["upper", "legs"])
def test_engine_edit_of_a_body_part_keeps_the_rest_bit_identical(engine, run_clip, part):
    from motioncore.canonical import BODY_PARTS, CANONICAL_JOINTS

    whole = engine.edit(run_clip, 15, 35, "a person waves", seed=1)
    out = engine.edit(run_clip, 15, 35, "a person waves", seed=1, part=part)
    changed = [CANONICAL_JOINTS.index(j) for j in BODY_PARTS[part]]
    kept = [j for j in range(len(CANONICAL_JOINTS)) if j not in changed]
    assert np.array_equal(out.local_rotations[:, kept], run_clip.local_rotations[:, kept])  # every frame
    assert np.array_equal(out.root_position, whole.root_position if part == "legs" else run_clip.root_position)
    # The part is the whole-body edit's, sign aside, and moved inside the range only.
    assert rot.angle_between(out.local_rotations[:, changed], whole.local_rotations[:, changed]).max() < 1e-6
    assert np.array_equal(out.local_rotations[:15], run_clip.local_rotations[:15])
    assert not np.allclose(out.local_rotations[15:35, changed], run_clip.local_rotations[15:35, changed], atol=1e-3)
    with pytest.raises(ValueError, match="part must be one of"):
        engine.edit(run_clip, 15, 35, part="tail")


def test_engine_inbetween_hits_every_key(engine, run_clip):
    keys = [0, 9, 40, run_clip.num_frames - 1]
    out = engine.inbetween(run_clip, keys, "a person runs", seed=2)
    assert rot.angle_between(out.local_rotations[keys], run_clip.local_rotations[keys]).max() < 1e-5
    assert np.abs(out.root_position[keys] - run_clip.root_position[keys]).max() < 1e-5
    assert np.all(np.isfinite(out.local_rotations))


@pytest.mark.parametrize("keys, shown", [((0, 67), "ends"), (tuple(range(0, 67, 3)) + (67,), "none")])
def test_the_lm_sees_the_keys_between_single_key_frames(engine, run_clip, monkeypatch, keys, shown):
    # Between two single keys every token touches a free frame; the keys' own tokens stay shown
    # (masked, the model drew one and the same run for every gap). Keys on every token: all fill.
    seen = []
    real = engine.model.fill
    monkeypatch.setattr(engine.model, "fill", lambda text, codes, **kw: seen.append(codes.clone()) or real(text, codes, **kw))
    clip = run_clip.resample(30).trim(0, 68)
    out = engine.inbetween(clip, list(keys), "a person runs")
    codes = seen[0][0]
    if shown == "ends":
        assert codes[0] >= 0 and codes[-1] >= 0 and bool((codes[1:-1] < 0).all())
    else:  # (the last token holds keys alone, as it did before)
        assert bool((codes[:-1] < 0).all())
    assert rot.angle_between(out.local_rotations[list(keys)], clip.local_rotations[list(keys)]).max() < 1e-5


def clips():
    return [canonical.to_canonical(read_bvh(p)).resample(30) for p in sorted(DATA.glob("bandai-*/*.bvh"))]


def test_no_pop_at_keys_with_the_shipped_inbetweener():
    """Speed runs on through each key: acceleration there is no larger than between keys.
    Interpolation (and the in-betweener before matching) jump at every key."""
    from backend.models.inbetweener import Inbetweener
    from backend.paths import default_weights_dir

    from motioncore.metrics import key_pop

    ib = Inbetweener.from_pretrained(default_weights_dir())
    at_keys, between, raw_keys, lerp_keys = [], [], [], []
    for m in clips():
        for step in (8, 15, 25):
            keys = np.arange(0, m.num_frames, step)
            if len(keys) < 3:
                continue
            raw = ib.inbetween(m, keys)
            out = blend.match_velocities(raw, keys)
            assert np.array_equal(out.local_rotations[keys], raw.local_rotations[keys])
            at, off = key_pop(out, keys)
            at_keys.append(at)
            between.append(off)
            raw_keys.append(key_pop(raw, keys)[0])
            lerp_keys.append(key_pop(blend.interpolate_keys(m, keys), keys)[0])
    assert np.mean(at_keys) < 0.5 * np.mean(between)
    assert np.mean(raw_keys) > np.mean(between) and np.mean(lerp_keys) > 3 * np.mean(at_keys)


def test_a_loop_comes_out_seamless(engine):
    from backend.evaluation.inbetween import loop_cut
    from motioncore.metrics import wrap_jump as seam

    m = loop_cut(canonical.to_canonical(read_bvh(DATA / "bandai-1" / "dataset-1_walk_normal_002.bvh")).resample(30))
    T = m.num_frames
    keys = [0, T // 2, T - 1]

    auto = engine.inbetween(m, keys)  # same pose at both ends: a loop without asking
    plain = engine.inbetween(m, keys, loop=False)
    print(f"seam jump / mean acceleration: loop {seam(auto):.3f}, not looped {seam(plain):.3f}")
    assert seam(auto) < 1.0 and seam(plain) > 2 * seam(auto)
    assert rot.angle_between(auto.local_rotations[keys], m.local_rotations[keys]).max() < 1e-5


def test_keys_on_some_bones_pin_only_those_bones(engine, run_clip):
    arm = ["UpperArm_L", "LowerArm_L"]
    js = [canonical.CANONICAL_JOINTS.index(n) for n in arm]
    posed = run_clip.local_rotations.copy()
    raise_arm = rot.from_axis_angle(np.array([0.0, 0.9, 0.0]))
    posed[20, js] = rot.multiply(raise_arm, posed[20, js])
    user = type(run_clip)(run_clip.skeleton, run_clip.fps, run_clip.root_position, posed)
    keys = [0, 40]
    body = engine.inbetween(user, keys)
    out = engine.inbetween(user, keys, partial_keys={20: arm})
    assert rot.angle_between(out.local_rotations[20, js], posed[20, js]).max() < 1e-5
    assert rot.angle_between(body.local_rotations[20, js], posed[20, js]).max() > 0.3
    others = [j for j in range(len(canonical.CANONICAL_JOINTS)) if j not in js]
    assert np.allclose(out.local_rotations[:, others], body.local_rotations[:, others], atol=1e-9)
    assert np.array_equal(out.root_position, body.root_position)
    assert rot.angle_between(out.local_rotations[keys], user.local_rotations[keys]).max() < 1e-5


def test_engine_continue_keeps_the_prefix_and_adds_the_length(engine, run_clip):
    """With text, a new action carried on from the run's end (the join in-betweened); without,
    more of the run. Either way the run comes back exact and the clip is as long as asked."""
    from backend.data.compose import JOIN_SECONDS

    T = run_clip.num_frames
    out = engine.continue_(run_clip, "a person stops", 1.5, seed=4)
    more = engine.continue_(run_clip, "", 1.5, seed=4)
    for m in (out, more):
        assert m.num_frames == T + 45
        assert np.array_equal(m.local_rotations[:T], run_clip.local_rotations)
        assert np.array_equal(m.root_position[:T], run_clip.root_position)
    assert not np.allclose(out.local_rotations[T:], more.local_rotations[T:])
    # The new action starts where the run ends (not back at the origin), the frames between
    # in-betweened without a jump (the tiny model's own motion after them is random).
    join = round(JOIN_SECONDS * run_clip.fps)
    step = np.linalg.norm(np.diff(out.positions(), axis=0), axis=-1).max(axis=1)
    assert step[T - 1: T + join].max() < 2 * step[: T - 1].max()
    with pytest.raises(ValueError, match="continue by"):
        engine.continue_(run_clip, "x", 60.0)


@pytest.mark.parametrize("call,match", [
    (lambda e, m: e.edit(m, 30, 10), "start < stop"),
    (lambda e, m: e.edit(m, 0, m.num_frames), "unchanged"),
    (lambda e, m: e.inbetween(m, [5]), "two frames where the whole pose"),
    (lambda e, m: e.inbetween(m, [0, 40], partial_keys={20: ["Tail"]}), "unknown joints"),
    (lambda e, m: e.inbetween(m, [0, 40], partial_keys={500: ["Hips"]}), "outside"),
    (lambda e, m: e.inbetween(m, [0, 10_000]), "lie in"),
    (lambda e, m: e.edit(m, 1, 3, text="x" * 5000), "at most"),
])
def test_bad_requests_are_refused_clearly(engine, run_clip, call, match):
    with pytest.raises(ValueError, match=match):
        call(engine, run_clip)


def test_a_velocity_match_bends_only_near_its_key():
    """Keyed walk frames on both sides of a long gap filled with another take: the pop at each
    key is matched within BEND_SECONDS and frames further in come back as they were (bent over
    the whole gap, a swinging arm was raised overhead)."""
    walk = canonical.to_canonical(read_bvh(DATA / "styles" / "dataset-1_walk_giant_002.bvh"))
    other = canonical.to_canonical(read_bvh(DATA / "styles" / "dataset-1_walk_giant_001.bvh"))
    T = 100
    filled = blend.pin_to_keys(blend.splice(other.trim(30, 30 + T), walk.trim(0, T), 10, 90), walk.trim(0, T),
                               np.r_[np.arange(10), np.arange(90, T)])
    keys = np.r_[np.arange(10), np.arange(90, T)]
    matched = blend.match_velocities(filled, keys)
    reach = int(round(blend.BEND_SECONDS * walk.fps))
    far = np.arange(10 + reach, 90 - reach)
    assert far.size > 20 and np.array_equal(matched.local_rotations[far], filled.local_rotations[far])
    q_in, q_out = filled.local_rotations, matched.local_rotations
    # Speed at the key: departure now equals the keyed side's arrival.
    step_in = np.degrees(rot.angle_between(q_out[9], q_out[8]))
    step_out = np.degrees(rot.angle_between(q_out[10], q_out[9]))
    assert np.median(np.abs(step_out - step_in)) < np.median(np.abs(np.degrees(rot.angle_between(q_in[10], q_in[9])) - step_in))
