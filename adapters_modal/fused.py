"""Several frozen sources read side by side: `load_source("bc-resnet-gsc35+efficientnet-lite0")`.

A fused source takes one input per part (a tuple, in the order of its name) and returns the
parts' layer statistics concatenated: one head reads every source at once. It has no
classes and no single representation of its own, so it offers `layer_features` only. Its
parts must be registered sources (`xmodal sources`): a saved fused run is then trusted and
hash-checked like any registered one, and each part's natural bridge is known.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from adapters_modal.base import FUSION_SEPARATOR, InputSpec, SourceModel, register_fusion
from xmodal.errors import XmodalError

FUSED = "fused"  # the fused source's modality: its parts say what each one takes


class FusedSource(SourceModel):
    """Frozen sources whose layer statistics are concatenated, in the order given."""

    class_names: list[str] = []
    input_spec = InputSpec(FUSED)

    def __init__(self, parts: list[SourceModel]):
        # One hash names the combination: the parts' own hashes, in order.
        digest = hashlib.sha256("\n".join(part.weights_sha256 for part in parts).encode()).hexdigest()
        super().__init__(digest)
        self.parts = nn.ModuleList(parts)
        self.name = FUSION_SEPARATOR.join(part.name for part in parts)

    def layer_width(self) -> int:
        return sum(part.layer_width() for part in self.parts)

    def layer_features(self, inputs: tuple[torch.Tensor | tuple[torch.Tensor, ...], ...]) -> torch.Tensor:
        """(N, the readings' widths): each part's layer statistics of its own input, side by side; a part
        given a tuple of inputs (its bridge's views) reads each, side by side in the part's place, so
        the width is then more than `layer_width()`."""
        if len(inputs) != len(self.parts):
            raise XmodalError(f"{self.name!r} reads {len(self.parts)} inputs, one per source; got {len(inputs)}")
        return torch.cat([part.layer_features(view) for part, x in zip(self.parts, inputs)
                          for view in (x if isinstance(x, tuple) else (x,))], dim=1)

    def features(self, inputs) -> torch.Tensor:
        raise XmodalError(f"{self.name!r} fuses several sources, which have no classes or single representation "
                          "in common: read their layer statistics (mapping 'layers'), or use one source")


register_fusion(FusedSource)
