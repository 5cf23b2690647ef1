"""Loading Hugging Face models as frozen sources: shared by the image and audio adapters.

A Hugging Face source is named by where it comes from: a local folder written by
`save_pretrained`, or a hub id ("org/name"). transformers honours
HF_HUB_OFFLINE=1 itself: offline, a hub id loads only from the local cache.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

from adapters_modal.weights import sha256_of
from xmodal.errors import WeightsError, XmodalError

# Weight files of a saved model, in transformers' order of preference: a folder
# holding both formats is identified by the one transformers loads.
WEIGHT_PATTERNS = ("model*.safetensors", "pytorch_model*.bin")


def require_transformers(what: str):
    """The transformers module, or an error that says how to install it."""
    try:
        import transformers
    except ImportError as exc:
        raise XmodalError(f"Hugging Face {what}s need transformers: pip install transformers") from exc
    return transformers


def _looks_like_path(text: str) -> bool:
    # A hub id is "name" or "org/name"; anything else with a separator is a path.
    return text.startswith(("/", ".", "~")) or text.count("/") > 1 or "\\" in text


def resolve_location(path_or_id: str | Path, what: str) -> tuple[str, Path | None]:
    """(what to pass to `from_pretrained`, the local folder or None for a hub id).

    A path that does not exist is an error here, not a hub look-up that would
    fail later with a confusing network message."""
    text = str(path_or_id)
    path = Path(text).expanduser()
    if path.is_dir():
        return str(path.resolve()), path.resolve()
    problem = None
    if path.exists():
        problem = f"{path} is a file; give the folder written by save_pretrained (the one holding config.json)"
    elif isinstance(path_or_id, Path) or _looks_like_path(text):
        problem = f"the folder {path} does not exist"
    if problem:
        raise WeightsError(f"cannot load a Hugging Face {what} from {text!r}: {problem}")
    return text, None


def from_pretrained(load: Callable, location: str, what: str):
    """`load(location)` with transformers' many failure types turned into one clear error."""
    try:
        return load(location)
    except (OSError, ValueError, KeyError) as exc:
        raise WeightsError(
            f"cannot load a Hugging Face {what} from {location!r} ({exc}); give a folder written by "
            f"save_pretrained or a hub id of a {what} (offline, HF_HUB_OFFLINE=1, a hub id loads only "
            "from the local Hugging Face cache)"
        ) from exc


def hf_class_names(config) -> list[str]:
    """Class names from `config.id2label`, in logit order ("class_i" where a label is missing)."""
    labels = getattr(config, "id2label", None) or {}
    return [str(labels.get(i, labels.get(str(i), f"class_{i}"))) for i in range(config.num_labels)]


def folder_weights_sha256(folder: Path) -> str | None:
    """sha256 of the model's weight file in `folder` (what `sha256sum` prints);
    for a sharded model, the sha256 of its "name sha256" lines in name order.
    None when the folder holds no weight file."""
    for pattern in WEIGHT_PATTERNS:
        files = sorted(folder.glob(pattern))
        if len(files) == 1:
            return sha256_of(files[0])
        if files:
            listing = "".join(f"{file.name} {sha256_of(file)}\n" for file in files)
            return hashlib.sha256(listing.encode()).hexdigest()
    return None


def weights_identity(local_folder: Path | None, location: str) -> str:
    """The weights' identity: the file hash of the local folder or, for a hub id,
    of the snapshot folder transformers loaded it from in the Hugging Face cache
    (so a hub id and a save_pretrained copy of the same weights agree)."""
    folder = local_folder
    if folder is None:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(location, "config.json")
        folder = Path(cached).parent if isinstance(cached, str) else None
    digest = folder_weights_sha256(folder) if folder is not None else None
    if digest is None:
        where = folder or f"the Hugging Face cache snapshot of {location!r}"
        raise WeightsError(f"{where} holds no weight file ({' or '.join(WEIGHT_PATTERNS)}) to identify the model by; "
                           "save the model with save_pretrained and load that folder")
    return digest
