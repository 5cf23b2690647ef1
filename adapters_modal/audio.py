"""Speech-command source models: a differentiable front end plus the network.

The front end is plain torch code, so gradients reach the waveform, which is
what Voice2Series trains its input perturbation through.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchaudio.transforms as T

from adapters_modal.base import InputSpec, SourceEntry, SourceModel, register_source
from adapters_modal.bc_resnet import BCResNet
from adapters_modal.weights import WeightFile, sha256_of

# Google Speech Commands v2, 35 words, in the alphabetical order of the BC-ResNet head.
GSC35_WORDS = (
    "backward bed bird cat dog down eight five follow forward four go happy house learn left "
    "marvin nine no off on one right seven sheila six stop three tree two up visual wow yes zero"
).split()

BC_RESNET_WEIGHTS = WeightFile(
    filename="model-sc-2.pt",
    sha256="8abe56512087686b463a0927a1c9f65d2b16202e98d2ac61162cd70b0c9c2a48",
    url="https://github.com/re9ulus/BC-ResNet/raw/086ce35/example_model/model-sc-2.pt",
)


class LogMel(torch.nn.Module):
    """BC-ResNet's front end: 40-band mel power spectrogram, then log2(mel + 1e-9)."""

    def __init__(self, sample_rate: int = 16000):
        super().__init__()
        self.mel = T.MelSpectrogram(sample_rate=sample_rate, n_fft=1024, f_max=8000, n_mels=40)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return torch.log2(self.mel(waveform) + 1e-9).unsqueeze(1)  # (N, 1, 40, frames)


def load_bc_resnet(weights_path: Path) -> BCResNet:
    """The 35-word BC-ResNet network with the checked weights of `weights_path`."""
    network = BCResNet(num_classes=len(GSC35_WORDS))
    network.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True), strict=True)
    return network


class BCResNetSource(SourceModel):
    """BC-ResNet (scale 2) trained on Google Speech Commands v2, 35 words."""

    name = "bc-resnet-gsc35"
    input_spec = InputSpec(modality="audio", sample_rate=16000, num_samples=16000)
    class_names = GSC35_WORDS

    def __init__(self, weights_path: Path):
        super().__init__(weights_sha256=sha256_of(weights_path))
        self.front_end = LogMel(self.input_spec.sample_rate)
        self.network = load_bc_resnet(weights_path)

    def features(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.network.features(self.front_end(waveform))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.network.head(features)


register_source(
    SourceEntry(
        name=BCResNetSource.name,
        description="BC-ResNet-2 keyword spotter, Google Speech Commands v2 (35 words), 16 kHz, 1 s",
        weight_file=BC_RESNET_WEIGHTS,
        build=BCResNetSource,
    )
)
