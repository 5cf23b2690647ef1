"""Run figures (xmodal.plots): learning curve and confusion matrix written as real PNG files,
atomically, from real training records and real predictions."""

import os

import numpy as np
import pytest

from xmodal.errors import DataError
from xmodal.plots import confusion_matrix, learning_curve

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# The records FitResult.history holds: epoch 0 is the start state (validation only).
HISTORY = [{"epoch": 0, "val_loss": 0.69, "val_accuracy": 0.5},
           {"epoch": 1, "train_loss": 0.66, "val_loss": 0.61, "val_accuracy": 0.7},
           {"epoch": 2, "train_loss": 0.52, "val_loss": 0.48, "val_accuracy": 0.8, "remapped": True},
           {"epoch": 3, "train_loss": 0.41, "val_loss": 0.50, "val_accuracy": 0.8}]


def assert_png(path):
    assert path.is_file() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # no temporary left behind


def test_learning_curve_png(tmp_path):
    path = learning_curve(HISTORY, tmp_path / "figures" / "curve.png", best_epoch=2)
    assert path == tmp_path / "figures" / "curve.png"
    assert_png(path)
    assert os.stat(path).st_mode & 0o044  # readable like any other file, not mkstemp's 0600


def test_learning_curve_without_validation_or_epochs(tmp_path):
    no_validation = [{"epoch": e, "train_loss": 1.0 / e} for e in (1, 2, 3)]
    assert_png(learning_curve(no_validation, tmp_path / "train_only.png"))
    assert_png(learning_curve([], tmp_path / "nothing.png", best_epoch=0))


@pytest.mark.slow
def test_learning_curve_from_a_real_fit(tmp_path, gunpoint):
    from xmodal.estimators.series import V2SClassifier

    model = V2SClassifier("tones", epochs=2, patience=2, random_state=0)
    model.fit(gunpoint.x_train[:, None, :], gunpoint.y_train)
    result = model.fit_result_
    assert_png(learning_curve(result.history, tmp_path / "fit.png", best_epoch=result.best_epoch))
    predicted = model.predict(gunpoint.x_test[:, None, :])
    assert_png(confusion_matrix(gunpoint.y_test, predicted, model.classes_, tmp_path / "confusion.png"))


def test_confusion_matrix_png_and_overwrite(tmp_path):
    rng = np.random.default_rng(0)
    classes = ["cat", "dog", "owl"]
    y_true = rng.choice(classes, 60)
    y_pred = np.where(rng.random(60) < 0.7, y_true, rng.choice(classes, 60))
    path = tmp_path / "confusion.png"
    path.write_bytes(b"old")
    confusion_matrix(y_true, y_pred, classes, path)
    assert_png(path)
    many = [str(i) for i in range(15)]
    assert_png(confusion_matrix(rng.choice(many, 200), rng.choice(many, 200), many, tmp_path / "fifteen.png"))


def test_unknown_image_format_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"curve\.xyz.*'xyz'"):
        learning_curve(HISTORY, tmp_path / "curve.xyz")
    assert not list(tmp_path.iterdir())
