"""The table task: a CSV with a header row (or UCI German credit), split stratified and seeded."""

from __future__ import annotations

from xmodal.cli.tasks.base import (
    DEFAULT_TEST_SIZE,
    Records,
    Split,
    Task,
    absolute,
    add_test_size_flag,
    check_labels,
    existing_path,
)
from xmodal.data.labels import SHOWN, check_class_labels
from xmodal.errors import DataError


def _refuse_gaps(part) -> None:
    """Empty cells of a part (the loader refuses infinite ones)."""
    gaps = part.X.isna()
    rows = gaps.any(axis=1).to_numpy()
    if not rows.any():
        return
    columns = [str(c) for c in gaps.columns[gaps.any(axis=0).to_numpy()]]
    raise DataError(f"{part.where}: {int(rows.sum())} of {len(rows)} rows have empty cells, in columns "
                    f"{columns[:SHOWN]}{' ...' if len(columns) > SHOWN else ''} (first: the split's row "
                    f"{int(rows.argmax()) + 1}); fill or drop them, or impute them with --missing impute")


class TableTask(Task):
    name = "table"
    own_flags = ("--label-column",)

    def add_fit_flags(self, parser):
        data = parser.add_argument_group("data")
        data.add_argument("--dataset", required=True,
                          help="a CSV file with a header row, or the UCI German credit folder (or its german.data)")
        data.add_argument("--label-column", help="label column of a CSV (required for a CSV)")
        add_test_size_flag(data, "share of rows held out for testing, stratified and seeded")

    def load_fit(self, args, settings):
        from xmodal.data.tables import load_table, split_table

        path = existing_path(args.dataset)
        data = load_table(path, args.label_column)
        check_class_labels(data.labels, str(path))  # before a stratified split refuses them less clearly
        train, test = split_table(data, args.test_size, args.seed)
        columns = [str(c) for c in data.features.columns]
        record = {"dataset": data.name, "path": absolute(args.dataset), "label_column": args.label_column,
                  "test_size": args.test_size, "seed": args.seed, "columns": columns}
        summary = (f"{data.name}: {len(train.labels)} train / {len(test.labels)} test rows, {len(columns)} columns, "
                   f"{len(data.classes)} classes")
        return Split(data.name, train.features, train.labels, test.features, test.labels, record, summary,
                     train_ids=[str(i) for i in range(len(train.labels))], extras={"n_columns": len(columns)})

    def check_values(self, split, parts, settings):
        """Empty cells of any part refused now, unless imputed (the encoder would refuse a test
        row's only when the test split is scored, after the training)."""
        if settings["missing"] == "impute":
            return
        for part in parts:
            _refuse_gaps(part)

    def estimator(self, args, overrides, split):
        from xmodal.estimators.table import TableClassifier

        return TableClassifier(args.preset, **overrides, random_state=args.seed, verbose=not args.quiet)

    def fit_extras(self, estimator, split, probabilities):
        from xmodal.metrics import minority_pr_auc

        return {**split.extras, **minority_pr_auc(split.y_test, probabilities, estimator.classes_)}

    def load_estimator(self, run, args):
        from xmodal.estimators.table import TableClassifier

        return TableClassifier.from_pretrained(run.folder, trust_source=args.trust_source, device=args.device)

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
        train, test = split_table(data, run.data.get("test_size", DEFAULT_TEST_SIZE),
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
