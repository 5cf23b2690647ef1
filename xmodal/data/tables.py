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


def read_german_credit(path: str | Path) -> TableDataset:
    """german.data (or its folder): 1000 rows, labels 'good' / 'bad'."""
    path = Path(path)
    if path.is_dir():
        path = path / GERMAN_FILE
    try:
        frame = pd.read_csv(path, sep=r"\s+", header=None)
    except FileNotFoundError as exc:
        raise DataError(f"{path} not found; give the german.data file or its folder") from exc
    if frame.shape[1] != len(GERMAN_COLUMNS) + 1:
        raise DataError(f"{path}: expected {len(GERMAN_COLUMNS) + 1} space-separated columns (UCI german.data), "
                        f"found {frame.shape[1]}")
    frame.columns = [name for name, _ in GERMAN_COLUMNS] + ["class"]
    for name, kind in GERMAN_COLUMNS:
        frame[name] = frame[name].astype(float if kind == "numeric" else str)
    labels = frame.pop("class").map(GERMAN_LABELS)
    if labels.isna().any():
        raise DataError(f"{path}: the class column must hold 1 (good) or 2 (bad)")
    return TableDataset("german_credit", frame, labels.to_numpy(dtype=object))


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
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError as exc:
        raise DataError(f"{path} not found; give a CSV file with a header row") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a readable CSV file ({exc})") from exc
    if label_column not in frame.columns:
        raise DataError(f"{path} has no column {label_column!r}; its columns are {list(frame.columns)[:12]}; "
                        "name the label with --label-column")
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed:")]
    frame = frame.drop(columns=unnamed + list(drop_columns or []))
    labels = frame.pop(label_column)
    if labels.isna().any():
        raise DataError(f"{path}: {int(labels.isna().sum())} rows have no label in {label_column!r}; drop them first")
    if frame.shape[1] == 0:
        raise DataError(f"{path}: no feature columns besides the label {label_column!r}")
    return TableDataset(path.stem, tidy_columns(frame), labels.to_numpy())


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
