"""Training on several processes with torch.distributed, as `torchrun` starts them:

    torchrun --nproc_per_node 8 -m backend train generator --base /models/llama-13b --batch 256 ...

Every rank draws the same global batch (one seeded RNG, so the batch does not depend on how many
processes share it) and trains on its slice of it; DistributedDataParallel averages gradients,
with each rank's loss normalised by the global batch's target count, so a step is the step one
process takes on the whole batch. Checkpoints hold full, unsharded state written by rank 0, so a
run resumes on any number of processes. Without torchrun's environment it is one process and
nothing here touches torch.distributed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (rank 0 of 1 when alone)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """The process that reports, saves and writes results."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def shard(self, items: list) -> list:
        """This rank's slice of a global batch (every rank gets at least one when len >= size)."""
        return items[self.rank:: self.size]

    def device(self, device: torch.device) -> torch.device:
        """Each rank's own accelerator: cuda:LOCAL_RANK where torchrun gives several."""
        if device.type == "cuda" and self.distributed:
            return torch.device("cuda", self.local_rank)
        return device

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on one (a stop or a spent budget ends all ranks
        at the same step; one rank stopping alone would leave the others waiting forever)."""
        if not self.distributed:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=_collective_device())
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item() > 0)

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sums of `values` over the ranks."""
        if not self.distributed:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=_collective_device())
        torch.distributed.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()


def _collective_device() -> torch.device:
    # NCCL moves only CUDA tensors; gloo only CPU ones.
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def from_environment() -> World:
    """The world torchrun describes in RANK, WORLD_SIZE and LOCAL_RANK (one process without them)."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ValueError("RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers (torchrun sets them)") from None
    if size < 1 or not 0 <= rank < size or local < 0:
        raise ValueError(f"rank {rank} of a world of {size} processes is not a place torchrun gives")
    return World(rank, size, local)


def start(device: torch.device) -> World:
    """Join the process group torchrun set up (NCCL on CUDA, gloo on the CPU); alone: nothing."""
    world = from_environment()
    if world.distributed and not torch.distributed.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(world.local_rank)
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return world


def finish(world: World) -> None:
    if world.distributed and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def replicate(module: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """`module` under DistributedDataParallel (as it is when alone). Parameters unused in a step
    are allowed: a slice of a batch may hold no caption, and then the text head gets no gradient."""
    if not world.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)
