"""The engine: one Python API for every task, used in-process by the add-on's embedded mode
and behind the HTTP server. Motion in and out is canonical (motioncore: metres, Z up,
wxyz local rotations on the canonical skeleton)."""
from __future__ import annotations

import math
import platform
import time
from pathlib import Path

import numpy as np
import torch

from backend import __version__
from backend import adapters as store
from backend.actions import split_actions
from backend.data import compose
from backend.device import pick_device, pick_dtype
from backend.models import weights_file
from backend.models.generator import FORMAT_VERSION, INFILL, GeneratorConfig, MotionLM
from backend.models.tokenizer import DECODER_FILE, MotionTokenizer
from backend.paths import default_weights_dir
from backend.sampling import Sampling  # noqa: F401  (part of the engine's API)
from motioncore import blend, canonical, features
from motioncore import rotations as rot
from motioncore.clip import Motion
from motioncore.limits import MAX_SECONDS, MAX_TEXT, MAX_VARIATIONS, fps_problem, motion_problem

MIN_ACTION_TOKENS = 5  # 1 s: a chained prompt's actions each get at least this, or it is read whole


class Engine:
    def __init__(self, weights: Path | None = None, device: str = "auto", dtype: str = "auto",
                 base: str | None = None, cache_dir: Path | None = None, adapter: str = store.DEFAULT,
                 adapters: Path | None = None):
        t0 = time.perf_counter()
        self.weights = Path(weights) if weights else default_weights_dir()
        self.cache_dir = cache_dir
        self.adapters = Path(adapters) if adapters else store.adapters_dir()  # the user's own (backend/adapters.py)
        self._length = None  # (estimator, sentence features), loaded on the first prompt without a length
        self.device = pick_device(device)
        self.dtype = pick_dtype(self.device, dtype)
        weights_file.check_sums(self.weights)  # a damaged file is named here, not as a NaN later
        self.tokenizer = MotionTokenizer.for_generation(self.weights)
        # The engine only infers: the LoRA deltas are folded into the base weights, so each linear
        # layer is one plain matmul (measured: 5 passes 0.73 s -> 0.48 s for an 8 s clip), and
        # without peft, whose import and merge took most of a cold start.
        self.model = MotionLM.from_pretrained(self.weights, base=base, dtype=self.dtype, cache_dir=cache_dir,
                                              lora=False)
        self.identity = store.identity(self.weights)  # what an adapter must match to sit on this model
        self._keep_unmerged()
        self.model.fuse()  # q, k, v and gate, up as one product each (codes unchanged, tests/test_llama.py)
        self.model.merge_lora(self._default[0], self.model.config.lora_scaling, base=self._unmerged)
        self.model.to(self.device)
        self.adapter = store.DEFAULT
        if adapter != store.DEFAULT:
            self.use_adapter(adapter)
        self.down = self.tokenizer.config.down
        # The in-betweener is small and fast on any CPU; weights without one fall back to the LM.
        self.inbetweener = None
        if (self.weights / "inbetweener.json").is_file():
            from backend.models.inbetweener import Inbetweener

            self.inbetweener = Inbetweener.from_pretrained(self.weights)
        self.load_seconds = time.perf_counter() - t0

    def info(self) -> dict:
        return {"version": __version__, "device": str(self.device), "dtype": str(self.dtype).replace("torch.", ""),
                "base": self.model.config.base, "weights": str(self.weights), "adapter": self.adapter,
                "codebook_size": self.tokenizer.config.codebook_size, "model_fps": canonical.MODEL_FPS,
                "max_seconds": MAX_SECONDS, "torch": torch.__version__, "python": platform.python_version(),
                "load_seconds": round(self.load_seconds, 2)}

    # -- adapters: the user's own, switched in place --------------------------------------------
    def _keep_unmerged(self) -> None:
        """Before the merge: each adapted layer's base weight and the default's LoRA and new token
        rows, so any adapter can be merged onto the same base later (and the default again, to
        the bit) without reloading it. The base's weights are kept as loaded (memory-mapped in
        float32: no copy), each merge writing new ones."""
        state = self.model.adapter_state
        self._lora = self.model.lora_layers(state)
        self._unmerged = {n: m.weight.detach() for n, m in self._lora.items()}  # merges never write here
        self._default = (state, self.model.new_tokens.weight.detach().clone(),
                         {k: v.detach().clone() for k, v in self.tokenizer.decoder.state_dict().items()},
                         self.model.config.lora_scaling)

    def adapters_list(self) -> list[dict]:
        """The default and every adapter in the user's folder (newest first)."""
        return [{"name": store.DEFAULT, "clips": None, "steps": None, "created": None}] + store.list_adapters(self.adapters)

    @torch.no_grad()
    def use_adapter(self, name: str) -> dict:
        """Put adapter `name` (store.DEFAULT: the shipped one) in use: its LoRA merged onto the
        base weights as they were loaded, its new token rows in. Checked whole before anything
        changes; returns its info."""
        if name == store.DEFAULT:
            state, rows, decoder, scaling, info = *self._default, {"name": store.DEFAULT}
        else:
            folder = store.folder_of(name, self.adapters)
            info = store.read_info(folder)
            meta = weights_file.read_meta(folder, "generator", FORMAT_VERSION, "generator")
            why = store.mismatch(info, meta, self.identity)
            if why:
                raise store.AdapterError(f"adapter {name!r} does not fit this model: {why}")
            weights_file.check_sums(folder)
            state = weights_file.read_tensors(folder / "adapter" / "adapter_model.safetensors")
            rows = weights_file.read_tensors(folder / "new_tokens.safetensors")["new_tokens"]
            own = folder / DECODER_FILE
            decoder = weights_file.read_tensors(own) if own.is_file() else self._default[2]
            bad = _misfit(state, self._default[0]) + _misfit(decoder, self._default[2])
            if bad or rows.shape != self._default[1].shape:
                raise store.AdapterError(f"adapter {name!r} does not fit this model's layers ({bad[:3]})")
            try:  # the rank and alpha its LoRA was trained with, checked as any generator's
                scaling = GeneratorConfig(**meta["config"]).lora_scaling
            except (KeyError, TypeError, ValueError) as e:
                raise store.AdapterError(f"adapter {name!r} has no usable generator config: {e}") from None
            state = {k: v.to(self.dtype) for k, v in state.items()}  # as the default's, rounded alike
        self.model.merge_lora(state, scaling, base=self._unmerged)  # onto the base as loaded
        self.model.new_tokens.weight.data.copy_(rows)
        self.tokenizer.decoder.load_state_dict(decoder)
        self.adapter = name
        return info

    # -- helpers -----------------------------------------------------------------------------
    def _tokens_for(self, frames: int) -> int:
        return -(-frames // self.down)

    def clip_frames(self, seconds: float, fps: float) -> tuple[int, int]:
        """(model frames, frames at `fps`) of a `seconds` clip: seconds x fps frames, as a timeline
        counts them, and enough model frames that resampling reaches the last one (a clip of N
        frames spans N - 1 intervals)."""
        frames = self._frames(seconds)
        wanted = max(2, int(round(seconds * fps)))
        if fps != canonical.MODEL_FPS:
            frames = min(math.ceil((wanted - 1) * canonical.MODEL_FPS / fps) + 1,
                         self.model.config.max_motion_tokens * self.down)
        return frames, wanted

    def motion_tokens(self, seconds: float, fps: float = 30.0) -> int:
        """How many motion tokens a `seconds` clip at `fps` is generated as."""
        return self._tokens_for(self.clip_frames(seconds, fps)[0])

    def _frames(self, seconds: float) -> int:
        if not (np.isfinite(seconds) and 0 < seconds <= MAX_SECONDS):
            raise ValueError(f"length must be between 0 and {MAX_SECONDS:g} seconds, got {seconds}")
        return max(2, int(round(seconds * canonical.MODEL_FPS)))

    # -- tasks -------------------------------------------------------------------------------
    @torch.no_grad()
    def length_for(self, text: str) -> float:
        """Seconds of motion the text suggests, for prompts given without a length: the length
        estimator (backend/length.py) of these weights, or of the default weights."""
        if self._length is None:
            from backend.models.length import LengthEstimator
            from backend.models.llm import TextFeatures

            own = self.weights / "length"
            est = LengthEstimator.from_pretrained(own if own.is_dir() else default_weights_dir() / "length")
            self._length = est, TextFeatures(est.config.base, self.cache_dir)
        est, tf = self._length
        if not text.strip():  # nothing to read a length from: the typical training clip's
            return float((est.training_record or {}).get("train_median_seconds", 4.0))
        return float(min(est.seconds(tf([text]))[0], MAX_SECONDS))

    @torch.no_grad()
    def generate(self, text: str, seconds: float | None = None, seed: int = 0, variations: int = 1,
                 sampling: Sampling | None = None, fps: float = 30.0, on_step=None) -> list[Motion]:
        """Text to motion: `variations` clips of `seconds` (None: as long as the text suggests)
        at `fps`. on_step(done, total) reports progress after each decoding pass and may raise
        to cancel."""
        sampling = sampling or Sampling()
        if not isinstance(text, str) or len(text) > MAX_TEXT:
            raise ValueError(f"text must be a string of at most {MAX_TEXT} characters")
        actions = split_actions(text)
        shares = [1.0] * len(actions)  # of the clip, each action's: alike when the length is asked for
        if seconds is None:  # each action as long as its words suggest, and the joins between
            shares = [self.length_for(a) for a in actions]
            seconds = min(sum(shares) + compose.JOIN_SECONDS * (len(actions) - 1), MAX_SECONDS)
            if on_step is not None:  # the estimator's first load takes a while: a cancel lands here
                on_step(0, 1)
        if not 1 <= variations <= MAX_VARIATIONS:
            raise ValueError(f"variations must be 1..{MAX_VARIATIONS}, got {variations}")
        if problem := fps_problem(fps):
            raise ValueError(problem)
        frames, wanted = self.clip_frames(seconds, fps)
        gen = torch.Generator().manual_seed(int(seed))
        join = round(compose.JOIN_SECONDS * canonical.MODEL_FPS)
        if self.inbetweener is None or frames < len(actions) * (MIN_ACTION_TOKENS * self.down + join):
            actions, shares = [text], [1.0]  # too short to hold them apart (or nothing to join with): one
        # Chained actions each on their own, then each carried on from where the one before
        # ends, the join filled by the in-betweener: as composed training clips are made.
        # Generating the later actions as infill after the earlier ones instead continued the
        # first action (eval chained: 0.10 against 0.57 in order).
        ends = np.cumsum(shares) / np.sum(shares) * (frames - join * (len(actions) - 1))
        lengths = np.diff(np.concatenate([[0], ends]).round().astype(int))
        out: list[Motion | None] = [None] * variations
        for i, (words, length) in enumerate(zip(actions, lengths)):
            report = on_step if on_step is None or len(actions) == 1 else (
                lambda done, total, i=i: on_step(i * total + done, len(actions) * total))
            for v, row in enumerate(self._codes(words, self._tokens_for(length), variations, sampling, gen, report)):
                part = features.from_features(self.tokenizer.decode(row.numpy())[:length], canonical.MODEL_FPS)
                out[v] = part if out[v] is None else compose.join(out[v], part, join, self.inbetweener.inbetween)
        return [m.resample(fps).fit(wanted) for m in out]

    def _codes(self, text: str, n: int, variations: int, sampling: Sampling, gen: torch.Generator,
               on_step) -> torch.Tensor:
        """(variations, n) motion codes for `text`, decoded as `sampling` says."""
        if sampling.decoding == "next":
            return self.model.next_token(text, n, batch=variations, temperature=sampling.temperature,
                                         top_k=sampling.top_k, generator=gen, on_step=on_step,
                                         guidance=sampling.guidance)
        return self.model.fill(text, torch.full((variations, n), -1, dtype=torch.long), steps=sampling.steps,
                               temperature=sampling.temperature, top_k=sampling.top_k, generator=gen,
                               on_step=on_step, guidance=sampling.guidance)

    @torch.no_grad()
    def caption(self, motion: Motion) -> str:
        """Motion to text."""
        self.check_motion(motion)
        m = motion.resample(canonical.MODEL_FPS)
        codes = self.tokenizer.encode(features.to_features(m))
        return self.model.caption([int(c) for c in codes])

    # -- infill: in-betweening and editing ----------------------------------------------------
    def check_motion(self, motion: Motion) -> None:
        if not motion.skeleton.same_shape(canonical.canonical_skeleton()):
            raise ValueError("the motion must be on the canonical skeleton (21 joints, metres)")
        problem = motion_problem(motion.num_frames, motion.fps)
        if problem:
            raise ValueError(problem)

    def _infill(self, motion: Motion, regenerate: np.ndarray, text: str, seed: int, sampling: Sampling | None,
                on_step, anchors: np.ndarray | None = None) -> Motion:
        """Regenerate the frames flagged in `regenerate` (T,) from the rest: the motion tokens
        whose frames touch a flagged frame are masked and filled; the result is decoded from
        where the motion starts, back at the motion's own fps and length.

        `anchors` (frames of `motion` that are keys) keep their tokens shown, so the model sees
        the keyed poses even where every token also touches a free frame: between two single
        keys every token does, and with all of them masked the model drew the same 7 m run for
        every gap, which the pinning then dragged onto the keys."""
        sampling = sampling or Sampling()
        if not isinstance(text, str) or len(text) > MAX_TEXT:
            raise ValueError(f"text must be a string of at most {MAX_TEXT} characters")
        m = motion.resample(canonical.MODEL_FPS)
        codes = self.tokenizer.encode(features.to_features(m))
        masked = self._tokens_of(regenerate, motion.fps, len(codes))
        if anchors is not None:
            free = masked & ~self._tokens_of(np.isin(np.arange(motion.num_frames), anchors), motion.fps, len(codes))
            masked = free if free.any() else masked  # keys on every token: fill them all
        shown = torch.tensor(np.where(masked, -1, codes), dtype=torch.long)[None]
        gen = torch.Generator().manual_seed(int(seed))
        filled = self.model.fill(text, shown, steps=sampling.steps, temperature=sampling.temperature,
                                 top_k=sampling.top_k, generator=gen, task=INFILL, on_step=on_step,
                                 guidance=sampling.guidance)[0]
        xy, yaw = features.start_pose(m)
        feats = self.tokenizer.decode(filled.numpy())[: m.num_frames]
        out = features.from_features(feats, canonical.MODEL_FPS, start_xy=xy, start_yaw=yaw).resample(motion.fps)
        return out.fit(motion.num_frames)

    def _tokens_of(self, frames: np.ndarray, fps: float, n: int) -> np.ndarray:
        """(n,) bool: the tokens whose model frames touch the flagged source frames (T,)."""
        # Model frame f covers source frames near f * fps / MODEL_FPS; a token covers `down` frames.
        src = np.flatnonzero(frames) * canonical.MODEL_FPS / fps
        model_frames = np.unique(np.clip(np.round(src).astype(int), 0, None))
        out = np.zeros(n, dtype=bool)
        out[np.minimum(model_frames // self.down, n - 1)] = True
        return out

    @torch.no_grad()
    def edit(self, motion: Motion, start: int, stop: int, text: str = "", seed: int = 0,
             sampling: Sampling | None = None, on_step=None, part: str = "body") -> Motion:
        """Regenerate frames [start, stop) of `motion` from `text` and the frames around them;
        every other frame comes back bit-identical and both seams are continuous. `part`
        (canonical.BODY_PARTS: body, upper, legs) is what changes: the other joints, and the
        root's travel for the upper body, are the motion's own on every frame."""
        self.check_motion(motion)
        if part not in canonical.BODY_PARTS:
            raise ValueError(f"part must be one of {', '.join(canonical.BODY_PARTS)}, got {part!r}")
        T = motion.num_frames
        if not (0 <= start < stop <= T):
            raise ValueError(f"the edit range must satisfy 0 <= start < stop <= {T}, got {start}..{stop}")
        if stop - start >= T:
            raise ValueError("an edit must leave some frames unchanged; use generate for a new clip")
        regen = np.zeros(T, dtype=bool)
        regen[start:stop] = True
        gen = self._infill(motion, regen, text, seed, sampling, on_step)
        kept = np.flatnonzero(~regen)
        pinned = blend.match_velocities(blend.pin_to_keys(gen, motion, kept), kept)
        out = blend.splice(pinned, motion, start, stop)
        return out if part == "body" else blend.keep_part(out, motion, canonical.BODY_PARTS[part])

    @torch.no_grad()
    def continue_(self, motion: Motion, text: str, seconds: float | None = None, seed: int = 0,
                  sampling: Sampling | None = None, on_step=None) -> Motion:
        """`motion` followed by `seconds` more (None: as long as the text suggests, within what
        a motion may hold): with `text`, that action carried on from where the motion ends;
        without, more of the motion so far. The given frames come back bit-identical and the
        join is continuous."""
        self.check_motion(motion)
        if seconds is None:
            seconds = min(self.length_for(text), MAX_SECONDS - motion.duration)
        if not (np.isfinite(seconds) and 0 < seconds <= MAX_SECONDS - motion.duration):
            raise ValueError(f"continue by more than 0 and at most {MAX_SECONDS - motion.duration:.1f} s "
                             f"(a motion holds {MAX_SECONDS:g} s in all), got {seconds}")
        T, extra = motion.num_frames, max(1, int(round(seconds * motion.fps)))
        join = round(compose.JOIN_SECONDS * motion.fps)
        if isinstance(text, str) and text.strip() and self.inbetweener is not None and extra - join >= 2:
            # A new action: made on its own and carried on from the motion's end, the join
            # in-betweened. Infilled after the motion, the text was read right 0.03 of the time
            # on the 30 chained prompts' second actions (it went on with the first); this 0.87.
            [new] = self.generate(text, (extra - join) / motion.fps, seed=seed, sampling=sampling, fps=motion.fps,
                                  on_step=on_step)
            return compose.join(motion, new, join, self.inbetweener.inbetween)
        held = motion.fit(T + extra)
        regen = np.zeros(T + extra, dtype=bool)
        regen[T:] = True
        gen = self._infill(held, regen, text, seed, sampling, on_step)
        # The last new frame stands as a key, so the join's speed is matched and the end left be.
        kept = np.append(np.arange(T), T + extra - 1)
        pinned = blend.match_velocities(blend.pin_to_keys(gen, held, np.arange(T)), kept)
        return blend.splice(pinned, held, T, T + extra)

    @torch.no_grad()
    def inbetween(self, motion: Motion, keys: list[int], text: str = "", seed: int = 0,
                  sampling: Sampling | None = None, on_step=None, loop: bool | None = None,
                  partial_keys: dict[int, list[str]] | None = None) -> Motion:
        """Fill every frame of `motion` that is not in `keys` (frame indices whose whole poses
        are given); keyed frames come back exactly and velocity runs on through every key.

        Without text, gaps up to STRETCH x the in-betweener's max_gap are filled by it (a residual over
        interpolation); text, longer gaps, or weights without an in-betweener use the motion
        LM's masked infill. `partial_keys` maps more frames to the canonical joints keyed there
        (an arm alone): the body is filled from the whole keys, then each of those joints is
        pinned to its own keys. `loop` (default: whether the first and last key hold the same
        pose) makes the clip a seamless cycle across its ends."""
        self.check_motion(motion)
        T = motion.num_frames
        keys = np.unique(np.asarray(keys, dtype=int))
        if keys.size < 2:
            raise ValueError("in-betweening needs at least two frames where the whole pose is keyed")
        if keys[0] < 0 or keys[-1] >= T:
            raise ValueError(f"key frames must lie in 0..{T - 1}")
        keyed = self._keyed_joints(keys, partial_keys or {}, T)
        if loop is None:
            q = motion.local_rotations
            loop = bool(np.max(rot.angle_between(q[keys[0]], q[keys[-1]])) < 1e-3)
        filled = self._fill_between(motion, keys, text, seed, sampling, on_step)
        if partial_keys:
            filled = blend.pin_joint_keys(filled, motion, keyed)
        return blend.match_velocities(filled, keys, loop=loop)

    @staticmethod
    def _keyed_joints(keys: np.ndarray, partial_keys: dict[int, list[str]], T: int) -> np.ndarray:
        """(T, J) bool: which joints are keyed at which frames."""
        keyed = np.zeros((T, len(canonical.CANONICAL_JOINTS)), dtype=bool)
        keyed[keys] = True
        for frame, names in partial_keys.items():
            if not 0 <= int(frame) < T:
                raise ValueError(f"partial key frame {frame} is outside 0..{T - 1}")
            unknown = sorted(set(names) - set(canonical.CANONICAL_JOINTS))
            if unknown:
                raise ValueError(f"partial key at frame {frame} names unknown joints {unknown}; "
                                 f"joints are {list(canonical.CANONICAL_JOINTS)}")
            keyed[int(frame), [canonical.CANONICAL_JOINTS.index(n) for n in names]] = True
        return keyed

    def _fill_between(self, motion: Motion, keys: np.ndarray, text: str, seed: int,
                      sampling: Sampling | None, on_step) -> Motion:
        T = motion.num_frames
        ib = self.inbetweener
        gaps = list(zip(keys[:-1], keys[1:]))
        long_gaps = [] if ib is None else [(a, b) for a, b in gaps if not ib.fills(a, b, motion.fps)]
        if ib is not None and not text.strip() and not long_gaps:
            if on_step is not None:
                on_step(1, 1)
            return ib.inbetween(motion, keys)
        # Start from the keys joined by interpolation, so the model sees where the gaps lead.
        seed_motion = blend.interpolate_keys(motion, keys)
        regen = np.ones(T, dtype=bool)
        regen[keys] = False
        gen = blend.pin_to_keys(self._infill(seed_motion, regen, text, seed, sampling, on_step, anchors=keys),
                                motion, keys)
        if ib is None or text.strip():
            return gen
        short = ib.inbetween(motion, keys)  # short gaps from the in-betweener, long ones from the LM
        for a, b in long_gaps:
            short = blend.splice(gen, short, a + 1, b)
        return short


def _misfit(theirs: dict, ours: dict) -> list[str]:
    """Tensor names that one side lacks or that differ in shape."""
    return [k for k in sorted(set(ours) | set(theirs))
            if k not in theirs or k not in ours or theirs[k].shape != ours[k].shape]
