"""The limits of a request, in one place: the backend's engine and HTTP schemas and the add-on's
panel fields all read them here."""

MAX_SECONDS = 20.0   # the longest motion one request makes or reads
MAX_FPS = 120.0      # the highest frame rate a motion may have on the wire
MIN_FPS = 8.0        # the lowest (animation on threes at 24 fps); a frame time typed as a rate is refused
MAX_FRAMES = int(MAX_SECONDS * MAX_FPS)
MAX_TEXT = 1000      # characters of prompt; the model reads at most its max_text_tokens of them
MAX_VARIATIONS = 16  # takes from one Generate
# Training an adapter: clips go to the backend at the model's frame rate (20 fps), so a request
# holds no more motion data than one motion of MAX_FRAMES.
TRAIN_FPS = 20.0
MAX_TRAIN_CLIPS = 32
MAX_TRAIN_FRAMES = MAX_FRAMES
MAX_TRAIN_STEPS = 5000
MAX_TRAIN_BATCH = 64
# An adapter's name is its folder's name, on every system; "default" is the shipped model's own.
ADAPTER_NAME = r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,61}[A-Za-z0-9_-]|[A-Za-z0-9]"
DEFAULT_ADAPTER = "default"


def fps_problem(fps: float) -> str | None:
    """Why `fps` is not a frame rate a motion may have (None: it is)."""
    if not (MIN_FPS <= fps <= MAX_FPS):
        return f"the frame rate must be between {MIN_FPS:g} and {MAX_FPS:g} fps, got {fps:g}"
    return None


def motion_problem(frames: int, fps: float) -> str | None:
    """Why a motion of `frames` frames at `fps` cannot be read (None: it can): the one rule
    every route and engine call that takes a motion applies before any work."""
    if problem := fps_problem(fps):
        return problem
    if frames < 2:
        return f"the motion needs at least 2 frames, got {frames}"
    if (frames - 1) / fps > MAX_SECONDS:
        return f"the motion lasts {(frames - 1) / fps:.1f} s; at most {MAX_SECONDS:g} s at a time"
    return None


def training_problem(clips: list[tuple[int, float]]) -> str | None:
    """Why clips of (frames, fps) are too much to train an adapter on at once (None: they are not)."""
    if not 1 <= len(clips) <= MAX_TRAIN_CLIPS:
        return f"train an adapter on 1 to {MAX_TRAIN_CLIPS} clips, got {len(clips)}"
    frames = sum((n - 1) * TRAIN_FPS / fps + 1 for n, fps in clips)
    if frames > MAX_TRAIN_FRAMES:
        return (f"the clips hold {frames / TRAIN_FPS:.0f} s of motion; train on at most "
                f"{MAX_TRAIN_FRAMES / TRAIN_FPS:.0f} s at a time")
    return None


def adapter_name_problem(name: object) -> str | None:
    """Why `name` cannot name a new adapter (None: it can)."""
    import re

    if not isinstance(name, str) or not re.fullmatch(ADAPTER_NAME, name):
        return (f"an adapter name is 1 to 63 letters, digits, spaces, '_', '-' or '.', starting and ending with a "
                f"letter, digit, '_' or '-'; got {name!r}")
    if name.lower() == DEFAULT_ADAPTER:
        return f"{DEFAULT_ADAPTER!r} is the shipped model's own adapter; pick another name"
    return None
