import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from backend.data import captions, dataset
from conftest import DATA, ROOT
from motioncore import canonical, features


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    ds, skipped, rebuilt = dataset.build([DATA / "bandai-1", DATA / "bandai-2"], cache,
                                         workers=2, progress=False)
    return ds, skipped, rebuilt, cache


def test_build_converts_every_clip_with_labels_and_captions(built):
    ds, skipped, rebuilt, _ = built
    assert rebuilt and skipped == []
    assert len(ds.clips) == 5
    by_name = {c.name: c for c in ds.clips}
    # Labels come from the JSON indices resolved through each dataset's cfg/ lists.
    assert (by_name["dataset-2_walk-turn-left_elderly_004"].content,
            by_name["dataset-2_walk-turn-left_elderly_004"].style) == ("walk-turn-left", "elderly")
    assert by_name["dataset-1_bye_normal_001"].content == "bye"
    for c in ds.clips:
        assert len(c.captions) >= 4 and len(set(c.captions)) == len(c.captions)
        assert c.split == dataset.split_of(c.name)
    assert any("elderly" in t or "old" in t for t in by_name["dataset-2_walk-turn-left_elderly_004"].captions)


def test_features_match_the_clip_at_model_rate(built):
    ds, *_ = built
    clip = next(c for c in ds.clips if c.name == "dataset-1_walk_normal_002")
    direct = dataset.clip_features((DATA / "bandai-1" / f"{clip.name}.bvh").read_text())
    assert np.array_equal(ds.clip_features(clip), direct)
    # 30 fps -> 20 fps keeps the duration.
    from motioncore import read_bvh
    src = read_bvh(DATA / "bandai-1" / f"{clip.name}.bvh")
    assert abs((clip.length - 1) / canonical.MODEL_FPS - src.duration) < 1 / canonical.MODEL_FPS
    motion = features.from_features(ds.clip_features(clip), canonical.MODEL_FPS)
    assert np.all(np.isfinite(motion.positions()))


def test_statistics_and_no_pickle(built):
    ds, _, _, cache = built
    assert ds.mean.shape == ds.std.shape == (features.LAYOUT.size,)
    assert np.all(ds.std > 0)
    loaded = dataset.load(cache)
    assert np.array_equal(loaded.features, ds.features)
    for f in (cache / "dataset").glob("*.npy"):
        np.load(f, allow_pickle=False)  # raises if anything were pickled


def test_cache_is_reused_and_rebuilt_when_sources_change(built, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(DATA / "bandai-1", src)
    cache = tmp_path / "cache"
    _, _, first = dataset.build([src], cache, workers=1, progress=False)
    _, _, second = dataset.build([src], cache, workers=1, progress=False)
    assert first and not second
    (src / "broken.bvh").write_text("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0 0\n")
    ds, skipped, third = dataset.build([src], cache, workers=1, progress=False)
    assert third and len(ds.clips) == 2
    assert len(skipped) == 1 and "broken.bvh" in skipped[0] and "truncated" in skipped[0]


def test_user_folder_with_captions_and_unknown_skeleton(tmp_path):
    src = tmp_path / "mine"
    src.mkdir()
    walk = (DATA / "bandai-1" / "dataset-1_walk_normal_002.bvh").read_text()
    (src / "take1.bvh").write_text(walk)
    (src / "take1.txt").write_text("a tired courier trudges home\nsomeone drags their feet\n")
    (src / "take2.bvh").write_text(walk.replace("JOINT Neck", "JOINT Tail", 1))
    ds, skipped, _ = dataset.build([src], tmp_path / "cache", workers=1, progress=False)
    assert [c.captions for c in ds.clips] == [["a tired courier trudges home", "someone drags their feet"]]
    assert "unknown joints ['Tail']" in skipped[0]


def test_captions_are_varied_and_deterministic():
    a = captions.captions_for("walk", "old", n=6, seed="x")
    assert a == captions.captions_for("walk", "elderly", n=6, seed="x")
    assert len(set(a)) == 6 and all(t[0].isupper() and t.endswith(".") for t in a)
    assert captions.captions_for("moonwalk", "sleepy", n=2)  # unknown labels still caption


def test_mirror_labels_swap_sides_and_keep_the_rest():
    content, texts = captions.mirror_labels("wave-left-hand", "elderly", ["An old man waves the left hand."], "c1")
    assert content == "wave-right-hand"
    assert all("right" in t and "left" not in t for t in texts)
    assert captions.mirror_labels("walk", "happy", ["A happy person walks."], "c2") == ("walk", ["A happy person walks."])
    # A free caption naming a side is mirrored by swapping the sides, as HumanML3D captions its mirrors.
    assert captions.mirror_labels("walk", "normal", ["Someone limps on the left leg, then turns Right."], "c3") == (
        "walk", ["Someone limps on the right leg, then turns Left."])
    assert captions.mirror_labels("unlabelled", "normal", ["a person swings the right arm"], "c4") == (
        "unlabelled", ["a person swings the left arm"])
    assert captions.swap_sides("bright lefties stay; left") == "bright lefties stay; right"


def _vocabulary(texts):
    return {w.strip(".,").lower() for t in texts for w in t.replace("-", " ").split()}


def test_wide_captions_use_no_new_word_of_the_out_of_template_prompts():
    from backend.evaluation.t2m import OUT_OF_TEMPLATE

    pairs = [(c, s) for c in captions.CONTENT_PHRASES for s in captions.STYLE_SUBJECTS]
    base = _vocabulary(t for c, s in pairs for t in captions.captions_for(c, s, n=10**6))
    wide = _vocabulary(t for c, s in pairs for t in captions.captions_for(c, s, n=10**6, wide=True))
    assert len(wide - base) > 50  # the wider wordings do add words...
    assert not (wide - base) & _vocabulary(p for p, _, _ in OUT_OF_TEMPLATE)  # ...none the prompts use


def test_noise_words_leave_out_table_label_and_excluded_words():
    vocab = ["\u0120bloom", "\u2581plume", "\u0120walks", "\u0120left", "\u0120toddler", "\u0120ab",
             "\u0120Upper", "bloom2", "\u0120gl\u00fcck", "\u0120ramp3"]
    assert captions.noise_words(vocab, exclude={"Toddler"}) == ["bloom", "gl\u00fcck", "plume"]


def test_noisy_swaps_and_drops_words_at_the_rates_asked():
    import random

    text = "A tired person raises the right hand slowly and stiffly."
    words = ["bloom", "plume", "tile"]
    rng = random.Random(0)
    kept = swapped = dropped = 0
    for _ in range(3000):
        out = captions.noisy(text, rng, words, replace=0.2, drop=0.1).split()
        assert out, "never empties a caption"
        swapped += sum(w in words for w in out)
        kept += sum(w not in words for w in out)
    n = 3000 * len(text.split())
    dropped = n - kept - swapped
    assert abs(swapped / n - 0.2) < 0.02 and abs(dropped / n - 0.1) < 0.02
    assert captions.noisy(text, rng, words, replace=0, drop=0) == text
    assert captions.noisy("walks", random.Random(3), words, replace=0, drop=1) == "walks"


def test_word_noise_reaches_text_conditions_but_never_caption_targets(tiny_base):
    import random

    from backend.models.generator import CAPTION
    from backend.training.generator import GeneratorTraining, TokenClip, make_example, noise_vocabulary
    from conftest import tiny_model

    model = tiny_model(tiny_base)
    noise = noise_vocabulary(model)
    assert "toddler" not in noise and "ceiling" not in noise  # words of the out-of-template prompts
    assert not set(noise) & captions.table_words()
    text = "A tired person raises the right hand."
    clip = TokenClip(np.arange(12) % 32, [text], "raise-up-right-hand", "exhausted")
    training = GeneratorTraining(word_noise=1.0, caption_share=0.5, next_share=0.0, text_dropout=0.0)
    rng = random.Random(0)
    conditions, targets = [], []
    for _ in range(200):
        seq, _, _, _, caption_start = make_example(model, clip, training, rng, 8, noise)
        ids = model.text_ids(text)
        if seq[0] == model.special(CAPTION):
            targets.append(seq[caption_start: caption_start + len(ids)] == ids)
        else:
            conditions.append(seq[1: 1 + len(ids)] == ids)
    assert targets and all(targets)  # captions the model learns to write stay clean
    assert conditions and np.mean(conditions) < 0.3  # most noised (some draws change no word)
    with pytest.raises(ValueError, match="word_noise"):
        GeneratorTraining(word_noise=1.5)


def test_widen_adds_paraphrases_to_template_captions_only():
    from backend.data.captions import widen

    template = captions.captions_for("walk", "elderly", seed="clip7")
    wide = widen(template, "walk", "elderly", "clip7", 12)
    assert wide[: len(template)] == template and len(set(wide)) == len(wide) > len(template)
    assert widen(["my own words"], "walk", "elderly", "clip7", 12) == ["my own words"]
    assert widen(template, "walk", "elderly", "clip7", 0) == template


def test_cli_builds_and_prints_the_summary(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-m", "backend", "data", "build", "--source",
                          str(DATA / "bandai-2"), "--cache", str(tmp_path), "--workers", "1"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "built 3 clips" in run.stdout
    assert "walk-turn-left" in run.stdout and "hours" in run.stdout
    manifest = json.loads((tmp_path / "dataset" / "manifest.json").read_text())
    assert manifest["clips"] == 3
    bad = subprocess.run([sys.executable, "-m", "backend", "data", "build", "--source",
                          str(tmp_path / "nowhere"), "--cache", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr


BUILD = """
import json, sys
from pathlib import Path
from backend.data import dataset
ds, skipped, _ = dataset.build([Path(sys.argv[1])], Path(sys.argv[2]), workers=1, progress=False)
print(json.dumps({"clips": sorted(c.name for c in ds.clips), "skipped": skipped,
                  "finite": bool(__import__("numpy").isfinite(ds.features).all())}))
"""


def test_a_build_skips_and_lists_every_bad_entry_and_never_hangs(tmp_path):
    """One bad entry never aborts or hangs a build (issue #23, items 9 and 10): each is skipped
    and listed with its reason; a UTF-8 BOM is read."""
    good = (DATA / "bandai-1" / "dataset-1_walk_normal_002.bvh").read_text()
    src = tmp_path / "src"
    src.mkdir()
    (src / "good.bvh").write_text(good)
    (src / "good.json").write_text("[" * 100000 + "]" * 100000)  # nested past the parser's depth
    (src / "bom.bvh").write_bytes(b"\xef\xbb\xbf" + good.encode())
    (src / "broken_link.bvh").symlink_to(tmp_path / "nowhere.bvh")
    (src / "folder.bvh").mkdir()
    os.mkfifo(src / "fifo.bvh")
    (src / "zero.bvh").symlink_to("/dev/zero")
    deep = "HIERARCHY\nROOT r\n" + "".join(f"{{\nOFFSET 0 0 0\nCHANNELS 3 Zrotation Xrotation Yrotation\nJOINT j{i}\n"
                                           for i in range(5000))
    (src / "deep.bvh").write_text(deep + "{\n}\n" * 5001 + "MOTION\nFrames: 1\nFrame Time: 0.03\n0\n")
    head, motion = good.split("MOTION", 1)
    lines = motion.strip().splitlines()
    huge = lines[3].split()
    huge[5] = "1e308"
    (src / "huge.bvh").write_text(head + "MOTION\n" + "\n".join(lines[:3] + [" ".join(huge)] + lines[4:]) + "\n")
    (src / "tiny_time.bvh").write_text(head + "MOTION\n" + lines[0] + "\nFrame Time: 1e-300\n"
                                       + "\n".join(lines[2:]) + "\n")
    run = subprocess.run([sys.executable, "-c", BUILD, str(src), str(tmp_path / "cache")], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["clips"] == ["bom", "good"] and out["finite"]
    said = "\n".join(out["skipped"])
    for name, why in [("broken_link.bvh", "unreadable"), ("folder.bvh", "a folder"), ("fifo.bvh", "not a regular"),
                      ("zero.bvh", "not a regular"), ("deep.bvh", "deeper than"), ("huge.bvh", "at most 1e+07"),
                      ("tiny_time.bvh", "Frame Time must be"), ("good.json", "not readable JSON")]:
        assert any(name in line and why in line for line in out["skipped"]), (name, said)
