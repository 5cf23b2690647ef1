"""Reading real recordings into a speech source's input window.

soundfile reads the file (torchaudio.load needs torchcodec, which is not
always installable); torchaudio resamples.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio.functional as AF

from xmodal.errors import DataError


def loudest_window(waveform: torch.Tensor, length: int) -> torch.Tensor:
    """The `length`-sample window with the most energy; zero-padded at the end
    when the clip is shorter. Keyword models see one word in a fixed window, so
    a longer clip is cropped where the word is, not at its start."""
    if waveform.numel() <= length:
        return torch.nn.functional.pad(waveform, (0, length - waveform.numel()))
    energy = torch.cumsum(torch.nn.functional.pad(waveform.double() ** 2, (1, 0)), dim=0)
    window_energy = energy[length:] - energy[:-length]
    start = int(torch.argmax(window_energy))
    return waveform[start : start + length]


def start_window(waveform: torch.Tensor, length: int) -> torch.Tensor:
    """The first `length` samples, zero-padded at the end when the clip is
    shorter: how AttRNN's publisher cropped its demo recordings."""
    return torch.nn.functional.pad(waveform[:length], (0, max(0, length - waveform.numel())))


WINDOWS = {"loudest": loudest_window, "start": start_window}
# No recorder writes rates outside these; a file that claims one has a corrupt header.
MIN_RATE, MAX_RATE = 1_000, 768_000


def resample(waveform: torch.Tensor, rate: int, new_rate: int) -> torch.Tensor:
    """torchaudio's polyphase kernel grows with rate / gcd(rate, new_rate): 44 101 Hz to 16 kHz
    would take gigabytes. The ratio as a fraction with a denominator of at most 1000 is exact
    for every common rate and off by under 0.06% (less than a cent of pitch) for any other."""
    ratio = Fraction(new_rate, rate).limit_denominator(1000)
    return AF.resample(waveform, orig_freq=ratio.denominator, new_freq=ratio.numerator)


def read_wav(path: str | Path, sample_rate: int, num_samples: int, window: str = "loudest") -> torch.Tensor:
    """Any WAV (any rate, any channel count) as a mono float waveform of
    exactly `num_samples` samples at `sample_rate`, cut from the clip by
    `window`: "loudest" (the most energetic window) or "start" (the first
    `num_samples`)."""
    if window not in WINDOWS:
        raise DataError(f"unknown audio window {window!r}; choose one of {', '.join(WINDOWS)}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"audio file {path} does not exist")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise DataError(f"cannot read {path} as audio ({exc}); give a WAV/FLAC/OGG file") from exc
    if data.size == 0:
        raise DataError(f"audio file {path} holds no samples")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise DataError(f"audio file {path} claims a sample rate of {rate} Hz; its header is corrupt "
                        f"(rates run from {MIN_RATE} to {MAX_RATE} Hz)")
    if not np.isfinite(data).all():
        raise DataError(f"audio file {path} contains NaN or infinite samples")
    mono = torch.from_numpy(data.mean(axis=1, dtype=np.float64).astype(np.float32))  # float32 sums overflow
    if rate != sample_rate:
        mono = resample(mono, rate, sample_rate)
    if not torch.isfinite(mono).all():
        raise DataError(f"audio file {path} holds samples too large to resample (peak "
                        f"{float(np.abs(data).max()):.3g}); give samples in [-1, 1]")
    return WINDOWS[window](mono, num_samples)
