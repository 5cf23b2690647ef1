"""Tabular datasets: a CSV with a header, or the UCI German credit files.

A table is returned as a pandas DataFrame of feature columns (numeric columns
as floats with NaN for empty cells, everything else as strings) plus a label
array; the table bridge's encoder decides how each column becomes numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from xmodal.errors import DataError

# UCI Statlog German credit, german.data: 20 attributes then the class, space
# separated, no header. Names and kinds from german.doc (7 numerical, 13 qualitative).
GERMAN_COLUMNS = [
    ("checking_status", "categorical"), ("duration_months", "numeric"), ("credit_history", "categorical"),
    ("purpose", "categorical"), ("credit_amount", "numeric"), ("savings", "categorical"),
    ("employment_since", "categorical"), ("installment_rate", "numeric"), ("personal_status_sex", "categorical"),
    ("other_debtors", "categorical"), ("residence_since", "numeric"), ("property", "categorical"),
    ("age_years", "numeric"), ("other_installment_plans", "categorical"), ("housing", "categorical"),
    ("existing_credits", "numeric"), ("job", "categorical"), ("people_liable", "numeric"),
    ("telephone", "categorical"), ("foreign_worker", "categorical"),
]
GERMAN_LABELS = {1: "good", 2: "bad"}
GERMAN_FILE = "german.data"


@dataclass
class TableDataset:
    name: str
    features: pd.DataFrame
    labels: np.ndarray

    @property
    def classes(self) -> list:
        return sorted(set(self.labels.tolist()), key=str)

    def rows(self, indices: np.ndarray) -> "TableDataset":
        return TableDataset(self.name, self.features.iloc[indices].reset_index(drop=True), self.labels[indices])


def _read_csv(path: Path, missing_hint: str, **options) -> pd.DataFrame:
    """pd.read_csv, with each of its failures as one DataError line naming the file."""
    try:
        return pd.read_csv(path, **options)
    except FileNotFoundError as exc:
        raise DataError(f"{path} not found; {missing_hint}") from exc
    except pd.errors.EmptyDataError as exc:  # pandas says "No columns to parse from file"
        raise DataError(f"{path} is empty (or only blank lines); {missing_hint}") from exc
    # OverflowError: pandas' answer to a 400-digit integer
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OverflowError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__  # pandas' messages span lines
        raise DataError(f"{path} is not a readable CSV file ({reason})") from exc


def read_german_credit(path: str | Path) -> TableDataset:
    """german.data (or its folder): 1000 rows, labels 'good' / 'bad'."""
    path = Path(path)
    if path.is_dir():
        path = path / GERMAN_FILE
    frame = _read_csv(path, "give the german.data file or its folder", sep=r"\s+", header=None, dtype=str)
    if frame.shape[1] != len(GERMAN_COLUMNS) + 1 or frame.isna().to_numpy().any():
        short = np.flatnonzero(frame.isna().any(axis=1).to_numpy())
        where = f"line {short[0] + 1} has fewer fields" if len(short) else f"found {frame.shape[1]}"
        raise DataError(f"{path}: expected {len(GERMAN_COLUMNS) + 1} space-separated columns (UCI german.data); "
                        f"{where}")
    frame.columns = [name for name, _ in GERMAN_COLUMNS] + ["class"]
    for name, kind in GERMAN_COLUMNS:
        if kind == "numeric":
            frame[name] = _german_numbers(frame[name], name, path)
    frame["class"] = pd.to_numeric(frame["class"], errors="coerce")
    labels = frame.pop("class").map(GERMAN_LABELS)
    if labels.isna().any():
        raise DataError(f"{path}: the class column must hold 1 (good) or 2 (bad)")
    return TableDataset("german_credit", frame, labels.to_numpy(dtype=object))


def _german_numbers(values: pd.Series, name: str, path: Path) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    bad = np.flatnonzero(~np.isfinite(numbers.to_numpy(dtype=float)))
    if len(bad):
        raise DataError(f"{path}: line {bad[0] + 1}: {name} must be a number, got {values.iloc[bad[0]]!r}")
    return numbers.astype(float)


def refuse_infinite(frame: pd.DataFrame, path: Path) -> None:
    """A number beyond the float range (1e400) reads as inf, which the encoder cannot scale:
    refuse it here, where the file and line are known."""
    numeric = frame.select_dtypes("number")
    rows = np.flatnonzero(np.isinf(numeric.to_numpy(dtype=float)).any(axis=1)) if numeric.shape[1] else []
    if len(rows):
        columns = [c for c in numeric.columns if np.isinf(numeric[c].to_numpy(dtype=float)).any()]
        raise DataError(f"{path}: infinite values in columns {columns} (first on line {rows[0] + 2}); "
                        "replace them with finite numbers")


def tidy_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric-looking columns as float, the rest as strings (NaN stays NaN)."""
    frame = frame.copy()
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].map(lambda v: v if pd.isna(v) else str(v)).astype(object)
        else:
            frame[column] = frame[column].astype(float)
    return frame


def read_csv_table(path: str | Path, label_column: str, drop_columns: list[str] | None = None) -> TableDataset:
    """A comma-separated file with a header row. Unnamed columns (a saved pandas
    index) are dropped, as are `drop_columns`."""
    path = Path(path)
    frame = _read_csv(path, "give a CSV file with a header row")
    if len(frame) == 0:
        raise DataError(f"{path}: a header and no rows")
    if label_column not in frame.columns:
        raise DataError(f"{path} has no column {label_column!r}; its columns are {list(frame.columns)[:12]}; "
                        "name the label with --label-column")
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed:")]
    frame = frame.drop(columns=unnamed + list(drop_columns or []))
    labels = frame.pop(label_column)
    _refuse_bad_labels(labels, label_column, path)
    if frame.shape[1] == 0:
        raise DataError(f"{path}: no feature columns besides the label {label_column!r}")
    refuse_infinite(frame, path)
    return TableDataset(path.stem, tidy_columns(frame), labels.to_numpy())


def _refuse_bad_labels(labels: pd.Series, label_column: str, path: Path) -> None:
    """Missing labels (empty, NaN or blank cells) and infinite ones (1e400) are no class."""
    missing = (labels.isna() | labels.map(lambda v: isinstance(v, str) and not v.strip())).to_numpy(dtype=bool)
    if missing.any():
        raise DataError(f"{path}: {int(missing.sum())} rows have no label in {label_column!r} (first on line "
                        f"{np.flatnonzero(missing)[0] + 2}); drop them first")
    if pd.api.types.is_float_dtype(labels) and np.isinf(labels.to_numpy()).any():
        raise DataError(f"{path}: infinite labels in {label_column!r} (first on line "
                        f"{np.flatnonzero(np.isinf(labels.to_numpy()))[0] + 2}); labels must be classes")


def load_table(path: str | Path, label_column: str | None = None) -> TableDataset:
    """German credit (a german.data file or its folder) or a CSV with `label_column`."""
    path = Path(path)
    if path.name == GERMAN_FILE or (path.is_dir() and (path / GERMAN_FILE).is_file()):
        return read_german_credit(path)
    if path.is_dir():
        raise DataError(f"{path} is a folder without german.data; give a CSV file")
    if label_column is None:
        raise DataError(f"{path}: name the label column with --label-column")
    return read_csv_table(path, label_column)


def split_table(data: TableDataset, test_size: float, seed: int) -> tuple[TableDataset, TableDataset]:
    """(train, test): stratified and seeded."""
    if not 0 < test_size < 1:
        raise DataError(f"the test size must be in (0, 1), got {test_size}")
    counts = {c: int((data.labels == c).sum()) for c in data.classes}
    if len(counts) < 2:
        raise DataError(f"{data.name}: the labels hold a single class; a classifier needs at least 2")
    if min(counts.values()) < 2:
        raise DataError(f"{data.name}: class counts {counts}; every class needs at least 2 rows for a stratified split")
    train, test = train_test_split(np.arange(len(data.labels)), test_size=test_size,
                                   stratify=data.labels.astype(str), random_state=seed)
    return data.rows(np.sort(train)), data.rows(np.sort(test))
