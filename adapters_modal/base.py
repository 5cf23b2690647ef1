"""The SourceModel protocol and the registry of named source models.

A source model is frozen the moment it is built: eval mode, no gradients on
its parameters, and `train()` cannot switch it back (BatchNorm statistics and
dropout must never change under a reprogrammer). Gradients still flow
through it to its input, which is what white-box reprogramming needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from adapters_modal.weights import WeightFile, find_weights, resolve_weights
from xmodal.allocator import keep_freed_memory
from xmodal.devices import module_device
from xmodal.errors import XmodalError


@dataclass(frozen=True)
class InputSpec:
    """What a source model accepts. Audio sources: mono waveforms of
    `num_samples` samples at `sample_rate` Hz, values in about [-1, 1].
    Image sources: (N, channels, height, width) tensors with values in
    `value_range` (the range the model saw in training, e.g. normalised pixels).
    Text sources: `inputs_embeds` of width `embedding_dim` over at most
    `max_positions` positions, built from a `vocab_size`-token embedding matrix."""

    modality: str
    sample_rate: int | None = None
    num_samples: int | None = None
    channels: int | None = None
    height: int | None = None
    width: int | None = None
    value_range: tuple[float, float] | None = None
    vocab_size: int | None = None
    embedding_dim: int | None = None
    max_positions: int | None = None

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one input: (num_samples,) for audio, (channels, height, width) for an
        image. Text has none (sequences vary in length)."""
        if self.modality == "audio":
            return (self.num_samples,)
        if self.modality == "image":
            return (self.channels, self.height, self.width)
        raise XmodalError(f"{self.modality} inputs have no fixed shape")


class SourceModel(nn.Module):
    """A frozen pretrained model behind one interface.

    Subclasses set `name`, `input_spec`, `class_names` and implement
    `features(x)` (the penultimate representation) and `head(features)`.
    """

    name: str
    input_spec: InputSpec
    class_names: list[str]

    def __init__(self, weights_sha256: str):
        super().__init__()
        self.weights_sha256 = weights_sha256

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def identity(self) -> dict:
        return {"name": self.name, "weights_sha256": self.weights_sha256}

    def freeze(self) -> "SourceModel":
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        return super().train(False)

    def train(self, mode: bool = True) -> "SourceModel":
        # A frozen model stays in eval mode whatever its parent module does.
        return super().train(False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def head(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def layer_width(self) -> int:
        """Columns of `layer_features`, found from one blank input."""
        with torch.no_grad():
            blank = torch.zeros(1, *self.input_spec.sample_shape, device=module_device(self))
            return self.layer_features(blank).shape[1]

    def layer_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled statistics of every layer (N, D), for output maps that read more than
        the penultimate layer; sources that have them override this."""
        raise XmodalError(f"source {self.name!r} exposes no per-layer statistics; use an output map on its "
                          "logits (mapping 'linear' or a label map), or a registered source (`xmodal sources`)")

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x)


@dataclass(frozen=True)
class SourceEntry:
    """A registered source: how to build it and which weight file it needs."""

    name: str
    description: str
    weight_file: WeightFile
    build: Callable[[Path], SourceModel] = field(repr=False)
    # Where the weights are when they do not come through resolve_weights (e.g. a
    # model shipped inside a Python package); takes the caller's explicit path or None.
    locate: Callable[[str | Path | None], Path] | None = field(default=None, repr=False)
    # Static facts for `xmodal sources`, so that listing the zoo loads no model:
    modality: str = ""          # "audio", "image" or "text" (as its InputSpec says)
    parameters: int | None = None  # parameter count of the built source (tests compare)
    input: str = ""             # e.g. "16 kHz, 1 s", "3x224x224 RGB"
    output: str = ""            # e.g. "35 words", "360 pitch bins", "features only"
    licence: str = ""           # of the weights, e.g. "MIT", "Apache-2.0"


_REGISTRY: dict[str, SourceEntry] = {}
# Joins registered names into one fused source ("bc-resnet-gsc35+efficientnet-lite0": adapters_modal.fused).
FUSION_SEPARATOR = "+"
# How the sources of a fused name become one source: set by adapters_modal.fused when the package loads.
_fuse: Callable[[list[SourceModel]], SourceModel] | None = None


def register_fusion(build: Callable[[list[SourceModel]], SourceModel]) -> None:
    global _fuse
    _fuse = build


def register_source(entry: SourceEntry) -> SourceEntry:
    if entry.name in _REGISTRY:
        raise ValueError(f"source {entry.name!r} is already registered")
    _REGISTRY[entry.name] = entry
    return entry


def source_entries() -> list[SourceEntry]:
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def get_entry(name: str) -> SourceEntry:
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "(none)"
        schemes = "".join(f", {prefix}:..." for prefix in sorted(_SCHEMES))
        raise XmodalError(f"unknown source model {name!r}; registered sources: {known}{schemes}")
    return _REGISTRY[name]


# Sources named by where they come from ("hf:PATH_OR_ID") rather than registered
# one by one: prefix -> (loader of the rest of the name, description).
_SCHEMES: dict[str, tuple[Callable[[str], SourceModel], str]] = {}


def register_source_scheme(prefix: str, loader: Callable[[str], SourceModel], description: str) -> None:
    """Make `load_source(f"{prefix}:{location}")` return `loader(location)`; the
    loader must name its source so that `load_source(source.name)` rebuilds it,
    which is how a saved reprogrammer finds its source again."""
    if prefix in _SCHEMES:
        raise ValueError(f"source scheme {prefix!r} is already registered")
    _SCHEMES[prefix] = (loader, description)


def source_schemes() -> dict[str, str]:
    """Registered name schemes: prefix -> description."""
    return {prefix: description for prefix, (_, description) in sorted(_SCHEMES.items())}


def _scheme(name: str) -> tuple[Callable[[str], SourceModel], str] | None:
    prefix, separator, location = name.partition(":")
    return (_SCHEMES[prefix][0], location) if separator and prefix in _SCHEMES else None


def fused_part_names(name: str) -> list[str] | None:
    """The registered sources a fused name joins ("a+b" -> ["a", "b"]), or None for a single
    source; a DataError-style XmodalError for a part that is no registered source, or repeated."""
    if FUSION_SEPARATOR not in name or _scheme(name) is not None:
        return None
    parts = name.split(FUSION_SEPARATOR)
    for part in parts:
        if part not in _REGISTRY:
            raise XmodalError(f"{name!r} fuses sources joined by {FUSION_SEPARATOR!r}, but {part!r} is not a "
                              f"registered source; fuse registered ones: {', '.join(sorted(_REGISTRY))}")
    if len(set(parts)) < len(parts):
        raise XmodalError(f"{name!r} names a source twice; fuse each source once")
    return parts


def refuse_fused(name: str, task: str) -> None:
    """A fused name where only one source can be read (the sequence and table tasks), refused
    before any model loads."""
    if fused_part_names(name) is not None:
        raise XmodalError(f"{name!r} fuses several sources, which only the series task reads (mapping "
                          f"'layers'); a {task} run reads one source: name one of them")


def is_registered(name: str) -> bool:
    """A registered source, or a fusion of registered ones: xmodal's own code and weights it
    checks by hash (anything else is whatever its location holds)."""
    try:
        return name in _REGISTRY or fused_part_names(name) is not None
    except XmodalError:
        return False


def check_source_name(name: str) -> None:
    """Fail early, before any data is read, on a name no registry entry or scheme knows."""
    if fused_part_names(name) is None and _scheme(name) is None:
        get_entry(name)


def load_source(name: str, weights_path: str | Path | None = None) -> SourceModel:
    """Build a registered (or scheme-named, or fused) source with its checked weights; the result
    is frozen (on the CPU: a reprogrammer moves it with itself). From here on the process keeps
    freed memory for its next batch (xmodal.allocator)."""
    keep_freed_memory()
    parts = fused_part_names(name)
    if parts is not None:
        if weights_path is not None:
            raise XmodalError(f"{name!r} fuses {len(parts)} sources, each with its own weights; drop --weights "
                              "(XMODAL_WEIGHTS_DIR names the folder they are found in)")
        return _fuse([load_source(part) for part in parts]).freeze()
    scheme = _scheme(name)
    if scheme is not None:
        if weights_path is not None:
            raise XmodalError(f"source {name!r} takes its weights from its own folder or hub id; drop --weights")
        loader, location = scheme
        with keep_global_rng():
            return loader(location).freeze()
    entry = get_entry(name)
    locate = entry.locate or (lambda path: resolve_weights(entry.weight_file, path))
    with keep_global_rng():
        model = entry.build(locate(weights_path))
    return model.freeze()


def keep_global_rng():
    """A block after which the caller's global torch RNG is as before: building a network draws
    its random initialisation from it, only for the loaded weights to replace it."""
    return torch.random.fork_rng(devices=[])


def local_weights(name: str) -> Path | None:
    """Where the weights of `name` are on this machine, without downloading."""
    entry = get_entry(name)
    return entry.locate(None) if entry.locate else find_weights(entry.weight_file)
