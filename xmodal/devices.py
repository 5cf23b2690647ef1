"""Where a reprogrammer runs, and the caller's random state left as it was.

    resolve_device("auto")          # cuda when torch sees a GPU, else cpu
    resolve_precision("auto", dev)  # bfloat16 where dev computes it natively, else None (float32)
    module_device(model)            # where a module's parameters (else buffers) are
    with seeded_global_rng(seed, device): ...   # seeded global torch RNG, the caller's put back

The `device` setting (xmodal.settings) is one of DEVICES. Models are built on the CPU and
moved whole (bridge, frozen source, output map) before fit and predict; data moves batch
by batch or with the model's inputs, and every tensor a forward pass creates is made on its
input's device. A saved run holds CPU tensors (safetensors) and loads on any device.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from xmodal.errors import DeviceError
from xmodal.settings import DEVICES, PRECISIONS


def _no_cuda_reason() -> str:
    if torch.version.cuda is None:
        return f"this torch ({torch.__version__}) is a CPU-only build"
    return f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU (torch.cuda.is_available() is False)"


def resolve_device(name: str | torch.device) -> torch.device:
    """The torch.device of a `device` setting: "auto" is cuda when available, else cpu;
    "cuda" without a GPU is refused in one line that names the fix."""
    text = str(name)
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind = text.split(":", 1)[0]
    if kind not in ("cpu", "cuda"):
        raise DeviceError(f"device must be one of {', '.join(DEVICES)}, got {text!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {text!r} was asked for but {_no_cuda_reason()}; use device 'cpu' or 'auto' "
                          "(CLI: --device cpu), or run on a machine with an NVIDIA GPU and a CUDA build of torch")
    return torch.device(text)


def native_bfloat16(device: torch.device) -> bool:
    """Whether `device` computes bfloat16 in hardware: a GPU that supports it, or a CPU with
    AVX512-BF16 or AMX tiles. Elsewhere torch emulates it, slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    # torch's own checks (private: absent from another torch, they count as no).
    names = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in names)


def resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a `precision` setting on `device`: None for float32 (no autocast),
    torch.bfloat16 for bfloat16, and for auto where the device computes it natively."""
    if name not in PRECISIONS:
        raise DeviceError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    wanted = name == "bfloat16" or (name == "auto" and native_bfloat16(device))
    return torch.bfloat16 if wanted else None


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter, else of its first buffer; cpu when it has neither."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextmanager
def seeded_global_rng(seed: int, device: torch.device | None = None):
    """The global torch RNG (the CPU's and, for a cuda device, that GPU's) seeded with `seed`
    inside the block and restored afterwards. For what can only draw from it (dropout in a
    module's train mode); xmodal's own draws use their own torch.Generator."""
    cuda = device is not None and torch.device(device).type == "cuda"
    index = None
    if cuda:
        index = torch.device(device).index
        index = torch.cuda.current_device() if index is None else index
    with torch.random.fork_rng(devices=[index] if cuda else []):
        torch.default_generator.manual_seed(seed)  # not torch.manual_seed: it would reseed every GPU, forked or not
        if cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield
