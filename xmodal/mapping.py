"""Output maps: from the frozen source model's logits to target-class scores.

LabelMapping (many-to-one, V2S eq. 2): each target class owns m distinct
source classes and scores the mean of their probabilities. Its assignment is
either random (seeded) or frequency-based greedy (Tsai, Chen & Ho 2020): the
source classes the frozen model most often predicts for a target class's
training samples, before any training, are given to that class.

LinearHead: a trainable linear layer on the source logits.

Both return log-scores; `cross_entropy` on them is the training loss, and a
softmax over them gives target-class probabilities.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from xmodal.errors import XmodalError

MAP_KINDS = ("frequency", "random", "linear")


class OutputMap(nn.Module):
    """Base: `prepare` sees the frozen model's responses to the training data
    once before training (a no-op unless the map is data-driven)."""

    kind: str
    needs_source_outputs = False  # True: `prepare` must see the frozen model's outputs on the training data

    def prepare(self, source_logits: torch.Tensor, targets: torch.Tensor) -> None:
        pass

    def settings(self) -> dict:
        raise NotImplementedError


def _check_class_counts(num_source: int, num_target: int, per_class: int) -> None:
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
    return torch.tensor(owned, dtype=torch.long)


class LabelMapping(OutputMap):
    """Many-to-one: score_t = mean of the probabilities of the source classes t owns."""

    def __init__(self, num_source: int, num_target: int, per_class: int | None = None,
                 assignment: str = "frequency", seed: int = 0):
        super().__init__()
        per_class = num_source // num_target if per_class is None else per_class
        _check_class_counts(num_source, num_target, per_class)
        if assignment not in ("frequency", "random"):
            raise XmodalError(f"label assignment must be 'frequency' or 'random', got {assignment!r}")
        self.kind = assignment
        self.needs_source_outputs = assignment == "frequency"
        self.num_source, self.num_target, self.per_class = num_source, num_target, per_class
        generator = torch.Generator().manual_seed(seed)
        # Frequency maps start random and are replaced in `prepare`.
        self.register_buffer("assignment", random_assignment(num_source, num_target, per_class, generator))

    def prepare(self, source_logits: torch.Tensor, targets: torch.Tensor) -> None:
        if self.kind == "frequency":
            self.assignment.copy_(frequency_assignment(source_logits, targets, self.num_target, self.per_class))

    def forward(self, source_logits: torch.Tensor) -> torch.Tensor:
        log_probs = source_logits.log_softmax(dim=1)[:, self.assignment]  # (N, K_T, m)
        return torch.logsumexp(log_probs, dim=2) - math.log(self.per_class)

    def settings(self) -> dict:
        return {"kind": self.kind, "num_source": self.num_source, "num_target": self.num_target,
                "per_class": self.per_class}


class LinearHead(OutputMap):
    """A trainable linear layer from source logits to target scores; any number of classes."""

    kind = "linear"

    def __init__(self, num_source: int, num_target: int, seed: int = 0):
        super().__init__()
        if num_target < 2:
            raise XmodalError(f"need at least 2 target classes, got {num_target}")
        self.num_source, self.num_target = num_source, num_target
        self.linear = nn.Linear(num_source, num_target)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            bound = 1 / math.sqrt(num_source)
            self.linear.weight.uniform_(-bound, bound, generator=generator)
            self.linear.bias.zero_()

    def forward(self, source_logits: torch.Tensor) -> torch.Tensor:
        return self.linear(source_logits)

    def settings(self) -> dict:
        return {"kind": self.kind, "num_source": self.num_source, "num_target": self.num_target}


def build_output_map(kind: str, num_source: int, num_target: int, per_class: int | None = None,
                     seed: int = 0) -> OutputMap:
    if kind == "linear":
        return LinearHead(num_source, num_target, seed=seed)
    if kind in ("frequency", "random"):
        return LabelMapping(num_source, num_target, per_class, assignment=kind, seed=seed)
    raise XmodalError(f"unknown output map {kind!r}; choose one of {', '.join(MAP_KINDS)}")


def output_map_from_settings(settings: dict) -> OutputMap:
    return build_output_map(settings["kind"], settings["num_source"], settings["num_target"],
                            settings.get("per_class"))
