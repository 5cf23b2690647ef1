"""Baselines (xmodal.baselines) on small real sets: GunPoint, a subset of AMP Scanner v2's
peptides and of BBBP's molecules, German credit. Accuracies must be sensible, the output
(n_test, n_classes) probabilities with columns in np.unique(y_train) order."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tests.conftest import SHARED
from xmodal.baselines import BASELINES, fit_predict
from xmodal.errors import DataError

AMP = SHARED / "data" / "peptides" / "amp_scanner_v2_veltri2018"
BBBP = SHARED / "data" / "molecules" / "bbbp.csv"
GERMAN = SHARED / "data" / "tabular" / "german_credit_uci"


def check_probabilities(proba, n_test, n_classes):
    assert proba.shape == (n_test, n_classes) and proba.dtype == np.float64
    assert np.all(proba >= 0) and np.allclose(proba.sum(axis=1), 1)


def accuracy(proba, y_train, y_test):
    return float(np.mean(np.unique(y_train)[proba.argmax(axis=1)] == y_test))


@pytest.fixture(scope="module")
def peptides():
    """600 training and 300 test peptides of AMP Scanner v2 (both classes balanced), seeded."""
    from xmodal.data.sequences import load_sequence_dataset

    data = load_sequence_dataset(AMP)
    rng = np.random.default_rng(0)
    train, test = rng.choice(len(data.train), 600, replace=False), rng.choice(len(data.test), 300, replace=False)
    return ([data.train.sequences[i] for i in train], data.train.labels[train],
            [data.test.sequences[i] for i in test], data.test.labels[test])


@pytest.fixture(scope="module")
def german():
    from xmodal.data.tables import load_table, split_table

    train, test = split_table(load_table(GERMAN), 0.25, 0)
    return train.features, train.labels, test.features, test.labels


def test_registry():
    assert BASELINES == {"series": ("minirocket", "probe", "best+minirocket"), "sequence": ("composition", "cnn"),
                         "table": ("logistic", "hgb")}


def test_unknown_names_and_bad_inputs_are_data_errors(german):
    x_train, y_train, x_test, _ = german
    with pytest.raises(DataError, match="unknown table baseline 'svm'; choose from logistic, hgb"):
        fit_predict("table", "svm", x_train, y_train, x_test, 0)
    with pytest.raises(DataError, match="unknown task 'image'.*series, sequence, table"):
        fit_predict("image", "logistic", x_train, y_train, x_test, 0)
    with pytest.raises(DataError, match="single class"):
        fit_predict("table", "logistic", x_train, np.full(len(y_train), "good"), x_test, 0)
    with pytest.raises(DataError, match="labels"):
        fit_predict("table", "hgb", x_train, y_train[:-1], x_test, 0)
    with pytest.raises(DataError, match="lacks the training columns"):
        fit_predict("table", "hgb", x_train, y_train, x_test.drop(columns=["purpose"]), 0)
    with pytest.raises(DataError, match="unknown alphabet 'rna'"):
        fit_predict("sequence", "composition", ["ACDE"] * 10, [0, 1] * 5, ["ACD"], 0, alphabet="rna")
    with pytest.raises(DataError, match="too few to hold out a stratified validation part"):
        fit_predict("sequence", "cnn", ["ACDE", "GGH", "KLM", "PQ"], ["a", "a", "a", "b"], ["ACD"], 0)
    with pytest.raises(DataError, match=r"\(n, length\)"):
        fit_predict("series", "minirocket", np.zeros((4, 2, 30)), [0, 1, 0, 1], np.zeros((2, 2, 30)), 0)


# --- series -------------------------------------------------------------------------------

def test_minirocket_gunpoint(gunpoint):
    proba = fit_predict("series", "minirocket", gunpoint.x_train, gunpoint.y_train, gunpoint.x_test, 0)
    check_probabilities(proba, 150, 2)
    assert accuracy(proba, gunpoint.y_train, gunpoint.y_test) > 0.9  # published 99.3 %
    assert roc_auc_score(gunpoint.y_test == 2, proba[:, 1]) > 0.95


@pytest.mark.slow
def test_probe_gunpoint_and_its_column_order(gunpoint):
    """The probe of the tones' layer statistics; labels whose sorted order is the reverse of
    the numeric one give the same probabilities with the columns swapped."""
    proba = fit_predict("series", "probe", gunpoint.x_train, gunpoint.y_train, gunpoint.x_test, 0)
    check_probabilities(proba, 150, 2)
    assert accuracy(proba, gunpoint.y_train, gunpoint.y_test) > 0.9
    names = np.where(gunpoint.y_train == 1, "z-gun", "a-point")  # class 1 now sorts last
    renamed = fit_predict("series", "probe", gunpoint.x_train[:20], names[:20], gunpoint.x_test[:10], 0)
    original = fit_predict("series", "probe", gunpoint.x_train[:20], gunpoint.y_train[:20], gunpoint.x_test[:10], 0)
    np.testing.assert_allclose(renamed, original[:, ::-1], atol=1e-6)


@pytest.mark.slow
def test_best_and_minirocket_gunpoint_and_its_column_order(gunpoint):
    """The hybrid (the best preset beside a MiniRocket probe) on GunPoint, where both halves are near 100 %; labels
    whose sorted order is the reverse of the numeric one give the same probabilities with the columns swapped
    (the MiniRocket probe is fitted on class codes, the best preset on the labels: both in np.unique order)."""
    proba = fit_predict("series", "best+minirocket", gunpoint.x_train, gunpoint.y_train, gunpoint.x_test, 0)
    check_probabilities(proba, 150, 2)
    assert accuracy(proba, gunpoint.y_train, gunpoint.y_test) > 0.97  # best 100 %, MiniRocket 99.3 %
    names = np.where(gunpoint.y_train == 1, "z-gun", "a-point")
    renamed = fit_predict("series", "best+minirocket", gunpoint.x_train[:20], names[:20], gunpoint.x_test[:10], 0)
    original = fit_predict("series", "best+minirocket", gunpoint.x_train[:20], gunpoint.y_train[:20],
                           gunpoint.x_test[:10], 0)
    np.testing.assert_allclose(renamed, original[:, ::-1], atol=1e-6)


# --- sequences ----------------------------------------------------------------------------

def test_composition_peptides(peptides):
    x_train, y_train, x_test, y_test = peptides
    proba = fit_predict("sequence", "composition", x_train, y_train, x_test, 0)
    check_probabilities(proba, 300, 2)
    assert list(np.unique(y_train)) == ["AMP", "DECOY"]
    assert accuracy(proba, y_train, y_test) > 0.8
    assert roc_auc_score(y_test == "AMP", proba[:, 0]) > 0.85


def test_composition_column_order_follows_np_unique(peptides):
    """Integer labels 2 and 10 sort as 10 < 2 as strings: the columns still follow np.unique."""
    x_train, y_train, x_test, _ = peptides
    as_strings = fit_predict("sequence", "composition", x_train, y_train, x_test, 0)
    numbers = np.where(y_train == "AMP", 2, 10)
    as_numbers = fit_predict("sequence", "composition", x_train, numbers, x_test, 0)
    np.testing.assert_allclose(as_numbers, as_strings)  # AMP -> 2 is column 0 in both


def test_composition_morgan_on_molecules():
    import pandas as pd

    frame = pd.read_csv(BBBP).sample(400, random_state=0)
    smiles, labels = frame["smiles"].tolist(), frame["p_np"].to_numpy()
    proba = fit_predict("sequence", "composition", smiles[:300], labels[:300], smiles[300:], 0, alphabet="smiles")
    check_probabilities(proba, 100, 2)
    assert roc_auc_score(labels[300:], proba[:, 1]) > 0.75


@pytest.mark.slow
def test_cnn_peptides(peptides):
    x_train, y_train, x_test, y_test = peptides
    proba = fit_predict("sequence", "cnn", x_train, y_train, x_test, 0)
    check_probabilities(proba, 300, 2)
    assert accuracy(proba, y_train, y_test) > 0.75
    assert roc_auc_score(y_test == "AMP", proba[:, 0]) > 0.8


# --- tables -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["logistic", "hgb"])
def test_table_german_credit(german, name):
    x_train, y_train, x_test, y_test = german
    proba = fit_predict("table", name, x_train, y_train, x_test, 0)
    check_probabilities(proba, len(y_test), 2)
    assert list(np.unique(y_train)) == ["bad", "good"]
    assert roc_auc_score(y_test == "good", proba[:, 1]) > 0.7
    assert accuracy(proba, y_train, y_test) > 0.72  # the majority class is 0.70


@pytest.mark.parametrize("name", ["logistic", "hgb"])
def test_table_missing_cells_and_unseen_categories(german, name):
    x_train, y_train, x_test, _ = german
    x_train, x_test = x_train.copy(), x_test.copy()
    x_train.loc[::7, "credit_amount"] = np.nan
    x_train.loc[::9, "purpose"] = np.nan
    x_test.loc[0, "purpose"] = "never seen"
    x_test.loc[1, "age_years"] = np.nan
    proba = fit_predict("table", name, x_train, y_train, x_test, 0)
    check_probabilities(proba, len(x_test), 2)
