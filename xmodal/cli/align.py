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
        return "" if value is None else f"  (95 % bootstrap CI of the subsampled W1: {value[0]:.4f} to {value[1]:.4f})"

    rows = [
        ("method", report["method"]),
        ("representation", f"{report['representation']} (K = {report['num_source_classes']} source classes)"),
        ("samples", f"{report['n_source']} source, {report['n_target']} target"),
        ("source risk", number(report["source_risk"])),
    ]
    stages = (("before training", "w1_before", "slack_before", "bound_before", "target_risk_before",
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


def _class_indices(labels, classes: list, name: str) -> np.ndarray:
    unknown = sorted({label for label in labels if label not in classes}, key=str)
    if unknown:
        raise DataError(f"labels {unknown[:5]} of {name} were not seen by this run (classes {classes}); "
                        "align the run with the dataset it was fitted on")
    return np.array([classes.index(label) for label in labels])


def _series_target(args, document):
    """(reprogrammer, dataset name, series, class indices, training data) of a series run."""
    from xmodal.data.ucr import load_ucr
    from xmodal.persistence import load_reprogrammer

    model, _ = load_reprogrammer(args.run_dir, weights_path=args.weights)
    name = args.dataset or document.get("metadata", {}).get("dataset")
    if not name:
        raise DataError(f"{args.run_dir} does not record its dataset; pass --dataset")
    data = load_ucr(name, args.data_dir, unequal="resample" if args.resample else "error",
                    missing="interpolate" if args.impute else "error", length=model.bridge.config.series_length)
    x, y = (data.x_test, data.y_test) if args.split == "test" else (data.x_train, data.y_train)
    classes = list(model.classes)
    fit_data = (torch.tensor(data.x_train, dtype=torch.float32), _class_indices(data.y_train.tolist(), classes, name))
    return model, name, torch.tensor(x, dtype=torch.float32), _class_indices(y.tolist(), classes, name), fit_data


def _sequence_target(args, document):
    """(reprogrammer, dataset name, token ids, class indices, None) of a sequence run (linear head only)."""
    from xmodal.data.sequences import load_sequence_dataset
    from xmodal.estimators.sequence import SequenceClassifier

    if not args.dataset:
        raise DataError("a sequence run needs --dataset PATH: the CSV or FASTA folder it was fitted on")
    classifier = SequenceClassifier.from_pretrained(args.run_dir)
    data = load_sequence_dataset(args.dataset, alphabet=classifier.alphabet)
    records = data.test if args.split == "test" else data.train
    if records is None:
        raise DataError(f"{args.dataset} has no fixed test split (the run drew its own); "
                        "align on its records with --split train")
    model = classifier.reprogrammer_
    return (model, data.name, classifier.encode(records.sequences, records.ids).ids,
            _class_indices(records.labels.tolist(), list(model.classes), data.name), None)


# bridge kind -> how to load a run of it with its target data
TARGETS = {"series_to_audio": _series_target, "tokens_to_embeddings": _sequence_target}


def _target(args):
    from xmodal.persistence import read_document

    document = read_document(args.run_dir)
    kind = document["bridge"].get("kind")
    if kind not in TARGETS:
        raise DataError(f"align reads the target data of series and sequence runs; {args.run_dir} is a {kind} run")
    return (*TARGETS[kind](args, document), document)


def _source_points(samples, source, representation: str) -> np.ndarray:
    from xmodal.risk_bound import source_representations

    if samples.representations is not None:
        return samples.representations
    return source_representations(source, samples.inputs, representation)


def run(args) -> None:
    from xmodal.plots import plot_alignment
    from xmodal.risk_bound import measure_alignment, source_risk
    from xmodal.data.source_samples import read_source_samples

    model, name, x, labels, fit_data, document = _target(args)
    if model.source.input_spec.modality == "text" and args.representation == "logits":
        raise DataError(f"{model.source.name} is a language model without classes, so it has no logits; "
                        "use --representation features")
    samples = read_source_samples(args.source_samples, model.source)
    risk = None if samples.labels is None else source_risk(model.source, samples.inputs, samples.labels)
    if samples.labels is None:
        print(f"note: no source risk, so no bound: {samples.unlabelled_reason}", file=sys.stderr)
    seed = document.get("metadata", {}).get("params", {}).get("random_state") or 0
    measurement = measure_alignment(model, x, labels, _source_points(samples, model.source, args.representation),
                                    risk, args.representation, args.method, seed=int(seed), fit_data=fit_data)
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
