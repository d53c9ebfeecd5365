"""`bench steer`: keyed walks with a prompt for the gap, read by the shipped evaluator, on real
walks (the engine is the tiny one, so only the capture's reading is a fact about motion)."""
import numpy as np
import pytest

from conftest import DATA, ROOT
from motioncore import canonical, read_bvh
from motioncore import rotations as rot

WALKS = [DATA / "styles" / "dataset-1_walk_giant_001.bvh", DATA / "styles" / "dataset-1_walk_giant_002.bvh"]


def test_steer_reads_the_gap_of_keyed_walks(tiny_weights):
    from backend.engine import Engine
    from backend.evaluation import steered
    from backend.models.evaluator import Evaluator

    motions = [canonical.to_canonical(read_bvh(p)).resample(canonical.MODEL_FPS) for p in WALKS]
    windows = [(p.stem, steered.middle_window(m, 40)) for p, m in zip(WALKS, motions)]
    engine = Engine(tiny_weights, device="cpu", dtype="float32")
    evaluator = Evaluator.from_pretrained(ROOT / "weights" / "default" / "evaluator")
    prompts = steered.PROMPTS[:1]
    result = steered.run(engine, evaluator, windows, prompts=prompts, seeds=(0, 1))
    assert result["gap_frames"] == 40
    assert result["capture"]["read_as_walking"] == 1.0  # the shipped evaluator knows a real walk
    row = result["prompts"][prompts[0][0]]
    assert row["windows"] == 4 and sum(row["reads"].values()) == 4
    assert 0.0 <= row["read_as_asked"] <= 1.0
    assert "read as wave-right-hand" in steered.table(result)
    # The keys are the walk's own on both sides of the gap.
    _, w = windows[0]
    filled = engine.inbetween(w, steered.keys_of(w), text=prompts[0][0])
    keys = steered.keys_of(w)
    assert rot.angle_between(filled.local_rotations[keys], w.local_rotations[keys]).max() < 1e-5
    assert not np.allclose(filled.local_rotations[10:50], w.local_rotations[10:50], atol=1e-3)
    with pytest.raises(ValueError, match="needs 80 frames"):
        steered.middle_window(motions[0].trim(0, 79), 60)
