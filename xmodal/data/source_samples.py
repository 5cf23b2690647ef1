"""Samples from the source domain, for alignment: what the frozen model was trained on.

    a folder of audio files   any rate and channel count, read into the source's
                              input window; labelled when the parent folder name
                              (Speech Commands layout) or one `_`/`-`-separated word
                              of the file name is a source class
    a .txt file               one sentence per line, for language-model sources
    a .npy file               precomputed (n, d) representations, unlabelled

Labels are all or nothing: the source risk needs every sample labelled, so a
set with any unlabelled sample is treated as unlabelled (and says which file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from adapters_modal.base import SourceModel
from xmodal.data.npy import read_npy
from xmodal.errors import DataError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


@dataclass
class SourceSamples:
    description: str
    names: list[str]
    inputs: object | None = None  # source-model inputs (a waveform batch, or sentences)
    representations: np.ndarray | None = None  # precomputed; then `inputs` is None
    labels: np.ndarray | None = None  # source class indices, None when unlabelled
    unlabelled_reason: str | None = None

    def __len__(self) -> int:
        return len(self.names)


def label_of(path: Path, class_names: list[str]) -> str | None:
    """The source class a file name or its folder names, or None."""
    if path.parent.name in class_names:
        return path.parent.name
    words = [w for w in re.split(r"[_\-.\s]+", path.stem) if w in class_names]
    return words[0] if len(set(words)) == 1 else None


def _read_audio_folder(folder: Path, source: SourceModel) -> SourceSamples:
    from adapters_modal.audio_io import read_wav

    spec = source.input_spec
    if spec.modality != "audio":
        raise DataError(f"{folder} is a folder of audio files but source {source.name!r} takes {spec.modality}; "
                        "give samples of the source model's own modality")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise DataError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) found under {folder}")
    waveforms = torch.stack([read_wav(f, spec.sample_rate, spec.num_samples) for f in files])
    found = [label_of(f, source.class_names) for f in files]
    names = [str(f.relative_to(folder)) for f in files]
    samples = SourceSamples(f"{len(files)} audio files under {folder}", names, inputs=waveforms)
    if None in found:
        first = names[found.index(None)]
        samples.unlabelled_reason = (f"{found.count(None)} of {len(files)} files have no source-class label "
                                     f"(first: {first}); put each file in a folder named after its word")
    else:
        samples.labels = np.array([source.class_names.index(word) for word in found])
    return samples


def _read_sentences(path: Path, source: SourceModel) -> SourceSamples:
    if source.input_spec.modality != "text":
        raise DataError(f"{path} is a text file of sentences but source {source.name!r} takes "
                        f"{source.input_spec.modality}; sentences are source samples for language models")
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark is not part of the first sentence
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from exc
    sentences = [line.strip() for line in text.splitlines() if line.strip()]
    if not sentences:
        raise DataError(f"{path} holds no sentences; write one sentence per line")
    return SourceSamples(f"{len(sentences)} sentences from {path}", sentences, inputs=sentences,
                         unlabelled_reason="sentences carry no source-class labels")


def _read_representations(path: Path) -> SourceSamples:
    array = read_npy(path).astype(np.float64)
    if array.ndim != 2 or 0 in array.shape:
        raise DataError(f"{path} must hold an (n, d) array of representations, got shape {array.shape}")
    if not np.isfinite(array).all():  # the Wasserstein distances would come out NaN
        raise DataError(f"{path}: {int((~np.isfinite(array)).sum())} values are NaN or infinite; "
                        "remove the rows that hold them")
    return SourceSamples(f"{len(array)} precomputed representations from {path}",
                         [f"{path.name}[{i}]" for i in range(len(array))], representations=array,
                         unlabelled_reason="a .npy file of representations carries no labels")


def read_source_samples(path: str | Path, source: SourceModel) -> SourceSamples:
    path = Path(path)
    if path.is_dir():
        return _read_audio_folder(path, source)
    if not path.is_file():
        raise DataError(f"source samples {path} do not exist; give a folder of audio files, a .txt or a .npy file")
    if path.suffix == ".npy":
        return _read_representations(path)
    if path.suffix == ".txt":
        return _read_sentences(path, source)
    raise DataError(f"source samples {path}: unknown kind {path.suffix!r}; give a folder of audio files, "
                    "a .txt file of sentences or a .npy file of representations")
