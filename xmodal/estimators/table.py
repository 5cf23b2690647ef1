"""Reprogramming an image-style source for a table: split, encode, fit, score.

Used by `xmodal fit --task table` and benchmarks/bench_table.py. The test
split is stratified and seeded; the encoder statistics, the label mapping and
model selection all come from the training part only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.metrics import average_precision_score
from sklearn.model_selection import train_test_split

from adapters_modal.base import SourceModel
from xmodal.blackbox import BlackBoxConfig, fit_through_hidden_gradients
from xmodal.bridges.table_encoding import TableEncoder
from xmodal.bridges.table_to_image import TableToImage, TableToImageConfig
from xmodal.errors import DataError
from xmodal.maps import build_output_map
from xmodal.reprogrammer import Reprogrammer
from xmodal.metrics import classification_scores
from xmodal.data.tables import TableDataset
from xmodal.training.loop import TrainConfig, fit_reprogrammer

TABLE_SOURCE = "bc-resnet-gsc35-image"


@dataclass
class TableSplit:
    train: TableDataset
    test: TableDataset
    classes: list

    def targets(self, part: TableDataset) -> np.ndarray:
        """Class indices; a label unseen in training is an error."""
        index = {c: i for i, c in enumerate(self.classes)}
        unknown = sorted({str(v) for v in part.labels if v not in index})
        if unknown:
            raise DataError(f"labels {unknown[:5]} were not seen in training (classes: {self.classes})")
        return np.array([index[v] for v in part.labels], dtype=np.int64)


def split_table(data: TableDataset, test_size: float, seed: int) -> TableSplit:
    """Stratified, seeded train/test split; class labels sorted."""
    if not 0 < test_size < 1:
        raise DataError(f"--test-size must be in (0, 1), got {test_size}")
    classes = data.classes
    if len(classes) < 2:
        raise DataError(f"{data.name}: the labels hold a single class; a classifier needs at least 2")
    counts = {c: int((data.labels == c).sum()) for c in classes}
    if min(counts.values()) < 2:
        raise DataError(f"{data.name}: class counts {counts}; every class needs at least 2 rows for a stratified split")
    rows = np.arange(len(data.labels))
    train, test = train_test_split(rows, test_size=test_size, stratify=data.labels.astype(str), random_state=seed)
    return TableSplit(_rows(data, train), _rows(data, test), classes)


def _rows(data: TableDataset, indices: np.ndarray) -> TableDataset:
    indices = np.sort(indices)
    return TableDataset(data.name, data.features.iloc[indices].reset_index(drop=True), data.labels[indices])


def positive_class(split: TableSplit):
    """For two classes: the rarer one in training (fraud, bad credit), ties -> the second."""
    counts = [int((split.train.labels == c).sum()) for c in split.classes]
    return split.classes[0] if counts[0] < counts[1] else split.classes[1]


def classification_metrics(probabilities: np.ndarray, targets: np.ndarray, split: TableSplit) -> dict:
    """test_accuracy for any task; test_roc_auc and test_pr_auc (average precision) when binary."""
    scores = classification_scores(targets, probabilities, np.arange(len(split.classes)))
    metrics = {"test_accuracy": scores["accuracy"]}
    if len(split.classes) == 2:
        # ROC-AUC does not depend on which class is positive; PR-AUC does: the rarer class is.
        positive = positive_class(split)
        column = split.classes.index(positive)
        metrics.update(positive_class=positive, test_roc_auc=scores["roc_auc"],
                       test_pr_auc=float(average_precision_score(targets == column, probabilities[:, column])))
    return metrics


@dataclass
class TableOptions:
    mapping: str = "frequency"
    labels_per_class: int | None = None
    encoding: str = "onehot"
    missing: str = "error"
    layout: dict = field(default_factory=dict)  # TableToImageConfig layout fields
    train: TrainConfig = field(default_factory=TrainConfig)  # a BlackBoxConfig trains black-box


def build_table_reprogrammer(source: SourceModel, train: TableDataset, classes: list,
                             options: TableOptions) -> Reprogrammer:
    encoder = TableEncoder.fit(train.features, encoding=options.encoding, missing=options.missing)
    config = TableToImageConfig.for_source(source.input_spec, encoder, **options.layout)
    bridge = TableToImage(config, seed=options.train.seed)
    output_map = build_output_map(options.mapping, source.num_classes, len(classes), options.labels_per_class,
                                  seed=options.train.seed)
    return Reprogrammer(bridge, source, output_map, classes)


def fit_table(source: SourceModel, split: TableSplit, options: TableOptions) -> tuple[Reprogrammer, dict]:
    """(trained reprogrammer, metrics on the test split)."""
    model = build_table_reprogrammer(source, split.train, split.classes, options)
    x_train, x_test = model.bridge.encode(split.train.features), model.bridge.encode(split.test.features)
    y_train = torch.as_tensor(split.targets(split.train), dtype=torch.long)
    start = time.perf_counter()
    if isinstance(options.train, BlackBoxConfig):
        result = fit_through_hidden_gradients(model, x_train, y_train, options.train)
    else:
        result = fit_reprogrammer(model, x_train, y_train, options.train)
    fit_seconds = time.perf_counter() - start
    probabilities = model.predict_proba(x_test).numpy()
    test_targets = split.targets(split.test)
    metrics = {
        "dataset": split.train.name, "source": source.name, "n_train": len(split.train.labels),
        "n_test": len(split.test.labels), "n_classes": len(split.classes), "classes": split.classes,
        "n_columns": len(model.bridge.encoder.columns), "n_features_drawn": model.bridge.encoder.num_features,
        **classification_metrics(probabilities, test_targets, split),
        "majority_rate": float(np.bincount(test_targets).max() / len(test_targets)),
        "val_accuracy": result.val_accuracy, "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
        "selection": result.selection, "fit_seconds": round(fit_seconds, 2), "seed": options.train.seed,
        "training": "black-box" if isinstance(options.train, BlackBoxConfig) else "white-box",
    }
    if isinstance(options.train, BlackBoxConfig):
        metrics.update(queries_used=result.queries_used, query_budget=result.query_budget,
                       queries_per_second=round(result.queries_per_second, 1), stopped_by=result.stopped_by)
    return model, metrics
