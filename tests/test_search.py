"""Hyper-parameter search (GridSearchCV over the estimator): training data only, seeded, a
choice from the documented grid."""

import json

import numpy as np
import pytest

from cli import main
from tests.conftest import UCR
from xmodal.errors import DataError
from xmodal.estimators.series import V2SClassifier
from xmodal.settings import SETTINGS
from xmodal.training.search import GRIDS, resolve_grid, search

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
    # the grids place the series as waveform samples: the v2s preset
    return cls("v2s", search=search, epochs=1, patience=1, random_state=seed).fit(data.x_train[:, None, :],
                                                                                  data.y_train)


def test_selection_sees_training_series_only(coffee):
    RecordingV2S.seen = []
    classifier = _fit(coffee, cls=RecordingV2S)
    train_rows = {row.tobytes() for row in coffee.x_train}
    test_rows = {row.tobytes() for row in coffee.x_test} - train_rows
    seen = {row.tobytes() for row in RecordingV2S.seen}
    # the outer fit's 28, then GridSearchCV: each candidate fitted on 21 (3/4) and its held-out 7 scored twice
    # (accuracy reads predict, log-loss predict_proba), then the winner refitted on all 28
    n = len(coffee.x_train)
    assert len(RecordingV2S.seen) == n + len(GRID) * (21 + 2 * 7) + n
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
    RecordingV2S.seen = []
    winner, result = search(RecordingV2S("v2s"), coffee.x_train[:, None, :], coffee.y_train, GRID, seed=0, folds=3)
    assert result.method == "3-fold" and len(result.scores) == len(GRID)
    # each candidate fitted on 2 folds and scored (twice) on the third, 3 times; the winner refitted on all 28
    n = len(coffee.x_train)
    assert len(RecordingV2S.seen) == len(GRID) * (2 * n + 2 * n) + n
    assert winner.settings_["mapping"] == result.best["mapping"] and winner.fit_result_.n_fit == 28
    with pytest.raises(DataError, match="5-fold search needs at least 5 training samples per class"):
        keep = np.r_[np.flatnonzero(coffee.y_train == 0)[:4], np.flatnonzero(coffee.y_train == 1)]
        search(V2SClassifier("v2s"), coffee.x_train[keep, None, :], coffee.y_train[keep], GRID, seed=0, folds=5)


def test_a_class_too_small_to_hold_out_is_refused_before_any_fit(coffee):
    """One series of a class leaves no stratified held-out part: the search says so (the old
    fallback to the first candidate hid that nothing was searched)."""
    keep = np.r_[np.flatnonzero(coffee.y_train == 0)[:1], np.flatnonzero(coffee.y_train == 1)]
    RecordingV2S.seen = []
    classifier = RecordingV2S("v2s", search=GRID, epochs=1, patience=1, random_state=0)
    with pytest.raises(DataError, match="at least 2 training samples per class"):
        classifier.fit(coffee.x_train[keep, None, :], coffee.y_train[keep])
    assert len(RecordingV2S.seen) == len(keep)  # the outer fit's call only: no candidate was trained


def test_the_small_grid_covers_the_documented_settings():
    small = resolve_grid("small", tuple(SETTINGS["series"]))
    assert len(small) == 8
    varied = {key for candidate in small for key in candidate if len({repr(c.get(key)) for c in small}) > 1}
    assert varied == {"mapping", "copies", "upsample_factor", "target_duration", "masked", "lr", "epochs"}


@pytest.mark.parametrize("grid, message", [("huge", "unknown search grid"), ([], "empty"),
                                           ([{"epochs": 1, "depth": 4}], "depth")])
def test_bad_grids_are_named(grid, message):
    with pytest.raises(DataError, match=message):
        resolve_grid(grid, tuple(SETTINGS["series"]))


@pytest.mark.slow
def test_cli_search_records_grid_scores_and_choice(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "series", "--dataset", "Coffee", "--data-dir", str(UCR), "--preset", "v2s", "--out", str(out),
                 "--search", "tiny", "--seed", "2", "--quiet"]) == 0
    search = json.loads((out / "metrics.json").read_text())["search"]
    assert search["grid"] == GRIDS["tiny"] and len(search["scores"]) == len(GRIDS["tiny"])
    assert search["best"] == GRIDS["tiny"][search["best_index"]]
    printed = capsys.readouterr().out
    assert "chosen settings" in printed and f"{search['scores'][search['best_index']]['accuracy']:.4f}" in printed
    saved = json.loads((out / "reprogrammer.json").read_text())
    assert saved["output_map"]["kind"] == search["best"]["mapping"]
    assert saved["metadata"]["search"]["best"] == search["best"]
