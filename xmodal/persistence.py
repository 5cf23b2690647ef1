"""Save and load a trained reprogrammer: a folder of JSON + safetensors.

    reprogrammer.json          format version, source identity, bridge and map
                               settings, class labels, free-form metadata
    reprogrammer.safetensors   theta and omega only (kilobytes): never the source

The JSON records the sha256 of the safetensors file and is written last, each
file through a temporary name and an atomic rename: an interrupted save
leaves the previous save intact or is detected on load, never mixed silently.
Loading re-resolves the source model by name and refuses a source whose
weights differ from the ones the reprogrammer was trained against.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import safetensors.torch
import torch

from adapters_modal.base import SourceModel, load_source
from adapters_modal.weights import sha256_of
from xmodal import __version__
from xmodal.bridges.series_image import SeriesToImage, SeriesToImageConfig
from xmodal.bridges.table_to_image import TableToImage, TableToImageConfig
from xmodal.bridges.tokens_to_embeddings import (
    TokensToEmbeddings,
    TokensToEmbeddingsConfig,
)
from xmodal.bridges.tones import SeriesToTones, SeriesToTonesConfig
from xmodal.bridges.waveform import SeriesToWaveform, SeriesToWaveformConfig
from xmodal.errors import PersistenceError
from xmodal.maps import output_map_from_settings
from xmodal.reprogrammer import Reprogrammer

FORMAT = "xmodal-reprogrammer"
# 2: a series bridge may play the series as tones (`encoding`); xmodal reading version 1
# would drop that setting without a word and predict from a waveform bridge, so it must refuse.
# 3: the series bridge kind "series_to_audio" became "series_to_waveform" and "series_to_tones"
# (the tones' config has no placement settings, the waveform's no encoding); xmodal reading
# version 2 knows neither kind, and refuses on the version before it reads any of the save.
# Version 1 and 2 saves still load: see _upgrade.
# The kind "series_to_image" came later without a new version: a version-3 reader that predates it
# refuses it by name ("unknown to this xmodal; upgrade xmodal") before building anything, and no
# older kind changed meaning, so nothing is misread.
FORMAT_VERSION = 3
CONFIG_FILE = "reprogrammer.json"
WEIGHTS_FILE = "reprogrammer.safetensors"

# bridge kind -> (module class, config class); one entry per bridge module.
BRIDGES = {
    "series_to_waveform": (SeriesToWaveform, SeriesToWaveformConfig),
    "series_to_tones": (SeriesToTones, SeriesToTonesConfig),
    "series_to_image": (SeriesToImage, SeriesToImageConfig),
    "table_to_image": (TableToImage, TableToImageConfig),
    "tokens_to_embeddings": (TokensToEmbeddings, TokensToEmbeddingsConfig),
}


def _bridge_kind(bridge: torch.nn.Module) -> str:
    for kind, (cls, _) in BRIDGES.items():
        if isinstance(bridge, cls):
            return kind
    raise PersistenceError(f"cannot save a bridge of type {type(bridge).__name__}: no saver is registered")


def _plain(value):
    """numpy scalars -> Python scalars, so labels survive JSON unchanged."""
    return value.item() if hasattr(value, "item") else value


def _staging_file(folder: Path, name: str) -> str:
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    os.close(handle)
    return temporary


def _publish(staged: str, path: Path) -> None:
    """Atomically move a staged file into place, with the permissions a plain open()
    would give (mkstemp files are owner-only)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staged, 0o666 & ~umask)
    os.replace(staged, path)


def _write_atomically(path: Path, write) -> None:
    temporary = _staging_file(path.parent, path.name)
    try:
        write(temporary)
        _publish(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def save_reprogrammer(model: Reprogrammer, folder: str | Path, metadata: dict | None = None) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.trainable_state().items()}
    staged = _staging_file(folder, WEIGHTS_FILE)
    try:
        safetensors.torch.save_file(state, staged)
        text = _document_text(model, sha256_of(Path(staged)), metadata)  # fails before anything is replaced
        _publish(staged, folder / WEIGHTS_FILE)
    finally:
        if os.path.exists(staged):
            os.remove(staged)
    _write_atomically(folder / CONFIG_FILE, lambda tmp: Path(tmp).write_text(text))
    return folder


def _document_text(model: Reprogrammer, weights_sha256: str, metadata: dict | None) -> str:
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "xmodal_version": __version__,
        "source": model.source.identity,
        "bridge": {"kind": _bridge_kind(model.bridge), "config": model.bridge.config.to_dict()},
        "output_map": model.output_map.settings(),
        "reads": model.reads,
        "classes": [_plain(c) for c in model.classes],
        "weights_sha256": weights_sha256,
        "metadata": metadata or {},
    }
    try:
        return json.dumps(document, indent=2)
    except TypeError as exc:
        raise PersistenceError(f"cannot save: metadata is not JSON-serialisable ({exc})") from exc


def read_document(folder: str | Path) -> dict:
    """The checked JSON of a save, an older save's bridge kind renamed to today's (without
    loading any model)."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise PersistenceError(f"{path} not found: {folder} is not a saved reprogrammer "
                               "(run `xmodal fit series|sequence|table --out FOLDER` first)")
    try:
        document = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PersistenceError(f"{path} is corrupt ({exc}); re-run the fit that produced it") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise PersistenceError(f"{path} is not an xmodal reprogrammer file")
    if isinstance(document.get("format_version"), int) and document["format_version"] > FORMAT_VERSION:
        raise PersistenceError(
            f"{path} has format version {document['format_version']} (written by xmodal "
            f"{document.get('xmodal_version', '?')}), this xmodal ({__version__}) reads up to {FORMAT_VERSION}; "
            "upgrade xmodal"
        )
    expected = {"source": dict, "bridge": dict, "output_map": dict, "classes": list, "weights_sha256": str}
    for key, kind in expected.items():
        if not isinstance(document.get(key), kind):
            raise PersistenceError(f"{path}: key {key!r} is missing or malformed; the save is damaged, re-run the fit")
    if not isinstance(document.get("format_version"), int):
        raise PersistenceError(f"{path}: format_version is missing or not an integer; the save is damaged")
    return _upgrade(document)


def _upgrade(document: dict) -> dict:
    """An older save in today's terms (the version number stays as written): a version 1 or 2
    "series_to_audio" bridge is the waveform or the tone bridge, by its config's encoding
    (version 1 had only the waveform). The old config's settings that the new bridge lacks
    are at their neutral values there (format 2 refused anything else), and from_dict drops them."""
    bridge = document["bridge"]
    if bridge.get("kind") == "series_to_audio" and isinstance(bridge.get("config"), dict):
        tones = bridge["config"].get("encoding", "waveform") != "waveform"
        document["bridge"] = {**bridge, "kind": "series_to_tones" if tones else "series_to_waveform"}
    return document


def _check_source(document: dict, source: SourceModel, folder: Path) -> None:
    saved = document["source"]
    if source.identity != saved:
        raise PersistenceError(
            f"{folder} was trained against source {saved['name']!r} (weights sha256 {saved['weights_sha256'][:12]}…) "
            f"but the given source is {source.name!r} (sha256 {source.weights_sha256[:12]}…); "
            "a reprogrammer only works with the exact source it was trained on"
        )


def load_reprogrammer(folder: str | Path, source: SourceModel | None = None,
                      weights_path: str | Path | None = None) -> tuple[Reprogrammer, dict]:
    """(reprogrammer in eval mode, its JSON document)."""
    folder = Path(folder)
    document = read_document(folder)
    weights_file = folder / WEIGHTS_FILE
    if not weights_file.is_file():
        raise PersistenceError(f"{weights_file} not found; the save is incomplete, re-run the fit")
    if sha256_of(weights_file) != document["weights_sha256"]:
        raise PersistenceError(
            f"{weights_file} does not match {CONFIG_FILE} (sha256 differs): the save is corrupt or was "
            "interrupted; re-run the fit"
        )
    if source is None:
        source = load_source(document["source"]["name"], weights_path)
    _check_source(document, source, folder)
    kind = document["bridge"].get("kind")
    if kind not in BRIDGES:
        raise PersistenceError(f"{folder} uses bridge {kind!r}, unknown to this xmodal; upgrade xmodal")
    bridge_cls, config_cls = BRIDGES[kind]
    try:
        bridge = bridge_cls(config_cls.from_dict(document["bridge"]["config"]))
        output_map = output_map_from_settings(document["output_map"])
    except (KeyError, TypeError) as exc:
        raise PersistenceError(f"{folder}: bridge or map settings are damaged ({exc!r}); re-run the fit") from exc
    model = Reprogrammer(bridge, source, output_map, document["classes"], reads=document.get("reads", "logits"))
    try:
        state = safetensors.torch.load_file(str(weights_file))
    except Exception as exc:  # safetensors raises its own SafetensorError
        raise PersistenceError(f"{weights_file} is corrupt ({exc}); re-run the fit") from exc
    expected = set(model.trainable_state())
    if set(state) != expected:
        raise PersistenceError(
            f"{weights_file} holds tensors {sorted(state)} but this reprogrammer needs {sorted(expected)}; "
            "the save does not match its JSON"
        )
    model.load_state_dict(state, strict=False)
    return model.eval(), document
