"""Cost of every registered audio and image source on this machine: forward and
forward + backward throughput and peak memory.

    OMP_NUM_THREADS=1 python benchmarks/bench_sources.py [--sources crepe-tiny,efficientnet-lite0] [--batch 8]

Per source, in a fresh child process (so that its peak RSS, `ru_maxrss`, is its own): load
it (timed, imports included), build a random batch from its own input spec (audio: noise of
`num_samples` samples in [-1, 1]; image: uniform values over its value range), run one
forward + backward as warm-up, then time the forward (no_grad) and the forward + backward
(gradient to the input, as an input perturbation needs; the parameters are frozen). The
forward is what a reprogrammer reads: `layer_features` where the source has them (mapping
`layers`), else `logits`. Each is repeated until `--seconds` have passed or `--repeats`
runs are done (at least once), so slow sources (Whisper, CREPE-full) get one or two runs.
Writes benchmarks/results/sources.json and sources.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _timed(step, batch: int, repeats: int, seconds: float) -> dict:
    times = []
    started = time.perf_counter()
    while not times or (len(times) < repeats and time.perf_counter() - started < seconds):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return {"runs": len(times), "seconds_per_batch": min(times), "samples_per_s": batch / min(times)}


def child(name: str, batch: int, repeats: int, seconds: float) -> dict:
    """One source, measured in this process (the parent starts one process per source)."""
    import resource

    import torch

    t = time.perf_counter()
    import adapters_modal
    from adapters_modal.base import SourceModel

    source = adapters_modal.load_source(name)
    load_s = time.perf_counter() - t
    load_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    spec = source.input_spec
    generator = torch.Generator().manual_seed(0)
    if spec.modality == "audio":
        x = torch.rand(batch, spec.num_samples, generator=generator) * 2 - 1
    else:
        low, high = spec.value_range or (0.0, 1.0)
        x = torch.rand(batch, spec.channels, spec.height, spec.width, generator=generator) * (high - low) + low
    read = "layer_features" if type(source).layer_features is not SourceModel.layer_features else "logits"
    forward = getattr(source, read)

    def forward_only():
        with torch.no_grad():
            forward(x)

    def forward_backward():
        inputs = x.clone().requires_grad_(True)
        forward(inputs).sum().backward()
        assert inputs.grad is not None

    forward_backward()  # warm-up (both paths' kernels and allocations)
    with torch.no_grad():
        width = int(forward(x[:1]).shape[1])
    result = {
        "source": name, "modality": spec.modality, "parameters": sum(p.numel() for p in source.parameters()),
        "input_shape": list(x.shape), "reads": read, "width": width,
        "load_s": load_s, "threads": torch.get_num_threads(),
        "forward": _timed(forward_only, batch, repeats, seconds),
        "forward_backward": _timed(forward_backward, batch, repeats, seconds),
        "peak_rss_after_load_mb": load_rss / 1024,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
    }
    return result


def run_child(name: str, args) -> dict:
    command = [sys.executable, __file__, "--child", name, "--batch", str(args.batch), "--repeats", str(args.repeats),
               "--seconds", str(args.seconds)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
    if done.returncode != 0:
        return {"source": name, "error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - start
    return result


def markdown(report: dict) -> str:
    lines = [
        "# Source costs on this CPU",
        "",
        (f"Machine: {report['machine']}; `OMP_NUM_THREADS={report['omp_num_threads']}`; batch {report['batch']} of "
         "random input of each source's own input spec; best of the timed runs after one warm-up "
         "forward + backward; one fresh process per source. **Noisy**: the host is shared with other "
         "jobs running at the same time, so treat the figures as orders of magnitude (a 2x spread "
         "between runs is possible). Forward reads `layer_features` where the source has them (else "
         "`logits`); forward + backward sends the gradient to the input (parameters frozen). Peak RSS "
         "is the child process's `ru_maxrss` (imports, model and the batch's autograd graph)."),
        "",
        ("| source | modality | parameters | input (batch) | reads (width) | load s | forward samples/s | "
         "fwd+bwd samples/s | runs (fwd / fwd+bwd) | peak RSS MB |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        if "error" in r:
            lines.append(f"| {r['source']} | failed: {r['error']} |||||||||")
            continue
        lines.append(
            f"| {r['source']} | {r['modality']} | {r['parameters'] / 1e6:.2f} M | {'x'.join(map(str, r['input_shape']))} "
            f"| {r['reads']} ({r['width']}) | {r['load_s']:.1f} | {r['forward']['samples_per_s']:.2f} | "
            f"{r['forward_backward']['samples_per_s']:.2f} | {r['forward']['runs']} / {r['forward_backward']['runs']} "
            f"| {r['peak_rss_mb']:.0f} |")
    lines += ["", f"Total wall time {report['total_s']:.0f} s.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", help="comma-separated names (default: every registered audio and image source)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs at most per mode")
    parser.add_argument("--seconds", type=float, default=10.0, help="stop repeating a mode after this long")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.batch, args.repeats, args.seconds)))
        return

    import torch
    from results_io import write_results

    import adapters_modal

    if args.sources:
        names = args.sources.split(",")
    else:
        names = [e.name for e in adapters_modal.source_entries() if e.modality in ("audio", "image")]
    start = time.perf_counter()
    results = []
    for name in names:
        results.append(run_child(name, args))
        r = results[-1]
        print(name, "error: " + r["error"] if "error" in r else
              f"fwd {r['forward']['samples_per_s']:.2f}/s, fwd+bwd {r['forward_backward']['samples_per_s']:.2f}/s, "
              f"{r['peak_rss_mb']:.0f} MB, {r['wall_s']:.0f} s", flush=True)
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), "
                   f"torch {torch.__version__}",
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"), "batch": args.batch,
        "repeats": args.repeats, "seconds": args.seconds, "total_s": time.perf_counter() - start,
        "results": results,
    }
    write_results("sources", report, markdown(report))


if __name__ == "__main__":
    main()
