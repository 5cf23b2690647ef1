"""Each UCR training split cut into stratified folds, written as UCR datasets: methods are compared
on training data with the benchmark itself, the test splits never read.

    python benchmarks/ucr_folds.py [FOLDER ...] [--folds 5] [--seed 0] [--out runs/ucr_folds/k5-seed0]
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/ucr.py runs/ucr_folds/k5-seed0 --seeds 1 \\
        --name ucr_select --methods best,late-fusion-clipped
    python benchmarks/ucr_folds.py --score benchmarks/results/ucr_select_runs.jsonl

Fold i of the dataset Name becomes the UCR dataset Name-fold<i>: the other folds' series are its
training split, fold i's its test split, each line copied from Name_TRAIN.tsv. The folds are those
of docs/experiments.md's nested cross-validation (from 0.15 on): StratifiedKFold over the training
labels, k = min(--folds, the smallest class's count), shuffled with --seed; a set whose smallest
class has one training series has none and is left out, named. A rerun replaces a set's folds.
--score pools each set's folds into its out-of-fold accuracy and averages the sets, per method
(ucr.py's own tables weigh every fold alike). The benchmark keys its results by dataset name: score
each cut (--folds, --seed) under its own --name. FOLDER: folders of UCR-layout datasets (default
../shared/data/ucr); only their training files are read.
"""

from __future__ import annotations

import argparse
import re
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold
from ucr import DEFAULT_DATA, REPO, find_datasets

from xmodal.atomic import atomic_write
from xmodal.data.ucr import parse_labels, read_split
from xmodal.errors import DataError
from xmodal.sweep import read_results

FOLDS = 5
SEED = 0
FOLD_NAME = re.compile(r"(?P<set>.+)-fold(?P<fold>\d+)")


def training_file(folder: Path, name: str) -> Path:
    """<Name>_TRAIN.tsv, or a DataError naming the fix (the folds are written as tab-separated lines)."""
    tsv = folder / f"{name}_TRAIN.tsv"
    if not tsv.is_file():
        raise DataError(f"{folder}: no {tsv.name}; only UCR tab-separated training files are cut into folds "
                        "(write the set as label, then its values, tab-separated, one series a line)")
    return tsv


def fold_datasets(train_file: Path, out: Path, folds: int = FOLDS, seed: int = SEED) -> list[Path]:
    """Write out/<Name>-fold<i>/<Name>-fold<i>_TRAIN.tsv and _TEST.tsv for every fold of one training split;
    the folders written (none where the smallest class has one series). Folds of an earlier cut that this
    one does not write are removed."""
    name = train_file.name.removesuffix("_TRAIN.tsv")
    _, labels = read_split(train_file)  # as load_ucr reads them: refused where it refuses
    lines = [line.rstrip("\r") for line in train_file.read_text(encoding="utf-8").split("\n")]
    lines = [line for line in lines if line.strip()]  # pandas skips blank lines too
    if len(lines) != len(labels):
        raise DataError(f"{train_file}: {len(lines)} non-blank lines but {len(labels)} series; remove the lines "
                        "that hold no series")
    _, y = np.unique(parse_labels(labels), return_inverse=True)  # the class codes load_ucr's labels give
    k = min(folds, int(np.bincount(y).min()))
    written = []
    if k >= 2:
        for i, (rest, held_out) in enumerate(StratifiedKFold(k, shuffle=True, random_state=seed).split(y, y)):
            folder = out / f"{name}-fold{i}"
            folder.mkdir(parents=True, exist_ok=True)
            for split, rows in (("TRAIN", rest), ("TEST", held_out)):
                atomic_write(folder / f"{folder.name}_{split}.tsv", "".join(lines[j] + "\n" for j in rows))
            written.append(folder)
    for old in out.glob(f"{name}-fold*"):
        match = FOLD_NAME.fullmatch(old.name)
        if match and match["set"] == name and old not in written:
            shutil.rmtree(old)
    return written


def out_of_fold_accuracy(runs: list[dict]) -> dict[str, tuple[float, int]]:
    """method -> (mean over sets of each set's pooled out-of-fold accuracy, sets), from ucr.py's runs on fold
    datasets; a set counts where the method has every fold that any method has of it (each seed pooled)."""
    correct, seen = defaultdict(float), defaultdict(int)
    set_folds, method_folds = defaultdict(set), defaultdict(set)
    for run in runs:
        match = FOLD_NAME.fullmatch(run["dataset"])
        if match is None:
            raise DataError(f"{run['dataset']} is not a fold dataset (<Name>-fold<i>); score the runs made on "
                            "ucr_folds.py's output")
        key = run["method"], match["set"]
        correct[key] += run["accuracy"] * run["n_test"]
        seen[key] += run["n_test"]
        set_folds[match["set"]].add(match["fold"])
        method_folds[key].add(match["fold"])
    per_method = defaultdict(list)
    for (method, name), n in seen.items():
        if method_folds[method, name] == set_folds[name]:
            per_method[method].append(correct[method, name] / n)
    return {method: (float(np.mean(values)), len(values)) for method, values in per_method.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("folders", nargs="*", type=Path, help=f"UCR-layout folders (default {DEFAULT_DATA})")
    parser.add_argument("--folds", type=int, default=FOLDS, help=f"folds per training split, at most (default {FOLDS})")
    parser.add_argument("--seed", type=int, default=SEED, help=f"the folds' shuffle (default {SEED})")
    parser.add_argument("--out", type=Path,
                        help="where the fold datasets go (default runs/ucr_folds/k<FOLDS>-seed<SEED>)")
    parser.add_argument("--score", type=Path, metavar="RUNS", help="print each method's out-of-fold accuracy from "
                        "ucr.py's runs file on fold datasets, and cut nothing")
    args = parser.parse_args(argv)
    if args.score:
        if not args.score.is_file():
            parser.error(f"--score {args.score}: no such runs file (ucr.py writes "
                         "benchmarks/results/<name>_runs.jsonl)")
        try:
            scores = out_of_fold_accuracy(read_results(args.score))
        except DataError as exc:
            parser.error(str(exc))
        for method, (accuracy, sets) in sorted(scores.items(), key=lambda item: -item[1][0]):
            print(f"{method}: {100 * accuracy:.2f} % out-of-fold accuracy, mean over {sets} sets")
        return
    if args.folds < 2:
        parser.error(f"--folds must be at least 2, got {args.folds}")
    out = args.out or REPO / "runs" / "ucr_folds" / f"k{args.folds}-seed{args.seed}"
    try:  # every training file found before any fold is written
        files = {name: training_file(Path(folder), name)
                 for name, folder in find_datasets(args.folders or [DEFAULT_DATA]).items()}
        cut = {name: fold_datasets(path, out, args.folds, args.seed) for name, path in files.items()}
    except DataError as exc:
        parser.error(str(exc))
    skipped = [name for name, folders in cut.items() if not folders]
    print(f"{sum(map(len, cut.values()))} fold datasets of {len(cut) - len(skipped)} training splits in {out}"
          + (f"; no folds (a class with one training series): {', '.join(skipped)}" if skipped else ""))


if __name__ == "__main__":
    main()
