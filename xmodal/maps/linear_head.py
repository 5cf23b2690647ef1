"""LinearHead: a trainable linear layer on the source logits, features or layer statistics.

`fit_probe` sets it to a logistic-regression probe (linear probing before joint training,
LP-FT); the probe's C is chosen in xmodal.training.probe."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from xmodal.errors import XmodalError
from xmodal.maps.base import OutputMap


class LinearHead(OutputMap):
    """A trainable linear layer from source logits to target scores; any number of classes."""

    kind = "linear"

    def __init__(self, num_source: int, num_target: int, seed: int = 0, clip: bool = False):
        super().__init__()
        if num_target < 2:
            raise XmodalError(f"need at least 2 target classes, got {num_target}")
        self.num_source, self.num_target = num_source, num_target
        # skip_init: nn.Linear's own initialisation would draw from the caller's global RNG;
        # the weights come from the seed alone. On the default device, so that a head built under
        # torch.device("meta") takes no memory (loading checks a saved head's sizes that way first).
        self.linear = nn.utils.skip_init(nn.Linear, num_source, num_target, device=torch.get_default_device())
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            bound = 1 / math.sqrt(num_source)
            self.linear.weight.uniform_(-bound, bound, generator=generator)
            self.linear.bias.zero_()
        # The probe's own L2 term (load_probe(penalty=...)): none until a probe sets it.
        self.probe_l2 = 0.0
        self.register_buffer("probe_scale", torch.ones(num_source), persistent=False)
        # clip: a probe holds each input to the range it was fitted on (load_probe's bounds; saved with the
        # head). A reading far outside it, a channel that barely moved in training, would otherwise swing
        # the logits by thousands (docs/experiments.md, 0.26). Unbounded until a probe sets them.
        self.clip = clip
        if clip:
            self.register_buffer("low", torch.full((num_source,), -math.inf))
            self.register_buffer("high", torch.full((num_source,), math.inf))

    def forward(self, source_logits: torch.Tensor) -> torch.Tensor:
        if self.clip:
            source_logits = torch.clamp(source_logits, self.low, self.high)
        return self.linear(source_logits)

    @torch.no_grad()
    def load_probe(self, coef: np.ndarray, intercept: np.ndarray, mean: np.ndarray, scale: np.ndarray,
                   penalty: float = 0.0, bounds: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Set the layer to a logistic-regression probe fitted on standardised inputs
        ((x - mean) / scale), the scaler folded into the weights (see xmodal.training.probe).
        penalty: the probe's L2 weight 1 / (2 C n) (C its inverse regularisation, n the samples it
        was fitted on), which `penalty()` then adds to training: the mean log-loss plus it is
        scikit-learn's objective, so the probe is where that objective rests for the untrained bridge.
        bounds: the (lowest, highest) value of each input over the rows the probe was fitted on, which a
        clipping head holds its inputs to (ignored without clip)."""
        weight, bias = self._unstandardised(coef, intercept, mean, scale)
        self.linear.weight.copy_(weight)
        self.linear.bias.copy_(bias)
        self.probe_l2 = penalty
        self.probe_scale.copy_(torch.from_numpy(scale))
        if self.clip and bounds is not None:
            self.low.copy_(torch.from_numpy(bounds[0]))
            self.high.copy_(torch.from_numpy(bounds[1]))

    @torch.no_grad()
    def blend_probe(self, coef: np.ndarray, intercept: np.ndarray, mean: np.ndarray, scale: np.ndarray,
                    share: float, bounds: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Average this head's logits with another probe's (late fusion of members fitted apart, each
        standardised its own way): (1 - share) x this head's + share x the probe's. A clipping head's
        range widens to hold the other probe's fitting rows too (bounds)."""
        weight, bias = self._unstandardised(coef, intercept, mean, scale)
        self.linear.weight.mul_(1 - share).add_(share * weight)
        self.linear.bias.mul_(1 - share).add_(share * bias)
        if self.clip and bounds is not None:
            self.low.copy_(torch.minimum(self.low, torch.from_numpy(bounds[0]).to(self.low)))
            self.high.copy_(torch.maximum(self.high, torch.from_numpy(bounds[1]).to(self.high)))

    @torch.no_grad()
    def unbound(self) -> None:
        """No range to hold the inputs to: a head trained by gradient reads whatever the trained bridge gives."""
        if self.clip:
            self.low.fill_(-math.inf)
            self.high.fill_(math.inf)

    def _unstandardised(self, coef: np.ndarray, intercept: np.ndarray, mean: np.ndarray,
                        scale: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """A probe of standardised inputs as this layer's weight and bias on the raw ones."""
        if self.num_target == 2 and len(coef) == 1:  # one logit difference -> two symmetric logits
            coef, intercept = np.stack([-coef[0], coef[0]]) / 2, np.array([-intercept[0], intercept[0]]) / 2
        if coef.shape != (self.num_target, self.num_source):
            raise XmodalError(
                f"a probe of shape {coef.shape} does not fit a {self.num_source} -> {self.num_target} head")
        weight = coef / scale
        return (torch.from_numpy(weight).to(self.linear.weight),
                torch.from_numpy(intercept - weight @ mean).to(self.linear.bias))

    def penalty(self) -> torch.Tensor | float:
        """The probe's L2 term on the current weights, in its standardised coordinates; of a binary
        head, on the two logits' difference (scikit-learn's one weight vector)."""
        if not self.probe_l2:
            return 0.0
        weight = self.linear.weight * self.probe_scale
        if self.num_target == 2:
            weight = weight[1] - weight[0]
        return self.probe_l2 * (weight**2).sum()

    def settings(self) -> dict:
        return {"kind": self.kind, "num_source": self.num_source, "num_target": self.num_target, "clip": self.clip}

