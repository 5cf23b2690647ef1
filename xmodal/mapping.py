"""Output maps: from the frozen source model's logits to target-class scores.

LabelMapping (many-to-one, V2S eq. 2): each target class owns m distinct
source classes and scores the mean of their probabilities. Its assignment is
either random (seeded) or frequency-based greedy (Tsai, Chen & Ho 2020): the
source classes the frozen model most often predicts for a target class's
training samples, before any training, are given to that class.

Iterative re-mapping (ILM-VP, Chen et al. CVPR 2023): the frequency-based
assignment is recomputed every `remap_every` epochs from the responses of
the model being trained (the current theta), not only once before training.

BayesianMapping (BLM, Cai et al. NeurIPS 2024): a dense, probabilistic
source-to-target matrix estimated from how often each source label is
predicted for each target class; also recomputed every `remap_every` epochs.

LinearHead: a trainable linear layer on the source logits, or (reads="features")
on the source's pooled features. `start_as_probe` sets it to a logistic-regression
probe with its L2 strength chosen on validation: R2DL's default head (linear
probing, then joint training: LP-FT).

All return log-scores; `cross_entropy` on them is the training loss, and a
softmax over them gives target-class probabilities.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xmodal.errors import XmodalError

MAP_KINDS = ("frequency", "random", "linear", "ilm", "blm", "blm+")
# Probe strengths tried on the validation split, finer and lower where the thousands of
# pooled LM features put the optimum (C = 0.01 won at the edge of a 0.01-10 grid on every
# R2DL set; 0.003, the new edge, wins on several, so a lower value may still help).
PROBE_C = (0.003, 0.01, 0.03, 0.1, 1.0, 10.0)


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


def _check_remap_every(remap_every: int) -> int:
    if isinstance(remap_every, bool) or not isinstance(remap_every, int) or remap_every < 1:
        raise XmodalError(f"remap_every must be a whole number of epochs >= 1, got {remap_every!r}")
    return remap_every


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
    """Many-to-one: score_t = mean of the probabilities of the source classes t owns.

    assignment "ilm" is the frequency assignment redone every `remap_every`
    epochs during training (ILM-VP); "frequency" and "random" never change
    once training starts.
    """

    def __init__(self, num_source: int, num_target: int, per_class: int | None = None,
                 assignment: str = "frequency", seed: int = 0, remap_every: int = 1):
        super().__init__()
        per_class = num_source // num_target if per_class is None else per_class
        _check_class_counts(num_source, num_target, per_class)
        if assignment not in ("frequency", "random", "ilm"):
            raise XmodalError(f"label assignment must be 'frequency', 'random' or 'ilm', got {assignment!r}")
        self.kind = assignment
        self.needs_source_outputs = assignment in ("frequency", "ilm")
        if assignment == "ilm":
            self.remap_every = _check_remap_every(remap_every)
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


BLM_PLUS_TOP_K = 3  # BLM+'s k in Cai et al.'s experiments


def bayesian_counts(source_logits: torch.Tensor, targets: torch.Tensor, num_target: int,
                    top_k: int = 1) -> torch.Tensor:
    """(K_S, K_T) joint frequency of source label s and true target label t.

    top_k = 1 (BLM): d[s, t] = #{i : y_i = t and argmax f(x_i) = s}.
    top_k > 1 (BLM+): d[s, t] = sum over i with y_i = t of p_i(s) when s is
    among the k most probable source labels of x_i (probability aggregation).
    """
    probs = source_logits.softmax(dim=1).double()
    top_values, top_indices = probs.topk(top_k, dim=1)
    votes = torch.zeros_like(probs).scatter_(1, top_indices, top_values if top_k > 1 else 1.0)
    return votes.T @ F.one_hot(targets, num_target).double()


def bayesian_matrix(counts: torch.Tensor, laplace: float) -> torch.Tensor:
    """BLM's omega from the joint counts d (K_S, K_T), in two steps:

    1. conditional, Laplace-smoothed: P(t | s) = (d[s, t] + lambda) / (sum_t' d[s, t'] + K_T * lambda);
       every row sums to 1 and every entry is > 0 (a source label never
       predicted gets the uniform row 1 / K_T);
    2. column normalisation: omega[s, t] = P(t | s) / sum_s' P(t | s'); every
       column sums to 1, so target classes with many training samples do not
       get larger scores just for that.

    Cai et al.'s reference code adds lambda to the denominator only, so a
    (source, target) pair never seen together stays exactly 0; the add-lambda
    (textbook Laplace) smoothing used here keeps every entry > 0, so no source
    label is ever cut off from a target class on a small training set.
    """
    num_target = counts.shape[1]
    conditional = (counts + laplace) / (counts.sum(dim=1, keepdim=True) + num_target * laplace)
    return conditional / conditional.sum(dim=0, keepdim=True)


class BayesianMapping(OutputMap):
    """BLM / BLM+: score_t = sum_s p(s | x) * omega[s, t] with omega from
    `bayesian_matrix`, re-estimated every `remap_every` epochs on the training
    data through the current reprogrammer (omega is not trained by gradient)."""

    def __init__(self, num_source: int, num_target: int, laplace: float = 1.0, top_k: int = 1,
                 remap_every: int = 1):
        super().__init__()
        if num_target < 2:  # a dense matrix: more target than source classes is allowed
            raise XmodalError(f"need at least 2 target classes, got {num_target}")
        if not (isinstance(laplace, (int, float)) and laplace > 0 and math.isfinite(laplace)):
            raise XmodalError(f"laplace (BLM's smoothing lambda) must be a positive number, got {laplace!r}")
        if not 1 <= top_k <= num_source:
            raise XmodalError(f"top_k must be between 1 and {num_source}, got {top_k}")
        self.kind = "blm" if top_k == 1 else "blm+"
        self.num_source, self.num_target = num_source, num_target
        self.laplace, self.top_k = float(laplace), top_k
        self.needs_source_outputs = True
        self.remap_every = _check_remap_every(remap_every)
        # Uniform until `prepare` has seen data: every target gets the same score.
        self.register_buffer("omega", torch.full((num_source, num_target), 1.0 / num_source))

    def prepare(self, source_logits: torch.Tensor, targets: torch.Tensor) -> bool:
        omega = bayesian_matrix(bayesian_counts(source_logits, targets, self.num_target, self.top_k), self.laplace)
        changed = not torch.equal(omega.to(self.omega.dtype), self.omega)
        self.omega.copy_(omega)
        return changed

    def forward(self, source_logits: torch.Tensor) -> torch.Tensor:
        # log(p @ omega) computed in log space: stable for tiny probabilities.
        log_probs = source_logits.log_softmax(dim=1)
        return torch.logsumexp(log_probs[:, :, None] + self.omega.log()[None], dim=1)

    def settings(self) -> dict:
        return {"kind": self.kind, "num_source": self.num_source, "num_target": self.num_target,
                "laplace": self.laplace, "top_k": self.top_k, "remap_every": self.remap_every}


def _probe_model(c: float, seed: int):
    """The logistic regression behind every probe start (L2 with strength 1/c)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=2000, random_state=seed)


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

    @torch.no_grad()
    def fit_probe(self, inputs: torch.Tensor, targets: torch.Tensor, seed: int = 0, c: float = 1.0) -> None:
        """Set the layer to a logistic-regression probe on fixed inputs (standardised,
        L2 with strength 1/c), the scaler folded into the weights.

        Linear probing before joint training (LP-FT, Kumar et al. 2022): the head then
        starts from the best linear read-out of the initial features instead of random
        weights, so the first steps' gradients reach theta with a useful signal."""
        x, y = inputs.double().numpy(), targets.numpy()
        if len(np.unique(y)) != self.num_target:
            raise XmodalError(f"the probe needs examples of all {self.num_target} classes, got {len(np.unique(y))}")
        mean, std = x.mean(axis=0), x.std(axis=0) + 1e-8
        probe = _probe_model(c, seed).fit((x - mean) / std, y)
        weight, bias = probe.coef_, probe.intercept_
        if self.num_target == 2:  # one logit difference -> two symmetric logits
            weight, bias = np.stack([-weight[0], weight[0]]) / 2, np.array([-bias[0], bias[0]]) / 2
        self.linear.weight.copy_(torch.from_numpy(weight / std))
        self.linear.bias.copy_(torch.from_numpy(bias - (weight / std) @ mean))

    @torch.no_grad()
    def start_as_probe(self, features: torch.Tensor, targets: torch.Tensor,
                       validation: tuple[torch.Tensor, torch.Tensor] | None, seed: int = 0) -> float:
        """`fit_probe` with C chosen by validation log-loss among PROBE_C (C = 1 without a
        validation split; `validation` = (features, targets)). The winning fit is restored,
        not refitted. Returns the C used."""
        if validation is None:
            self.fit_probe(features, targets, seed)
            return 1.0
        fitted = {}  # C -> (validation log-loss, head state)
        for c in PROBE_C:
            self.fit_probe(features, targets, seed, c)
            loss = float(F.cross_entropy(self(validation[0]), validation[1]))
            fitted[c] = (loss, copy.deepcopy(self.state_dict()))
        best = min(PROBE_C, key=lambda c: fitted[c][0])
        self.load_state_dict(fitted[best][1])
        return best

    @staticmethod
    def probe_c_by_cv(features: torch.Tensor, targets: torch.Tensor, seed: int = 0, folds: int = 5) -> float:
        """The PROBE_C with the lowest stratified k-fold log-loss of `fit_probe`'s model
        (standardisation fitted per fold, then logistic regression) on these features; k at
        most the smallest class's count, C = 1 when a class has a single example. For small
        sets, where one validation split of a few series cannot rank six values of C."""
        from sklearn.metrics import log_loss
        from sklearn.model_selection import StratifiedKFold, cross_val_predict
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        y = targets.numpy()
        k = min(folds, int(np.bincount(y)[np.unique(y)].min()))
        if k < 2:
            return 1.0
        x = features.double().numpy()
        splits = StratifiedKFold(k, shuffle=True, random_state=seed)

        def cv_loss(c: float) -> float:
            model = make_pipeline(StandardScaler(), _probe_model(c, seed))
            return log_loss(y, cross_val_predict(model, x, y, cv=splits, method="predict_proba"), labels=np.unique(y))

        losses = {c: cv_loss(c) for c in PROBE_C}
        return min(PROBE_C, key=losses.get)

    def settings(self) -> dict:
        return {"kind": self.kind, "num_source": self.num_source, "num_target": self.num_target}


def build_output_map(kind: str, num_source: int, num_target: int, per_class: int | None = None,
                     seed: int = 0, remap_every: int = 1, laplace: float = 1.0,
                     top_k: int | None = None) -> OutputMap:
    """`remap_every` applies to "ilm", "blm" and "blm+"; `laplace` to "blm" and "blm+";
    `top_k` to "blm+" (default 3)."""
    if kind == "linear":
        return LinearHead(num_source, num_target, seed=seed)
    if kind in ("frequency", "random", "ilm"):
        return LabelMapping(num_source, num_target, per_class, assignment=kind, seed=seed, remap_every=remap_every)
    if kind in ("blm", "blm+"):
        top_k = 1 if kind == "blm" else (top_k or BLM_PLUS_TOP_K)
        return BayesianMapping(num_source, num_target, laplace=laplace, top_k=top_k, remap_every=remap_every)
    raise XmodalError(f"unknown output map {kind!r}; choose one of {', '.join(MAP_KINDS)}")


def output_map_from_settings(settings: dict, seed: int = 0) -> OutputMap:
    return build_output_map(settings["kind"], settings["num_source"], settings["num_target"],
                            settings.get("per_class"), seed=seed, remap_every=settings.get("remap_every", 1),
                            laplace=settings.get("laplace", 1.0), top_k=settings.get("top_k"))
