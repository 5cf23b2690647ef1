"""A low-dimensional theta: the perturbation drawn at a coarse resolution and interpolated.

With `delta_resolution` r, an audio bridge's delta is r values spread evenly over its
window, an image bridge's r x r values per channel, stretched linearly (bilinearly) to
one value per sample or pixel. The perturbation is smooth (low-frequency) and theta has a
few hundred numbers instead of 16 000 or 150 528: what zeroth-order training can estimate
within a query budget (its gradient estimate's variance grows with the dimension), and a
regulariser for white-box training on small data.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from xmodal.errors import DataError
from xmodal.settings import MIN_DELTA_RESOLUTION


def check_resolution(resolution: int | None, full: tuple[int, ...]) -> None:
    """Refuse a resolution below two or above the full size it is stretched to."""
    if resolution is None:
        return
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < MIN_DELTA_RESOLUTION:
        raise DataError(f"delta_resolution must be an integer of at least {MIN_DELTA_RESOLUTION}, got {resolution!r}")
    if resolution > min(full[-2:] if len(full) == 3 else full):
        raise DataError(f"delta_resolution {resolution} is finer than the input it perturbs {full}; "
                        "leave it unset for one value per sample or pixel")


def coarse_shape(full: tuple[int, ...], resolution: int | None) -> tuple[int, ...]:
    """theta's shape: `full` itself without a resolution; (r,) for a window, (C, r, r) for an image."""
    if resolution is None:
        return tuple(full)
    return (resolution,) if len(full) == 1 else (full[0], resolution, resolution)


def stretch(delta: torch.Tensor, full: tuple[int, ...]) -> torch.Tensor:
    """delta of `coarse_shape(full, r)` interpolated to `full` (unchanged when already full)."""
    if tuple(delta.shape) == tuple(full):
        return delta
    if len(full) == 1:
        return F.interpolate(delta[None, None], size=full[0], mode="linear", align_corners=True)[0, 0]
    return F.interpolate(delta[None], size=tuple(full[1:]), mode="bilinear", align_corners=True)[0]
