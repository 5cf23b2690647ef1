"""xmodal.allocator: on glibc a freed large block stays in the heap for the next batch."""

import ctypes
import subprocess
import sys
import textwrap

import pytest

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
    out = subprocess.run([sys.executable, "-c", _FREED_IN_HEAP, mode], capture_output=True, text=True, check=True)
    kept, mib = out.stdout.split()
    return kept, int(mib)


@glibc
def test_a_freed_large_block_stays_in_the_heap_only_after_the_call():
    kept, mib = freed_mib_in_heap("keep")
    assert kept == "True" and mib >= 256  # kept for the next batch
    assert freed_mib_in_heap("default")[1] < 64  # glibc's default: unmapped when freed


def test_elsewhere_than_linux_it_does_nothing_and_says_so(monkeypatch):
    from xmodal.allocator import keep_freed_memory

    monkeypatch.setattr(sys, "platform", "darwin")
    assert keep_freed_memory.__wrapped__() is False  # the uncached call: mallopt's parameters are glibc's
