"""DynamicPoseNet's stochastic batch contrastive loss (SBCL), as a term of the generator's
training (`train generator --contrastive W`).

Each masked example with text (text-to-motion or infill) of a step's randomly drawn batch gives a pair: its text, read as the
LM's hidden state at the <mot> token (causal, so it has seen the caption and no motion), and its
motion, the mean of its motion codes' embeddings (the rows the generator reads and writes).
Small projections map both into one space, where a symmetric InfoNCE pulls each pair together
and pushes it from the batch's other pairs. Pairs with the same content and style labels are
not counted as negatives: in a batch of 16 from 17 contents two walks are common, and a walk's
caption is not wrong for another walk.

The projections exist only while training; the saved model is unchanged in format."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

PROJECTION = 128
TEMPERATURE = 0.1


@dataclass
class Pairs:
    """The batch rows that carry a text-to-motion pair."""

    rows: torch.Tensor       # (P,) batch row of each pair
    text_at: torch.Tensor    # (P,) position of the <mot> token in that row
    codes: torch.Tensor      # (P, N) each pair's motion codes, -1 past its end
    labels: list[str]        # what the pair shows ("content/style"), to spare same-label negatives

    def __len__(self) -> int:
        return len(self.labels)


def pairs_of(examples: list[tuple[list[int], int, int, list[int], int]], labels: list[str],
             is_t2m: list[bool], code_of) -> Pairs:
    """Pairs from collated-to-be examples (ids, motion start, length, motion targets, caption start):
    the text-to-motion ones with text (the <mot> token after at least one text token). A code
    is its target where masked, else read back from the ids by `code_of(id)`."""
    rows, text_at, codes, kept = [], [], [], []
    for b, ((seq, start, n, targets, _), label, t2m) in enumerate(zip(examples, labels, is_t2m)):
        if not t2m or n == 0 or start < 3:  # start: [task, <mot>] alone means no text
            continue
        rows.append(b)
        text_at.append(start - 1)
        codes.append([targets[start + i] if targets[start + i] >= 0 else code_of(seq[start + i]) for i in range(n)])
        kept.append(label)
    width = max((len(c) for c in codes), default=0)
    table = torch.full((len(codes), width), -1, dtype=torch.long)
    for i, c in enumerate(codes):
        table[i, : len(c)] = torch.tensor(c)
    return Pairs(torch.tensor(rows, dtype=torch.long), torch.tensor(text_at, dtype=torch.long), table, kept)


class BatchContrast(nn.Module):
    """The two projections and the loss."""

    def __init__(self, width: int, dim: int = PROJECTION, temperature: float = TEMPERATURE):
        super().__init__()
        self.text = nn.Linear(width, dim)
        self.motion = nn.Linear(width, dim)
        self.temperature = temperature

    def forward(self, hidden: torch.Tensor, code_rows: torch.Tensor, pairs: Pairs) -> torch.Tensor | None:
        """hidden: (B, L, D) the LM's last hidden states; code_rows: (codes, D) the motion codes'
        embeddings. None when the batch holds fewer than two pairs of different labels."""
        if len(pairs) < 2 or len(set(pairs.labels)) < 2:
            return None
        t = hidden[pairs.rows, pairs.text_at].float()
        present = pairs.codes >= 0
        rows = code_rows[pairs.codes.clamp(min=0)].float() * present[..., None]
        m = rows.sum(1) / present.sum(1, keepdim=True)
        t = F.normalize(self.text(t), dim=-1)
        m = F.normalize(self.motion(m), dim=-1)
        logits = t @ m.T / self.temperature
        same = torch.tensor([[a == b for b in pairs.labels] for a in pairs.labels], device=logits.device)
        eye = torch.eye(len(pairs), dtype=torch.bool, device=logits.device)
        logits = logits.masked_fill(same & ~eye, float("-inf"))
        target = torch.arange(len(pairs), device=logits.device)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
