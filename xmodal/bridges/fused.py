"""FusedBridge: one bridge per part of a fused source (adapters_modal.fused), the same target
samples drawn for each; the source reads the tuple of their outputs, part by part.

theta is every part's own (a delta per source input); nothing is shared between parts."""

from __future__ import annotations

import torch
from torch import nn


class FusedBridge(nn.Module):
    def __init__(self, parts: list[nn.Module]):
        super().__init__()
        self.parts = nn.ModuleList(parts)

    @property
    def series_length(self) -> int | None:
        """The series length fixed at fit time (every part sees the same series)."""
        return self.parts[0].series_length

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(part(x) for part in self.parts)
