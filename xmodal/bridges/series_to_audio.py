"""Voice2Series bridge: a univariate series becomes a source-model waveform.

    x' = Pad(x) + M * delta          (Yang, Tsai & Chen, ICML 2021, eq. 1)

Pad places the (optionally standardised and upsampled) series into the
source's input window; delta is a trainable perturbation over the whole
window; the mask M is 0 where the series sits and 1 elsewhere, so delta only
fills the space around the data. (The V2S reference code built M but never
applied it; here it is applied, and `masked=False` gives the unmasked
variant.) An optional tanh keeps x' in [-1, 1], the range of audio.

encoding="pitch" replaces Pad(x) by a tone whose pitch follows the series:
the standardised series, clipped to +-3 sd, is stretched over the whole
window and sets the tone's instantaneous frequency on the mel scale between
pitch_low and pitch_high. The source's log-mel front end then draws the
series as a curve across its frequency bands, where a keyword model's
filters see its shape; a waveform placement puts a 24-577-sample series
into one or two spectrogram frames, where only its spectrum survives. The
tone fills the window, so delta is unmasked (masked=False) there.
encoding="pitch+slope" adds a second tone that plays the series' first
difference: the series in the lower half of the range (on the mel scale), its
slope in the upper half, one waveform, one pass through the source.

The functions are pure (easy to test); `SeriesToAudio` is the thin trainable
module around them, in torchaudio's functional/transforms style.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from xmodal.errors import DataError
from xmodal.settings_record import SettingsRecord

INTERPOLATIONS = ("linear", "nearest")
OFFSETS = ("start", "centre")
ENCODINGS = ("waveform", "pitch", "pitch+slope")
TONE_ENCODINGS = ("pitch", "pitch+slope")
PITCH_CLIP = 3.0       # sd: beyond it an outlier would squeeze the rest of the series into few mel bands
PITCH_AMPLITUDE = 0.5  # leaves room for delta inside tanh's near-linear range
SLOPE_BAND_GAP = 0.1   # "pitch+slope": each tone stops 10 % short of the split, so the two never share a mel band


@dataclass
class SeriesToAudioConfig(SettingsRecord):
    """Settings of the bridge; every one is saved with a trained reprogrammer.

    encoding: "waveform" (the series as samples, V2S), "pitch" (the series as the
        pitch of a tone over the whole window) or "pitch+slope" (that tone plus one
        playing the first difference); see the module docstring.
    pitch_low / pitch_high: the tones' frequency range in Hz.
    upsample_factor / target_duration: stretch the series by an integer factor,
        or to a duration in seconds of source audio (at most one of the two).
    interpolation: how upsampling fills new samples ("linear" or "nearest").
    copies: m copies of the series at equal intervals from the start of the window.
    offset: where a single copy starts: "start", "centre" or a sample index.
    masked: apply M (delta is zero where the series sits) or let delta cover all.
    tanh_bound: squash x' into [-1, 1].
    delta_dropout: dropout probability on delta during training (0 = off).
    delta_init: std of the Gaussian that initialises delta. Not 0: the source's
        power spectrogram has zero gradient at silence, so a delta that starts
        at exactly 0 where the window is empty would never move there.
    series_length: the raw series length seen at fit time (set by the bridge).
    """

    num_samples: int = 16000
    sample_rate: int = 16000
    standardize: bool = True
    encoding: str = "waveform"
    pitch_low: float = 80.0
    pitch_high: float = 7000.0
    upsample_factor: int = 1
    target_duration: float | None = None
    interpolation: str = "linear"
    copies: int = 1
    offset: str | int = "start"
    masked: bool = True
    tanh_bound: bool = True
    delta_dropout: float = 0.0
    delta_init: float = 1e-3
    series_length: int | None = None

    def __post_init__(self):
        if self.upsample_factor < 1 or int(self.upsample_factor) != self.upsample_factor:
            raise DataError(f"upsample_factor must be a positive integer, got {self.upsample_factor}")
        self.upsample_factor = int(self.upsample_factor)
        if self.target_duration is not None:
            if self.upsample_factor != 1:
                raise DataError("give either upsample_factor or target_duration, not both")
            if not 0 < self.target_duration * self.sample_rate <= self.num_samples:
                raise DataError(
                    f"target_duration must be in (0, {self.num_samples / self.sample_rate}] s, "
                    f"got {self.target_duration}"
                )
        if self.interpolation not in INTERPOLATIONS:
            raise DataError(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")
        if self.copies < 1:
            raise DataError(f"copies must be at least 1, got {self.copies}")
        if self.copies > 1 and self.offset != "start":
            raise DataError("an offset places a single copy; with copies > 1 they start at 0 at equal intervals")
        if not (self.offset in OFFSETS or (isinstance(self.offset, int) and self.offset >= 0)):
            raise DataError(f"offset must be 'start', 'centre' or a sample index >= 0, got {self.offset!r}")
        if not 0 <= self.delta_dropout < 1:
            raise DataError(f"delta_dropout must be in [0, 1), got {self.delta_dropout}")
        if self.encoding not in ENCODINGS:
            raise DataError(f"encoding must be one of {ENCODINGS}, got {self.encoding!r}")
        if self.encoding in TONE_ENCODINGS:
            self._check_pitch()

    def _check_pitch(self) -> None:
        placement = {"upsample_factor": (self.upsample_factor, 1), "target_duration": (self.target_duration, None),
                     "copies": (self.copies, 1), "offset": (0 if self.offset == "start" else self.offset, 0)}
        changed = [name for name, (value, default) in placement.items() if value != default]
        if changed:
            raise DataError(f"encoding={self.encoding!r} stretches the series over the whole window, so {', '.join(changed)} "
                            "cannot apply; leave them at their defaults")
        if self.masked:
            raise DataError(f"encoding={self.encoding!r} fills the whole window, so the mask would zero delta everywhere; "
                            "set masked=False (CLI: --no-mask)")
        if not self.standardize:
            raise DataError(f"encoding={self.encoding!r} maps +-{PITCH_CLIP:g} standard deviations onto the pitch range, "
                            "so the series must be standardised; set standardize=True")
        if not 0 < self.pitch_low < self.pitch_high <= self.sample_rate / 2:
            raise DataError(f"need 0 < pitch_low < pitch_high <= {self.sample_rate / 2:g} Hz (Nyquist), "
                            f"got {self.pitch_low} and {self.pitch_high}")
        if not all(low < high for low, high in tone_bands(self)):
            raise DataError(f"pitch_low {self.pitch_low} to pitch_high {self.pitch_high} Hz is too narrow to split "
                            "into a series band and a slope band; widen it (default 80 to 7000 Hz)")


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
    if length == x.shape[1]:
        return x
    kwargs = {"align_corners": True} if mode == "linear" else {}
    return F.interpolate(x[:, None, :], size=length, mode=mode, **kwargs)[:, 0, :]


def copy_starts(length: int, config: SeriesToAudioConfig) -> list[int]:
    """Start index of each copy inside the window; raises if the series does not fit."""
    window = config.num_samples
    slot = window // config.copies
    if length > slot:
        raise DataError(
            f"a series of {length} samples (after upsampling) does not fit {config.copies} "
            f"cop{'y' if config.copies == 1 else 'ies'} into the {window}-sample source input "
            f"(room for {slot} each); use a smaller upsample_factor, a shorter target_duration, "
            f"fewer copies, or downsample the series"
        )
    if config.copies > 1:
        return [i * slot for i in range(config.copies)]
    if config.offset == "start":
        return [0]
    if config.offset == "centre":
        return [(window - length) // 2]
    if config.offset + length > window:
        raise DataError(f"offset {config.offset} + series length {length} exceeds the {window}-sample window")
    return [int(config.offset)]


def mel(hz: float) -> float:
    """HTK mel scale, the one torchaudio's MelSpectrogram uses by default."""
    return 2595.0 * math.log10(1 + hz / 700.0)


def inverse_mel(mels):
    """Hz of a mel value (float or tensor)."""
    return 700.0 * (10 ** (mels / 2595.0) - 1)


def tone_bands(config: SeriesToAudioConfig) -> list[tuple[float, float]]:
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


def pitch_tone(x: torch.Tensor, config: SeriesToAudioConfig) -> torch.Tensor:
    """The standardised series (N, L) as the window's tone(s) (N, num_samples), per `config.encoding`."""
    window = config.num_samples, config.sample_rate, config.interpolation
    signals = [x]
    if config.encoding == "pitch+slope":
        if x.shape[1] < 2:
            raise DataError("encoding='pitch+slope' plays the first difference too, so series need at least 2 samples")
        signals.append(standardize(torch.diff(x, dim=1)))
    tones = [tone(signal, band, *window) for signal, band in zip(signals, tone_bands(config))]
    return PITCH_AMPLITUDE / len(tones) * sum(tones)  # the sum stays within PITCH_AMPLITUDE


def pad_and_mask(x: torch.Tensor, starts: list[int], num_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad(x): the copies placed into a zero window; M: 1 where no copy sits."""
    length = x.shape[1]
    padded = x.new_zeros(x.shape[0], num_samples)
    mask = x.new_ones(num_samples)
    for start in starts:
        padded[:, start : start + length] = x
        mask[start : start + length] = 0
    return padded, mask


class SeriesToAudio(nn.Module):
    """The trainable V2S bridge. theta = delta, one value per source-input sample."""

    def __init__(self, config: SeriesToAudioConfig | None = None, seed: int = 0, **settings):
        super().__init__()
        self.config = config or SeriesToAudioConfig(**settings)
        generator = torch.Generator().manual_seed(seed)
        self.delta = nn.Parameter(torch.randn(self.config.num_samples, generator=generator) * self.config.delta_init)

    def upsampled_length(self, length: int) -> int:
        if self.config.encoding in TONE_ENCODINGS:  # the tone always spans the window
            return self.config.num_samples
        if self.config.target_duration is not None:
            return int(round(self.config.target_duration * self.config.sample_rate))
        return length * self.config.upsample_factor

    def check_length(self, length: int) -> None:
        """Fix the series length on first use; later inputs must match it."""
        expected = self.config.series_length
        if expected is None:
            upsampled = self.upsampled_length(length)
            slot = self.config.num_samples // self.config.copies
            if upsampled > slot:
                raise DataError(
                    f"a series of length {length} (upsampled to {upsampled}) does not fit "
                    f"{self.config.copies} cop{'y' if self.config.copies == 1 else 'ies'} into the "
                    f"{self.config.num_samples}-sample source input (room for {slot} each); {self._fit_advice(length, slot)}"
                )
            self.config.series_length = length
        elif length != expected:
            raise DataError(
                f"series of length {length} given to a bridge fitted on length {expected}; "
                "resample the series to the training length"
            )

    def _fit_advice(self, length: int, slot: int) -> str:
        if length <= slot:  # the stretch is what overflows
            return f"use upsample_factor <= {slot // length}, fewer copies or a shorter target_duration"
        fewer = " or use fewer copies" if self.config.copies > 1 else ""
        return f"downsample the series by a factor of at least {-(-length // slot)}{fewer}"

    def place(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad(x) and M for a batch: the parts of x' that do not depend on delta."""
        x = as_series_batch(x)
        self.check_length(x.shape[1])
        if self.config.standardize:
            x = standardize(x)
        if self.config.encoding in TONE_ENCODINGS:
            return pitch_tone(x, self.config), x.new_zeros(self.config.num_samples)
        x = upsample(x, self.upsampled_length(x.shape[1]), self.config.interpolation)
        return pad_and_mask(x, copy_starts(x.shape[1], self.config), self.config.num_samples)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, mask = self.place(x)
        delta = F.dropout(self.delta, self.config.delta_dropout, self.training)
        if self.config.masked:
            delta = mask * delta
        waveform = padded + delta
        return torch.tanh(waveform) if self.config.tanh_bound else waveform
