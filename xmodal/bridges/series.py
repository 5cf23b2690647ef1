"""What the series bridges share: pure functions on batches of series, the trainable
perturbation delta (`series_bridge`, in xmodal.bridges.series_factory, builds the bridge a
setting record asks for).

A series bridge turns a univariate series into a source-model waveform

    x' = tanh(S(x) + delta)

where S(x) is the part that does not depend on theta (the series placed as waveform
samples, xmodal.bridges.waveform, or played as tones, xmodal.bridges.tones) and delta
is a trainable perturbation, one value per source-input sample. An optional tanh keeps
x' in [-1, 1], the range of audio.

The functions are pure (easy to test); `SeriesBridge` is the thin trainable module
around them, in torchaudio's functional/transforms style.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from xmodal.bridges.low_resolution import check_resolution, coarse_shape, stretch
from xmodal.errors import DataError
from xmodal.settings_record import SettingsRecord

INTERPOLATIONS = ("linear", "nearest")
WAVEFORM = "waveform"
TONE_ENCODINGS = ("pitch", "pitch+slope")
AUDIO_ENCODINGS = (WAVEFORM, *TONE_ENCODINGS)
IMAGE = "image"  # SeriesToImage (xmodal.bridges.series_image), for image sources
ENCODINGS = (*AUDIO_ENCODINGS, IMAGE)

def as_series_batch(x: torch.Tensor) -> torch.Tensor:
    """(N, L) or (N, 1, L) finite, non-empty series -> (N, L) float tensor."""
    if x.ndim == 3:
        if x.shape[1] != 1:
            raise DataError(
                f"this bridge takes univariate series, got {x.shape[1]} channels (shape {tuple(x.shape)}); "
                "select one channel, or reprogram each channel separately"
            )
        x = x[:, 0, :]
    if x.ndim != 2:
        raise DataError(f"expected a batch of series of shape (N, L) or (N, 1, L), got shape {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError(f"empty input: got shape {tuple(x.shape)}; give at least one series of length >= 1")
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).any(dim=1).sum())
        raise DataError(
            f"{bad} series contain NaN or infinite values; impute or drop them first "
            "(load_ucr(..., missing='interpolate') fills interior gaps)"
        )
    return x.float()


def standardize(x: torch.Tensor) -> torch.Tensor:
    """Per-series zero mean and unit variance; a constant series becomes zeros."""
    centred = x - x.mean(dim=1, keepdim=True)
    return centred / centred.std(dim=1, keepdim=True, unbiased=False).clamp_min(1e-8)


def upsample(x: torch.Tensor, length: int, mode: str = "linear") -> torch.Tensor:
    """x (N, L) stretched to (N, length) by `mode` interpolation ("linear" keeps both ends)."""
    if length == x.shape[1]:
        return x
    kwargs = {"align_corners": True} if mode == "linear" else {}
    return F.interpolate(x[:, None, :], size=length, mode=mode, **kwargs)[:, 0, :]


def mel(hz: float) -> float:
    """HTK mel scale, the one torchaudio's MelSpectrogram uses by default."""
    return 2595.0 * math.log10(1 + hz / 700.0)


def inverse_mel(mels):
    """Hz of a mel value (float or tensor)."""
    return 700.0 * (10 ** (mels / 2595.0) - 1)


@dataclass
class SeriesBridgeConfig(SettingsRecord):
    """Settings every series bridge has; each is saved with a trained reprogrammer.

    num_samples / sample_rate: the source's input window.
    standardize: z-normalise each series first.
    interpolation: how stretching fills new samples ("linear" or "nearest").
    tanh_bound: squash x' into [-1, 1].
    delta_dropout: dropout probability on delta during training (0 = off).
    delta_init: std of the Gaussian that initialises delta. Not 0: the source's
        power spectrogram has zero gradient at silence, so a delta that starts
        at exactly 0 where the window is empty would never move there.
    delta_resolution: None (one delta value per sample), or r: delta is r values
        stretched linearly over the window, a smooth, low-dimensional theta
        (xmodal.bridges.low_resolution).
    series_length: the raw series length seen at fit time (set by the bridge).
    """

    num_samples: int = 16000
    sample_rate: int = 16000
    standardize: bool = True
    interpolation: str = "linear"
    tanh_bound: bool = True
    delta_dropout: float = 0.0
    delta_init: float = 1e-3
    delta_resolution: int | None = None
    series_length: int | None = None

    def __post_init__(self):
        check_resolution(self.delta_resolution, (self.num_samples,))
        if self.interpolation not in INTERPOLATIONS:
            raise DataError(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")
        if not 0 <= self.delta_dropout < 1:
            raise DataError(f"delta_dropout must be in [0, 1), got {self.delta_dropout}")


class SeriesBridge(nn.Module):
    """Base of the series bridges. theta = delta, one value per source-input sample (or
    `delta_resolution` values stretched over them).

    A subclass sets `config_class` and defines `place` (S(x)); it may refine
    `perturbation` (the delta term), `_check_fits` (a length check on first use) and
    `input_shape` (SeriesToImage, xmodal.bridges.series_image: channels x height x width)."""

    config_class = SeriesBridgeConfig

    def __init__(self, config: SeriesBridgeConfig | None = None, seed: int = 0, **settings):
        super().__init__()
        if config is not None and settings:
            raise TypeError(f"give {type(self).__name__} a config or settings, not both")
        self.config = config if config is not None else self.config_class(**settings)
        generator = torch.Generator().manual_seed(seed)
        shape = coarse_shape(self.input_shape(), self.config.delta_resolution)
        self.delta = nn.Parameter(torch.randn(shape, generator=generator) * self.config.delta_init)

    def input_shape(self) -> tuple[int, ...]:
        """The shape of one source input, which the perturbation covers: (num_samples,)."""
        return (self.config.num_samples,)

    @property
    def series_length(self) -> int | None:
        """The raw series length fixed at fit time (None before the first series)."""
        return self.config.series_length

    def check_length(self, length: int) -> None:
        """Fix the series length on first use; later inputs must match it."""
        expected = self.config.series_length
        if expected is None:
            self._check_fits(length)
            self.config.series_length = length
        elif length != expected:
            raise DataError(
                f"series of length {length} given to a bridge fitted on length {expected}; "
                "resample the series to the training length"
            )

    def _check_fits(self, length: int) -> None:
        """Raise a DataError if series of `length` samples cannot go into the window."""

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """A checked (N, L) batch, standardised if the config says so."""
        x = as_series_batch(x)
        self.check_length(x.shape[1])
        return standardize(x) if self.config.standardize else x

    def place(self, x: torch.Tensor) -> torch.Tensor:
        """S(x) (N, num_samples): the part of x' that does not depend on delta."""
        raise NotImplementedError

    def perturbation(self) -> torch.Tensor:
        """The delta term (input_shape), stretched from its resolution, dropped out in training."""
        return F.dropout(stretch(self.delta, self.input_shape()), self.config.delta_dropout, self.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        waveform = self.place(x) + self.perturbation()
        return torch.tanh(waveform) if self.config.tanh_bound else waveform
