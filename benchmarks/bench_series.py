"""Series presets on this machine: accuracy beside their probe, fit time, peak memory, throughput.

    OMP_NUM_THREADS=1 python benchmarks/bench_series.py [--presets best,tones,v2s] [--datasets GunPoint,Coffee,...]

Writes benchmarks/results/series.json and series.md: per preset of xmodal.presets and
dataset, test accuracy of the reprogrammed model and of its start (the probe, or the
untrained bridge with its label map), whether training was kept, fit time and peak
memory. Targets: README command (a) (GunPoint, preset best) at least 0.90 within 60 s;
the reprogrammed model's training throughput within 15 % of the bare source's
forward+backward on 16000-sample inputs; fit peak memory under 2 GB. Each fit runs in a
fresh child process so its peak RSS is its own.
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


def fit_in_child(preset: str, dataset: str, data_dir: str | None, seed: int) -> dict:
    """One fit of a preset + test evaluation in a fresh process: the metrics.json record
    (xmodal.metrics.fit_metrics) plus the whole process's wall time."""
    code = (
        "import json, time\n"
        "from xmodal.data.ucr import load_ucr\n"
        "from xmodal.estimators.series import V2SClassifier\n"
        "from xmodal.metrics import fit_metrics\n"
        f"d = load_ucr({dataset!r}, {data_dir!r})\n"
        "x_train, x_test = d.x_train[:, None, :], d.x_test[:, None, :]\n"
        "t = time.perf_counter()\n"
        f"c = V2SClassifier({preset!r}, random_state={seed}).fit(x_train, d.y_train)\n"
        "fit_s = time.perf_counter() - t\n"
        "proba = c.predict_proba(x_test)\n"
        "record = fit_metrics(c, d.name, len(x_train), d.y_test, proba, c.probe_predict_proba(x_test, proba), fit_s)\n"
        "print(json.dumps(record))\n"
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


def _percent(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def markdown(report: dict) -> str:
    t = report["throughput"]
    g = report["command_a"]
    lines = [
        f"# Series presets (seed {report['seed']})", "",
        f"Machine: {report['machine']}", "",
        "| measure | value | target |", "|---|---|---|",
        f"| README command (a): GunPoint, preset best, test accuracy | {g['test_accuracy']:.3f} | >= 0.90 |",
        f"| command (a) fit, wall (whole process) | {g['wall_seconds']:.1f} s (fit alone {g['fit_seconds']:.1f} s) "
        "| < 60 s |",
        f"| fit peak memory (RSS), largest | {max(r['peak_rss_mb'] for r in report['accuracy']):.0f} MB | < 2048 MB |",
        f"| bare source fwd+bwd | {t['bare']:.0f} samples/s | |",
        f"| reprogrammed fwd+bwd (v2s bridge) | {t['reprogrammed']:.0f} samples/s ({100 * t['ratio']:.1f} % of bare) "
        "| >= 85 % |",
        "", "Start: the model before training (best, tones: the probe of every layer's statistics; v2s: the "
        "untrained bridge with its frequency label map). Kept: a trained epoch beat the start on validation.", "",
        "| preset | dataset | train | test | test acc (%) | start test acc (%) | kept | fit s | V2S paper | "
        "MiniRocket (published) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["accuracy"]:
        paper, rocket = PUBLISHED.get(r["dataset"], ("", ""))
        lines.append(f"| {r['preset']} | {r['dataset']} | {r['n_train']} | {r['n_test']} | "
                     f"{_percent(r['test_accuracy'])} | {_percent(r['probe_test_accuracy'])} | "
                     f"{'yes' if r['reprogramming_kept'] else 'no'} | {r['fit_seconds']:.1f} | {paper} | {rocket} |")
    for preset in report["presets"]:
        rows = [r for r in report["accuracy"] if r["preset"] == preset]
        lines.append(f"\n{preset}: mean test accuracy {100 * np.mean([r['test_accuracy'] for r in rows]):.2f} % over "
                     f"{len(rows)} sets, training kept on {sum(r['reprogramming_kept'] for r in rows)}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "ucr"))
    parser.add_argument("--datasets", default="GunPoint,Coffee,ECG200,ItalyPowerDemand,Plane,Trace,Wine",
                        help="comma-separated UCR names (GunPoint is needed for the command (a) targets)")
    parser.add_argument("--presets", default="best,tones,v2s",
                        help="comma-separated series presets of xmodal.presets")
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
    report["presets"], report["seed"] = args.presets.split(","), args.seed
    for preset in report["presets"]:
        for name in names:
            print(f"fit {preset} {name} ...", flush=True)
            result = fit_in_child(preset, name, args.data_dir, args.seed)
            print({k: result[k] for k in ("test_accuracy", "probe_test_accuracy", "fit_seconds")}, flush=True)
            report["accuracy"].append(result)
    report["command_a"] = next(r for r in report["accuracy"] if r["dataset"] == "GunPoint" and r["preset"] == "best")
    write_results("series", report, markdown(report))


if __name__ == "__main__":
    main()
