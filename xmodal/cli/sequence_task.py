"""`xmodal fit --task sequence`: peptides, proteins, DNA or molecules -> frozen language model.

    xmodal fit --task sequence --dataset ../shared/data/peptides/amp_scanner_v2_veltri2018 --out runs/amp
    xmodal fit --task sequence --dataset bbbp.csv --split scaffold

The dataset's own validation split (eval/val files) is used for model
selection when there is one; its own test split is reported when there is
one, else a seeded stratified (or, for SMILES, scaffold) split is made.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from xmodal.errors import XmodalError

# SequenceClassifier's defaults, copied so that building the parser does not import torch;
# tests/test_sequence_cli.py checks that they agree.
DEFAULTS = {"source": "minilm-l6", "epochs": 12, "lr": 0.003, "patience": 3, "sparsity": 200}


def add_sequence_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sequence task (--task sequence)")
    group.add_argument("--alphabet", choices=["protein", "dna", "smiles"],
                       help="token alphabet (default: smiles for a smiles column, else protein)")
    group.add_argument("--bridge-mode", choices=["sparse", "dense", "prompt"], default="sparse",
                       help="R2DL sparse theta (default), dense theta (ReprogBERT) or soft prompt (WARP)")
    group.add_argument("--init", choices=["spelled", "random"], default="spelled",
                       help="what theta codes at the start: each token's spelling as the LM reads it (default) "
                            "or random vectors (original R2DL)")
    group.add_argument("--head-init", choices=["probe", "random"], default="probe",
                       help="linear head at the start: a logistic-regression probe of the initial features "
                            "(default) or random weights")
    group.add_argument("--sparsity", type=int, default=DEFAULTS["sparsity"],
                       help=f"non-zeros per row of theta, k (default {DEFAULTS['sparsity']})")
    group.add_argument("--prompt-length", type=int, default=8, help="soft prompt tokens in prompt mode")
    group.add_argument("--truncation", choices=["error", "keep_start", "keep_end"], default="error",
                       help="records longer than the source fits: error (default) or keep the start/end")
    group.add_argument("--unknown", choices=["error", "unk"], default="error", help="unknown tokens: error or <unk>")
    group.add_argument("--split", choices=["stratified", "scaffold"], default="stratified",
                       help="test split when the dataset has none: stratified, or scaffold (SMILES, RDKit)")


# what `evaluate` / `predict` need to rebuild a run's own test split from the same dataset
SPLIT_SETTINGS = ("label_column", "split", "test_size", "val_fraction", "seed")


def _split(data, args):
    from xmodal.data.sequences import scaffold_split, with_test_split

    if data.test is not None or args.split == "stratified":
        return with_test_split(data, args.test_size, args.seed)
    if data.alphabet != "smiles":
        raise XmodalError("--split scaffold needs SMILES records (a smiles column or --alphabet smiles)")
    fractions = (1 - args.test_size - args.val_fraction, args.val_fraction, args.test_size)
    if fractions[0] <= 0:
        raise XmodalError("--test-size plus --val-fraction leave no training data")
    train, validation, test = scaffold_split(data.train.sequences, fractions, args.seed)
    records = data.train
    return replace(data, train=records.subset(train), validation=records.subset(validation),
                   test=records.subset(test), split="scaffold")


def fit_sequence(args) -> None:
    """Expects DEFAULTS filled in (cli does it)."""
    from cli import _write_json
    from xmodal.metrics import classification_scores
    from xmodal.data.sequences import load_sequence_dataset
    from xmodal.estimators.sequence import SequenceClassifier

    if args.weights:
        raise XmodalError("--weights is for series sources; for a language model give its folder or hub id as --source")
    data = _split(load_sequence_dataset(args.dataset, args.label_column, args.alphabet), args)
    classifier = SequenceClassifier(
        source=args.source, alphabet=data.alphabet, mode=args.bridge_mode, init=args.init, sparsity=args.sparsity,
        head_init=args.head_init,
        prompt_length=args.prompt_length, truncation=args.truncation, unknown=args.unknown,
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, val_fraction=args.val_fraction,
        patience=args.patience, random_state=args.seed, verbose=not args.quiet)
    validation = None if data.validation is None else (data.validation.sequences, data.validation.labels)
    print(f"fitting {data.name}: {len(data.train)} train / {len(data.validation or [])} validation / "
          f"{len(data.test)} test records ({data.alphabet}, test split {data.split}), source {args.source}, "
          f"bridge {args.bridge_mode}", file=sys.stderr)
    start = time.perf_counter()
    classifier.fit(data.train.sequences, data.train.labels, validation, names=data.train.ids)
    fit_seconds = time.perf_counter() - start
    test_truncated = classifier.encode(data.test.sequences, data.test.ids).truncated
    scores = classification_scores(data.test.labels, classifier.predict_proba(data.test.sequences), classifier.classes_)
    out = Path(args.out or f"runs/{data.name}")
    classifier.save_pretrained(out, {"dataset": data.name, "data_split": {key: getattr(args, key) for key in SPLIT_SETTINGS}
                                     | {"alphabet": data.alphabet}})
    result = classifier.fit_result_
    _, counts = np.unique(data.test.labels.astype(str), return_counts=True)
    metrics = {
        "dataset": data.name, "source": args.source, "n_train": len(data.train),
        "n_validation": len(data.validation or []), "n_test": len(data.test), "n_classes": len(classifier.classes_),
        "alphabet": data.alphabet, "test_split": data.split, "dropped_missing_labels": data.dropped_missing_labels,
        "val_accuracy": result.val_accuracy, "test_accuracy": scores["accuracy"], "test_roc_auc": scores["roc_auc"],
        "test_mcc": scores["mcc"], "fit_seconds": round(fit_seconds, 2), "seed": args.seed,
        "selection": result.selection, "n_fit": result.n_fit, "n_val": result.n_val,
        "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
        "majority_rate": float(counts.max() / counts.sum()),
        "truncated": {"train": classifier.n_truncated_, "test": test_truncated},
        "sparsity": classifier.sparsity_, "params": classifier.get_params(deep=False),
    }
    _write_json(out / "metrics.json", metrics)
    val = "n/a" if result.val_accuracy is None else f"{result.val_accuracy:.4f}"
    auc = "n/a" if scores["roc_auc"] is None else f"{scores['roc_auc']:.4f}"
    chosen = ("the probe start: no trained epoch beat it" if result.best_epoch == 0
              else f"epoch {result.best_epoch} of {result.epochs_run}")
    print(f"validation accuracy: {val}  ({chosen})")
    print(f"test accuracy: {scores['accuracy']:.4f}  ROC-AUC: {auc}  MCC: {scores['mcc']:.4f}  "
          f"({len(data.test)} records, fit {fit_seconds:.1f} s, truncated {classifier.n_truncated_} train / "
          f"{test_truncated} test)")
    if classifier.sparsity_.get("max_nonzeros_per_row") is not None:
        print(f"theta: at most {classifier.sparsity_['max_nonzeros_per_row']} non-zeros per row "
              f"(density {classifier.sparsity_['density']:.2e})")
    print(f"saved to {out}/ (reprogrammer.json, reprogrammer.safetensors, metrics.json)")


def is_sequence_run(run_dir) -> bool:
    from xmodal.persistence import read_document

    return read_document(run_dir).get("metadata", {}).get("estimator") == "SequenceClassifier"


def saved_sequence_run_and_split(args):
    """(saved classifier, dataset name, records of args.split) with the split the run was fitted on."""
    from argparse import Namespace

    from xmodal.persistence import read_document
    from xmodal.data.sequences import load_sequence_dataset
    from xmodal.estimators.sequence import SequenceClassifier

    if args.weights:
        raise XmodalError("--weights is for series sources; a sequence run reloads its language model by name")
    saved = read_document(args.run_dir)["metadata"].get("data_split")
    if saved is None:
        raise XmodalError(f"{args.run_dir} holds no split settings (saved from Python, or by an older xmodal); "
                          "score it in Python with SequenceClassifier.from_pretrained, or refit it with "
                          "`xmodal fit --task sequence`")
    classifier = SequenceClassifier.from_pretrained(args.run_dir)
    data = _split(load_sequence_dataset(args.dataset, saved["label_column"], saved["alphabet"]), Namespace(**saved))
    return classifier, data.name, data.test if args.split == "test" else data.train
