"""FusedBridge: one bridge per part of a fused source (adapters_modal.fused), the same target
samples drawn for each; the source reads the tuple of their outputs, part by part.

theta is every part's own (a delta per source input); nothing is shared between parts. A part
bridge with several views (the filtered tones beside their start: the trained-fusion preset's trained view)
gives its part the tuple of its views, which that part's source reads one after the other."""

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

    def part_views(self) -> list[int]:
        """The views of each part's bridge (1 for most): the readings of each part's source."""
        return [getattr(part, "views", 1) for part in self.parts]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | tuple[torch.Tensor, ...], ...]:
        return tuple(part(x) if views == 1 else tuple(part(x, view=k) for k in range(views))
                     for part, views in zip(self.parts, self.part_views()))
