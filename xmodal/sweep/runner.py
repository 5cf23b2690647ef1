"""Running a sweep's work items on Ray: an embedded local Ray, or a cluster's address.

    outcome = run_sweep(config, Path("runs/sweeps/demo"))            # local Ray, one CPU per item
    run_sweep(config, out, address="auto", gpus_per_item=1)         # an existing cluster

Each item runs as one Ray task (xmodal.sweep.item.run_item: `xmodal fit` in the worker)
and writes its run folder under OUT/items/. The driver appends the item's results line to
the results file (OUT/results.jsonl unless given) as soon as it finishes: that file is
what the tables are built from, and what makes a sweep resumable; an item already in it
is skipped, so an interrupted sweep run again picks up where it stopped. A failing item
is retried once by Ray (`retry_exceptions`); if it fails again its error line goes to
OUT/failures.jsonl and the others go on (run the sweep again to retry it).

On a cluster every node needs xmodal installed and the data at the same paths, and OUT
should be on storage every node shares (items are written where they run); the driver's
XMODAL_* and HF_HUB_* variables travel with the tasks (weights folder, offline mode).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from xmodal.errors import DataError, XmodalError
from xmodal.ray_session import ray_session
from xmodal.sweep.config import SweepConfig
from xmodal.sweep.item import Item, result_key

RETRIES = 1  # a failing item runs at most twice per sweep


@dataclass
class SweepOutcome:
    finished: list[dict] = field(default_factory=list)  # results lines of the items run now
    failed: list[dict] = field(default_factory=list)  # {dataset, method, seed, error}
    skipped: int = 0  # items already in the results file
    seconds: float = 0.0


def read_results(path: Path) -> list[dict]:
    """The results lines; a torn last line (the driver killed while appending) is left out."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # only the last line can be torn: the next run rewrites that item
    return records


def append_line(path: Path, document: dict) -> None:
    """One JSON line, flushed; after a torn last line it starts a line of its own."""
    with open(path, "ab+") as handle:
        torn = handle.seek(0, os.SEEK_END) > 0 and handle.seek(-1, os.SEEK_END) >= 0 and handle.read(1) != b"\n"
        handle.write((b"\n" if torn else b"") + json.dumps(document).encode() + b"\n")
        handle.flush()
        os.fsync(handle.fileno())


def _execute(item: Item, out: str) -> dict:
    """A Ray task: one item, in a worker with as many torch threads as CPUs it was given."""
    import torch

    from xmodal.sweep.item import run_item

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    folder = Path(out) / "items" / item.folder_name
    return run_item(item, folder, Path(out) / "logs" / f"{item.folder_name}.log")


def _error_line(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc  # a RayTaskError carries the item's own exception
    text = " ".join(str(cause).split())[:500]
    return text if isinstance(cause, XmodalError) and text else f"{type(cause).__name__}: {text}"


def _check_resources(ray, cpus_per_item: float, gpus_per_item: float) -> None:
    """An item asking for more than any node has would wait forever: refused at once."""
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    if not any(n.get("CPU", 0) >= cpus_per_item and n.get("GPU", 0) >= gpus_per_item for n in nodes):
        largest = max(nodes, key=lambda n: (n.get("GPU", 0), n.get("CPU", 0)), default={})
        raise DataError(f"no Ray node has {cpus_per_item:g} CPUs and {gpus_per_item:g} GPUs for an item (the largest "
                        f"has {largest.get('CPU', 0):g} and {largest.get('GPU', 0):g}); lower --cpus-per-item / "
                        "--gpus-per-item, or raise --workers")


def run_sweep(config: SweepConfig, out: Path, results: Path | None = None, *, address: str | None = None,
              workers: int | None = None, cpus_per_item: float = 1, gpus_per_item: float = 0,
              progress: bool = True) -> SweepOutcome:
    """Run every item of `config` not yet in `results` (default OUT/results.jsonl)."""
    out = Path(out).expanduser().resolve()
    results = Path(results) if results is not None else out / "results.jsonl"
    out.mkdir(parents=True, exist_ok=True)
    results.parent.mkdir(parents=True, exist_ok=True)
    done = {result_key(r) for r in read_results(results)}
    every = config.items()
    items = [item for item in every if item.key not in done]
    outcome = SweepOutcome(skipped=len(every) - len(items))
    if not items:
        return outcome
    start = time.perf_counter()
    with ray_session(address, workers) as ray:
        _run(ray, items, out, results, cpus_per_item, gpus_per_item, progress, config.name, outcome)
    outcome.seconds = time.perf_counter() - start
    return outcome


def _run(ray, items: list[Item], out: Path, results: Path, cpus_per_item: float, gpus_per_item: float,
         progress: bool, name: str, outcome: SweepOutcome) -> None:
    from tqdm import tqdm

    _check_resources(ray, cpus_per_item, gpus_per_item)
    # Ray leaves CUDA_VISIBLE_DEVICES alone for a task that reserved no GPU: hide them, or every
    # such item would run on GPU 0 (device "auto") beside the items that reserved it.
    hidden = {} if gpus_per_item else {"runtime_env": {"env_vars": {"CUDA_VISIBLE_DEVICES": ""}}}
    task = ray.remote(_execute).options(num_cpus=cpus_per_item, num_gpus=gpus_per_item, max_retries=RETRIES,
                                        retry_exceptions=True, **hidden)
    pending = {task.remote(item, str(out)): item for item in items}  # submitted largest first
    with tqdm(total=len(items), desc=f"sweep {name}", unit="item", disable=not progress) as bar:
        while pending:
            # A timeout hands control back to Python every second, so that Ctrl-C stops the
            # sweep at once instead of after the next item (a blocking ray.wait holds it).
            finished, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            if not finished:
                continue
            item = pending.pop(finished[0])
            label = f"{item.dataset} {item.method} seed {item.seed}"
            try:
                line = ray.get(finished[0])
            except Exception as exc:  # noqa: BLE001  (an item's failure is recorded; the others go on)
                failure = {"dataset": item.dataset, "method": item.method, "seed": item.seed,
                           "settings": item.settings, "error": _error_line(exc), "attempts": RETRIES + 1,
                           "log": str(out / "logs" / f"{item.folder_name}.log"), "time": time.time()}
                append_line(out / "failures.jsonl", failure)
                outcome.failed.append(failure)
                bar.write(f"{label}: FAILED twice: {failure['error']}")
            else:
                append_line(results, line)
                outcome.finished.append(line)
                bar.write(f"{label}: test accuracy {line['accuracy']:.4f}, fit {line['fit_seconds']:.1f} s")
            bar.update()
