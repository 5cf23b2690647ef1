"""R2DL on real peptide and molecule data, with baselines in the same run.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/bench_r2dl.py [--datasets amp,bbbp,...] [--preset best]
        [--set epochs=20 --set lr=0.001]     # settings changed from the preset (xmodal.presets)

Datasets (../shared/data):
  amp       AMP Scanner v2: train on tr, select on eval, report on te (published 91.01 % accuracy)
  toxinpred ToxinPred SwissProt: 5-fold stratified CV (validation carved from each training fold)
  bbbp, bace, clintox_ct_tox, clintox_fda_approved: MoleculeNet, seeded Bemis-Murcko scaffold split 80/10/10
Methods: r2dl-sparse (the R2DL bridge; on AMP also r2dl-dense and r2dl-prompt),
(a) logistic regression on composition / Morgan fingerprints, (b) CNN from scratch on one-hot
tokens, (c) the frozen LM fed plain text + linear head. Per method: accuracy, ROC-AUC, MCC,
fit seconds, peak RSS (VmHWM, reset before each method) and test throughput (records/s).
Writes benchmarks/results/r2dl.json and r2dl.md after every dataset, so a stopped run keeps
what finished.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
RESULTS = REPO / "benchmarks" / "results"
DATA = REPO.parent / "shared" / "data"

from xmodal.baselines.sequence import (  # noqa: E402
    cnn_from_scratch,
    composition_logistic,
    lm_text_logistic,
)
from xmodal.data.sequences import SequenceRecords, load_sequence_dataset, scaffold_split  # noqa: E402
from xmodal.estimators.sequence import SequenceClassifier  # noqa: E402
from xmodal.metrics import classification_scores  # noqa: E402
from xmodal.presets import resolve_settings  # noqa: E402

MOLECULES = {"bbbp": ("bbbp.csv", None), "bace": ("bace.csv", None),
             "clintox_ct_tox": ("clintox.csv", "CT_TOX"), "clintox_fda_approved": ("clintox.csv", "FDA_APPROVED")}


def kept_legend(settings: dict) -> str:
    """What the table's 'theta kept' and 'probe acc' mean. A trained view's start never competes under a linear
    head, so its model reads both views either way; under a kernel head the start's reading alone competes."""
    if settings["trained_view"] and settings["head"] == "kernel":
        return ("'theta kept': folds where the kernel head on both readings (theta's start and trained theta) beat "
                "the kernel head on the start's reading on validation log-loss; 'probe acc': the test accuracy of "
                "that start (untrained theta, kernel head; the best preset's model), the model wherever theta was "
                "not kept; ")
    won = "the probe of both readings (theta's start and trained theta)" if settings["trained_view"] else \
        "a trained epoch"
    model = ("; the best preset's model); the model reads both views either way" if settings["trained_view"]
             else "), the model wherever theta was not kept")
    return (f"'theta kept': folds where {won} beat the probe start on validation log-loss; 'probe acc': the test "
            f"accuracy of that start (untrained theta, probe head{model}; ")


PUBLISHED = {"amp": "AMP Scanner v2 CNN-LSTM: 91.01 % test accuracy",
             "toxinpred": "R2DL paper: ~96 % toxicity accuracy (own split)"}


def peak_rss_reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024


def splits(name: str, seed: int):
    """[(fold label, alphabet, train, validation, test)]."""
    if name == "amp":
        d = load_sequence_dataset(DATA / "peptides" / "amp_scanner_v2_veltri2018")
        return [("te", d.alphabet, d.train, d.validation, d.test)]
    if name == "toxinpred":
        from sklearn.model_selection import StratifiedKFold, train_test_split

        d = load_sequence_dataset(DATA / "peptides" / "ican_toxinpred_swissprot" / "data.csv")
        folds = StratifiedKFold(5, shuffle=True, random_state=seed).split(d.train.sequences, d.train.labels)
        out = []
        for k, (rest, test) in enumerate(folds):
            fit, val = train_test_split(rest, test_size=0.1, stratify=d.train.labels[rest], random_state=seed)
            out.append((f"fold{k}", d.alphabet, d.train.subset(fit), d.train.subset(val), d.train.subset(test)))
        return out
    file, column = MOLECULES[name]
    d = load_sequence_dataset(DATA / "molecules" / file, column)
    train, val, test = scaffold_split(d.train.sequences, (0.8, 0.1, 0.1), seed)
    return [("scaffold", d.alphabet, d.train.subset(train), d.train.subset(val), d.train.subset(test))]


def run_method(method: str, alphabet: str, train: SequenceRecords, val: SequenceRecords, test: SequenceRecords,
               args, source) -> dict:
    peak_rss_reset()
    start = time.perf_counter()
    extra = {}
    if method.startswith("r2dl-"):
        # Records longer than MiniLM's 512 positions are cut, unknown tokens read as <unk>: the
        # benchmark sets hold a few of each, and every method must see every record.
        model = SequenceClassifier(args.preset, **{**args.overrides, "alphabet": alphabet, "mode": method.split("-")[1],
                                                   "truncation": "keep_start", "unknown": "unk"},
                                   random_state=args.seed, verbose=args.progress)
        model.fit(train.sequences, train.labels, (val.sequences, val.labels))
        fit_seconds = time.perf_counter() - start
        predict_start = time.perf_counter()
        probabilities = model.predict_proba(test.sequences)
        predict_seconds = time.perf_counter() - predict_start
        result = model.fit_result_
        probe = model.probe_predict_proba(test.sequences, predicted=probabilities)  # the start: untrained theta
        extra = {"probe_test_accuracy": classification_scores(test.labels, probe, model.classes_)["accuracy"],
                 "epochs_max": model.settings_["epochs"], "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
                 "val_accuracy": result.val_accuracy, "probe_val_accuracy": result.probe_val_accuracy,
                 "val_loss": result.val_loss,
                 "probe_val_loss": result.history[0]["val_loss"] if result.probe_val_accuracy is not None else None,
                 "reprogramming_kept": result.reprogramming_kept, "truncated_train": model.n_truncated_,
                 "sparsity": model.sparsity_, "probe_c": result.probe_c, "precision": model.precision_}
        classes = model.classes_
    else:
        function = {"composition-logreg": composition_logistic, "cnn-scratch": cnn_from_scratch}.get(method)
        probabilities = (lm_text_logistic(source, alphabet, train, val, test, args.seed) if method == "lm-text-linear"
                         else function(alphabet, train, val, test, args.seed))
        fit_seconds = time.perf_counter() - start  # fit and predict together
        predict_seconds = None
        classes = np.unique(train.labels.astype(str))
    labels = test.labels.astype(str) if not method.startswith("r2dl-") else test.labels
    return {"method": method, **classification_scores(labels, probabilities, classes),
            "fit_seconds": round(fit_seconds, 1), "peak_rss_mb": round(peak_rss_mb()),
            "test_records_per_s": None if predict_seconds is None else round(len(test) / predict_seconds, 1),
            "n_train": len(train), "n_val": len(val), "n_test": len(test), **extra}


def summarise(rows: list[dict]) -> list[dict]:
    """Mean (and std over folds) per dataset and method."""
    out = []
    for key in dict.fromkeys((r["dataset"], r["method"]) for r in rows):
        group = [r for r in rows if (r["dataset"], r["method"]) == key]
        entry = {"dataset": key[0], "method": key[1], "folds": len(group),
                 "epochs": "/".join(f"{r['epochs_run']}of{r['epochs_max']}" for r in group if "epochs_max" in r) or "-"}
        for metric in ("accuracy", "probe_test_accuracy", "roc_auc", "mcc", "fit_seconds", "peak_rss_mb",
                       "test_records_per_s"):
            values = [r[metric] for r in group if r.get(metric) is not None]
            entry[metric] = float(np.mean(values)) if values and len(values) == len(group) else None
            if len(group) > 1 and metric in ("accuracy", "roc_auc", "mcc") and values:
                entry[metric + "_std"] = float(np.std(values))
        kept = [r["reprogramming_kept"] for r in group if "reprogramming_kept" in r]
        trained = any(r.get("epochs_max") for r in group)
        entry["kept"] = f"{sum(map(bool, kept))}/{len(kept)}" if kept and trained else "not trained" if kept else "-"
        cnn = [r["fit_seconds"] for r in rows if (r["dataset"], r["method"]) == (key[0], "cnn-scratch")]
        entry["fit_vs_cnn"] = entry["fit_seconds"] / np.mean(cnn) if cnn and key[1].startswith("r2dl-") else None
        out.append(entry)
    return out


def write(rows: list[dict], args, started: float, parts: list[str] = ()) -> None:
    summary = summarise(rows)
    document = {"parts": list(parts), "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared with other jobs), torch "
                           f"{torch.__version__}, threads {torch.get_num_threads()}",
                "command": shlex.join(sys.argv), "settings": vars(args), "published": PUBLISHED,
                "wall_seconds": round(time.perf_counter() - started), "summary": summary, "runs": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.results_name}.json").write_text(json.dumps(document, indent=2, default=str) + "\n")
    lines = ["# R2DL benchmark (minilm-l6, seed %d)" % args.seed, "",
             f"Machine: {document['machine']}. Command: `{document['command']}`"
             + "".join(f"; merged with the runs of `{c}`" for c in parts) + ". "
             f"R2DL: preset {args.preset!r} with {args.overrides or 'no changes'}; 'epochs run' = run of max per fold. "
             "Peak RSS is the process's (the loaded LM included), reset before each method.", "",
             kept_legend(resolve_settings("sequence", args.preset, args.overrides))
             + "'x CNN': the fit time over the CNN's in this run (the CNN's includes predicting the test split).", "",
             "| dataset | method | folds | epochs run | theta kept | accuracy | probe acc | ROC-AUC | MCC | fit s "
             "| x CNN | peak RSS MB | test rec/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in summary:
        def cell(metric):
            value = e.get(metric)
            if value is None:
                return "n/a"
            text = f"{value:.4f}"
            return text + (f" ± {e[metric + '_std']:.4f}" if metric + "_std" in e else "")
        rate = "n/a" if e["test_records_per_s"] is None else f"{e['test_records_per_s']:.0f}"
        ratio = "-" if e["fit_vs_cnn"] is None else f"{e['fit_vs_cnn']:.1f}"
        lines.append(f"| {e['dataset']} | {e['method']} | {e['folds']} | {e['epochs']} | {e['kept']} | {cell('accuracy')} "
                     f"| {cell('probe_test_accuracy')} | {cell('roc_auc')} | {cell('mcc')} | {e['fit_seconds']:.0f} | "
                     f"{ratio} | {e['peak_rss_mb']:.0f} | {rate} |")
    lines += ["", "Published: " + "; ".join(f"{k}: {v}" for k, v in PUBLISHED.items()) + ".",
              "Baselines' fit time includes predicting the test split (no separate throughput)."]
    (RESULTS / f"{args.results_name}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="amp,bbbp,bace,clintox_ct_tox,clintox_fda_approved,toxinpred")
    parser.add_argument("--amp-modes", default="sparse,dense,prompt", help="R2DL bridge modes compared on AMP")
    parser.add_argument("--preset", default="best", help="sequence preset of xmodal.presets (default best)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting changed from the preset, e.g. epochs=20 (JSON value); repeatable")
    parser.add_argument("--folds", type=int, default=5, help="ToxinPred folds actually run (of 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs already in the results file and skip them (a stopped run continues)")
    parser.add_argument("--results-name", default="r2dl", help="results file stem under benchmarks/results")
    parser.add_argument("--merge-from", default="",
                        help="comma-separated results stems whose runs are added (parts run as separate processes)")
    args = parser.parse_args()
    args.overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            args.overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            args.overrides[key] = value  # a bare word: a string setting
    resolve_settings("sequence", args.preset, args.overrides)  # refuses unknown or bad settings before any fit
    from adapters_modal.text import load_text_source

    source = load_text_source("minilm-l6")
    rows, started = [], time.perf_counter()
    parts = []
    stems = ([args.results_name] if args.resume and (RESULTS / f"{args.results_name}.json").is_file() else [])
    for stem in stems + list(filter(None, args.merge_from.split(","))):
        earlier = json.loads((RESULTS / f"{stem}.json").read_text())
        for row in earlier["runs"]:  # runs written before epochs_max was recorded per run
            if row["method"].startswith("r2dl-") and "epochs_max" not in row:
                row["epochs_max"] = earlier["settings"]["epochs"]
        rows += earlier["runs"]
        parts += earlier.get("parts", []) + [earlier["command"]]
    done = {(r["dataset"], r["fold"], r["method"]) for r in rows}
    baselines = ["composition-logreg", "cnn-scratch", "lm-text-linear"]
    write(rows, args, started, parts)
    for name in filter(None, args.datasets.split(",")):
        modes = args.amp_modes.split(",") if name == "amp" else ["sparse"]
        for fold, alphabet, train, val, test in splits(name, args.seed)[: args.folds]:
            for method in [f"r2dl-{m}" for m in modes] + baselines:
                if (name, fold, method) in done:
                    continue
                row = {"dataset": name, "fold": fold, **run_method(method, alphabet, train, val, test, args, source)}
                print(json.dumps({k: v for k, v in row.items() if k != "sparsity"}), flush=True)
                rows.append(row)
                write(rows, args, started, parts)


if __name__ == "__main__":
    main()
