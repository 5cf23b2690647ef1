"""UCR time-series classification data: by name, from a UCR-2018 folder, or from .ts files.

Where a dataset is looked for, first hit wins:
  1. NAME_OR_PATH is a path: a folder holding <Name>_TRAIN/_TEST (.tsv or .ts),
     or one of those files itself;
  2. `data_dir/<Name>/` in UCR 2018 layout (`<Name>_TRAIN.tsv`, `<Name>_TEST.tsv`);
  3. the datasets bundled with sktime (GunPoint, ItalyPowerDemand, ArrowHead, OSULeaf, ...).

Labels are encoded by their sorted unique values (numerically when they are
all numbers), so ECG200's -1/1 stay two classes and "10" sorts after "9".
Variable-length series and missing values are errors unless the caller picks
a policy (resample to the longest length / interpolate interior gaps).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xmodal.errors import DataError

UNEQUAL_POLICIES = ("error", "resample")
MISSING_POLICIES = ("error", "interpolate")


@dataclass
class SeriesDataset:
    name: str
    x_train: np.ndarray  # (n_train, length) float64
    y_train: np.ndarray  # original label values
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # where it was read from
    train_file: str = ""  # the split files, for error lines that name them
    test_file: str = ""

    @property
    def classes(self) -> list:
        return sorted(set(self.y_train.tolist()))


def sktime_data_dir() -> Path:
    import sktime.datasets

    return Path(sktime.datasets.__file__).parent / "data"


def bundled_names() -> list[str]:
    """UCR/UEA sets shipped with sktime (those with a _TRAIN.ts); some are multivariate,
    which load_ucr refuses with a clear error."""
    return sorted(p.parent.name for p in sktime_data_dir().glob("*/*_TRAIN.ts") if p.parent.name != "UnitTest")


def folder_names(data_dir: str | Path) -> list[str]:
    return sorted({p.parent.name for p in Path(data_dir).glob("*/*_TRAIN.ts*")})


MISSING_LABELS = ("", "nan", "?")  # an empty cell, a NaN written out, the .ts format's missing value


def is_missing_label(value) -> bool:
    return value is None or str(value).strip().lower() in MISSING_LABELS  # str(NaN) is "nan"


def parse_labels(raw: list) -> np.ndarray:
    """Numbers when every label is a finite number (ints when integral and exact in a float),
    else strings: "inf" or "1e400" stay text rather than become garbage integers."""
    text = [str(v).strip() for v in raw]
    try:
        numbers = np.array([float(v) for v in text])
    except ValueError:
        return np.array(text, dtype=object)
    if not np.isfinite(numbers).all():
        return np.array(text, dtype=object)
    if np.all(numbers == np.round(numbers)) and np.all(np.abs(numbers) <= 2**53):
        return numbers.astype(np.int64)
    return numbers


def _refuse_missing_labels(labels: list, path: Path) -> None:
    if missing := [i for i, label in enumerate(labels) if is_missing_label(label)]:
        raise DataError(f"{path}: {len(missing)} series have no class label (first: series {missing[0]}); "
                        "label them or remove them")


def _read_tsv(path: Path) -> tuple[list[np.ndarray], list]:
    import pandas as pd

    try:
        table = pd.read_csv(path, sep="\t", header=None, dtype=str, keep_default_na=True)
    except pd.errors.EmptyDataError as exc:  # pandas says "No columns to parse from file"
        raise DataError(f"{path} is empty (or only blank lines); it should hold one labelled series a line") from exc
    except Exception as exc:  # pandas raises several parser error types
        reason = " ".join(str(exc).split())  # pandas' messages end in (or span) new lines
        raise DataError(f"cannot read {path} as a UCR tab-separated file: {reason}") from exc
    labels = table.iloc[:, 0].tolist()
    _refuse_missing_labels(labels, path)
    values = table.iloc[:, 1:].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    series = []
    for row in values:  # UCR 2018 pads shorter series with trailing NaN
        finite = np.flatnonzero(~np.isnan(row))
        series.append(row[: finite[-1] + 1] if finite.size else row[:0])
    return series, labels


def _read_ts(path: Path) -> tuple[list[np.ndarray], list]:
    from sktime.datasets import load_from_tsfile

    try:
        frame, labels = load_from_tsfile(str(path), return_data_type="nested_univ")
    except Exception as exc:  # sktime raises bare Exceptions / IOError for format problems
        raise DataError(f"cannot read {path} as a .ts file: {exc}") from exc
    if frame.shape[1] != 1:
        raise DataError(
            f"{path} holds multivariate series ({frame.shape[1]} channels); Voice2Series reprograms "
            "univariate series: select one channel first"
        )
    series = [np.asarray(cell, dtype=np.float64) for cell in frame.iloc[:, 0]]
    _refuse_missing_labels(list(labels), path)
    return series, list(labels)


def read_split(path: Path) -> tuple[list[np.ndarray], list]:
    """(series, labels as written) of one split file, .ts or UCR .tsv; a DataError where it cannot be read."""
    return _read_ts(path) if path.suffix == ".ts" else _read_tsv(path)


def _fill_gaps(series: np.ndarray) -> np.ndarray:
    finite = ~np.isnan(series)
    positions = np.arange(len(series))
    return np.interp(positions, positions[finite], series[finite])


def _to_matrix(series: list[np.ndarray], where: str, unequal: str, missing: str, length: int | None) -> np.ndarray:
    if unequal not in UNEQUAL_POLICIES:
        raise DataError(f"unequal must be one of {UNEQUAL_POLICIES}, got {unequal!r}")
    if missing not in MISSING_POLICIES:
        raise DataError(f"missing must be one of {MISSING_POLICIES}, got {missing!r}")
    for i, s in enumerate(series):
        if s.size == 0 or np.isnan(s).all():
            raise DataError(f"{where}: series {i} is empty; remove it")
        if np.isinf(s).any():
            raise DataError(f"{where}: series {i} contains infinite values; remove or clip them")
    gappy = [i for i, s in enumerate(series) if np.isnan(s).any()]
    if gappy:
        if missing == "error":
            raise DataError(
                f"{where}: {len(gappy)} series have missing values (first: series {gappy[0]}); "
                "pass missing='interpolate' (CLI: --impute) to fill them by linear interpolation"
            )
        series = [_fill_gaps(s) for s in series]
    lengths = {len(s) for s in series}
    if len(lengths) > 1 or (length is not None and lengths != {length}):
        if unequal == "error":
            found = (f"series lengths vary ({min(lengths)} to {max(lengths)})" if len(lengths) > 1
                     else f"series have length {min(lengths)}")
            trained = "" if length is None else f" but the run was trained on length {length}"
            raise DataError(
                f"{where}: {found}{trained}; pass unequal='resample' (CLI: --resample) to resample every "
                "series linearly to the training length"
            )
        target = length or max(lengths)
        series = [np.interp(np.linspace(0, len(s) - 1, target), np.arange(len(s)), s) for s in series]
    return np.stack(series)


def _split_files(name_or_path: str, data_dir: str | Path | None) -> tuple[str, Path, Path]:
    """(name, train file, test file) following the documented search order."""
    looked = []
    path = Path(name_or_path).expanduser()
    candidates: list[tuple[str, Path]] = []
    if path.is_file():
        stem = path.name.rsplit("_TRAIN", 1)[0].rsplit("_TEST", 1)[0]
        candidates.append((stem, path.parent))
    elif path.is_dir():
        candidates.append((path.name, path))
    else:
        if data_dir is not None:
            candidates.append((name_or_path, Path(data_dir).expanduser() / name_or_path))
        candidates.append((name_or_path, sktime_data_dir() / name_or_path))
    for name, folder in candidates:
        for suffix in (".tsv", ".ts"):
            train, test = folder / f"{name}_TRAIN{suffix}", folder / f"{name}_TEST{suffix}"
            if train.is_file() and test.is_file():
                return name, train, test
        looked.append(str(folder))
    known = bundled_names()
    hint = f"known here: {', '.join(known)} (bundled with sktime)"
    if data_dir is not None and Path(data_dir).is_dir():
        known = known + folder_names(data_dir)
        hint += f"; {', '.join(folder_names(data_dir))} (in {data_dir})"
    close = close_names(path.name, known)
    suggestion = f"; did you mean {' or '.join(repr(n) for n in close)}?" if close else ""
    raise DataError(
        f"dataset {name_or_path!r} not found{suggestion} Looked for <Name>_TRAIN/_TEST .tsv or .ts in "
        f"{'; '.join(looked)}. Give a UCR-layout folder or a name; {hint}"
    )


def close_names(name: str, known: list[str], n: int = 3) -> list[str]:
    """The known dataset names closest to a mistyped one (case-insensitive)."""
    by_lower = {}
    for candidate in known:
        by_lower.setdefault(candidate.lower(), candidate)
    return [by_lower[m] for m in difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.6)]


def load_ucr(name_or_path: str, data_dir: str | Path | None = None, unequal: str = "error",
             missing: str = "error", length: int | None = None) -> SeriesDataset:
    """Train and test splits of a univariate UCR dataset as float arrays.

    length: the series length every split must have (a saved model's training
    length); by default the training split's own.
    """
    name, train_file, test_file = _split_files(str(name_or_path), data_dir)
    train_series, train_labels = read_split(train_file)
    test_series, test_labels = read_split(test_file)
    x_train = _to_matrix(train_series, str(train_file), unequal, missing, length)
    x_test = _to_matrix(test_series, str(test_file), unequal, missing, x_train.shape[1])
    return SeriesDataset(
        name=name,
        x_train=x_train,
        y_train=parse_labels(train_labels),
        x_test=x_test,
        y_test=parse_labels(test_labels),
        source=str(train_file.parent),
        train_file=str(train_file),
        test_file=str(test_file),
    )
