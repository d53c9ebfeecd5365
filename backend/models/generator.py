"""The motion language model: a pretrained Llama with LoRA adapters and new tokens for motion.

One model for every task, output = f(text, task, input motion):

    [task] text... <|mot|> m_1 ... m_N <|/mot|> [caption... eos]

- Motion tokens attend to each other both ways (a prefix-LM mask: text stays causal), so the
  model fills any masked motion tokens from the rest, MMM-style: text-to-motion starts from
  all <|mask|>, continuation masks the tail, in-betweening and editing mask spans.
- Captioning reads the motion segment and writes text after it, token by token.
- The <|next|> task keeps the motion segment causal, for token-by-token decoding with a KV
  cache (kept to measure against parallel decoding).

The new rows (task tokens, delimiters, mask and one row per motion code) live in their own
embedding, not in a resized copy of the base vocabulary: the saved adapter stays small and
motion logits are computed against the motion rows only. The base is frozen; LoRA (peft) adapts
every linear layer. For inference (`lora=False`) the LoRA is merged into the base weights here,
without peft: importing peft and merging through it took most of a cold start.
"""
from __future__ import annotations

import contextlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn import functional as F

from backend.models import weights_file
from backend.models.llm import DEFAULT_BASE, load_base
from backend.options import option

FORMAT_VERSION = 1
ADAPTER_PREFIX = "base_model.model."  # peft's names for the base's own modules in adapter files
SPECIAL_TOKENS = ("<|t2m|>", "<|infill|>", "<|caption|>", "<|mot|>", "<|/mot|>", "<|mask|>", "<|next|>")
T2M, INFILL, CAPTION, MOT, EMOT, MASK, NEXT = range(len(SPECIAL_TOKENS))


@dataclass
class GeneratorConfig:
    """The generator's shape. Defaults are the shipped model's."""

    base: str = option(DEFAULT_BASE, "base LLM: the embedded SmolLM2 or a local Llama checkpoint folder")
    codebook_size: int = 512            # motion codes, from the tokenizer (the shipped one's)
    lora_r: int = option(16, "LoRA rank (alpha: twice the rank)")
    lora_alpha: int = 32
    lora_dropout: float = 0.0           # dropout's random masks cost a quarter of a CPU step
    target_modules: list[str] = field(default_factory=lambda: [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    max_motion_tokens: int = 100        # 20 s at 5 tokens per second
    max_text_tokens: int = 64

    @property
    def lora_scaling(self) -> float:
        """What B @ A is multiplied by, as peft scales it (alpha / r)."""
        return self.lora_alpha / self.lora_r

    def __post_init__(self) -> None:
        if self.codebook_size < 2:
            raise ValueError(f"codebook_size must be at least 2, got {self.codebook_size}")
        if self.lora_r < 1 or self.lora_alpha <= 0:
            raise ValueError(f"lora_r must be >= 1 and lora_alpha > 0, got {self.lora_r}, {self.lora_alpha}")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")


@dataclass
class Batch:
    ids: torch.Tensor          # (B, L) extended ids: < V base vocabulary, >= V new rows
    segment: torch.Tensor      # (B, L) bool, motion-code positions (bidirectional block)
    valid: torch.Tensor        # (B, L) bool, not padding
    motion_targets: torch.Tensor  # (B, L) code to predict at masked motion positions, -100 elsewhere
    text_targets: torch.Tensor    # (B, L) next text token to predict from this position, -100 elsewhere


class MotionLM(nn.Module):
    def __init__(self, config: GeneratorConfig, base_model, text_tokenizer, lora: bool = True,
                 init_rows: bool = True):
        """lora: wrap the base's linear layers in peft LoRA layers (to train, or to save an
        adapter); without, the base stands alone and `merge_lora` folds an adapter into it.
        init_rows: draw the new rows (False: they are about to be loaded)."""
        super().__init__()
        self.config = config
        self.text_tokenizer = text_tokenizer
        self.training_record: dict | None = None  # what training wrote in generator.json, once loaded
        base_model.requires_grad_(False)
        emb = base_model.get_input_embeddings().weight
        self.base_vocab = emb.shape[0]
        self.eos_id = text_tokenizer.eos_token_id
        if lora:
            from peft import LoraConfig, get_peft_model

            self.lm = get_peft_model(base_model, LoraConfig(
                r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                target_modules=config.target_modules, bias="none"))
        else:
            self.lm = base_model
        rows = len(SPECIAL_TOKENS) + config.codebook_size
        self.new_tokens = nn.Embedding(rows, emb.shape[1], _weight=torch.empty(rows, emb.shape[1]))
        if init_rows:
            with torch.no_grad():  # start where the base vocabulary lives, so norms match
                mean, std = emb.float().mean(0), emb.float().std(0)
                self.new_tokens.weight.copy_(mean + std * torch.randn(rows, emb.shape[1]) * 0.5)

    # -- ids ---------------------------------------------------------------------------------
    def special(self, k: int) -> int:
        return self.base_vocab + k

    def motion_id(self, code: torch.Tensor | int):
        return code + self.base_vocab + len(SPECIAL_TOKENS)

    @property
    def base(self) -> nn.Module:
        """The Llama model itself (with LoRA layers injected where peft wraps it)."""
        return self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm

    @property
    def decoder(self) -> nn.Module:
        """The Llama trunk."""
        return self.base.model

    # -- LoRA folded in without peft -----------------------------------------------------------
    def lora_layers(self, state: dict[str, torch.Tensor]) -> dict[str, nn.Linear]:
        """The base's linear layers an adapter's tensors (peft's file names) adapt, by name."""
        if hasattr(self.lm, "get_base_model"):
            raise ValueError("lora_layers is for a model built with lora=False")
        out = {}
        for key in state:
            if key.endswith(".lora_A.weight") and key.startswith(ADAPTER_PREFIX):
                name = key[len(ADAPTER_PREFIX): -len(".lora_A.weight")]
                layer = self.lm.get_submodule(name)
                if not isinstance(layer, nn.Linear) or key.replace("lora_A", "lora_B") not in state:
                    raise ValueError(f"adapter tensor {key} does not fit the base model")
                out[name] = layer
        if not out or len(out) * 2 != len(state):
            raise ValueError("adapter does not fit the base model: it names no LoRA layer of it, or other tensors")
        return out

    @torch.no_grad()
    def merge_lora(self, state: dict[str, torch.Tensor], scaling: float,
                   base: dict[str, torch.Tensor] | None = None) -> None:
        """W = W0 + scaling * B @ A on every adapted layer, W0 its weight now or `base[name]`,
        rounded as peft's merge rounds it (computed in float32 on the CPU for half-precision
        weights, then cast), so a merged model decodes the same codes either way. The merged
        weight is written into the layer's own (where it is not W0: W0 is left as it was,
        memory-mapped from the base's file)."""
        for name, layer in self.lora_layers(state).items():
            w = layer.weight if base is None else base[name].to(layer.weight.device)
            a = state[ADAPTER_PREFIX + name + ".lora_A.weight"].to(w.device, w.dtype)
            b = state[ADAPTER_PREFIX + name + ".lora_B.weight"].to(w.device, w.dtype)
            if b.shape[0] != w.shape[0] or a.shape[1] != w.shape[1] or a.shape[0] != b.shape[1]:
                raise ValueError(f"adapter layer {name} is {tuple(b.shape)} x {tuple(a.shape)}, "
                                 f"the base's {tuple(w.shape)}")
            upcast = w.device.type == "cpu" and w.dtype in (torch.float16, torch.bfloat16)
            delta = (b.float() @ a.float()) * scaling if upcast else (b @ a) * scaling
            merged = w + delta.to(w.dtype)
            if layer.weight.data_ptr() == w.data_ptr():  # never written into: the base as loaded
                layer.weight = nn.Parameter(merged, requires_grad=False)
            else:  # in place, so a fused matrix the weight is a view of sees it too
                layer.weight.data.copy_(merged)

    def fuse(self) -> None:
        """On the engine's own trunk, one matrix for q, k, v and one for gate, up (one product
        each instead of three and two; backend.models.llama.fuse). Merges after it write into it."""
        from backend.models import llama

        if isinstance(self.lm, llama.LlamaLM):
            llama.fuse(self.lm)

    @contextlib.contextmanager
    def _checked_layers(self, check):
        """Call check(fraction) before each decoder layer, so a cancel (check raises) lands
        within one layer's time, not one whole pass of a 16-variation batch (seconds)."""
        if check is None:
            yield
            return
        layers = list(self.decoder.layers)
        hooks = [layer.register_forward_pre_hook(lambda *_, k=k: check(k / len(layers)))
                 for k, layer in enumerate(layers)]
        try:
            yield
        finally:
            for h in hooks:
                h.remove()

    # -- forward -----------------------------------------------------------------------------
    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        base_emb = self.base.get_input_embeddings()
        is_new = ids >= self.base_vocab
        out = base_emb(ids.clamp(max=self.base_vocab - 1))
        new = self.new_tokens((ids - self.base_vocab).clamp(min=0)).to(out.dtype)
        return torch.where(is_new[..., None], new, out)

    @staticmethod
    def attention_mask(segment: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, 1, L, L) bool: causal, plus motion codes seeing each other, never padding."""
        L = segment.shape[1]
        causal = torch.tril(torch.ones(L, L, dtype=torch.bool, device=segment.device))
        both = segment[:, :, None] & segment[:, None, :]
        allow = (causal[None] | both) & valid[:, None, :]
        allow |= torch.eye(L, dtype=torch.bool, device=segment.device)[None]  # no empty rows
        return allow[:, None]

    def hidden(self, ids: torch.Tensor, segment: torch.Tensor, valid: torch.Tensor,
               past=None, use_cache: bool = False):
        out = self.decoder(inputs_embeds=self.embed(ids), attention_mask=self.attention_mask(segment, valid),
                           past_key_values=past, use_cache=use_cache)
        return out

    def motion_logits(self, h: torch.Tensor) -> torch.Tensor:
        return h @ self.motion_rows().to(h.dtype).T  # tied, like the base model's own head

    def text_logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.base.get_output_embeddings()(h)

    def motion_rows(self) -> torch.Tensor:
        """(codes, D) the motion codes' embeddings (input rows and, tied, output head)."""
        return self.new_tokens.weight[len(SPECIAL_TOKENS):]

    def loss(self, batch: Batch, per: tuple[float, float] | None = None,
             hidden: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """Mean cross-entropy of the motion targets plus that of the caption tokens. `per`: what
        the summed motion and text losses are divided by instead of their counts in this batch
        (a distributed step's slice divides by the global batch's counts over the world size).
        `hidden`: the batch's last hidden states, when the caller has them already."""
        h = self.hidden(batch.ids, batch.segment, batch.valid).last_hidden_state if hidden is None else hidden
        logs, total = {}, h.new_zeros(())
        for key, targets, head, k in (("motion", batch.motion_targets, self.motion_logits, 0),
                                      ("text", batch.text_targets, self.text_logits, 1)):
            chosen = targets >= 0
            if chosen.any():
                if per is None:
                    part = F.cross_entropy(head(h[chosen]).float(), targets[chosen])
                else:
                    part = F.cross_entropy(head(h[chosen]).float(), targets[chosen], reduction="sum") / per[k]
                total = total + part
                logs[key] = part.item()
        return total, logs

    # -- sequences ---------------------------------------------------------------------------
    def text_ids(self, text: str) -> list[int]:
        return self.text_tokenizer(text, add_special_tokens=False).input_ids[: self.config.max_text_tokens]

    def sequence(self, task: int, text: str, codes: list[int], caption: str | None = None
                 ) -> tuple[list[int], int]:
        """Ids for one example and the index of its first motion code. codes: -1 = masked."""
        if len(codes) > self.config.max_motion_tokens:
            raise ValueError(f"{len(codes)} motion tokens; this model takes at most "
                             f"{self.config.max_motion_tokens}")
        head = [self.special(task)] + (self.text_ids(text) if text else []) + [self.special(MOT)]
        body = [self.special(MASK) if c < 0 else int(self.motion_id(c)) for c in codes]
        tail = [self.special(EMOT)]
        if caption is not None:
            tail += self.text_ids(caption) + [self.eos_id]
        return head + body + tail, len(head)

    def collate(self, examples: list[tuple[list[int], int, int, list[int], int]]) -> Batch:
        """examples: (ids, start, length, motion targets, caption start or -1).

        [start, start + length) is the bidirectional motion block (length 0: all causal);
        motion targets are aligned with ids (-100 = none), so a causal example can put the
        code of position p + 1 at p. Caption tokens are predicted from the position before."""
        L = max(len(e[0]) for e in examples)
        B = len(examples)
        ids = torch.full((B, L), self.eos_id, dtype=torch.long)
        segment = torch.zeros((B, L), dtype=torch.bool)
        valid = torch.zeros((B, L), dtype=torch.bool)
        mt = torch.full((B, L), -100, dtype=torch.long)
        tt = torch.full((B, L), -100, dtype=torch.long)
        for b, (seq, start, n, targets, cap_start) in enumerate(examples):
            ids[b, : len(seq)] = torch.tensor(seq)
            valid[b, : len(seq)] = True
            segment[b, start: start + n] = True
            mt[b, : len(targets)] = torch.tensor(targets)
            if cap_start >= 0:  # position p predicts token p + 1, from the </mot> on
                tt[b, cap_start - 1: len(seq) - 1] = torch.tensor(seq[cap_start:])
        return Batch(ids, segment, valid, mt, tt)

    # -- decoding ----------------------------------------------------------------------------
    @staticmethod
    def _sample(logits: torch.Tensor, temperature: float, top_k: int,
                generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., K) logits -> (codes (...), their probabilities (...)); temperature 0 is greedy."""
        logits = logits.float() / max(temperature, 1e-5)
        if top_k:
            kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = logits.softmax(-1)
        if temperature > 0:
            flat = probs.reshape(-1, probs.shape[-1])
            # Drawn where the seeded generator lives (the engine's is on the CPU), so a seed gives
            # the same codes on any device and CUDA does not refuse a CPU generator.
            where = generator.device if generator is not None else flat.device
            codes = torch.multinomial(flat.to(where), 1, generator=generator).to(flat.device).view(probs.shape[:-1])
        else:
            codes = probs.argmax(-1)
        return codes, probs.gather(-1, codes[..., None])[..., 0]

    def _prefix_rows(self, task: int, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """[task] text <|mot|> per row, right-padded as in training -> (ids (R, P), keep (R, P)
        the positions that are not padding, starts (R,) where each row's motion begins)."""
        device = self.new_tokens.weight.device
        heads = [self.sequence(task, text, [])[0][:-1] for text in texts]  # all but <|/mot|>
        batch = self.collate([(head, 0, 0, [], -1) for head in heads])
        ids, keep = batch.ids.to(device), batch.valid.to(device)
        return ids, keep, keep.sum(1)

    def _prefix_cache(self, task: int, texts: list[str]):
        """Run the prefix rows once; every decoding step reuses their keys and values
        -> (cache, starts, keep, last hidden (R, H))."""
        ids, keep, starts = self._prefix_rows(task, texts)
        out = self.hidden(ids, torch.zeros_like(keep), keep, use_cache=True)
        last = out.last_hidden_state[torch.arange(len(texts), device=ids.device), starts - 1]
        return out.past_key_values, starts, keep, last

    def _guided_texts(self, text: str, batch: int, guidance: float) -> list[str]:
        """`batch` rows with the text and, with guidance, `batch` more with no text (the model saw
        captions dropped in training, so it knows the unconditional distribution too). Both halves
        run as one batch: on this CPU a forward of 2 x 40 motion tokens costs about 1.4x one of 40."""
        return [text] * batch + ([""] * batch if guidance != 1.0 else [])

    def _guided(self, task: int, text: str, batch: int, guidance: float):
        return self._prefix_cache(task, self._guided_texts(text, batch, guidance))

    def _mix(self, logits: torch.Tensor, batch: int, guidance: float) -> torch.Tensor:
        """Classifier-free guidance over rows [with text; without]: uncond + g * (cond - uncond)."""
        if logits.shape[0] == batch:
            return logits
        cond, uncond = logits.float().split(batch)
        return uncond + guidance * (cond - uncond)

    @torch.no_grad()
    def fill(self, text: str, codes: torch.Tensor, steps: int = 8, temperature: float = 1.0,
             top_k: int = 0, generator: torch.Generator | None = None, task: int = T2M,
             on_step=None, guidance: float = 1.0) -> torch.Tensor:
        """MMM-style parallel decoding. codes (B, N) long, -1 where masked -> (B, N) all filled,
        on the CPU.

        Each pass predicts every masked code at once, keeps the most confident and re-masks the
        rest on a cosine schedule, so N codes take `steps` passes, not N. The text prefix is
        encoded once and cached; each pass runs only the N motion positions. guidance > 1 runs
        each pass also without the text and pushes the logits away from that (classifier-free
        guidance). on_step(done, total) is called after every pass, and with a fractional `done`
        before every decoder layer (it may raise to cancel).
        """
        device = self.new_tokens.weight.device
        codes = codes.clone().to(device)
        B, N = codes.shape
        step = [0]
        check = None if on_step is None else (lambda f: on_step(step[0] + f, steps))
        with self._checked_layers(check):
            return self._fill(text, codes, steps, temperature, top_k, generator, task, on_step, guidance, step)

    def _fill(self, text, codes, steps, temperature, top_k, generator, task, on_step, guidance, step):
        device = codes.device
        B, N = codes.shape
        ids, keep, starts = self._prefix_rows(task, self._guided_texts(text, B, guidance))
        R, P = ids.shape
        # Motion queries see their row's prefix and every motion position (the training mask).
        allow = torch.cat([keep, torch.ones((R, N), dtype=torch.bool, device=device)], 1)[:, None, None]
        allow = allow.expand(R, 1, N, allow.shape[-1])
        positions = starts[:, None] + torch.arange(N, device=device)
        # The first pass runs with the prefix in one forward (the prefix is causal, so its keys
        # and values are those it has alone): one forward fewer per generate.
        segment = torch.cat([torch.zeros_like(keep), torch.ones((R, N), dtype=torch.bool, device=device)], 1)
        first_mask = self.attention_mask(segment, torch.cat([keep, segment[:, P:]], 1))
        first_positions = torch.cat([torch.arange(P, device=device).expand(R, P), positions], 1)
        past = None
        total = (codes < 0).sum(1)
        for s in range(1, steps + 1):
            masked = codes < 0
            if not masked.any():
                break
            body = self.embed(torch.where(masked, self.special(MASK), self.motion_id(codes.clamp(min=0))))
            body = body.repeat(R // B, 1, 1)
            if past is None:
                out = self.decoder(inputs_embeds=torch.cat([self.embed(ids), body], 1), attention_mask=first_mask,
                                   use_cache=True, position_ids=first_positions)
                past, h = out.past_key_values, out.last_hidden_state[:, P:]
            else:
                h = self.decoder(inputs_embeds=body, attention_mask=allow, past_key_values=past,
                                 use_cache=True, position_ids=positions).last_hidden_state
            past.crop(-N)  # drop this pass's N motion keys; the prefix stays
            sample, conf = self._sample(self._mix(self.motion_logits(h), B, guidance),
                                        temperature, top_k, generator)
            conf = torch.where(masked, conf, torch.full_like(conf, float("inf")))
            keep_masked = torch.floor(total.float() * math.cos(math.pi / 2 * s / steps)).long()
            rank = torch.empty_like(codes)
            rank.scatter_(1, conf.argsort(dim=1), torch.arange(N, device=device).expand(B, N))
            codes = torch.where(masked & (rank >= keep_masked[:, None]), sample, codes)
            step[0] = s
            if on_step is not None:
                on_step(s, steps)
        return codes.cpu()

    @torch.no_grad()
    def next_token(self, text: str, n: int, batch: int = 1, temperature: float = 1.0, top_k: int = 0,
                   generator: torch.Generator | None = None, on_step=None, guidance: float = 1.0) -> torch.Tensor:
        """Token-by-token decoding with a KV cache (the <|next|> task) -> (batch, n) codes on the CPU.
        guidance > 1 as in fill. on_step(done, n) after every token (it may raise to cancel)."""
        past, starts, keep, h = self._guided(NEXT, text, batch, guidance)
        R = len(starts)
        codes = []
        for i in range(n):
            code, _ = self._sample(self._mix(self.motion_logits(h), batch, guidance),
                                   temperature, top_k, generator)
            codes.append(code)
            keep = torch.cat([keep, torch.ones((R, 1), dtype=torch.bool, device=keep.device)], 1)
            o = self.decoder(inputs_embeds=self.embed(self.motion_id(code)[:, None]).repeat(R // batch, 1, 1),
                             attention_mask=keep[:, None, None], past_key_values=past, use_cache=True,
                             position_ids=(starts + i)[:, None])
            past, h = o.past_key_values, o.last_hidden_state[:, -1]
            if on_step is not None:
                on_step(i + 1, n)
        return torch.stack(codes, dim=1).cpu()

    @torch.no_grad()
    def caption(self, codes: list[int], max_new: int = 32) -> str:
        """Greedy motion-to-text with a KV cache."""
        seq, start = self.sequence(CAPTION, "", codes)
        device = self.new_tokens.weight.device
        ids = torch.tensor([seq], device=device)
        segment = torch.zeros_like(ids, dtype=torch.bool)
        segment[:, start: start + len(codes)] = True
        out = self.hidden(ids, segment, torch.ones_like(segment), use_cache=True)
        past, h = out.past_key_values, out.last_hidden_state[:, -1]
        words: list[int] = []
        pos = ids.shape[1]
        for _ in range(max_new):
            nxt = int(self.text_logits(h).argmax(-1))
            if nxt == self.eos_id:
                break
            words.append(nxt)
            o = self.decoder(inputs_embeds=self.embed(torch.tensor([[nxt]], device=device)), past_key_values=past,
                             use_cache=True, position_ids=torch.tensor([[pos]], device=device))
            past, h, pos = o.past_key_values, o.last_hidden_state[:, -1], pos + 1
        return self.text_tokenizer.decode(words, skip_special_tokens=True).strip()

    # -- files -------------------------------------------------------------------------------
    def save_pretrained(self, directory: Path, extra: dict | None = None) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.lm.save_pretrained(str(directory / "adapter"))
        save_file({"new_tokens": self.new_tokens.weight.detach().float().contiguous()},
                  str(directory / "new_tokens.safetensors"))
        meta = {"format_version": FORMAT_VERSION, "config": asdict(self.config),
                "special_tokens": list(SPECIAL_TOKENS), "base_vocab": self.base_vocab, "eos_id": self.eos_id,
                **(extra or {})}
        (directory / "generator.json").write_text(json.dumps(meta, indent=1))
        for written in ("generator.json", "new_tokens.safetensors", "adapter/adapter_model.safetensors",
                        "adapter/adapter_config.json"):
            weights_file.record(directory / written)

    @classmethod
    def from_pretrained(cls, directory: Path, base: str | None = None, dtype: torch.dtype = torch.float32,
                        cache_dir: Path | None = None, lora: bool = True) -> "MotionLM":
        """Load the adapter and new rows onto the base (the saved one, or `base` to swap in
        another Llama checkpoint of the same shape). lora=False: no peft; the adapter's tensors
        are left in `.adapter_state` (in `dtype`) for `merge_lora`, the base as loaded."""
        directory = Path(directory)
        meta = weights_file.read_meta(directory, "generator", FORMAT_VERSION, "generator")
        if meta.get("special_tokens") != list(SPECIAL_TOKENS):
            raise ValueError(f"{directory / 'generator.json'} was trained with other special tokens")
        config = GeneratorConfig(**meta["config"])
        if base:
            config.base = base
        model, tok = load_base(config.base, dtype, cache_dir, inference=not lora)
        lm = cls(config, model, tok, lora=lora, init_rows=False)
        lm.training_record = meta.get("training")
        if lm.base_vocab != meta["base_vocab"]:
            raise ValueError(f"base model has {lm.base_vocab} tokens, the adapter expects {meta['base_vocab']}")
        # The end of a caption is the token it was trained with: transformers releases read the
        # GGUF's end-of-text token differently (5.17 <|im_start|>, 5.23 <|im_end|>).
        eos = meta.get("eos_id", lm.eos_id)
        if not (isinstance(eos, int) and 0 <= eos < lm.base_vocab):
            raise ValueError(f"{directory / 'generator.json'} names end-of-text token {eos!r}, "
                             f"not one of the base's {lm.base_vocab}")
        lm.eos_id = eos
        rows = weights_file.read_tensors(directory / "new_tokens.safetensors")["new_tokens"]
        if rows.shape != lm.new_tokens.weight.shape:
            raise ValueError(f"new_tokens.safetensors is {tuple(rows.shape)}, expected "
                             f"{tuple(lm.new_tokens.weight.shape)}")
        lm.new_tokens.weight.data.copy_(rows)
        adapter = weights_file.read_tensors(directory / "adapter" / "adapter_model.safetensors")
        if not lora:
            lm.lora_layers(adapter)  # checked here, as peft's loading checks it
            lm.adapter_state = {k: v.to(dtype) for k, v in adapter.items()}
            return lm.to(dtype).eval()
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(lm.lm, adapter)
        if getattr(result, "unexpected_keys", None):
            raise ValueError(f"adapter does not fit the base model: unexpected {result.unexpected_keys[:3]}")
        return lm.to(dtype).eval()
