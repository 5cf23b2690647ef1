"""Freed memory kept for reuse, on Linux with glibc: reading a frozen source then stops paying the kernel.

    keep_freed_memory()   # once per process; True where it took effect, False where it did not

glibc's malloc maps every block above its mmap threshold (dynamic, at most 32 MiB) afresh from
the kernel and unmaps it when freed, and trims the top of its heap as soon as 128 KiB are free.
A source's batch makes activations of tens to hundreds of MiB (the speech embedding's 512
windows: about 300 MiB a layer), so every batch faults in and zeroes them page by page again:
on `xmodal fit series --dataset GunPoint` (the `best` preset, fit and test prediction) the
kernel's share was 29 of 68 s on a 2-core VM. With both thresholds at 1 GiB those blocks stay in
the main thread's heap for the next batch: with 0.41's other change, 78 -> 42 s, peak memory
2.2 -> 2.8 GB (docs/experiments.md 0.41; where page faults cost less than on that VM, the gain is
smaller). Threads other than the main one allocate from arenas of at most 64 MiB, so their large
blocks are still mapped afresh (`xmodal serve`'s forward passes run in a thread pool).

The source loader (`adapters_modal.load_source`) and the sweep's items call it, so a fit, a
prediction and a baseline timed beside them all run under it. It does nothing, and says False:
- off Linux with glibc (macOS, musl, Windows);
- where the user set glibc's malloc tunables (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_,
  MALLOC_TOP_PAD_, or glibc.malloc in GLIBC_TUNABLES): theirs are kept, which is also the way to
  opt out (MALLOC_TRIM_THRESHOLD_=131072 is glibc's default);
- where this glibc refuses a threshold that large (older releases cap the mmap threshold at
  32 MiB; 2.36 takes 1 GiB).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys

KEPT_BYTES = 1 << 30  # blocks up to this size come from the heap, and this much freed memory stays in it
assert KEPT_BYTES < 1 << 31  # mallopt takes a C int
# mallopt's parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
USER_TUNABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def user_tuned_malloc(environ=os.environ) -> bool:
    """Whether the environment sets glibc's malloc tunables (then they are left as they are)."""
    return any(name in environ for name in USER_TUNABLES) or "glibc.malloc" in environ.get("GLIBC_TUNABLES", "")


@functools.cache
def keep_freed_memory() -> bool:
    if not sys.platform.startswith("linux") or user_tuned_malloc():
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc's own symbol: mallopt's parameters differ elsewhere
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mapped = mallopt(_M_MMAP_THRESHOLD, KEPT_BYTES)  # both asked for: each one helps alone
    trimmed = mallopt(_M_TRIM_THRESHOLD, KEPT_BYTES)
    return bool(mapped) and bool(trimmed)
