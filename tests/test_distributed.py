"""Training across processes: `torchrun ... train generator` with two gloo processes on the
CPU and a tiny Llama base, against one process on the same global batch."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import DATA, ROOT
from safetensors.torch import load_file

from backend.data import dataset
from backend.training.distributed import World, from_environment

STEPS = 4


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cache")
    dataset.build([DATA / "bandai-1", DATA / "bandai-2"], folder, workers=2, progress=False)
    return folder


def _train(cache, tiny_weights, out, processes: int, *extra: str) -> dict:
    args = ["-m", "backend", "train", "generator", "--cache", str(cache), "--tokenizer", str(tiny_weights),
            "--out", str(out), "--base", str(tiny_weights.parent / "base"), "--lora-r", "4",
            "--steps", str(STEPS), "--batch", "6", "--lr", "0.05", "--seed", "3", "--threads", "1",
            "--no-bf16", "--device", "cpu", *extra]
    launch = [sys.executable] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    run = subprocess.run(launch + args, cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**env, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads((out / "generator_metrics.json").read_text())


def _trained(out) -> dict[str, torch.Tensor]:
    tensors = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    tensors.update(load_file(str(out / "new_tokens.safetensors")))
    return tensors


def _assert_same_training(a, b, what: str) -> None:
    wa, wb = _trained(a), _trained(b)
    assert wa.keys() == wb.keys()
    worst = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    moved = max(float(wa[k].abs().max()) for k in wa if "lora_B" in k)
    print(f"{what}: LoRA B up to {moved:.2e}, differences up to {worst:.2e}")
    assert moved > 5e-3, "training moved nothing: the comparison would prove nothing"
    assert worst < 1e-3 * moved, f"{what}: weights differ by {worst:.2e} from one process's"


def test_two_processes_train_as_one_on_the_same_global_batch(cache, tiny_weights, tmp_path):
    one = _train(cache, tiny_weights, tmp_path / "one", 1)
    two = _train(cache, tiny_weights, tmp_path / "two", 2)
    assert (one["processes"], two["processes"], one["steps"], two["steps"]) == (1, 2, STEPS, STEPS)
    assert one["final_loss"].keys() == two["final_loss"].keys()
    for key, value in one["final_loss"].items():
        assert two["final_loss"][key] == pytest.approx(value, rel=1e-3, abs=1e-3), key
    _assert_same_training(tmp_path / "one", tmp_path / "two", "two processes")
    # Rank 0 alone writes: one set of results, no second rank's files beside them.
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())

    # A run stopped on two processes goes on, and ends, on one: checkpoints are whole.
    half = _train(cache, tiny_weights, tmp_path / "resumed", 2, "--stop-at", str(STEPS // 2))
    assert half["stopped"] and half["steps"] == STEPS // 2
    ended = _train(cache, tiny_weights, tmp_path / "resumed", 1)
    assert ended["resumed_from"] == STEPS // 2 and ended["steps"] == STEPS
    _assert_same_training(tmp_path / "one", tmp_path / "resumed", "resumed on another world size")


def test_world_from_torchrun_environment(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert from_environment() == World(0, 1, 0)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    world = from_environment()
    assert (world.rank, world.size, world.local_rank, world.main) == (3, 4, 1, False)
    assert world.shard(list(range(10))) == [3, 7]
    assert world.device(torch.device("cuda")) == torch.device("cuda", 1)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ValueError, match="rank 4 of a world of 4"):
        from_environment()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ValueError, match="whole numbers"):
        from_environment()
