"""Which of a fused source's parts to read (setting `choose_sources`; the series `best` preset's way
before it read every part under a probe per source, docs/experiments.md 0.13):
every non-empty subset of the parts is probed on the training split, and the subset whose probe
has the lowest cross-validated log-loss (`Probe.cv_log_loss`, the folds the probe's C is chosen
on) is kept. The sources are read once; each subset is a choice of columns of that reading.

Measured on the 22 UCR sets (docs/experiments.md, "0.6"): 90.97 % mean test accuracy against
90.48 % for always reading all four sources (the fused preset), at about twice its fit time.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from adapters_modal.base import FUSION_SEPARATOR
from adapters_modal.fused import FusedSource
from xmodal.bridges.fused import FusedBridge
from xmodal.devices import module_device
from xmodal.maps import LinearHead
from xmodal.reprogrammer import Reprogrammer
from xmodal.training.loop import in_batches
from xmodal.training.probe import fit_probe


@dataclass
class SourceChoice:
    candidates: list[str]  # each subset, as a fused source name
    cv_log_loss: list[float | None]  # its probe's k-fold log-loss (k <= 5; None: a class too small for folds)
    chosen: str
    seconds: float  # reading the sources and the probes of every subset

    def to_dict(self) -> dict:
        return asdict(self)


def choose_sources(model: Reprogrammer, x: torch.Tensor, y: torch.Tensor, rows: np.ndarray, seed: int,
                   batch_size: int, progress: bool = False) -> tuple[Reprogrammer, SourceChoice, torch.Tensor]:
    """(the model reading only the chosen parts, with a fresh head; the choice; those parts' reading of
    x, which the probe start can reuse). `model` reads a FusedSource's layers through a FusedBridge, on
    its device; the probes see only `rows` of x (the fit part: never the rows that judge training).
    When no subset can be cross-validated (a class with one sample), all parts are kept."""
    start = time.perf_counter()
    source, bridge = model.eval().source, model.bridge  # eval: the reading the probe start will see
    features = in_batches(model.source_logits, x.to(module_device(model)), batch_size,
                          progress="choosing sources: reading them" if progress else None)
    edges = np.cumsum([0, *(part.layer_width() for part in source.parts)])
    subsets = [subset for size in range(1, len(source.parts) + 1)
               for subset in itertools.combinations(range(len(source.parts)), size)]
    columns = {subset: np.concatenate([np.arange(edges[i], edges[i + 1]) for i in subset]) for subset in subsets}
    losses = [fit_probe(features[rows][:, columns[subset]], y[rows], seed).cv_log_loss for subset in subsets]
    scored = [(loss, i) for i, loss in enumerate(losses) if loss is not None]
    chosen = subsets[min(scored)[1]] if scored else subsets[-1]
    parts = [source.parts[i] for i in chosen]
    kept_source = parts[0] if len(parts) == 1 else FusedSource(parts).freeze()
    kept_bridge = bridge.parts[chosen[0]] if len(chosen) == 1 else FusedBridge([bridge.parts[i] for i in chosen])
    head = LinearHead(len(columns[chosen]), len(model.classes), seed=seed, clip=model.output_map.clip)
    kept = Reprogrammer(kept_bridge, kept_source, head.to(module_device(model)), model.classes, reads="layers")
    names = [FUSION_SEPARATOR.join(source.parts[i].name for i in subset) for subset in subsets]
    choice = SourceChoice(names, losses, kept_source.name, time.perf_counter() - start)
    return kept, choice, features[:, columns[chosen]]
