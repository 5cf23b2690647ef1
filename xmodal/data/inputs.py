"""Unlabelled inputs for `xmodal predict RUN --input FILE`: one reader per task.

    ids, X = read_inputs("series", "new.tsv", run)
    for ids, X in iter_inputs("series", "new.tsv", run):   # a batch at a time (predict)

`run` is the saved run's record; the readers use
  series    run["series_length"]  (every series must have it)
  table     run["columns"] (the training feature columns, in order), run.get("label_column")
            (dropped when present) and run.get("missing") ("impute" lets empty cells through)
  sequence  nothing.

Formats and rules, by task:

series  -> X: float64 array (n, series_length); ids "1".."n" (the series' order in the file)
  .tsv  tab-separated, one series per line (UCR 2018 layout);
  .csv  comma-separated, one series per line.
        In both, a line of series_length + 1 fields is a labelled UCR row: its first field
        (the label) is dropped; every line must have the same number of fields. The first
        line is a header, and skipped, when a field of it (after a label field) is not a
        number, or when its fields are the integers 0, 1, ..., in order (the column names
        pandas writes by default).
  .ts   sktime / UEA .ts format, labelled (@classLabel true: labels dropped) or not;
        univariate, equal length, no time stamps.
  .npy  a 2-D (n, length) or 3-D (n, 1, length) numeric array (no pickles).
sequence -> X: list of str
  .fa .fasta .faa .fas .fna  FASTA; ids from the headers (the first word).
  .csv  with a header: the `sequence` or `smiles` column (any case), else the only column
        (besides an `id` column); ids from an `id` column, else "1".."n" (row numbers).
table   -> X: pandas DataFrame with run["columns"], in that order (numeric columns as float,
           the others as strings); ids "1".."n" (row numbers)
  .csv  with a header. The label column, if present, and unnamed columns (a saved pandas
        index) are dropped; other extra columns are ignored; missing training columns are
        one error naming them all.

Every problem with the file (missing, empty, unknown extension, ragged rows, NaN, a wrong
series length, missing columns) is one DataError naming the file and the problem.

iter_inputs streams series in .tsv, .csv and .npy files (BATCH_SIZE lines, or a slice of a
memory map, at a time), so scoring 100 000 series takes the memory of one batch; a .ts
file and the sequence and table formats are read whole and handed out in batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from xmodal.errors import DataError
from xmodal.settings import TASKS

SERIES_SUFFIXES = (".tsv", ".csv", ".ts", ".npy")
FASTA_SUFFIXES = (".fa", ".fasta", ".faa", ".fas", ".fna")
SEQUENCE_SUFFIXES = FASTA_SUFFIXES + (".csv",)
TABLE_SUFFIXES = (".csv",)
SEQUENCE_COLUMNS = ("sequence", "smiles")
ID_COLUMN = "id"
BATCH_SIZE = 2048  # records `predict` reads and scores at a time: its memory is bounded by a batch
READ_WHOLE = 2**62  # a batch size no file reaches: read_inputs reads a file in one piece


def read_inputs(task: str, path: str | Path, run: dict) -> tuple[list[str], object]:
    """(ids, X) of the records in `path` for a run of `task` (see the module docstring)."""
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    suffixes = {"series": SERIES_SUFFIXES, "sequence": SEQUENCE_SUFFIXES, "table": TABLE_SUFFIXES}[task]
    path = _checked_file(Path(path).expanduser(), suffixes, task)
    if task == "series":
        return _read_series(path, run)
    if task == "sequence":
        return _read_sequences(path)
    return _read_table(path, run)


def iter_inputs(task: str, path: str | Path, run: dict, batch_size: int = BATCH_SIZE) -> Iterator[tuple[list[str], object]]:
    """read_inputs a batch at a time: (ids, X) of at most batch_size records, ids running on
    across batches. Series in .tsv / .csv / .npy files are streamed (memory bounded by a
    batch); other files are read whole, then cut. A bad record is a DataError when its batch is read."""
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if task == "series":
        yield from _series_batches(_checked_file(Path(path).expanduser(), SERIES_SUFFIXES, task), run, batch_size)
        return
    ids, X = read_inputs(task, path, run)
    for start in range(0, len(ids), batch_size):
        part = X.iloc[start : start + batch_size] if hasattr(X, "iloc") else X[start : start + batch_size]
        yield ids[start : start + batch_size], part


def _checked_file(path: Path, suffixes: tuple[str, ...], task: str) -> Path:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a file (a folder?); give one input file")
    if path.suffix.lower() not in suffixes:
        raise DataError(f"{path}: a {task} input must be a {', '.join(suffixes)} file, "
                        f"not {path.suffix or 'a file without an extension'!r}")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    return path


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark is not data
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from exc


def _row_ids(n: int) -> list[str]:
    return [str(i) for i in range(1, n + 1)]


# --- series -------------------------------------------------------------------------------

def _read_series(path: Path, run: dict) -> tuple[list[str], np.ndarray]:
    [(ids, x)] = list(_series_batches(path, run, READ_WHOLE))
    return ids, np.array(x)  # an array of its own, not a view of a memory-mapped .npy


def _series_batches(path: Path, run: dict, batch_size: int) -> Iterator[tuple[list[str], np.ndarray]]:
    """(ids, series) of at most batch_size series at a time: text files are read a batch of
    lines at a time and .npy files through a memory map; a .ts file is read whole, then cut."""
    length = int(run["series_length"])
    suffix = path.suffix.lower()
    if suffix == ".npy":
        # each batch maps the file afresh: the pages it touched are unmapped with it, so the
        # resident memory is one batch's, not the whole file's
        batches = (_series_npy(path, mmap=True)[i : i + batch_size]
                   for i in range(0, len(_series_npy(path, mmap=True)), batch_size))
    elif suffix == ".ts":
        whole = _series_ts(path)
        batches = (whole[i : i + batch_size] for i in range(0, len(whole), batch_size))
    else:
        batches = _series_text(path, "\t" if suffix == ".tsv" else ",", length, batch_size)
    done = 0
    for x in batches:
        x = _checked_series(path, np.asarray(x, dtype=np.float64), length, done)
        yield [str(i) for i in range(done + 1, done + len(x) + 1)], x
        done += len(x)
    if done == 0:
        raise DataError(f"{path}: holds no series")


def _checked_series(path: Path, x: np.ndarray, length: int, done: int) -> np.ndarray:
    """x, the series after the first `done` of the file, refused for a wrong length or a gap."""
    if x.shape[1] != length:
        raise DataError(f"{path}: the series have length {x.shape[1]}, but the run was trained on length {length}; "
                        "resample them to that length first")
    bad = ~np.isfinite(x)
    if bad.any():
        row = int(bad.any(axis=1).argmax())
        column = int(bad[row].argmax())
        raise DataError(f"{path}: missing or infinite values in series {done + row + 1} ({int(bad[row].sum())} of "
                        f"them, first at position {column + 1}: {x[row, column]}); fill or remove them")
    return x


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_header(fields: list[str]) -> bool:
    if any(f and not _is_number(f) for f in fields):  # an empty field is a missing value, not a name
        return True
    try:
        numbers = [int(f) for f in fields]
    except ValueError:
        return False
    return len(fields) > 1 and numbers == list(range(len(fields)))


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line) of the non-blank lines of a UTF-8 text file, read as they are needed."""
    number = 0
    try:
        with open(path, encoding="utf-8-sig") as stream:  # -sig: a byte-order mark is not data
            for number, line in enumerate(stream, 1):
                if line.strip():
                    yield number, line
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason} after line {number})") from exc


def _series_text(path: Path, separator: str, length: int, batch_size: int) -> Iterator[np.ndarray]:
    """The series of a .tsv / .csv file, batch_size lines at a time (see the module docstring)."""
    name = "tab" if separator == "\t" else "comma"
    width = labelled = first_line = None
    rows: list[tuple[int, list[str]]] = []
    done = 0
    for number, line in _lines(path):
        fields = [field.strip() for field in line.strip().split(separator)]
        if width is None:
            width, first_line = len(fields), number
            if width not in (length, length + 1):
                hint = " (is it comma-separated? a .tsv must be tab-separated)" if width == 1 and separator == "\t" else ""
                raise DataError(f"{path}: line {number} has {width} {name}-separated fields{hint}, but the run takes "
                                f"series of length {length} ({length} values per line, or {length + 1} with a label "
                                "first)")
            labelled = width == length + 1
            if _is_header(fields[1:] if labelled else fields):
                continue
        rows.append((number, fields))
        if len(rows) == batch_size:
            yield _series_values(path, rows, width, first_line, labelled)
            done, rows = done + len(rows), []
    if width is None:
        raise DataError(f"{path}: the file holds no series (only blank lines)")
    if rows:
        yield _series_values(path, rows, width, first_line, labelled)
    elif done == 0:
        raise DataError(f"{path}: the file holds a header line and no series")


def _series_values(path: Path, rows: list[tuple[int, list[str]]], width: int, first_line: int,
                   labelled: bool) -> np.ndarray:
    values = np.empty((len(rows), width - labelled))
    for r, (number, fields) in enumerate(rows):
        if len(fields) != width:
            raise DataError(f"{path}: ragged rows: line {number} has {len(fields)} fields, line {first_line} has "
                            f"{width}; every series must have the same length")
        fields = fields[1:] if labelled else fields
        try:  # numpy parses a line at once; field by field only to name a bad field or fill a gap
            values[r] = np.array(fields, dtype=np.float64)
        except ValueError:
            values[r] = [_field(path, number, c + 1 + labelled, field) for c, field in enumerate(fields)]
    return values


def _field(path: Path, number: int, position: int, field: str) -> float:
    try:
        return float(field) if field else math.nan
    except ValueError:
        raise DataError(f"{path}: line {number}, field {position}: {field!r} is not a number") from None


def _series_npy(path: Path, mmap: bool = False) -> np.ndarray:
    """The series of a .npy file; with `mmap`, a memory-mapped view (read a slice at a time)."""
    from xmodal.data.npy import read_npy

    array = read_npy(path, mmap_mode="r" if mmap else None)
    if array.ndim == 3 and array.shape[1] == 1:
        array = array[:, 0, :]
    elif array.ndim == 3:
        raise DataError(f"{path}: an array of shape {array.shape} holds {array.shape[1]} channels per series; "
                        "the run takes univariate series: (n, length) or (n, 1, length)")
    if array.ndim != 2:
        raise DataError(f"{path}: an array of shape {array.shape}; series must be a 2-D (n, length) "
                        "or 3-D (n, 1, length) array")
    return array if mmap else array.astype(np.float64)


def _series_ts(path: Path) -> np.ndarray:
    """A univariate .ts file (sktime / UEA), with or without class labels."""
    header: dict[str, str] = {}
    rows: list[tuple[int, list[str]]] = []
    in_data = False
    for number, line in enumerate(_text(path).splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if line.lower() == "@data":
                in_data = True
            elif line.startswith("@"):
                key, _, value = line[1:].partition(" ")
                header[key.lower()] = value.strip().lower()
            else:
                raise DataError(f"{path}: line {number} comes before @data and is not a @header; is it a .ts file?")
            continue
        rows.append((number, line.split(":")))
    if not in_data:
        raise DataError(f"{path}: no @data line; is it a .ts file?")
    if header.get("timestamps") == "true":
        raise DataError(f"{path}: series with time stamps are not supported; write the values alone")
    labelled = header.get("classlabel", "false").split(" ")[0] == "true"
    series = []
    for number, parts in rows:
        dimensions = parts[:-1] if labelled else parts
        if len(dimensions) != 1:
            raise DataError(f"{path}: line {number} holds {len(dimensions)} dimensions"
                            f"{' besides its label' if labelled else ''}; the run takes univariate series")
        fields = [f.strip() for f in dimensions[0].split(",")]
        try:
            series.append([math.nan if f in ("?", "", "nan", "NaN") else float(f) for f in fields])
        except ValueError:
            bad = next(f for f in fields if not _is_number(f) and f not in ("?", ""))
            raise DataError(f"{path}: line {number}: {bad!r} is not a number") from None
    if not series:
        raise DataError(f"{path}: holds no series after @data")
    lengths = {len(s) for s in series}
    if len(lengths) > 1:
        first = next(i for i, s in enumerate(series) if len(s) != len(series[0]))
        raise DataError(f"{path}: ragged rows: series lengths vary ({min(lengths)} to {max(lengths)}; line "
                        f"{rows[first][0]} has {len(series[first])}, line {rows[0][0]} has {len(series[0])})")
    return np.array(series, dtype=np.float64)


# --- sequences ----------------------------------------------------------------------------

def _read_sequences(path: Path) -> tuple[list[str], list[str]]:
    if path.suffix.lower() in FASTA_SUFFIXES:
        from xmodal.data.sequences import read_fasta

        return read_fasta(path)  # refuses empty records itself
    table = _read_csv(path, dtype=str, keep_default_na=False)
    by_lower = {str(c).strip().lower(): c for c in table.columns}
    id_column = by_lower.get(ID_COLUMN)
    column = next((by_lower[name] for name in SEQUENCE_COLUMNS if name in by_lower), None)
    if column is None:
        others = [c for c in table.columns if c != id_column]
        if len(others) != 1:
            raise DataError(f"{path}: cannot tell which column holds the sequences (columns {list(table.columns)}); "
                            f"name it {' or '.join(SEQUENCE_COLUMNS)}")
        column = others[0]
    if len(table) == 0:
        raise DataError(f"{path}: a header and no records")
    sequences = [s.strip() for s in table[column].tolist()]
    if empty := [i for i, s in enumerate(sequences) if not s]:
        raise DataError(f"{path}: {len(empty)} empty {column!r} cells (first on line {empty[0] + 2})")
    if id_column is None:
        return _row_ids(len(sequences)), sequences
    ids = [s.strip() for s in table[id_column].tolist()]
    if empty := [i for i, s in enumerate(ids) if not s]:
        raise DataError(f"{path}: {len(empty)} empty {id_column!r} cells (first on line {empty[0] + 2})")
    return ids, sequences


def _read_csv(path: Path, **options):
    import pandas as pd

    try:
        return pd.read_csv(path, **options)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: the file holds no CSV rows") from exc
    # OverflowError: pandas' answer to a 400-digit integer
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OverflowError) as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a readable CSV file ({reason})") from exc


# --- tables -------------------------------------------------------------------------------

def _read_table(path: Path, run: dict):
    from xmodal.data.tables import refuse_infinite, tidy_columns

    frame = _read_csv(path)
    frame.columns = [str(c) for c in frame.columns]
    columns = [str(c) for c in run["columns"]]
    label = run.get("label_column")
    unnamed = [c for c in frame.columns if c.startswith("Unnamed:") and c not in columns]
    frame = frame.drop(columns=unnamed + ([label] if label in frame.columns and label not in columns else []))
    if missing := [c for c in columns if c not in frame.columns]:
        raise DataError(f"{path}: missing the columns {missing} the run was trained on "
                        f"(the file has {list(frame.columns)})")
    if len(frame) == 0:
        raise DataError(f"{path}: a header and no rows")
    frame = frame[columns]
    if run.get("missing", "error") != "impute":
        gaps = frame.isna()
        if gaps.to_numpy().any():
            holes = [c for c in columns if gaps[c].any()]
            first = int(np.flatnonzero(gaps.any(axis=1).to_numpy())[0])
            raise DataError(f"{path}: empty cells (NaN) in columns {holes} (first on line {first + 2}); fill or drop "
                            "them, or train the run with missing='impute' (CLI --impute)")
    refuse_infinite(frame, path)
    return _row_ids(len(frame)), tidy_columns(frame).reset_index(drop=True)
