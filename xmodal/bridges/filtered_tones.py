"""Filtered tones: the tone bridge with a trained, sample-specific theta, read beside its start.

    x' = tanh(Tone(z + g(z)) + delta)      z: the standardised series

g is a small residual filter of the series (two 1-D convolutions, tanh between them),
so theta reshapes each series before it is played, the idea of sample-specific
masks (SMM; Cai et al., ICML 2024) on the series side. g's output layer starts at
zero: the bridge starts as SeriesToTones exactly, and training starts from the probe
start's reading.

With `beside_start` the bridge has two views, read side by side under one probe:
view 0 is the bridge as it started (no filter, delta at its first draw: kept as a
buffer), view 1 the trained one. The trained bridge alone, under the head it was trained
with, lost to the probe start in every variant screened; beside the start's reading,
under a probe refitted on both, it gains 2.84 points over 21 UCR sets, 3 seeds
(docs/experiments.md, 0.9 and 0.10). The estimator trains with one view and turns the
second on for the final probe (xmodal.estimators.base).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from xmodal.bridges.low_resolution import stretch
from xmodal.bridges.tones import SeriesToTones, SeriesToTonesConfig, pitch_tone
from xmodal.errors import DataError

FILTER_INIT = 0.3  # std of the filter's first layer at the start (its 9 taps give tanh inputs of about 0.9 z)


@dataclass
class FilteredTonesConfig(SeriesToTonesConfig):
    """SeriesToTonesConfig and the filter's size.

    filter_channels: channels between g's two convolutions.
    filter_width: samples each convolution spans (odd: the series keeps its length).
    beside_start: two views, the start's reading and the trained one (set after training).
    """

    filter_channels: int = 8
    filter_width: int = 9
    beside_start: bool = False

    def __post_init__(self):
        super().__post_init__()
        if self.filter_channels < 1 or self.filter_width < 1 or self.filter_width % 2 == 0:
            raise DataError(f"the series filter needs at least 1 channel and an odd width (the series keeps its "
                            f"length), got {self.filter_channels} channels of width {self.filter_width}")


class SeriesFilter(nn.Module):
    """z + g(z) for a batch of series (N, L); g's output layer at zero, so the identity at the start."""

    def __init__(self, channels: int, width: int, seed: int = 0):
        super().__init__()
        # skip_init: Conv1d's own initialisation would draw from the caller's global RNG; the seed alone sets it
        self.inner = nn.utils.skip_init(nn.Conv1d, 1, channels, width, padding=width // 2)
        self.outer = nn.utils.skip_init(nn.Conv1d, channels, 1, width, padding=width // 2)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for parameter in self.inner.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * FILTER_INIT)
            self.outer.weight.zero_()
            self.outer.bias.zero_()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.outer(torch.tanh(self.inner(z[:, None])))[:, 0]


class FilteredTones(SeriesToTones):
    """The tone bridge playing the filtered series; with `beside_start`, also the untrained one (view 0)."""

    config_class = FilteredTonesConfig
    probe_views = 1  # both views read the same series: one probe of them side by side, no per-view reduction

    def __init__(self, config: FilteredTonesConfig | None = None, seed: int = 0, **settings):
        super().__init__(config, seed, **settings)
        self.filter = SeriesFilter(self.config.filter_channels, self.config.filter_width, seed)
        self.register_buffer("delta_start", self.delta.detach().clone())

    @property
    def views(self) -> int:
        return 2 if self.config.beside_start else 1

    def place(self, x: torch.Tensor) -> torch.Tensor:
        return pitch_tone(self.filter(self.prepare(x)), self.config)

    def forward(self, x: torch.Tensor, view: int = 1) -> torch.Tensor:
        """View 1 (the only one without beside_start): the trained bridge; view 0: the bridge at its start."""
        if view == 1 or not self.config.beside_start:
            return super().forward(x)
        waveform = SeriesToTones.place(self, x) + stretch(self.delta_start, self.input_shape())
        return torch.tanh(waveform) if self.config.tanh_bound else waveform
