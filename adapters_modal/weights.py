"""Finding, checking and downloading pinned source-model weight files.

Resolution order, first hit wins:
  1. an explicit path given by the caller (`--weights`, `weights_path=`);
  2. the folder in `XMODAL_WEIGHTS_DIR`, searched recursively for the file name;
     without it, `../shared/models` beside the checkout (SHARED_WEIGHTS_DIR), when it exists;
  3. the user cache (`XMODAL_CACHE_DIR`, else `$XDG_CACHE_HOME/xmodal`, else `~/.cache/xmodal`);
  4. a download from the pinned public URL into the cache.
Every file is checked against its pinned sha256 before it is used, so a
truncated download or a different checkpoint can never load silently.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from xmodal.atomic import atomic_write
from xmodal.errors import WeightsError

# The shared folder of real weights next to a checkout (the project's data and model
# store), used when XMODAL_WEIGHTS_DIR is not set: `xmodal fit` works there with no setup.
SHARED_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "shared" / "models"


def weights_dir() -> Path | None:
    """XMODAL_WEIGHTS_DIR when set, else SHARED_WEIGHTS_DIR when it exists, else None."""
    root = os.environ.get("XMODAL_WEIGHTS_DIR")
    if root:
        return Path(root).expanduser()
    return SHARED_WEIGHTS_DIR if SHARED_WEIGHTS_DIR.is_dir() else None


@dataclass(frozen=True)
class WeightFile:
    """A pinned weight file: its expected name, content hash and public URL."""

    filename: str
    sha256: str
    url: str


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_dir() -> Path:
    if os.environ.get("XMODAL_CACHE_DIR"):
        return Path(os.environ["XMODAL_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "xmodal"


def _checked(path: Path, weight_file: WeightFile) -> Path:
    actual = sha256_of(path)
    if actual != weight_file.sha256:
        raise WeightsError(
            f"weights file {path} has sha256 {actual}, expected {weight_file.sha256}: "
            f"it is corrupt or a different checkpoint. Delete it, or replace it with the "
            f"file from {weight_file.url}"
        )
    return path


def _search_weights_dir(weight_file: WeightFile) -> Path | None:
    root = weights_dir()
    if root is None or not root.is_dir():
        return None  # a folder that does not exist (yet) is skipped, as on a fresh machine
    matches = sorted(root.rglob(weight_file.filename))
    return matches[0] if matches else None


def find_weights(weight_file: WeightFile, explicit_path: str | Path | None = None) -> Path | None:
    """The first local copy in resolution order, checked; None if there is none.

    An explicit path that does not exist is an error, not a fall-through: the
    caller asked for that file.
    """
    if explicit_path is not None:
        path = Path(explicit_path).expanduser()
        if not path.is_file():
            raise WeightsError(
                f"weights file {path} does not exist; pass the path of {weight_file.filename} "
                f"(download: {weight_file.url})"
            )
        return _checked(path, weight_file)
    for candidate in (_search_weights_dir(weight_file), cache_dir() / weight_file.filename):
        if candidate is not None and candidate.is_file():
            return _checked(candidate, weight_file)
    return None


def _download(weight_file: WeightFile, path: Path) -> None:
    """Fetch the file's URL into `path` with a progress bar, then check its hash."""
    with open(path, "wb") as out, urllib.request.urlopen(weight_file.url, timeout=60) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {weight_file.filename}") as bar:
            for chunk in iter(lambda: response.read(1 << 16), b""):
                out.write(chunk)
                bar.update(len(chunk))
    _checked(path, weight_file)


def download_weights(weight_file: WeightFile) -> Path:
    """Download into the cache through a temporary file, so a failed or corrupt
    download never leaves a half-written file where the next run would find it."""
    target = cache_dir() / weight_file.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, lambda partial: _download(weight_file, Path(partial)))
    return target


def resolve_weights(weight_file: WeightFile, explicit_path: str | Path | None = None) -> Path:
    """Local copy if there is one, else download; a clear error listing every place looked."""
    found = find_weights(weight_file, explicit_path)
    if found is not None:
        return found
    try:
        return download_weights(weight_file)
    except OSError as exc:  # URLError, timeouts and disk errors are all OSError
        searched = weights_dir() or f"(XMODAL_WEIGHTS_DIR not set, no {SHARED_WEIGHTS_DIR})"
        raise WeightsError(
            f"weights file {weight_file.filename} not found and could not be downloaded "
            f"({exc}). Looked in: {searched}; cache {cache_dir()}; "
            f"URL {weight_file.url}. Fix: download it yourself and pass its path "
            f"(--weights PATH), or put it under XMODAL_WEIGHTS_DIR"
        ) from exc
