"""Freed memory kept for reuse, on Linux with glibc: reading a frozen source then stops paying the kernel.

    keep_freed_memory()   # once per process; True where it took effect (glibc), False elsewhere

glibc's malloc maps every block above its mmap threshold (dynamic, at most 32 MiB) afresh from
the kernel and unmaps it when freed, and trims the top of its heap as soon as 128 KiB are free.
A source's batch makes activations of tens to hundreds of MiB (the speech embedding's 512
windows: about 300 MiB a layer), so every batch faults in and zeroes them page by page again:
on `xmodal fit series --dataset GunPoint` (the `best` preset, fit and test prediction) the
kernel's share was 29 of 68 s on a 2-core VM. With both thresholds at 1 GiB those blocks stay in
the heap for the next batch: 68 -> 42 s, peak memory 2.1 -> 2.8 GB (docs/experiments.md 0.41;
where page faults cost less than on that VM, the gain is smaller). The source
loader (`adapters_modal.load_source`) and the sweep's items call it, so a fit, a prediction and a
baseline timed beside them all run under it; elsewhere (macOS, musl, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import functools
import sys

KEPT_BYTES = 1 << 30  # blocks up to this size come from the heap, and this much freed memory stays in it
# mallopt's parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


@functools.cache
def keep_freed_memory() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc's own symbol: mallopt's parameters differ elsewhere
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, KEPT_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, KEPT_BYTES))
