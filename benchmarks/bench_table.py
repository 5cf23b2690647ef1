"""Tables: the table presets against classical baselines, in one run.

    OMP_NUM_THREADS=1 python benchmarks/bench_table.py [--seeds 0,1,2] [--presets best]

German credit (UCI) and the credit-card fraud sample (ULB), a stratified 80/20 train/test
split per seed (the split `xmodal fit table` makes). Models: each table preset of
xmodal.presets (TableClassifier); the same preset on a randomly initialised copy of its
source (a control: does pretraining help?); logistic regression (standardised numeric +
one-hot categorical) and HistGradientBoostingClassifier (xmodal.baselines.table). Metrics:
test accuracy, ROC-AUC, PR-AUC (average precision of the minority class: "bad" credit,
fraud) and fit time. Writes benchmarks/results/table.{json,md}.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
from results_io import write_results

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TABULAR = REPO.parent / "shared" / "data" / "tabular"
DATASETS = {
    "german_credit": (TABULAR / "german_credit_uci", None),
    "creditcard_fraud_sample": (TABULAR / "creditcard_fraud_ulb_sample" / "creditcard_sample.csv", "Class"),
}
TEST_SIZE = 0.2  # as `xmodal fit table`
METRICS = ("test_accuracy", "test_roc_auc", "test_pr_auc", "fit_seconds")


def scores(train, test, probabilities: np.ndarray, seconds: float) -> dict:
    from xmodal.metrics import classification_scores, minority_pr_auc

    classes = np.unique(train.labels)
    result = classification_scores(test.labels, probabilities, classes)
    return {"test_accuracy": result["accuracy"], "test_roc_auc": result["roc_auc"],
            "test_pr_auc": minority_pr_auc(test.labels, probabilities, classes).get("test_pr_auc"),
            "fit_seconds": seconds}


def random_source_classifier(preset: str, seed: int):
    """The preset's TableClassifier on a randomly initialised copy of its source."""
    import torch

    from xmodal.estimators.table import TableClassifier

    class RandomSource(TableClassifier):
        def _load_source(self):
            source = super()._load_source()
            torch.manual_seed(seed)
            for module in source.modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
            return source.requires_grad_(False)

    return RandomSource(preset, random_state=seed)


def run_seed(data, seed: int, presets: list[str]) -> dict:
    from xmodal.baselines import fit_predict
    from xmodal.data.tables import split_table
    from xmodal.estimators.table import TableClassifier

    train, test = split_table(data, TEST_SIZE, seed)
    results = {}
    for name, label in (("logistic", "logistic regression"), ("hgb", "hist gradient boosting")):
        start = time.perf_counter()
        probabilities = fit_predict("table", name, train.features, train.labels, test.features, seed)
        results[label] = scores(train, test, probabilities, time.perf_counter() - start)
    for preset in presets:
        for label, model in ((f"xmodal preset {preset}", TableClassifier(preset, random_state=seed)),
                             (f"preset {preset}, random-init source (control)", random_source_classifier(preset, seed))):
            start = time.perf_counter()
            model.fit(train.features, train.labels)
            seconds = time.perf_counter() - start
            results[label] = scores(train, test, model.predict_proba(test.features), seconds)
            results[label]["reprogramming_kept"] = model.fit_result_.reprogramming_kept
    return results


def markdown(report: dict) -> str:
    lines = [f"# Tables: presets against baselines (seeds {report['seeds']}, test split {TEST_SIZE:.0%}, stratified)",
             "", f"Machine: {report['machine']}. Command: `{report['command']}`. PR-AUC = average precision of the "
             "minority class. Fit seconds include reading the frozen source's features.", ""]
    for dataset, entry in report["datasets"].items():
        lines += [f"## {dataset} ({entry['n_rows']} rows, {entry['n_columns']} columns, "
                  f"majority rate {entry['majority_rate']:.3f})", "",
                  "| model | test accuracy | ROC-AUC | PR-AUC | fit s |", "|---|---|---|---|---|"]
        for model, summary in entry["models"].items():
            cells = [f"{summary[k][0]:.3f} ± {summary[k][1]:.3f}" for k in METRICS[:3]]
            lines.append(f"| {model} | {' | '.join(cells)} | {summary['fit_seconds'][0]:.1f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--presets", default="best", help="comma-separated table presets of xmodal.presets")
    args = parser.parse_args()
    import torch

    from xmodal.data.tables import load_table

    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    report = {"seeds": seeds, "test_size": TEST_SIZE, "command": " ".join(["python benchmarks/bench_table.py", *sys.argv[1:]]),
              "machine": f"{platform.machine()}, torch {torch.__version__}, 1 thread", "datasets": {}}
    for dataset, (path, label_column) in DATASETS.items():
        data = load_table(path, label_column)
        per_model: dict[str, list[dict]] = {}
        for seed in seeds:
            results = run_seed(data, seed, args.presets.split(","))
            for model, metrics in results.items():
                per_model.setdefault(model, []).append(metrics)
            print(f"{dataset} seed {seed}: " + ", ".join(f"{m} AUC {r['test_roc_auc']:.3f} ({r['fit_seconds']:.0f} s)"
                                                         for m, r in results.items()), file=sys.stderr, flush=True)
        report["datasets"][dataset] = {
            "n_rows": len(data.labels), "n_columns": data.features.shape[1],
            "majority_rate": float(max(np.mean(data.labels == c) for c in data.classes)),
            "models": {m: {k: [float(np.mean([r[k] for r in runs])), float(np.std([r[k] for r in runs]))]
                           for k in METRICS} for m, runs in per_model.items()},
            "runs": per_model,
        }
    write_results("table", report, markdown(report))


if __name__ == "__main__":
    main()
