"""BVH reading and writing.

BVH files are usually Y up and in centimetres. `read_bvh` returns a Motion in DynamicPose's
frame, Z up and metres by default, the way Blender's own importer places it: a BVH vector
(x, y, z) becomes (x, -z, y), so a character walking towards +Z in the file walks towards -Y,
Blender's front. Every joint may have 3 rotation channels or 6 (position and rotation), in any
Euler order; per-joint position channels are kept in `Motion.local_translations`.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import rotations as rot
from .clip import Motion
from .skeleton import Skeleton

# (x, y, z) Y-up -> (x, -z, y) Z-up: +90 degrees about X.
# What a character's BVH can hold; past these a file is broken or hostile, and is refused by
# name rather than read into infinities, one-frame clips or a stack overflow.
MAX_DEPTH = 256                       # joints from the root to the deepest leaf
MAX_JOINTS = 1024
MAX_VALUE = 1e7                       # |channel value|: 100 km in centimetres, 27,000 turns in degrees
MIN_FRAME_TIME, MAX_FRAME_TIME = 1e-3, 1.0  # 1,000 fps to 1 fps

Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

_POSITION = ("Xposition", "Yposition", "Zposition")
_ROTATION = ("Xrotation", "Yrotation", "Zrotation")


class BVHError(ValueError):
    """A malformed BVH file; the message names the file, the line and the problem."""


@dataclass
class _Joint:
    name: str
    parent: int
    offset: np.ndarray
    channels: list[str]
    line: int


class _Tokens:
    """Whitespace tokens of the HIERARCHY section with their line numbers."""

    def __init__(self, lines: list[str], source: str):
        self.items: list[tuple[str, int]] = []
        self.source = source
        self.motion_line = None
        for i, line in enumerate(lines, start=1):
            words = line.split()
            if words and words[0] == "MOTION":
                self.motion_line = i
                break
            self.items.extend((w, i) for w in words)
        self.pos = 0
        self.last_line = len(lines)

    def error(self, line: int, msg: str) -> BVHError:
        return BVHError(f"{self.source}:{line}: {msg}")

    def next(self, expected: str | None = None) -> tuple[str, int]:
        if self.pos >= len(self.items):
            line = self.motion_line or self.last_line
            want = f" (expected {expected!r})" if expected else ""
            raise self.error(line, f"unexpected end of the HIERARCHY section{want}; "
                                   "the file is truncated or a '}' is missing")
        tok = self.items[self.pos]
        self.pos += 1
        if expected is not None and tok[0] != expected:
            raise self.error(tok[1], f"expected {expected!r}, found {tok[0]!r}")
        return tok

    def peek(self) -> str | None:
        return self.items[self.pos][0] if self.pos < len(self.items) else None

    def floats(self, n: int, what: str) -> np.ndarray:
        vals = []
        for _ in range(n):
            word, line = self.next()
            try:
                v = float(word)
            except ValueError:
                raise self.error(line, f"{what}: {word!r} is not a number") from None
            if not abs(v) <= MAX_VALUE:
                raise self.error(line, f"{what}: {word!r} is not a finite number of at most {MAX_VALUE:g}")
            vals.append(v)
        return np.array(vals)


def _parse_joint(tok: _Tokens, joints: list[_Joint], end_sites: dict[int, np.ndarray],
                 parent: int, name: str, line: int, depth: int = 0) -> None:
    if depth > MAX_DEPTH or len(joints) >= MAX_JOINTS:
        raise tok.error(line, f"the hierarchy is deeper than {MAX_DEPTH} joints or has more than {MAX_JOINTS}; "
                              "not a character")
    tok.next("{")
    tok.next("OFFSET")
    offset = tok.floats(3, f"OFFSET of {name!r}")
    word, cline = tok.next("CHANNELS")
    count_word, cline = tok.next()
    try:
        count = int(count_word)
    except ValueError:
        raise tok.error(cline, f"CHANNELS count of {name!r} is {count_word!r}, not a number") from None
    if count not in (3, 6):
        raise tok.error(cline, f"joint {name!r} declares {count} channels; "
                               "BVH joints have 3 (rotation) or 6 (position and rotation)")
    channels = []
    for _ in range(count):
        ch, chl = tok.next()
        if ch not in _POSITION + _ROTATION:
            raise tok.error(chl, f"joint {name!r}: {ch!r} is not a channel name "
                                 f"(found {len(channels)} of the {count} channels declared)")
        channels.append(ch)
    rot_ch = [c for c in channels if c in _ROTATION]
    pos_ch = [c for c in channels if c in _POSITION]
    if sorted(rot_ch) != list(_ROTATION) or (pos_ch and sorted(pos_ch) != list(_POSITION)):
        raise tok.error(cline, f"joint {name!r} has channels {channels}; expected each rotation "
                               "axis once, and each position axis once if any")
    me = len(joints)
    joints.append(_Joint(name, parent, offset, channels, line))
    while True:
        word, wline = tok.next()
        if word == "}":
            return
        if word == "JOINT":
            child, cl = tok.next()
            _parse_joint(tok, joints, end_sites, me, child, cl, depth + 1)
        elif word == "End":
            tok.next("Site")
            tok.next("{")
            tok.next("OFFSET")
            end_sites[me] = tok.floats(3, f"End Site OFFSET of {name!r}")
            tok.next("}")
        else:
            raise tok.error(wline, f"expected 'JOINT', 'End Site' or '}}' in joint {name!r}, "
                                   f"found {word!r}")


def parse_bvh(text: str, source: str = "<bvh>") -> tuple[Skeleton, list[list[str]], float, np.ndarray]:
    """Parse BVH text without unit or axis changes.

    Returns (skeleton in file units and axes, channel names per joint, frame time in seconds,
    values (T, C) in file order: positions in file units, rotations in degrees).
    """
    lines = text.removeprefix("\ufeff").splitlines()  # a UTF-8 byte order mark is text, not an error
    tok = _Tokens(lines, source)
    if tok.peek() != "HIERARCHY":
        raise tok.error(tok.items[0][1] if tok.items else 1, "a BVH file starts with 'HIERARCHY'")
    tok.next()
    tok.next("ROOT")
    name, nline = tok.next()
    joints: list[_Joint] = []
    end_sites: dict[int, np.ndarray] = {}
    _parse_joint(tok, joints, end_sites, -1, name, nline)
    if tok.peek() is not None:
        word, wline = tok.next()
        raise tok.error(wline, f"unexpected {word!r} after the root joint (only one ROOT is supported)")
    if tok.motion_line is None:
        raise tok.error(len(lines), "no MOTION section; the file is truncated")

    names = [j.name for j in joints]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise tok.error(joints[names.index(dups[0])].line, f"duplicate joint names {dups}")

    # MOTION header: "Frames: N" and "Frame Time: dt".
    i = tok.motion_line  # 0-based index of the line after MOTION
    header = {}
    for key in ("Frames", "Frame Time"):
        while i < len(lines) and not lines[i].strip():
            i += 1
        if i >= len(lines):
            raise tok.error(len(lines), f"missing '{key}:' line after MOTION; the file is truncated")
        m = re.match(rf"\s*{key}\s*:\s*(\S+)\s*$", lines[i])
        if not m:
            raise tok.error(i + 1, f"expected '{key}: <number>', found {lines[i].strip()[:60]!r}")
        header[key] = (m.group(1), i + 1)
        i += 1
    try:
        n_frames = int(header["Frames"][0])
        if n_frames < 1:
            raise ValueError
    except ValueError:
        raise tok.error(header["Frames"][1], f"Frames must be a positive whole number, "
                                              f"found {header['Frames'][0]!r}") from None
    try:
        frame_time = float(header["Frame Time"][0])
        if not (np.isfinite(frame_time) and MIN_FRAME_TIME <= frame_time <= MAX_FRAME_TIME):
            raise ValueError
    except ValueError:
        raise tok.error(header["Frame Time"][1], f"Frame Time must be seconds per frame between "
                                                  f"{MIN_FRAME_TIME:g} and {MAX_FRAME_TIME:g}, "
                                                  f"found {header['Frame Time'][0]!r}") from None

    n_ch = sum(len(j.channels) for j in joints)
    data_lines = lines[i:]
    first_data_line = i + 1
    while data_lines and not data_lines[-1].strip():
        data_lines.pop()
    if len(data_lines) < n_frames:
        raise tok.error(first_data_line + len(data_lines) - 1 if data_lines else len(lines),
                        f"the header declares {n_frames} frames but only {len(data_lines)} follow; "
                        "the file is truncated")
    if len(data_lines) > n_frames:
        raise tok.error(first_data_line + n_frames,
                        f"the header declares {n_frames} frames but {len(data_lines)} lines follow")
    words = " ".join(data_lines).split()
    if len(words) != n_frames * n_ch:
        for k, line in enumerate(data_lines):
            found = len(line.split())
            if found != n_ch:
                trunc = " (the file is truncated)" if k == len(data_lines) - 1 and found < n_ch else ""
                raise tok.error(first_data_line + k, f"expected {n_ch} values for the "
                                                     f"{len(joints)} joints' channels, found {found}{trunc}")
    try:
        values = np.array(words, dtype=float).reshape(n_frames, n_ch)
    except ValueError:
        for k, line in enumerate(data_lines):
            for w in line.split():
                try:
                    float(w)
                except ValueError:
                    raise tok.error(first_data_line + k, f"{w!r} is not a number") from None
        raise
    bad = ~(np.abs(values) <= MAX_VALUE)  # also catches inf and NaN
    if bad.any():
        f, c = np.argwhere(bad)[0]
        raise tok.error(first_data_line + int(f), f"value {values[f, c]} in channel {c} "
                                                  f"is not a finite number of at most {MAX_VALUE:g}")
    skeleton = Skeleton(names, [j.parent for j in joints], np.stack([j.offset for j in joints]),
                        end_sites)
    return skeleton, [j.channels for j in joints], frame_time, values


def _change_basis(motion: Motion, basis: np.ndarray, scale: float) -> Motion:
    """Express a motion in another frame: positions -> scale * basis @ p, rotations conjugated."""
    qb = rot.from_matrix(basis)
    sk = motion.skeleton
    skeleton = Skeleton(sk.names, sk.parents, scale * sk.offsets @ basis.T,
                        {j: scale * basis @ o for j, o in sk.end_sites.items()})
    q = rot.multiply(rot.multiply(qb, motion.local_rotations), rot.conjugate(qb))
    t = None if motion.local_translations is None else scale * motion.local_translations @ basis.T
    return Motion(skeleton, motion.fps, scale * motion.root_position @ basis.T, q, t)


def read_bvh(path: str | Path, scale: float = 0.01, y_up: bool = True) -> Motion:
    """Read a BVH file as a Motion, Z up, positions times `scale` (0.01: centimetres to metres).

    Joints whose position channels are animated keep them in local_translations; the root's
    become root_position. Raises BVHError naming the line for malformed files.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig", errors="strict")
    except UnicodeDecodeError as e:
        raise BVHError(f"{path}: not a text file ({e.reason} at byte {e.start})") from None
    return bvh_from_text(text, source=str(path), scale=scale, y_up=y_up)


def bvh_from_text(text: str, source: str = "<bvh>", scale: float = 0.01, y_up: bool = True) -> Motion:
    skeleton, channels, frame_time, values = parse_bvh(text, source)
    T, J = values.shape[0], len(skeleton)
    local_q = np.empty((T, J, 4))
    translations = np.broadcast_to(skeleton.offsets, (T, J, 3)).copy()
    any_child_positions = False
    col = 0
    for j, chans in enumerate(channels):
        block = values[:, col: col + len(chans)]
        col += len(chans)
        rot_idx = [k for k, c in enumerate(chans) if c in _ROTATION]
        order = "".join(chans[k][0] for k in rot_idx)
        local_q[:, j] = rot.from_euler(np.radians(block[:, rot_idx]), order)
        pos_idx = [k for k, c in enumerate(chans) if c in _POSITION]
        if pos_idx:
            by_axis = {chans[k][0]: block[:, k] for k in pos_idx}
            translations[:, j] = np.stack([by_axis["X"], by_axis["Y"], by_axis["Z"]], axis=-1)
            any_child_positions |= j > 0
    root = translations[:, 0].copy()
    fps = 1.0 / frame_time
    if abs(fps - round(fps)) < 1e-3 * fps:  # "0.0333333" means 30 fps, not 30.00003
        fps = float(round(fps))
    motion = Motion(skeleton, fps, root, local_q,
                    translations if any_child_positions else None)
    basis = Y_UP_TO_Z_UP if y_up else np.eye(3)
    return _change_basis(motion, basis, scale)


def write_bvh(path: str | Path, motion: Motion, scale: float = 100.0, y_up: bool = True,
              order: str = "ZXY") -> None:
    """Write a Motion as BVH (Y up and centimetres by default: the inverse of read_bvh).

    Joints get 6 channels when the motion carries per-joint translations, otherwise the root
    gets 6 and the others 3. The file is written to a temporary name and renamed, so a failure
    never leaves half a file.
    """
    path = Path(path)
    basis = Y_UP_TO_Z_UP.T if y_up else np.eye(3)
    m = _change_basis(motion, basis, scale)
    sk = m.skeleton
    six = m.local_translations is not None
    pos_names = " ".join(_POSITION)
    rot_names = " ".join(f"{a}rotation" for a in order)

    out = io.StringIO()
    out.write("HIERARCHY\n")

    def emit(j: int, depth: int) -> None:
        pad = "  " * depth
        kind = "ROOT" if j == 0 else "JOINT"
        out.write(f"{pad}{kind} {sk.names[j]}\n{pad}{{\n")
        o = sk.offsets[j]
        out.write(f"{pad}  OFFSET {o[0]:.6f} {o[1]:.6f} {o[2]:.6f}\n")
        if j == 0 or six:
            out.write(f"{pad}  CHANNELS 6 {pos_names} {rot_names}\n")
        else:
            out.write(f"{pad}  CHANNELS 3 {rot_names}\n")
        for c in sk.children(j):
            emit(c, depth + 1)
        if j in sk.end_sites:
            e = sk.end_sites[j]
            out.write(f"{pad}  End Site\n{pad}  {{\n{pad}    OFFSET {e[0]:.6f} {e[1]:.6f} {e[2]:.6f}\n{pad}  }}\n")
        out.write(f"{pad}}}\n")

    emit(0, 0)
    out.write(f"MOTION\nFrames: {m.num_frames}\nFrame Time: {1.0 / m.fps:.8f}\n")
    eulers = np.degrees(rot.to_euler(m.local_rotations, order))  # (T, J, 3)
    cols = []
    for j in range(len(sk)):
        if j == 0:
            cols.append(m.root_position)
        elif six:
            cols.append(m.local_translations[:, j])
        cols.append(eulers[:, j])
    np.savetxt(out, np.concatenate(cols, axis=1), fmt="%.6f")
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(out.getvalue())
    tmp.replace(path)
