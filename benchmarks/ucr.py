"""UCR benchmark: Voice2Series (BC-ResNet, AttRNN) against MiniRocket and a linear probe, same run.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/ucr.py [--seeds 3] [--workers 2] [FOLDER ...]
    python benchmarks/ucr.py --quick          # 3 small datasets, 1 seed, few epochs: a few minutes

FOLDER: folders of UCR-layout datasets (<Name>/<Name>_TRAIN.tsv, _TEST.tsv); default
../shared/data/ucr. Methods:
  best           V2SClassifier, the "best" preset of xmodal.presets (the default)
  v2s            the "v2s" preset (Voice2Series: waveform placement, masked delta, frequency map)
  v2s-search     the "v2s" preset with its settings chosen by the "small" grid on the training
                 split (xmodal.training.search), then refitted
  v2s-attrnn     the "v2s" preset on attrnn-gsc35 (slower, so fixed settings, no search: the
                 series stretched to 0.9 s, linear head, lr 0.01, batches of 8, at most 100 epochs)
  minirocket     sktime MiniRocket + StandardScaler + RidgeClassifierCV (the standard recipe;
                 xmodal.baselines.series.minirocket)
  probe-bcresnet, probe-attrnn
                 logistic regression on the frozen source's pooled features of the placed
                 series (no reprogramming: the transfer-learning baseline; deterministic, one run)

Each (dataset, method, seed) is one work item, run in `--workers` processes with one
thread each, largest first. Every finished item is appended to
benchmarks/results/<name>_runs.jsonl at once, so an interrupted run resumes where it
stopped (items with the same settings are skipped). The tables
(<name>.csv, <name>.md, <name>.json, <name>.png) are rebuilt from that file at the end,
or alone with --report-only, from the runs made with the current settings only (runs of
older settings stay in the file, counted and left out). Only the test split is scored;
nothing is chosen on it.
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import csv
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from results_io import RESULTS, write_results  # noqa: E402
from ucr_summary import complete_datasets, mean_accuracy, mean_rank, wins_ties_losses  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "ucr"
# The source weights: ../shared/models unless the caller says otherwise (workers inherit it).
os.environ.setdefault("XMODAL_WEIGHTS_DIR", str(REPO.parent / "shared" / "models"))
# Voice2Series paper (V2Sa) test accuracies, percent, from ../shared/data/README.md.
V2S_PAPER = {"Coffee": 100, "ECG200": 87.0, "Earthquakes": 78.42, "GunPoint": 96.67, "ItalyPowerDemand": 97.08,
             "Plane": 100, "Strawberry": 97.57, "Trace": 100, "Wine": 90.74}
SOURCES = {"bcresnet": "bc-resnet-gsc35", "attrnn": "attrnn-gsc35"}
# The methods that fit a V2SClassifier: a preset of xmodal.presets and what changes from
# it (the whole dict is the run's "settings", so a changed method never mixes with old runs).
# Quick mode only cuts the training budget.
V2S_METHODS = {
    "full": {
        "best": {"preset": "best"},
        "v2s": {"preset": "v2s"},
        "v2s-search": {"preset": "v2s", "search": "small", "patience": 10},
        # The AttRNN's frames hop 128 samples: stretched to 0.9 s a series spans most of its 125
        # frames instead of about 12, and with batches of 8 delta gets 4 times the Adam steps per
        # epoch. 100 epochs, not more: at 200 / patience 50, Strawberry and SwedishLeaf alone took
        # about 16 min each on shared cores.
        "v2s-attrnn": {"preset": "v2s", "source": "attrnn-gsc35", "mapping": "linear", "lr": 0.01, "batch_size": 8,
                       "epochs": 100, "patience": 25, "target_duration": 0.9},
    },
    "quick": {
        "best": {"preset": "best", "epochs": 2, "patience": 2},
        "v2s": {"preset": "v2s", "epochs": 3, "patience": 3},
        "v2s-search": {"preset": "v2s", "patience": 3,
                       "search": [{"mapping": m, "epochs": 2} for m in ("blm", "frequency", "linear")]},
        "v2s-attrnn": {"preset": "v2s", "source": "attrnn-gsc35", "epochs": 3, "patience": 3},
    },
}
# The zoo (issue "The source zoo"): the probe of each frozen source's layer statistics, with
# its natural bridge (the best preset's tones for audio sources, the series as an image for
# image sources), no training: which source reads time series best, and at what cost.
ZOO = {"bc-resnet-gsc35": "audio", "crepe-tiny": "audio", "crepe-full": "audio", "speech-embedding": "audio",
       "whisper-tiny-en": "audio", "bc-resnet-gsc35-image": "image", "efficientnet-lite0": "image"}
for _mode in V2S_METHODS.values():
    _mode.update({f"zoo-{name}": {"preset": "best", "source": name, "epochs": 0,
                                  **({"encoding": "image"} if kind == "image" else {})} for name, kind in ZOO.items()})
METHODS = ["best", "v2s", "v2s-search", "v2s-attrnn", "minirocket", "probe-bcresnet", "probe-attrnn",
           *(f"zoo-{name}" for name in ZOO)]
DETERMINISTIC = {"probe-bcresnet", "probe-attrnn"}
QUICK_DATASETS = ["Coffee", "GunPoint", "ItalyPowerDemand"]
# Relative cost per series, to start the largest work first (zoo: measured forward speed, bench_sources.md).
COST = {"zoo-bc-resnet-gsc35": 1, "zoo-bc-resnet-gsc35-image": 1, "zoo-crepe-tiny": 10, "zoo-efficientnet-lite0": 10,
        "zoo-speech-embedding": 20, "zoo-whisper-tiny-en": 300, "zoo-crepe-full": 400,
        "best": 30, "v2s": 100, "v2s-search": 200, "v2s-attrnn": 100, "minirocket": 1, "probe-bcresnet": 1,
        "probe-attrnn": 4}


def find_datasets(folders: list[Path]) -> dict[str, Path]:
    found = {}
    for folder in folders:
        if not folder.is_dir():
            raise SystemExit(f"{folder} is not a folder of UCR-layout datasets")
        for train in sorted(folder.glob("*/*_TRAIN.ts*")):
            found.setdefault(train.parent.name, train.parent)
    return found


def _linear_probe(source_name: str, data) -> tuple[float, dict]:
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from adapters_modal import load_source
    from xmodal.bridges.waveform import SeriesToWaveform, SeriesToWaveformConfig

    source = load_source(source_name)
    spec = source.input_spec
    bridge = SeriesToWaveform(SeriesToWaveformConfig(num_samples=spec.num_samples, sample_rate=spec.sample_rate), seed=0)

    @torch.no_grad()
    def features(x: np.ndarray) -> np.ndarray:
        series = torch.tensor(x, dtype=torch.float32)
        return torch.cat([source.features(bridge(series[i : i + 64])) for i in range(0, len(series), 64)]).numpy()

    scaler = StandardScaler()
    probe = LogisticRegression(max_iter=5000).fit(scaler.fit_transform(features(data.x_train)), data.y_train)
    return float(np.mean(probe.predict(scaler.transform(features(data.x_test))) == data.y_test)), {}


def _minirocket(seed: int, data) -> tuple[float, dict]:
    from xmodal.baselines.series import minirocket

    # The argmax of its probabilities (a softmax of the ridge decision function) is RidgeClassifierCV.predict.
    proba = minirocket(data.x_train, data.y_train, data.x_test, seed)
    predicted = np.unique(data.y_train)[proba.argmax(axis=1)]
    return float(np.mean(predicted == data.y_test)), {}


def _v2s(settings: dict, seed: int, data) -> tuple[float, dict]:
    from xmodal.estimators.series import V2SClassifier

    settings = dict(settings)
    classifier = V2SClassifier(settings.pop("preset"), random_state=seed, **settings)
    classifier.fit(data.x_train[:, None, :], data.y_train)
    x_test = data.x_test[:, None, :]
    accuracy = float(np.mean(classifier.predict(x_test) == data.y_test))
    result = classifier.fit_result_
    start = classifier.probe_predict_proba(x_test)  # the probe (best) or the untrained bridge's label map
    extra = {"val_accuracy": result.val_accuracy, "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
             "probe_val_accuracy": result.probe_val_accuracy, "reprogramming_kept": result.reprogramming_kept,
             "probe_test_accuracy": None if start is None
             else float(np.mean(classifier.classes_[start.argmax(axis=1)] == data.y_test))}
    if hasattr(classifier, "search_result_"):
        search = classifier.search_result_
        extra.update(chosen=search.best, search_method=search.method,
                     search_accuracy=search.scores[search.best_index]["accuracy"])
    return accuracy, extra


def run_item(item: dict) -> dict:
    """One (dataset, method, seed) in a worker process: fit on train, score on test."""
    import torch

    from xmodal.data.ucr import load_ucr

    torch.set_num_threads(1)
    data = load_ucr(item["path"])
    start = time.perf_counter()
    method, seed = item["method"], item["seed"]
    if method == "minirocket":
        accuracy, extra = _minirocket(seed, data)
    elif method.startswith("probe-"):
        accuracy, extra = _linear_probe(SOURCES[method.split("-", 1)[1]], data)
    else:
        accuracy, extra = _v2s(item["settings"], seed, data)
    return {**{k: item[k] for k in ("dataset", "method", "seed", "settings")}, "accuracy": accuracy,
            "fit_seconds": time.perf_counter() - start, "n_train": len(data.x_train), "n_test": len(data.x_test),
            "length": int(data.x_train.shape[1]), "n_classes": len(data.classes), **extra}


def _init_worker() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def load_runs(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _key(record: dict) -> tuple:
    return record["dataset"], record["method"], record["seed"], json.dumps(record["settings"], sort_keys=True)


def method_settings(mode: str, method: str) -> dict:
    """A method's estimator settings in this mode ({} for the methods without any)."""
    return V2S_METHODS[mode].get(method, {})


def current_runs(runs: list[dict], mode: str) -> tuple[list[dict], int]:
    """The runs made with this mode's current settings, and how many older ones were left out
    (a method whose settings changed is reported from its new runs alone, never a mix)."""
    current = [r for r in runs if r["settings"] == method_settings(mode, r["method"])]
    return current, len(runs) - len(current)


def work_items(datasets: dict[str, Path], methods: list[str], seeds: int, mode: str, done: set) -> list[dict]:
    items = []
    for name, path in datasets.items():
        # Training dominates (many epochs); the test split is scored once, forward only.
        size = sum(len(p.read_text().splitlines()) * (1 if "_TRAIN" in p.name else 0.1) for p in path.glob("*_T*.ts*"))
        for method in methods:
            for seed in range(1 if method in DETERMINISTIC else seeds):
                item = {"dataset": name, "path": str(path), "method": method, "seed": seed,
                        "settings": method_settings(mode, method), "cost": COST[method] * size}
                if _key(item) not in done:
                    items.append(item)
    return sorted(items, key=lambda i: -i["cost"])  # largest first: the two workers finish together


def run_all(items: list[dict], runs_file: Path, workers: int) -> None:
    start = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
        pending = {pool.submit(run_item, item): item for item in items}
        for count, done in enumerate(futures.as_completed(pending), 1):
            item = pending[done]
            label = f"[{count}/{len(items)} {time.perf_counter() - start:6.0f} s] {item['dataset']} {item['method']} seed {item['seed']}"
            try:
                record = done.result()
            except Exception as exc:  # one failing item must not lose the others; it is retried on resume
                print(f"{label}: FAILED {type(exc).__name__}: {exc}", flush=True)
                continue
            with open(runs_file, "a") as handle:
                handle.write(json.dumps(record) + "\n")
            print(f"{label}: accuracy {record['accuracy']:.4f}, {record['fit_seconds']:.1f} s", flush=True)


def aggregate(runs: list[dict]) -> list[dict]:
    """One row per (dataset, method): accuracy mean and std over seeds, mean fit time."""
    groups: dict[tuple, list[dict]] = {}
    for record in runs:
        groups.setdefault((record["dataset"], record["method"]), []).append(record)
    rows = []
    for (dataset, method), records in sorted(groups.items()):
        accuracies = [r["accuracy"] for r in records]
        rows.append({"dataset": dataset, "method": method, "n_seeds": len(records),
                     "accuracy_mean": float(np.mean(accuracies)), "accuracy_std": float(np.std(accuracies)),
                     "fit_seconds_mean": float(np.mean([r["fit_seconds"] for r in records])),
                     "v2s_paper": V2S_PAPER.get(dataset, ""), "n_train": records[0]["n_train"],
                     "n_test": records[0]["n_test"], "n_classes": records[0]["n_classes"]})
    return rows


def summary(rows: list[dict]) -> dict:
    table: dict[str, dict[str, float]] = {}
    for row in rows:
        table.setdefault(row["dataset"], {})[row["method"]] = row["accuracy_mean"]
    methods = [m for m in METHODS if any(m in t for t in table.values())]
    # The summary compares the methods that finished every dataset; one still running (or
    # given up) would shrink it to the few sets it finished, so it is summarised on its own.
    whole = [m for m in methods if all(m in t for t in table.values())] or methods
    datasets = complete_datasets(table, whole)
    result = {"methods": methods, "summarised_methods": whole, "datasets_complete": datasets, "table": table,
              "partial": {m: partial_summary(table, m) for m in methods if m not in whole}}
    if datasets:
        result["mean_accuracy"] = mean_accuracy(table, whole, datasets)
        result["mean_rank"] = mean_rank(table, whole, datasets)
        if "minirocket" in whole:
            result["vs_minirocket"] = {m: wins_ties_losses(table, m, "minirocket", datasets)
                                       for m in whole if m != "minirocket"}
    return result


def partial_summary(table: dict[str, dict[str, float]], method: str) -> dict:
    """A method that did not finish every dataset, against MiniRocket on the sets it finished."""
    sets = [d for d, t in table.items() if method in t and "minirocket" in t]
    result = {"datasets": len(sets)}
    if sets:
        result.update(mean_accuracy=float(np.mean([table[d][method] for d in sets])),
                      minirocket_mean_accuracy=float(np.mean([table[d]["minirocket"] for d in sets])),
                      vs_minirocket=wins_ties_losses(table, method, "minirocket", sets))
    return result


def markdown(rows: list[dict], stats: dict, title: str) -> str:
    methods = stats["methods"]
    cells = {(r["dataset"], r["method"]): r for r in rows}
    lines = [f"# {title}", "",
             "Test accuracy (%), mean ± std over seeds (n = seeds finished), and mean fit time in seconds "
             "(2-core machine, 1 thread per work item). V2S paper: published V2Sa number (its code fine-tuned "
             "the source and validated on the test set).", "",
             "| dataset | " + " | ".join(methods) + " | V2S paper |", "|---|" + "---|" * (len(methods) + 1)]
    for dataset in sorted(stats["table"]):
        row = []
        for method in methods:
            r = cells.get((dataset, method))
            row.append("–" if r is None else f"{100 * r['accuracy_mean']:.2f} ± {100 * r['accuracy_std']:.2f} "
                                             f"(n={r['n_seeds']}, {r['fit_seconds_mean']:.0f} s)")
        lines.append(f"| {dataset} | " + " | ".join(row) + f" | {V2S_PAPER.get(dataset, '')} |")
    complete = stats["datasets_complete"]
    lines += ["", f"Summary over the {len(complete)} datasets on which every method below finished:", "",
              "| method | mean accuracy (%) | mean rank | wins / ties / losses vs MiniRocket |", "|---|---|---|---|"]
    for method in stats["summarised_methods"] if complete else []:
        wtl = stats.get("vs_minirocket", {}).get(method)
        lines.append(f"| {method} | {100 * stats['mean_accuracy'][method]:.2f} | {stats['mean_rank'][method]:.2f} | "
                     f"{'–' if wtl is None else ' / '.join(map(str, wtl))} |")
    for method, part in stats.get("partial", {}).items():
        if part["datasets"]:
            lines.append(f"\nNot finished on every dataset: {method}, {part['datasets']} datasets, "
                         f"{100 * part['mean_accuracy']:.2f} % against MiniRocket's "
                         f"{100 * part['minirocket_mean_accuracy']:.2f} % on the same sets "
                         f"({' / '.join(map(str, part['vs_minirocket']))} wins / ties / losses).")
    return "\n".join(lines) + "\n"


def scatter(stats: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5.5, 5.5))
    for method, marker in (("best", "s"), ("v2s", "o"), ("v2s-search", "D"), ("v2s-attrnn", "^")):
        points = [(t["minirocket"], t[method]) for t in stats["table"].values() if "minirocket" in t and method in t]
        if points:
            x, y = np.array(points).T * 100
            axes.scatter(x, y, marker=marker, label=f"{method} ({len(points)} datasets)", alpha=0.8)
    axes.plot([0, 100], [0, 100], color="grey", linewidth=1)
    axes.set(xlabel="MiniRocket test accuracy (%)", ylabel="V2S test accuracy (%)", xlim=(0, 101), ylim=(0, 101),
             title="UCR: V2S vs MiniRocket (above the line: V2S better)")
    if axes.collections:
        axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def report(runs_file: Path, name: str, mode: str) -> None:
    runs, superseded = current_runs(load_runs(runs_file), mode)
    if superseded:
        print(f"{superseded} runs in {runs_file} were made with older settings: left out of the tables", flush=True)
    rows = aggregate(runs)
    stats = summary(rows)
    seeds = max((r["n_seeds"] for r in rows), default=0)
    title = f"UCR benchmark ({'quick: ' if mode == 'quick' else ''}{len(stats['table'])} datasets, up to {seeds} seed(s))"
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / f"{name}.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["dataset"])
        writer.writeheader()
        writer.writerows(rows)
    write_results(name, {"rows": rows, "summary": stats}, markdown(rows, stats, title))
    scatter(stats, RESULTS / f"{name}.png")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("folders", nargs="*", type=Path, help=f"UCR-layout folders (default {DEFAULT_DATA})")
    parser.add_argument("--quick", action="store_true", help=f"{', '.join(QUICK_DATASETS)}; 1 seed; 2-3 epochs")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per stochastic method (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes, one thread each (default 2)")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ",".join(METHODS))
    parser.add_argument("--datasets", help="comma-separated subset of the datasets found")
    parser.add_argument("--name", help="results name (default ucr, or ucr_quick with --quick)")
    parser.add_argument("--report-only", action="store_true", help="rebuild the tables from the runs file, fit nothing")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    name = args.name or ("ucr_quick" if args.quick else "ucr")
    methods = args.methods.split(",")
    if unknown := set(methods) - set(METHODS):
        parser.error(f"unknown methods {sorted(unknown)}; choose from {', '.join(METHODS)}")
    datasets = find_datasets(args.folders or [DEFAULT_DATA])
    wanted = args.datasets.split(",") if args.datasets else (QUICK_DATASETS if args.quick else list(datasets))
    if missing := [d for d in wanted if d not in datasets]:
        parser.error(f"datasets {missing} not found in the given folders")
    datasets = {d: datasets[d] for d in wanted}
    seeds = 1 if args.quick else args.seeds
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs_file = RESULTS / f"{name}_runs.jsonl"
    if not args.report_only:
        items = work_items(datasets, methods, seeds, mode, {_key(r) for r in load_runs(runs_file)})
        print(f"{len(items)} work items to run ({len(datasets)} datasets x {methods}, {seeds} seed(s)); "
              f"results appended to {runs_file}", flush=True)
        run_all(items, runs_file, args.workers)
    report(runs_file, name, mode)


if __name__ == "__main__":
    main()
