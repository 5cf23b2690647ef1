"""Black-box reprogramming (BAR; Tsai, Chen & Ho, ICML 2020).

The source model is only a function from inputs to class probabilities, such
as a paid prediction API: no gradients, and every sample sent costs a query.
Training through such a source is the one training loop with a zeroth-order
gradient object (xmodal.training.gradients.ZerothOrder); this module holds the
source side:

- `QueryBudget` counts every sample sent to the source and refuses a call that
  would overspend; the loop checks before each step and stops cleanly, keeping
  the best state found so far.
- `BlackBoxSource` turns any callable (numpy batch in, probabilities out) into
  a gradient-free source for a Reprogrammer; `hide_gradients(source)` does so
  for a SourceModel, keeping its identity so a saved run reloads with it.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from adapters_modal.base import InputSpec, SourceModel
from xmodal.devices import module_device
from xmodal.errors import DataError, XmodalError


# The smallest probability read: log(0) would be -inf. White-box log-probabilities are
# floored the same way (xmodal.reprogrammer), so a head trained on an API's answers
# predicts the same from the real source.
LOG_PROBABILITY_FLOOR = math.log(1e-12)


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
        # back on the input's device: the API answers in numpy, the reprogrammer may be on a GPU
        log_probabilities = np.log(np.clip(probabilities, math.exp(LOG_PROBABILITY_FLOOR), None))
        return torch.from_numpy(log_probabilities).float().to(x.device)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise XmodalError(f"{self.name!r} is a black box: it gives class probabilities only, no features")


def hide_gradients(source: SourceModel) -> BlackBoxSource:
    """`source` seen as a prediction API: numpy in, probabilities out, no gradients.
    Same name and weights hash, so a reprogrammer trained through it is saved
    against (and reloads with) the real source."""

    @torch.no_grad()
    def predict(batch: np.ndarray) -> np.ndarray:
        device = module_device(source)  # read per call: the source moves with its reprogrammer
        return source.logits(torch.from_numpy(batch).to(device)).softmax(dim=1).cpu().numpy()

    return BlackBoxSource(predict, source.input_spec, source.class_names, source.name, source.weights_sha256)
