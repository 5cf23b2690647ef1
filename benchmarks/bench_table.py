"""Table-to-image reprogramming against classical baselines, in one run.

    python benchmarks/bench_table.py [--seeds 0,1,2] [--epochs 20]

German credit (UCI) and the credit-card fraud sample (ULB), stratified
train/test splits (test 25 %) for each seed. Models: the frozen image-style
BC-ResNet (bc-resnet-gsc35-image) reprogrammed white-box with a frequency
label mapping and with a linear head; logistic regression (standardised
numeric + one-hot categorical); HistGradientBoostingClassifier (native
categorical support). Metrics: test accuracy, ROC AUC and PR AUC (average
precision, positive class = the minority class: "bad" credit, fraud).
Writes benchmarks/results/table.{json,md}.
"""

from __future__ import annotations

import argparse
import platform
import sys
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
TEST_SIZE = 0.25


def baselines(split, seed: int) -> dict:
    """Logistic regression and gradient boosting on the same split."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    from xmodal.estimators.table import classification_metrics

    frame = split.train.features
    numeric = [c for c in frame.columns if frame[c].dtype == float]
    categorical = [c for c in frame.columns if c not in numeric]
    logistic = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), numeric),
                           ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)]),
        LogisticRegression(max_iter=2000))
    boosting = make_pipeline(
        ColumnTransformer([("num", "passthrough", numeric),
                           ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), categorical)]),
        HistGradientBoostingClassifier(categorical_features=list(range(len(numeric), len(frame.columns))),
                                       random_state=seed))
    y_train, y_test = split.targets(split.train), split.targets(split.test)
    results = {}
    for name, model in (("logistic regression", logistic), ("hist gradient boosting", boosting)):
        model.fit(frame, y_train)
        results[name] = classification_metrics(model.predict_proba(split.test.features), y_test, split)
    return results


def reprogrammed(split, source, seed: int, epochs: int) -> dict:
    from xmodal.estimators.table import TableOptions, fit_table
    from xmodal.training.loop import TrainConfig

    results = {}
    for mapping, label in (("frequency", "frequency label map"), ("linear", "linear head")):
        options = TableOptions(mapping=mapping, train=TrainConfig(epochs=epochs, patience=8, seed=seed, progress=False))
        _, metrics = fit_table(source, split, options)
        results[f"reprogrammed BC-ResNet ({label})"] = metrics
    return results


def summarise(runs: list[dict]) -> dict:
    keys = ("test_accuracy", "test_roc_auc", "test_pr_auc")
    return {k: [float(np.mean([r[k] for r in runs])), float(np.std([r[k] for r in runs]))] for k in keys}


def markdown(report: dict) -> str:
    lines = [f"# Table reprogramming benchmark (seeds {report['seeds']}, test split {TEST_SIZE:.0%}, stratified)", "",
             f"Machine: {report['machine']}. Source: {report['source']} (frozen). "
             f"Reprogramming: white-box, at most {report['epochs']} epochs, early stopping on a validation split "
             "of the training part. PR AUC = average precision of the minority class.", ""]
    for dataset, entry in report["datasets"].items():
        lines += [f"## {dataset} ({entry['n_rows']} rows, {entry['n_columns']} columns, "
                  f"majority rate {entry['majority_rate']:.3f}, positive class {entry['positive_class']!r})", "",
                  "| model | test accuracy | ROC AUC | PR AUC | fit s |", "|---|---|---|---|---|"]
        for model, summary in entry["models"].items():
            cells = [f"{summary[k][0]:.3f} ± {summary[k][1]:.3f}" for k in ("test_accuracy", "test_roc_auc", "test_pr_auc")]
            seconds = summary.get("fit_seconds")
            lines.append(f"| {model} | {' | '.join(cells)} | {'' if seconds is None else f'{seconds:.0f}'} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    import torch

    from adapters_modal import load_source
    from xmodal.data.tables import load_table
    from xmodal.estimators.table import TABLE_SOURCE, positive_class, split_table

    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    source = load_source(TABLE_SOURCE)
    report = {"seeds": seeds, "epochs": args.epochs, "source": TABLE_SOURCE, "test_size": TEST_SIZE,
              "machine": f"{platform.machine()}, torch {torch.__version__}, 1 thread", "datasets": {}}
    for dataset, (path, label_column) in DATASETS.items():
        data = load_table(path, label_column)
        per_model: dict[str, list[dict]] = {}
        for seed in seeds:
            split = split_table(data, TEST_SIZE, seed)
            results = {**baselines(split, seed), **reprogrammed(split, source, seed, args.epochs)}
            for model, metrics in results.items():
                per_model.setdefault(model, []).append(metrics)
            print(f"{dataset} seed {seed}: " + ", ".join(f"{m} {r['test_accuracy']:.3f}" for m, r in results.items()),
                  file=sys.stderr)
        models = {}
        for model, runs in per_model.items():
            models[model] = summarise(runs)
            if "fit_seconds" in runs[0]:
                models[model]["fit_seconds"] = float(np.mean([r["fit_seconds"] for r in runs]))
        report["datasets"][dataset] = {
            "n_rows": len(data.labels), "n_columns": data.features.shape[1], "positive_class": positive_class(split),
            "majority_rate": float(max(np.mean(data.labels == c) for c in data.classes)),
            "models": models, "runs": per_model,
        }
    write_results("table", report, markdown(report))


if __name__ == "__main__":
    main()
