"""The RBF kernel of the kernel head (kernel_head.py) and of the kernel probe that fits it
(xmodal.training.kernel_probe): one definition for both, below either."""

from __future__ import annotations

import torch


def rbf_kernel(a: torch.Tensor, b: torch.Tensor, gamma: float | torch.Tensor) -> torch.Tensor:
    """exp(-gamma |a_i - b_j|^2), (len(a), len(b)): the distances by one matrix product, worked on in place
    (thousands of rows: the n x n temporaries cost more than the product)."""
    kernel = a @ b.T
    kernel.mul_(2 * gamma).sub_(gamma * (a * a).sum(dim=1, keepdim=True)).sub_(gamma * (b * b).sum(dim=1))
    return kernel.clamp_(max=0.0).exp_()
