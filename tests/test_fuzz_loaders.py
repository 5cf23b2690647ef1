"""Property-based fuzzing (hypothesis) of every loader.

Every loader gets near-valid files (a valid file with a few mutations: truncated or ragged
lines, wrong delimiters, NaN / inf, empty labels, unicode junk, binary bytes, huge numbers,
byte-order marks, CRLF, missing headers, duplicate columns, zero-length files) and random
bytes. The property: a file either loads into a well-formed result or raises one
XmodalError, on one line, naming the file; never another exception, never a numpy warning,
never a hang or a memory blow-up (the inputs are small; an alarm and an address-space cap
turn either into a failure). At least one case in ten must load, so the near-valid files
really reach the loaders' later checks.

The quick profile runs with the suite; `pytest -m slow tests/test_fuzz_loaders.py` runs
10 000 examples per loader (about 5 minutes on 2 cores). Both are derandomized: CI sees the
same examples on every run.
"""

from __future__ import annotations

import io
import math
import random
import re
import signal
import struct
import types
import warnings
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters_modal.base import InputSpec
from xmodal.data.inputs import read_inputs
from xmodal.data.sequences import load_sequence_dataset
from xmodal.data.source_samples import read_source_samples
from xmodal.data.tables import load_table
from xmodal.data.ucr import load_ucr
from xmodal.errors import XmodalError

QUICK_EXAMPLES = 200  # per loader: seven loaders, 1400 examples in all, about 10 s
SLOW_EXAMPLES = 10_000  # per loader
HANG_SECONDS = 20  # far above any small file's load time: reaching it is a hang
MEMORY_BYTES = 2 * 2**30  # a loader reading a file of a few hundred bytes needs far less

_COMMON = {"deadline": None, "derandomize": True, "database": None,
           "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]}
QUICK = settings(max_examples=QUICK_EXAMPLES, **_COMMON)
SLOW = settings(max_examples=SLOW_EXAMPLES, **_COMMON)
FOLDER = "fuzzcase"


@dataclass
class Case:
    """Files to write under FOLDER (relative path -> bytes) and the loader's options."""
    files: dict[str, bytes]
    options: dict = field(default_factory=dict)


@dataclass
class Loader:
    name: str
    cases: st.SearchStrategy  # of Case
    load: Callable  # (folder, case) -> result
    check: Callable  # (result, case) -> None: asserts the result is well formed


# --- mutations shared by every text format ------------------------------------------------------
#
# Hypothesis draws the structure (format, which mutations, a seed); a seeded random.Random fills
# in the bulk (values, positions, junk). One draw per cell would make 10 000 examples take
# an hour; the seed keeps every example reproducible and shrinkable all the same.

JUNK = ["", " ", "nan", "NaN", "NA", "null", "?", "inf", "-inf", "Infinity", "1e309", "-1e999",
        "9" * 40, "1" * 400, "0x1F", "1_000", "1,5", "\u0661\u0662", "\u00bd", "\x00", "\x1b[0m",
        "\u00e9", "\u6c49\u5b57", "\U0001f4a5", "\ufeff", "\u200b", "\x85", "\u2028", "\x0c", '"', '""',
        "'", "a\tb", "a,b", "a:b", "a;b", "@data", "@classLabel", ">", "#", "\\", "true", "-", "+", ".",
        "e5", "--1", "Unnamed: 0", "label", "id", "sequence"]
JUNK_CHARS = "abcAZ019.,;:-+eE\t \"'#@>?\\\x00\x01\x7f\x85\u00e9\u00df\u2028\u200b\ufeff\u6c49\U0001f4a5"
HUGE = ["1e308", "-1.7976931348623157e308", "3.4e38", "1e-320", "9" * 30, "123456789012345678901234567890.5",
        "1e400", "-1e400"]
NONFINITE = ["nan", "NaN", "inf", "-inf", "Infinity", "-Infinity", "?", ""]

seeds = st.integers(0, 2**32 - 1)
CELL_KINDS = ["junk_cell", "empty_cell", "huge", "nonfinite", "short_row", "long_row", "drop_row", "dup_row",
              "blank_row", "no_rows"]
HEADER_KINDS = ["drop_header", "dup_column", "rename_column", "upper_column", "empty_column_name"]
row_mutations = st.lists(st.sampled_from(CELL_KINDS), max_size=3)
table_mutations = st.lists(st.sampled_from(CELL_KINDS + HEADER_KINDS), max_size=3)
line_mutations = st.lists(st.sampled_from(["drop", "dup", "swap", "cut", "junk", "blank"]), max_size=2)
byte_mutations = st.lists(st.sampled_from(["truncate", "insert", "overwrite", "empty"]), max_size=2)
newlines = st.sampled_from(["\n", "\n", "\n", "\r\n", "\r"])
encodings = st.sampled_from(["utf-8"] * 10 + ["utf-8-sig", "utf-16", "latin-1", "cp1252"])
delimiter_swaps = st.sampled_from([None] * 9 + [",", "\t", ";", " ", "|"])  # the wrong delimiter
boms = st.sampled_from([""] * 9 + ["\ufeff"])
second_dimensions = st.sampled_from([False] * 9 + [True])  # a .ts line with two dimensions
fasta_mutations = st.lists(st.sampled_from(["no_gt", "empty_seq", "junk_seq", "junk_header"]), max_size=2)
npy_header_mutations = st.sampled_from(["none"] * 4 + ["shape", "dtype", "order"])
value_mutations = st.sampled_from(["none"] * 3 + ["loud", "nonfinite"])  # in .npy arrays and float WAVs
wav_header_mutations = st.sampled_from(["none"] * 5 + ["format", "channels", "rate", "bits", "data_size"])
random_files = st.one_of(st.binary(max_size=300), st.text(max_size=200).map(lambda t: t.encode("utf-8")))


def rng_number(rng: random.Random) -> str:
    k = rng.random()
    if k < 0.6:
        return f"{rng.uniform(-100, 100):.6g}"
    return str(rng.randint(-1000, 1000)) if k < 0.9 else rng.choice(["0", "-0", "1e-5", ".5", "-3.25E2", "+7"])


def rng_junk(rng: random.Random) -> str:
    if rng.random() < 0.8:
        return rng.choice(JUNK)
    return "".join(rng.choice(JUNK_CHARS) for _ in range(rng.randint(1, 6)))


def mutate_rows(draw, rng, header: list[str] | None, rows: list[list[str]]):
    """(header, rows) after up to three cell, row or header mutations."""
    header = None if header is None else list(header)
    rows = [list(r) for r in rows]
    for kind in draw(row_mutations if header is None else table_mutations):
        r = rng.randrange(len(rows)) if rows else None
        c = rng.randrange(len(rows[r])) if r is not None and rows[r] else None
        if kind in ("junk_cell", "empty_cell", "huge", "nonfinite") and c is not None:
            rows[r][c] = {"junk_cell": rng_junk, "empty_cell": lambda _: "", "huge": lambda g: g.choice(HUGE),
                          "nonfinite": lambda g: g.choice(NONFINITE)}[kind](rng)
        elif kind == "short_row" and c is not None:
            del rows[r][c]
        elif kind == "long_row" and r is not None:
            rows[r].insert(rng.randint(0, len(rows[r])), rng_number(rng) if rng.random() < 0.5 else rng_junk(rng))
        elif kind == "drop_row" and r is not None:
            del rows[r]
        elif kind == "dup_row" and r is not None:
            rows.insert(r, list(rows[r]))
        elif kind == "blank_row":
            rows.insert(rng.randint(0, len(rows)), [])
        elif kind == "no_rows":
            rows = []
        elif kind == "drop_header":
            header = None
        elif header:
            h = rng.randrange(len(header))
            if kind == "dup_column":  # the same name twice, with its values copied
                header.append(header[h])
                rows = [row + [row[h]] if h < len(row) else row for row in rows]
            elif kind == "rename_column":
                header[h] = rng_junk(rng)
            elif kind == "upper_column":
                header[h] = header[h].upper()
            else:
                header[h] = ""
    return header, rows


def mutate_lines(draw, rng, lines: list[str]) -> list[str]:
    """Lines after up to two line mutations (drop, duplicate, swap, cut, junk, blank)."""
    lines = list(lines)
    for kind in draw(line_mutations):
        if not lines:
            break
        i = rng.randrange(len(lines))
        if kind == "drop":
            del lines[i]
        elif kind == "dup":
            lines.insert(i, lines[i])
        elif kind == "swap":
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "cut":
            lines[i] = lines[i][: rng.randint(0, len(lines[i]))]
        elif kind == "junk":
            lines.insert(i, rng_junk(rng))
        else:
            lines.insert(i, rng.choice(["", " ", "\t"]))
    return lines


def mutate_bytes(draw, rng, data: bytes) -> bytes:
    """Bytes after up to two byte mutations: truncation, inserted or overwritten binary, emptied."""
    for kind in draw(byte_mutations):
        if kind == "truncate":
            data = data[: rng.randint(0, len(data))]
        elif kind == "insert":
            at = rng.randint(0, len(data))
            data = data[:at] + rng.randbytes(rng.randint(1, 8)) + data[at:]
        elif kind == "overwrite" and data:
            at = rng.randrange(len(data))
            data = data[:at] + rng.randbytes(1) + data[at + 1:]
        elif kind == "empty":
            data = b""
    return data


def encode(draw, rng, lines: list[str]) -> bytes:
    """Lines as a file: line mutations, line endings, a final newline or not, a BOM, an
    encoding, then byte mutations."""
    newline = draw(newlines)
    text = newline.join(mutate_lines(draw, rng, lines)) + rng.choice([newline, newline, "", newline * 2])
    return mutate_bytes(draw, rng, (draw(boms) + text).encode(draw(encodings), errors="replace"))


def delimited(draw, rng, header: list[str] | None, rows: list[list[str]], sep: str) -> bytes:
    """A near-valid delimited file (CSV / TSV / space-separated) from a valid table."""
    header, rows = mutate_rows(draw, rng, header, rows)
    sep = draw(delimiter_swaps) or sep
    return encode(draw, rng, ([sep.join(header)] if header is not None else []) + [sep.join(row) for row in rows])


CLEAN = {id(row_mutations): [], id(table_mutations): [], id(line_mutations): [], id(byte_mutations): [],
         id(encodings): "utf-8", id(delimiter_swaps): None, id(boms): "", id(second_dimensions): False,
         id(fasta_mutations): [], id(npy_header_mutations): "none", id(value_mutations): "none",
         id(wav_header_mutations): "none"}


def clean(draw):
    """A draw that picks no mutation and UTF-8: the builders then write the valid file itself."""
    return lambda strategy: CLEAN[id(strategy)] if id(strategy) in CLEAN else draw(strategy)


def near_valid_or_random(draw, build) -> bytes:
    """A near-valid file build(draw, rng) most of the time; one in six the valid file itself,
    one in six random bytes or text."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(random_files)
    return build(clean(draw) if kind == 1 else draw, random.Random(draw(seeds)))


def valid(draw, build) -> bytes:
    return build(clean(draw), random.Random(draw(seeds)))


# --- file formats -------------------------------------------------------------------------------

UCR_LABELS = ["1", "2", "-1", "a", "B", "10", "3.5", "1.0"]


def series_rows(rng, labelled: bool, length: int | None = None) -> list[list[str]]:
    length = length or rng.randint(1, 6)
    return [([rng.choice(UCR_LABELS)] if labelled else []) + [rng_number(rng) for _ in range(length)]
            for _ in range(rng.randint(1, 5))]


def ucr_tsv(draw, rng, length: int | None = None) -> bytes:
    return delimited(draw, rng, None, series_rows(rng, labelled=True, length=length), "\t")


def ts_file(draw, rng, labelled: bool = True, length: int | None = None) -> bytes:
    """A .ts file (sktime / UEA) with values and, when labelled, a class label after ':'."""
    rows = series_rows(rng, labelled=False, length=length)
    labels = ["1", "2", "a"]
    header = ["@problemName fuzz", "@timeStamps false", f"@missing {rng.choice(['false', 'true'])}",
              "@univariate true", "@equalLength true", f"@seriesLength {len(rows[0])}",
              f"@classLabel true {' '.join(labels)}" if labelled else "@classLabel false", "@data"]
    if labelled:
        rows = [row + [rng.choice(labels)] for row in rows]
    _, rows = mutate_rows(draw, rng, None, rows)
    data = [(",".join(row[:-1]) + ":" + row[-1]) if labelled and row else ",".join(row) for row in rows]
    if draw(second_dimensions):
        data = [line.replace(",", ":", 1) for line in data]
    return encode(draw, rng, header + data)


AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
FASTA_IDS = ["p1", "p2", "sp|P0C1|X_HUMAN", "seq 7 description", "a"]


def peptide(rng) -> str:
    return "".join(rng.choice(AMINO_ACIDS) for _ in range(rng.randint(1, 16)))


def fasta_file(draw, rng) -> bytes:
    lines = []
    n = rng.randint(1, 4)
    kinds = dict(zip((rng.randrange(n) for _ in range(2)), draw(fasta_mutations), strict=False))
    for i in range(n):
        header, sequence = ">" + rng.choice(FASTA_IDS), peptide(rng)
        kind = kinds.get(i, "wrapped" if rng.random() < 0.2 else "ok")
        if kind == "no_gt":
            header = header[1:]
        elif kind == "junk_header":
            header = ">" + rng_junk(rng)
        elif kind == "junk_seq":
            sequence += rng_junk(rng)
        elif kind == "empty_seq":
            sequence = ""
        if kind == "wrapped":
            lines += [header, sequence[:3], sequence[3:]]
        else:
            lines += [header] + ([sequence] if sequence else [])
    return encode(draw, rng, lines)


SMILES = ["CCO", "c1ccccc1", "CC(=O)O", "[Na+].[Cl-]", "C1CC1N"]


def sequence_csv(draw, rng, with_label: bool = True) -> bytes:
    column = rng.choice(["sequence", "smiles", "Sequence", "SMILES", "peptide"])
    header = ([rng.choice(["id", "ID"])] if rng.random() < 0.5 else []) + [column]
    if with_label:
        header.append(rng.choice(["label", "p_np", "Class"]))
    rows = []
    for i in range(rng.randint(1, 5)):
        row = ([f"r{i}"] if header[0].lower() == "id" else []) + [
            rng.choice(SMILES) if column.lower() == "smiles" else peptide(rng)]
        rows.append(row + ([rng.choice(["0", "1", "yes", "", " 1"])] if with_label else []))
    return delimited(draw, rng, header, rows, ",")


TABLE_COLUMNS = ["age", "amount", "purpose", "flag"]
TABLE_CELLS = {"age": rng_number, "amount": lambda g: g.choice(HUGE) if g.random() < 0.1 else rng_number(g),
               "purpose": lambda g: g.choice(["car", "tv", "A43", "new car", "\u00e9t\u00e9"]),
               "flag": lambda g: g.choice(["0", "1", "yes", "no"])}


def table_csv(draw, rng, columns: list[str], label: str | None) -> bytes:
    index = rng.random() < 0.3  # a saved pandas index: an unnamed first column
    header = ([""] if index else []) + columns + ([label] if label else [])
    rows = []
    for i in range(rng.randint(1, 5)):
        row = ([str(i)] if index else []) + [TABLE_CELLS[c](rng) for c in columns]
        rows.append(row + ([rng.choice(["good", "bad", "1", "2"])] if label else []))
    return delimited(draw, rng, header, rows, ",")


GERMAN_CATEGORIES = ["A11", "A34", "A43", "A65", "A75", "A93", "A101", "A121", "A143", "A152", "A173", "A192", "A201"]
GERMAN_KINDS = "cnccnccnccncnccncncc"  # german.doc: c qualitative, n numerical


def german_data(draw, rng) -> bytes:
    rows = [[rng.choice(GERMAN_CATEGORIES) if k == "c" else str(rng.randint(0, 9999)) for k in GERMAN_KINDS]
            + [rng.choice(["1", "2"])] for _ in range(rng.randint(1, 4))]
    return delimited(draw, rng, None, rows, " ")


NPY_DTYPES = ["<f8", "<f4", "<f2", ">f8", "<i8", "|u1", "|b1", "<c16", "<U3", "<m8[s]", "<M8[D]"]
NPY_DIMS = [0, 1, 2, 3, 5, 150, 10**6, 10**9, 10**12, 2**62, -1]


def random_array(draw, rng, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    values = np.random.default_rng(rng.randrange(2**32)).normal(size=shape)
    mutation = draw(value_mutations)
    if mutation == "loud":
        values *= rng.choice([1e30, 1e300])
    elif mutation == "nonfinite" and values.size:
        values.flat[rng.randrange(values.size)] = rng.choice([math.nan, math.inf, -math.inf])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return values.astype(dtype)


def npy_file(draw, rng, shape: tuple[int, ...] | None = None) -> bytes:
    """A .npy file: an array of a drawn dtype and shape (NaN and inf included), maybe an object
    array (a pickle), then header mutations (shape, dtype, order) and byte mutations."""
    buffer = io.BytesIO()
    if rng.random() < 0.05:
        np.save(buffer, np.array([[1.0, None]], dtype=object))
    else:
        shape = shape or tuple(rng.randint(0, 5) for _ in range(rng.randint(0, 4)))
        np.save(buffer, random_array(draw, rng, rng.choice(NPY_DTYPES), shape))
    data = buffer.getvalue()
    kind = draw(npy_header_mutations)
    if kind == "shape":
        dims = [rng.choice(NPY_DIMS) for _ in range(rng.randint(0, 3))]
        new = "(" + ", ".join(map(str, dims)) + ("," if len(dims) == 1 else "") + ")"
        data = re.sub(rb"'shape': \([^)]*\)", f"'shape': {new}".encode(), data, count=1)
    elif kind == "dtype":
        new = rng.choice(NPY_DTYPES + ["|O", "<V8", "xyz", "", "<f16"])
        data = re.sub(rb"'descr': '[^']*'", f"'descr': '{new}'".encode(), data, count=1)
    elif kind == "order":
        data = data.replace(b"'fortran_order': False", b"'fortran_order': True", 1)
    return mutate_bytes(draw, rng, data)


WAV_FIELDS = {"format": (20, "<H"), "channels": (22, "<H"), "rate": (24, "<I"), "bits": (34, "<H")}


def wav_file(draw, rng) -> bytes:
    """A small WAV (sometimes FLAC) written by soundfile, then header-field and byte mutations:
    the sample rate, channel count, bit depth and data size are the fields a corrupt file gets wrong."""
    import soundfile

    channels, frames = rng.randint(1, 3), rng.randint(0, 300)
    subtype = rng.choice(["PCM_16", "PCM_U8", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
    samples = np.random.default_rng(rng.randrange(2**32)).uniform(-1, 1, (frames, channels))
    mutation = draw(value_mutations) if subtype in ("FLOAT", "DOUBLE") else "none"
    if mutation == "loud":
        samples *= rng.choice([1e30, 3.3e38, 1e300])
    elif mutation == "nonfinite" and frames:
        samples[rng.randrange(frames), 0] = rng.choice([math.nan, math.inf, -math.inf])
    if subtype == "FLOAT":
        samples = np.clip(samples, -3.4e38, 3.4e38).astype(np.float32)
    flac = rng.random() < 0.1
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(np.nan_to_num(samples), -1, 1) if flac else samples,  # FLAC: integers
                    rng.choice([8000, 11025, 16000, 22050, 44100, 48000]),
                    format="FLAC" if flac else "WAV", subtype="PCM_16" if flac else subtype)
    data = bytearray(buffer.getvalue())
    field = draw(wav_header_mutations)
    if not flac and field != "none":
        offset, layout = {**WAV_FIELDS, "data_size": (data.find(b"data") + 4, "<I")}[field]
        limit = 2 ** (8 * struct.calcsize(layout)) - 1
        value = rng.choice([0, 1, 7, 999, 44101, 96001, 1_000_003, 2**32 - 1, rng.randint(0, limit)])
        data[offset: offset + struct.calcsize(layout)] = struct.pack(layout, min(value, limit))
    return mutate_bytes(draw, rng, bytes(data))


# --- the property -------------------------------------------------------------------------------

class Hang(BaseException):
    """A load ran past HANG_SECONDS (BaseException: no loader's `except Exception` swallows it)."""


@contextmanager
def time_limit(seconds: float):
    def alarm(signum, frame):
        raise Hang(f"the loader ran for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def memory_limit(extra: int):
    """The address space capped at the process's present size plus `extra` bytes: a loader that
    asks for gigabytes then fails here (MemoryError) rather than in the OOM killer."""
    try:
        import resource

        size = int(re.search(r"VmSize:\s+(\d+) kB", Path("/proc/self/status").read_text())[1]) * 1024
    except (ImportError, OSError, TypeError):  # not Linux: no cap
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = size + extra if hard == resource.RLIM_INFINITY else min(size + extra, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run_case(loader: Loader, case: Case, folder: Path) -> str:
    """"loaded" (the result passed the loader's check) or "refused" (one XmodalError naming a file)."""
    paths = [folder / name for name in case.files]
    try:
        for path, content in zip(paths, case.files.values()):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        with time_limit(HANG_SECONDS), memory_limit(MEMORY_BYTES), warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # numpy's overflow / invalid value: garbled numbers
            try:
                result = loader.load(folder, case)
            except XmodalError as exc:
                message = str(exc).strip()
                assert any(p.name in message for p in paths) or folder.name in message, f"names no file: {message}"
                assert "\n" not in message, f"the error is not one line: {message!r}"
                return "refused"
        loader.check(result, case)
        return "loaded"
    finally:  # unlinking is fast where removing folders is not (2 ms each on ext4)
        for path in paths:
            path.unlink(missing_ok=True)


def assert_labels(labels: np.ndarray, n: int):
    assert len(labels) == n > 0
    if labels.dtype.kind in "fiu":
        assert np.isfinite(labels.astype(np.float64)).all(), labels
    else:
        assert all(isinstance(v, str) and v.strip() and v.lower() != "nan"
                   or isinstance(v, int) or isinstance(v, float) and math.isfinite(v) for v in labels), labels


def assert_columns(frame: pd.DataFrame):
    """Numeric columns as finite floats (or NaN), the others as strings (or NaN)."""
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values):
            assert values.dtype == np.float64 and not np.isinf(values).any(), (column, values)
        else:
            assert all(isinstance(v, str) or pd.isna(v) for v in values), (column, values)


# UCR: a <Name>_TRAIN / _TEST pair of .tsv or .ts files, with each policy.

@st.composite
def ucr_cases(draw):
    suffix, length = draw(st.sampled_from([".tsv", ".ts"])), draw(st.integers(1, 6))
    fuzzed = draw(st.sampled_from(["TRAIN", "TEST", "both"]))  # the other split stays valid

    def build(draw, rng):
        return ucr_tsv(draw, rng, length) if suffix == ".tsv" else ts_file(draw, rng, length=length)

    files = {f"{FOLDER}_{split}{suffix}": (near_valid_or_random if fuzzed in (split, "both") else valid)(draw, build)
             for split in ("TRAIN", "TEST")}
    return Case(files, {"unequal": draw(st.sampled_from(["error", "resample"])),
                        "missing": draw(st.sampled_from(["error", "interpolate"])),
                        "length": draw(st.sampled_from([None, None, length, length + 1]))})  # a run's length


def check_ucr(data, case):
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        assert x.ndim == 2 and x.dtype == np.float64 and x.shape[1] > 0 and np.isfinite(x).all()
        assert_labels(y, len(x))
    assert data.x_train.shape[1] == data.x_test.shape[1]


# Sequences: a CSV, or a folder of <LABEL>.<SPLIT>.fa files.

FASTA_NAMES = ["AMP.tr.fa", "DECOY.tr.fa", "AMP.te.fasta", "DECOY.eval.fa", "notes.txt"]


@st.composite
def sequence_cases(draw):
    if draw(st.booleans()):
        return Case({"data.csv": near_valid_or_random(draw, sequence_csv)},
                    {"label_column": draw(st.sampled_from([None, None, "label", "Class", "missing"]))})
    names = draw(st.lists(st.sampled_from(FASTA_NAMES), min_size=1, max_size=3, unique=True))
    if draw(st.integers(0, 4)):  # mostly with a training file
        names = ["AMP.tr.fa"] + [name for name in names if name != "AMP.tr.fa"]
    if draw(st.integers(0, 9)) == 0:
        names.append("AMP.xx.fa")  # no such split
    fuzzed = draw(st.sampled_from(names))  # the others stay valid
    return Case({name: (near_valid_or_random if name == fuzzed else valid)(draw, fasta_file) for name in names})


def load_sequences(folder, case):
    if "data.csv" in case.files:
        return load_sequence_dataset(folder / "data.csv", label_column=case.options["label_column"])
    return load_sequence_dataset(folder)


def check_sequences(data, case):
    for records in (data.train, data.validation, data.test):
        if records is None:
            continue
        assert len(records.ids) == len(records.sequences) > 0
        assert all(isinstance(s, str) and s.strip() for s in records.sequences)
        assert_labels(records.labels, len(records))
    assert data.alphabet in ("protein", "dna", "smiles")


# Tables: a CSV with a label column, or UCI german.data.

@st.composite
def table_cases(draw):
    if draw(st.integers(0, 3)) == 0:
        return Case({"german.data": near_valid_or_random(draw, german_data)}, {"label_column": None})
    label = draw(st.sampled_from(["label", "class"]))
    columns = draw(st.lists(st.sampled_from(TABLE_COLUMNS), min_size=1, max_size=4, unique=True))
    return Case({"rows.csv": near_valid_or_random(draw, lambda d, rng: table_csv(d, rng, columns, label))},
                {"label_column": draw(st.sampled_from([label, label, label, "other"]))})


def load_tables(folder, case):
    return load_table(folder / next(iter(case.files)), label_column=case.options["label_column"])


def check_table(data, case):
    assert isinstance(data.features, pd.DataFrame) and data.features.shape[1] > 0
    assert_labels(np.asarray(data.labels.tolist(), dtype=object if data.labels.dtype == object else None),
                  len(data.features))
    assert_columns(data.features)


# Prediction inputs: series (.tsv .csv .ts .npy), sequences (FASTA, CSV), tables (CSV).

@st.composite
def input_series_cases(draw):
    length = draw(st.integers(1, 5))
    suffix = draw(st.sampled_from([".tsv", ".csv", ".ts", ".npy"]))
    labelled, header = draw(st.booleans()), draw(st.integers(0, 3)) == 0

    def build(draw, rng):
        if suffix == ".npy":
            return npy_file(draw, rng, shape=rng.choice([(3, length), (2, 1, length), (2, length + 1)]))
        if suffix == ".ts":
            return ts_file(draw, rng, labelled=labelled, length=length)
        rows = series_rows(rng, labelled=labelled, length=length)
        names = [str(i) for i in range(len(rows[0]))] if header else None  # pandas' default column names
        return delimited(draw, rng, names, rows, "\t" if suffix == ".tsv" else ",")

    return Case({"input" + suffix: near_valid_or_random(draw, build)}, {"series_length": length})


def load_input_series(folder, case):
    return read_inputs("series", folder / next(iter(case.files)), case.options)


def check_input_series(result, case):
    ids, x = result
    assert x.ndim == 2 and x.dtype == np.float64 and x.shape == (len(ids), case.options["series_length"])
    assert len(ids) > 0 and np.isfinite(x).all()


@st.composite
def input_sequence_cases(draw):
    if draw(st.booleans()):
        return Case({draw(st.sampled_from(["input.fa", "input.fasta", "input.faa"])): near_valid_or_random(draw, fasta_file)})
    with_label = draw(st.booleans())
    return Case({"input.csv": near_valid_or_random(draw, lambda d, rng: sequence_csv(d, rng, with_label))})


def load_input_sequences(folder, case):
    return read_inputs("sequence", folder / next(iter(case.files)), {})


def check_input_sequences(result, case):
    ids, sequences = result
    assert len(ids) == len(sequences) > 0
    assert all(isinstance(i, str) for i in ids)
    assert all(isinstance(s, str) and s.strip() for s in sequences)


@st.composite
def input_table_cases(draw):
    trained = draw(st.lists(st.sampled_from(TABLE_COLUMNS), min_size=1, max_size=3, unique=True))
    extra = [c for c in TABLE_COLUMNS if c not in trained][: draw(st.integers(0, 1))]
    in_file = list(draw(st.permutations(trained + extra)))
    label = draw(st.sampled_from([None, "class"]))
    run = {"columns": trained, "label_column": "class", "missing": draw(st.sampled_from(["error", "impute"]))}
    return Case({"input.csv": near_valid_or_random(draw, lambda d, rng: table_csv(d, rng, in_file, label))}, run)


def load_input_table(folder, case):
    return read_inputs("table", folder / "input.csv", case.options)


def check_input_table(result, case):
    ids, frame = result
    assert list(frame.columns) == case.options["columns"] and len(ids) == len(frame) > 0
    if case.options["missing"] != "impute":
        assert not frame.isna().to_numpy().any()
    assert_columns(frame)


# Source samples: a folder of audio files, a .npy of representations, a .txt of sentences.

AUDIO_SOURCE = types.SimpleNamespace(name="fuzz-audio", class_names=["yes", "no"],
                                     input_spec=InputSpec("audio", sample_rate=16000, num_samples=800))
TEXT_SOURCE = types.SimpleNamespace(name="fuzz-text", class_names=["neg", "pos"], input_spec=InputSpec("text"))
AUDIO_NAMES = ["yes/a.wav", "no/b.wav", "yes_c.wav", "d.wav", "e.flac"]


def sentences_file(draw, rng) -> bytes:
    lines = [rng.choice(["the cat sat", "yes", "no idea"]) if rng.random() < 0.6 else rng_junk(rng)
             for _ in range(rng.randint(1, 4))]
    return encode(draw, rng, lines)


@st.composite
def source_sample_cases(draw):
    kind = draw(st.sampled_from(["audio", "audio", "npy", "txt"]))
    source = draw(st.sampled_from(["audio"] * 5 + ["text"] if kind != "txt" else ["text"] * 5 + ["audio"]))
    if kind == "audio":
        names = draw(st.lists(st.sampled_from(AUDIO_NAMES), min_size=1, max_size=2, unique=True))
        fuzzed = draw(st.sampled_from(names))  # the other stays valid
        return Case({name: (near_valid_or_random if name == fuzzed else valid)(draw, wav_file) for name in names},
                    {"source": source})
    if kind == "npy":
        return Case({"points.npy": near_valid_or_random(draw, npy_file)}, {"source": source})
    return Case({"sentences.txt": near_valid_or_random(draw, sentences_file)}, {"source": source})


def load_source_samples(folder, case):
    source = AUDIO_SOURCE if case.options["source"] == "audio" else TEXT_SOURCE
    name = next(iter(case.files))
    return read_source_samples(folder if name.endswith((".wav", ".flac")) else folder / name, source)


def check_source_samples(samples, case):
    n = len(samples.names)
    assert n > 0
    if samples.representations is not None:
        r = samples.representations
        assert r.ndim == 2 and r.shape[0] == n and r.shape[1] > 0 and r.dtype.kind == "f" and np.isfinite(r).all()
    elif isinstance(samples.inputs, torch.Tensor):
        assert samples.inputs.shape == (n, AUDIO_SOURCE.input_spec.num_samples)
        assert torch.isfinite(samples.inputs).all()
    else:
        assert len(samples.inputs) == n and all(isinstance(s, str) and s.strip() for s in samples.inputs)
    if samples.labels is None:
        assert samples.unlabelled_reason
    else:
        assert len(samples.labels) == n


LOADERS = [
    Loader("load_ucr", ucr_cases(), lambda folder, case: load_ucr(str(folder), **case.options), check_ucr),
    Loader("load_sequence_dataset", sequence_cases(), load_sequences, check_sequences),
    Loader("load_table", table_cases(), load_tables, check_table),
    Loader("read_inputs_series", input_series_cases(), load_input_series, check_input_series),
    Loader("read_inputs_sequence", input_sequence_cases(), load_input_sequences, check_input_sequences),
    Loader("read_inputs_table", input_table_cases(), load_input_table, check_input_table),
    Loader("read_source_samples", source_sample_cases(), load_source_samples, check_source_samples),
]


def fuzz(loader: Loader, profile: settings, folder: Path) -> Counter:
    """Outcome counts of `profile.max_examples` cases; at least one in ten must load (else
    the near-valid files are not valid enough to reach the loader's checks)."""
    outcomes: Counter = Counter()
    folder.mkdir()

    @profile
    @given(case=loader.cases)
    def one_case(case):
        outcomes[run_case(loader, case, folder)] += 1

    one_case()
    assert outcomes["loaded"] >= 0.1 * sum(outcomes.values()), outcomes
    return outcomes


@pytest.mark.parametrize("loader", LOADERS, ids=lambda loader: loader.name)
def test_loader_loads_or_names_the_file(loader, tmp_path):
    fuzz(loader, QUICK, tmp_path / FOLDER)


@pytest.mark.slow
@pytest.mark.parametrize("loader", LOADERS, ids=lambda loader: loader.name)
def test_loader_loads_or_names_the_file_slow(loader, tmp_path):
    fuzz(loader, SLOW, tmp_path / FOLDER)
