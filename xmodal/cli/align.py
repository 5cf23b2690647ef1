"""`xmodal align RUN --source-samples PATH`: the Theorem-1 terms of a saved run.

    xmodal align runs/coffee --source-samples speech_words/      # W1, risks and the bound
    xmodal align runs/amp --source-samples sentences.txt --representation features

Reads the run's own data (the test split by default; --dataset for another), the source
samples (a folder of audio files for speech sources, a .txt of sentences for language
models, or a .npy of precomputed source representations for any source), and reports
W1 before and after training, the source and target risks and the bound: a table on
stdout, optionally JSON and a PNG. Table runs read image-style sources, for which xmodal
has no reader of source-domain samples: they take a .npy of representations only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from xmodal.cli.arguments import add_device_flag
from xmodal.cli.tasks import add_run_data_flags
from xmodal.errors import DataError


def add_parser(commands) -> None:
    align = commands.add_parser("align", help="Wasserstein alignment and the V2S risk bound of a saved run",
                                description="Measure how the reprogrammed target data sits against source-domain "
                                            "samples in the frozen source's representation (any task's run).")
    align.add_argument("run_dir", metavar="RUN", help="a run folder written by `xmodal fit`")
    align.add_argument("--source-samples", required=True, metavar="PATH",
                       help="source-domain samples: a folder of audio files (labelled by folder or file name), a .txt "
                            "of sentences (language models) or a .npy of source representations (any source)")
    align.add_argument("--method", choices=("auto", "exact", "sinkhorn", "sliced"), default="auto",
                       help="W1 estimator (default auto: exact, on subsamples with a bootstrap CI when large)")
    align.add_argument("--representation", choices=("logits", "features"), default="logits",
                       help="source logits (the theorem's z_S, default) or penultimate features")
    add_run_data_flags(align)
    add_device_flag(align)
    align.add_argument("--split", choices=("test", "train"), default="test", help="target split (default test)")
    align.add_argument("--json", metavar="OUT.json", help="write the report as JSON")
    align.add_argument("--plot", metavar="OUT.png", help="write a 2-D PCA plot of both distributions, before and after")
    align.set_defaults(run=run_align)


def format_table(report: dict) -> str:
    def number(value):
        return "n/a" if value is None else f"{value:.4f}"

    def interval(value):
        return "" if value is None else f"  (95 % bootstrap CI of the subsampled W1: {value[0]:.4f} to {value[1]:.4f})"

    rows = [
        ("method", report["method"]),
        ("representation", f"{report['representation']} (K = {report['num_source_classes']} source classes)"),
        ("samples", f"{report['n_source']} source, {report['n_target']} target"),
        ("source risk", number(report["source_risk"])),
    ]
    stages = (("before training", "w1_before", "slack_before", "bound_before", "target_risk_before",
               "bound_holds_before"),
              ("after training", "w1_after", "slack_after", "bound", "target_risk", "bound_holds"))
    for stage, w1, slack, bound, risk, holds in stages:
        verdict = report[holds]
        rows += [
            (f"{stage}: W1", number(report[w1]) + interval(report[f"{w1}_interval"])),
            (f"{stage}: 2 sqrt(K) W1", number(report[slack])),
            (f"{stage}: bound", number(report[bound])),
            (f"{stage}: target risk", number(report[risk])),
            (f"{stage}: bound holds", "n/a" if verdict is None else ("yes" if verdict else "NO")),
        ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _class_indices(labels, classes: list) -> np.ndarray:
    return np.array([classes.index(label) for label in np.asarray(labels).tolist()])


def _model_input(task_name: str, estimator, records):
    """The target samples as the reprogrammer's bridge takes them."""
    import torch

    if task_name == "series":
        return torch.tensor(np.asarray(records.X), dtype=torch.float32)
    if task_name == "sequence":
        return estimator.encode(records.X, records.ids).ids
    return estimator.reprogrammer_.bridge.encode(records.X)


def run_seed(run) -> int:
    """The seed the run was fitted with, from which the untrained ("before") state is rebuilt
    (a head's draw, R2DL's random start). A run saved before seeds were recorded gets 0, the
    default of `xmodal fit --seed`, and a note on stderr says so."""
    seed = run.metadata.get("seed")
    if seed is None:
        print(f"note: {run.folder} records no seed (saved by an older xmodal): the untrained state is rebuilt with "
              "seed 0, the default of `xmodal fit --seed`; a fit with another seed started elsewhere", file=sys.stderr)
        return 0
    return int(seed)


def run_align(args: argparse.Namespace) -> None:
    from adapters_modal.fused import FUSED
    from xmodal.cli.evaluate import load
    from xmodal.data.source_samples import read_source_samples
    from xmodal.plots import plot_alignment
    from xmodal.risk_bound import measure_alignment, source_representations, source_risk

    run, task, estimator = load(args)
    model = estimator.reprogrammer_
    if run.task == "table" and Path(args.source_samples).suffix != ".npy":
        raise DataError(f"a table run reads the image-style source {model.source.name}, and xmodal has no reader of "
                        "source-domain samples for image-style sources; give the source's representations of its "
                        "own samples as a .npy file")
    if model.source.input_spec.modality == FUSED:
        raise DataError(f"{model.source.name} fuses several sources, whose inputs and representations differ: there "
                        "is no one source distribution to align with; align a run of one of them")
    if model.source.input_spec.modality == "text" and args.representation == "logits":
        raise DataError(f"{model.source.name} is a language model without classes, so it has no logits; "
                        "use --representation features")
    records = task.load_run(run, estimator, args, args.split)
    classes = list(model.classes)
    x, labels = _model_input(run.task, estimator, records), _class_indices(records.y, classes)
    fit_data = None
    if run.task == "series" and getattr(model.output_map, "remap_every", 0) > 0:  # ilm / blm rebuild their first map
        train = task.load_run(run, estimator, args, "train")
        fit_data = (_model_input(run.task, estimator, train), _class_indices(train.y, classes))
    samples = read_source_samples(args.source_samples, model.source)
    risk = None if samples.labels is None else source_risk(model.source, samples.inputs, samples.labels)
    if samples.labels is None:
        print(f"note: no source risk, so no bound: {samples.unlabelled_reason}", file=sys.stderr)
    points = (samples.representations if samples.representations is not None
              else source_representations(model.source, samples.inputs, args.representation))
    seed = run_seed(run)
    measurement = measure_alignment(model, x, labels, points, risk, args.representation, args.method,
                                    seed=seed, fit_data=fit_data)
    report = {"run_dir": str(args.run_dir), "task": run.task, "dataset": records.name, "split": args.split,
              "source_samples": samples.description, "seed": seed, **measurement.to_dict()}
    print(f"{records.name} ({args.split} split) against {samples.description}")
    print(format_table(report))
    if args.json:
        from xmodal.cli.runs import write_json

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_json(Path(args.json), report)
        print(f"wrote {args.json}")
    if args.plot:
        plot_alignment(measurement, args.plot, f"{records.name}: source {args.representation} vs reprogrammed target")
        print(f"wrote {args.plot}")
