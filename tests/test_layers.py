"""Dependencies point one way. The whole tree's import graph (every import, function-local ones
included) has no circle and no edge against the layers; and the layers import with what they
must not need blocked: motioncore without torch or bpy, the add-on without torch, transformers,
peft, fastapi or the backend, the backend without bpy, the request schemas without torch."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

ADDON = "dynamic_pose"  # the package name Blender gives the add-on (tools/addon_import.py)
ADDON_PARTS = ("settings", "operators", "panels", "client", "rig")
# Inside the backend, lower ranks never import higher ones; training and evaluation (both
# rank 4) never import each other. The faces (rank 5) may use anything below them.
BACKEND_RANK = {"backend": 0, "backend.figures": 0, "backend.cpu_threads": 0, "backend.paths": 0, "backend.device": 0, "backend.sampling": 0, "backend.options": 0, "backend.actions": 0,
                "backend.schemas": 0, "backend.data": 1, "backend.models": 2, "backend.adapters": 2, "backend.engine": 3,
                "backend.jobs": 3, "backend.training": 4, "backend.evaluation": 4,
                "backend.studio": 5, "backend.server": 5, "backend.cli": 5, "backend.__main__": 5}


def module_of(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if not parts:
        return ADDON
    if parts[0] in ADDON_PARTS or parts == ["__init__"]:
        return ".".join([ADDON, *parts])
    return ".".join(parts)


def tree_modules() -> dict[str, Path]:
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    here = {p for p in files if (ROOT / p).exists()}
    here |= {str(p.relative_to(ROOT)) for d in ("backend", "motioncore", "operators", "panels", "client", "rig")
             for p in (ROOT / d).rglob("*.py")}
    return {module_of(ROOT / p): ROOT / p for p in sorted(here)}


def _normal(name: str) -> str:
    """The add-on reaches motioncore relatively (dynamic_pose.motioncore): the same modules."""
    prefix = f"{ADDON}.motioncore"
    return "motioncore" + name[len(prefix):] if name == prefix or name.startswith(prefix + ".") else name


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The tree's modules that `module` imports, anywhere in its file."""
    is_pkg = path.name == "__init__.py"
    package = module if is_pkg else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # `from pkg import sub` imports the module pkg.sub; `from pkg import name`, pkg itself.
            targets = [f"{stem}.{a.name}" if _normal(f"{stem}.{a.name}") in known else stem for a in node.names]
        else:
            continue
        for t in targets:
            t = _normal(t)
            while t and t not in known:  # `from pkg import name`: the module, else the package
                t = t.rpartition(".")[0]
            if t and t != module:
                out.add(t)
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    mods = tree_modules()
    known = set(mods)
    return {m: imports_of(m, p, known) for m, p in mods.items()}


def _layer(module: str) -> str:
    for layer in ("motioncore", "backend", ADDON, "tests", "tools", "benchmarks"):
        if module == layer or module.startswith(layer + "."):
            return layer
    return "other"


def _rank(module: str) -> int | None:
    best = None
    for prefix, rank in BACKEND_RANK.items():
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, rank)
    return None if best is None else best[1]


def test_the_graph_covers_the_tree(graph):
    """The graph is the tree's: it has every part, and edges the checks below can fail on."""
    for m in ("motioncore.retarget", f"{ADDON}.operators.motion", f"{ADDON}.client.session", "backend.engine",
              "backend.models.generator", "backend.training.generator", "backend.evaluation.t2m",
              "backend.data.dataset", "tools.characters"):
        assert m in graph, m
    assert "backend.models.generator" in graph["backend.engine"]
    assert "motioncore.retarget" in graph[f"{ADDON}.rig.motion_io"]  # relative imports resolved
    assert sum(len(e) for e in graph.values()) > 150


def test_no_import_circle(graph):
    """Tarjan's strongly connected components: every one a single module."""
    index, low, on, stack, circles, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                circles.append(sorted(part))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    assert not circles, circles


# The one designed crossing: Embedded mode runs the engine in Blender's own Python, importing
# it when a session starts (never at module import: the blocked-import test below shows that).
# Its adapter calls reach the same faces the server's do (backend.adapters, backend.studio).
EMBEDDED = {(f"{ADDON}.client.embedded", d) for d in ("backend.engine", "backend.jobs", "backend.sampling", "backend.cpu_threads",
                                                      "backend.adapters", "backend.studio")}


def test_no_import_against_the_layers(graph):
    allowed = {"motioncore": {"motioncore"}, ADDON: {ADDON, "motioncore"}, "backend": {"backend", "motioncore"}}
    wrong = []
    for m, deps in graph.items():
        layer = _layer(m)
        for d in deps:
            if (m, d) in EMBEDDED:
                continue
            if layer in allowed and _layer(d) not in allowed[layer]:
                wrong.append(f"{m} -> {d}")
            r_m, r_d = _rank(m), _rank(d)
            if r_m is not None and r_d is not None:
                cross = {(m.split(".") + [""])[1], (d.split(".") + [""])[1]} == {"training", "evaluation"}
                if r_d > r_m or cross:
                    wrong.append(f"{m} -> {d}")
    assert not wrong, wrong


BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
{code}
print('ok')
"""


def run_blocked(blocked: list[str], code: str) -> subprocess.CompletedProcess:
    script = BLOCKER.format(blocked=blocked, code=code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.mark.parametrize("blocked, code", [
    (["torch", "bpy", "transformers", "scipy"], "import pkgutil, importlib, motioncore\n"
     "[importlib.import_module('motioncore.' + m.name) for m in pkgutil.iter_modules(motioncore.__path__)]"),
    (["bpy"], "import backend.cli, backend.server, backend.training.generator, backend.evaluation.t2m"),
])
def test_import_with_forbidden_modules_blocked(blocked, code):
    run = run_blocked(blocked, code)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-3000:]


def test_every_addon_module_imports_without_the_backend_stack(graph):
    """As in a Blender whose Python has no torch: every add-on module, bpy real."""
    pytest.importorskip("bpy")
    addon = sorted(m for m in graph if _layer(m) == ADDON)
    assert len(addon) > 15
    code = ("import importlib\nfrom tools.addon_import import import_addon\nimport_addon()\n"
            f"for m in {addon!r}:\n    importlib.import_module(m)\n"
            "assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'backend')]")
    run = run_blocked(["torch", "transformers", "peft", "fastapi", "backend", "pydantic", "uvicorn"], code)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-3000:]


def test_the_request_schemas_do_not_load_torch():
    run = subprocess.run([sys.executable, "-c", "import sys, backend.schemas; print('torch' in sys.modules)"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "False", run.stderr[-2000:]
