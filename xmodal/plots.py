"""A picture of alignment: source and reprogrammed target representations in 2-D.

One PCA is fitted on all three clouds together (source, target before,
target after), so both panels share axes and distances on the page are
comparable. The W1 values in the titles are the full-dimensional ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xmodal.risk_bound import AlignmentMeasurement


def _shared_projection(*clouds: np.ndarray) -> list[np.ndarray]:
    stacked = np.concatenate(clouds)
    centre = stacked.mean(axis=0)
    _, _, axes = np.linalg.svd(stacked - centre, full_matrices=False)
    return [(cloud - centre) @ axes[:2].T for cloud in clouds]


def plot_alignment(measurement: AlignmentMeasurement, path: str | Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
