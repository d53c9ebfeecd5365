"""The in-betweener (residual over interpolation), its command line and the LaFAN1-protocol
benchmark, on real clips."""
import json
import os
import random
import subprocess
import sys

import numpy as np
import torch

from conftest import DATA, ROOT
from motioncore import blend, canonical, read_bvh
from motioncore import rotations as rot

RUN = DATA / "bandai-2" / "dataset-2_run_normal_001.bvh"
WALK = DATA / "bandai-2" / "dataset-2_walk-turn-left_elderly_004.bvh"


def clips30():
    return [canonical.to_canonical(read_bvh(p)) for p in sorted(DATA.glob("bandai-*/*.bvh"))]


def test_training_learns_a_residual_that_beats_interpolation():
    from backend.models.inbetweener import Inbetweener, InbetweenerConfig
    from backend.training.inbetweener import InbetweenerTraining, loss_of, sample_batch

    torch.manual_seed(0)
    config = InbetweenerConfig(width=64, layers=2, max_gap=20)
    training = InbetweenerTraining(batch=16, min_gap=15)
    clips = clips30()
    fixed = sample_batch(clips, config, training, random.Random(1))
    model = Inbetweener(config)
    start = loss_of(model, *fixed)[1]["pos_m"]  # zero-initialised output: exactly interpolation
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rng = random.Random(0)
    for _ in range(150):
        loss, _ = loss_of(model, *sample_batch(clips, config, training, rng))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss_of(model, *fixed)[1]["pos_m"] < 0.8 * start


def test_inbetween_keeps_keys_exact_and_fills_long_gaps(tiny_weights):
    from backend.models.inbetweener import Inbetweener

    model = Inbetweener.from_pretrained(tiny_weights)
    walk = canonical.to_canonical(read_bvh(WALK))
    keys = [0, 3, 30, walk.num_frames - 1]
    out = model.inbetween(walk, keys)
    assert out.num_frames == walk.num_frames
    assert rot.angle_between(out.local_rotations[keys], walk.local_rotations[keys]).max() < 1e-5
    assert np.abs(out.root_position[keys] - walk.root_position[keys]).max() < 1e-9
    # The residual changed the gap frames away from plain interpolation.
    from motioncore.blend import interpolate_keys

    plain = interpolate_keys(walk, np.array(keys))
    assert rot.angle_between(out.local_rotations[4:30], plain.local_rotations[4:30]).max() > 1e-3
    # Another frame rate goes through the model's 30 fps and back, keys still exact.
    at24 = walk.resample(24.0)
    k24 = [0, 10, at24.num_frames - 1]
    out24 = model.inbetween(at24, k24)
    assert out24.num_frames == at24.num_frames
    assert rot.angle_between(out24.local_rotations[k24], at24.local_rotations[k24]).max() < 1e-5


def test_engine_uses_the_inbetweener_without_text_and_the_lm_with_it(tiny_weights):
    from backend.engine import Engine

    engine = Engine(tiny_weights, device="cpu", dtype="float32")
    walk = canonical.to_canonical(read_bvh(WALK))
    keys = [0, 20, 40]
    plain = engine.inbetween(walk.trim(0, 41), keys)
    direct = blend.match_velocities(engine.inbetweener.inbetween(walk.trim(0, 41), keys), keys)
    assert np.array_equal(plain.local_rotations, direct.local_rotations)
    texted = engine.inbetween(walk.trim(0, 41), keys, "a person hops")
    assert not np.allclose(texted.local_rotations, direct.local_rotations, atol=1e-4)
    assert rot.angle_between(texted.local_rotations[keys], walk.local_rotations[keys]).max() < 1e-5


def test_long_gaps_are_stretched_up_to_twice_the_inbetweeners_and_go_to_the_lm_past_that(tiny_weights, monkeypatch):
    """The in-betweener's max_gap counts its own 30 fps frames; a gap up to STRETCH times that is
    filled squeezed and stretched back, a longer one by the motion LM (before, by slerp)."""
    from backend.engine import Engine
    from backend.models.inbetweener import STRETCH
    from motioncore.clip import Motion

    engine = Engine(tiny_weights, device="cpu", dtype="float32")
    ib = engine.inbetweener
    most = STRETCH * ib.config.max_gap
    assert ib.fills(0, most + 1, 30.0) and not ib.fills(0, most + 2, 30.0)
    assert ib.fills(0, 80, 20.0) and not ib.fills(0, 82, 20.0)  # 119 and 122 frames at 30 fps
    walk = canonical.to_canonical(read_bvh(WALK))
    calls = []
    real = engine.model.fill
    monkeypatch.setattr(engine.model, "fill", lambda *a, **kw: calls.append(1) or real(*a, **kw))

    short = walk.resample(20.0).trim(0, 31)
    direct = blend.match_velocities(ib.inbetween(short, [0, 30]), [0, 30])
    assert np.array_equal(engine.inbetween(short, [0, 30]).local_rotations, direct.local_rotations)
    stretched = walk.resample(30.0).trim(0, 92)  # 90 frames between the keys
    filled = engine.inbetween(stretched, [0, 91])
    assert np.array_equal(filled.local_rotations, blend.match_velocities(ib.inbetween(stretched, [0, 91]),
                                                                         [0, 91]).local_rotations)
    plain = blend.match_velocities(blend.interpolate_keys(stretched, np.array([0, 91])), [0, 91])
    assert np.degrees(rot.angle_between(filled.local_rotations[1:91], plain.local_rotations[1:91])).mean() > 1
    assert not calls
    # Past the stretch: 74 frames at 15 fps are 146 at 30 (the clip played slower).
    bye = canonical.to_canonical(read_bvh(DATA / "bandai-1" / "dataset-1_bye_normal_001.bvh")).resample(20.0)
    slow = Motion(bye.skeleton, 15.0, bye.root_position, bye.local_rotations)
    filled = engine.inbetween(slow, [0, 73])
    assert calls
    plain = blend.match_velocities(blend.interpolate_keys(slow, np.array([0, 73])), [0, 73])
    assert np.degrees(rot.angle_between(filled.local_rotations[1:73], plain.local_rotations[1:73])).mean() > 5
    assert rot.angle_between(filled.local_rotations[[0, 73]], slow.local_rotations[[0, 73]]).max() < 1e-5


def test_a_stretched_gap_keeps_its_keys_and_moves_smoothly():
    """The shipped in-betweener on a 90-frame gap: keys exact, no frame-to-frame jump larger
    than the capture's own between them."""
    from backend.models.inbetweener import Inbetweener
    from backend.paths import default_weights_dir

    ib = Inbetweener.from_pretrained(default_weights_dir())
    walk = canonical.to_canonical(read_bvh(WALK)).resample(30.0).trim(0, 92)
    out = ib.inbetween(walk, np.array([0, 91]))
    assert rot.angle_between(out.local_rotations[[0, 91]], walk.local_rotations[[0, 91]]).max() < 1e-5
    step = np.degrees(rot.angle_between(out.local_rotations[1:], out.local_rotations[:-1])).max()
    own = np.degrees(rot.angle_between(walk.local_rotations[1:], walk.local_rotations[:-1])).max()
    assert step < 1.5 * own, (step, own)
    err = np.linalg.norm(out.positions() - walk.positions(), axis=-1)[1:91].mean()
    slerp = blend.interpolate_keys(walk, np.array([0, 91]))
    assert err < np.linalg.norm(slerp.positions() - walk.positions(), axis=-1)[1:91].mean()


def test_matching_speeds_at_keys_brings_the_frames_nearer_the_capture():
    """The shipped in-betweener, keys every 10 and 20 frames on the committed clips: the bend
    that removes the pop at each key leaves the frames between nearer the capture than the
    unbent fill (bent over 0.5 s they went 4% further at 20 frames) and the pop gone."""
    from backend.models.inbetweener import Inbetweener
    from backend.paths import default_weights_dir
    from motioncore.metrics import key_pop

    ib = Inbetweener.from_pretrained(default_weights_dir())
    clips = [canonical.to_canonical(read_bvh(c)).resample(30.0) for c in sorted(DATA.glob("bandai-*/*.bvh"))]
    for gap in (10, 20):
        raw_err, bent_err = [], []
        for m in clips:
            keys = np.unique(np.r_[np.arange(0, m.num_frames, gap + 1), m.num_frames - 1])
            raw = ib.inbetween(m, keys)
            bent = blend.match_velocities(raw, keys)
            free = np.setdiff1d(np.arange(m.num_frames), keys)
            truth = m.positions()[free]
            raw_err.append(np.linalg.norm(raw.positions()[free] - truth, axis=-1).mean())
            bent_err.append(np.linalg.norm(bent.positions()[free] - truth, axis=-1).mean())
            if gap == 10 and m.num_frames > 60:
                assert key_pop(bent, keys)[0] < key_pop(raw, keys)[0]
        assert np.mean(bent_err) < np.mean(raw_err), (gap, np.mean(bent_err), np.mean(raw_err))


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "backend", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


def test_inbetween_and_edit_commands_write_bvh_on_the_input_skeleton(tiny_weights, tmp_path):
    src = read_bvh(WALK)
    joints = [src.skeleton.index(n) for n in canonical.CANONICAL_JOINTS]  # the pass-through root is rebuilt
    out = tmp_path / "ib.bvh"
    r = run_cli("inbetween", "--in", str(WALK), "--keys", "0-9,25,40", "--partial", "15-16:Hand_L", "--out", str(out), "--weights",
                str(tiny_weights), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    got = read_bvh(out)
    assert got.skeleton.names == src.skeleton.names and got.num_frames == src.num_frames
    keys = list(range(10)) + [25, 40]
    assert np.abs(got.positions()[keys][:, joints] - src.positions()[keys][:, joints]).max() < 3e-3  # canonical bone lengths
    assert np.abs(got.positions()[15][joints] - src.positions()[15][joints]).max() > 1e-3

    out2 = tmp_path / "edit.bvh"
    r = run_cli("edit", "--in", str(WALK), "--frames", "10-20", "--text", "a person jumps", "--out", str(out2),
                "--weights", str(tiny_weights), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    edited = read_bvh(out2)
    outside = list(range(0, 10)) + list(range(21, src.num_frames))
    assert np.abs(edited.positions()[outside][:, joints] - src.positions()[outside][:, joints]).max() < 3e-3

    for bad, message in ((["--keys", "0-9,999"], "outside"), (["--keys", "zero"], "cannot read"),
                         (["--keys", "0,40", "--partial", "20:Tail"], "unknown joints"),
                         (["--keys", "0,40", "--partial", "20"], "--partial must")):
        r = run_cli("inbetween", "--in", str(WALK), *bad, "--out", str(tmp_path / "x.bvh"), "--weights",
                    str(tiny_weights))
        assert r.returncode == 2 and message in r.stderr and not (tmp_path / "x.bvh").exists()


def test_lafan1_protocol_benchmark(tiny_weights, tmp_path):
    out = tmp_path / "bench.json"
    r = run_cli("bench", "inbetween", "--data", str(DATA), "--stats-data", str(DATA), "--weights", str(tiny_weights),
                "--json", str(out))
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    assert result["windows"] >= 3
    for method in ("model", "zero_velocity", "interpolation"):
        for metric in ("L2Q", "L2P", "NPSS"):
            assert set(result[method][metric]) == {"5", "15", "30", "45"}
            assert all(np.isfinite(v) and v >= 0 for v in result[method][metric].values())
        assert result[method]["seconds_per_transition"] > 0
    # Longer gaps are harder for the baselines, and interpolation beats holding still.
    interp, zero = result["interpolation"]["L2P"], result["zero_velocity"]["L2P"]
    assert interp["45"] > interp["5"] and zero["30"] > interp["30"]
    assert "L2P@30" in r.stdout


def test_each_gap_counts_its_own_frames():
    """The network's place-in-gap input: 1/n ... 1 over each gap of n frames, 0 on known frames;
    for the one gap of a LaFAN1 window the same as over the whole window."""
    from backend.models.inbetweener import gap_position, known_frames

    one = torch.from_numpy(known_frames(16, 10))[None]
    gap = (~one).float()
    assert torch.equal(gap_position(one), torch.cumsum(gap, 1) / gap.sum(1, keepdim=True) * gap)
    two = torch.from_numpy(known_frames(18, 3, later=(6,)))[None]  # gaps of 3 and 10 frames
    t = gap_position(two)[0]
    assert torch.allclose(t[3:6], torch.tensor([1 / 3, 2 / 3, 1.0]))
    assert torch.allclose(t[7:17], torch.arange(1, 11) / 10)
    assert float(t[two[0]].abs().sum()) == 0.0


def _lookahead_pair():
    """A small in-betweener with lookahead, its output layer made non-zero, and the same weights
    seen without lookahead."""
    from backend.models.inbetweener import Inbetweener, InbetweenerConfig

    torch.manual_seed(0)
    config = InbetweenerConfig(width=32, layers=1, heads=2, max_gap=20)
    plain = Inbetweener(config)
    torch.nn.init.normal_(plain.out.weight, std=0.05)
    ahead = Inbetweener(InbetweenerConfig(**{**config.__dict__, "lookahead": 2}))
    ahead.load_trained(plain)  # positions past the plain model's windows start as its last
    assert torch.equal(ahead.pos[: plain.max_len], plain.pos)
    assert torch.equal(ahead.pos[plain.max_len:], plain.pos[-1:].expand(ahead.max_len - plain.max_len, -1))
    return plain, ahead


def test_lookahead_windows_read_the_keys_past_the_gap_and_keep_every_key():
    plain, ahead = _lookahead_pair()
    walk = canonical.to_canonical(read_bvh(WALK)).resample(30.0).trim(0, 60)
    keys = np.array([0, 8, 16, 24, 45, 59])
    # Up to two keys past the gap's end, each gap at most max_gap, the window at most max_len.
    assert ahead.later_keys(keys, 0, -9) == [16, 24]
    assert ahead.later_keys(keys, 2, 7) == [45]      # with 59 the window would be 53 frames, over 52
    assert ahead.later_keys(keys, 3, 15) == [59]
    assert ahead.later_keys(np.array([0, 8, 30]), 0, -9) == []  # a gap of 21 frames, over max_gap
    assert plain.later_keys(keys, 0, -9) == []
    out = ahead.inbetween(walk, keys)
    assert rot.angle_between(out.local_rotations[keys], walk.local_rotations[keys]).max() < 1e-5
    # What comes after the gap's end key moves the gap's frames with lookahead, and not without.
    from motioncore.clip import Motion

    local = walk.local_rotations.copy()
    local[16] = local[30]
    changed = Motion(walk.skeleton, walk.fps, walk.root_position, local)
    gap = slice(1, 8)
    assert rot.angle_between(ahead.inbetween(changed, keys).local_rotations[gap], out.local_rotations[gap]).max() > 1e-4
    base = plain.inbetween(walk, keys)
    assert np.array_equal(plain.inbetween(changed, keys).local_rotations[gap], base.local_rotations[gap])


def test_training_windows_with_lookahead_hold_several_keys_about_as_far_apart():
    from backend.models.inbetweener import InbetweenerConfig
    from backend.training.inbetweener import InbetweenerTraining, sample_batch

    config = InbetweenerConfig(width=32, layers=1, heads=2, max_gap=20, lookahead=2)
    training = InbetweenerTraining(batch=2, lookahead=2, later_share=1.0)
    clips = clips30()
    rng = random.Random(3)
    patterns = set()
    for _ in range(30):
        base, known, target = sample_batch(clips, config, training, rng)
        k = np.flatnonzero(known[0].numpy())
        assert k[: config.context].tolist() == list(range(config.context)) and k[-1] == base.shape[1] - 1
        assert base.shape[1] <= config.context + 2 * (config.max_gap + 1)
        gaps = np.diff(k[config.context - 1:]) - 1
        assert gaps.max() <= config.max_gap and gaps.min() >= 1
        assert torch.equal(base[:, known[0]], target[:, known[0]])  # known frames exact in the input
        patterns.add(len(gaps))
    assert patterns >= {2, 3}


def test_the_loss_scores_the_first_gap_only():
    """The keys after the first gap are read, not filled: what the model puts in the later gaps
    costs nothing."""
    from backend.models.inbetweener import InbetweenerConfig, Inbetweener
    from backend.training.inbetweener import InbetweenerTraining, loss_of, sample_batch

    config = InbetweenerConfig(width=32, layers=1, heads=2, max_gap=12, lookahead=2)
    training = InbetweenerTraining(batch=3, lookahead=2, later_share=1.0)
    rng = random.Random(0)
    while True:
        base, known, target = sample_batch(clips30(), config, training, rng)
        if int(known[0].sum()) > config.context + 1:
            break
    first = int(np.flatnonzero(known[0].numpy()[config.context:])[0]) + config.context  # the first key
    model = Inbetweener(config)

    def scored(pred):
        model.forward = lambda b, k: pred
        return loss_of(model, base, known, target)[1]["pos_m"]

    assert scored(target.clone()) == 0.0
    later = target.clone()
    later[:, first + 1: -1, -3] += 0.5  # the root half a metre off in the later gaps only
    assert scored(later) == 0.0
    first_gap = target.clone()
    first_gap[:, config.context: first, -3] += 0.1
    assert abs(scored(first_gap) - 0.1 / 3) < 1e-5  # every joint 10 cm off along one of three axes
