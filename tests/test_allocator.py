"""xmodal.allocator: on glibc a freed large block stays in the heap for the next batch."""

import ctypes
import os
import subprocess
import sys
import textwrap

import pytest

from xmodal.allocator import USER_TUNABLES, keep_freed_memory, user_tuned_malloc

glibc = pytest.mark.skipif(not sys.platform.startswith("linux") or not hasattr(ctypes.CDLL(None), "mallinfo2"),
                           reason="glibc 2.33 or later (mallinfo2) on Linux")

# A fresh interpreter: the heap's free bytes after a 256 MiB tensor is freed, with or without the call.
_FREED_IN_HEAP = textwrap.dedent("""
    import ctypes, sys
    import torch
    from xmodal.allocator import keep_freed_memory

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                     "keepcost")]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    kept = keep_freed_memory() if sys.argv[1] == "keep" else None
    block = torch.ones(64 << 20)  # 256 MiB
    del block
    print(kept, libc.mallinfo2().fordblks >> 20)
""")


def freed_mib_in_heap(mode: str) -> tuple[str, int]:
    # glibc's own defaults: none of the caller's malloc tunables, and no other allocator preloaded
    env = {k: v for k, v in os.environ.items() if k not in (*USER_TUNABLES, "GLIBC_TUNABLES", "LD_PRELOAD")}
    out = subprocess.run([sys.executable, "-c", _FREED_IN_HEAP, mode], capture_output=True, text=True, check=True,
                         env=env)
    kept, mib = out.stdout.split()
    return kept, int(mib)


@glibc
def test_a_freed_large_block_stays_in_the_heap_only_after_the_call():
    kept, mib = freed_mib_in_heap("keep")
    if kept == "False":
        pytest.skip("this glibc refuses a 1 GiB mmap threshold (older releases cap it at 32 MiB)")
    assert mib >= 192  # the 256 MiB block, kept for the next batch
    assert freed_mib_in_heap("default")[1] < 64  # glibc's default: unmapped when freed


def test_elsewhere_than_linux_it_does_nothing_and_says_so(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert keep_freed_memory.__wrapped__() is False  # the uncached call: mallopt's parameters are glibc's


def test_the_user_s_own_malloc_tunables_are_left_alone(monkeypatch):
    assert not user_tuned_malloc({"PATH": "/usr/bin"})
    assert user_tuned_malloc({"MALLOC_TRIM_THRESHOLD_": "131072"})
    assert user_tuned_malloc({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"})
    assert not user_tuned_malloc({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2"})
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert keep_freed_memory.__wrapped__() is False
