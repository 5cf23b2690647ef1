"""Frozen source models behind one protocol, one module per source modality.

Importing this package registers the built-in sources.
"""

from adapters_modal import audio, text  # noqa: F401  (registers the speech and text sources)
from adapters_modal.base import (
    InputSpec,
    SourceEntry,
    SourceModel,
    get_entry,
    load_source,
    local_weights,
    register_source,
    source_entries,
)
from adapters_modal.weights import WeightFile, resolve_weights

__all__ = [
    "InputSpec",
    "SourceEntry",
    "SourceModel",
    "WeightFile",
    "get_entry",
    "load_source",
    "local_weights",
    "register_source",
    "resolve_weights",
    "source_entries",
]
