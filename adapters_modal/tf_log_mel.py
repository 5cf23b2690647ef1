"""The AttRNN front end with TensorFlow semantics, in plain differentiable torch.

The Keras model (douglas125/SpeechCmdRecognition) computes its spectrogram
inside the graph with tf.signal; torchaudio's MelSpectrogram differs in three
places that matter to a frozen network (centre padding, Slaney vs HTK edge
handling, power vs magnitude), so the TensorFlow recipe is rebuilt here:

    |tf.signal.stft(frame 1024, hop 128, fft 1024, periodic hann, pad_end=True)|
    x tf.signal.linear_to_mel_weight_matrix(80 bins, 40-8000 Hz)   (DC bin weight 0)
    log(x + 1e-6), standardised by its own mean and std

Everything is torch tensor code, so gradients reach the waveform.
"""

from __future__ import annotations

import torch
from torch import nn


def hertz_to_mel(frequencies: torch.Tensor) -> torch.Tensor:
    """HTK mel scale, as tf.signal uses it."""
    return 1127.0 * torch.log1p(frequencies / 700.0)


def tf_mel_weight_matrix(num_mel_bins: int = 80, num_spectrogram_bins: int = 513, sample_rate: int = 16000,
                         lower_edge_hertz: float = 40.0, upper_edge_hertz: float = 8000.0) -> torch.Tensor:
    """(num_spectrogram_bins, num_mel_bins) triangular filters, the algorithm of
    tf.signal.linear_to_mel_weight_matrix: triangles are drawn in mel space
    (not Slaney-normalised) and the DC bin is given zero weight."""
    linear_hertz = torch.linspace(0.0, sample_rate / 2, num_spectrogram_bins, dtype=torch.float64)[1:]
    bins_mel = hertz_to_mel(linear_hertz)[:, None]
    edges = torch.linspace(hertz_to_mel(torch.tensor(lower_edge_hertz, dtype=torch.float64)).item(),
                           hertz_to_mel(torch.tensor(upper_edge_hertz, dtype=torch.float64)).item(),
                           num_mel_bins + 2, dtype=torch.float64)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel - lower) / (centre - lower)
    falling = (upper - bins_mel) / (upper - centre)
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    return torch.cat([torch.zeros(1, num_mel_bins, dtype=torch.float64), weights]).float()


def tf_stft_magnitude(waveform: torch.Tensor, frame_length: int = 1024, frame_step: int = 128) -> torch.Tensor:
    """|STFT| (N, frames, frame_length // 2 + 1) like tf.signal.stft with
    pad_end=True: frames start at 0, step, 2*step, ... and the signal is
    zero-padded at the end only, giving ceil(samples / step) frames."""
    num_frames = -(-waveform.shape[-1] // frame_step)
    padded_length = (num_frames - 1) * frame_step + frame_length
    padded = nn.functional.pad(waveform, (0, padded_length - waveform.shape[-1]))
    window = torch.hann_window(frame_length, periodic=True, dtype=waveform.dtype, device=waveform.device)
    spectrum = torch.stft(padded, n_fft=frame_length, hop_length=frame_step, window=window, center=False,
                          return_complex=True)
    return spectrum.abs().transpose(-1, -2)


class TFLogMel(nn.Module):
    """Waveform (N, samples) -> standardised log-mel (N, frames, 80), 125 frames for 1 s at 16 kHz."""

    def __init__(self, sample_rate: int = 16000, num_mel_bins: int = 80):
        super().__init__()
        self.register_buffer("mel_matrix", tf_mel_weight_matrix(num_mel_bins, 513, sample_rate, 40.0, 8000.0))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        log_mel = torch.log(tf_stft_magnitude(waveform) @ self.mel_matrix + 1e-6)
        # The original standardises over the whole batch; per clip keeps a clip's
        # input independent of its batch-mates (identical for a batch of one).
        mean = log_mel.mean(dim=(1, 2), keepdim=True)
        std = log_mel.std(dim=(1, 2), keepdim=True, unbiased=False)
        # A silent clip has std 0; the floor turns TensorFlow's NaN into zeros.
        return (log_mel - mean) / std.clamp_min(1e-8)
