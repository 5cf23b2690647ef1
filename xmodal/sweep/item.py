"""One work item of a sweep, as `xmodal fit` runs it: a run folder with metrics.json.

A preset method is exactly `xmodal fit TASK --dataset D --preset P --seed S --<setting> V
... --out FOLDER`, run in this process (a Ray worker, or the caller); so a sweep gives the
same numbers as the fits run one by one, and every item's folder is a run that `evaluate`,
`predict` and `align` take. A baseline method fits the baseline on the same split and
writes metrics.json alone (a baseline is no reprogrammer: nothing else to save). The
fit's printed report goes to the item's log file. The record returned is the line the
sweep's results file keeps (xmodal.sweep.report reads it).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from dataclasses import dataclass, replace
from pathlib import Path

from xmodal.allocator import keep_freed_memory
from xmodal.errors import DataError

# Keys of a method that are not settings: how it is fitted (series search).
SEARCH_KEYS = ("search", "search_folds")


def result_key(record: dict) -> tuple:
    """What identifies an item and its results line: dataset, method name, seed and the method itself."""
    return record["dataset"], record["method"], record["seed"], json.dumps(record["settings"], sort_keys=True)


@dataclass(frozen=True)
class Item:
    """One work item: fit `method` on `dataset` (its train split) with `seed`, score its test split."""

    task: str
    dataset: str  # the name reported in the tables
    path: str  # what `xmodal fit TASK --dataset` is given
    data_dir: str | None
    method: str
    settings: dict  # the method: {"preset": ..., setting: value, ...} or {"baseline": ...}
    seed: int
    cost: float = 1.0  # relative run time, to start the largest items first

    @property
    def key(self) -> tuple:
        return result_key(self.__dict__)

    @property
    def folder_name(self) -> str:
        """A stable folder name: readable, plus a hash of the settings (changed settings, new folder)."""
        digest = hashlib.sha256(self.key[3].encode()).hexdigest()[:8]
        readable = "".join(c if c.isalnum() or c in "-_.=" else "_" for c in f"{self.dataset}__{self.method}")
        return f"{readable}__seed{self.seed}__{digest}"


def fit_argv(item: Item, folder: Path) -> list[str]:
    """The `xmodal fit` command line of a preset item (settings as their flags)."""
    from xmodal.cli.arguments import shown
    from xmodal.settings import SETTINGS

    method = dict(item.settings)
    argv = ["fit", item.task, "--dataset", item.path, "--preset", method.pop("preset"), "--seed", str(item.seed),
            "--out", str(folder), "--overwrite", "--quiet"]
    if item.data_dir:
        argv += ["--data-dir", item.data_dir]
    for name, value in method.pop("data", {}).items():  # the data flags: --label-column, --test-size, --resample
        flag = "--" + str(name).replace("_", "-")
        argv += [flag] if value is True else [] if value is False else [flag, str(value)]
    for key in SEARCH_KEYS:
        if key in method:
            argv += [f"--{key.replace('_', '-')}", str(method.pop(key))]
    for name, value in method.items():
        flag = SETTINGS[item.task][name].flag
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        elif value is not None:
            argv += [flag, shown(value)]
    return argv


def parse_fit(argv: list[str]):
    """argparse's namespace of `xmodal fit ...`; a bad value is a DataError with argparse's line."""
    from xmodal.cli.fit import fit_parser

    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            return fit_parser().parse_args(argv)
    except SystemExit:
        lines = errors.getvalue().strip().splitlines()
        raise DataError(f"`xmodal {' '.join(argv)}`: {lines[-1] if lines else 'refused'}") from None


def check_item(item: Item) -> None:
    """The item's `xmodal fit` command line parsed and checked as `fit` does before any data is
    read (flag values, data flags of the task, search options): a DataError naming the method."""
    from xmodal.cli.tasks import TASKS
    from xmodal.presets import resolve_settings
    from xmodal.settings import SETTINGS

    method = item.settings if "preset" in item.settings else {"preset": "best", "data": item.settings.get("data", {})}
    try:
        args = parse_fit(fit_argv(replace(item, settings=method), Path("unused")))
        settings = resolve_settings(item.task, args.preset, {k: v for k, v in vars(args).items()
                                                             if k in SETTINGS[item.task] and v is not None})
        TASKS[item.task].check_fit_args(args, settings)
    except DataError as exc:
        raise DataError(f"sweep config: method {item.method}: {exc}") from None


def run_item(item: Item, folder: Path, log: Path) -> dict:
    """Fit the item into `folder` (replacing a half-done one), its report into `log`; its record."""
    keep_freed_memory()  # before any item, so that a baseline is timed as a source-reading method is
    folder, log = Path(folder), Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as stream, contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
        if "baseline" in item.settings:
            metrics = _baseline(item, folder)
        else:
            args = parse_fit(fit_argv(item, folder))
            args.run(args)
            metrics = json.loads((folder / "metrics.json").read_text())
    return record(item, metrics, folder)


def _baseline(item: Item, folder: Path) -> dict:
    from xmodal.cli.fit import fit_baselines
    from xmodal.cli.runs import remove_run_files, run_folder, write_json
    from xmodal.cli.tasks import TASKS
    from xmodal.presets import resolve_settings

    task = TASKS[item.task]
    # The data flags of fit, with the default preset: the baseline sees the split a fit would.
    args = parse_fit(fit_argv(replace(item, settings={"preset": "best", "data": item.settings.get("data", {})}),
                              folder))
    split = task.load_fit(args, resolve_settings(item.task, args.preset, {}))
    name = item.settings["baseline"]
    scores = fit_baselines(item.task, [name], split, item.seed, task.baseline_options(split))[name]  # + fit_seconds
    metrics = {"task": item.task, "dataset": split.name, "baseline": name, "seed": item.seed,
               "n_train": len(split.y_train), "n_test": len(split.y_test),
               "classes": sorted({str(c) for c in split.y_train}), **scores, "data": split.record}
    with run_folder(folder, split.name) as out:
        remove_run_files(out)
        write_json(out / "metrics.json", metrics)
    return metrics


# What a results line keeps of metrics.json (None where an item has no such number).
RECORD_FIELDS = ("val_accuracy", "probe_val_accuracy", "probe_test_accuracy", "reprogramming_kept", "epochs_run",
                 "best_epoch", "test_roc_auc", "peak_rss_mb")


def record(item: Item, metrics: dict, folder: Path) -> dict:
    line = {"dataset": item.dataset, "method": item.method, "seed": item.seed, "settings": item.settings,
            "accuracy": metrics["test_accuracy"], "fit_seconds": metrics["fit_seconds"],
            "n_train": metrics["n_train"], "n_test": metrics["n_test"], "n_classes": len(metrics["classes"]),
            **{key: metrics.get(key) for key in RECORD_FIELDS}, "run": str(folder)}
    if "search" in metrics:
        search = metrics["search"]
        line.update(chosen=search["best"], search_method=search["method"],
                    search_accuracy=search["scores"][search["best_index"]]["accuracy"])
    return line
