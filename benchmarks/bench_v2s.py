"""Voice2Series performance on this machine: fit time, throughput, peak memory, accuracy.

    python benchmarks/bench_v2s.py [--data-dir ../shared/data/ucr] [--datasets GunPoint,Coffee,...]

Writes benchmarks/results/v2s.json and v2s.md. Targets (issue 2): a default
GunPoint fit under 60 s wall; the reprogrammed model's training throughput
within 15 % of the bare source model's forward+backward on 16000-sample
inputs; fit peak memory under 2 GB. Each fit runs in a fresh child process so
its peak RSS (ru_maxrss) is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from results_io import write_results

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# Published test accuracies from ../shared/data/README.md (percent).
PUBLISHED = {  # dataset: (V2S paper, MiniRocket)
    "Coffee": (100, 100), "ECG200": (87.0, 91.0), "Earthquakes": (78.42, 74.8), "GunPoint": (96.67, 99.3),
    "ItalyPowerDemand": (97.08, 96.9), "Plane": (100, 100), "Strawberry": (97.57, 98.4), "Trace": (100, 100),
    "Wine": (90.74, 87.0),
}


def fit_in_child(dataset: str, data_dir: str | None, seed: int) -> dict:
    """One default fit + test evaluation in a fresh process; returns its metrics and peak RSS."""
    code = (
        "import json, resource, sys, time\n"
        "from xmodal.data.ucr import load_ucr\n"
        "from xmodal.estimators.series import V2SClassifier\n"
        f"d = load_ucr({dataset!r}, {data_dir!r})\n"
        "t = time.perf_counter()\n"
        f"c = V2SClassifier(random_state={seed}).fit(d.x_train[:, None, :], d.y_train)\n"
        "fit_s = time.perf_counter() - t\n"
        "acc = float((c.predict(d.x_test[:, None, :]) == d.y_test).mean())\n"
        "print(json.dumps({'dataset': d.name, 'n_train': len(d.x_train), 'n_test': len(d.x_test),"
        " 'fit_seconds': fit_s, 'test_accuracy': acc, 'val_accuracy': c.fit_result_.val_accuracy,"
        " 'epochs_run': c.fit_result_.epochs_run,"
        " 'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"fit of {dataset} failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = time.perf_counter() - start  # includes imports and model load
    return result


def samples_per_second(step, batch: int, repeats: int) -> float:
    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return batch * repeats / (time.perf_counter() - start)


def throughput(batch: int = 32, repeats: int = 20) -> dict:
    """Forward + backward to the trainable input side, bare source vs whole reprogrammer."""
    from adapters_modal import load_source
    from xmodal.bridges.waveform import SeriesToWaveform
    from xmodal.maps import build_output_map
    from xmodal.reprogrammer import Reprogrammer

    source = load_source("bc-resnet-gsc35")
    generator = torch.Generator().manual_seed(0)
    waveforms = (0.1 * torch.randn(batch, 16000, generator=generator)).requires_grad_()
    series = torch.randn(batch, 150, generator=generator)
    targets = torch.randint(0, 2, (batch,), generator=generator)
    model = Reprogrammer(SeriesToWaveform(), source, build_output_map("frequency", 35, 2))
    model.train()

    def bare_step():
        waveforms.grad = None
        source.logits(waveforms).logsumexp(dim=1).sum().backward()

    def reprogrammed_step():
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(series), targets).backward()

    results = {}
    for name, step in (("bare", bare_step), ("reprogrammed", reprogrammed_step)):
        results[name] = float(np.median([samples_per_second(step, batch, repeats) for _ in range(3)]))
    results["ratio"] = results["reprogrammed"] / results["bare"]
    results["batch"] = batch
    return results


def markdown(report: dict) -> str:
    t = report["throughput"]
    g = report["gunpoint"]
    lines = [
        "# V2S benchmark (bc-resnet-gsc35, defaults, seed 0)", "",
        f"Machine: {report['machine']}", "",
        "| measure | value | target |", "|---|---|---|",
        f"| GunPoint default fit, wall (whole process) | {g['wall_seconds']:.1f} s (fit alone {g['fit_seconds']:.1f} s) | < 60 s |",
        f"| fit peak memory (RSS) | {g['peak_rss_mb']:.0f} MB | < 2048 MB |",
        f"| bare source fwd+bwd | {t['bare']:.0f} samples/s | |",
        f"| reprogrammed fwd+bwd | {t['reprogrammed']:.0f} samples/s ({100 * t['ratio']:.1f} % of bare) | >= 85 % |",
        "", "| dataset | train | test | V2S test acc (%) | val acc | fit s | V2S paper | MiniRocket (published) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["accuracy"]:
        paper, rocket = PUBLISHED.get(r["dataset"], ("", ""))
        lines.append(f"| {r['dataset']} | {r['n_train']} | {r['n_test']} | {100 * r['test_accuracy']:.2f} | "
                     f"{r['val_accuracy'] if r['val_accuracy'] is None else round(r['val_accuracy'], 3)} | "
                     f"{r['fit_seconds']:.1f} | {paper} | {rocket} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "ucr"))
    parser.add_argument("--datasets", default="GunPoint", help="comma-separated UCR names (GunPoint first, for the targets)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import os
    import platform

    report = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"}
    print("throughput ...", flush=True)
    report["throughput"] = throughput()
    print(report["throughput"], flush=True)
    report["accuracy"] = []
    names = args.datasets.split(",")
    if "GunPoint" not in names:
        parser.error("--datasets must include GunPoint: the fit-time and memory targets are measured on it")
    for name in names:
        print(f"fit {name} ...", flush=True)
        result = fit_in_child(name, args.data_dir, args.seed)
        print(result, flush=True)
        report["accuracy"].append(result)
    report["gunpoint"] = next(r for r in report["accuracy"] if r["dataset"] == "GunPoint")
    write_results("v2s", report, markdown(report))


if __name__ == "__main__":
    main()
