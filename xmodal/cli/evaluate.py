"""`xmodal evaluate RUN`: accuracy, balanced accuracy, ROC-AUC and MCC of a saved run.

    xmodal evaluate runs/gunpoint                    # the run's own test split, rebuilt
    xmodal evaluate runs/gunpoint --split train
    xmodal evaluate runs/german --dataset other.csv --label-column credit

The task, the dataset, its folder and the split recipe (test share, seed, split kind) come
from the run; data that does not fit the run (series length, unseen classes, missing
columns, another alphabet) is refused in one line. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json

from xmodal.cli.arguments import add_device_flag
from xmodal.cli.tasks import add_run_data_flags


def add_parser(commands) -> None:
    evaluate = commands.add_parser("evaluate", help="scores of a saved run on its dataset's test (or train) split",
                                   description="Score a saved run (any task) on a labelled split; prints one JSON line.")
    evaluate.add_argument("run_dir", metavar="RUN", help="a run folder written by `xmodal fit`")
    add_run_data_flags(evaluate)
    add_device_flag(evaluate)
    evaluate.add_argument("--split", choices=("test", "train"), default="test", help="which split (default test)")
    evaluate.set_defaults(run=run_evaluate)


def load(args: argparse.Namespace):
    """(run, task, estimator) of args.run_dir, with the flags checked against the run's task."""
    from xmodal.cli.runs import read_run
    from xmodal.cli.tasks import TASKS

    run = read_run(args.run_dir)
    task = TASKS[run.task]
    task.check_flags(args)
    return run, task, task.load_estimator(run, args)


def run_evaluate(args: argparse.Namespace) -> None:
    from xmodal.metrics import classification_scores, minority_pr_auc

    run, task, estimator = load(args)
    records = task.load_run(run, estimator, args, args.split)
    probabilities = estimator.predict_proba(task.model_input(records.X))
    scores = classification_scores(records.y, probabilities, estimator.classes_)
    report = {"task": run.task, "dataset": records.name, "split": args.split, "n": len(records.y), **scores}
    if run.task == "table":
        report.update(minority_pr_auc(records.y, probabilities, estimator.classes_))
    print(json.dumps(report, default=lambda value: value.item() if hasattr(value, "item") else str(value)))
