"""Reading a .npy file of numbers; anything else is one DataError naming the file.

np.load trusts the header: a corrupt one that promises a huge shape makes it allocate
terabytes (MemoryError) before it finds the file short. So the promised size is checked
against the file's first, in Python integers (numpy's own check overflows int64).
"""

from __future__ import annotations

import math
import os
import tokenize
import warnings
from pathlib import Path

import numpy as np

from xmodal.errors import DataError

HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def read_npy(path: Path, mmap_mode: str | None = None) -> np.ndarray:
    """The array in a .npy file: real numbers or booleans (no pickles, no complex numbers).
    mmap_mode "r": memory-mapped, read only where it is sliced (large inputs, streamed)."""
    try:
        with warnings.catch_warnings():
            # a corrupt header is parsed as a Python literal, then as one written by Python 2:
            # numpy warns of both before it fails (or succeeds); the DataError says what matters
            warnings.simplefilter("ignore", (DeprecationWarning, SyntaxWarning, UserWarning))
            shape, dtype, available = _header(path)
            array = (None if math.prod(shape) * dtype.itemsize > available
                     else np.load(path, allow_pickle=False, mmap_mode=mmap_mode))
    except (ValueError, OSError, EOFError, tokenize.TokenError) as exc:  # TokenError: a header with an unclosed quote
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a readable .npy array of numbers ({reason})") from exc
    if array is None:
        raise DataError(f"{path}: the header promises a {shape} array of {dtype}, but the file holds only "
                        f"{available} bytes of data; it is truncated or corrupt")
    real = np.issubdtype(array.dtype, np.number) and not np.issubdtype(array.dtype, np.complexfloating)
    if not (real or array.dtype == bool):
        raise DataError(f"{path}: the array holds {array.dtype} values; give an array of real numbers")
    if array.dtype.kind == "f" and array.dtype.itemsize > 8:
        # extended precision (float128), read whole: values beyond float64 and bytes that are no
        # x87 number at all become inf / NaN here, quietly, for the callers' finiteness checks
        with np.errstate(over="ignore", invalid="ignore"):
            array = array.astype(np.float64)
    return array


def _header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, bytes after the header) from a .npy header."""
    with open(path, "rb") as file:
        version = np.lib.format.read_magic(file)
        if version not in HEADER_READERS:  # 3.0 is written only for unicode field names: never numbers
            raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
        shape, _, dtype = HEADER_READERS[version](file)
        if any(n < 0 for n in shape):  # numpy's reader lets them through to an OverflowError
            raise ValueError(f"the header's shape {shape} has a negative dimension")
        return shape, dtype, os.fstat(file.fileno()).st_size - file.tell()
