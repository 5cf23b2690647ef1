"""What every task shares: the records of a fit and of a scored run, the argparse types
and path checks of the data flags, the flags of evaluate / predict / align, and the Task
base that each task module fills in. Imports no task module (no cycle)."""

from __future__ import annotations

import argparse
import difflib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xmodal.errors import DataError

DEFAULT_TEST_SIZE = 0.2  # share held out for testing when a sequence or table dataset has no test split

# Flags of evaluate / predict / align that only some tasks take (each task names its own
# in Task.own_flags; the others are refused, never ignored). Defined by add_run_data_flags.
TASK_RUN_FLAGS = ("--data-dir", "--resample", "--impute", "--weights", "--label-column")


@dataclass
class Split:
    """The data of one fit. `record` is kept in the run (reprogrammer.json metadata "data")."""

    name: str
    X_train: object
    y_train: np.ndarray
    X_test: object
    y_test: np.ndarray
    record: dict
    summary: str  # one line: what is fitted on
    validation: tuple | None = None  # (X, y) given by the data (sequences), else carved by the estimator
    train_ids: list[str] | None = None
    test_ids: list[str] | None = None
    validation_ids: list[str] | None = None
    extras: dict = field(default_factory=dict)  # task-specific metrics.json entries
    sources: dict = field(default_factory=dict)  # part name -> the file(s) it was read from, for error lines

    def parts(self) -> list[Part]:
        """train, then the validation part the data gives (if any), then test."""
        given = [("train", self.X_train, self.y_train, self.train_ids)]
        if self.validation is not None:
            given.append(("validation", *self.validation, self.validation_ids))
        given.append(("test", self.X_test, self.y_test, self.test_ids))
        path = self.record.get("path") or self.name
        return [Part(name, self.sources.get(name, path), X, np.asarray(y), ids) for name, X, y, ids in given]


@dataclass
class Part:
    """One part of a fit's data, as the checks before training name it."""

    name: str  # train, validation or test
    source: str  # the file(s) it was read from
    X: object
    y: np.ndarray
    ids: list[str] | None

    @property
    def where(self) -> str:
        return f"the {self.name} split ({self.source})"


@dataclass
class Records:
    """Samples that `evaluate` / `predict` / `align` score: labelled (a dataset split) or not (--input)."""

    name: str
    ids: list[str]
    X: object
    y: np.ndarray | None = None


def absolute(path: str) -> str:
    return str(Path(path).expanduser().resolve())


def existing_path(text: str, what: str = "dataset") -> Path:
    """A path that exists, or a DataError with the closest names in its folder."""
    path = Path(text).expanduser()
    if path.exists():
        return path
    parent = path.parent if str(path.parent) else Path(".")
    hint = ""
    if parent.is_dir():
        names = [p.name for p in parent.iterdir() if not p.name.startswith(".")]
        close = difflib.get_close_matches(path.name, names, n=3, cutoff=0.6)
        if close:
            hint = "; did you mean " + " or ".join(repr(str(parent / name)) for name in close) + "?"
    raise DataError(f"{what} {text} not found{hint}")


def test_size(text: str) -> float:
    """argparse type of --test-size: a share in (0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"the test share must be in (0, 1), got {value:g}")
    return value


def add_test_size_flag(group, help_text: str) -> None:
    """--test-size of `fit sequence` and `fit table`, with the shared default."""
    group.add_argument("--test-size", type=test_size, default=DEFAULT_TEST_SIZE,
                       help=f"{help_text} (default {DEFAULT_TEST_SIZE:g})")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def own_dataset(run, args) -> bool:
    """Whether evaluate / predict / align score the dataset the run was fitted on."""
    if not args.dataset:
        return True
    recorded = run.data.get("path")
    given = absolute(args.dataset) if Path(args.dataset).expanduser().exists() else args.dataset
    return given in (recorded, run.dataset)


def check_labels(y, classes, name: str, dataset: str | None) -> None:
    unknown = sorted(set(np.asarray(y).tolist()) - set(np.asarray(classes).tolist()), key=str)
    if unknown:
        fitted = f" (fitted on {dataset})" if dataset else ""
        raise DataError(f"{name}: labels {unknown[:5]} were not seen by this run{fitted}, whose classes are "
                        f"{np.asarray(classes).tolist()}; evaluate it on data with those classes")


def _refuse(args, flags: tuple[str, ...], task: str) -> None:
    """Flags of evaluate / predict / align that the run's task does not take are refused, never ignored."""
    for flag in flags:
        value = getattr(args, flag.lstrip("-").replace("-", "_"), None)
        if value not in (None, False):
            raise DataError(f"{flag} does not apply to a {task} run")


def add_run_data_flags(parser: argparse.ArgumentParser) -> None:
    """--dataset and friends of evaluate / predict / align: each defaults to what the run recorded."""
    data = parser.add_argument_group("data (default: the dataset, folder and split recipe recorded in the run)")
    data.add_argument("--dataset", help="another dataset to score: a UCR name or folder (series), a CSV or FASTA "
                                        "folder (sequences), a CSV (tables)")
    data.add_argument("--data-dir", help="series: folder of UCR-layout datasets searched for the name")
    data.add_argument("--label-column", help="sequences and tables: the label column of --dataset")
    data.add_argument("--resample", action="store_true",
                      help="series: resample the run's own variable-length dataset linearly to the run's length "
                           "(as at fit time)")
    data.add_argument("--impute", action="store_true", help="series: fill missing values by linear interpolation")
    data.add_argument("--weights", help="series: explicit weights file for the source model")
    parser.add_argument("--trust-source", action="store_true",
                        help="load the run even if its source is not a registered name (an hf: name or a model "
                             "folder, which would load whatever that location holds); only for runs you trust")


class Task:
    """What a command needs to know about one task."""

    name: str
    own_flags: tuple[str, ...] = ()  # flags of TASK_RUN_FLAGS that this task takes

    # -- fit -----------------------------------------------------------------------------
    def add_fit_flags(self, parser: argparse.ArgumentParser) -> None:
        raise NotImplementedError

    def check_fit_args(self, args, settings: dict) -> None:
        """Refuse bad data options, or options the settings cannot take, before any data is read."""

    def load_fit(self, args, settings: dict) -> Split:
        raise NotImplementedError

    def check_split(self, split: Split, settings: dict) -> None:
        """The one check of `fit` before any training, on every part (train, validation, test):
        labels first, then the task's own values (tokens, lengths, missing values). A bad
        record so fails in seconds, in one line naming the split, its file, the value and the
        fix, instead of after minutes of training when the test split is first scored."""
        from xmodal.data.labels import check_class_labels, check_known_classes

        parts = split.parts()
        for part in parts:
            check_class_labels(part.y, part.where)
        for part in parts[1:]:
            check_known_classes(part.y, np.unique(parts[0].y), part.where)
        self.check_values(split, parts, settings)

    def check_values(self, split: Split, parts: list[Part], settings: dict) -> None:
        """The task's own checks of its samples (see check_split); the loaders check the rest."""

    def estimator(self, args, overrides: dict, split: Split):
        raise NotImplementedError

    def fit(self, estimator, split: Split) -> None:
        estimator.fit(self.model_input(split.X_train), split.y_train)

    def model_input(self, X):
        """The data as the estimator takes it."""
        return X

    def fit_extras(self, estimator, split: Split, probabilities: np.ndarray) -> dict:
        return dict(split.extras)

    def baseline_options(self, split: Split) -> dict:
        """Options of xmodal.baselines.fit_predict that the data decides (the sequences' alphabet)."""
        return {}

    # -- saved runs ----------------------------------------------------------------------
    def load_estimator(self, run, args):
        raise NotImplementedError

    def check_flags(self, args) -> None:
        _refuse(args, tuple(sorted(set(TASK_RUN_FLAGS) - set(self.own_flags))), self.name)

    def load_run(self, run, estimator, args, split: str) -> Records:
        raise NotImplementedError

    def read_inputs(self, run, estimator, args, path: str) -> Records:
        from xmodal.data.inputs import read_inputs

        ids, X = read_inputs(self.name, path, self.input_record(run, estimator))
        return self.check_inputs(run, estimator, args, Records(Path(path).name, list(ids), X))

    def iter_inputs(self, run, estimator, args, path: str, batch_size: int):
        """read_inputs a batch of at most batch_size records at a time (xmodal.data.inputs.iter_inputs)."""
        from xmodal.data.inputs import iter_inputs

        for ids, X in iter_inputs(self.name, path, self.input_record(run, estimator), batch_size):
            yield self.check_inputs(run, estimator, args, Records(Path(path).name, list(ids), X))

    def input_record(self, run, estimator) -> dict:
        """What xmodal.data.inputs.read_inputs reads of the run."""
        return {**run.metadata, **run.data}

    def check_inputs(self, run, estimator, args, records: Records) -> Records:
        return records

    def dataset_argument(self, run, args) -> str:
        """--dataset, or the dataset the run recorded."""
        if args.dataset:
            return args.dataset
        recorded = run.data.get("path") or run.dataset
        if not recorded:
            raise DataError(f"{run.folder} does not record its dataset (saved from Python or by an older xmodal); "
                            "pass --dataset")
        return recorded

    def recorded(self, run, args, key: str, given):
        """A data option: given on the command line, else the run's (for its own dataset only)."""
        if given is not None:
            return given
        return run.data.get(key) if own_dataset(run, args) else None
