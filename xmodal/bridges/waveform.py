"""Voice2Series bridge: the series as waveform samples.

    x' = Pad(x) + M * delta          (Yang, Tsai & Chen, ICML 2021, eq. 1)

Pad places the (optionally standardised and upsampled) series into the
source's input window; delta is a trainable perturbation over the whole
window; the mask M is 0 where the series sits and 1 elsewhere, so delta only
fills the space around the data. (The V2S reference code built M but never
applied it; here it is applied, and `masked=False` gives the unmasked
variant.) An optional tanh keeps x' in [-1, 1], the range of audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from xmodal.bridges.series import WAVEFORM, SeriesBridge, SeriesBridgeConfig, upsample
from xmodal.errors import DataError

OFFSETS = ("start", "centre")


@dataclass
class SeriesToWaveformConfig(SeriesBridgeConfig):
    """Settings of the waveform bridge (and those of SeriesBridgeConfig).

    upsample_factor / target_duration: stretch the series by an integer factor,
        or to a duration in seconds of source audio (at most one of the two).
    copies: m copies of the series at equal intervals from the start of the window.
    offset: where a single copy starts: "start", "centre" or a sample index.
    masked: apply M (delta is zero where the series sits) or let delta cover all.
    """

    encoding: ClassVar[str] = WAVEFORM  # not a setting: what this bridge does, as series_bridge names it

    upsample_factor: int = 1
    target_duration: float | None = None
    copies: int = 1
    offset: str | int = "start"
    masked: bool = True

    def __post_init__(self):
        super().__post_init__()
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
        if self.copies < 1:
            raise DataError(f"copies must be at least 1, got {self.copies}")
        if self.copies > 1 and self.offset != "start":
            raise DataError("an offset places a single copy; with copies > 1 they start at 0 at equal intervals")
        if not (self.offset in OFFSETS or (isinstance(self.offset, int) and self.offset >= 0)):
            raise DataError(f"offset must be 'start', 'centre' or a sample index >= 0, got {self.offset!r}")


def copy_starts(length: int, config: SeriesToWaveformConfig) -> list[int]:
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


def pad(x: torch.Tensor, starts: list[int], num_samples: int) -> torch.Tensor:
    """Pad(x): copies of x (N, L) placed at `starts` into a zero window (N, num_samples)."""
    length = x.shape[1]
    padded = x.new_zeros(x.shape[0], num_samples)
    for start in starts:
        padded[:, start : start + length] = x
    return padded


def copies_mask(starts: list[int], length: int, num_samples: int) -> torch.Tensor:
    """M (num_samples,): 0 where a copy of `length` samples sits, 1 elsewhere."""
    mask = torch.ones(num_samples)
    for start in starts:
        mask[start : start + length] = 0
    return mask


class SeriesToWaveform(SeriesBridge):
    """The trainable V2S bridge: the series as samples in the window, delta around it."""

    config_class = SeriesToWaveformConfig

    def upsampled_length(self, length: int) -> int:
        if self.config.target_duration is not None:
            return round(self.config.target_duration * self.config.sample_rate)
        return length * self.config.upsample_factor

    def _check_fits(self, length: int) -> None:
        upsampled = self.upsampled_length(length)
        slot = self.config.num_samples // self.config.copies
        if upsampled > slot:
            raise DataError(
                f"a series of length {length} (upsampled to {upsampled}) does not fit "
                f"{self.config.copies} cop{'y' if self.config.copies == 1 else 'ies'} into the "
                f"{self.config.num_samples}-sample source input (room for {slot} each); {self._fit_advice(length, slot)}"
            )
        copy_starts(upsampled, self.config)  # an explicit offset may still overrun the window

    def _fit_advice(self, length: int, slot: int) -> str:
        if length <= slot:  # the stretch is what overflows
            return f"use upsample_factor <= {slot // length}, fewer copies or a shorter target_duration"
        fewer = " or use fewer copies" if self.config.copies > 1 else ""
        return f"downsample the series by a factor of at least {-(-length // slot)}{fewer}"

    def _starts(self) -> tuple[list[int], int]:
        if self.config.series_length is None:
            raise DataError("where the series sits depends on its length, fixed by the first batch the bridge "
                            "sees; call the bridge on the training series first")
        length = self.upsampled_length(self.config.series_length)
        return copy_starts(length, self.config), length

    def place(self, x: torch.Tensor) -> torch.Tensor:
        """Pad(x) (N, num_samples): the standardised, upsampled copies in a zero window."""
        x = self.prepare(x)
        x = upsample(x, self.upsampled_length(x.shape[1]), self.config.interpolation)
        return pad(x, self._starts()[0], self.config.num_samples)

    def mask(self) -> torch.Tensor:
        """M (num_samples,): 0 where a copy of the series sits, 1 elsewhere (needs the series length)."""
        starts, length = self._starts()
        return copies_mask(starts, length, self.config.num_samples).to(self.delta)

    def perturbation(self) -> torch.Tensor:
        delta = super().perturbation()
        return self.mask() * delta if self.config.masked else delta
