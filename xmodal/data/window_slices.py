"""Window slicing (Le Guennec, Malinowski & Tavenard 2016): a training series' random 90 % window,
stretched back to the series' length, as one more training series of the same class.

    copies = window_slices(x, copies=4, seed=0)   # (4 n, channels, length), copy-major

The frozen sources read a slice as they read a series; the probes fitted on the series and their
slices learn that a class's shape may sit a little earlier or later and be a little wider
(docs/experiments.md 0.23).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The share of the series a slice keeps: Le Guennec et al.'s 90 %, not tuned here.
SLICE_FRACTION = 0.9


def window_slices(x: torch.Tensor, copies: int, seed: int) -> torch.Tensor:
    """`copies` slices of every series of x (n, channels, length): copy k of series i is row k n + i,
    a window of round(SLICE_FRACTION x length) samples at a random start (the same for every channel),
    linearly interpolated back to `length` samples (its first and last samples kept)."""
    n, _, length = x.shape
    width = max(1, round(SLICE_FRACTION * length))
    starts = torch.randint(0, length - width + 1, (copies, n), generator=torch.Generator().manual_seed(seed))
    # Every window of x as a view (n, channels, starts, width); row k n + i takes series i's at starts[k, i].
    windows = x.unfold(2, width, 1)[torch.arange(n).repeat(copies), :, starts.flatten()]
    return F.interpolate(windows, size=length, mode="linear", align_corners=True)
