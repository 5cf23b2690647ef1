"""Atomic file output: every file xmodal writes appears whole or not at all.

A file is written under a unique temporary name in its target folder (the same file
system, so the final rename is atomic), flushed to disk with fsync, given the permissions
a plain open() would have (mkstemp's are owner-only), then moved over the target with
os.replace. A process killed at any moment leaves either the previous file or the new one,
plus at worst a hidden ".NAME.*.tmp" file, never a half-written target.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once: setting and restoring the process umask on every write would race with other threads.
_UMASK = _read_umask()


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def atomic_write(path: str | Path, write: Callable[[str], None] | bytes | str) -> Path:
    """Write `path` atomically. `write` is the content (str or bytes) or a function that
    writes the file it is given the (temporary) name of; the function may close or reopen it.
    The target's folder must exist."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if callable(write):
            os.close(handle)
            write(temporary)
        else:
            with os.fdopen(handle, "wb") as stream:
                stream.write(write.encode() if isinstance(write, str) else write)
        with open(temporary, "rb+") as stream:
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~_UMASK)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path
