"""`xmodal fit --task table`: reprogram an image-style source for a CSV table.

    xmodal fit --task table --dataset data.csv --label-column Class [--test-size 0.2]
    xmodal fit --task table --dataset ../shared/data/tabular/german_credit_uci --blackbox --query-budget 30000

Writes the reprogrammer (JSON + safetensors, encoder statistics included) and
metrics.json (test_accuracy; test_roc_auc and test_pr_auc for binary tasks;
queries_used for black-box training) into the run folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    table = parser.add_argument_group("table task (--task table)")
    table.add_argument("--encoding", choices=["onehot", "ordinal"], default="onehot",
                       help="categorical columns: one cell per category, or one cell per column")
    table.add_argument("--cell-size", type=int, default=2, help="side in pixels of the square each feature is drawn as")
    table.add_argument("--gap", type=int, default=0, help="pixels between feature squares")
    table.add_argument("--placement", choices=["centre", "top-left"], default="centre",
                       help="where the grid of feature squares sits on the image")


def train_config(args):
    """TrainConfig from the CLI, or a BlackBoxConfig with --blackbox."""
    from xmodal.blackbox import BlackBoxConfig
    from xmodal.training.loop import TrainConfig

    settings = dict(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, val_fraction=args.val_fraction,
                    patience=args.patience, seed=args.seed, progress=not args.quiet)
    if args.blackbox:
        return BlackBoxConfig(**settings, query_budget=args.query_budget)
    return TrainConfig(**settings)


def cmd_fit_table(args, write_json) -> None:
    from adapters_modal import load_source
    from xmodal.persistence import save_reprogrammer
    from xmodal.data.tables import load_table
    from xmodal.estimators.table import TABLE_SOURCE, TableOptions, fit_table, split_table

    source = load_source(args.source or TABLE_SOURCE, args.weights)
    options = TableOptions(
        mapping=args.mapping, labels_per_class=args.labels_per_class, encoding=args.encoding,
        missing="impute" if args.impute else "error", train=train_config(args),
        layout={"cell_height": args.cell_size, "cell_width": args.cell_size, "gap": args.gap,
                "placement": args.placement},
    )
    split = split_table(load_table(args.dataset, args.label_column), args.test_size, args.seed)
    out = Path(args.out or f"runs/{split.train.name}")
    print(f"fitting {split.train.name}: {len(split.train.labels)} train / {len(split.test.labels)} test rows, "
          f"{split.train.features.shape[1]} columns, {len(split.classes)} classes, source {source.name}"
          f"{' (black box)' if args.blackbox else ''}", file=sys.stderr)
    model, metrics = fit_table(source, split, options)
    save_reprogrammer(model, out, {"task": "table", "dataset": split.train.name, "label_column": args.label_column,
                                   "metrics": metrics})
    write_json(out / "metrics.json", metrics)
    for key in ("test_accuracy", "test_roc_auc", "test_pr_auc", "majority_rate", "queries_used"):
        if key in metrics:
            print(f"{key}: {metrics[key]:.4f}" if isinstance(metrics[key], float) else f"{key}: {metrics[key]}")
    print(f"saved to {out}/ (reprogrammer.json, reprogrammer.safetensors, metrics.json)")
