"""The training data: BVH sources -> canonical motion features at the model frame rate,
captions, a fixed split, and a cache in an ignored folder.

Sources are the Bandai Namco `.tar.xz` archives (read directly), any directory of BVH files,
each optionally with `NAME.json` labels ({"content": .., "style": ..} as names, or as indices
into a `cfg/content_label.txt` / `cfg/style_label.txt` beside the data) and `NAME.txt`
captions (one per line), or a folder in HumanML3D's layout (backend/data/humanml3d.py).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tarfile
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from backend.data import captions as cap
from backend.data import humanml3d
from backend.paths import default_cache_dir, default_data_dir  # noqa: F401  (re-exported for the CLI)
from motioncore import bvh, canonical, features

CACHE_FORMAT = 1
SPLITS = ("train", "val", "test")
MAX_BVH_BYTES = 64 << 20   # a capture file is about 1 MB; larger is not one clip
MAX_SIDE_BYTES = 1 << 20   # labels and captions beside a clip
MAX_FOLDER_DEPTH = 32


def _entries(root: Path, suffixes: tuple[str, ...] = ()) -> Iterator[tuple[Path, str | None]]:
    """Files under `root` ending in `suffixes` (none given: every file), in name order, each with the reason it cannot be
    read (None: it can): regular files only (not a folder, FIFO, device or broken link), at most
    MAX_BVH_BYTES, at most MAX_FOLDER_DEPTH folders down; links to folders are not followed."""
    for folder, dirs, files in os.walk(root, onerror=None):
        here = Path(folder)
        depth = len(here.relative_to(root).parts)
        dirs.sort()
        for d in list(dirs) if suffixes else ():
            if d.endswith(suffixes):
                yield here / d, "a folder, not a file"
        if depth >= MAX_FOLDER_DEPTH:
            if dirs:
                yield here, f"more than {MAX_FOLDER_DEPTH} folders deep; not read further"
            dirs.clear()
        for name in sorted(files):
            if suffixes and not name.endswith(suffixes):
                continue
            path = here / name
            try:
                st = path.stat()  # through a link: what it points at
            except OSError as e:
                yield path, f"unreadable ({e.strerror or e})"
                continue
            if not stat.S_ISREG(st.st_mode):
                yield path, "not a regular file (a device, FIFO or socket)"
            elif st.st_size > MAX_BVH_BYTES:
                yield path, f"{st.st_size} bytes; larger than {MAX_BVH_BYTES} bytes"
            else:
                yield path, None


def _read_text(path: Path, limit: int) -> str:
    """A small regular file's text (a BOM dropped); OSError or ValueError if it is not one."""
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"larger than {limit} bytes")
    return data.decode("utf-8-sig", errors="replace")


@dataclass
class Clip:
    """One clip in the cache. start/length index rows of the feature array (model fps)."""

    name: str
    source: str
    content: str
    style: str
    split: str
    start: int
    length: int
    captions: list[str] = field(default_factory=list)


def split_of(name: str) -> str:
    """Fixed split from the clip's file stem: 80 / 10 / 10 by hash, whatever else is present."""
    bucket = int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) % 100
    return "train" if bucket < 80 else "val" if bucket < 90 else "test"


# -- sources -------------------------------------------------------------------------------

@dataclass
class _Item:
    name: str      # file stem (HumanML3D: the id, and the caption's span when it has one)
    source: str    # archive or directory it came from
    text: str = ""                 # BVH text
    npy: Path | None = None        # or HumanML3D joint positions
    span: tuple[float, float] = (0.0, 0.0)  # seconds of those to keep; (0, 0): all


def _labels_from_cfg(cfg: dict[str, list[str]], raw: dict) -> tuple[str, str] | None:
    c, s = raw.get("content"), raw.get("style")
    if isinstance(c, int) and isinstance(s, int) and cfg:
        try:
            c, s = cfg["content"][c], cfg["style"][s]
        except IndexError:
            return None
    if isinstance(c, str) and isinstance(s, str):
        # Bandai label files prefix names with the dataset ("dataset-2_walk").
        return c.split("_", 1)[-1], s.split("_", 1)[-1]
    return None


def _labels_from_name(stem: str) -> tuple[str, str] | None:
    parts = stem.split("_")
    if len(parts) == 4 and parts[0].startswith("dataset-"):
        return parts[1], parts[2]
    return None


class Sources:
    """Everything found under the given archives and folders, read lazily in file order."""

    def __init__(self, paths: list[Path]):
        self.paths = paths
        self.labels: dict[str, tuple[str, str]] = {}
        self.captions: dict[str, list[str]] = {}
        self.splits: dict[str, str] = {}  # where the source fixes a clip's split itself
        self.count = 0
        self.problems: list[str] = []  # entries that could not be read, and why
        self._humanml3d: dict[Path, list[_Item]] = {}
        for p in paths:
            if not p.exists():
                raise FileNotFoundError(f"data source {p} does not exist")
            if p.is_dir() and humanml3d.is_layout(p):
                self._humanml3d[p] = self._read_humanml3d(p)
                self.count += len(self._humanml3d[p])
            elif p.is_dir():
                self.count += sum(1 for _, problem in _entries(p, (".bvh",)) if problem is None)
            elif p.name.endswith((".tar.xz", ".tar.gz", ".tar")):
                with tarfile.open(p) as tf:  # names only; cheap next to the full read
                    self.count += sum(1 for n in tf.getnames() if n.endswith(".bvh"))
            else:
                raise ValueError(f"{p} is neither a folder nor a .tar.xz/.tar.gz/.tar archive")

    def signature(self) -> list[dict]:
        """What the cache was built from, to tell when it is stale."""
        out = []
        for p in self.paths:
            files = [f for f, problem in _entries(p) if problem is None] if p.is_dir() else [p]
            listing = hashlib.sha1()
            for f in files:
                st = f.stat()
                listing.update(f"{f.relative_to(p) if p.is_dir() else f.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
            out.append({"path": str(p.resolve()), "files": len(files), "listing": listing.hexdigest()})
        return out

    def __iter__(self) -> Iterator[_Item]:
        for p in self.paths:
            if p in self._humanml3d:
                yield from self._humanml3d[p]
            elif p.is_dir():
                yield from self._from_dir(p)
            else:
                yield from self._from_tar(p)

    def _note_side_files(self, stem: str, kind: str, text: str, cfg: dict) -> None:
        if kind == ".json":
            try:
                raw = json.loads(text)
            except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
                self.problems.append(f"{stem}{kind}: not readable JSON labels; ignored")
                return
            found = _labels_from_cfg(cfg, raw) if isinstance(raw, dict) else None
            if found:
                self.labels[stem] = found
        elif kind == ".txt":
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            if lines:
                self.captions[stem] = lines

    def _from_dir(self, root: Path) -> Iterator[_Item]:
        cfg = _read_cfg({k: root / "cfg" / f"{k}_label.txt" for k in ("content", "style")})
        for path, problem in _entries(root, (".bvh",)):
            try:
                if problem is not None:
                    raise ValueError(problem)
                text = _read_text(path, MAX_BVH_BYTES)
            except (OSError, ValueError) as e:
                self.problems.append(f"{path}: {getattr(e, 'strerror', None) or e}; skipped")
                continue
            for kind in (".json", ".txt"):
                side = path.with_suffix(kind)
                try:
                    if side.is_file():
                        self._note_side_files(path.stem, kind, _read_text(side, MAX_SIDE_BYTES), cfg)
                except (OSError, ValueError) as e:
                    self.problems.append(f"{side}: {getattr(e, 'strerror', None) or e}; ignored")
            yield _Item(path.stem, str(root), text)

    def _read_humanml3d(self, root: Path) -> list[_Item]:
        """One item per clip (its whole-clip captions) and one per captioned span of it."""
        splits = humanml3d.split_lists(root)
        items = []
        for path, problem in _entries(root / "new_joints", (".npy",)):
            clip_id = path.stem
            if clip_id.startswith("M"):  # HumanML3D's own mirrors; training mirrors every clip
                continue
            if problem is not None:
                self.problems.append(f"{path}: {problem}; skipped")
                continue
            found = []
            texts = root / "texts" / f"{clip_id}.txt"
            try:
                if texts.is_file():
                    found = humanml3d.read_captions(_read_text(texts, MAX_SIDE_BYTES))
            except (OSError, ValueError) as e:
                self.problems.append(f"{texts}: {getattr(e, 'strerror', None) or e}; its captions ignored")
            spans: dict[tuple[float, float], list[str]] = defaultdict(list)
            for caption, start, end in found:
                spans[(start, end)].append(caption)
            spans.setdefault((0.0, 0.0), [])
            for span, captions in spans.items():
                name = clip_id if span == (0.0, 0.0) else f"{clip_id}#{span[0]:g}-{span[1]:g}"
                if captions:
                    self.captions[name] = captions
                if clip_id in splits:
                    self.splits[name] = splits[clip_id]
                items.append(_Item(name, str(root), npy=path, span=span))
        return items

    def _from_tar(self, archive: Path) -> Iterator[_Item]:
        with tarfile.open(archive) as tf:
            members = [m for m in tf.getmembers() if m.isfile()]
            for m in [m for m in members if m.size > MAX_BVH_BYTES]:
                self.problems.append(f"{archive.name}/{m.name}: larger than {MAX_BVH_BYTES} bytes; skipped")
            members = [m for m in members if m.size <= MAX_BVH_BYTES]
            cfg_text = {}
            for m in members:
                if m.name.endswith(("cfg/content_label.txt", "cfg/style_label.txt")):
                    cfg_text["content" if "content" in m.name else "style"] = \
                        tf.extractfile(m).read().decode()
            cfg = {k: [ln.strip() for ln in v.splitlines() if ln.strip()] for k, v in cfg_text.items()}
            for m in members:
                stem, kind = os.path.splitext(os.path.basename(m.name))
                if "/cfg/" in m.name:
                    continue
                if kind in (".json", ".txt"):
                    self._note_side_files(stem, kind, tf.extractfile(m).read().decode(errors="replace"), cfg)
                elif kind == ".bvh":
                    yield _Item(stem, archive.name, tf.extractfile(m).read().decode(errors="replace"))


def _read_cfg(files: dict[str, Path]) -> dict[str, list[str]]:
    return {k: [ln.strip() for ln in f.read_text().splitlines() if ln.strip()]
            for k, f in files.items() if f.is_file()}


# -- conversion ----------------------------------------------------------------------------

def clip_features(text: str, source: str = "<bvh>") -> np.ndarray:
    """BVH text -> (T, features.LAYOUT.size) float32 canonical features at the model fps."""
    motion = canonical.to_canonical(bvh.bvh_from_text(text, source))
    return features.to_features(motion.resample(canonical.MODEL_FPS))


def humanml3d_features(path: Path, span: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """A HumanML3D joints file (the seconds in `span` of it; (0, 0): all) -> canonical features."""
    joints = humanml3d.read_joints(path)
    if span != (0.0, 0.0):
        joints = joints[round(span[0] * humanml3d.FPS): round(span[1] * humanml3d.FPS)]
    return features.to_features(humanml3d.to_canonical(joints).resample(canonical.MODEL_FPS))


def _convert(item: _Item) -> tuple[str, str, np.ndarray | None, str | None]:
    """One clip's features, or why it cannot be used: one bad file never stops a build."""
    where = str(item.npy) if item.npy is not None else f"{item.source}/{item.name}.bvh"
    try:
        feats = humanml3d_features(item.npy, item.span) if item.npy is not None else clip_features(item.text, where)
    except ValueError as e:  # BVHError and SkeletonMismatchError are ValueErrors
        return item.name, item.source, None, str(e)
    except (ArithmeticError, RecursionError, MemoryError, IndexError, OSError, EOFError) as e:
        return item.name, item.source, None, f"{where}: cannot be read ({type(e).__name__}: {e})"
    if len(feats) < 2:
        return item.name, item.source, None, f"{where}: shorter than two frames at {canonical.MODEL_FPS} fps"
    if not np.isfinite(feats).all():
        return item.name, item.source, None, f"{where}: values too large to convert"
    return item.name, item.source, feats, None


# -- the cache -----------------------------------------------------------------------------

@dataclass
class Dataset:
    """A built dataset: features (N, F) float32, clips indexing into it, train statistics."""

    features: np.ndarray
    clips: list[Clip]
    mean: np.ndarray
    std: np.ndarray

    def clip_features(self, clip: Clip) -> np.ndarray:
        return self.features[clip.start: clip.start + clip.length]

    def split(self, name: str) -> list[Clip]:
        return [c for c in self.clips if c.split == name]


def build(sources: list[Path], cache_dir: Path, workers: int | None = None, force: bool = False,
          progress: bool = True) -> tuple[Dataset, list[str], bool]:
    """Build (or reuse) the cache. Returns (dataset, skipped-file messages, rebuilt?)."""
    src = Sources(sources)
    out = cache_dir / "dataset"
    manifest = {"format": CACHE_FORMAT, "model_fps": canonical.MODEL_FPS,
                "feature_size": features.LAYOUT.size, "sources": src.signature()}
    if not force and (out / "manifest.json").is_file():
        old = json.loads((out / "manifest.json").read_text())
        if {k: old.get(k) for k in manifest} == manifest:
            return load(cache_dir), old.get("skipped", []), False

    t0 = time.perf_counter()
    workers = workers or min(os.cpu_count() or 1, 4)
    arrays: list[np.ndarray] = []
    clips: list[Clip] = []
    skipped: list[str] = []
    bar = tqdm(total=src.count, unit="clip", desc="converting", disable=not progress)
    with get_context("fork" if os.name == "posix" else "spawn").Pool(workers) as pool:
        start = 0
        for name, source, feats, err in pool.imap(_convert, iter(src), chunksize=4):
            bar.update()
            if err is not None:
                skipped.append(err)
                continue
            clips.append(Clip(name, source, "", "", src.splits.get(name) or split_of(name), start, len(feats)))
            arrays.append(feats)
            start += len(feats)
    bar.close()
    skipped = src.problems + skipped
    if not clips:
        raise ValueError(f"no usable BVH clips in {', '.join(map(str, sources))}"
                         + (f"; first problem: {skipped[0]}" if skipped else ""))
    for c in clips:
        content, style = src.labels.get(c.name) or _labels_from_name(c.name) or ("unlabelled", "normal")
        c.content, c.style = cap.normalize_content(content), cap.normalize_style(style)
        c.captions = src.captions.get(c.name) or (
            cap.captions_for(c.content, c.style, seed=c.name) if c.content != "unlabelled" else [])
    feats = np.concatenate(arrays)
    train = np.concatenate([a for a, c in zip(arrays, clips) if c.split == "train"] or arrays)
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std < 1e-4, 1.0, std)  # constant features (e.g. unused) stay unscaled
    manifest.update(skipped=skipped, clips=len(clips), frames=int(len(feats)),
                    build_seconds=round(time.perf_counter() - t0, 2))

    # Write beside the old cache and swap, so an interrupted build never leaves half a cache.
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="dataset.", dir=cache_dir))
    np.save(tmp / "features.npy", feats)
    np.save(tmp / "mean.npy", mean.astype(np.float32))
    np.save(tmp / "std.npy", std.astype(np.float32))
    (tmp / "clips.json").write_text(json.dumps([asdict(c) for c in clips]))
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    dataset = Dataset(feats, clips, mean.astype(np.float32), std.astype(np.float32))
    (tmp / "summary.txt").write_text(summary_table(dataset))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return dataset, skipped, True


def from_motions(motions: list, captions: list, names: list[str] | None = None) -> Dataset:
    """Canonical motions (a user's own takes, read off their rig) as a training split of their
    own, with a caption (or a list of them) each, without a cache on disk."""
    feats = [features.to_features(m.resample(canonical.MODEL_FPS)) for m in motions]
    names = names or [f"clip {i + 1}" for i in range(len(motions))]
    clips, start = [], 0
    for name, f, text in zip(names, feats, captions):
        texts = [text] if isinstance(text, str) else list(text)
        clips.append(Clip(name, "user", "", "", "train", start, len(f), [t for t in texts if t.strip()]))
        start += len(f)
    stacked = np.concatenate(feats).astype(np.float32)
    return Dataset(stacked, clips, stacked.mean(0), stacked.std(0) + 1e-6)


def load(cache_dir: Path | None = None) -> Dataset:
    """Read a built cache (no pickle anywhere)."""
    out = (cache_dir or default_cache_dir()) / "dataset"
    if not (out / "manifest.json").is_file():
        raise FileNotFoundError(f"no dataset cache in {out}; run `dynamicpose data build`")
    manifest = json.loads((out / "manifest.json").read_text())
    if manifest.get("format") != CACHE_FORMAT or manifest.get("feature_size") != features.LAYOUT.size:
        raise ValueError(f"the dataset cache in {out} is from another version; "
                         "rebuild it with `dynamicpose data build --force`")
    clips = [Clip(**c) for c in json.loads((out / "clips.json").read_text())]
    return Dataset(np.load(out / "features.npy", allow_pickle=False), clips,
                   np.load(out / "mean.npy", allow_pickle=False),
                   np.load(out / "std.npy", allow_pickle=False))


def summary_table(ds: Dataset) -> str:
    """Clips, frames and hours per content, per style and per split, as fixed-width text."""
    fps = canonical.MODEL_FPS
    lines = []
    for key in ("content", "style", "split"):
        rows: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for c in ds.clips:
            rows[getattr(c, key)][0] += 1
            rows[getattr(c, key)][1] += c.length
        width = max(len(k) for k in rows) + 2
        lines.append(f"{key:<{width}}{'clips':>7}{'frames':>10}{'hours':>8}")
        order = SPLITS if key == "split" else sorted(rows)
        for k in order:
            if k in rows:
                n, f = rows[k]
                lines.append(f"{k:<{width}}{n:>7}{f:>10}{f / fps / 3600:>8.2f}")
        total = sum(r[1] for r in rows.values())
        lines.append(f"{'total':<{width}}{len(ds.clips):>7}{total:>10}{total / fps / 3600:>8.2f}")
        lines.append("")
    lines.append(f"frames are at the model rate, {fps:g} fps")
    return "\n".join(lines)


def default_sources() -> list[Path]:
    data = default_data_dir()
    archives = sorted(data.glob("*.tar.xz")) if data and data.is_dir() else []
    if not archives:
        raise FileNotFoundError(
            "no motion data found: pass --source DIR_OR_ARCHIVE, or set DYNAMICPOSE_DATA to a "
            "folder holding the Bandai Namco .tar.xz archives (see README)")
    return archives


def mirrored_features(feats: np.ndarray) -> np.ndarray:
    """Model features of the left/right mirror of the motion they describe."""
    motion = features.from_features(feats, canonical.MODEL_FPS)
    return features.to_features(motion.mirror())
