"""The output map contract: from the frozen source's outputs to target-class log-scores.

Every map returns log-scores; `cross_entropy` on them is the training loss, and a
softmax over them gives target-class probabilities.
"""

from __future__ import annotations

import torch
from torch import nn

from xmodal.errors import XmodalError


class OutputMap(nn.Module):
    """Base: `prepare` sees the frozen model's responses to the training data
    once before training (a no-op unless the map is data-driven), and again
    every `remap_every` epochs for the iterative maps (0 = never again)."""

    kind: str
    remap_every: int = 0
    needs_source_outputs = False  # True: `prepare` must see the frozen model's outputs on the training data

    def prepare(self, source_logits: torch.Tensor, targets: torch.Tensor) -> bool:
        """Fit the map's data-driven state; True when that state changed."""
        return False

    def remap_due(self, epoch: int) -> bool:
        """Whether training should call `prepare` again before `epoch` (counted from 1)."""
        return self.remap_every > 0 and epoch > 1 and (epoch - 1) % self.remap_every == 0

    def settings(self) -> dict:
        raise NotImplementedError

    def penalty(self) -> torch.Tensor | float:
        """A term added to the training loss (none unless the map holds one: LinearHead's probe penalty)."""
        return 0.0


def check_remap_every(remap_every: int) -> int:
    if isinstance(remap_every, bool) or not isinstance(remap_every, int) or remap_every < 1:
        raise XmodalError(f"remap_every must be a whole number of epochs >= 1, got {remap_every!r}")
    return remap_every


def check_class_counts(num_source: int, num_target: int, per_class: int) -> None:
    if num_target < 2:
        raise XmodalError(f"need at least 2 target classes, got {num_target}")
    if num_target > num_source:
        raise XmodalError(
            f"{num_target} target classes but the source model has only {num_source} classes: "
            "a many-to-one label mapping is impossible; use the linear head (mapping='linear', CLI --mapping linear)"
        )
    if per_class < 1 or per_class * num_target > num_source:
        raise XmodalError(
            f"{per_class} source classes per target class x {num_target} target classes needs "
            f"{per_class * num_target} distinct source classes, the source has {num_source}; "
            f"use labels_per_class <= {num_source // num_target}"
        )

