"""Save and load a trained reprogrammer: a folder of JSON + safetensors.

    reprogrammer.json                   format version, source identity, bridge and map
                                        settings, class labels, free-form metadata, and
                                        the name and sha256 of the weights file
    reprogrammer.<sha256[:16]>.safetensors
                                        theta and omega only (kilobytes): never the source

Saving over an existing save is atomic: the weights go to a new file named by their hash
(the old one stays), then the JSON is replaced in one rename, the commit point, then the
old weights file is removed. A process killed at any moment leaves the previous save or
the new one, never a mixture (tests/test_fault_injection.py kills savers to show it).

A save is data from anywhere (run folders are shared and downloaded), so loading checks
it all before use: every key and type of the JSON, the weights' hash and tensor shapes,
and the source: only a registered source name is loaded unless the caller trusts the run
(`trust_source=True`, `--trust-source`), because an `hf:` name or a model folder would
make xmodal load whatever that path or hub id holds. The source's weights must have the
sha256 the save recorded. Every problem is one PersistenceError line; nothing is changed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import fields
from pathlib import Path
from typing import Callable

import safetensors.torch
import torch

from adapters_modal.base import SourceModel, is_registered, load_source
from adapters_modal.weights import sha256_of
from xmodal import __version__
from xmodal.atomic import atomic_write
from xmodal.bridges.filtered_tones import FilteredTones, FilteredTonesConfig
from xmodal.bridges.fused import FusedBridge
from xmodal.bridges.series_image import LINE, RECURRENCE, SeriesToImage, SeriesToImageConfig
from xmodal.bridges.table_to_image import TableToImage, TableToImageConfig
from xmodal.bridges.tokens_to_embeddings import (
    TokensToEmbeddings,
    TokensToEmbeddingsConfig,
)
from xmodal.bridges.tones import SeriesToTones, SeriesToTonesConfig
from xmodal.bridges.waveform import SeriesToWaveform, SeriesToWaveformConfig
from xmodal.errors import PersistenceError, XmodalError
from xmodal.maps import OutputMap, output_map_from_settings
from xmodal.maps.label_mapping import ASSIGNMENTS
from xmodal.reprogrammer import READS, Reprogrammer

FORMAT = "xmodal-reprogrammer"
# 2: a series bridge may play the series as tones (`encoding`); xmodal reading version 1
# would drop that setting without a word and predict from a waveform bridge, so it must refuse.
# 3: the series bridge kind "series_to_audio" became "series_to_waveform" and "series_to_tones"
# (the tones' config has no placement settings, the waveform's no encoding); xmodal reading
# version 2 knows neither kind, and refuses on the version before it reads any of the save.
# Version 1 and 2 saves still load: see _upgrade.
# The kinds "series_to_image" and "series_to_filtered_tones" came later without a new version: a
# reader that predates one refuses it by name ("unknown to this xmodal; upgrade xmodal") before
# building anything, and no older kind changed meaning, so nothing is misread.
# 4: the weights file is named by its hash, and the JSON names it ("weights_file"), so that
# overwriting a save is atomic (module docstring); a version-3 reader would look for
# reprogrammer.safetensors and call the save incomplete, so it must refuse on the version.
# 5: bridges may draw theta at a low resolution ("delta_resolution") and a head may read the
# log-probabilities ("reads": "log_probs"); a version-4 reader would call such a save damaged
# (an unknown setting) instead of asking for an upgrade, so it must refuse on the version.
# 6: the table bridge may draw one image per feature ("views": "per-feature", the map reading all
# of them); a version-5 reader would call such a save damaged (an unknown setting) instead of
# asking for an upgrade, so it must refuse on the version. Earlier table saves draw one image.
# 7: a series run may read a fused source ("bc-resnet-gsc35+efficientnet-lite0", adapters_modal.fused)
# through a "fused" bridge that holds one part bridge per source; a version-6 reader would call the
# fused name untrusted and the kind unknown, instead of asking for an upgrade.
# 8: a sequence run may read its records twice, through theta and through theta's start ("beside_start",
# the trained view); a version-7 reader would call such a save damaged (an unknown setting) instead of
# asking for an upgrade, so it must refuse on the version.
# 9: a fused run's part bridge may have two views (a trained view beside its start, the trained-fusion
# preset's), its
# source reading both; a version-8 reader would read one view and call the head's width damaged.
# 10: a series image bridge may draw the recurrence plot ("picture": "recurrence"); a version-9 reader would
# call such a save damaged (an unknown setting) instead of asking for an upgrade. A window image saves no
# "picture", as before.
# 11: a series image bridge may draw a line chart ("picture": "line"); a version-10 reader knows the setting
# but not this value, and would call the save damaged instead of asking for an upgrade.
# A save is written with the lowest version that reads it right: 11 only where an image bridge (or a fused
# part) draws a line chart, 10 only where one draws the recurrence plot, 9 only for a fused run with a
# trained view, 8 only for a sequence trained view, 7 only for another fused run (a single-source series
# trained view is a bridge kind of its own, refused by name as above).
FORMAT_VERSION = 11
LINE_FORMAT_VERSION = FORMAT_VERSION
RECURRENCE_FORMAT_VERSION = 10
FUSED_TRAINED_VIEW_FORMAT_VERSION = 9
SEQUENCE_TRAINED_VIEW_FORMAT_VERSION = 8
FUSED_FORMAT_VERSION = 7
PLAIN_FORMAT_VERSION = 6
CONFIG_FILE = "reprogrammer.json"
LEGACY_WEIGHTS_FILE = "reprogrammer.safetensors"  # format versions 1 to 3
WEIGHTS_FILE_PATTERN = re.compile(r"reprogrammer\.[0-9a-f]{16}\.safetensors")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
# The JSON's keys and their types; "weights_file" from version 4 on, "reads" from version 2.
DOCUMENT_KEYS = {"format": str, "format_version": int, "xmodal_version": str, "source": dict, "bridge": dict,
                 "output_map": dict, "reads": str, "classes": list, "weights_sha256": str, "weights_file": str,
                 "metadata": dict}


def weights_file_name(sha256: str) -> str:
    return f"reprogrammer.{sha256[:16]}.safetensors"


def weights_file(folder: str | Path) -> Path:
    """The weights file a save's JSON names (after checking the JSON)."""
    return Path(folder) / read_document(folder).get("weights_file", LEGACY_WEIGHTS_FILE)

# bridge kind -> (module class, config class); one entry per bridge module. A fused bridge is
# saved as kind FUSED_BRIDGE with its parts' entries, each one of these.
BRIDGES = {
    "series_to_waveform": (SeriesToWaveform, SeriesToWaveformConfig),
    "series_to_tones": (SeriesToTones, SeriesToTonesConfig),
    "series_to_filtered_tones": (FilteredTones, FilteredTonesConfig),
    "series_to_image": (SeriesToImage, SeriesToImageConfig),
    "table_to_image": (TableToImage, TableToImageConfig),
    "tokens_to_embeddings": (TokensToEmbeddings, TokensToEmbeddingsConfig),
}


FUSED_BRIDGE = "fused"


def _bridge_document(bridge: torch.nn.Module) -> dict:
    """{"kind", "config"} of a bridge; a fused bridge's config lists its parts' documents."""
    if isinstance(bridge, FusedBridge):
        return {"kind": FUSED_BRIDGE, "config": {"parts": [_bridge_document(part) for part in bridge.parts]}}
    for kind, (cls, _) in BRIDGES.items():
        if type(bridge) is cls:  # exactly: FilteredTones is a SeriesToTones too
            return {"kind": kind, "config": bridge.config.to_dict()}
    raise PersistenceError(f"cannot save a bridge of type {type(bridge).__name__}: no saver is registered")


# A bridge config's input size and the source InputSpec field it must equal: checked before the bridge is
# built, since building allocates theta at that size (a damaged "num_samples" of 2**40 would take the memory
# before any later check could refuse it).
SPEC_FIELDS = {"num_samples": "num_samples", "sample_rate": "sample_rate", "channels": "channels",
               "height": "height", "width": "width", "source_vocab_size": "vocab_size",
               "embedding_dim": "embedding_dim", "max_positions": "max_positions"}


def _bridge_from(document: dict, folder: Path, source: SourceModel) -> torch.nn.Module:
    """The bridge a saved {"kind", "config"} describes for `source` (KeyError, TypeError, ValueError, ... on a
    damaged one, or one whose input size is not the source's)."""
    kind = document["kind"]
    if kind == FUSED_BRIDGE:
        parts, sources = document["config"]["parts"], getattr(source, "parts", None)
        if not isinstance(parts, list) or len(parts) < 2 or not all(isinstance(part, dict) for part in parts):
            raise ValueError("a fused bridge needs a list of at least 2 part bridges")
        if sources is None or len(sources) != len(parts):
            raise ValueError(f"{len(parts)} part bridges for the source {source.name!r}")
        return FusedBridge([_bridge_from(part, folder, part_source) for part, part_source in zip(parts, sources)])
    if kind not in BRIDGES:
        raise PersistenceError(f"{folder} uses bridge {kind!r}, unknown to this xmodal; upgrade xmodal")
    bridge_cls, config_cls = BRIDGES[kind]
    config = config_cls.from_dict(document["config"])
    for field, spec_field in SPEC_FIELDS.items():
        expected = getattr(source.input_spec, spec_field)
        if hasattr(config, field) and expected is not None and getattr(config, field) != expected:
            raise ValueError(f"the bridge's {field} {getattr(config, field)!r} is not {source.name}'s {expected}")
    return bridge_cls(config)


def _plain(value):
    """numpy scalars -> Python scalars, so labels survive JSON unchanged."""
    return value.item() if hasattr(value, "item") else value


def save_reprogrammer(model: Reprogrammer, folder: str | Path, metadata: dict | None = None) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.trainable_state().items()}
    data = safetensors.torch.save(state)
    digest = hashlib.sha256(data).hexdigest()
    name = weights_file_name(digest)
    text = _document_text(model, digest, name, metadata)  # fails before anything is written
    if not (folder / name).is_file() or sha256_of(folder / name) != digest:
        atomic_write(folder / name, data)
    atomic_write(folder / CONFIG_FILE, text)  # the commit point
    for stale in folder.glob("reprogrammer*.safetensors"):
        if stale.name != name:
            stale.unlink(missing_ok=True)
    return folder


def _lowest_version(bridge: torch.nn.Module) -> int:
    """The lowest format version that reads a save of this bridge right (the history above)."""
    parts = bridge.parts if isinstance(bridge, FusedBridge) else [bridge]
    pictures = {part.config.picture for part in parts if isinstance(part, SeriesToImage)}
    if LINE in pictures:
        return LINE_FORMAT_VERSION
    if RECURRENCE in pictures:
        return RECURRENCE_FORMAT_VERSION
    if isinstance(bridge, TokensToEmbeddings) and bridge.config.beside_start:
        return SEQUENCE_TRAINED_VIEW_FORMAT_VERSION
    if isinstance(bridge, FusedBridge):
        return FUSED_TRAINED_VIEW_FORMAT_VERSION if max(bridge.part_views()) > 1 else FUSED_FORMAT_VERSION
    return PLAIN_FORMAT_VERSION


def _document_text(model: Reprogrammer, weights_sha256: str, weights_name: str, metadata: dict | None) -> str:
    document = {
        "format": FORMAT,
        "format_version": _lowest_version(model.bridge),
        "xmodal_version": __version__,
        "source": model.source.identity,
        "bridge": _bridge_document(model.bridge),
        "output_map": model.output_map.settings(),
        "reads": model.reads,
        "classes": [_plain(c) for c in model.classes],
        "weights_sha256": weights_sha256,
        "weights_file": weights_name,
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
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: absurd nesting
        raise PersistenceError(f"{path} is corrupt ({exc}); re-run the fit that produced it") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise PersistenceError(f"{path} is not an xmodal reprogrammer file")
    version = document.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise PersistenceError(f"{path}: format_version is missing or not a positive integer; the save is damaged")
    if version > FORMAT_VERSION:
        raise PersistenceError(
            f"{path} has format version {version} (written by xmodal {document.get('xmodal_version', '?')}), "
            f"this xmodal ({__version__}) reads up to {FORMAT_VERSION}; upgrade xmodal"
        )
    _check_keys(document, path)
    _check_metadata(document["metadata"] if "metadata" in document else {}, path)
    return _upgrade(document)


def _check_keys(document: dict, path: Path) -> None:
    """Every key known and of its type: a hand-edited or foreign file stops here, by name."""
    unknown = sorted(set(document) - set(DOCUMENT_KEYS))
    if unknown:
        raise PersistenceError(f"{path}: unknown key(s) {', '.join(map(repr, unknown))}; the file was not written "
                               "by xmodal, or by a newer one that should have said so in format_version")
    required = {"source", "bridge", "output_map", "classes", "weights_sha256"}
    required |= {"weights_file"} if document["format_version"] >= 4 else set()
    for key, kind in DOCUMENT_KEYS.items():
        if (key in required or key in document) and not isinstance(document.get(key), kind):
            raise PersistenceError(f"{path}: key {key!r} is missing or not a JSON {kind.__name__}; "
                                   "the save is damaged, re-run the fit")
    source = document["source"]
    if (set(source) != {"name", "weights_sha256"} or not isinstance(source["name"], str)
            or not isinstance(source["weights_sha256"], str) or not SHA256_PATTERN.fullmatch(source["weights_sha256"])):
        raise PersistenceError(f"{path}: 'source' must hold a name and a 64-digit weights_sha256, got {source!r}")
    if not SHA256_PATTERN.fullmatch(document["weights_sha256"]):
        raise PersistenceError(f"{path}: weights_sha256 is not a sha256; the save is damaged")
    if "weights_file" in document and not WEIGHTS_FILE_PATTERN.fullmatch(document["weights_file"]):
        # never a path: a save names a file beside its JSON, nothing elsewhere on the disk
        raise PersistenceError(f"{path}: weights_file {document['weights_file']!r} is not a weights file name "
                               "of this folder (reprogrammer.<16 hex digits>.safetensors)")
    if document.get("reads", "logits") not in READS:
        raise PersistenceError(f"{path}: reads must be one of {', '.join(READS)}, got {document['reads']!r}")
    if not document["classes"] or not all(isinstance(c, (str, int, float, bool)) for c in document["classes"]):
        raise PersistenceError(f"{path}: 'classes' must be a non-empty list of labels (strings or numbers)")
    if not isinstance(document["bridge"].get("kind"), str) or not isinstance(document["bridge"].get("config"), dict):
        raise PersistenceError(f"{path}: 'bridge' must hold a kind and a config; the save is damaged")


# What xmodal's estimators and CLI keep in "metadata" and read back; anything else there is free-form.
METADATA_TYPES = {"estimator": str, "task": str, "preset": str, "settings": dict, "params": dict, "seed": int,
                  "fit": dict, "data": dict, "dataset": str}


def _check_metadata(metadata: dict, path: Path) -> None:
    """The metadata xmodal reads back, of its types; settings JSON scalars only."""
    for key, kind in METADATA_TYPES.items():
        value = metadata.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise PersistenceError(f"{path}: metadata {key!r} should be a JSON {kind.__name__}, got "
                                   f"{type(value).__name__}; the save is damaged, re-run the fit")
    for key in ("settings", "params"):
        for name, value in (metadata.get(key) or {}).items():
            if not isinstance(value, (str, int, float, bool, type(None))):
                raise PersistenceError(f"{path}: metadata setting {name!r} should be a JSON scalar, got "
                                       f"{type(value).__name__}; the save is damaged, re-run the fit")


def _upgrade(document: dict) -> dict:
    """An older save in today's terms (the version number stays as written): a version 1 or 2
    "series_to_audio" bridge is the waveform or the tone bridge, by its config's encoding
    (version 1 had only the waveform). The old config's settings that the new bridge lacks
    are at their neutral values there (format 2 refused anything else), so they are dropped."""
    bridge = document["bridge"]
    if bridge["kind"] == "series_to_audio":
        tones = bridge["config"].get("encoding", "waveform") != "waveform"
        kind = "series_to_tones" if tones else "series_to_waveform"
        known = {field.name for field in fields(BRIDGES[kind][1])}
        document["bridge"] = {"kind": kind, "config": {k: v for k, v in bridge["config"].items() if k in known}}
    return document


def check_source_trust(document: dict, folder: str | Path, trust_source: bool) -> None:
    """Refuse, before anything is loaded, a run whose source is not a registered name
    unless the caller trusts it; a trusted location's weights must hash as recorded."""
    saved = document["source"]
    if is_registered(saved["name"]):
        return
    if not trust_source:
        served = saved["name"].startswith(("http:", "https:"))
        risk = ("contact that server and send it your inputs (and XMODAL_API_KEY)" if served
                else "load whatever that folder or hub id holds")
        raise PersistenceError(
            f"{folder} names the source {saved['name']!r}, which is not a registered source: loading the run "
            f"would {risk}. If you trust this run, pass trust_source=True (CLI: --trust-source)")
    if not saved["name"].startswith("hf:"):
        # A served source (its server reports its weights' sha256) or an image scheme (hf-image:,
        # torchvision:, whose identity hashes the loaded tensors, not files): compared once loaded
        # (_check_source).
        return
    from adapters_modal.hf_loading import resolve_location, weights_identity

    location, local = resolve_location(saved["name"].removeprefix("hf:"), "model")
    found = weights_identity(local, location)
    if found != saved["weights_sha256"]:
        raise PersistenceError(
            f"{folder} was trained against weights with sha256 {saved['weights_sha256'][:12]}… but {location} "
            f"holds {found[:12]}…; refusing to load other weights than the run's")


def _check_source(document: dict, source: SourceModel, folder: Path) -> None:
    saved = document["source"]
    served = saved["name"].startswith(("http:", "https:"))  # trained through a server: its model, by hash, is it
    if source.identity != saved and not (served and source.weights_sha256 == saved["weights_sha256"]):
        raise PersistenceError(
            f"{folder} was trained against source {saved['name']!r} (weights sha256 {saved['weights_sha256'][:12]}…) "
            f"but the given source is {source.name!r} (sha256 {source.weights_sha256[:12]}…); "
            "a reprogrammer only works with the exact source it was trained on"
        )


def _saved_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    """Each tensor's shape in a safetensors file, read from its header alone."""
    try:
        with safetensors.safe_open(str(weights), framework="pt") as file:
            return {name: tuple(file.get_slice(name).get_shape()) for name in file.keys()}
    except Exception as exc:  # safetensors raises its own SafetensorError
        raise _corrupt(weights, exc) from exc


def _corrupt(weights: Path, exc: Exception) -> PersistenceError:
    return PersistenceError(f"{weights} is corrupt ({exc}); re-run the fit")


def _map_from(settings: dict, weights: Path, source: SourceModel, bridge: torch.nn.Module) -> OutputMap:
    """The output map the settings describe, built only once its sizes are checked: its tensors' shapes against
    the weights file, on the meta device, which allocates nothing (a damaged num_source of 2**31 - 1 took 24 GB);
    a label mapping's num_source, which no saved shape shows, against the source's classes (one per view)."""
    classes = len(getattr(source, "class_names", ())) * getattr(bridge, "views", 1)
    if settings.get("kind") in ASSIGNMENTS and classes and settings["num_source"] != classes:
        raise ValueError(f"a label mapping of {settings['num_source']} source classes for {source.name}'s {classes}")
    with torch.device("meta"):
        planned = {f"output_map.{name}": tuple(tensor.shape)
                   for name, tensor in output_map_from_settings(settings).state_dict().items()}
    saved = _saved_shapes(weights)
    for name, shape in planned.items():
        if name in saved and saved[name] != shape:  # (a missing tensor is named by _load_state)
            raise ValueError(f"{name} would be {shape} but the weights file holds {saved[name]}")
    return output_map_from_settings(settings)


def _build(document: dict, source: SourceModel, folder: Path, weights: Path) -> Reprogrammer:
    sizes = [document["output_map"].get(key) for key in ("num_source", "num_target")]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes):
        raise PersistenceError(f"{folder}/{CONFIG_FILE}: output_map num_source and num_target must be positive "
                               f"whole numbers, got {sizes}; the save is damaged, re-run the fit")
    try:
        bridge = _bridge_from(document["bridge"], folder, source)
        _check_fused_parts(bridge, source)
        output_map = _map_from(document["output_map"], weights, source, bridge)
        return Reprogrammer(bridge, source, output_map, document["classes"], reads=document.get("reads", "logits"))
    except PersistenceError:  # an unknown bridge kind: already one line that says what to do
        raise
    except (KeyError, TypeError, ValueError, ArithmeticError, XmodalError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PersistenceError(f"{folder}/{CONFIG_FILE}: the bridge or map settings are damaged ({reason}); "
                               "re-run the fit") from exc


def _check_fused_parts(bridge: torch.nn.Module, source: SourceModel) -> None:
    """A fused bridge exactly for a fused source: one single-source bridge per part (ValueError if not)."""
    parts = getattr(source, "parts", None)
    if isinstance(bridge, FusedBridge) != (parts is not None):
        raise ValueError(f"a {'fused' if isinstance(bridge, FusedBridge) else 'single'} bridge for the source "
                         f"{source.name!r}")
    if parts is not None and (len(bridge.parts) != len(parts)
                              or any(isinstance(part, FusedBridge) for part in bridge.parts)):
        raise ValueError(f"{len(bridge.parts)} part bridges for the {len(parts)} sources of {source.name!r}")


def _load_state(model: Reprogrammer, weights: Path) -> None:
    """theta and omega from the safetensors file, every tensor's name, shape and dtype checked first."""
    try:
        state = safetensors.torch.load_file(str(weights))
    except Exception as exc:  # safetensors raises its own SafetensorError
        raise _corrupt(weights, exc) from exc
    expected = model.trainable_state()
    if set(state) != set(expected):
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        raise PersistenceError(f"{weights} does not match {CONFIG_FILE}: missing tensors {missing}, "
                               f"unexpected tensors {extra}; the save is damaged, re-run the fit")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape or tensor.dtype != expected[name].dtype:
            raise PersistenceError(
                f"{weights}: tensor {name!r} is {tuple(tensor.shape)} {tensor.dtype} but {CONFIG_FILE} needs "
                f"{tuple(expected[name].shape)} {expected[name].dtype}; the save is damaged, re-run the fit")
    model.load_state_dict(state, strict=False)


def load_reprogrammer(folder: str | Path, source: SourceModel | None = None,
                      weights_path: str | Path | None = None, trust_source: bool = False,
                      loader: Callable[[str, str | Path | None], SourceModel] = load_source,
                      ) -> tuple[Reprogrammer, dict]:
    """(reprogrammer in eval mode, its JSON document). `source` given by the caller is used
    as is (after the identity check); otherwise `loader(saved name, weights_path)` loads it
    (any registered source by default; a task may load only its kind), and the name must be a
    registered source unless `trust_source`."""
    folder = Path(folder)
    document = read_document(folder)
    weights = folder / document.get("weights_file", LEGACY_WEIGHTS_FILE)
    if not weights.is_file():
        raise PersistenceError(f"{weights} not found; the save is incomplete, re-run the fit")
    if sha256_of(weights) != document["weights_sha256"]:
        raise PersistenceError(
            f"{weights} does not match {CONFIG_FILE} (sha256 differs): the save is corrupt or was "
            "interrupted; re-run the fit"
        )
    if source is None:
        check_source_trust(document, folder, trust_source)
        source = loader(document["source"]["name"], weights_path)
    _check_source(document, source, folder)
    model = _build(document, source, folder, weights)
    _load_state(model, weights)
    return model.eval(), document
