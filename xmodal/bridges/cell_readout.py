"""Cell read-out: every feature map's mean over each drawn feature's cell.

A table row is drawn as one cell per feature (table_to_image.py). A frozen
image network turns the picture into feature maps of lower resolution; the
part of a map that lies over a feature's cell says what the network made of
that feature (and of its neighbours, through the receptive field). For every
map (N, C, h, w) and every cell mask (H, W), the mask is shrunk to (h, w) by
adaptive average pooling (each map position weighted by the share of its
input region the cell covers) and the map is averaged with those weights:

    out[n, c, f] = sum_hw map[n, c, h, w] * m_f[h, w] / sum_hw m_f[h, w]

The result is (N, sum of C over maps * F), ordered map, channel, feature; it is
differentiable in the maps (and so in the input image).
"""

from __future__ import annotations

import torch
from torch.nn import functional

from xmodal.errors import DataError


def pooled_cell_weights(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(F, h, w): each mask pooled to `size` by area and normalised to sum to 1."""
    pooled = functional.adaptive_avg_pool2d(masks[None], size)[0]
    return pooled / pooled.sum(dim=(1, 2), keepdim=True)


def cell_means(feature_maps: list[torch.Tensor], masks: torch.Tensor) -> torch.Tensor:
    """feature_maps: (N, C_l, h_l, w_l) per layer; masks: (F, H, W), 0/1 (or weights >= 0)
    in input pixels -> (N, sum_l C_l * F), the mean of each map over each mask."""
    if masks.ndim != 3 or masks.shape[0] == 0:
        raise DataError(f"cell masks must be (features, height, width), got {tuple(masks.shape)}")
    if not feature_maps:
        raise DataError("cell_means needs at least one feature map")
    if (masks.flatten(1).sum(dim=1) <= 0).any():
        raise DataError("every cell mask must cover at least one pixel")
    parts = []
    for fmap in feature_maps:
        if fmap.ndim != 4:
            raise DataError(f"feature maps must be (N, C, h, w), got {tuple(fmap.shape)}")
        weights = pooled_cell_weights(masks.to(fmap), tuple(fmap.shape[2:]))
        parts.append(torch.einsum("nchw,fhw->ncf", fmap, weights).flatten(1))
    return torch.cat(parts, dim=1)


__all__ = ["cell_means", "pooled_cell_weights"]
