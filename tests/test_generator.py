"""The motion LM on a tiny Llama (random weights, the real SmolLM2 text tokenizer)."""
import json

import numpy as np
import pytest
import torch

from backend.models.generator import INFILL, MASK, MOT, T2M, MotionLM
from conftest import tiny_model as _model


def test_sequence_layout_and_prefix_lm_mask(tiny_base):
    model = _model(tiny_base)
    ids, start = model.sequence(T2M, "a person waves", [3, -1, 5])
    assert ids[0] == model.special(T2M) and ids[start - 1] == model.special(MOT)
    assert ids[start: start + 3] == [int(model.motion_id(3)), model.special(MASK), int(model.motion_id(5))]
    targets = [-100] * len(ids)
    targets[start + 1] = 4
    batch = model.collate([(ids, start, 3, targets, -1), (ids[:-1], start, 3, [-100] * (len(ids) - 1), -1)])
    allow = model.attention_mask(batch.segment, batch.valid)[:, 0]
    a = allow[0]
    assert a[start, start + 2] and a[start + 2, start]      # motion codes see each other both ways
    assert not a[0, 1] and a[1, 0]                          # text stays causal
    assert not a[start - 1, start]                          # the prefix never sees the motion
    assert not batch.valid[1, -1] and not allow[1, :-1, -1].any()  # nobody attends to padding
    with pytest.raises(ValueError, match="at most 100"):
        model.sequence(T2M, "", [0] * 101)


def test_lora_training_learns_to_fill_masked_codes(tiny_base):
    model = _model(tiny_base)
    target = [1, 7, 7, 2, 9, 9, 3, 11]
    examples = []
    for k in range(len(target)):
        shown = [-1 if i == k else c for i, c in enumerate(target)]
        ids, start = model.sequence(INFILL, "walk", shown)
        aligned = [-100] * len(ids)
        aligned[start: start + len(target)] = [c if s < 0 else -100 for c, s in zip(target, shown)]
        examples.append((ids, start, len(target), aligned, -1))
    batch = model.collate(examples)
    params = [p for p in model.parameters() if p.requires_grad]
    assert sum(p.numel() for p in params) < 0.5 * sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(params, lr=3e-3)
    first = None
    for _ in range(80):
        loss, _ = model.loss(batch)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first
    model.eval()
    codes = torch.tensor([[-1 if i == 3 else c for i, c in enumerate(target)]])
    filled = model.fill("walk", codes, steps=2, temperature=0, task=INFILL)
    assert filled[0].tolist() == target


def test_next_token_decoding_learns_a_sequence(tiny_base):
    from backend.models.generator import NEXT

    model = _model(tiny_base)
    target = [4, 8, 15, 16, 23, 31]
    ids, start = model.sequence(NEXT, "count", target)
    aligned = [-100] * len(ids)
    aligned[start - 1: start - 1 + len(target)] = target
    batch = model.collate([(ids, 0, 0, aligned, -1)])
    assert not batch.segment.any()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    for _ in range(80):
        loss, _ = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert model.next_token("count", len(target), temperature=0)[0].tolist() == target


def test_save_and_reload_reproduce_logits(tiny_base, tmp_path):
    model = _model(tiny_base).eval()
    with torch.no_grad():
        for p in model.lm.parameters():
            if p.requires_grad:
                p.add_(0.01 * torch.randn_like(p))
    model.save_pretrained(tmp_path)
    again = MotionLM.from_pretrained(tmp_path)
    ids, start = model.sequence(T2M, "a person runs", [1, -1, 2, -1])
    aligned = [-100] * len(ids)
    aligned[start + 1], aligned[start + 3] = 5, 6
    batch = model.collate([(ids, start, 4, aligned, -1)])
    with torch.no_grad():
        assert torch.allclose(model.loss(batch)[0], again.loss(batch)[0], atol=1e-6)
    size = sum(f.stat().st_size for f in tmp_path.rglob("*.safetensors"))
    assert size < 2_000_000  # the base vocabulary is not copied into the adapter
    meta = json.loads((tmp_path / "generator.json").read_text())
    assert meta["eos_id"] == model.eos_id == again.eos_id
    # A caption ends on the token the model was trained with, whatever this transformers
    # release reads as the base's end of text; a token the base lacks is refused.
    (tmp_path / "generator.json").write_text(json.dumps({**meta, "eos_id": 1}))
    assert MotionLM.from_pretrained(tmp_path).eos_id == 1 != model.eos_id
    (tmp_path / "generator.json").write_text(json.dumps({**meta, "eos_id": 10**7}))
    with pytest.raises(ValueError, match="end-of-text token"):
        MotionLM.from_pretrained(tmp_path)
    meta["format_version"] = 7
    (tmp_path / "generator.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="format_version 7"):
        MotionLM.from_pretrained(tmp_path)


def test_refuses_a_base_without_safetensors(tmp_path):
    from backend.models.llm import load_base

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ValueError, match="pickled weights are refused"):
        load_base(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError, match="Llama-architecture"):
        load_base(str(tmp_path))


def test_engine_generates_valid_clips_deterministically(tiny_weights):
    import numpy as np

    from backend.engine import Engine, Sampling

    engine = Engine(tiny_weights, device="cpu", dtype="float32")
    a = engine.generate("a person waves", seconds=2.0, seed=3, variations=2, fps=30)
    b = engine.generate("a person waves", seconds=2.0, seed=3, variations=2, fps=30)
    assert len(a) == 2 and a[0].fps == 30 and a[0].num_frames == 2 * 30
    # Seconds x fps frames, as a timeline counts them, at any rate and up to the longest clip.
    for seconds, fps in ((2.5, 24), (1.0, 20), (3.0, 60), (20.0, 30), (0.7, 29.97)):
        [m] = engine.generate("a person waves", seconds=seconds, seed=1, fps=fps)
        assert m.num_frames == round(seconds * fps), (seconds, fps)
    # The tokens it reports are the ones it fills (what benchmarks/generate_speed.py bounds): an
    # 8 s clip at 30 fps needs 161 model frames for its 240th frame, so one token more than at 20.
    filled = []
    original = engine.model.fill
    engine.model.fill = lambda text, codes, **kw: filled.append(codes.shape[1]) or original(text, codes, **kw)
    for fps in (30, 20):
        engine.generate("a person waves", seconds=8.0, seed=1, fps=fps)
    engine.model.fill = original
    down = engine.tokenizer.config.down
    assert filled == [engine.motion_tokens(8.0, 30), engine.motion_tokens(8.0, 20)] == [-(-161 // down), 160 // down]
    assert all(np.array_equal(x.local_rotations, y.local_rotations) for x, y in zip(a, b))
    assert not np.array_equal(a[0].local_rotations, a[1].local_rotations)  # variations differ
    assert all(np.all(np.isfinite(m.positions())) for m in a)
    assert isinstance(engine.caption(a[0]), str)
    info = engine.info()
    assert info["device"] == "cpu" and info["codebook_size"] == 32
    for bad, match in [(dict(seconds=0), "between 0 and 20"), (dict(seconds=float("nan")), "between"),
                       (dict(seconds=99), "between"), (dict(seconds=1, variations=0), "variations")]:
        with pytest.raises(ValueError, match=match):
            engine.generate("x", **bad)
    with pytest.raises(ValueError, match="steps must be 1..64"):
        Sampling(steps=0)


def test_cached_prefix_pass_equals_the_full_sequence(tiny_base):
    """fill() encodes the text once and runs only motion positions per pass; that must give
    the same hidden states as the full prefix-LM sequence used in training."""
    model = _model(tiny_base).eval()
    codes = torch.tensor([[3, -1, 5, -1, -1, 7]])
    n = codes.shape[1]
    with torch.no_grad():
        past, starts, _, _ = model._prefix_cache(T2M, ["a person walks"])
        start = int(starts[0])
        body = torch.where(codes < 0, model.special(MASK), model.motion_id(codes.clamp(min=0)))
        cached = model.decoder(inputs_embeds=model.embed(body), past_key_values=past, use_cache=True,
                               attention_mask=torch.ones((1, 1, n, start + n), dtype=torch.bool),
                               position_ids=torch.arange(start, start + n)[None]).last_hidden_state
        seq, st = model.sequence(T2M, "a person walks", codes[0].tolist())
        ids = torch.tensor([seq])
        seg = torch.zeros_like(ids, dtype=torch.bool)
        seg[:, st: st + n] = True
        full = model.hidden(ids, seg, torch.ones_like(seg)).last_hidden_state[:, st: st + n]
    assert st == start
    assert torch.allclose(cached, full, atol=1e-5)


def test_rows_of_different_prefixes_pass_as_one_padded_batch(tiny_base):
    """Guided decoding runs the text row and the no-text row as one batch, the shorter prefix
    padded: each row must see exactly what it would see alone."""
    model = _model(tiny_base).eval()
    codes = torch.tensor([[3, -1, 5, -1]])
    n = codes.shape[1]
    texts = ["a person walks slowly to the left", ""]

    def motion_pass(rows):
        past, starts, keep, _ = model._prefix_cache(T2M, rows)
        body = model.embed(torch.where(codes < 0, model.special(MASK), model.motion_id(codes.clamp(min=0))))
        allow = torch.cat([keep, torch.ones((len(rows), n), dtype=torch.bool)], 1)[:, None, None]
        return model.decoder(inputs_embeds=body.repeat(len(rows), 1, 1), past_key_values=past, use_cache=True,
                             attention_mask=allow.expand(-1, 1, n, -1),
                             position_ids=starts[:, None] + torch.arange(n)).last_hidden_state

    with torch.no_grad():
        together = motion_pass(texts)
        alone = torch.cat([motion_pass([t]) for t in texts])
    assert torch.allclose(together, alone, atol=1e-5)


def test_user_adapter_trains_from_a_folder_of_bvh(tiny_weights, tmp_path):
    """`dynamicpose train adapter` on two labelled clips, on top of a model folder."""
    import os
    import shutil
    import subprocess
    import sys

    from safetensors.torch import load_file

    from backend.engine import Engine
    from conftest import DATA, ROOT

    out, base = tmp_path / "studio", tmp_path / "base"
    shutil.copytree(tiny_weights, base)
    meta = json.loads((base / "generator.json").read_text())
    meta["training"] = {"steps": 3, "init_from": {"steps": 5}}  # a base with a lineage of its own
    (base / "generator.json").write_text(json.dumps(meta))
    env = dict(os.environ, PYTHONPATH=str(ROOT), DYNAMICPOSE_CACHE=str(tmp_path / "cache"))
    run = subprocess.run([sys.executable, "-m", "backend", "train", "adapter", "--data", str(DATA / "bandai-1"),
                          "--out", str(out), "--steps", "8", "--batch", "4", "--base-model", str(base)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"model written to {out}; use it with --weights" in run.stdout
    before = load_file(str(tiny_weights / "adapter" / "adapter_model.safetensors"))
    after = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    record = json.loads((out / "generator.json").read_text())["training"]
    assert record["steps"] == 8 and record["init_from"] == {"steps": 3, "init_from": {"steps": 5}}
    clip = Engine(out, device="cpu").generate("a person bows", 1.0, seed=0)[0]
    assert clip.num_frames == 30  # 1 s at 30 fps
    same = subprocess.run([sys.executable, "-m", "backend", "train", "adapter", "--data", str(DATA / "bandai-1"),
                           "--out", str(tiny_weights), "--base-model", str(tiny_weights)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert same.returncode == 2 and "never overwritten" in same.stderr
    again = subprocess.run([sys.executable, "-m", "backend", "train", "generator", "--init-from", str(tiny_weights),
                            "--out", str(tiny_weights)], capture_output=True, text=True, env=env, cwd=tmp_path,
                           timeout=120)
    assert again.returncode == 2 and "never overwritten" in again.stderr
    bad = subprocess.run([sys.executable, "-m", "backend", "train", "generator", "--init-from", str(tiny_weights),
                          "--out", str(tmp_path / "new"), "--wide-captions", "-1"], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=120)
    assert bad.returncode == 2 and "wide_captions must be 0 or more" in bad.stderr
    assert not (tmp_path / "new").exists()  # refused before anything was written


def test_engine_decodes_token_by_token_too(tiny_weights):
    from backend.engine import Engine, Sampling

    engine = Engine(tiny_weights, device="cpu", dtype="float32")
    seen = []
    a = engine.generate("a person walks", 1.0, seed=3, sampling=Sampling(decoding="next"),
                        on_step=lambda d, t: seen.append((d, t)))[0]
    b = engine.generate("a person walks", 1.0, seed=3, sampling=Sampling(decoding="next"))[0]
    assert np.array_equal(a.local_rotations, b.local_rotations)
    assert seen[-1][0] == seen[-1][1] == len(seen)  # one report per token
    with pytest.raises(ValueError, match="decoding"):
        Sampling(decoding="beam")


def test_guidance_mixes_logits_with_and_without_the_text(tiny_weights):
    """Classifier-free guidance: scale 1 is plain decoding; scale 0 is decoding with no text at
    all; other scales give valid, different codes, in both decoders."""
    import torch

    from backend.engine import Engine

    engine = Engine(tiny_weights, device="cpu", dtype="float32")
    lm = engine.model
    K = lm.config.codebook_size if hasattr(lm.config, "codebook_size") else None
    blank = torch.full((1, 6), -1, dtype=torch.long)

    def fill(text, g):
        return lm.fill(text, blank, steps=3, generator=torch.Generator().manual_seed(1), guidance=g)

    def nxt(text, g):
        return lm.next_token(text, 6, generator=torch.Generator().manual_seed(1), guidance=g)

    for decode in (fill, nxt):
        plain, same = decode("a person waves", 1.0), decode("a person waves", 1.0)
        assert torch.equal(plain, same)
        assert torch.equal(decode("a person waves", 0.0), decode("", 1.0))
        pushed = decode("a person waves", 4.0)
        assert pushed.shape == plain.shape and (pushed >= 0).all()
        if K:
            assert (pushed < K).all()
    with pytest.raises(ValueError, match="guidance"):
        from backend.engine import Sampling

        Sampling(guidance=-1)


def test_engine_folds_lora_into_the_base_and_decodes_the_same(tiny_weights):
    import torch

    from backend.engine import Engine
    from backend.models.generator import MotionLM

    engine = Engine(tiny_weights, device="cpu", dtype="float32")
    plain = MotionLM.from_pretrained(tiny_weights, dtype=torch.float32)
    from peft.tuners.lora import LoraLayer

    # Merged without peft: the trunk runs plain linear layers, each equal to peft's own merge.
    assert not any(isinstance(m, LoraLayer) for m in engine.model.modules())
    assert engine._lora and all(type(engine.model.lm.get_submodule(n)) is torch.nn.Linear for n in engine._lora)
    merged = MotionLM.from_pretrained(tiny_weights, dtype=torch.float32)
    merged.lm.merge_adapter()
    for n, layer in engine._lora.items():
        assert torch.equal(layer.weight, merged.base.get_submodule(n).base_layer.weight)
    blank = torch.full((2, 8), -1, dtype=torch.long)
    for guidance in (1.0, 3.0):
        a = engine.model.fill("a person jumps", blank, steps=3, generator=torch.Generator().manual_seed(2),
                              guidance=guidance)
        b = plain.fill("a person jumps", blank, steps=3, generator=torch.Generator().manual_seed(2),
                       guidance=guidance)
        assert torch.equal(a, b)


def test_the_merge_without_peft_rounds_as_peft_does_in_bfloat16(tiny_weights):
    import torch

    from backend.models.generator import MotionLM

    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    ours = MotionLM.from_pretrained(tiny_weights, dtype=torch.bfloat16, lora=False)
    theirs = MotionLM.from_pretrained(tiny_weights, dtype=torch.bfloat16)
    # The tiny adapter is barely trained (B near zero, a delta that rounds away in bfloat16): give
    # both the same large B, so each merge has rounding of its own to agree on.
    g = torch.Generator().manual_seed(0)
    state = {k: (torch.randn(v.shape, generator=g) * 0.05).to(v.dtype) if "lora_B" in k else v
             for k, v in get_peft_model_state_dict(theirs.lm).items()}
    set_peft_model_state_dict(theirs.lm, state)
    ours.adapter_state = state
    before = {n: m.weight.clone() for n, m in ours.lora_layers(ours.adapter_state).items()}
    ours.merge_lora(ours.adapter_state, ours.config.lora_scaling)
    theirs.lm.merge_adapter()
    for n, layer in ours.lora_layers(ours.adapter_state).items():
        assert torch.equal(layer.weight, theirs.base.get_submodule(n).base_layer.weight), n
    assert any(not torch.equal(before[n], m.weight) for n, m in ours.lora_layers(ours.adapter_state).items())
    bad = dict(ours.adapter_state)
    bad.pop(next(k for k in bad if k.endswith("lora_B.weight")))
    with pytest.raises(ValueError, match="does not fit the base model"):
        ours.lora_layers(bad)


def test_cli_generate_writes_an_npz_that_reads_back(tiny_weights, tmp_path):
    """`dynamicpose generate --out x.npz`: the file holds the clip at its length, and
    motioncore.npz reads it back (no pickle)."""
    import subprocess
    import sys

    from motioncore.canonical import canonical_skeleton
    from motioncore.npz import load_npz

    out = tmp_path / "walk.npz"
    run = subprocess.run([sys.executable, "-m", "backend", "generate", "--text", "a person walks", "--seconds", "2",
                          "--weights", str(tiny_weights), "--device", "cpu", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    m = load_npz(out)
    assert m.skeleton.same_shape(canonical_skeleton()) and abs(m.duration - 2.0) <= 1.0 / m.fps + 1e-6


def test_balance_draws_rare_contents_as_often_as_common_ones():
    import random

    import numpy as np

    from backend.training.generator import GeneratorTraining, TokenClip, clip_weights

    clips = [TokenClip(np.zeros(4, int), ["a"], "walk", "normal") for _ in range(90)]
    clips += [TokenClip(np.zeros(4, int), ["b"], "kick", "normal") for _ in range(10)]
    assert clip_weights(clips, 0.0) == [1.0] * 100
    rng = random.Random(0)
    for balance, kick_share in ((0.0, 0.1), (0.5, 0.25), (1.0, 0.5)):
        # kick's share: 10 * 10**-b / (10 * 10**-b + 90 * 90**-b)
        drawn = rng.choices(clips, weights=clip_weights(clips, balance), k=20_000)
        share = sum(c.content == "kick" for c in drawn) / len(drawn)
        assert abs(share - kick_share) < 0.02, (balance, share)
    import pytest

    with pytest.raises(ValueError, match="balance"):
        GeneratorTraining(balance=1.5)


@pytest.mark.parametrize("text, actions", [
    ("a person walks forward, then waves with the left hand.",
     ["a person walks forward", "a person waves with the left hand"]),
    ("Someone bows, and after that walks forward", ["Someone bows", "Someone walks forward"]),
    ("an old man runs and then stops, then bows, then waves, then sits",
     ["an old man runs", "an old man stops", "an old man bows, then waves, then sits"]),
    ("a guy waves his left hand, after that he walks forward", ["a guy waves his left hand", "he walks forward"]),
    ("a person lifts the left hand, then the person kicks", ["a person lifts the left hand", "the person kicks"]),
    ("run then walk", ["run", "walk"]),  # no subject to carry
    ("a person walks and waves", ["a person walks and waves"]),  # at once, not one after the other
    ("then", ["then"]),
    ("", [""]),
])
def test_a_prompt_is_split_into_its_actions_in_order_at_the_words_that_say_after(text, actions):
    from backend.actions import split_actions

    assert split_actions(text) == actions


def test_a_chained_prompt_is_each_action_in_turn_joined_in_one_clip(tiny_weights):
    """Each action generated on its own, in order, then carried on from where the one before
    ended: the first action's frames are those it has alone, the clip is as long as asked and
    continuous through the join, and progress counts every action's passes."""
    import numpy as np

    from backend.data.compose import JOIN_SECONDS
    from backend.engine import Engine, Sampling

    engine = Engine(tiny_weights, device="cpu", dtype="float32")
    seen = []
    [m] = engine.generate("a person walks, then waves", seconds=5.0, seed=4, fps=20,
                          on_step=lambda done, total: seen.append((done, total)))
    assert m.num_frames == 100
    join = round(JOIN_SECONDS * 20)
    first = (100 - join) // 2
    [alone] = engine.generate("a person walks", seconds=first / 20, seed=4, fps=20)
    assert np.array_equal(m.local_rotations[:first], alone.local_rotations)
    assert np.allclose(m.root_position[:first], alone.root_position)
    # The second action is another motion, carried on from the first's last pose without a jump.
    assert not np.allclose(m.local_rotations[first + join:], m.local_rotations[:100 - first - join])
    step = np.linalg.norm(np.diff(m.positions(), axis=0), axis=-1).max(axis=1)  # fastest joint, per frame
    assert step[first - 1: first + join + 1].max() < 3 * step[: first - 1].max() + 0.05
    whole = [(d, t) for d, t in seen if float(d).is_integer()]
    assert whole[-1] == (2 * Sampling().steps, 2 * Sampling().steps)
    assert [d for d, _ in whole] == sorted(d for d, _ in whole)
    # Variations and seeds as for one action: the same seed, the same clip.
    a = engine.generate("a person walks, then waves", seconds=5.0, seed=4, fps=30, variations=2)
    b = engine.generate("a person walks, then waves", seconds=5.0, seed=4, fps=30, variations=2)
    assert len(a) == 2 and a[0].num_frames == 150
    assert all(np.array_equal(x.local_rotations, y.local_rotations) for x, y in zip(a, b))
    # Too short to hold two actions apart: the sentence is read whole, in one clip of the asked length.
    [short] = engine.generate("a person walks, then waves", seconds=1.0, seed=4, fps=20)
    assert short.num_frames == 20


def test_a_chained_prompt_without_a_length_gives_each_action_the_length_its_words_suggest(tiny_weights):
    import numpy as np

    from backend.actions import split_actions
    from backend.data.compose import JOIN_SECONDS
    from backend.engine import Engine
    from motioncore.limits import MAX_SECONDS

    engine = Engine(tiny_weights, device="cpu", dtype="float32")
    text = "a person waves, then a person runs"
    first, second = (engine.length_for(a) for a in split_actions(text))
    [m] = engine.generate(text, seconds=None, seed=2, fps=20)
    assert m.num_frames == round(min(first + second + JOIN_SECONDS, MAX_SECONDS) * 20)
    # The first action gets its own share of the frames, as long as it is alone.
    own = round(first / (first + second) * (m.num_frames - JOIN_SECONDS * 20))
    [alone] = engine.generate("a person waves", seconds=own / 20, seed=2, fps=20)
    assert np.array_equal(m.local_rotations[:own], alone.local_rotations)
