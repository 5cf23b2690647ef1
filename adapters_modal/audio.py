"""Speech-command source models: a differentiable front end plus the network.

The front end is plain torch code, so gradients reach the waveform, which is
what Voice2Series trains its input perturbation through.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchaudio.transforms as T

from adapters_modal.attrnn import AttRNN, load_keras_weights
from adapters_modal.base import InputSpec, SourceEntry, SourceModel, register_source
from adapters_modal.bc_resnet import BCResNet
from adapters_modal.tf_log_mel import TFLogMel
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

# The AttRNN head's order (douglas125/SpeechCmdRecognition): index 0 is the
# publisher's catch-all class, which took both "unknown" words and "silence"
# clips; it is named "unknown" because both mean "no keyword".
ATTRNN_CLASSES = ["unknown", "nine"] + (
    "yes no up down left right on off stop go zero one two three four five six seven eight "
    "backward bed bird cat dog follow forward happy house learn marvin sheila tree visual wow"
).split()

ATTRNN_WEIGHTS = WeightFile(
    filename="model-attRNN.h5",
    sha256="c73134a09bbc72d169a7d8e875297e72142c3d11f2dc0d95570303c67bdca4d0",
    url="https://github.com/douglas125/SpeechCmdRecognition/raw/e965a72/model-attRNN.h5",
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


class SpeechCommandSource(SourceModel):
    """A 16 kHz, 1-s keyword model: a front end, then a network with
    `features` and `head`; subclasses build both from their weight file."""

    input_spec = InputSpec(modality="audio", sample_rate=16000, num_samples=16000)
    front_end: torch.nn.Module
    network: torch.nn.Module

    def features(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.network.features(self.front_end(waveform))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.network.head(features)

    def layer_features(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.network.layer_statistics(self.front_end(waveform))


class BCResNetSource(SpeechCommandSource):
    """BC-ResNet (scale 2) trained on Google Speech Commands v2, 35 words."""

    name = "bc-resnet-gsc35"
    class_names = GSC35_WORDS

    def __init__(self, weights_path: Path):
        super().__init__(weights_sha256=sha256_of(weights_path))
        self.front_end = LogMel(self.input_spec.sample_rate)
        self.network = load_bc_resnet(weights_path)


class AttRNNSource(SpeechCommandSource):
    """AttRNN trained on Google Speech Commands v2: 35 words plus "unknown" (36 classes)."""

    name = "attrnn-gsc35"
    class_names = ATTRNN_CLASSES

    def __init__(self, weights_path: Path):
        super().__init__(weights_sha256=sha256_of(weights_path))
        self.front_end = TFLogMel(self.input_spec.sample_rate)
        self.network = load_keras_weights(AttRNN(num_classes=len(ATTRNN_CLASSES)), weights_path)


register_source(
    SourceEntry(
        name=AttRNNSource.name,
        description="AttRNN (Voice2Series' source), Google Speech Commands v2 (35 words + unknown), 16 kHz, 1 s",
        weight_file=ATTRNN_WEIGHTS,
        build=AttRNNSource,
        modality="audio", parameters=202_249, input="16 kHz, 1 s", output="35 words + unknown", licence="MIT",
    )
)

register_source(
    SourceEntry(
        name=BCResNetSource.name,
        description="BC-ResNet-2 keyword spotter, Google Speech Commands v2 (35 words), 16 kHz, 1 s",
        weight_file=BC_RESNET_WEIGHTS,
        build=BCResNetSource,
        modality="audio", parameters=30_939, input="16 kHz, 1 s", output="35 words", licence="MIT",
    )
)
