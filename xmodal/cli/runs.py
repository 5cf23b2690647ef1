"""Run folders: where `fit` writes, what a run records, atomic JSON.

A run folder holds reprogrammer.json (settings, classes, and the metadata of the run: its
task and data), the weights reprogrammer.<hash>.safetensors (xmodal.persistence), metrics.json
and, with --plot, two PNGs. An
existing non-empty folder is never written into without --overwrite; without --out a
new folder runs/<dataset>-<YYYYmmdd-HHMMSS> is made.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from xmodal.atomic import atomic_write
from xmodal.errors import PersistenceError, XmodalError

RUNS_FOLDER = Path("runs")
# What `fit` writes into a run besides the reprogrammer's JSON and weights; with --overwrite
# they are all removed first (a learning curve of the previous run must not sit beside the
# new one). Nothing else in the folder is touched.
RUN_FILES = ("metrics.json", "learning_curve.png", "confusion_matrix.png")

# bridge kind -> task, for runs saved before the metadata recorded the task
BRIDGE_TASKS = {"series_to_waveform": "series", "series_to_tones": "series", "series_to_audio": "series",
                "tokens_to_embeddings": "sequence", "table_to_image": "table"}


def check_out(out: str | None, overwrite: bool) -> Path | None:
    """The --out folder, refused (before any work) when it exists and is not empty,
    unless `overwrite`; None when no --out was given."""
    if out is None:
        return None
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise XmodalError(f"--out {out} is a file, not a folder; give a folder for the run")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise XmodalError(f"--out {out} already exists and is not empty; pass --overwrite to replace the run in it, "
                          "or give another folder")
    return path


def new_run_folder(dataset: str, when: float | None = None) -> Path:
    """runs/<dataset>-<YYYYmmdd-HHMMSS>, made now; -2, -3, ... when that name is taken."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    name = re.sub(r"[^\w.+-]+", "_", dataset).strip("._") or "run"
    RUNS_FOLDER.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        path = RUNS_FOLDER / (f"{name}-{stamp}" + ("" if attempt == 1 else f"-{attempt}"))
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise XmodalError(f"cannot make a new run folder for {dataset} in {RUNS_FOLDER}; give --out")


@contextmanager
def run_folder(out: Path | None, dataset: str):
    """The folder a fit writes its run into: `out`, or a new runs/<dataset>-<time>. The fit
    writes reprogrammer.json last (its commit point: without it a folder is no run), and when
    the writing fails or is interrupted (Ctrl-C) the run's files are removed: a folder this fit
    made goes with them (and its parents, if this fit made them and they are empty: never a
    folder another fit is writing into); a folder the user had stays."""
    if out is None:
        missing = _first_missing(RUNS_FOLDER)  # runs/ (and above) when this fit is the one to make them
        folder = new_run_folder(dataset)
        owned = True
    else:
        missing = _first_missing(out)
        folder, owned = out, missing is not None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
    except BaseException:
        if owned:
            shutil.rmtree(folder, ignore_errors=True)
            if missing is not None:
                _remove_empty(folder.parent, stop=missing.parent)
        else:
            remove_run_files(folder)
        raise


def _remove_empty(folder: Path, stop: Path | None) -> None:
    """rmdir `folder` and its parents up to (not including) `stop` while they are empty; a
    folder another process wrote into in the meantime is not empty, and stays."""
    while stop is not None and folder != stop:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def remove_run_files(folder: Path) -> None:
    """The files a fit writes into a run folder, gone (the JSON first: the folder stops being a run)."""
    for name in ("reprogrammer.json", *RUN_FILES):
        (folder / name).unlink(missing_ok=True)
    for weights in folder.glob("reprogrammer*.safetensors"):
        weights.unlink(missing_ok=True)


def _first_missing(path: Path) -> Path | None:
    """The outermost folder on the way to `path` that does not exist yet (None: all exist)."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing


def _plain(value):
    """numpy scalars and arrays, paths: as JSON-native values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def write_json(path: Path, document) -> None:
    """Write JSON atomically (xmodal.atomic)."""
    atomic_write(path, json.dumps(document, indent=2, default=_plain) + "\n")


@dataclass
class Run:
    """A saved run as `evaluate`, `predict` and `align` see it."""

    folder: Path
    task: str
    metadata: dict  # the reprogrammer.json metadata: estimator, task, preset, settings, seed, fit, dataset, data
    document: dict

    @property
    def data(self) -> dict:
        """What `fit` recorded about the data (empty for a run saved from Python)."""
        return self.metadata.get("data") or {}

    @property
    def dataset(self) -> str | None:
        return self.data.get("dataset") or self.metadata.get("dataset")


def read_run(folder: str | Path) -> Run:
    """The run's document and task (metadata "task"; older runs: by the bridge kind)."""
    from xmodal.persistence import read_document  # torch: only when a run is read

    folder = Path(folder)
    document = read_document(folder)
    metadata = document.get("metadata") or {}
    task = metadata.get("task") or BRIDGE_TASKS.get(document["bridge"].get("kind"))
    if task not in BRIDGE_TASKS.values():
        raise PersistenceError(f"{folder}: cannot tell the task of this run (bridge {document['bridge'].get('kind')!r}); "
                               "it was saved by another xmodal")
    return Run(folder, task, metadata, document)
