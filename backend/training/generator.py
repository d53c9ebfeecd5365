"""Training the motion language model (`dynamicpose train generator`)."""
from __future__ import annotations

import itertools
import json
import math
import random
from dataclasses import asdict, astuple, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from backend.data import captions as cap
from backend.data.captions import clip_texts
from backend.data.dataset import Dataset, mirrored_features
from backend.models.generator import CAPTION, INFILL, NEXT, T2M, Batch, GeneratorConfig, MotionLM
from backend.models.llm import load_base
from backend.models.tokenizer import MotionTokenizer
from backend.options import option
from backend.training import checkpoint, contrastive
from backend.training.contrastive import BatchContrast, Pairs
from backend.training.distributed import World, replicate
from backend.training.loop import Loop, seeded
from backend.training.loop import run as run_loop
from backend.training.plots import save_loss_curve
from motioncore import canonical, features


@dataclass
class GeneratorTraining:
    """How the generator is trained. The shipped weights came in sittings; each one's settings
    are in their generator.json (`training`, then `init_from` for the one before)."""

    steps: int = option(1500, "optimizer steps")
    batch: int = option(16, "examples per step")
    lr: float = option(5e-4, "LoRA learning rate (new token rows: new_token_lr)")
    new_token_lr: float = 2e-3
    warmup: int = 50
    max_tokens: int = 40        # longest training window, in motion tokens (8 s)
    min_tokens: int = 4
    caption_share: float = 0.25  # fraction of examples that are motion-to-text
    next_share: float = 0.15     # fraction that are causal next-token text-to-motion
    span_share: float = 0.3      # fraction of masked examples masked as spans (in-betweening)
    text_dropout: float = 0.1
    wide_captions: int = option(12, "paraphrases per clip from the wider wordings, besides the template ones (0: none)")
    word_noise: float = option(0.5, "fraction of text-to-motion examples whose caption has words dropped or swapped "
                                    "for random ones (captions.noisy; 0: none)")
    compose_share: float = option(0.0, "fraction of examples from composed clips (two actions joined by the "
                                       "in-betweener: chained captions, and infill that follows the second's text)")
    composed: int = option(2000, "composed clips to draw from when --compose-share is on")
    contrastive: float = option(0.0, "weight of DynamicPoseNet's stochastic batch contrastive loss: each masked example's "
                                     "text and motion pulled together, the batch's other pairs pushed apart "
                                     "(training.contrastive; 0: off)")
    balance: float = option(0.0, "draw clips with weight 1 / (clips of their content) ** balance, so rare contents "
                                 "are not drowned (0: every clip alike; 0.5: square-root balancing; 1: every content alike)")
    mirror: bool = True
    bf16: bool = option(True, "bfloat16 autocast (off: float32 throughout)")
    seed: int = option(0, "random seed")
    save_every: int = 250
    minutes: float = option(0.0, "stop after this many minutes (0: no limit)")
    stop_at: int = option(0, "stop after this step, with a checkpoint to go on from (0: run to --steps)")
    threads: int = option(0, "torch threads (0: torch's choice)")
    device: str = option("auto", "auto (CUDA, then MPS, then CPU), cpu, cuda, mps")

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch < 1:
            raise ValueError("steps and batch must be at least 1")
        if self.stop_at < 0:
            raise ValueError(f"stop_at must be 0 or more, got {self.stop_at}")
        if self.wide_captions < 0:
            raise ValueError(f"wide_captions must be 0 or more, got {self.wide_captions}")
        if not 1 <= self.min_tokens <= self.max_tokens:
            raise ValueError(f"need 1 <= min_tokens <= max_tokens, got {self.min_tokens}, {self.max_tokens}")
        if not 0 <= self.balance <= 1:
            raise ValueError(f"balance must be in [0, 1], got {self.balance}")
        if self.contrastive < 0:
            raise ValueError(f"contrastive must be 0 or more, got {self.contrastive}")
        if self.composed < 1:
            raise ValueError(f"composed must be at least 1, got {self.composed}")
        for name in ("caption_share", "next_share", "span_share", "text_dropout", "word_noise", "compose_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


@dataclass
class TokenClip:
    codes: np.ndarray
    captions: list[str]
    content: str
    style: str
    second: int = -1  # composed clips: the token where the join to the second action starts
    second_captions: list[str] = field(default_factory=list)


def composed_clips(ds: Dataset, tokenizer: MotionTokenizer, inbetweener, count: int, rng: random.Random,
                   progress: bool = True) -> list[TokenClip]:
    """`count` composed clips of the train split (backend.data.compose), each with chained
    captions and the second action's own."""
    from backend.data import compose

    recorded = [(features.from_features(ds.clip_features(c), canonical.MODEL_FPS), c.content, c.style)
                for c in ds.split("train") if c.content != "unlabelled"]
    out = []
    for made in tqdm(compose.compose(recorded, count, inbetweener.inbetween, rng), total=count, desc="composing",
                     unit="clip", disable=not progress):
        (_, style), (content2, style2) = made.parts[0], made.parts[1]
        captions = [cap.chained_caption(made.parts, rng) for _ in range(6)]
        join = (made.second_start - round(compose.JOIN_SECONDS * made.motion.fps)) // tokenizer.config.down
        out.append(TokenClip(tokenizer.encode(features.to_features(made.motion)), captions, made.parts[0][0], style,
                             join, cap.captions_for(content2, style2, n=6, seed=rng.random(), wide=True)))
    return out


def tokenize_split(ds: Dataset, tokenizer: MotionTokenizer, split: str, mirror: bool,
                   wide_captions: int = 0, progress: bool = True) -> list[TokenClip]:
    """Motion tokens for every clip of a split (and its mirror, captions relabelled). Clips
    without captions get an empty text and teach motion infill only."""
    out = []
    for c in tqdm(ds.split(split), desc=f"tokenizing {split}", unit="clip", disable=not progress):
        f = ds.clip_features(c)
        for mirrored, content, texts in clip_texts(c, mirror, wide_captions):
            codes = tokenizer.encode(mirrored_features(f) if mirrored else f)
            out.append(TokenClip(codes, texts or [""], content, c.style))
    return out


def clip_weights(clips: list[TokenClip], balance: float) -> list[float]:
    """Each clip's chance of being drawn, in proportion: 1 / (clips of its content) ** balance."""
    counts: dict[str, int] = {}
    for c in clips:
        counts[c.content] = counts.get(c.content, 0) + 1
    return [counts[c.content] ** -balance for c in clips]


def cosine_mask_ratio(rng: random.Random) -> float:
    """MMM's schedule: most examples heavily masked, some lightly."""
    return math.cos(math.pi / 2 * rng.random())


def noise_vocabulary(model: MotionLM) -> list[str]:
    """The words captions are noised with: the base tokenizer's plain words, less the caption
    tables' and those of the out-of-template and chained prompts (so those stay unseen)."""
    from backend.data.prompts import CHAINED, OUT_OF_TEMPLATE

    prompts = [p for p, *_ in OUT_OF_TEMPLATE + CHAINED]
    prompt_words = {w.strip(".,").lower() for p in prompts for w in p.replace("-", " ").split()}
    return cap.noise_words(model.text_tokenizer.get_vocab(), exclude=prompt_words)


def make_example(model: MotionLM, clip: TokenClip, training: GeneratorTraining, rng: random.Random,
                 length: int | None = None, noise: list[str] | None = None):
    """One training example from a random window of the clip (`length` tokens when given,
    so a batch can share one length and carry little padding); text-to-motion captions are
    noised from `noise` at the rate training.word_noise."""
    if clip.second >= 0:
        return _composed_example(model, clip, training, rng)
    n = min(len(clip.codes), training.max_tokens)
    n = min(length, n) if length else rng.randint(min(training.min_tokens, n), n)
    start = rng.randint(0, len(clip.codes) - n)
    codes = [int(c) for c in clip.codes[start: start + n]]
    text = rng.choice(clip.captions)
    roll = rng.random()
    if roll < training.caption_share and text:
        seq, mstart = model.sequence(CAPTION, "", codes, caption=text)
        return seq, mstart, n, [-100] * len(seq), mstart + n + 1
    if noise and text and rng.random() < training.word_noise:  # a condition, never a caption target
        text = cap.noisy(text, rng, noise)
    if roll < training.caption_share + training.next_share:  # causal: position p predicts code p + 1
        seq, mstart = model.sequence(NEXT, text, codes)
        targets = [-100] * len(seq)
        targets[mstart - 1: mstart - 1 + n] = codes
        return seq, 0, 0, targets, -1
    if rng.random() < training.span_share:  # one or more contiguous gaps, as in in-betweening
        masked = [False] * n
        for _ in range(rng.randint(1, 2)):
            length = rng.randint(1, max(1, n - 1))
            s = rng.randint(0, n - length)
            masked[s: s + length] = [True] * length
        task = INFILL
    else:
        k = max(1, round(cosine_mask_ratio(rng) * n))
        chosen = set(rng.sample(range(n), k))
        masked = [i in chosen for i in range(n)]
        task = T2M
    if rng.random() < training.text_dropout:
        text = ""
    shown = [-1 if m else c for c, m in zip(codes, masked)]
    seq, mstart = model.sequence(task, text, shown)
    targets = [-100] * len(seq)
    targets[mstart: mstart + n] = [c if m else -100 for c, m in zip(codes, masked)]
    return seq, mstart, n, targets, -1


def _composed_example(model: MotionLM, clip: TokenClip, training: GeneratorTraining, rng: random.Random):
    """A composed clip whole (its caption names both actions in order): half the time the join
    and the second action masked with the second's own caption (infill that follows its text,
    as between an animator's keys), else masked at MMM's ratio under the chained caption."""
    codes = [int(c) for c in clip.codes[: training.max_tokens]]
    n = len(codes)
    if rng.random() < 0.5:
        text = rng.choice(clip.second_captions)
        masked = [i >= clip.second for i in range(n)]
        task = INFILL
    else:
        text = rng.choice(clip.captions)
        chosen = set(rng.sample(range(n), max(1, round(cosine_mask_ratio(rng) * n))))
        masked = [i in chosen for i in range(n)]
        task = T2M
    shown = [-1 if m else c for c, m in zip(codes, masked)]
    seq, mstart = model.sequence(task, text, shown)
    targets = [-100] * len(seq)
    targets[mstart: mstart + n] = [c if m else -100 for c, m in zip(codes, masked)]
    return seq, mstart, n, targets, -1


class _Objective(torch.nn.Module):
    """The training loss as a module's forward: the call DistributedDataParallel hooks into.
    With `contrast`, the batch contrastive term is added at `weight` (over this process's pairs)."""

    def __init__(self, model: MotionLM, contrast: BatchContrast | None = None, weight: float = 0.0):
        super().__init__()
        self.model = model
        self.contrast = contrast
        self.weight = weight

    def forward(self, batch: Batch, per: tuple[float, float] | None = None, pairs: Pairs | None = None):
        h = self.model.hidden(batch.ids, batch.segment, batch.valid).last_hidden_state
        loss, logs = self.model.loss(batch, per, hidden=h)
        if self.contrast is not None and pairs is not None:
            term = self.contrast(h, self.model.motion_rows(), pairs)
            if term is not None:
                loss = loss + self.weight * term
                logs["contrast"] = term.item()
        return loss, logs


def batch_pairs(model: MotionLM, examples: list, drawn: list[TokenClip]) -> Pairs:
    """The text-to-motion pairs of a batch for the contrastive term, labelled by what their clips
    show (a composed clip by itself: another one's two parts are seldom the same)."""
    labels = [f"{c.content}/{c.style}" if c.second < 0 else f"composed {id(c)}" for c in drawn]
    # A recorded clip's caption says what its whole window shows, masked or infilled; a composed
    # clip's infill is under the second action's caption alone, which is not the window's.
    t2m = [e[0][0] == model.special(T2M) or (e[0][0] == model.special(INFILL) and c.second < 0)
           for e, c in zip(examples, drawn)]
    return contrastive.pairs_of(examples, labels, t2m, lambda i: i - model.motion_id(0))


def train(ds: Dataset, tokenizer: MotionTokenizer, config: GeneratorConfig, training: GeneratorTraining,
          out: Path, resume: bool = True, progress: bool = True, cache_dir: Path | None = None,
          init_from: Path | None = None, splits: tuple[str, ...] = ("train",),
          stop=None, world: World = World(), inbetweener=None) -> tuple[MotionLM, dict]:
    """Train from a fresh adapter, or go on from the model in `init_from` (a user's adapter on
    top of the default). Checkpoints go to out/generator_checkpoint, the model to out/.
    `stop(step, outcome)`: see training.loop.run (the model trained so far is saved).
    `world`: this process's place among several (training.distributed); rank 0 writes.
    `inbetweener` joins the composed clips (needed when training.compose_share is on)."""
    if training.batch < world.size:
        raise ValueError(f"a batch of {training.batch} cannot be shared by {world.size} processes")
    progress = progress and world.main
    rng = seeded(training.seed, training.threads)
    if init_from is not None:
        model = MotionLM.from_pretrained(init_from, cache_dir=cache_dir)
        model.train()
        config = model.config
    else:
        config.codebook_size = tokenizer.config.codebook_size
        base, text_tok = load_base(config.base, torch.float32, cache_dir)
        model = MotionLM(config, base, text_tok)
    if model.config.codebook_size != tokenizer.config.codebook_size:
        raise ValueError(f"the generator has {model.config.codebook_size} motion codes, "
                         f"the tokenizer {tokenizer.config.codebook_size}")
    clips = [c for split in splits for c in tokenize_split(ds, tokenizer, split, training.mirror, training.wide_captions,
                                                                    progress)]
    if not clips:
        raise ValueError("no training clips to learn from")
    noise = noise_vocabulary(model) if training.word_noise else None
    from backend.device import pick_device

    device = world.device(pick_device(training.device))
    model.to(device)
    lora = [p for n, p in model.lm.named_parameters() if p.requires_grad]
    groups = [{"params": lora, "lr": training.lr},
              {"params": model.new_tokens.parameters(), "lr": training.new_token_lr}]
    trainable = torch.nn.ModuleDict({"lm": model.lm, "new_tokens": model.new_tokens})
    contrast = None
    if training.contrastive:
        with torch.random.fork_rng(devices=[]):  # its own seeded start, the global generator left as it was
            torch.manual_seed(training.seed)
            contrast = BatchContrast(model.new_tokens.embedding_dim).to(device)
        groups.append({"params": contrast.parameters(), "lr": training.new_token_lr})
        trainable["contrast"] = contrast  # checkpointed with the rest, so a resume goes on alike
    opt = torch.optim.AdamW(groups, weight_decay=0.0)
    sched = checkpoint.warmup_cosine(opt, training.warmup, training.steps)
    objective = replicate(_Objective(model, contrast, training.contrastive), world, device)
    if training.balance:
        cumulative = list(itertools.accumulate(clip_weights(clips, training.balance)))
        draw_recorded = lambda: rng.choices(clips, cum_weights=cumulative)[0]  # noqa: E731
    else:  # as the shipped weights were trained: the same draws from the same seed
        draw_recorded = lambda: rng.choice(clips)  # noqa: E731
    draw = draw_recorded
    if training.compose_share:
        if inbetweener is None:
            raise ValueError("composed clips need an in-betweener to join them")
        pool = composed_clips(ds, tokenizer, inbetweener, training.composed, random.Random(training.seed), progress)
        draw = lambda: rng.choice(pool) if rng.random() < training.compose_share else draw_recorded()  # noqa: E731
    tokens_seen = 0

    def step(_: int):
        nonlocal tokens_seen
        # Every rank draws the whole batch (the same RNG) and trains on its slice of it.
        length = rng.randint(training.min_tokens, training.max_tokens)
        drawn, examples = [], []
        for _ in range(training.batch):  # draw, then make: the order the random numbers were always taken in
            drawn.append(draw())
            examples.append(make_example(model, drawn[-1], training, rng, length, noise))
        per = None
        if world.distributed:
            whole = model.collate(examples)
            counts = [int((whole.motion_targets >= 0).sum()), int((whole.text_targets >= 0).sum())]
            per = tuple(max(n, 1) / world.size for n in counts)
            examples, drawn = world.shard(examples), world.shard(drawn)
        batch = model.collate(examples)
        batch = Batch(*(t.to(device) for t in astuple(batch)))
        pairs = batch_pairs(model, examples, drawn) if contrast is not None else None
        tokens_seen += int(batch.valid.sum())
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=training.bf16 and device.type != "mps"):
            loss, logs = objective(batch, per, pairs)
        if world.distributed:  # each rank's part of the global means: summed, they are the means
            parts = world.sum([logs.get("motion", 0.0) / world.size, logs.get("text", 0.0) / world.size])
            logs = {k: v for k, v, n in zip(("motion", "text"), parts, counts) if n}
        return loss, logs

    if training.stop_at:
        asked = stop
        stop = lambda step, outcome: step >= training.stop_at or bool(asked and asked(step, outcome))  # noqa: E731

    loop = Loop("generator", training.steps, training.seed, Path(out) / "generator_checkpoint", resume,
                save_every=training.save_every, minutes=training.minutes, smoothing=0.95,
                history_names={"motion": "motion loss", "text": "caption loss",
                               **({"contrast": "contrastive loss"} if contrast is not None else {})},
                progress=progress)
    run = run_loop(loop, trainable, opt, step, sched, rng=rng, stop=stop, world=world)
    model.to("cpu")  # saved and handed back on the CPU, where the engine decides the device
    tokens_seen = int(world.sum([tokens_seen])[0])
    result = {"steps": run.step, "train_seconds": round(run.seconds, 1), "resumed_from": run.resumed_from,
              "tokens_per_second": round(tokens_seen / max(run.seconds, 1e-9)), "training": asdict(training),
              "final_loss": {k: round(v, 4) for k, v in run.running.items()}, "stopped": run.stopped,
              "processes": world.size}
    if not world.main:
        return model, result
    if init_from is not None:
        # The parent's own record (and so its parents'), so the shipped weights carry their lineage.
        result["init_from"] = model.training_record
    model.save_pretrained(Path(out), extra={"training": result})
    save_loss_curve(run.history, Path(out) / "generator_loss.png", "motion LM (LoRA)")
    (Path(out) / "generator_metrics.json").write_text(json.dumps(result, indent=1))
    return model, result
