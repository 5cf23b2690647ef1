"""The `xmodal` command.

    xmodal fit --dataset GunPoint --out runs/gunpoint     train, report, save
    xmodal evaluate runs/gunpoint --dataset GunPoint      accuracy, ROC-AUC, MCC of a saved run
    xmodal predict runs/gunpoint --dataset GunPoint --csv preds.csv
    xmodal sources | datasets | predict-source --source NAME FILE.wav ...

User errors (bad input, missing files) print one line and exit 1, never a traceback.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

from xmodal.cli.search_report import add_search_arguments, report_search
from xmodal.cli.sequence_task import add_sequence_args
from xmodal.cli.table_task import add_table_arguments
from xmodal.errors import XmodalError

DEFAULT_SOURCE = "bc-resnet-gsc35"
SERIES_DEFAULTS = {"source": DEFAULT_SOURCE, "epochs": 100, "lr": 0.05, "patience": 25}


def _add_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="UCR name (GunPoint, ...), a UCR-layout folder, or a _TRAIN .tsv/.ts file; "
                        "with --task table: a CSV file or a folder holding german.data")
    parser.add_argument("--data-dir", help="folder of UCR-layout datasets searched for NAME before sktime's bundled sets")
    parser.add_argument("--resample", action="store_true", help="resample variable-length series to the training length")
    parser.add_argument("--impute", action="store_true", help="fill missing values by linear interpolation (tables: numeric at the training mean, "
                        "categorical as no category)")


def _load(args, length: int | None = None):
    """The dataset; with `length` (a saved run's training length) --resample targets it."""
    from xmodal.data.ucr import load_ucr

    return load_ucr(args.dataset, args.data_dir, unequal="resample" if args.resample else "error",
                    missing="interpolate" if args.impute else "error", length=length)


def _write_json(path: Path, document: dict) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n")
    temporary.replace(path)


def _accuracy(predicted, truth) -> float:
    return float(sum(p == t for p, t in zip(predicted, truth)) / len(truth))


def cmd_fit(args) -> None:
    import numpy as np

    from adapters_modal import check_source_name
    from xmodal.estimators.series import V2SClassifier

    _fill_defaults(args, SERIES_DEFAULTS)
    check_source_name(args.source)  # an unknown source fails before any data is read
    data = _load(args)
    if len(data.classes) < 2:
        raise XmodalError(f"{data.name}: the training labels hold a single class; a classifier needs at least 2")
    out = Path(args.out or f"runs/{data.name}")
    classifier = V2SClassifier(
        source=args.source, weights_path=args.weights, mapping=args.mapping,
        labels_per_class=args.labels_per_class, remap_every=args.remap_every, laplace=args.laplace,
        encoding=args.series_encoding, standardize=not args.no_standardize,
        upsample_factor=args.upsample_factor,
        target_duration=args.target_duration,
        interpolation=args.interpolation, copies=args.copies,
        offset=int(args.offset) if args.offset.isdigit() else args.offset,
        masked=not args.no_mask, tanh_bound=not args.no_tanh, delta_dropout=args.delta_dropout,
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, val_fraction=args.val_fraction,
        patience=args.patience, random_state=args.seed, verbose=not args.quiet,
        query_budget=args.query_budget if args.blackbox else None,
        search=args.search, search_folds=args.search_folds,
    )
    print(f"fitting {data.name}: {len(data.x_train)} train / {len(data.x_test)} test series of length "
          f"{data.x_train.shape[1]}, {len(data.classes)} classes, source {args.source}", file=sys.stderr)
    start = time.perf_counter()
    classifier.fit(data.x_train[:, None, :], data.y_train)
    fit_seconds = time.perf_counter() - start
    test_accuracy = _accuracy(classifier.predict(data.x_test[:, None, :]), data.y_test)
    result = classifier.fit_result_
    classifier.save_pretrained(out, {"dataset": data.name})
    metrics = {
        "dataset": data.name, "source": args.source, "n_train": len(data.x_train), "n_test": len(data.x_test),
        "n_classes": len(data.classes), "series_length": int(data.x_train.shape[1]),
        "val_accuracy": result.val_accuracy, "test_accuracy": test_accuracy, "fit_seconds": round(fit_seconds, 2),
        "seed": args.seed, "selection": result.selection, "n_fit": result.n_fit, "n_val": result.n_val,
        "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
        "majority_rate": float(np.max(np.unique(data.y_test, return_counts=True)[1]) / len(data.y_test)),
        "params": classifier.get_params(deep=False),
    }
    if args.blackbox:
        metrics["queries_used"] = result.queries_used
    report_search(classifier, metrics)
    _write_json(out / "metrics.json", metrics)
    val = "n/a (no validation split)" if result.val_accuracy is None else f"{result.val_accuracy:.4f}"
    print(f"validation accuracy: {val}  (epoch {result.best_epoch} of {result.epochs_run})")
    print(f"test accuracy: {test_accuracy:.4f}  ({len(data.x_test)} series, fit {fit_seconds:.1f} s)")
    print(f"saved to {out}/ (reprogrammer.json, reprogrammer.safetensors, metrics.json)")


def _saved_classifier(args):
    from xmodal.estimators.series import V2SClassifier

    return V2SClassifier.from_pretrained(args.run_dir, weights_path=args.weights)


def _saved_run_and_split(args):
    """(saved classifier, dataset name, series, labels) for evaluate/predict."""
    classifier = _saved_classifier(args)
    data = _load(args, classifier.reprogrammer_.bridge.config.series_length)
    x, y = (data.x_test, data.y_test) if args.split == "test" else (data.x_train, data.y_train)
    _check_labels(y, classifier.classes_)
    return classifier, data.name, x, y


def _saved_predictions(args):
    """(dataset name, (id column, record ids), true labels, classes, probabilities) of a saved run on args.split."""
    import numpy as np

    from xmodal.cli.sequence_task import is_sequence_run, saved_sequence_run_and_split

    if is_sequence_run(args.run_dir):
        classifier, name, records = saved_sequence_run_and_split(args)
        _check_labels(records.labels, classifier.classes_)
        return (name, ("record", list(records.ids)), records.labels, classifier.classes_,
                classifier.predict_proba(records.sequences))
    classifier, name, x, y = _saved_run_and_split(args)
    return name, ("index", range(len(y))), y, classifier.classes_, np.asarray(classifier.predict_proba(x[:, None, :]))


def cmd_evaluate(args) -> None:
    from xmodal.metrics import classification_scores

    name, _, y, classes, probabilities = _saved_predictions(args)
    scores = classification_scores(y, probabilities, classes)
    print(json.dumps({"dataset": name, "split": args.split, "n": len(y), **scores}))


def _check_labels(labels, classes) -> None:
    unknown = sorted(set(labels.tolist()) - set(classes.tolist()), key=str)
    if unknown:
        raise XmodalError(f"labels {unknown[:5]} were not seen in training (classes: {classes.tolist()}); "
                          "evaluate on the dataset the run was fitted on")


def cmd_predict(args) -> None:
    import numpy as np

    _, (id_column, names), y, classes, probabilities = _saved_predictions(args)
    predicted = classes[np.argmax(probabilities, axis=1)]
    out = Path(args.csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([id_column, "label", "prediction"] + [f"p_{c}" for c in classes])
        for record, label, guess, row in zip(names, y, predicted, probabilities):
            writer.writerow([record, label, guess] + [f"{p:.6f}" for p in row])
    print(f"wrote {len(predicted)} predictions to {out} (accuracy {_accuracy(predicted, y):.4f})")


def cmd_sources(args) -> None:
    import adapters_modal

    for entry in adapters_modal.source_entries():
        try:
            where = adapters_modal.local_weights(entry.name)
            status = f"available: {where}" if where else f"not on this machine; downloads from {entry.weight_file.url}"
        except XmodalError as exc:
            status = f"BROKEN: {exc}"
        print(f"{entry.name}\t{entry.description}\t{status}")
    for prefix, description in adapters_modal.source_schemes().items():
        print(f"{prefix}:PATH_OR_ID\t{description}\tloaded from that folder or hub id")


def cmd_datasets(args) -> None:
    from xmodal.data.ucr import bundled_names, folder_names

    print("bundled with sktime: " + ", ".join(bundled_names()))
    if args.data_dir:
        if not Path(args.data_dir).is_dir():
            raise XmodalError(f"--data-dir {args.data_dir} is not a folder")
        print(f"in {args.data_dir}: " + ", ".join(folder_names(args.data_dir)))


def cmd_predict_source(args) -> None:
    import torch

    import adapters_modal
    from adapters_modal.audio_io import read_wav

    source = adapters_modal.load_source(args.source, args.weights)
    spec = source.input_spec
    if spec.modality != "audio":
        raise XmodalError(f"source {args.source!r} takes {spec.modality}, not audio files")
    waveforms = torch.stack([read_wav(f, spec.sample_rate, spec.num_samples, args.window) for f in args.files])
    with torch.no_grad():
        probabilities = source.logits(waveforms).softmax(dim=1)
    for name, row in zip(args.files, probabilities):
        best = int(row.argmax())
        print(f"{name}\t{source.class_names[best]}\t{row[best].item():.4f}")


def cmd_align(args) -> None:
    from xmodal.cli.align import run

    run(args)


def cmd_synthesize_words(args) -> None:
    import adapters_modal
    from adapters_modal.speech_synthesis import (
        DEFAULT_SPEEDS,
        DEFAULT_VOICES,
        synthesize_words,
    )

    # Class names such as "_unknown_" or "_silence_" are no words to speak.
    words = args.words or [w for w in adapters_modal.load_source(args.source, args.weights).class_names
                           if w.isalpha()]
    voices = args.voices.split(",") if args.voices else DEFAULT_VOICES
    try:
        speeds = [int(s) for s in args.speeds.split(",")] if args.speeds else DEFAULT_SPEEDS
    except ValueError:
        raise XmodalError(f"--speeds {args.speeds!r}: give comma-separated words per minute, e.g. 120,160") from None
    written = synthesize_words(words, args.out, voices, speeds, progress=not args.quiet)
    print(f"wrote {len(written)} WAV files for {len(words)} words to {args.out}/<word>/")


def cmd_fit_table(args) -> None:
    from xmodal.cli.table_task import cmd_fit_table as fit_table

    _fill_defaults(args, {key: SERIES_DEFAULTS[key] for key in ("epochs", "lr", "patience")})
    fit_table(args, _write_json)


def _fill_defaults(args, defaults: dict) -> None:
    """Options whose default depends on the task are parsed as None and filled here."""
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def fit_sequence(args) -> None:
    from xmodal.cli.sequence_task import DEFAULTS
    from xmodal.cli.sequence_task import fit_sequence as fit

    _fill_defaults(args, DEFAULTS)
    fit(args)


# `xmodal fit --task NAME`: one fitting function per target modality.
FIT_TASKS = {"series": cmd_fit, "sequence": fit_sequence, "table": cmd_fit_table}


def _fit_task(args) -> None:
    FIT_TASKS[args.task](args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xmodal", description="Cross-modal reprogramming of frozen pretrained models.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = commands.add_parser("fit", help="reprogram a source model for a dataset; print accuracy; save the run")
    fit.add_argument("--task", choices=sorted(FIT_TASKS), default="series",
                     help="target modality: series (UCR time series -> speech model, the default), "
                          "sequence (peptides/molecules -> language model), table (CSV rows -> image-style model)")
    _add_data_args(fit)
    fit.add_argument("--test-size", type=float, default=0.2,
                     help="share held out as a stratified test split when the dataset has none (default 0.2)")
    fit.add_argument("--label-column", help="label column of a CSV dataset (tables: required for a CSV; "
                                            "sequences: default 'label', or the only other column)")
    fit.add_argument("--source", help=f"source model (default {DEFAULT_SOURCE}; minilm-l6 for sequences, "
                                      "bc-resnet-gsc35-image for tables; hf:PATH_OR_ID for a Hugging Face audio "
                                      "classifier; see `xmodal sources`)")
    fit.add_argument("--weights", help="explicit weights file for the source model")
    fit.add_argument("--out", help="run folder to write (default runs/<dataset>)")
    fit.add_argument("--seed", type=int, default=0, help="seed for split, mapping and training (default 0)")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    train = fit.add_argument_group("training")
    train.add_argument("--epochs", type=int, help="default 100 (series), 10 (sequence)")
    train.add_argument("--lr", type=float, help="default 0.05 (series), 0.01 (sequence)")
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--val-fraction", type=float, default=0.2, help="training share held out for model selection")
    train.add_argument("--patience", type=int, help="epochs without improvement before stopping (default 25 series, 3 sequence)")
    train.add_argument("--blackbox", action="store_true",
                       help="black-box training: the source gives probabilities only (zeroth-order, BAR)")
    train.add_argument("--query-budget", type=int, default=20000, help="source queries allowed with --blackbox")
    bridge = fit.add_argument_group("bridge and output map")
    bridge.add_argument("--mapping", choices=["frequency", "random", "ilm", "blm", "blm+", "linear", "layers"],
                        default="frequency", help="output map (ilm: iterative re-mapping; blm/blm+: Bayesian-guided; "
                                                  "layers: linear head on every layer's statistics, from a probe)")
    bridge.add_argument("--series-encoding", choices=["waveform", "pitch", "pitch+slope"], default="waveform",
                        help="the series as waveform samples (V2S), as the pitch of a tone, or as two tones "
                             "(series and slope); the tones need --no-mask")
    bridge.add_argument("--remap-every", type=int, default=1, help="epochs between re-mappings for ilm/blm/blm+")
    bridge.add_argument("--laplace", type=float, default=1.0, help="Laplace smoothing lambda for blm/blm+")
    bridge.add_argument("--labels-per-class", type=int, help="source classes per target class (default K_S // K_T)")
    bridge.add_argument("--target-duration", type=float,
                        help="stretch each series to this many seconds of audio (default: no stretch)")
    bridge.add_argument("--upsample-factor", type=int, default=1, help="integer stretch (not together with --target-duration)")
    bridge.add_argument("--interpolation", choices=["linear", "nearest"], default="linear")
    bridge.add_argument("--copies", type=int, default=1, help="copies of the series at equal intervals")
    bridge.add_argument("--offset", default="start", help="single copy position: start, centre or a sample index")
    bridge.add_argument("--no-mask", action="store_true", help="let delta cover the series too")
    bridge.add_argument("--no-tanh", action="store_true", help="do not squash the waveform into [-1, 1]")
    bridge.add_argument("--no-standardize", action="store_true", help="keep raw series values")
    bridge.add_argument("--delta-dropout", type=float, default=0.0)
    add_search_arguments(fit)
    add_table_arguments(fit)
    add_sequence_args(fit)
    fit.set_defaults(run=_fit_task)

    for name, helptext, function in (("evaluate", "accuracy, ROC-AUC and MCC of a saved run on a dataset split", cmd_evaluate),
                                     ("predict", "write a saved run's predictions to CSV", cmd_predict)):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("run_dir", help="folder written by `xmodal fit --out`")
        _add_data_args(sub)
        sub.add_argument("--split", choices=["test", "train"], default="test")
        sub.add_argument("--weights", help="explicit weights file for the source model")
        if name == "predict":
            sub.add_argument("--csv", required=True, help="CSV file to write")
        sub.set_defaults(run=function)

    sources = commands.add_parser("sources", help="registered source models and whether their weights are here")
    sources.set_defaults(run=cmd_sources)
    datasets = commands.add_parser("datasets", help="datasets known by name")
    datasets.add_argument("--data-dir", help="also list the UCR-layout datasets in this folder")
    datasets.set_defaults(run=cmd_datasets)

    align = commands.add_parser("align", help="Wasserstein alignment and the V2S risk bound of a saved run")
    align.add_argument("run_dir", help="folder written by `xmodal fit --out`")
    align.add_argument("--source-samples", required=True,
                       help="source-domain samples: a folder of audio files (labelled by folder or file name), "
                            "a .txt of sentences (language models) or a .npy of representations")
    align.add_argument("--method", choices=["auto", "exact", "sinkhorn", "sliced"], default="auto",
                       help="W1 estimator (default auto: exact, on subsamples with a bootstrap CI when large)")
    align.add_argument("--representation", choices=["logits", "features"], default="logits",
                       help="source logits (the theorem's z_S, default) or penultimate features")
    align.add_argument("--dataset", help="target dataset (default: the one the run was fitted on)")
    align.add_argument("--data-dir", help="folder of UCR-layout datasets searched for the dataset")
    align.add_argument("--split", choices=["test", "train"], default="test", help="target split (default test)")
    align.add_argument("--resample", action="store_true", help="resample variable-length series to the training length")
    align.add_argument("--impute", action="store_true", help="fill missing values by linear interpolation")
    align.add_argument("--weights", help="explicit weights file for the source model")
    align.add_argument("--json", metavar="OUT.json", help="write the report as JSON")
    align.add_argument("--plot", metavar="OUT.png", help="write a 2-D PCA plot of both distributions, before and after")
    align.set_defaults(run=cmd_align)

    speak = commands.add_parser("synthesize-words", help="speak a speech source's class words with espeak-ng "
                                                         "(labelled source samples for `align`)")
    speak.add_argument("out", help="folder to write <word>/<voice>_<speed>.wav into")
    speak.add_argument("--source", default=DEFAULT_SOURCE, help="speak this source's class names")
    speak.add_argument("--weights", help="explicit weights file for the source model")
    speak.add_argument("--words", nargs="+", help="speak these words instead")
    speak.add_argument("--voices", help="comma-separated espeak-ng voices (default en-us,en-gb,en-us+f3,"
                                        "en-gb-scotland; list them with `espeak-ng --voices`)")
    speak.add_argument("--speeds", help="comma-separated speaking rates in words per minute (default 140)")
    speak.add_argument("--quiet", action="store_true", help="no progress bar")
    speak.set_defaults(run=cmd_synthesize_words)

    predict_source = commands.add_parser("predict-source", help="top-1 label of the bare source model for audio files")
    predict_source.add_argument("--source", default=DEFAULT_SOURCE,
                                help=f"a name from `xmodal sources` (default {DEFAULT_SOURCE}) or hf:PATH_OR_ID")
    predict_source.add_argument("--weights", help="explicit weights file")
    predict_source.add_argument("--window", choices=["loudest", "start"], default="loudest",
                                help="which 1-s window of a longer clip: the loudest (default) or the first")
    predict_source.add_argument("files", nargs="+", metavar="FILE.wav")
    predict_source.set_defaults(run=cmd_predict_source)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except XmodalError as exc:
        print(f"xmodal {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # unwritable --out / --csv, a folder where a file is expected, ...
        print(f"xmodal {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
