"""The engine's own Llama forward (backend/models/llama.py) against transformers' on the same
checkpoint: the same numbers, the same tokens, and no transformers import at inference."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from backend.models import llama  # noqa: E402
from backend.models.llm import load_base  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def both(tiny_base):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    theirs = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32).eval()
    ours, tok = llama.load(tiny_base, torch.float32)
    return ours, theirs, tok, AutoTokenizer.from_pretrained(tiny_base)


def test_the_hidden_states_are_transformers_own_to_the_bit(both):
    ours, theirs, _, _ = both
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 1000, (3, 12), generator=g)
    with torch.no_grad():
        # causal, from token ids
        assert torch.equal(ours.model(input_ids=ids).last_hidden_state, theirs.model(input_ids=ids).last_hidden_state)
        # a 4D bool mask (the motion LM's bidirectional block) with embeddings in and positions given
        emb = theirs.get_input_embeddings()(ids)
        mask = torch.rand(3, 1, 12, 12, generator=g) > 0.4
        mask |= torch.eye(12, dtype=torch.bool)
        pos = torch.arange(12)[None].expand(3, 12) + 5
        a = ours.model(inputs_embeds=emb, attention_mask=mask, position_ids=pos).last_hidden_state
        b = theirs.model(inputs_embeds=emb, attention_mask=mask, position_ids=pos).last_hidden_state
        assert torch.equal(a, b)
        # right padding, as sentence features batch their texts
        valid = torch.ones(3, 12, dtype=torch.long)
        valid[1, 7:] = 0
        a = ours.model(input_ids=ids, attention_mask=valid).last_hidden_state
        b = theirs.model(input_ids=ids, attention_mask=valid).last_hidden_state
        assert torch.allclose(a[valid.bool()], b[valid.bool()], atol=1e-5)


def test_bfloat16_rounds_as_transformers_does(tiny_base):
    """Where the CPU runs bfloat16 (the engine measures which format is faster), the codes of a
    seed must not depend on which forward ran."""
    from transformers import AutoModelForCausalLM

    theirs = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.bfloat16).eval()
    ours, _ = llama.load(tiny_base, torch.bfloat16)
    ids = torch.randint(0, 1000, (2, 9), generator=torch.Generator().manual_seed(3))
    mask = torch.ones(2, 1, 9, 9, dtype=torch.bool)
    with torch.no_grad():
        a = ours.model(input_ids=ids, attention_mask=mask).last_hidden_state
        b = theirs.model(input_ids=ids, attention_mask=mask).last_hidden_state
    assert a.dtype == torch.bfloat16 and torch.equal(a, b)


def test_a_cached_prefix_continues_as_transformers_cache_does(both):
    ours, theirs, _, _ = both
    ids = torch.randint(0, 1000, (2, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        outs = []
        for m in (ours, theirs):
            first = m.model(input_ids=ids[:, :6], use_cache=True)
            cache = first.past_key_values
            step = m.model(input_ids=ids[:, 6:9], past_key_values=cache, use_cache=True)
            cache.crop(-3)  # as the motion LM drops a pass's keys
            assert cache.get_seq_length() == 6
            again = m.model(input_ids=ids[:, 6:10], past_key_values=cache, use_cache=True)
            outs.append((step.last_hidden_state, again.last_hidden_state))
        assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
        full = ours.model(input_ids=ids).last_hidden_state[:, 6:]
        assert torch.allclose(outs[0][1], full, atol=1e-5)


def test_text_tokens_are_the_fast_tokenizers(both):
    _, _, ours, theirs = both
    for text in ("a person walks forward, then waves with the right hand.", "  Ünïcode — dashes\tand tabs ",
                 "", "<|im_end|> in the text"):
        ids = ours(text, add_special_tokens=False).input_ids
        assert ids == theirs(text, add_special_tokens=False).input_ids
        assert ours.decode(ids, skip_special_tokens=True) == theirs.decode(ids, skip_special_tokens=True)
    assert ours.eos_token_id == theirs.eos_token_id


def test_checkpoints_it_does_not_cover_load_through_transformers(tiny_base, tmp_path):
    other = tmp_path / "llama3"
    shutil.copytree(tiny_base, other)
    config = json.loads((other / "config.json").read_text())
    config["rope_parameters"] = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0,
                                 "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                 "original_max_position_embeddings": 64}
    (other / "config.json").write_text(json.dumps(config))
    assert "llama3" in llama.unsupported(other)
    model, _ = load_base(str(other), inference=True)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert llama.unsupported(tiny_base) is None
    assert isinstance(load_base(str(tiny_base), inference=True)[0], llama.LlamaLM)


def test_the_engine_loads_and_generates_without_importing_transformers_or_peft(tiny_weights):
    code = ("import sys; from pathlib import Path; from backend.engine import Engine; "
            f"e = Engine(Path({str(tiny_weights)!r}), device='cpu'); e.generate('a person walks', 2.0, seed=1); "
            "print(sorted(m for m in ('transformers', 'peft') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "[]"


def test_sentence_features_match_transformers(tiny_base):
    """What the length estimator and the evaluator read text through, padded batches included."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from backend.models.llm import TextFeatures

    texts = ["a person walks", "a man bows politely to the crowd, then turns and runs away", "jump"]
    ours = TextFeatures(str(tiny_base))
    assert isinstance(ours.model, llama.LlamaLM)
    model = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(tiny_base)
    enc = tok(texts, return_tensors="pt", padding=True, truncation=True, max_length=64)
    mine = ours.tok(texts, return_tensors="pt", padding=True, truncation=True, max_length=64)
    assert torch.equal(enc.input_ids[enc.attention_mask.bool()], mine.input_ids[mine.attention_mask.bool()])
    with torch.no_grad():
        h = model.model(input_ids=enc.input_ids, attention_mask=enc.attention_mask).last_hidden_state
    m = enc.attention_mask[..., None].float()
    expected = ((h * m).sum(1) / m.sum(1)).numpy()
    import numpy as np

    assert np.allclose(ours(texts), expected, atol=1e-5)


def test_the_engine_runs_fused_products_that_merges_keep_writing_into(tiny_weights):
    from backend import adapters as store
    from backend.engine import Engine

    engine = Engine(tiny_weights, device="cpu", dtype="float32")
    groups = [(m, "qkv", (m.q_proj, m.k_proj, m.v_proj)) for m in engine.model.lm.modules()
              if isinstance(m, llama.Attention)]
    groups += [(m, "gate_up", (m.gate_proj, m.up_proj)) for m in engine.model.lm.modules() if isinstance(m, llama.MLP)]
    assert groups and all(m.is_fused() for m, _, _ in groups)
    blank = torch.full((1, 8), -1, dtype=torch.long)
    before = engine.model.fill("a person jumps", blank, steps=3, guidance=3.0, generator=torch.Generator().manual_seed(4))
    whole = [getattr(m, name).clone() for m, name, _ in groups]
    engine.use_adapter(store.DEFAULT)  # merged again onto the base as loaded: into the fused matrices
    assert all(m.is_fused() for m, _, _ in groups)
    assert all(torch.equal(getattr(m, name), w) for (m, name, _), w in zip(groups, whole))
    after = engine.model.fill("a person jumps", blank, steps=3, guidance=3.0, generator=torch.Generator().manual_seed(4))
    assert torch.equal(before, after)
    # The q, k, v views are the layers' weights: what the adapter tests read sees the merge.
    m, _, parts = groups[0]
    assert torch.equal(torch.cat([p.weight for p in parts]), m.qkv)
