"""Reading a .npy file of numbers; anything else is one DataError naming the file.

np.load trusts the header: a corrupt one that promises a huge shape makes it allocate
terabytes (MemoryError) before it finds the file short. So the promised size is checked
against the file's first, in Python integers (numpy's own check overflows int64).
"""

from __future__ import annotations

import math
import os
import tokenize
from pathlib import Path

import numpy as np

from xmodal.errors import DataError

HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def read_npy(path: Path, mmap_mode: str | None = None) -> np.ndarray:
    """The array in a .npy file: real numbers or booleans (no pickles, no complex numbers).
    mmap_mode "r": memory-mapped, read only where it is sliced (large inputs, streamed)."""
    try:
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
    return array


def _header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, bytes after the header) from a .npy header."""
    with open(path, "rb") as file:
        version = np.lib.format.read_magic(file)
        if version not in HEADER_READERS:  # 3.0 is written only for unicode field names: never numbers
            raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
        shape, _, dtype = HEADER_READERS[version](file)
        return shape, dtype, os.fstat(file.fileno()).st_size - file.tell()
