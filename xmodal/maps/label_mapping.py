"""LabelMapping (many-to-one, V2S eq. 2): each target class owns m distinct source
classes and scores the mean of their probabilities. Its assignment is either random
(seeded) or frequency-based greedy (Tsai, Chen & Ho 2020): the source classes the frozen
model most often predicts for a target class's training samples, before any training.

Iterative re-mapping (ILM-VP, Chen et al. CVPR 2023): the frequency-based assignment is
recomputed every `remap_every` epochs from the responses of the model being trained.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from xmodal.errors import XmodalError
from xmodal.maps.base import OutputMap, check_class_counts, check_remap_every

# How a label mapping assigns source classes to target classes (its `kind` when saved).
ASSIGNMENTS = ("frequency", "random", "ilm")


def random_assignment(num_source: int, num_target: int, per_class: int, generator: torch.Generator) -> torch.Tensor:
    """(num_target, per_class) distinct source indices drawn at random."""
    order = torch.randperm(num_source, generator=generator)
    return order[: num_target * per_class].reshape(num_target, per_class)


def frequency_assignment(
    source_logits: torch.Tensor, targets: torch.Tensor, num_target: int, per_class: int
) -> torch.Tensor:
    """Greedy: repeatedly give the (source, target) pair seen most often together
    to that target, until every target class owns `per_class` source classes.

    Frequency = how many samples of target t the frozen model labels s (top-1);
    ties, common on tiny training sets, are broken by the summed probability
    of s over t's samples, which is below 1 per sample and so never outweighs
    a count.
    """
    num_source = source_logits.shape[1]
    probs = source_logits.softmax(dim=1).double()
    one_hot_targets = F.one_hot(targets, num_target).double()
    one_hot_top1 = F.one_hot(probs.argmax(dim=1), num_source).double()
    score = one_hot_top1.T @ one_hot_targets + (probs.T @ one_hot_targets) / (len(targets) + 1)
    owned: list[list[int]] = [[] for _ in range(num_target)]
    for _ in range(num_target * per_class):
        flat = int(torch.argmax(score))
        source, target = divmod(flat, num_target)
        owned[target].append(source)
        score[source, :] = -math.inf
        if len(owned[target]) == per_class:
            score[:, target] = -math.inf
    return torch.tensor(owned, dtype=torch.long, device=source_logits.device)


class LabelMapping(OutputMap):
    """Many-to-one: score_t = mean of the probabilities of the source classes t owns.

    assignment "ilm" is the frequency assignment redone every `remap_every`
    epochs during training (ILM-VP); "frequency" and "random" never change
    once training starts.
    """

    def __init__(self, num_source: int, num_target: int, per_class: int | None = None,
                 assignment: str = "frequency", seed: int = 0, remap_every: int = 1):
        super().__init__()
        per_class = num_source // num_target if per_class is None else per_class
        check_class_counts(num_source, num_target, per_class)
        if assignment not in ASSIGNMENTS:
            raise XmodalError(f"label assignment must be one of {', '.join(ASSIGNMENTS)}, got {assignment!r}")
        self.kind = assignment
        self.needs_source_outputs = assignment in ("frequency", "ilm")
        if assignment == "ilm":
            self.remap_every = check_remap_every(remap_every)
        self.num_source, self.num_target, self.per_class = num_source, num_target, per_class
        generator = torch.Generator().manual_seed(seed)
        # Frequency maps start random and are replaced in `prepare`.
        self.register_buffer("assignment", random_assignment(num_source, num_target, per_class, generator))

    def prepare(self, source_logits: torch.Tensor, targets: torch.Tensor) -> bool:
        if self.kind == "random":
            return False
        owned = frequency_assignment(source_logits, targets, self.num_target, self.per_class)
        changed = not torch.equal(owned, self.assignment)
        self.assignment.copy_(owned)
        return changed

    def forward(self, source_logits: torch.Tensor) -> torch.Tensor:
        log_probs = source_logits.log_softmax(dim=1)[:, self.assignment]  # (N, K_T, m)
        return torch.logsumexp(log_probs, dim=2) - math.log(self.per_class)

    def settings(self) -> dict:
        return {"kind": self.kind, "num_source": self.num_source, "num_target": self.num_target,
                "per_class": self.per_class, "remap_every": self.remap_every}


