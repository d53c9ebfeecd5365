"""Training a user's own adapter from canonical motions (takes read off their rig by the
add-on, or BVH files) into the adapters folder: the generator's LoRA and new token rows trained
on from the model in use, nothing else of it changed.

The folder appears only once training has ended (from a hidden one beside it), so a list of
adapters never shows half of one; a stop part way (a cancel) still leaves a usable adapter of
the steps done."""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from backend import adapters as store
from backend.models import weights_file
from backend.models.basemodel import sha256
from backend.models.tokenizer import DECODER_FILE
from motioncore.limits import MAX_TEXT, MAX_TRAIN_BATCH, MAX_TRAIN_STEPS, training_problem

# progress(step, steps, motion loss, seconds left) after each step; True stops the training there.
Progress = Callable[[int, int, float | None, float | None], bool]


@dataclass(frozen=True)
class AdapterTraining:
    """A handful of clips, minutes on a laptop CPU: short windows, small batches, a high rate."""

    steps: int = 120
    batch: int = 8
    lr: float = 1e-3  # 5e-4 moved takes 10% toward 5 childish clips in 80 steps, 1e-3 14% in 120, 2e-3 no more
    # The motion decoder tuned on the clips, codes fixed: the shipped tokenizer's round trip of 5
    # childish clips lies 38 from them in the evaluator's space (as far as the LoRA's takes got);
    # 50 full passes at 5e-5 bring it to 6 (3-6 s) and cost 15-24% in decoding other styles'
    # clips (benchmarks/adapter_train.py).
    decoder_steps: int = 50
    decoder_lr: float = 5e-5
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= MAX_TRAIN_STEPS:
            raise ValueError(f"steps must be 1..{MAX_TRAIN_STEPS}, got {self.steps}")
        if not 1 <= self.batch <= MAX_TRAIN_BATCH:
            raise ValueError(f"batch must be 1..{MAX_TRAIN_BATCH}, got {self.batch}")
        if not 0 < self.lr <= 0.01:
            raise ValueError(f"the learning rate must be in (0, 0.01], got {self.lr}")
        if not 0 <= self.decoder_steps <= MAX_TRAIN_STEPS:
            raise ValueError(f"decoder_steps must be 0..{MAX_TRAIN_STEPS}, got {self.decoder_steps}")
        if not 0 < self.decoder_lr <= 0.01:
            raise ValueError(f"the decoder's learning rate must be in (0, 0.01], got {self.decoder_lr}")


def check_clips(motions: list, captions: list[str]) -> None:
    if problem := training_problem([(m.num_frames, m.fps) for m in motions]):
        raise ValueError(problem)
    if len(captions) != len(motions):
        raise ValueError(f"{len(motions)} clips but {len(captions)} captions; give one caption per clip")
    for i, texts in enumerate(captions):
        for text in [texts] if isinstance(texts, str) else texts:
            if not isinstance(text, str) or len(text) > MAX_TEXT:
                raise ValueError(f"caption {i + 1} must be a string of at most {MAX_TEXT} characters")
    if not any((t if isinstance(t, str) else " ".join(t)).strip() for t in captions):
        raise ValueError("give at least one clip a caption: an adapter learns what the words mean from them")


def train_adapter(weights: Path, name: str, motions: list, captions: list[str], training: AdapterTraining,
                  root: Path | None = None, device: str = "auto", progress: Progress | None = None,
                  cache_dir: Path | None = None, sources: list[str] | None = None) -> dict:
    """Train adapter `name` on `motions` (canonical) with their `captions`, on top of the model in
    `weights`; returns its info (adapter_info.json)."""
    from safetensors.torch import save_file

    from backend.data.dataset import from_motions
    from backend.models.tokenizer import MotionTokenizer
    from backend.training.generator import GeneratorTraining, train

    name = store.check_name(name)
    check_clips(motions, captions)
    root = Path(root) if root else store.adapters_dir()
    target = root / name
    if target.exists():
        raise ValueError(f"an adapter named {name!r} exists; pick another name (or remove that one)")
    model = store.identity(weights)
    ds = from_motions(motions, captions, sources)
    tokenizer = MotionTokenizer.for_generation(weights)
    longest = max(c.length for c in ds.clips) // tokenizer.config.down
    settings = GeneratorTraining(
        steps=training.steps, batch=training.batch, lr=training.lr, new_token_lr=4 * training.lr,
        warmup=min(10, training.steps), max_tokens=max(4, min(40, longest)), save_every=max(1, training.steps // 4),
        # The user's words and motions as they are: no template paraphrases, no noise, no mirror
        # (a limp or a wave on one side is what they keyed).
        wide_captions=0, word_noise=0.0, mirror=False, seed=training.seed, device=device,
        # Mostly text-to-motion: an adapter is for generating; its captioning overfits the few
        # captions within a hundred steps (text loss 0.04) and took a quarter of the examples.
        caption_share=0.05, next_share=0.1)
    work = root / f".training-{name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t0 = time.perf_counter()

    def stop(step: int, outcome) -> bool:
        if progress is None:
            return False
        spent = time.perf_counter() - t0
        left = spent / step * (training.steps - step) if step else None
        return bool(progress(step, training.steps, outcome.running.get("motion"), left))

    try:
        decoder = tune_decoder(tokenizer, motions, training, stop=lambda: bool(progress and progress(0, training.steps,
                                                                                                  None, None)))
        if decoder["steps"]:
            save_file({k: v.contiguous() for k, v in tokenizer.decoder.state_dict().items()}, str(work / DECODER_FILE))
        _, result = train(ds, tokenizer, None, settings, work, resume=False, progress=False, init_from=Path(weights),
                          splits=("train",), stop=stop, cache_dir=cache_dir)
        shutil.rmtree(work / "generator_checkpoint", ignore_errors=True)  # the saved adapter is the result
        weights_file.write_sums(work)
        info = {"name": name, "clips": len(motions), "captions": list(captions), "sources": sources or [],
                "steps": result["steps"], "steps_asked": training.steps, "batch": training.batch, "lr": training.lr,
                "seconds": round(result["train_seconds"] + decoder["seconds"], 1), "loss": result["final_loss"],
                "decoder": decoder,
                "stopped": "cancelled" if result["stopped"] else None, "created": store.now(),
                "trained_on": str(weights), "tokenizer_sha256": model["tokenizer_sha256"],
                "generator_sha256": sha256(Path(weights) / "generator.json")}
        store.write_info(work, info)
        work.rename(target)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return info


def tune_decoder(tokenizer, motions: list, training: AdapterTraining, stop: Callable[[], bool] | None = None) -> dict:
    """Tune `tokenizer`'s decoder (in place) to turn the clips' own motion codes back into the
    clips: the encoder and the codebook stay as they are, so the codes and the generator
    trained on them keep their meaning, and the clips' style lives in how codes are decoded.
    Full passes over every clip; `stop()` after each ends it early. {steps, loss, seconds}."""
    import torch

    from backend.models.kinematics import FeatureFK
    from backend.training.tokenizer import TokenizerTraining, decoding_loss
    from motioncore import canonical, features

    t0 = time.perf_counter()
    done, loss_value = 0, None
    if training.decoder_steps:
        pairs = []  # each clip's quantized codes, as decoding at inference sees them, and its features
        for m in motions:
            feats = features.to_features(m.resample(canonical.MODEL_FPS))
            with torch.no_grad():
                q = tokenizer.quantizer.from_index(torch.as_tensor(tokenizer.encode(feats), dtype=torch.long)[None])
            pairs.append((q, tokenizer.normalize(torch.as_tensor(feats, dtype=torch.float32))[None]))
        fk, losses = FeatureFK(), TokenizerTraining()  # the tokenizer's own loss and weights
        opt = torch.optim.AdamW(tokenizer.decoder.parameters(), lr=training.decoder_lr, weight_decay=0.0)
        tokenizer.decoder.requires_grad_(True).train()
        try:
            for done in range(1, training.decoder_steps + 1):
                loss = 0.0
                for q, x in pairs:
                    recon = tokenizer.decoder(q.transpose(1, 2)).transpose(1, 2)[:, : x.shape[1]]
                    loss = loss + decoding_loss(tokenizer, recon, x, losses, fk)
                loss = loss / len(pairs)
                opt.zero_grad()
                loss.backward()
                opt.step()
                loss_value = float(loss.detach())
                if stop is not None and stop():
                    break
        finally:
            tokenizer.decoder.eval()
            tokenizer.decoder.requires_grad_(False)
    return {"steps": done, "steps_asked": training.decoder_steps, "lr": training.decoder_lr,
            "loss": None if loss_value is None else round(loss_value, 4),
            "seconds": round(time.perf_counter() - t0, 1)}
