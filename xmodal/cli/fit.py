"""`xmodal fit series|sequence|table`: reprogram a frozen source for a dataset, print the
probe and the reprogrammed model side by side, save the run.

    xmodal fit series --dataset GunPoint                       # the best preset
    xmodal fit series --dataset GunPoint --preset v2s --epochs 20 --baseline minirocket
    xmodal fit sequence --dataset bbbp.csv --split scaffold --out runs/bbbp
    xmodal fit table --dataset german_credit_uci --baseline logistic,hgb --plot

Each task's parser carries only its own flags: the settings of xmodal.settings (defaults:
the preset's values) and its data flags. The run folder gets reprogrammer.json /
.safetensors (with the task and the data recorded, so evaluate / predict / align find it
again) and metrics.json (xmodal.metrics.SCHEMA first, then task extras and the history).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from xmodal.cli.arguments import Parser, add_setting_flags, setting_overrides
from xmodal.cli.runs import check_out, remove_run_files, run_folder, write_json
from xmodal.cli.tasks import TASKS
from xmodal.errors import DataError
from xmodal.settings import SETTINGS

TASK_HELP = {
    "series": "univariate time series (UCR) -> a frozen speech model (Voice2Series and the pitch recipe)",
    "sequence": "peptides, proteins, DNA or molecules (SMILES) -> a frozen language model (R2DL)",
    "table": "table rows (CSV) -> a frozen image-style model, each feature drawn as a square",
}


def add_parser(commands) -> None:
    fit = commands.add_parser("fit", help="reprogram a frozen source for a dataset; print probe and model; save the run",
                              description="Reprogram a frozen source model for a dataset of one task.")
    tasks = fit.add_subparsers(dest="task", required=True, metavar="TASK",
                               title="tasks (each with its own flags: `xmodal fit TASK --help`)")
    parsers = []
    for name, task in TASKS.items():
        sub = tasks.add_parser(name, help=TASK_HELP[name], description=f"xmodal fit {name}: {TASK_HELP[name]}.")
        task.add_fit_flags(sub)
        add_setting_flags(sub, name)
        run = sub.add_argument_group("the run")
        run.add_argument("--out", metavar="FOLDER", help="run folder to write (refused when it exists and is not empty, unless "
                                       "--overwrite; default: a new runs/<dataset>-<YYYYmmdd-HHMMSS>)")
        run.add_argument("--overwrite", action="store_true", help="replace the run in an existing --out folder")
        run.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the split, the start and training (default 0)")
        run.add_argument("--quiet", action="store_true", help="no progress bars")
        run.add_argument("--plot", action="store_true",
                         help="write learning_curve.png and confusion_matrix.png into the run")
        run.add_argument("--baseline", metavar="NAME[,NAME]",
                         help="fit baselines on the same split and print them beside the model "
                              "(see xmodal.baselines: " + _baseline_names(name) + ")")
        if "query_budget" in SETTINGS[name]:  # the tasks that can train through a black box
            _add_blackbox_flags(sub)
        sub.set_defaults(run=run_fit, command_name=f"fit {name}")  # error lines name the task
        parsers.append(sub)
    owners: dict[str, list[str]] = {}  # which task takes which flag, for the error on another task's flag
    for sub in parsers:
        for action in sub._actions:
            for flag in action.option_strings:
                owners.setdefault(flag, []).append(sub.prog)
        sub.flag_owners = owners


def fit_parser() -> argparse.ArgumentParser:
    """A parser of `xmodal fit ...` alone (xmodal.sweep builds its items' command lines with it)."""
    parser = Parser(prog="xmodal")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def _add_blackbox_flags(parser) -> None:
    group = parser.add_argument_group("black box (a source behind `xmodal serve`, class probabilities only)")
    group.add_argument("--blackbox-url", metavar="URL",
                       help="reprogram the source served at URL (http://HOST:PORT); needs --query-budget")
    group.add_argument("--api-key-file", metavar="FILE", help="the server's API key, in a file")
    group.add_argument("--query-journal", metavar="FILE",
                       help="keep every answer bought here: the same fit run again after an interruption takes "
                            "them from the file instead of spending queries again")
    group.add_argument("--price-per-1000", type=float, default=1.0, metavar="USD",
                       help="the API's price per 1000 queries, for the cost estimate in the query log (default 1.00)")


def _use_blackbox(args, overrides: dict) -> None:
    """--blackbox-url and its companions: the source becomes the URL (adapters_modal.http)."""
    if getattr(args, "blackbox_url", None) is None:
        if getattr(args, "api_key_file", None) or getattr(args, "query_journal", None):
            raise DataError("--api-key-file and --query-journal go with --blackbox-url")
        return
    import os

    from adapters_modal.http import API_KEY_VARIABLE, JOURNAL_VARIABLE
    from xmodal.cli.serve import read_api_key

    if overrides.get("source") is not None:
        raise DataError("give --blackbox-url or --source, not both: the served source is the source")
    if overrides.get("query_budget") is None:
        raise DataError("--blackbox-url needs --query-budget N: every sample sent to the server is a paid query")
    if not args.blackbox_url.startswith(("http://", "https://")):
        raise DataError(f"--blackbox-url {args.blackbox_url!r}: give an http:// or https:// address")
    overrides["source"] = args.blackbox_url
    key = read_api_key(args.api_key_file)
    if key is not None:
        os.environ[API_KEY_VARIABLE] = key
    if args.query_journal:
        os.environ[JOURNAL_VARIABLE] = args.query_journal


def query_log(estimator, result, price_per_1000: float) -> dict | None:
    """What the black box cost: queries spent training, samples sent in all, and in dollars."""
    source = estimator.reprogrammer_.source
    sent = getattr(source, "sent", None)
    if result.queries is None and sent is None:
        return None
    billed = sent if sent is not None else result.queries
    return {"training_queries": result.queries, "queries_sent": sent,
            "answered_by_journal": getattr(source, "from_journal", None), "price_per_1000_usd": price_per_1000,
            "cost_usd": round(billed * price_per_1000 / 1000, 4)}


def _baseline_names(task: str) -> str:
    from xmodal.baselines import BASELINES

    return ", ".join(BASELINES.get(task, ()))


def _baselines(task: str, text: str | None) -> list[str]:
    from xmodal.baselines import BASELINES

    if not text:
        return []
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in BASELINES[task]:
            raise DataError(f"unknown {task} baseline {name!r}; the {task} baselines are {', '.join(BASELINES[task])}")
    return list(dict.fromkeys(names))


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _number(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def fit_baselines(task_name, names, split, seed, options) -> dict:
    from xmodal.baselines import fit_predict
    from xmodal.metrics import classification_scores

    results = {}
    for name in names:
        _say(f"baseline {name} ...")
        start = time.perf_counter()
        probabilities = fit_predict(task_name, name, split.X_train, split.y_train, split.X_test, seed, **options)
        seconds = time.perf_counter() - start
        scores = classification_scores(split.y_test, probabilities, np.unique(split.y_train))
        results[name] = {f"test_{key}": value for key, value in scores.items()} | {"fit_seconds": round(seconds, 2)}
    return results


def _report_search(result) -> None:
    _say(f"search ({result.method}, {len(result.grid)} candidates, {result.seconds:.1f} s):")
    for i, (candidate, score) in enumerate(zip(result.grid, result.scores)):
        mark = "*" if i == result.best_index else " "
        _say(f" {mark} held-out accuracy {score['accuracy']:.4f}  log-loss {score['log_loss']:.4f}  {candidate}")
    print(f"chosen settings: {result.best}  (held-out accuracy {result.scores[result.best_index]['accuracy']:.4f})")


def _report_source_choice(choice) -> None:
    _say(f"sources chosen on the training split ({len(choice.candidates)} subsets, the cross-validated log-loss "
         f"of each one's probe, {choice.seconds:.1f} s):")
    for name, loss in zip(choice.candidates, choice.cv_log_loss):
        _say(f" {'*' if name == choice.chosen else ' '} {'-' if loss is None else f'{loss:.4f}':>7}  {name}")


def _start_competed(result) -> bool:
    """Whether the start state was scored on validation as epoch 0 (a probe or a prepared
    label map; never a random head)."""
    return bool(result.history) and result.history[0].get("epoch") == 0


def _trained_member(result) -> bool:
    """Whether the fit is a fused source's trained view beside the sources' probes: its validation scores
    are that member's alone (against its own probe start), not the whole model's."""
    return result.beside_start and isinstance(result.probe_c, (tuple, list))  # a list once reloaded


def _with_slices(estimator) -> str:
    """How the sources' probes were fitted again on window slices (slice_copies), or nothing."""
    copies = estimator.settings_.get("slice_copies", 0)  # series only
    return f", each also refitted on {copies} window slices of every series" if copies else ""


def _start_label(result) -> str:
    """The printed name of the start state: the probe only when the head started as a fitted probe."""
    return "probe (start)" if result.probe_c is not None else "start (θ untrained)"


def _verdict(estimator) -> str:
    """One line: did training change the model, and why (not)."""
    result = estimator.fit_result_
    probe = result.probe_c is not None
    budget = result.stopped_by == "budget"
    if estimator.settings_["epochs"] == 0:
        start = ("the probe start" if probe else "the start (θ untrained)" if result.start_state is not None
                 else "the untrained random head")
        if isinstance(result.probe_c, (tuple, list)):  # fusion probe-per-source (a list once reloaded)
            start += f" (a probe of each of the {len(result.probe_c)} sources{_with_slices(estimator)}, averaged)"
        return f"no training (epochs 0): the model is {start}"
    if result.stopped_by.startswith("no validation part"):
        return ("no training: there is no validation part to show that trained epochs beat the probe, so the model "
                "is the probe, fitted on every training sample")
    if result.epochs_run == 0:
        if budget:
            return "no training: the query budget ran out before the first batch"
        return "no training: no epoch ran"
    stop = f"; training stopped by the query budget ({result.queries} queries)" if budget else ""
    kept = result.reprogramming_kept
    if kept is None or not _start_competed(result):  # a random head, or no validation part: nothing to compare with
        on = "on validation" if result.n_val else "on the training loss (no validation part)"
        return f"trained {result.epochs_run} epochs; best epoch {result.best_epoch} {on}{stop}"
    if _trained_member(result):
        weight = estimator.settings_["trained_view_weight"]
        return (f"trained view of the first audio source: epoch {result.best_epoch} of {result.epochs_run} kept, read "
                f"beside its start as one more member{'' if weight == 1 else f' counted {weight} times'} beside the "
                f"{len(estimator.reprogrammer_.source.parts)} sources' probes"
                f"{_with_slices(estimator)} (the start); validation compares that member alone with its own probe "
                f"start: {'beat' if kept else 'did not beat'} it ({result.val_loss:.4f} against "
                f"{result.history[0]['val_loss']:.4f} log-loss){stop}")
    if estimator.settings_.get("head") == "kernel":  # a sequence trained view, read out by kernel heads
        both = next(r for r in result.history[1:] if "val_loss" in r)  # the trained epoch the kernel heads compared
        scores = f"({both['val_loss']:.4f} against {result.history[0]['val_loss']:.4f} log-loss){stop}"
        if kept:
            return (f"trained view: θ of epoch {both['epoch']} of {result.epochs_run} kept and read beside its start; "
                    "the kernel head on both readings beat the one on the start's reading alone on validation "
                    f"{scores}")
        return (f"the start won: the model is the kernel head on the start's reading (the best preset's model); the "
                f"kernel head on both readings (trained epoch {both['epoch']} beside the start) did not beat it on "
                f"validation {scores}")
    if result.beside_start:
        return (f"trained view: epoch {result.best_epoch} of {result.epochs_run} kept and read beside the start; the "
                f"probe of both readings {'beat' if kept else 'did not beat'} the probe start on validation log-loss "
                f"({result.val_loss:.4f} against {result.history[0]['val_loss']:.4f})"
                f"{'' if kept else '; the model reads both all the same (the start never competes)'}{stop}")
    start = "the probe" if probe else "the start (θ untrained)"
    if kept:
        return (f"reprogramming kept: trained epochs beat {start} on validation (best epoch {result.best_epoch} of "
                f"{result.epochs_run}){stop}")
    model = "the model is the probe" if probe else "the model is untrained θ with its label map"
    return f"the start won: {model} (no trained epoch of {result.epochs_run} beat it on validation){stop}"


def _print_report(split, estimator, metrics: dict, probe_scores: dict | None, folder: Path) -> None:
    unit = {"series": "series", "sequence": "records", "table": "rows"}[estimator.task]
    print(f"{split.name}: {estimator.task}, preset {metrics['preset']}, source {metrics['source']}, "
          f"{metrics['n_train']} train / {metrics['n_test']} test {unit}")
    rows = []
    member = _trained_member(estimator.fit_result_)  # its validation scores are not the whole model's: left out
    if probe_scores is not None:  # a start state to compare with (a probe or a label map; not a random head)
        rows.append((_start_label(estimator.fit_result_), None if member else metrics["probe_val_accuracy"],
                     metrics["probe_test_accuracy"], probe_scores["roc_auc"]))
    rows.append(("reprogrammed", None if member else metrics["val_accuracy"], metrics["test_accuracy"],
                 metrics["test_roc_auc"]))
    for name, scores in metrics.get("baselines", {}).items():
        rows.append((f"baseline {name}", None, scores["test_accuracy"], scores["test_roc_auc"]))
    width = max(len(row[0]) for row in rows)
    print(f"  {'':<{width}}  {'val acc':>8}  {'test acc':>8}  {'ROC-AUC':>8}")
    for name, val, test, auc in rows:
        print(f"  {name:<{width}}  {_number(val):>8}  {_number(test):>8}  {_number(auc):>8}")
    print(_verdict(estimator))
    if "test_pr_auc" in metrics:
        print(f"test PR-AUC of the rarer class {metrics['positive_class']!r}: {metrics['test_pr_auc']:.4f}")
    if metrics.get("queries") is not None:
        print(f"black-box training: {metrics['queries']} source queries")
    print(f"fit {metrics['fit_seconds']:.1f} s; run saved in {folder}")


def run_fit(args: argparse.Namespace) -> None:
    from xmodal.presets import resolve_settings

    task = TASKS[args.task]
    overrides = setting_overrides(args.task, args)
    _use_blackbox(args, overrides)
    settings = resolve_settings(args.task, args.preset, overrides)  # bad combinations fail before any work
    from xmodal.devices import resolve_device

    resolve_device(settings["device"])  # --device cuda without a GPU: refused before any data is read
    out = check_out(args.out, args.overwrite)
    baselines = _baselines(args.task, args.baseline)
    task.check_fit_args(args, settings)
    from adapters_modal import check_source_name

    check_source_name(settings["source"])  # an unknown source fails before any data is read
    split = task.load_fit(args, settings)
    task.check_split(split, settings)  # every split checked now: no bad record surfaces after the training
    blackbox = "" if settings.get("query_budget") is None else f", black box within {settings['query_budget']} queries"
    _say(f"fitting {split.summary}; preset {args.preset}, source {settings['source']}{blackbox}")

    from xmodal.metrics import classification_scores, fit_metrics

    estimator = task.estimator(args, overrides, split)
    start = time.perf_counter()
    task.fit(estimator, split)
    seconds = time.perf_counter() - start
    X_test = task.model_input(split.X_test)
    probabilities = estimator.predict_proba(X_test)
    probe = estimator.probe_predict_proba(X_test, predicted=probabilities)
    metrics = fit_metrics(estimator, split.name, len(split.y_train), split.y_test, probabilities, probe, seconds)
    probe_scores = None if probe is None else classification_scores(split.y_test, probe, estimator.classes_)
    result = estimator.fit_result_
    _, counts = np.unique(np.asarray(split.y_test).astype(str), return_counts=True)
    metrics.update(task.fit_extras(estimator, split, probabilities))
    metrics.update({
        "classes": estimator.classes_.tolist(), "test_majority_rate": float(counts.max() / counts.sum()),
        "probe_test_roc_auc": None if probe_scores is None else probe_scores["roc_auc"],
        "best_epoch": result.best_epoch, "epochs_run": result.epochs_run, "stopped_by": result.stopped_by,
        "selection": result.selection, "queries": result.queries, "data": split.record,
        "query_log": query_log(estimator, result, getattr(args, "price_per_1000", None)),
    })
    search = getattr(estimator, "search_result_", None)
    if search is not None:
        metrics["search"] = search.to_dict()
        _report_search(search)
    choice = getattr(estimator, "source_choice_", None)
    if choice is not None:
        metrics["source_choice"] = choice.to_dict()
        _report_source_choice(choice)
    if baselines:
        metrics["baselines"] = fit_baselines(args.task, baselines, split, args.seed, task.baseline_options(split))
    metrics["history"] = result.history

    with run_folder(out, split.name) as folder:  # a write failed or interrupted leaves no half run behind
        if args.overwrite:
            remove_run_files(folder)  # the old run stops being one before anything of the new is written
        write_json(folder / "metrics.json", metrics)
        if args.plot:
            from xmodal.plots import confusion_matrix, learning_curve

            predicted = estimator.classes_[np.argmax(probabilities, axis=1)]
            title = f"{split.name}: {estimator.task}, preset {metrics['preset']}"
            learning_curve(result.history, folder / "learning_curve.png", best_epoch=result.best_epoch, title=title)
            confusion_matrix(split.y_test, predicted, estimator.classes_, folder / "confusion_matrix.png",
                             title=f"{title}, test split")
        # last: reprogrammer.json is the commit point, a folder without it is no run
        estimator.save_pretrained(folder, metadata={"dataset": split.name, "data": split.record})
    _print_report(split, estimator, metrics, probe_scores, folder)
