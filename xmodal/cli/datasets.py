"""`xmodal datasets`: the UCR datasets known by name (bundled with sktime, or in --data-dir),
classification sets apart from regression sets (a continuous target, which `fit` refuses)."""

from __future__ import annotations

import argparse
from pathlib import Path

from xmodal.errors import XmodalError


def add_parser(commands) -> None:
    datasets = commands.add_parser("datasets", help="UCR datasets known by name (for `xmodal fit series --dataset`)")
    datasets.add_argument("--data-dir", help="also list the UCR-layout datasets in this folder")
    datasets.set_defaults(run=run_datasets)


def run_datasets(args: argparse.Namespace) -> None:
    from xmodal.data.ucr import bundled_names, folder_names, sktime_data_dir

    _print_kinds("bundled with sktime", sktime_data_dir(), bundled_names())
    if args.data_dir:
        if not Path(args.data_dir).is_dir():
            raise XmodalError(f"--data-dir {args.data_dir} is not a folder")
        _print_kinds(f"in {args.data_dir}", Path(args.data_dir), folder_names(args.data_dir))


def _print_kinds(where: str, folder: Path, names: list[str]) -> None:
    """One line of classification sets (what `fit series` takes), one of regression sets, one of
    sets whose labels cannot be read: each only when it has a set."""
    kinds = {name: target_kind(folder / name, name) for name in names}
    for kind, note in (("classification", ""), ("regression", ", a continuous target that `fit series` refuses"),
                       ("unreadable", ", labels not readable as a UCR .tsv file")):
        chosen = [name for name in names if kinds[name] == kind]
        if chosen:
            print(f"{where}, {kind}{note}: " + ", ".join(chosen))


def target_kind(folder: Path, name: str) -> str:
    """classification or regression: a .ts file says so in its header (@targetLabel marks a
    regression set); a .tsv file's labels are judged as `fit` judges them."""
    from xmodal.data.labels import continuous_target
    from xmodal.data.ucr import parse_labels

    ts = folder / f"{name}_TRAIN.ts"
    if ts.is_file():
        with open(ts, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                words = line.strip().lower().split()
                if words[:2] == ["@targetlabel", "true"]:
                    return "regression"
                if words[:1] == ["@data"]:
                    break
        return "classification"
    import pandas as pd

    try:
        labels = pd.read_csv(folder / f"{name}_TRAIN.tsv", sep="\t", header=None, usecols=[0], dtype=str).iloc[:, 0]
    except (ValueError, OSError):  # pandas' parser errors are ValueErrors; `fit` names what is wrong
        return "unreadable"
    return "regression" if continuous_target(parse_labels(labels.tolist())) else "classification"
