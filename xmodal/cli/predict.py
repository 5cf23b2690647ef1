"""`xmodal predict RUN --csv OUT.csv`: a saved run's predictions, written as CSV.

    xmodal predict runs/gunpoint --input new_series.tsv --csv predictions.csv   # new, unlabelled data
    xmodal predict runs/gunpoint --split train --csv predictions.csv            # a split of the run's dataset

--input reads new data of the run's task (series: .tsv / .ts / .csv / .npy; sequences:
FASTA or CSV; tables: CSV rows with the run's columns). The CSV has one row per sample:
id, (label, for a dataset split,) prediction, p_<class> for every class. An existing
CSV is never replaced without --overwrite.

--input is read, scored and written a batch at a time (xmodal.data.inputs.iter_inputs: series
files are streamed), so 100 000 series need the memory of one batch; a progress bar shows on
a terminal. The CSV appears whole when the last batch is written (xmodal.atomic), never half.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from xmodal.atomic import atomic_write
from xmodal.cli.arguments import add_device_flag
from xmodal.cli.tasks import add_run_data_flags
from xmodal.data.inputs import BATCH_SIZE
from xmodal.errors import DataError


def add_parser(commands) -> None:
    predict = commands.add_parser("predict", help="write a saved run's predictions for new data or a split to CSV",
                                  description="Predict with a saved run (any task): new, unlabelled data with "
                                              "--input, or a split of a labelled dataset.")
    predict.add_argument("run_dir", metavar="RUN", help="a run folder written by `xmodal fit`")
    predict.add_argument("--input", metavar="FILE",
                         help="new data to score: series as .tsv/.ts/.csv/.npy, sequences as FASTA or CSV, table rows "
                              "as CSV (instead of --dataset)")
    add_run_data_flags(predict)
    add_device_flag(predict)
    predict.add_argument("--split", choices=("test", "train"),
                         help="split of the dataset to score (default test; not with --input)")
    predict.add_argument("--csv", required=True, metavar="OUT.csv",
                         help="CSV file to write (refused when it exists, unless --overwrite)")
    predict.add_argument("--overwrite", action="store_true", help="replace an existing --csv file")
    predict.set_defaults(run=run_predict)


def check_csv(text: str, overwrite: bool) -> Path:
    """The --csv file, refused (before any work) when it exists, unless `overwrite`."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise DataError(f"--csv {text} is a folder, not a file; give a file for the predictions")
    if path.exists() and not overwrite:
        raise DataError(f"--csv {text} already exists; pass --overwrite to replace it, or give another file")
    return path


def run_predict(args: argparse.Namespace) -> None:
    from xmodal.cli.evaluate import load

    if args.input is not None:
        given = [flag for flag, value in (("--dataset", args.dataset), ("--split", args.split),
                                          ("--label-column", args.label_column), ("--data-dir", args.data_dir),
                                          ("--resample", args.resample), ("--impute", args.impute))
                 if value not in (None, False)]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise DataError(f"{', '.join(given)} {verb} to a dataset split, and --input scores a file of new data as "
                            "it is (series of the run's length, without gaps): give one or the other")
    out = check_csv(args.csv, args.overwrite)
    run, task, estimator = load(args)
    if args.input is not None:
        batches = task.iter_inputs(run, estimator, args, args.input, BATCH_SIZE)
    else:  # a split of the run's dataset, read whole as evaluate reads it
        batches = iter([task.load_run(run, estimator, args, args.split or "test")])
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = {}
    # written under a temporary name and moved into place at the end: a failure or Ctrl-C in
    # the middle of a long input leaves no half CSV (and an --overwrite'n one untouched)
    atomic_write(out, lambda temporary: summary.update(_write_predictions(temporary, batches, task, estimator)))
    correct = summary["correct"]
    accuracy = "" if correct is None else f" (accuracy {correct / summary['n']:.4f})"
    print(f"wrote {summary['n']} predictions for {summary['name']} to {out}{accuracy}")


def _write_predictions(path: str, batches, task, estimator) -> dict:
    """Score and write one batch at a time, with a progress bar on a terminal: the memory of a
    batch, whatever the input's length. {"name", "n", "correct"} (correct: None without labels)."""
    from tqdm.auto import tqdm

    classes = estimator.classes_
    summary = {"name": None, "n": 0, "correct": None}
    with open(path, "w", newline="") as handle, tqdm(desc="predict", unit=" records", disable=None,
                                                      leave=False) as bar:
        writer = csv.writer(handle)
        for records in batches:
            probabilities = estimator.predict_proba(task.model_input(records.X))
            predicted = classes[np.argmax(probabilities, axis=1)]
            labelled = records.y is not None
            if summary["name"] is None:
                summary["name"] = records.name
                writer.writerow(["id"] + (["label"] if labelled else []) + ["prediction"] + [f"p_{c}" for c in classes])
            for i, (record, guess, row) in enumerate(zip(records.ids, predicted, probabilities)):
                label = [records.y[i]] if labelled else []
                writer.writerow([record, *label, guess] + [f"{p:.6f}" for p in row])
            if labelled:
                summary["correct"] = (summary["correct"] or 0) + int(np.sum(predicted == np.asarray(records.y)))
            summary["n"] += len(predicted)
            bar.update(len(predicted))
    return summary
