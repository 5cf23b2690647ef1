"""BayesianMapping (BLM, Cai et al. NeurIPS 2024): a dense, probabilistic source-to-target
matrix estimated from how often each source label is predicted for each target class;
recomputed every `remap_every` epochs."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from xmodal.errors import XmodalError
from xmodal.maps.base import OutputMap, check_remap_every

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
        self.remap_every = check_remap_every(remap_every)
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

