"""KernelHead: a kernel probe (xmodal.training.kernel_probe) as an output map.

The source's features standardised, an RBF kernel to the probe's support rows, the support-vector
decisions and their fitted sigmoid: target-class log-scores. Fitted, not trained: its state is buffers,
sized by the probe it holds (`support` rows), which a saved run's settings carry."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from xmodal.errors import XmodalError
from xmodal.maps.base import OutputMap
from xmodal.maps.rbf import rbf_kernel

if TYPE_CHECKING:  # the maps sit below the training side, which fits the probe
    from xmodal.training.kernel_probe import KernelProbe


class KernelHead(OutputMap):
    kind = "kernel"

    def __init__(self, num_source: int, num_target: int, support: int = 1):
        super().__init__()
        if num_target < 2:
            raise XmodalError(f"need at least 2 target classes, got {num_target}")
        self.num_source, self.num_target = num_source, num_target
        decisions = 1 if num_target == 2 else num_target
        self.register_buffer("mean", torch.zeros(num_source))
        self.register_buffer("scale", torch.ones(num_source))
        self.register_buffer("support", torch.zeros(support, num_source))
        self.register_buffer("dual", torch.zeros(support, decisions))
        self.register_buffer("bias", torch.zeros(decisions))
        self.register_buffer("gamma", torch.tensor(1.0 / num_source))
        self.register_buffer("calibration_weight", torch.zeros(num_target, decisions))
        self.register_buffer("calibration_bias", torch.zeros(num_target))

    def forward(self, source_logits: torch.Tensor) -> torch.Tensor:
        z = (source_logits - self.mean) / self.scale
        decisions = rbf_kernel(z, self.support, self.gamma) @ self.dual + self.bias
        return decisions @ self.calibration_weight.T + self.calibration_bias

    @torch.no_grad()
    def load_probe(self, probe: "KernelProbe") -> None:
        """Hold `probe`: the buffers take its number of support rows."""
        if probe.support.shape[1] != self.num_source or probe.calibration_weight.shape[0] != self.num_target:
            raise XmodalError(f"a kernel probe of {probe.support.shape[1]} features and "
                              f"{probe.calibration_weight.shape[0]} classes cannot be held by a head of "
                              f"{self.num_source} and {self.num_target}")
        device = self.mean.device
        for name in ("mean", "scale", "support", "dual", "bias", "calibration_weight", "calibration_bias"):
            setattr(self, name, torch.tensor(getattr(probe, name), dtype=torch.float32, device=device))
        self.gamma = torch.tensor(probe.gamma, dtype=torch.float32, device=device)

    @classmethod
    def holding(cls, probe: "KernelProbe") -> "KernelHead":
        """A head shaped by `probe` (its features, classes and support rows), holding it."""
        head = cls(probe.support.shape[1], probe.calibration_weight.shape[0])
        head.load_probe(probe)
        return head

    def widened(self, extra: int) -> "KernelHead":
        """This head in a model that reads `extra` more features after its own, which it ignores: their
        spread is infinite, so any finite value standardises to 0, where its support rows hold them. The same
        scores (a trained view's start state: the start's reading read out alone)."""
        head = KernelHead(self.num_source + extra, self.num_target, len(self.support))
        state = {name: value.clone() for name, value in self.state_dict().items()}
        state["mean"] = torch.cat([self.mean, self.mean.new_zeros(extra)])
        state["scale"] = torch.cat([self.scale, self.scale.new_full((extra,), float("inf"))])
        state["support"] = torch.cat([self.support, self.support.new_zeros(len(self.support), extra)], dim=1)
        head.load_state_dict(state)
        return head.to(self.mean.device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A probe's number of support rows is its own: a state of as many features and classes with another
        # count, the same in its support rows and their weights (a trained view's start state, swapped in to
        # score the start), resizes the buffers first. Any other mismatch is left to torch to refuse.
        support, dual = state_dict.get(prefix + "support"), state_dict.get(prefix + "dual")
        if (support is not None and dual is not None and len(support) == len(dual) != len(self.support)
                and support.shape[1:] == self.support.shape[1:] and dual.shape[1:] == self.dual.shape[1:]):
            self.support, self.dual = self.support.new_empty(support.shape), self.dual.new_empty(dual.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def settings(self) -> dict:
        return {"kind": self.kind, "num_source": self.num_source, "num_target": self.num_target,
                "support": int(self.support.shape[0])}
