"""Reprogrammer = bridge (theta) -> frozen source model -> output map (omega).

The only object the trainers see. Everything trainable lives at the two
ends; construction refuses a source model that is not frozen.

`reads` says which source output the map sees: "logits" (classifier sources),
"log_probs" (the log of the class probabilities: all a prediction API returns, so a
head on them trains black-box), "features" (sources without classes of their own, e.g.
language models), "layers" (pooled statistics of every layer, `SourceModel.layer_features`) or
"cells" (every layer's mean over each drawn feature's cell: the source's
`feature_maps` read through the bridge's `cell_masks`, bridges/cell_readout.py).

A bridge with `views` > 1 draws each sample as that many inputs (the table bridge's
per-feature images, bridge(x, view=k)); the map reads the source's outputs for all of
them side by side, and a black-box source is queried `views` times per sample.

`compute_dtype` (None: float32) runs the frozen source under autocast in that dtype (the
sequence estimator's `precision`: bfloat16 reads MiniLM about 1.8 times faster on a CPU with
AVX512-BF16, with the same probe, docs/experiments.md 0.16; under it a text source runs a
bfloat16 copy of its encoder, faster again, 0.36); what it reads is returned in float32, so
bridge, output map and probe never see the reduced precision.
"""

from __future__ import annotations

import torch
from torch import nn

from adapters_modal.base import SourceModel
from xmodal.blackbox import LOG_PROBABILITY_FLOOR
from xmodal.bridges.cell_readout import cell_means
from xmodal.devices import module_device
from xmodal.errors import XmodalError
from xmodal.maps import OutputMap

READS = {"logits": "logits", "log_probs": "logits", "features": "features", "layers": "layer_features",
         "cells": "feature_maps"}  # reads -> source method


class Reprogrammer(nn.Module):
    def __init__(self, bridge: nn.Module, source: SourceModel, output_map: OutputMap,
                 classes: list | None = None, reads: str = "logits"):
        super().__init__()
        if any(p.requires_grad for p in source.parameters()):
            raise ValueError("the source model must be frozen (load it with adapters_modal.load_source)")
        if reads not in READS:
            raise XmodalError(f"reads must be one of {tuple(READS)}, got {reads!r}")
        if reads == "cells" and not (hasattr(source, "feature_maps") and hasattr(bridge, "cell_masks")):
            raise XmodalError("reads='cells' needs a bridge that draws cells (the table bridge) and a source "
                              f"with feature maps (bc-resnet-gsc35-image); {source.name!r} or the bridge has none")
        if reads == "cells" and getattr(bridge, "views", 1) > 1:
            raise XmodalError("reads='cells' averages every feature's square, but a per-feature view draws one "
                              "square alone: read the cells of one image (views='one'), or the log-probabilities")
        if hasattr(bridge, "bind_source"):  # bridges built on the source's input space (e.g. its embeddings)
            bridge.bind_source(source)
        width = getattr(source, "feature_dim", None)  # text sources state their pooled width
        if width is not None:
            width *= getattr(bridge, "views", 1)  # each view's reading, side by side
        if reads == "features" and width is not None and getattr(output_map, "num_source", width) != width:
            raise XmodalError(f"the output map reads {output_map.num_source} features but {source.name!r} pools "
                              f"{width} ({width // getattr(bridge, 'views', 1)} per reading, one reading per view of "
                              "the bridge): build it as LinearHead(source.feature_dim * views, ...); a saved run "
                              "with this mismatch comes from an older xmodal (last-layer features) and must be "
                              "refitted")
        self.reads = reads
        self.bridge = bridge
        self.source = source
        self.output_map = output_map
        self.classes = list(classes) if classes is not None else list(range(output_map.num_target))
        self.compute_dtype: torch.dtype | None = None

    @property
    def device(self) -> torch.device:
        """Where the model is (`.to(device)` moves bridge, source and output map together)."""
        return module_device(self)

    @property
    def queries_per_sample(self) -> int:
        """Source inputs drawn per sample: the bridge's views (1 for most bridges)."""
        return getattr(self.bridge, "views", 1)

    @property
    def probe_views(self) -> int:
        """Views a probe reduces one by one (xmodal.training.probe): the bridge's own `probe_views`
        (1 for views that are readings of one input, side by side), else its views."""
        return getattr(self.bridge, "probe_views", self.queries_per_sample)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """What training changes: theta and omega, except a head on the log-probabilities, which
        stays where its probe put it, white-box and black-box alike (Adam steps in the raw
        log-probability scale, whose means lie near -15, moved its scores by tens per step and
        wrecked it within an epoch: GunPoint through EfficientNet-Lite0)."""
        fixed = "output_map." if self.reads == "log_probs" else None
        return [p for name, p in self.named_parameters()
                if not name.startswith("source.") and p.requires_grad and not (fixed and name.startswith(fixed))]

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """theta and omega (and map buffers such as the label assignment), never the source."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("source.")}

    def source_logits(self, x: torch.Tensor) -> torch.Tensor:
        """What the output map reads: the source's logits, features, layer statistics or cell means (see
        `reads`); of a multi-view bridge, those of every view side by side (view 0's first)."""
        if self.queries_per_sample == 1:
            return self._read(self.bridge(x))
        return torch.cat([self._read(self.bridge(x, view=k)) for k in range(self.queries_per_sample)], dim=1)

    def _read(self, inputs: torch.Tensor) -> torch.Tensor:
        read_source = getattr(self.source, READS[self.reads])
        if self.compute_dtype is None:
            read = read_source(inputs)
        else:
            with torch.autocast(self.device.type, dtype=self.compute_dtype):
                read = read_source(inputs).float()
        if self.reads == "log_probs":  # a black box's log-probabilities pass unchanged
            return torch.log_softmax(read, dim=1).clamp_min(LOG_PROBABILITY_FLOOR)
        return cell_means(read, self.bridge.cell_masks()) if self.reads == "cells" else read

    def constrain(self) -> None:
        """Re-impose the bridge's constraints after an optimiser step (R2DL: k-sparse theta)."""
        if hasattr(self.bridge, "constrain"):
            self.bridge.constrain()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Target-class log-scores (N, K_T)."""
        return self.output_map(self.source_logits(x))

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Target-class probabilities (N, K_T) on the CPU; x may be on any device, each batch
        goes to the model's."""
        was_training = self.training
        self.eval()
        device = self.device
        try:
            parts = [self(x[i : i + batch_size].to(device)).softmax(dim=1).cpu() for i in range(0, len(x), batch_size)]
        finally:
            self.train(was_training)
        return torch.cat(parts)
