"""Black-box (zeroth-order, BAR) against white-box reprogramming, as a function of queries.

    python benchmarks/bench_blackbox.py [--budgets 1000,3000,10000,30000] [--price-per-1000 1.0]

Three UCR datasets (standard train/test splits; series -> bc-resnet-gsc35 audio)
and German credit (stratified 80/20 split, seed 0; rows -> bc-resnet-gsc35-image).
Every run: frequency label mapping, seed 0 (series: the v2s preset; table: the best
preset's drawing). White-box: backpropagation, at
most 30 epochs with early stopping. Black-box: the source seen only as
probabilities, q = 10 directions, smoothing 0.01, lr 0.01, one independent
run per query budget (each selects its best state on its own validation
split). A query is one sample sent to the source; the budget covers the
mapping preparation and the validation scoring too. Cost: queries used at an
assumed price per 1000 queries (default USD 1.00; a stated assumption, not a
quote). Writes benchmarks/results/blackbox.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from results_io import RESULTS, write_results

SHARED = REPO.parent / "shared" / "data"
UCR_SETS = ("ECG200", "ItalyPowerDemand", "Coffee")
GERMAN = SHARED / "tabular" / "german_credit_uci"
WHITE_BOX_EPOCHS = 30
ZO_LR = 0.01


def _record(model, x_test, y_test, budget: int | None) -> dict:
    result = model.fit_result_
    record = {"test_accuracy": float((model.predict(x_test) == np.asarray(y_test)).mean()), "seconds": result.seconds}
    if budget is None:
        return {**record, "forward_samples": result.epochs_run * (result.n_fit + result.n_val)}
    return {**record, "query_budget": budget, "queries_used": result.queries, "stopped_by": result.stopped_by,
            "queries_per_second": result.queries / result.seconds}


def series_runs(name: str, budgets: list[int]) -> dict:
    """The v2s preset (waveform bridge, frequency map): white-box, then black-box per budget."""
    from xmodal.data.ucr import load_ucr
    from xmodal.estimators.series import V2SClassifier

    data = load_ucr(name, SHARED / "ucr")
    x_train, x_test = data.x_train[:, None, :], data.x_test[:, None, :]

    def fit(budget):
        settings = ({"epochs": WHITE_BOX_EPOCHS, "patience": 10} if budget is None
                    else {"query_budget": budget, "lr": ZO_LR, "epochs": 10_000, "patience": 10_000})
        return _record(V2SClassifier("v2s", random_state=0, **settings).fit(x_train, data.y_train), x_test,
                       data.y_test, budget)

    majority = max(np.mean(data.y_test == c) for c in data.classes)
    return {"kind": "series", "n_train": len(data.y_train), "n_test": len(data.y_test), "majority_rate": majority,
            "white_box": fit(None), "black_box": [fit(budget) for budget in budgets]}


def table_runs(budgets: list[int]) -> dict:
    """The table preset's drawing with a frequency label map (black-box needs one): white-box, then
    black-box per budget."""
    from xmodal.data.tables import load_table, split_table
    from xmodal.estimators.table import TableClassifier

    train, test = split_table(load_table(GERMAN), 0.2, seed=0)

    def fit(budget):
        settings = ({"epochs": WHITE_BOX_EPOCHS, "patience": 10} if budget is None
                    else {"query_budget": budget, "lr": ZO_LR, "epochs": 10_000, "patience": 10_000})
        model = TableClassifier(mapping="frequency", head_init="random", random_state=0, **settings)
        return _record(model.fit(train.features, train.labels), test.features, test.labels, budget)

    majority = max(np.mean(test.labels == c) for c in np.unique(train.labels))
    return {"kind": "table", "n_train": len(train.labels), "n_test": len(test.labels), "majority_rate": majority,
            "white_box": fit(None), "black_box": [fit(budget) for budget in budgets]}


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["datasets"])
    figure, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.6), squeeze=False)
    for axis, name in zip(axes[0], names):
        entry = report["datasets"][name]
        queries = [r["queries_used"] for r in entry["black_box"]]
        axis.plot(queries, [r["test_accuracy"] for r in entry["black_box"]], "o-", label="black-box (ZO)")
        axis.axhline(entry["white_box"]["test_accuracy"], color="C1", ls="--", label="white-box")
        axis.axhline(entry["majority_rate"], color="grey", ls=":", label="majority class")
        axis.set_xscale("log")
        axis.set_title(f"{name} ({entry['kind']})")
        axis.set_xlabel("source queries used")
        axis.set_ylim(0, 1.02)
    axes[0][0].set_ylabel("test accuracy")
    axes[0][0].legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def markdown(report: dict) -> str:
    price = report["price_per_1000"]
    lines = ["# Black-box vs white-box reprogramming (seed 0, frequency label mapping)", "",
             f"Machine: {report['machine']}. Black-box: q = {report['directions']} directions, smoothing "
             f"{report['smoothing']}, lr {ZO_LR}, uniform-on-sphere estimator; one run per budget. Cost at an assumed "
             f"USD {price:.2f} per 1000 queries (BAR reports about USD 20 per task on a real paid API).", "",
             "![accuracy vs queries](blackbox.png)", "",
             "| dataset | train / test | majority | white-box acc | budget | queries used | black-box acc | "
             "queries/s | cost USD |", "|---|---|---|---|---|---|---|---|---|"]
    for name, entry in report["datasets"].items():
        for i, run in enumerate(entry["black_box"]):
            head = (f"{name} | {entry['n_train']} / {entry['n_test']} | {entry['majority_rate']:.3f} | "
                    f"{entry['white_box']['test_accuracy']:.3f}") if i == 0 else " | | |"
            lines.append(f"| {head} | {run['query_budget']} | {run['queries_used']} | {run['test_accuracy']:.3f} | "
                         f"{run['queries_per_second']:.0f} | {run['queries_used'] / 1000 * price:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", default="1000,3000,10000,30000")
    parser.add_argument("--price-per-1000", type=float, default=1.0, help="assumed USD per 1000 queries")
    args = parser.parse_args()
    import torch

    from xmodal.training.gradients import ZerothOrder

    torch.set_num_threads(1)
    budgets = [int(b) for b in args.budgets.split(",")]
    defaults = ZerothOrder(budget=1)
    report = {"budgets": budgets, "price_per_1000": args.price_per_1000, "directions": defaults.directions,
              "smoothing": defaults.smoothing, "machine": f"{platform.machine()}, torch {torch.__version__}, 1 thread",
              "datasets": {}}
    for name in UCR_SETS:
        report["datasets"][name] = series_runs(name, budgets)
        print(name, json.dumps(report["datasets"][name]), file=sys.stderr)
    report["datasets"]["german_credit"] = table_runs(budgets)
    plot(report, RESULTS / "blackbox.png")
    write_results("blackbox", report, markdown(report))


if __name__ == "__main__":
    main()
