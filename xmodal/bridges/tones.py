"""Tone bridge: the series as the pitch of a tone over the whole window.

    x' = Tone(x) + delta

encoding="pitch": the standardised series, clipped to +-3 sd, is stretched over
the whole window and sets the tone's instantaneous frequency on the mel scale
between pitch_low and pitch_high. The source's log-mel front end then draws the
series as a curve across its frequency bands, where a keyword model's filters
see its shape; a waveform placement (xmodal.bridges.waveform) puts a
24-577-sample series into one or two spectrogram frames, where only its
spectrum survives. The tone fills the window, so delta is not masked.
encoding="pitch+slope" adds a second tone that plays the series' first
difference: the series in the lower half of the range (on the mel scale), its
slope in the upper half, one waveform, one pass through the source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from xmodal.bridges.series import (
    TONE_ENCODINGS,
    SeriesBridge,
    SeriesBridgeConfig,
    inverse_mel,
    mel,
    standardize,
    upsample,
)
from xmodal.errors import DataError

PITCH_CLIP = 3.0       # sd: beyond it an outlier would squeeze the rest of the series into few mel bands
PITCH_AMPLITUDE = 0.5  # leaves room for delta inside tanh's near-linear range
SLOPE_BAND_GAP = 0.1   # "pitch+slope": each tone stops 10 % short of the split, so the two never share a mel band


@dataclass
class SeriesToTonesConfig(SeriesBridgeConfig):
    """Settings of the tone bridge (and those of SeriesBridgeConfig; standardize must stay True).

    encoding: "pitch" (the series as the pitch of a tone over the whole window) or
        "pitch+slope" (that tone plus one playing the first difference).
    pitch_low / pitch_high: the tones' frequency range in Hz.
    """

    encoding: str = "pitch+slope"
    pitch_low: float = 80.0
    pitch_high: float = 7000.0

    def __post_init__(self):
        super().__post_init__()
        if self.encoding not in TONE_ENCODINGS:
            raise DataError(f"the tone bridge's encoding must be one of {TONE_ENCODINGS}, got {self.encoding!r} "
                            "(the series as waveform samples is SeriesToWaveform)")
        if not self.standardize:
            raise DataError(f"encoding={self.encoding!r} maps +-{PITCH_CLIP:g} standard deviations onto the pitch range, "
                            "so the series must be standardised; set standardize=True")
        if not 0 < self.pitch_low < self.pitch_high <= self.sample_rate / 2:
            raise DataError(f"need 0 < pitch_low < pitch_high <= {self.sample_rate / 2:g} Hz (Nyquist), "
                            f"got {self.pitch_low} and {self.pitch_high}")
        if not all(low < high for low, high in tone_bands(self)):
            raise DataError(f"pitch_low {self.pitch_low} to pitch_high {self.pitch_high} Hz is too narrow to split "
                            "into a series band and a slope band; widen it (default 80 to 7000 Hz)")


def tone_bands(config: SeriesToTonesConfig) -> list[tuple[float, float]]:
    """(low, high) Hz of each tone: "pitch" gives its one tone the whole range; "pitch+slope"
    splits it at its mel midpoint, the series' tone below, the slope's above."""
    if config.encoding == "pitch":
        return [(config.pitch_low, config.pitch_high)]
    split = inverse_mel((mel(config.pitch_low) + mel(config.pitch_high)) / 2)
    return [(config.pitch_low, split * (1 - SLOPE_BAND_GAP)), (split * (1 + SLOPE_BAND_GAP), config.pitch_high)]


def tone(x: torch.Tensor, band: tuple[float, float], length: int, sample_rate: int,
         interpolation: str = "linear") -> torch.Tensor:
    """A unit-amplitude tone (N, length) whose pitch follows x (N, L): values clipped to
    +-PITCH_CLIP and mapped linearly onto the mel scale across band (Hz), so equal steps
    of the series move the tone by equal numbers of mel bands."""
    level = (x.clamp(-PITCH_CLIP, PITCH_CLIP) + PITCH_CLIP) / (2 * PITCH_CLIP)
    level = upsample(level, length, interpolation)
    low, high = mel(band[0]), mel(band[1])
    phase = 2 * math.pi * torch.cumsum(inverse_mel(low + (high - low) * level).double(), dim=1) / sample_rate
    return torch.sin(phase).float()  # the phase in double: a sum of 16 000 terms


def pitch_tone(x: torch.Tensor, config: SeriesToTonesConfig) -> torch.Tensor:
    """The standardised series (N, L) as the window's tone(s) (N, num_samples), per `config.encoding`."""
    window = config.num_samples, config.sample_rate, config.interpolation
    signals = [x]
    if config.encoding == "pitch+slope":
        if x.shape[1] < 2:
            raise DataError("encoding='pitch+slope' plays the first difference too, so series need at least 2 samples")
        signals.append(standardize(torch.diff(x, dim=1)))
    tones = [tone(signal, band, *window) for signal, band in zip(signals, tone_bands(config))]
    return PITCH_AMPLITUDE / len(tones) * sum(tones)  # the sum stays within PITCH_AMPLITUDE


class SeriesToTones(SeriesBridge):
    """The trainable tone bridge: the series as tone(s) over the whole window, delta over all of it."""

    config_class = SeriesToTonesConfig

    def _check_fits(self, length: int) -> None:
        if self.config.encoding == "pitch+slope" and length < 2:
            raise DataError("encoding='pitch+slope' plays the first difference too, so series need at least 2 samples")

    def place(self, x: torch.Tensor) -> torch.Tensor:
        """Tone(x) (N, num_samples), per `config.encoding`."""
        return pitch_tone(self.prepare(x), self.config)
