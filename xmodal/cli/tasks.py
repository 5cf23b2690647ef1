"""Per-task data for the commands: what `fit` loads and splits, the estimator it builds,
what a run records about its data, and how `evaluate`, `predict` and `align` rebuild
that data (or read new inputs) and refuse data that does not fit the run.

    task = TASKS["table"]
    split = task.load_fit(args, settings)        # train / test (and validation) parts
    records = task.load_run(run, args, "test")   # the run's own test split, rebuilt

One class per task over a shared base; the commands never branch on the task.
"""

from __future__ import annotations

import argparse
import difflib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xmodal.errors import DataError


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


@dataclass
class Records:
    """Samples that `evaluate` / `predict` / `align` score: labelled (a dataset split) or not (--input)."""

    name: str
    ids: list[str]
    X: object
    y: np.ndarray | None = None


def _absolute(path: str) -> str:
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
    given = _absolute(args.dataset) if Path(args.dataset).expanduser().exists() else args.dataset
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


class Task:
    """What a command needs to know about one task."""

    name: str
    own_flags: tuple[str, ...] = ()  # flags of evaluate/predict/align that only this task takes

    # -- fit -----------------------------------------------------------------------------
    def add_fit_flags(self, parser: argparse.ArgumentParser) -> None:
        raise NotImplementedError

    def check_fit_args(self, args) -> None:
        """Refuse bad data options before any data is read."""

    def load_fit(self, args, settings: dict) -> Split:
        raise NotImplementedError

    def estimator(self, args, overrides: dict, split: Split):
        raise NotImplementedError

    def fit(self, estimator, split: Split) -> None:
        estimator.fit(self.model_input(split.X_train), split.y_train)

    def model_input(self, X):
        """The data as the estimator takes it."""
        return X

    def fit_extras(self, estimator, split: Split, probabilities: np.ndarray) -> dict:
        return dict(split.extras)

    def baseline_options(self, estimator) -> dict:
        return {}

    # -- saved runs ----------------------------------------------------------------------
    def load_estimator(self, run, args):
        raise NotImplementedError

    def check_flags(self, args) -> None:
        others = {flag for task in TASKS.values() if task is not self for flag in task.own_flags}
        _refuse(args, tuple(sorted(others - set(self.own_flags))), self.name)

    def load_run(self, run, estimator, args, split: str) -> Records:
        raise NotImplementedError

    def read_inputs(self, run, estimator, args, path: str) -> Records:
        from xmodal.data.inputs import read_inputs

        ids, X = read_inputs(self.name, path, self.input_record(run, estimator))
        return self.check_inputs(run, estimator, args, Records(Path(path).name, list(ids), X))

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


class SeriesTask(Task):
    name = "series"
    own_flags = ("--data-dir", "--resample", "--impute", "--weights")

    def add_fit_flags(self, parser):
        data = parser.add_argument_group("data")
        data.add_argument("--dataset", required=True,
                          help="UCR name (GunPoint, ...; see `xmodal datasets`), a UCR-layout folder or a _TRAIN "
                               ".tsv/.ts file; its own train/test split is used")
        data.add_argument("--data-dir", help="folder of UCR-layout datasets searched for the name before sktime's "
                                             "bundled sets")
        data.add_argument("--resample", action="store_true",
                          help="resample variable-length series linearly to the training length")
        data.add_argument("--impute", action="store_true", help="fill missing values by linear interpolation")
        data.add_argument("--weights", help="explicit weights file for the source model")
        search = parser.add_argument_group("hyper-parameter search")
        search.add_argument("--search", nargs="?", const="small", metavar="GRID",
                            help="choose settings on held-out parts of the training split from a grid of "
                                 "xmodal.training.search ('small' when no name is given, 'tiny' for a quick look), "
                                 "then refit the winner on the whole training split; needs waveform encoding "
                                 "(--preset v2s)")
        search.add_argument("--search-folds", type=positive_int, default=1, metavar="K",
                            help="1: one stratified held-out quarter (default); k > 1: stratified k-fold")

    def check_fit_args(self, args):
        if args.search is not None:
            from xmodal.settings import SETTINGS
            from xmodal.training.search import resolve_grid

            resolve_grid(args.search, tuple(SETTINGS["series"]))

    def _load(self, dataset, data_dir, resample, impute, length=None):
        from xmodal.data.ucr import load_ucr

        return load_ucr(dataset, data_dir, unequal="resample" if resample else "error",
                        missing="interpolate" if impute else "error", length=length)

    def load_fit(self, args, settings):
        data = self._load(args.dataset, args.data_dir, args.resample, args.impute)
        path = Path(args.dataset).expanduser()
        record = {"dataset": data.name, "path": _absolute(args.dataset) if path.exists() else args.dataset,
                  "data_dir": _absolute(args.data_dir) if args.data_dir else None, "resample": args.resample,
                  "impute": args.impute, "series_length": int(data.x_train.shape[1])}
        summary = (f"{data.name}: {len(data.x_train)} train / {len(data.x_test)} test series of length "
                   f"{data.x_train.shape[1]}, {len(data.classes)} classes")
        return Split(data.name, data.x_train, data.y_train, data.x_test, data.y_test, record, summary,
                     train_ids=[str(i) for i in range(len(data.x_train))],
                     extras={"series_length": int(data.x_train.shape[1])})

    def estimator(self, args, overrides, split):
        from xmodal.estimators.series import V2SClassifier

        return V2SClassifier(args.preset, **overrides, weights_path=args.weights, search=args.search,
                             search_folds=args.search_folds, random_state=args.seed, verbose=not args.quiet)

    def model_input(self, X):
        return np.asarray(X, dtype=np.float64)[:, None, :]

    def load_estimator(self, run, args):
        from xmodal.estimators.series import V2SClassifier

        return V2SClassifier.from_pretrained(run.folder, weights_path=args.weights)

    @staticmethod
    def length(estimator) -> int:
        return int(estimator.reprogrammer_.bridge.config.series_length)

    def load_run(self, run, estimator, args, split):
        dataset = self.dataset_argument(run, args)
        own = own_dataset(run, args)
        data_dir = args.data_dir or run.data.get("data_dir")  # another name is looked for in the same folder
        resample = args.resample or (own and bool(run.data.get("resample")))
        impute = args.impute or (own and bool(run.data.get("impute")))
        length = self.length(estimator)
        try:
            data = self._load(dataset, data_dir, resample, impute, length)
        except DataError as exc:
            if own or "length" not in str(exc):
                raise
            raise DataError(f"this run was fitted on {run.dataset or 'another dataset'}: {exc}") from None
        x, y = (data.x_test, data.y_test) if split == "test" else (data.x_train, data.y_train)
        check_labels(y, estimator.classes_, data.name, run.dataset)
        return Records(data.name, [str(i) for i in range(len(x))], x, y)

    def input_record(self, run, estimator):
        return {**super().input_record(run, estimator), "series_length": self.length(estimator)}

    def check_inputs(self, run, estimator, args, records):
        X = np.asarray(records.X, dtype=np.float64)
        if X.ndim == 3 and X.shape[1] == 1:
            X = X[:, 0, :]
        length = self.length(estimator)
        if X.ndim != 2 or X.shape[1] != length:
            raise DataError(f"{records.name}: expected series of length {length}, one per row; got an array of "
                            f"shape {X.shape}")
        records.X = X
        return records


class SequenceTask(Task):
    name = "sequence"
    own_flags = ("--label-column",)

    def add_fit_flags(self, parser):
        data = parser.add_argument_group("data")
        data.add_argument("--dataset", required=True,
                          help="a CSV with a sequence or smiles column and a label column, or a folder of FASTA "
                               "files <LABEL>.<SPLIT>.fa (AMP Scanner layout: tr, eval, te)")
        data.add_argument("--label-column", help="label column of a CSV (default: 'label', or the only other column)")
        data.add_argument("--split", choices=("stratified", "scaffold"), default="stratified",
                          help="the test split when the dataset has none: stratified (default), or by Bemis-Murcko "
                               "scaffold (SMILES; also carves the validation part by scaffold)")
        data.add_argument("--test-size", type=test_size, default=0.2,
                          help="share held out for testing when the dataset has no test split (default 0.2)")

    @staticmethod
    def _split(data, split: str, size: float, seed: int, val_fraction: float):
        from dataclasses import replace

        from xmodal.data.sequences import scaffold_split, with_test_split

        if data.test is not None or split == "stratified":
            return with_test_split(data, size, seed)
        if data.alphabet != "smiles":
            raise DataError("--split scaffold needs SMILES records (a smiles column or --alphabet smiles)")
        fractions = (1 - size - val_fraction, val_fraction, size)
        if fractions[0] <= 0:
            raise DataError(f"--test-size {size:g} plus val_fraction {val_fraction:g} leave no training data")
        train, validation, test = scaffold_split(data.train.sequences, fractions, seed)
        records = data.train
        return replace(data, train=records.subset(train), validation=records.subset(validation),
                       test=records.subset(test), split="scaffold")

    def load_fit(self, args, settings):
        from xmodal.data.sequences import load_sequence_dataset

        path = existing_path(args.dataset)
        data = load_sequence_dataset(path, args.label_column, settings["alphabet"])
        data = self._split(data, args.split, args.test_size, args.seed, settings["val_fraction"])
        record = {"dataset": data.name, "path": _absolute(args.dataset), "label_column": args.label_column,
                  "alphabet": data.alphabet, "split": args.split, "test_split": data.split, "test_size": args.test_size,
                  "seed": args.seed, "val_fraction": settings["val_fraction"]}
        validation = None if data.validation is None else (data.validation.sequences, data.validation.labels)
        summary = (f"{data.name}: {len(data.train)} train / {len(data.validation or [])} validation / "
                   f"{len(data.test)} test records ({data.alphabet}, test split {data.split})")
        extras = {"alphabet": data.alphabet, "test_split": data.split,
                  "dropped_missing_labels": data.dropped_missing_labels}
        return Split(data.name, data.train.sequences, data.train.labels, data.test.sequences, data.test.labels,
                     record, summary, validation, train_ids=list(data.train.ids), test_ids=list(data.test.ids),
                     validation_ids=None if data.validation is None else list(data.validation.ids), extras=extras)

    def estimator(self, args, overrides, split):
        from xmodal.estimators.sequence import SequenceClassifier

        overrides = {**overrides, "alphabet": split.record["alphabet"]}
        return SequenceClassifier(args.preset, **overrides, random_state=args.seed, verbose=not args.quiet)

    def fit(self, estimator, split):
        self._check_tokens(estimator.resolved_settings(), split)
        estimator.fit(split.X_train, split.y_train, split.validation, names=split.train_ids)

    @staticmethod
    def _check_tokens(settings: dict, split) -> None:
        """With unknown "error", a validation or test token the training records never hold
        is refused before the fit (the fitted vocabulary would refuse it after), naming the record."""
        from xmodal.data.tokenizers import make_tokenizer

        if settings["unknown"] != "error":
            return
        tokenizer = make_tokenizer(split.record["alphabet"], validate=settings["validate_smiles"])
        seen = {t for s, n in zip(split.X_train, split.train_ids) for t in tokenizer.tokenize(s, n)}
        parts = [("test", split.X_test, split.test_ids)]
        if split.validation is not None:
            parts.append(("validation", split.validation[0], split.validation_ids))
        for part, sequences, ids in parts:
            for i, sequence in enumerate(sequences):
                name = ids[i] if ids else f"{part} record {i}"
                unknown = sorted(set(tokenizer.tokenize(sequence, name)) - seen)
                if unknown:
                    raise DataError(f"{name}: unknown token {unknown[0]!r}: no training record holds it, so the "
                                    f"model has no embedding for it; clean the record, or map such tokens to <unk> "
                                    "with --unknown unk")

    def fit_extras(self, estimator, split, probabilities):
        return {**split.extras, "truncated_train": estimator.n_truncated_, "sparsity": estimator.sparsity_}

    def baseline_options(self, estimator):
        return {"alphabet": estimator.settings_["alphabet"]}

    def load_estimator(self, run, args):
        from xmodal.estimators.sequence import SequenceClassifier

        return SequenceClassifier.from_pretrained(run.folder)

    def load_run(self, run, estimator, args, split):
        from dataclasses import replace

        from xmodal.data.sequences import load_sequence_dataset

        alphabet = estimator.settings_["alphabet"] or run.data.get("alphabet") or "protein"
        path = existing_path(self.dataset_argument(run, args))
        label_column = self.recorded(run, args, "label_column", args.label_column)
        data = load_sequence_dataset(path, label_column)
        if (data.alphabet == "smiles") != (alphabet == "smiles"):
            raise DataError(f"{data.name} holds {data.alphabet} records but this run reads {alphabet} sequences; "
                            "give data in the run's alphabet")
        data = replace(data, alphabet=alphabet)
        data = self._split(data, run.data.get("split", "stratified"), run.data.get("test_size", 0.2),
                           int(run.data.get("seed", run.metadata.get("seed") or 0)),
                           run.data.get("val_fraction", estimator.settings_["val_fraction"]))
        records = data.test if split == "test" else data.train
        check_labels(records.labels, estimator.classes_, data.name, run.dataset)
        return Records(data.name, list(records.ids), list(records.sequences), records.labels)

    def check_inputs(self, run, estimator, args, records):
        from xmodal.estimators.sequence import as_sequences

        records.X = as_sequences(records.X, records.name)
        estimator.encode(records.X, records.ids)  # unknown tokens / too long: refused here, naming the record
        return records


class TableTask(Task):
    name = "table"
    own_flags = ("--label-column",)

    def add_fit_flags(self, parser):
        data = parser.add_argument_group("data")
        data.add_argument("--dataset", required=True,
                          help="a CSV file with a header row, or the UCI German credit folder (or its german.data)")
        data.add_argument("--label-column", help="label column of a CSV (required for a CSV)")
        data.add_argument("--test-size", type=test_size, default=0.2,
                          help="share of rows held out for testing, stratified and seeded (default 0.2)")

    def load_fit(self, args, settings):
        from xmodal.data.tables import load_table, split_table

        data = load_table(existing_path(args.dataset), args.label_column)
        train, test = split_table(data, args.test_size, args.seed)
        columns = [str(c) for c in data.features.columns]
        record = {"dataset": data.name, "path": _absolute(args.dataset), "label_column": args.label_column,
                  "test_size": args.test_size, "seed": args.seed, "columns": columns}
        summary = (f"{data.name}: {len(train.labels)} train / {len(test.labels)} test rows, {len(columns)} columns, "
                   f"{len(data.classes)} classes")
        return Split(data.name, train.features, train.labels, test.features, test.labels, record, summary,
                     train_ids=[str(i) for i in range(len(train.labels))], extras={"n_columns": len(columns)})

    def estimator(self, args, overrides, split):
        from xmodal.estimators.table import TableClassifier

        return TableClassifier(args.preset, **overrides, random_state=args.seed, verbose=not args.quiet)

    def fit_extras(self, estimator, split, probabilities):
        from xmodal.metrics import minority_pr_auc

        return {**split.extras, **minority_pr_auc(split.y_test, probabilities, estimator.classes_)}

    def load_estimator(self, run, args):
        from xmodal.estimators.table import TableClassifier

        return TableClassifier.from_pretrained(run.folder)

    @staticmethod
    def _columns(frame, estimator, name: str):
        columns = [str(c) for c in estimator.feature_names_in_]
        frame = frame.rename(columns=str)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DataError(f"{name} lacks columns {missing[:8]}{' ...' if len(missing) > 8 else ''} that this run "
                            f"was fitted on ({len(columns)} columns)")
        return frame[columns]

    def load_run(self, run, estimator, args, split):
        from xmodal.data.tables import load_table, split_table

        path = existing_path(self.dataset_argument(run, args))
        label_column = self.recorded(run, args, "label_column", args.label_column)
        data = load_table(path, label_column)
        train, test = split_table(data, run.data.get("test_size", 0.2),
                                  int(run.data.get("seed", run.metadata.get("seed") or 0)))
        part = test if split == "test" else train
        check_labels(part.labels, estimator.classes_, data.name, run.dataset)
        return Records(data.name, [str(i) for i in range(len(part.labels))],
                       self._columns(part.features, estimator, data.name), part.labels)

    def input_record(self, run, estimator):
        return {**super().input_record(run, estimator), "columns": [str(c) for c in estimator.feature_names_in_],
                "missing": estimator.settings_["missing"]}

    def check_inputs(self, run, estimator, args, records):
        import pandas as pd

        if not isinstance(records.X, pd.DataFrame):
            raise DataError(f"{records.name}: expected table rows with a header")
        records.X = self._columns(records.X, estimator, records.name)
        return records


TASKS: dict[str, Task] = {task.name: task for task in (SeriesTask(), SequenceTask(), TableTask())}

def add_run_data_flags(parser: argparse.ArgumentParser) -> None:
    """--dataset and friends of evaluate / predict / align: each defaults to what the run recorded."""
    data = parser.add_argument_group("data (default: the dataset, folder and split recipe recorded in the run)")
    data.add_argument("--dataset", help="another dataset to score: a UCR name or folder (series), a CSV or FASTA "
                                        "folder (sequences), a CSV (tables)")
    data.add_argument("--data-dir", help="series: folder of UCR-layout datasets searched for the name")
    data.add_argument("--label-column", help="sequences and tables: the label column of --dataset")
    data.add_argument("--resample", action="store_true",
                      help="series: resample series of another length linearly to the run's length")
    data.add_argument("--impute", action="store_true", help="series: fill missing values by linear interpolation")
    data.add_argument("--weights", help="series: explicit weights file for the source model")
