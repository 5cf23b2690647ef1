"""Hyper-parameter search: training data only, seeded, a choice from the documented grid."""

import json

import numpy as np
import pytest

from cli import main
from tests.conftest import UCR
from xmodal.errors import DataError
from xmodal.estimators.series import V2SClassifier
from xmodal.training.search import GRIDS, resolve_grid, select_hyperparameters

# Two one-epoch candidates: enough to exercise the selection, fast on real data.
GRID = [{"mapping": "frequency", "epochs": 1}, {"mapping": "linear", "epochs": 1, "lr": 0.01}]


class RecordingV2S(V2SClassifier):
    """V2SClassifier that records every series it is fitted on or asked to score."""

    seen: list = []

    def _fit(self, X, y):
        RecordingV2S.seen.extend(X[:, 0, :])
        return super()._fit(X, y)

    def _predict_proba(self, X):
        RecordingV2S.seen.extend(X[:, 0, :])
        return super()._predict_proba(X)


@pytest.fixture(scope="module")
def coffee():
    from xmodal.data.ucr import load_ucr

    return load_ucr("Coffee", UCR)


def _fit(data, seed=0, search=GRID, cls=V2SClassifier):
    return cls(search=search, epochs=1, patience=1, random_state=seed).fit(data.x_train[:, None, :], data.y_train)


def test_selection_sees_training_series_only(coffee):
    RecordingV2S.seen = []
    classifier = _fit(coffee, cls=RecordingV2S)
    train_rows = {row.tobytes() for row in coffee.x_train}
    test_rows = {row.tobytes() for row in coffee.x_test} - train_rows
    seen = {row.tobytes() for row in RecordingV2S.seen}
    # candidates were fitted on 3/4 of the training split and scored on the rest, then the winner refitted
    assert len(RecordingV2S.seen) == 2 * len(coffee.x_train) + len(coffee.x_train)
    assert seen == train_rows and not seen & test_rows
    assert classifier.search_result_.method == "holdout 0.25"


def test_search_is_reproducible_and_picks_from_the_grid(coffee):
    first, second = _fit(coffee, seed=3), _fit(coffee, seed=3)
    assert first.search_result_.scores == second.search_result_.scores
    assert first.search_result_.best == second.search_result_.best
    assert first.search_result_.best in GRID
    assert first.reprogrammer_.output_map.kind == first.search_result_.best["mapping"]
    np.testing.assert_array_equal(first.predict_proba(coffee.x_test[:, None, :]),
                                  second.predict_proba(coffee.x_test[:, None, :]))


def test_ranking_is_held_out_accuracy_then_log_loss(coffee):
    result = _fit(coffee, seed=1).search_result_
    best = result.scores[result.best_index]
    assert all(best["accuracy"] >= s["accuracy"] for s in result.scores)
    assert all(best["log_loss"] <= s["log_loss"] for s in result.scores if s["accuracy"] == best["accuracy"])


def test_k_fold_selection_scores_every_fold(coffee):
    result = select_hyperparameters(V2SClassifier(), coffee.x_train[:, None, :], coffee.y_train, GRID, seed=0, folds=3)
    assert result.method == "3-fold" and all(len(s["split_accuracies"]) == 3 for s in result.scores)


def test_a_class_too_small_to_hold_out_uses_the_first_candidate(coffee):
    keep = np.r_[np.flatnonzero(coffee.y_train == 0)[:1], np.flatnonzero(coffee.y_train == 1)]
    classifier = V2SClassifier(search=GRID, epochs=1, patience=1, random_state=0)
    classifier.fit(coffee.x_train[keep, None, :], coffee.y_train[keep])
    result = classifier.search_result_
    assert result.best_index == 0 and result.scores == [] and result.method.startswith("skipped")


def test_the_small_grid_covers_the_documented_settings():
    small = resolve_grid("small")
    assert len(small) == 8
    varied = {key for candidate in small for key in candidate if len({repr(c.get(key)) for c in small}) > 1}
    assert varied == {"mapping", "copies", "upsample_factor", "target_duration", "masked", "lr", "epochs"}


@pytest.mark.parametrize("search, message", [("huge", "unknown search grid"), ([], "empty"),
                                             ([{"epochs": 1, "batch_size": 4}], "batch_size")])
def test_bad_grids_are_named(search, message):
    with pytest.raises(DataError, match=message):
        resolve_grid(search)


def test_cli_search_records_grid_scores_and_choice(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "--dataset", "Coffee", "--data-dir", str(UCR), "--out", str(out), "--search", "tiny",
                 "--seed", "2", "--quiet"]) == 0
    search = json.loads((out / "metrics.json").read_text())["search"]
    assert search["grid"] == GRIDS["tiny"] and len(search["scores"]) == len(GRIDS["tiny"])
    assert search["best"] == GRIDS["tiny"][search["best_index"]]
    printed = capsys.readouterr().out
    assert "chosen settings" in printed and f"{search['scores'][search['best_index']]['accuracy']:.4f}" in printed
    saved = json.loads((out / "reprogrammer.json").read_text())
    assert saved["output_map"]["kind"] == search["best"]["mapping"]
    assert saved["metadata"]["search"]["best"] == search["best"]
