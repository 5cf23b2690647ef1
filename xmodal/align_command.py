"""`xmodal align RUN_DIR --source-samples PATH`: the Theorem-1 terms of a saved run.

Loads the saved reprogrammer and its dataset (the test split by default),
reads the source samples, and reports W1 before and after training, the
source and target risks and the bound: a table on stdout, optionally JSON
and a PNG.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from xmodal.errors import DataError


def format_table(report: dict) -> str:
    def number(value):
        return "n/a" if value is None else f"{value:.4f}"

    def interval(value):
        return "" if value is None else f"  (95 % CI {value[0]:.4f} to {value[1]:.4f})"

    rows = [
        ("method", report["method"]),
        ("representation", f"{report['representation']} (K = {report['num_source_classes']} source classes)"),
        ("samples", f"{report['n_source']} source, {report['n_target']} target"),
        ("source risk", number(report["source_risk"])),
    ]
    stages = (("before (theta = 0)", "w1_before", "slack_before", "bound_before", "target_risk_before",
               "bound_holds_before"),
              ("after training", "w1_after", "slack_after", "bound", "target_risk", "bound_holds"))
    for stage, w1, slack, bound, risk, holds in stages:
        verdict = report[holds]
        rows += [
            (f"{stage}: W1", number(report[w1]) + interval(report[f"{w1}_interval"])),
            (f"{stage}: 2 sqrt(K) W1", number(report[slack])),
            (f"{stage}: bound", number(report[bound])),
            (f"{stage}: target risk", number(report[risk])),
            (f"{stage}: bound holds", "n/a" if verdict is None else ("yes" if verdict else "NO")),
        ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _target_data(args, model, document):
    from xmodal.data import load_ucr

    if document["bridge"]["kind"] != "series_to_audio":
        raise DataError(f"align reads the target data of series runs; {args.run_dir} is a "
                        f"{document['bridge']['kind']} run")
    name = args.dataset or document.get("metadata", {}).get("dataset")
    if not name:
        raise DataError(f"{args.run_dir} does not record its dataset; pass --dataset")
    data = load_ucr(name, args.data_dir, unequal="resample" if args.resample else "error",
                    missing="interpolate" if args.impute else "error", length=model.bridge.config.series_length)
    x, y = (data.x_test, data.y_test) if args.split == "test" else (data.x_train, data.y_train)
    classes = list(model.classes)
    unknown = sorted({label for label in y.tolist() if label not in classes}, key=str)
    if unknown:
        raise DataError(f"labels {unknown[:5]} of {name} were not seen by this run (classes {classes}); "
                        "align the run with the dataset it was fitted on")
    return name, torch.tensor(x, dtype=torch.float32), np.array([classes.index(label) for label in y.tolist()])


def _source_points(samples, source, representation: str) -> np.ndarray:
    from xmodal.risk_bound import source_representations

    if samples.representations is not None:
        return samples.representations
    return source_representations(source, samples.inputs, representation)


def run(args) -> None:
    from xmodal.alignment_plot import plot_alignment
    from xmodal.persistence import load_reprogrammer
    from xmodal.risk_bound import measure_alignment, source_risk
    from xmodal.source_samples import read_source_samples

    model, document = load_reprogrammer(args.run_dir, weights_path=args.weights)
    name, x, labels = _target_data(args, model, document)
    samples = read_source_samples(args.source_samples, model.source)
    risk = None if samples.labels is None else source_risk(model.source, samples.inputs, samples.labels)
    if samples.labels is None:
        print(f"note: no source risk, so no bound: {samples.unlabelled_reason}", file=sys.stderr)
    seed = document.get("metadata", {}).get("params", {}).get("random_state") or 0
    measurement = measure_alignment(model, x, labels, _source_points(samples, model.source, args.representation),
                                    risk, args.representation, args.method, seed=int(seed))
    report = {"run_dir": str(args.run_dir), "dataset": name, "split": args.split,
              "source_samples": samples.description, **measurement.to_dict()}
    print(f"{name} ({args.split} split) against {samples.description}")
    print(format_table(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.plot:
        plot_alignment(measurement, args.plot, f"{name}: source {args.representation} vs reprogrammed target")
        print(f"wrote {args.plot}")
