"""Where a training step's gradient comes from: the only difference between white-box and
black-box training (xmodal.training.loop runs both).

- `Backprop`: autograd through the frozen source.
- `ZerothOrder` (BAR; Tsai, Chen & Ho, ICML 2020): the source is seen only as class
  probabilities through `xmodal.blackbox.hide_gradients`, with a query budget. theta (the
  bridge's parameters), flattened into one vector of d numbers, gets the random
  gradient-free estimate

      g = (b / (q * beta)) * sum_j [L(theta + beta * U_j) - L(theta)] * U_j

  with U_j uniform on the unit sphere (b = d) or standard Gaussian (b = 1). omega stays
  where the start put it: a label mapping prepared from the first answers, or a head on
  the log-probabilities (mapping "proba") fitted as a probe of them (which no training
  moves: Reprogrammer.trainable_parameters); both are reused, not re-estimated at a cost
  in queries. One step on a batch of B samples costs B * (q + 1) queries. The estimate's variance grows with d, so black-box
  training wants a low-dimensional theta (`delta_resolution`, xmodal.bridges.low_resolution).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

import torch
import torch.nn.functional as F
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from xmodal.blackbox import BlackBoxSource, QueryBudget, hide_gradients
from xmodal.errors import DataError, XmodalError
from xmodal.maps import LabelMapping
from xmodal.reprogrammer import Reprogrammer

DISTRIBUTIONS = ("sphere", "gaussian")
# Output maps black-box training takes: fixed label mappings, and a head on the log-probabilities.
BLACK_BOX_MAPPINGS = ("frequency", "random", "proba")


class Backprop:
    """Autograd: Adam on every trainable parameter (theta and omega), the output map's penalty
    (a probe head's own L2 term, when it holds one) added to the loss."""

    queries = None

    @contextmanager
    def attached(self, model: Reprogrammer, lr: float, head_lr_ratio: float = 1.0):
        """head_lr_ratio: the output map's learning rate as a share of theta's."""
        self.model = model
        head = {id(p) for p in model.output_map.parameters()}
        trainable = model.trainable_parameters()
        groups = [{"params": [p for p in trainable if id(p) not in head], "lr": lr},
                  {"params": [p for p in trainable if id(p) in head], "lr": lr * head_lr_ratio}]
        self.optimizer = torch.optim.Adam([group for group in groups if group["params"]])
        yield self

    def can_afford(self, batch_size: int, scoring: int) -> bool:
        return True

    def step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        loss = F.cross_entropy(self.model(x), y) + self.model.output_map.penalty()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.item()


class ZerothOrder:
    """Gradient estimates from loss differences; every sample sent to the source counts
    against `budget` (output-map preparation and validation scoring included)."""

    def __init__(self, budget: int, directions: int = 10, smoothing: float = 0.01, distribution: str = "sphere",
                 scale: float | None = None, seed: int = 0):
        if budget < 1 or directions < 1 or not smoothing > 0:
            raise DataError("the query budget and directions must be at least 1 and the smoothing positive")
        if distribution not in DISTRIBUTIONS:
            raise DataError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
        self.limit, self.directions, self.smoothing = budget, directions, smoothing
        self.distribution, self.scale = distribution, scale
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def queries(self) -> int:
        return self.budget.used

    @contextmanager
    def attached(self, model: Reprogrammer, lr: float, head_lr_ratio: float = 1.0):
        """The source hidden behind probabilities for the whole fit, the real one put back
        afterwards (label mappings and a head on the log-probabilities read probabilities only,
        so predictions are the same either way, and a saved run reloads with the real source)."""
        fixed_map = isinstance(model.output_map, LabelMapping) and model.output_map.remap_every == 0
        if head_lr_ratio != 1.0:
            raise XmodalError("black-box training never moves the output map, so it takes no head learning rate")
        if not (fixed_map or model.reads == "log_probs"):
            raise XmodalError("black-box training takes a fixed label mapping (frequency or random) or a head on the "
                              "log-probabilities (mapping 'proba'): other heads read logits or features an API does "
                              "not return, and re-mapping (ilm) would spend the query budget on re-mapping")
        white_box = model.source
        # A BlackBoxSource (a prediction API) is used as it is; a SourceModel is hidden.
        model.source = hidden = white_box if isinstance(white_box, BlackBoxSource) else hide_gradients(white_box)
        # A given BlackBoxSource gets its own budget back afterwards: left with the spent
        # training budget, it would refuse every later prediction.
        previous_budget, hidden.budget = hidden.budget, QueryBudget(self.limit)
        self.budget = hidden.budget
        self.model = model
        self.parameters = model.trainable_parameters()  # theta: label maps and log-probability heads stay
        self.theta = torch.nn.Parameter(parameters_to_vector(self.parameters).detach().clone())
        self.optimizer = torch.optim.Adam([self.theta], lr=lr)
        try:
            yield self
        finally:
            model.source, hidden.budget = white_box, previous_budget

    def can_afford(self, batch_size: int, scoring: int) -> bool:
        """Room for one step on `batch_size` source inputs plus `scoring` inputs of validation
        (a sample is several inputs for a multi-view bridge: Reprogrammer.queries_per_sample)."""
        return self.budget.can_afford(batch_size * (self.directions + 1) + scoring)

    @torch.no_grad()
    def _loss(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
        vector_to_parameters(theta, self.parameters)
        return F.cross_entropy(self.model(x), y).item()

    def step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        self.model.eval()  # dropout off: loss differences must come from theta alone
        self.theta.grad, base = zeroth_order_gradient(lambda theta: self._loss(theta, x, y), self.theta.detach(),
                                                      self.directions, self.smoothing, self.distribution, self.scale,
                                                      self.generator)
        self.optimizer.step()
        vector_to_parameters(self.theta.detach(), self.parameters)
        return base


def zeroth_order_gradient(loss: Callable[[torch.Tensor], float], theta: torch.Tensor, directions: int,
                          smoothing: float, distribution: str = "sphere", scale: float | None = None,
                          generator: torch.Generator | None = None) -> tuple[torch.Tensor, float]:
    """(the estimate g of the module docstring at theta, L(theta)) from `directions` + 1
    evaluations of `loss`; scale is b (default d for "sphere", 1 for "gaussian")."""
    if distribution not in DISTRIBUTIONS:
        raise DataError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
    d = theta.numel()
    scale = (d if distribution == "sphere" else 1.0) if scale is None else scale
    base = loss(theta)
    estimate = torch.zeros_like(theta)
    for _ in range(directions):
        # drawn on the generator's device (the CPU), then moved: the same directions on any device
        u = torch.randn(d, generator=generator, dtype=theta.dtype).to(theta.device)
        if distribution == "sphere":
            u = u / u.norm()
        estimate += (loss(theta + smoothing * u) - base) * u
    return estimate * (scale / (directions * smoothing)), base
