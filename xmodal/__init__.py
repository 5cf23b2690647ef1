"""xmodal: cross-modal reprogramming of frozen pretrained models.

    target sample --bridge--> source input --frozen source--> source output --output map--> prediction

The public entry points are imported lazily so that `import adapters_modal` (which needs only
the ground floor: `xmodal.errors`, `devices`, `atomic` and `allocator`) stays light and free of
import cycles.
"""

__version__ = "0.2.0"

_LAZY = {
    "V2SClassifier": "xmodal.estimators.series",
    "SequenceClassifier": "xmodal.estimators.sequence",
    "TableClassifier": "xmodal.estimators.table",
    "PRESETS": "xmodal.presets",
    "resolve_settings": "xmodal.presets",
    "Reprogrammer": "xmodal.reprogrammer",
    "SeriesToWaveform": "xmodal.bridges.waveform",
    "SeriesToTones": "xmodal.bridges.tones",
    "series_bridge": "xmodal.bridges.series_factory",
    "TableToImage": "xmodal.bridges.table_to_image",
    "TableEncoder": "xmodal.bridges.table_encoding",
    "TokensToEmbeddings": "xmodal.bridges.tokens_to_embeddings",
    "LabelMapping": "xmodal.maps",
    "LinearHead": "xmodal.maps",
    "TrainConfig": "xmodal.training.config",
    "train": "xmodal.training.loop",
    "Backprop": "xmodal.training.gradients",
    "ZerothOrder": "xmodal.training.gradients",
    "hide_gradients": "xmodal.blackbox",
    "BlackBoxSource": "xmodal.blackbox",
    "save_reprogrammer": "xmodal.persistence",
    "load_reprogrammer": "xmodal.persistence",
    "load_ucr": "xmodal.data.ucr",
    "load_sequence_dataset": "xmodal.data.sequences",
    "load_table": "xmodal.data.tables",
    "XmodalError": "xmodal.errors",
    "wasserstein1": "xmodal.alignment",
    "measure_alignment": "xmodal.risk_bound",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'xmodal' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
