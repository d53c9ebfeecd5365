"""A Llama forward for inference in plain torch: the engine's trunk once its LoRA is merged.

transformers' import alone took 2.9 s of a 7 s cold start here, and the engine needs none of
its machinery to run a merged model: this module reads the same checkpoint folder (config.json,
safetensors weights, tokenizer.json) and computes what `LlamaForCausalLM` computes, op for op
(float32 RMSNorm, rotary on the repeated halves, key/value heads repeated for SDPA), so a
float32 model decodes the same codes either way (tests/test_llama.py). Checkpoints it does not
cover (other RoPE scalings, other activations, no tokenizer.json) load through transformers,
as training always does.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class LlamaShape:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    eps: float
    rope_theta: float
    bias: bool
    mlp_bias: bool
    tied: bool

    @classmethod
    def from_config(cls, config: dict) -> "LlamaShape":
        rope = _rope(config)
        return cls(hidden=config["hidden_size"], intermediate=config["intermediate_size"],
                   layers=config["num_hidden_layers"], heads=config["num_attention_heads"],
                   kv_heads=config.get("num_key_value_heads") or config["num_attention_heads"],
                   head_dim=config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"],
                   vocab=config["vocab_size"], eps=config["rms_norm_eps"],
                   rope_theta=rope.get("rope_theta", config.get("rope_theta", 10000.0)),
                   bias=bool(config.get("attention_bias")), mlp_bias=bool(config.get("mlp_bias")),
                   tied=bool(config.get("tie_word_embeddings")))


def _rope(config: dict) -> dict:
    """RoPE settings: `rope_parameters` in transformers 5 configs, `rope_scaling` before."""
    return config.get("rope_parameters") or config.get("rope_scaling") or {}


def unsupported(folder: Path) -> str | None:
    """Why this checkpoint folder needs transformers (None: this module runs it)."""
    config = json.loads((folder / "config.json").read_text())
    rope = _rope(config)
    if config.get("model_type") != "llama":
        return f"model type {config.get('model_type')!r}"
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        return f"RoPE type {rope.get('rope_type', rope.get('type'))!r}"
    if config.get("hidden_act", "silu") != "silu":
        return f"activation {config.get('hidden_act')!r}"
    if config.get("pretraining_tp", 1) != 1:
        return "pretraining_tp > 1"
    if not (folder / "tokenizer.json").is_file():
        return "no tokenizer.json"
    if _special_token(folder, "eos_token") is None:
        return "no eos_token in tokenizer_config.json"
    return None


def _special_token(folder: Path, name: str) -> str | None:
    try:
        token = json.loads((folder / "tokenizer_config.json").read_text()).get(name)
    except (OSError, json.JSONDecodeError):
        return None
    return token.get("content") if isinstance(token, dict) else token


class TextTokenizer:
    """What the motion LM asks of a text tokenizer, over the folder's tokenizer.json (the file
    transformers' fast tokenizer is built from, so the ids are the same)."""

    def __init__(self, folder: Path):
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.no_truncation()
        self.eos_token = _special_token(folder, "eos_token")
        self.eos_token_id = self._tok.token_to_id(self.eos_token)
        if self.eos_token_id is None:
            raise ValueError(f"{folder}: eos_token {self.eos_token!r} is not in tokenizer.json")
        pad = _special_token(folder, "pad_token")
        self.pad_token_id = self._tok.token_to_id(pad) if pad else None
        if self.pad_token_id is None:  # as load_base sets it on transformers' tokenizers
            self.pad_token_id = self.eos_token_id

    def __call__(self, text: str | list[str], add_special_tokens: bool = True, return_tensors: str | None = None,
                 padding: bool = False, truncation: bool = False, max_length: int | None = None):
        """One text -> .input_ids (a list); a list of texts with return_tensors="pt" ->
        .input_ids and .attention_mask (B, L) tensors, right-padded, as transformers gives them."""
        if isinstance(text, str):
            return _Encoded(self._tok.encode(text, add_special_tokens=add_special_tokens).ids)
        if return_tensors != "pt" or not padding:
            raise ValueError("a batch of texts is encoded padded, as torch tensors")
        rows = [e.ids for e in self._tok.encode_batch(text, add_special_tokens=add_special_tokens)]
        if truncation and max_length:
            rows = [r[:max_length] for r in rows]
        width = max(map(len, rows), default=0)
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, : len(r)] = 1
        return _Batch(ids, mask)

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def get_vocab(self) -> dict[str, int]:
        return self._tok.get_vocab()


@dataclass
class _Encoded:
    input_ids: list[int]


@dataclass
class _Batch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor


@dataclass
class Output:
    last_hidden_state: torch.Tensor
    past_key_values: "KVCache | None"


class KVCache:
    """Keys and values per layer, (batch, kv heads, positions, head dim), grown by each forward."""

    def __init__(self, layers: int):
        self.keys: list[torch.Tensor | None] = [None] * layers
        self.values: list[torch.Tensor | None] = [None] * layers

    def update(self, k: torch.Tensor, v: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=2)
            v = torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v

    def get_seq_length(self) -> int:
        return 0 if self.keys[0] is None else self.keys[0].shape[2]

    def crop(self, length: int) -> None:
        """Keep the first `length` positions (negative: drop the last -length), as DynamicCache.crop."""
        if length < 0:
            length = self.get_seq_length() + length
        for i, k in enumerate(self.keys):
            if k is not None:
                self.keys[i], self.values[i] = k[:, :, :length], self.values[i][:, :, :length]


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float, device=None):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size, device=device))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class _Fusable(nn.Module):
    """Linear layers that read the same input, run as one product once `fuse` has put their
    weights into one matrix (the layers' own weights become views into it)."""

    FUSED: tuple[str, tuple[str, ...]]  # (the matrix's attribute, the layers in its row order)

    def _parts(self) -> list[nn.Linear]:
        return [getattr(self, n) for n in self.FUSED[1]]

    def fuse(self) -> None:
        parts = self._parts()
        if any(p.bias is not None for p in parts):
            return
        whole = torch.cat([p.weight.detach() for p in parts])
        at = 0
        for p in parts:
            p.weight = nn.Parameter(whole[at: at + p.out_features], requires_grad=False)
            at += p.out_features
        setattr(self, self.FUSED[0], whole)

    def is_fused(self) -> bool:
        """The matrix is there and still the layers' own weights (merges write into it in place;
        a weight replaced since, and the layers run apart)."""
        whole = getattr(self, self.FUSED[0], None)
        return whole is not None and self._parts()[0].weight.data_ptr() == whole.data_ptr()

    def _project(self, x: torch.Tensor) -> list[torch.Tensor]:
        parts = self._parts()
        if self.is_fused():
            return F.linear(x, getattr(self, self.FUSED[0])).split([p.out_features for p in parts], dim=-1)
        return [p(x) for p in parts]


class Attention(_Fusable):
    FUSED = ("qkv", ("q_proj", "k_proj", "v_proj"))

    def __init__(self, shape: LlamaShape, index: int, device=None):
        super().__init__()
        self.index = index
        self.heads, self.kv_heads, self.head_dim = shape.heads, shape.kv_heads, shape.head_dim
        width, kv_width = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
        self.q_proj = nn.Linear(shape.hidden, width, bias=shape.bias, device=device)
        self.k_proj = nn.Linear(shape.hidden, kv_width, bias=shape.bias, device=device)
        self.v_proj = nn.Linear(shape.hidden, kv_width, bias=shape.bias, device=device)
        self.o_proj = nn.Linear(width, shape.hidden, bias=shape.bias, device=device)

    def forward(self, x, cos, sin, mask, cache: KVCache | None):
        b, n, _ = x.shape
        q, k, v = self._project(x)
        q = q.view(b, n, -1, self.head_dim).transpose(1, 2)
        k = k.view(b, n, -1, self.head_dim).transpose(1, 2)
        v = v.view(b, n, -1, self.head_dim).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        if cache is not None:
            k, v = cache.update(k, v, self.index)
        groups = self.heads // self.kv_heads
        if groups > 1:
            k = k.repeat_interleave(groups, dim=1)
            v = v.repeat_interleave(groups, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.head_dim ** -0.5)
        return self.o_proj(out.transpose(1, 2).reshape(b, n, -1))


class MLP(_Fusable):
    FUSED = ("gate_up", ("gate_proj", "up_proj"))

    def __init__(self, shape: LlamaShape, device=None):
        super().__init__()
        self.gate_proj = nn.Linear(shape.hidden, shape.intermediate, bias=shape.mlp_bias, device=device)
        self.up_proj = nn.Linear(shape.hidden, shape.intermediate, bias=shape.mlp_bias, device=device)
        self.down_proj = nn.Linear(shape.intermediate, shape.hidden, bias=shape.mlp_bias, device=device)

    def forward(self, x):
        gate, up = self._project(x)
        return self.down_proj(F.silu(gate) * up)


def fuse(module: nn.Module) -> None:
    """q, k, v and gate, up each one product, in every block of `module`."""
    for m in module.modules():
        if isinstance(m, _Fusable):
            m.fuse()


class Block(nn.Module):
    def __init__(self, shape: LlamaShape, index: int, device=None):
        super().__init__()
        self.self_attn = Attention(shape, index, device)
        self.mlp = MLP(shape, device)
        self.input_layernorm = RMSNorm(shape.hidden, shape.eps, device)
        self.post_attention_layernorm = RMSNorm(shape.hidden, shape.eps, device)

    def forward(self, x, cos, sin, mask, cache):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class Trunk(nn.Module):
    """LlamaModel's forward, as the motion LM calls it."""

    def __init__(self, shape: LlamaShape, device=None):
        """device "meta": parameters without storage, for load() to assign. (Built inside a
        `torch.device("meta")` block instead, the table's init and the arange imported torch's
        decompositions: 1.5 s.)"""
        super().__init__()
        self.shape = shape
        self.embed_tokens = nn.Embedding(shape.vocab, shape.hidden,
                                         _weight=torch.empty(shape.vocab, shape.hidden, device=device))
        self.layers = nn.ModuleList([Block(shape, i, device) for i in range(shape.layers)])
        self.norm = RMSNorm(shape.hidden, shape.eps, device)
        inv_freq = 1.0 / (shape.rope_theta ** (torch.arange(0, shape.head_dim, 2, dtype=torch.float) / shape.head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None, past_key_values=None,
                use_cache: bool = False, position_ids=None) -> Output:
        """attention_mask: (B, 1, Q, K) bool, True where a query may look (passed to SDPA as is);
        (B, K) of valid positions (causal within them); or None (causal)."""
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        b, n = x.shape[:2]
        cache = past_key_values if past_key_values is not None else (KVCache(len(self.layers)) if use_cache else None)
        seen = cache.get_seq_length() if cache is not None else 0
        if position_ids is None:
            position_ids = (torch.arange(n, device=x.device) + seen)[None]
        mask = attention_mask
        if mask is None or mask.dim() == 2:
            causal = torch.arange(seen + n, device=x.device)[None] <= (torch.arange(n, device=x.device) + seen)[:, None]
            mask = causal[None, None] if mask is None else causal[None, None] & mask.bool()[:, None, None]
        freqs = position_ids[..., None].float() * self.inv_freq.to(x.device)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos().to(x.dtype)[:, None], emb.sin().to(x.dtype)[:, None]
        for layer in self.layers:
            x = layer(x, cos, sin, mask, cache)
        return Output(self.norm(x), cache if use_cache else None)


class LlamaLM(nn.Module):
    """Trunk and (tied or own) output head, with the accessors the motion LM uses."""

    def __init__(self, shape: LlamaShape, device=None):
        super().__init__()
        self.model = Trunk(shape, device)
        self.lm_head = nn.Linear(shape.hidden, shape.vocab, bias=False, device=device)
        if shape.tied:
            self.lm_head.weight = self.model.embed_tokens.weight

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head


def load(folder: Path, dtype: torch.dtype) -> tuple[LlamaLM, TextTokenizer]:
    """The checkpoint in `folder` (safetensors only), for inference in `dtype`."""
    from safetensors.torch import load_file

    folder = Path(folder)
    shape = LlamaShape.from_config(json.loads((folder / "config.json").read_text()))
    model = LlamaLM(shape, device="meta")  # no random init of weights about to be replaced
    state = {}
    for f in sorted(folder.glob("*.safetensors")):
        # Memory-mapped, and never written: a merge writes new tensors (a write into these pages
        # would copy each on its first touch, 2 s for the default base here).
        state.update(load_file(str(f)))
    if shape.tied:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True, assign=True)
    if shape.tied:
        model.lm_head.weight = model.model.embed_tokens.weight
    return model.eval(), TextTokenizer(folder)
