"""The series task: a UCR dataset (name, folder or _TRAIN file) and its own train/test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xmodal.cli.tasks.base import (
    Records,
    Split,
    Task,
    absolute,
    check_labels,
    own_dataset,
    positive_int,
)
from xmodal.errors import DataError
from xmodal.settings import SEARCH_BACKENDS


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
        data.add_argument("--weights", help="explicit weights file for a single source model (a fused source "
                                            "finds each part's own)")
        search = parser.add_argument_group("hyper-parameter search")
        search.add_argument("--search", nargs="?", const="small", metavar="GRID",
                            help="choose settings on held-out parts of the training split from a grid of "
                                 "xmodal.training.search ('small' when no name is given, 'tiny' for a quick look), "
                                 "then refit the winner on the whole training split; needs waveform encoding "
                                 "(--preset v2s)")
        search.add_argument("--search-folds", type=positive_int, default=1, metavar="K",
                            help="1: one stratified held-out quarter (default); k > 1: stratified k-fold")
        search.add_argument("--search-backend", choices=SEARCH_BACKENDS, default="local",
                            help="local: the candidates one after another here (default); ray: one Ray Tune trial "
                                 "per candidate, on the cluster RAY_ADDRESS names or a local Ray (pip install "
                                 "'xmodal[sweep]')")

    def check_fit_args(self, args, settings):
        if args.search is None:
            return
        if settings["encoding"] != "waveform":
            raise DataError(f"--search places the series as waveform samples (copies, stretch, mask), and preset "
                            f"{args.preset} encodes them as {settings['encoding']!r}: search with --preset v2s")
        from xmodal.settings import SETTINGS
        from xmodal.training.search import resolve_grid

        resolve_grid(args.search, tuple(SETTINGS["series"]))

    @staticmethod
    def _load(dataset, data_dir, resample, impute, length=None):
        from xmodal.data.ucr import load_ucr

        return load_ucr(dataset, data_dir, unequal="resample" if resample else "error",
                        missing="interpolate" if impute else "error", length=length)

    def load_fit(self, args, settings):
        data = self._load(args.dataset, args.data_dir, args.resample, args.impute)
        path = Path(args.dataset).expanduser()
        record = {"dataset": data.name, "path": absolute(args.dataset) if path.exists() else args.dataset,
                  "data_dir": absolute(args.data_dir) if args.data_dir else None, "resample": args.resample,
                  "impute": args.impute, "series_length": int(data.x_train.shape[1])}
        summary = (f"{data.name}: {len(data.x_train)} train / {len(data.x_test)} test series of length "
                   f"{data.x_train.shape[1]}, {len(data.classes)} classes")
        return Split(data.name, data.x_train, data.y_train, data.x_test, data.y_test, record, summary,
                     train_ids=[str(i) for i in range(len(data.x_train))],
                     extras={"series_length": int(data.x_train.shape[1])},
                     sources={"train": data.train_file, "test": data.test_file})

    def estimator(self, args, overrides, split):
        from xmodal.estimators.series import V2SClassifier

        return V2SClassifier(args.preset, **overrides, weights_path=args.weights, search=args.search,
                             search_folds=args.search_folds, search_backend=args.search_backend,
                             random_state=args.seed, verbose=not args.quiet)

    def model_input(self, X):
        return np.asarray(X, dtype=np.float64)[:, None, :]

    def load_estimator(self, run, args):
        from xmodal.estimators.series import V2SClassifier

        return V2SClassifier.from_pretrained(run.folder, weights_path=args.weights, trust_source=args.trust_source,
                                            device=args.device)

    @staticmethod
    def length(estimator) -> int:
        return int(estimator.reprogrammer_.bridge.series_length)

    def load_run(self, run, estimator, args, split):
        dataset = self.dataset_argument(run, args)
        own = own_dataset(run, args)
        data_dir = args.data_dir or run.data.get("data_dir")  # another name is looked for in the same folder
        length = self.length(estimator)
        if own or not run.dataset:  # the run's own dataset (or a run that does not say which it was)
            resample = args.resample or (own and bool(run.data.get("resample")))
            impute = args.impute or (own and bool(run.data.get("impute")))
            data = self._load(dataset, data_dir, resample, impute, length)
        else:
            data = self._load_other(run, dataset, data_dir, args, length)
        x, y = (data.x_test, data.y_test) if split == "test" else (data.x_train, data.y_train)
        check_labels(y, estimator.classes_, data.name, run.dataset)
        return Records(data.name, [str(i) for i in range(len(x))], x, y)

    def _load_other(self, run, dataset: str, data_dir, args, length: int):
        """Another dataset than the run's: scored only when its series have the run's length
        (resampling a dataset of another kind to it would score nonsense)."""
        fitted = f"{run.folder} was fitted on {run.dataset} (length {length})"
        name = Path(dataset).name.removesuffix(".tsv").removesuffix(".ts").removesuffix("_TRAIN") or dataset
        if args.resample:
            raise DataError(f"{fitted}; --resample applies only to the run's own dataset (variable-length series, "
                            f"resampled as at fit time), not to {name}: score a dataset of the run's kind")
        try:
            data = self._load(dataset, data_dir, False, args.impute)
        except DataError as exc:
            if "length" not in str(exc):
                raise
            raise DataError(f"{fitted}; {name} has series of varying length: score a dataset of the run's "
                            "kind") from None
        found = int(data.x_train.shape[1])
        if found != length:
            raise DataError(f"{fitted}; {data.name} has length {found}: score a dataset of the run's kind")
        return data

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
