"""Output maps (omega): from the frozen source's outputs to target-class scores.

- label_mapping: many-to-one maps (random, frequency, ILM-VP)
- bayesian: BLM / BLM+ probabilistic matrices
- linear_head: a trainable linear head, optionally started as a probe
- kernel_head: a fitted RBF-kernel probe (the sequence task's `head` kernel); rbf: the kernel it and its probe share
"""

from __future__ import annotations

from xmodal.errors import XmodalError
from xmodal.maps.base import OutputMap
from xmodal.maps.bayesian import BLM_PLUS_TOP_K, BayesianMapping
from xmodal.maps.kernel_head import KernelHead
from xmodal.maps.label_mapping import ASSIGNMENTS, LabelMapping
from xmodal.maps.linear_head import LinearHead

MAP_KINDS = ("frequency", "random", "linear", "ilm", "blm", "blm+", "kernel")
__all__ = ["MAP_KINDS", "BayesianMapping", "KernelHead", "LabelMapping", "LinearHead", "OutputMap", "build_output_map",
           "output_map_from_settings"]


def build_output_map(kind: str, num_source: int, num_target: int, per_class: int | None = None,
                     seed: int = 0, remap_every: int = 1, laplace: float = 1.0,
                     top_k: int | None = None, clip: bool = False, support: int = 1) -> OutputMap:
    """`remap_every` applies to "ilm", "blm" and "blm+"; `laplace` to "blm" and "blm+";
    `top_k` to "blm+" (default 3); `clip` to "linear"; `support` (the rows its probe holds) to "kernel"."""
    if kind == "linear":
        return LinearHead(num_source, num_target, seed=seed, clip=clip)
    if kind == "kernel":
        return KernelHead(num_source, num_target, support)
    if kind in ASSIGNMENTS:
        return LabelMapping(num_source, num_target, per_class, assignment=kind, seed=seed, remap_every=remap_every)
    if kind in ("blm", "blm+"):
        top_k = 1 if kind == "blm" else (top_k or BLM_PLUS_TOP_K)
        return BayesianMapping(num_source, num_target, laplace=laplace, top_k=top_k, remap_every=remap_every)
    raise XmodalError(f"unknown output map {kind!r}; choose one of {', '.join(MAP_KINDS)}")


# Every key any output map's `settings()` writes: a saved map with another key comes from a
# newer xmodal or a damaged file, and is refused rather than rebuilt without it.
MAP_SETTINGS = ("kind", "num_source", "num_target", "per_class", "remap_every", "laplace", "top_k", "clip",
                "support")


def output_map_from_settings(settings: dict, seed: int = 0) -> OutputMap:
    unknown = sorted(set(settings) - set(MAP_SETTINGS))
    if unknown:
        raise XmodalError(f"unknown output map setting(s) {', '.join(map(repr, unknown))}")
    return build_output_map(settings["kind"], settings["num_source"], settings["num_target"],
                            settings.get("per_class"), seed=seed, remap_every=settings.get("remap_every", 1),
                            laplace=settings.get("laplace", 1.0), top_k=settings.get("top_k"),
                            clip=settings.get("clip", False),  # saved before clip existed: no clipping
                            support=settings.get("support", 1))
