"""Hugging Face audio classifiers as frozen speech sources.

`load_hf_audio_source(path_or_id)` loads an `AutoModelForAudioClassification`
(tested: AST, Wav2Vec2ForSequenceClassification, HubertForSequenceClassification)
with the feature extractor saved beside it; `load_source("hf:PATH_OR_ID")` and
`--source hf:PATH_OR_ID` reach it through the scheme registered below.

The feature extractors are numpy code, so gradients would stop at them. Each is
reproduced here in torch, so the bridge's perturbation gets gradients:

- Wav2Vec2FeatureExtractor (wav2vec2, HuBERT, ...): the raw waveform, made zero
  mean and unit variance per utterance when `do_normalize` is set.
- ASTFeatureExtractor: Kaldi-style log-mel filter banks (torchaudio's
  `compliance.kaldi.fbank`, plain torch code), zero-padded or truncated to
  `max_length` frames, then (fbank - mean) / (2 std) when `do_normalize` is set.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchaudio.compliance.kaldi as kaldi
from torch import nn

from adapters_modal.audio import SpeechCommandSource
from adapters_modal.base import InputSpec, register_source_scheme
from adapters_modal.hf_loading import (
    from_pretrained,
    hf_class_names,
    require_transformers,
    resolve_location,
    weights_identity,
)
from xmodal.errors import WeightsError, XmodalError

WHAT = "audio classifier"
KALDI_FRAME_SAMPLES = 400  # one 25 ms Kaldi frame at 16 kHz: the shortest input AST can take


class WaveformNormalization(nn.Module):
    """Wav2Vec2FeatureExtractor's zero_mean_unit_var_norm for unpadded batches:
    (x - mean) / sqrt(var + 1e-7) per utterance, population variance."""

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        mean = waveform.mean(dim=-1, keepdim=True)
        variance = waveform.var(dim=-1, unbiased=False, keepdim=True)
        return (waveform - mean) / torch.sqrt(variance + 1e-7)


class KaldiFilterBank(nn.Module):
    """ASTFeatureExtractor in torch: (N, samples) -> (N, max_length, num_mel_bins)."""

    def __init__(self, sample_rate: int, num_mel_bins: int, max_length: int,
                 mean: float | None = None, std: float | None = None):
        super().__init__()
        self.sample_rate, self.num_mel_bins, self.max_length = sample_rate, num_mel_bins, max_length
        self.mean, self.std = mean, std  # None: no normalisation (do_normalize=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        # kaldi.fbank reads one channel of one clip, so the batch is a loop.
        banks = [self._fixed_length(kaldi.fbank(clip.unsqueeze(0), sample_frequency=self.sample_rate,
                                                window_type="hanning", num_mel_bins=self.num_mel_bins))
                 for clip in waveform]
        features = torch.stack(banks)
        return features if self.mean is None else (features - self.mean) / (2 * self.std)

    def _fixed_length(self, bank: torch.Tensor) -> torch.Tensor:
        missing = self.max_length - bank.shape[0]
        return nn.functional.pad(bank, (0, 0, 0, missing)) if missing > 0 else bank[: self.max_length]


def front_end_for(extractor) -> nn.Module:
    """The differentiable torch twin of a Hugging Face audio feature extractor."""
    kind = type(extractor).__name__
    if kind == "ASTFeatureExtractor":
        normalize = extractor.do_normalize
        return KaldiFilterBank(extractor.sampling_rate, extractor.num_mel_bins, extractor.max_length,
                               extractor.mean if normalize else None, extractor.std if normalize else None)
    if kind == "Wav2Vec2FeatureExtractor":
        return WaveformNormalization() if extractor.do_normalize else nn.Identity()
    raise XmodalError(f"{kind} has no differentiable torch version here; Hugging Face audio sources "
                      "need an ASTFeatureExtractor or a Wav2Vec2FeatureExtractor (wav2vec2, HuBERT)")


class ClassifierNetwork(nn.Module):
    """An audio classifier split at its `classifier` module: `features` is that
    module's input (AST's pooled CLS/distillation token; wav2vec2's and HuBERT's
    projected, time-averaged hidden states), `head` is the module itself."""

    def __init__(self, model: nn.Module):
        super().__init__()
        if not isinstance(getattr(model, "classifier", None), nn.Module):
            raise XmodalError(f"{type(model).__name__} has no `classifier` module to split features from logits; "
                              "supported: AST, Wav2Vec2ForSequenceClassification, HubertForSequenceClassification")
        self.model = model

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        # The hook reads the classifier's input instead of copying each model's
        # pooling code (weighted layer sums, projectors) out of transformers.
        captured = []
        handle = self.model.classifier.register_forward_pre_hook(lambda module, args: captured.append(args[0]))
        try:
            self.model(input_values=inputs)
        finally:
            handle.remove()
        return captured[0]

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.model.classifier(features)


class HFAudioSource(SpeechCommandSource):
    """A frozen Hugging Face audio classifier fed mono waveforms of `num_samples`."""

    def __init__(self, name: str, model: nn.Module, front_end: nn.Module, sample_rate: int,
                 num_samples: int, weights_sha256: str):
        super().__init__(weights_sha256=weights_sha256)
        self.name = name
        self.input_spec = InputSpec(modality="audio", sample_rate=sample_rate, num_samples=num_samples)
        self.class_names = hf_class_names(model.config)
        self.front_end = front_end
        self.network = ClassifierNetwork(model)

    def features(self, waveform: torch.Tensor) -> torch.Tensor:
        expected = self.input_spec.num_samples
        if waveform.ndim != 2 or waveform.shape[1] != expected:
            raise XmodalError(f"{self.name} takes waveforms of shape (N, {expected}), got {tuple(waveform.shape)}; "
                              "build the bridge from this source's input_spec")
        return super().features(waveform)


def load_hf_audio_source(path_or_id: str | Path, num_samples: int = 16000) -> HFAudioSource:
    """A frozen Hugging Face audio classifier from a local folder (written by
    `save_pretrained`, holding the model and its feature extractor) or a hub id.

    Its name is "hf:" + the absolute folder (or the hub id), so `load_source(name)`
    rebuilds it; its weights identity is the sha256 of the weight file(s), for a
    hub id those of its snapshot in the Hugging Face cache
    (`adapters_modal.hf_loading.weights_identity`). `num_samples` is not part of
    the name: a source loaded with another length is passed back explicitly
    (`load_reprogrammer(folder, source=...)`)."""
    transformers = require_transformers(WHAT)
    if num_samples < KALDI_FRAME_SAMPLES:
        raise XmodalError(f"num_samples={num_samples} is too short; give at least {KALDI_FRAME_SAMPLES} samples")
    location, folder = resolve_location(path_or_id, WHAT)
    model = from_pretrained(transformers.AutoModelForAudioClassification.from_pretrained, location, WHAT)
    extractor = from_pretrained(transformers.AutoFeatureExtractor.from_pretrained, location,
                                f"{WHAT}'s feature extractor (preprocessor_config.json)")
    if int(getattr(extractor, "feature_size", 1)) != 1:
        raise WeightsError(f"{location}: the feature extractor expects {extractor.feature_size} channels; "
                           "speech sources take mono audio")
    source = HFAudioSource(f"hf:{location}", model, front_end_for(extractor), int(extractor.sampling_rate),
                           num_samples, weights_identity(folder, location))
    return source.freeze()


register_source_scheme(
    "hf", load_hf_audio_source,
    "Hugging Face audio classifier (AST, wav2vec2, HuBERT) from a save_pretrained folder or a hub id",
)

__all__ = ["HFAudioSource", "KaldiFilterBank", "WaveformNormalization", "front_end_for", "load_hf_audio_source"]
