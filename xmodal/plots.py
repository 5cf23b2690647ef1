"""Figures of a run: alignment, learning curve, confusion matrix.

- `plot_alignment`: source and reprogrammed target representations in 2-D. One PCA is
  fitted on all three clouds together (source, target before, target after), so both
  panels share axes and distances on the page are comparable. The W1 values in the
  titles are the full-dimensional ones.
- `learning_curve`: per-epoch training and validation loss and validation accuracy
  from a FitResult's history, the selected epoch marked.
- `confusion_matrix`: test labels against predictions (scikit-learn's display).

Matplotlib's Agg backend (files only, no display). Every file is written atomically:
drawn to a temporary name in the target folder, then renamed over the target, so a
reader never sees half a file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xmodal.atomic import atomic_write
from xmodal.errors import DataError
from xmodal.risk_bound import AlignmentMeasurement


def _shared_projection(*clouds: np.ndarray) -> list[np.ndarray]:
    stacked = np.concatenate(clouds)
    centre = stacked.mean(axis=0)
    _, _, axes = np.linalg.svd(stacked - centre, full_matrices=False)
    return [(cloud - centre) @ axes[:2].T for cloud in clouds]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: str | Path, dpi: int = 110) -> Path:
    """Write `figure` to `path` atomically (a temporary file in the same folder, then
    os.replace) in the format its suffix names (PNG without one), and close it."""
    plt = _pyplot()
    path = Path(path)
    kind = path.suffix[1:].lower() or "png"
    if kind not in figure.canvas.get_supported_filetypes():
        plt.close(figure)
        raise DataError(f"{path}: cannot write a {kind!r} image; use one of "
                        f"{', '.join(sorted(figure.canvas.get_supported_filetypes()))}")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(path, lambda temporary: figure.savefig(temporary, dpi=dpi, format=kind))
    finally:
        plt.close(figure)
    return path


def plot_alignment(measurement: AlignmentMeasurement, path: str | Path, title: str = "") -> Path:
    plt = _pyplot()

    source, before, after = _shared_projection(
        measurement.source_points, measurement.before_points, measurement.after_points)
    figure, panels = plt.subplots(1, 2, figsize=(11, 5), sharex=True, sharey=True)
    for panel, target, stage, label in ((panels[0], before, measurement.before, "before training"),
                                         (panels[1], after, measurement.after, "after training")):
        panel.scatter(source[:, 0], source[:, 1], s=14, alpha=0.6, c="tab:blue", label="source samples")
        panel.scatter(target[:, 0], target[:, 1], s=14, alpha=0.6, c="tab:orange", label="reprogrammed target")
        bound = "" if stage.bound is None else f", bound {stage.bound:.2f}"
        panel.set_title(f"{label}: W1 = {stage.w1.value:.3f}\ntarget risk {stage.target_risk:.3f}{bound}")
        panel.set_xlabel("PC 1")
        panel.legend(loc="best", fontsize=8)
    panels[0].set_ylabel("PC 2")
    figure.suptitle(title or f"source {measurement.representation}, 2-D PCA of both distributions")
    figure.tight_layout()
    return _save(figure, path)


def _series(history: list[dict], key: str) -> tuple[list[int], list[float]]:
    points = [(r["epoch"], r[key]) for r in history if r.get(key) is not None]
    return [e for e, _ in points], [v for _, v in points]


def learning_curve(history: list[dict], path: str | Path, best_epoch: int | None = None, title: str = "") -> Path:
    """Loss (train and validation) and validation accuracy per epoch, from FitResult.history
    records {"epoch", "train_loss", "val_loss", "val_accuracy"}. Epoch 0 is the start state
    (validation only, no train_loss); a run without validation has train_loss alone. The
    selected epoch, when given, is a dashed line on both panels. A history without any
    epoch (no training, no validation) gives a figure that says so."""
    plt = _pyplot()
    figure, (loss_panel, accuracy_panel) = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    drawn = False
    for key, label, style in (("train_loss", "training loss", "-o"), ("val_loss", "validation loss", "-s")):
        epochs, values = _series(history, key)
        if epochs:
            loss_panel.plot(epochs, values, style, markersize=3, label=label)
            drawn = True
    epochs, values = _series(history, "val_accuracy")
    if epochs:
        accuracy_panel.plot(epochs, values, "-s", markersize=3, color="tab:green", label="validation accuracy")
        accuracy_panel.set_ylim(-0.02, 1.02)
    else:
        accuracy_panel.text(0.5, 0.5, "no validation part", ha="center", va="center", transform=accuracy_panel.transAxes)
    if not drawn:
        loss_panel.text(0.5, 0.5, "no epochs recorded (no training)", ha="center", va="center",
                        transform=loss_panel.transAxes)
    for panel, ylabel in ((loss_panel, "cross-entropy"), (accuracy_panel, "accuracy")):
        if best_epoch is not None and drawn:
            panel.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label=f"selected epoch {best_epoch}")
        panel.set_xlabel("epoch (0 = start state)")
        panel.set_ylabel(ylabel)
        if panel.get_legend_handles_labels()[0]:
            panel.legend(loc="best", fontsize=8)
    if drawn:
        loss_panel.xaxis.get_major_locator().set_params(integer=True)
    figure.suptitle(title or "learning curve")
    figure.tight_layout()
    return _save(figure, path)


def confusion_matrix(y_true, y_pred, classes, path: str | Path, title: str = "") -> Path:
    """Counts of test labels (rows) against predictions (columns), in `classes` order."""
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _pyplot()
    classes = list(classes)
    size = min(max(4.0, 0.55 * len(classes) + 2.5), 16.0)
    figure, axes = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay.from_predictions(np.asarray(y_true), np.asarray(y_pred), labels=classes,
                                            display_labels=[str(c) for c in classes], ax=axes, colorbar=False, cmap="Blues",
                                            xticks_rotation=45 if len(classes) > 4 else "horizontal")
    accuracy = float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if len(y_true) else float("nan")
    axes.set_title(title or f"confusion matrix\naccuracy {accuracy:.3f}, {len(y_true)} samples")
    figure.tight_layout()
    return _save(figure, path)
