"""Black-box reprogramming (BAR; Tsai, Chen & Ho, ICML 2020).

The source model is only a function from inputs to class probabilities, such
as a paid prediction API: no gradients, and every sample sent costs a query.
theta and omega (all trainable parameters of the Reprogrammer, flattened into
one vector of d numbers) are trained with the random gradient-free estimate

    g = (b / (q * beta)) * sum_j [L(theta + beta * U_j) - L(theta)] * U_j

with U_j uniform on the unit sphere (b = d, BAR's choice) or standard Gaussian
(b = 1), fed to Adam in place of the true gradient. One step on a mini-batch
of B samples costs B * (q + 1) queries.

- `QueryBudget` counts every sample sent to the source and refuses a call that
  would overspend; `fit_blackbox` checks before each step and stops cleanly,
  keeping the best state found so far.
- `BlackBoxSource` turns any callable (numpy batch in, probabilities out) into
  a gradient-free source for a Reprogrammer; `hide_gradients(source)` does so
  for a SourceModel, keeping its identity so a saved run reloads with it.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils import parameters_to_vector, vector_to_parameters
from tqdm.auto import tqdm

from adapters_modal.base import InputSpec, SourceModel
from xmodal.errors import DataError, XmodalError
from xmodal.maps import LabelMapping
from xmodal.reprogrammer import Reprogrammer
from xmodal.training.loop import FitResult, TrainConfig, _evaluate, validation_split

DISTRIBUTIONS = ("sphere", "gaussian")


class BudgetExhausted(XmodalError):
    """A source call would exceed the query budget."""


class QueryBudget:
    """Counts queries (one per sample sent to the source); `limit=None` only counts."""

    def __init__(self, limit: int | None = None):
        if limit is not None and limit < 1:
            raise DataError(f"the query budget must be at least 1, got {limit}")
        self.limit, self.used = limit, 0

    @property
    def remaining(self) -> float:
        return float("inf") if self.limit is None else self.limit - self.used

    def can_afford(self, queries: int) -> bool:
        return queries <= self.remaining

    def charge(self, queries: int) -> None:
        """Record `queries`, or raise before anything is sent if they do not fit."""
        if not self.can_afford(queries):
            raise BudgetExhausted(f"{queries} more queries would exceed the budget of {self.limit} "
                                  f"({self.used} used); raise --query-budget")
        self.used += queries


class BlackBoxSource(SourceModel):
    """A source known only through `predict(batch: np.ndarray) -> probabilities (N, K)`.

    `logits` returns log-probabilities (softmax of them gives back the
    probabilities, which is all the output maps use) with no gradient.
    """

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], input_spec: InputSpec, class_names: list[str],
                 name: str, weights_sha256: str = "unknown (black box)"):
        super().__init__(weights_sha256=weights_sha256)
        self.predict, self.input_spec, self.class_names, self.name = predict, input_spec, list(class_names), name
        self.budget = QueryBudget()

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        self.budget.charge(len(x))
        probabilities = np.asarray(self.predict(x.detach().cpu().numpy()), dtype=np.float64)
        if probabilities.shape != (len(x), self.num_classes):
            raise XmodalError(f"black-box source {self.name!r} returned shape {probabilities.shape} for {len(x)} "
                              f"inputs; it must return ({len(x)}, {self.num_classes}) class probabilities")
        if not np.isfinite(probabilities).all() or (probabilities < 0).any():
            raise XmodalError(f"black-box source {self.name!r} returned NaN, infinite or negative probabilities")
        return torch.from_numpy(np.log(np.clip(probabilities, 1e-12, None))).float()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise XmodalError(f"{self.name!r} is a black box: it gives class probabilities only, no features")


def hide_gradients(source: SourceModel) -> BlackBoxSource:
    """`source` seen as a prediction API: numpy in, probabilities out, no gradients.
    Same name and weights hash, so a reprogrammer trained through it is saved
    against (and reloads with) the real source."""

    @torch.no_grad()
    def predict(batch: np.ndarray) -> np.ndarray:
        return source.logits(torch.from_numpy(batch)).softmax(dim=1).numpy()

    return BlackBoxSource(predict, source.input_spec, source.class_names, source.name, source.weights_sha256)


def zeroth_order_gradient(loss: Callable[[torch.Tensor], float], theta: torch.Tensor, directions: int,
                          smoothing: float, distribution: str = "sphere", scale: float | None = None,
                          generator: torch.Generator | None = None) -> tuple[torch.Tensor, float]:
    """(gradient estimate at theta, L(theta)) from `directions` + 1 evaluations of `loss`."""
    if distribution not in DISTRIBUTIONS:
        raise DataError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    d = theta.numel()
    scale = (d if distribution == "sphere" else 1.0) if scale is None else scale
    base = loss(theta)
    estimate = torch.zeros_like(theta)
    for _ in range(directions):
        u = torch.randn(d, generator=generator, dtype=theta.dtype)
        if distribution == "sphere":
            u = u / u.norm()
        estimate += (loss(theta + smoothing * u) - base) * u
    return estimate * (scale / (directions * smoothing)), base


@dataclass
class BlackBoxConfig(TrainConfig):
    """TrainConfig plus the zeroth-order settings. query_budget: samples the
    source may see in training (mapping preparation and validation included);
    directions: q; smoothing: beta; scale: b (default d for "sphere", 1 for "gaussian")."""

    query_budget: int = 20000
    directions: int = 10
    smoothing: float = 0.01
    distribution: str = "sphere"
    scale: float | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.query_budget < 1 or self.directions < 1 or not self.smoothing > 0:
            raise DataError("query_budget and directions must be at least 1 and smoothing positive")
        if self.distribution not in DISTRIBUTIONS:
            raise DataError(f"distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}")


@dataclass
class BlackBoxFitResult(FitResult):
    queries_used: int = 0
    query_budget: int = 0
    queries_per_second: float = 0.0
    stopped_by: str = "epochs"  # "epochs", "patience" or "budget"


class _Objective:
    """L(theta) on one mini-batch: loads the flat vector into the model, one query per sample."""

    def __init__(self, model: Reprogrammer, parameters: list[torch.nn.Parameter]):
        self.model, self.parameters = model, parameters
        self.x = self.y = None

    @torch.no_grad()
    def __call__(self, theta: torch.Tensor) -> float:
        vector_to_parameters(theta, self.parameters)
        return F.cross_entropy(self.model(self.x), self.y).item()


def fit_blackbox(model: Reprogrammer, x: torch.Tensor, y: torch.Tensor, config: BlackBoxConfig) -> BlackBoxFitResult:
    """Train theta and omega in place through a black-box source, within the budget.

    Same contract as `fit_reprogrammer`: stratified validation split, early
    stopping on validation accuracy, seeded, the best state restored. The
    state before the first step is a candidate too (it costs the same
    validation queries), so a budget too small to help never makes it worse.
    """
    if not isinstance(model.source, BlackBoxSource):
        raise XmodalError("fit_blackbox needs a black-box source: wrap it with xmodal.blackbox.hide_gradients(source) "
                          "or BlackBoxSource(predict, ...)")
    if not isinstance(model.output_map, LabelMapping) or model.output_map.remap_every > 0:
        raise XmodalError("black-box training takes a fixed label mapping (frequency or random): a linear head on "
                          "the probabilities an API returns would not match the source's own logits after "
                          "reloading, and iterative re-mapping (ilm) would spend the query budget on re-mapping")
    if len(x) != len(y):
        raise DataError(f"{len(x)} samples but {len(y)} labels; give one label per sample")
    start, source = time.perf_counter(), model.source
    previous_budget, source.budget = source.budget, QueryBudget(config.query_budget)
    generator, shuffle = torch.Generator().manual_seed(config.seed), torch.Generator().manual_seed(config.seed + 1)
    fit_idx, val_idx = validation_split(y.numpy(), config.val_fraction, config.seed)
    x_fit, y_fit, x_val, y_val = x[fit_idx], y[fit_idx], x[val_idx], y[val_idx]
    use_val, history, stopped_by = len(val_idx) > 0, [], "epochs"
    # Model selection scores the validation split, or (no split possible) the fitting data, each epoch.
    x_sel, y_sel = (x_val, y_val) if use_val else (x_fit, y_fit)
    parameters = model.trainable_parameters()
    theta = torch.nn.Parameter(parameters_to_vector(parameters).detach().clone())
    optimizer = torch.optim.Adam([theta], lr=config.lr)
    objective = _Objective(model, parameters)
    queries_per_row = config.directions + 1  # L(theta) and q perturbed losses per mini-batch row
    model.eval()  # dropout off: the loss differences must come from theta alone
    try:
        preparing = len(x_fit) if model.output_map.needs_source_outputs else 0  # a random map needs no queries
        if not source.budget.can_afford(preparing + len(x_sel)):
            raise BudgetExhausted(f"a query budget of {config.query_budget} does not cover preparing the output map "
                                  f"and scoring the start ({preparing + len(x_sel)} queries), let alone training; "
                                  "raise --query-budget")
        if preparing:
            with torch.no_grad():
                model.output_map.prepare(model.source_logits(x_fit), y_fit)
        best_loss, best_acc = _evaluate(model, x_sel, y_sel, config.batch_size)
        best_key, best_epoch, best_state = (best_acc, -best_loss), 0, copy.deepcopy(model.trainable_state())
        bar = tqdm(range(1, config.epochs + 1), desc="fit (black box)", unit="epoch", disable=not config.progress,
                   leave=False)
        for epoch in bar:
            order = torch.randperm(len(x_fit), generator=shuffle)
            losses = []
            for i in range(0, len(order), config.batch_size):
                batch = order[i : i + config.batch_size]
                if not source.budget.can_afford(len(batch) * queries_per_row + len(x_sel)):
                    stopped_by = "budget"
                    break
                objective.x, objective.y = x_fit[batch], y_fit[batch]
                estimate, loss = zeroth_order_gradient(objective, theta.detach(), config.directions, config.smoothing,
                                                       config.distribution, config.scale, generator)
                theta.grad = estimate
                optimizer.step()
                vector_to_parameters(theta.detach(), parameters)
                losses.append(loss)
            if not losses:
                break
            val_loss, val_acc = _evaluate(model, x_sel, y_sel, config.batch_size)
            record = {"epoch": epoch, "train_loss": float(np.mean(losses)), "queries": source.budget.used,
                      "val_loss": val_loss, "val_accuracy": val_acc}
            history.append(record)
            if (val_acc, -val_loss) > best_key:
                best_key, best_epoch, best_state = (val_acc, -val_loss), epoch, copy.deepcopy(model.trainable_state())
            bar.set_postfix(loss=round(record["train_loss"], 4), val=round(val_acc, 4), queries=source.budget.used)
            if stopped_by == "budget":
                break
            if epoch - best_epoch >= config.patience:
                stopped_by = "patience"
                break
        used = source.budget.used
    finally:
        source.budget = previous_budget
    model.load_state_dict(best_state, strict=False)
    seconds = time.perf_counter() - start
    return BlackBoxFitResult(
        best_epoch=best_epoch, epochs_run=len(history),
        val_accuracy=best_key[0] if use_val else None, val_loss=-best_key[1] if use_val else None,
        selection="validation" if use_val else "training data", n_fit=len(fit_idx), n_val=len(val_idx),
        seconds=seconds, history=history, queries_used=used, query_budget=config.query_budget,
        queries_per_second=used / seconds, stopped_by=stopped_by,
    )


def fit_through_hidden_gradients(model: Reprogrammer, x: torch.Tensor, y: torch.Tensor,
                                 config: BlackBoxConfig) -> BlackBoxFitResult:
    """Black-box training of a reprogrammer whose source is a SourceModel: the
    source is seen only through `hide_gradients` while training and put back
    afterwards (label mappings depend on probabilities only, so predictions
    are the same either way, and a saved run reloads with the real source)."""
    white_box = model.source
    model.source = hide_gradients(white_box)
    try:
        return fit_blackbox(model, x, y, config)
    finally:
        model.source = white_box
