"""`xmodal fit table` on UCI German credit, and evaluate / predict / align on the table run."""

import csv
import json

import numpy as np
import pytest

from cli import main
from tests.conftest import SHARED
from xmodal.metrics import SCHEMA

GERMAN = SHARED / "data" / "tabular" / "german_credit_uci"
FRAUD = SHARED / "data" / "tabular" / "creditcard_fraud_ulb_sample" / "creditcard_sample.csv"


def _error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if line]
    errors = [line for line in lines if "error" in line]
    assert errors == lines[-1:], lines  # the last line, and the only one that says error
    return lines[-1]


@pytest.fixture(scope="module")
def german_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "german"
    assert main(["fit", "table", "--dataset", str(GERMAN), "--out", str(out), "--test-size", "0.25", "--seed", "3",
                 "--quiet", "--baseline", "logistic"]) == 0
    return out


@pytest.fixture(scope="module")
def german_rows(tmp_path_factory):
    """German credit as a CSV with a header and a `credit` label column."""
    from xmodal.data.tables import load_table

    german = load_table(GERMAN)
    frame = german.features.copy()
    frame["credit"] = german.labels
    path = tmp_path_factory.mktemp("tables") / "german.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_table_fit_writes_the_schema_and_binary_extras(german_run):
    metrics = json.loads((german_run / "metrics.json").read_text())
    assert list(metrics)[: len(SCHEMA)] == list(SCHEMA)
    assert metrics["task"] == "table" and metrics["source"] == "bc-resnet-gsc35-image" and metrics["seed"] == 3
    assert (metrics["n_train"], metrics["n_test"]) == (750, 250) and metrics["classes"] == ["bad", "good"]
    assert metrics["positive_class"] == "bad" and metrics["test_pr_auc"] > 0.3  # above the 30 % base rate
    assert 0.5 < metrics["test_roc_auc"] <= 1 and metrics["reprogramming_kept"] is False  # epochs 0 in preset best
    assert set(metrics["baselines"]) == {"logistic"} and 0.5 < metrics["baselines"]["logistic"]["test_roc_auc"] <= 1
    assert metrics["data"]["columns"][:2] == ["checking_status", "duration_months"]
    assert metrics["data"]["test_size"] == 0.25 and metrics["data"]["path"] == str(GERMAN.resolve())


@pytest.mark.slow
def test_evaluate_a_table_run_reproduces_its_test_scores(german_run, capsys):
    assert main(["evaluate", str(german_run)]) == 0
    report = json.loads(capsys.readouterr().out)
    metrics = json.loads((german_run / "metrics.json").read_text())
    assert report["task"] == "table" and report["n"] == 250
    assert report["accuracy"] == metrics["test_accuracy"] and report["roc_auc"] == metrics["test_roc_auc"]
    assert report["test_pr_auc"] == metrics["test_pr_auc"]
    assert main(["evaluate", str(german_run), "--split", "train"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 750


@pytest.mark.slow
def test_predict_new_rows_and_a_split_of_a_table_run(german_run, german_rows, tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    rows.write_text("\n".join(german_rows.read_text().splitlines()[:8]) + "\n")  # header + 7 rows, label included
    target = tmp_path / "predictions.csv"
    assert main(["predict", str(german_run), "--input", str(rows), "--csv", str(target)]) == 0
    predictions = list(csv.DictReader(target.open()))
    assert len(predictions) == 7 and list(predictions[0]) == ["id", "prediction", "p_bad", "p_good"]
    assert {p["prediction"] for p in predictions} <= {"bad", "good"}
    assert main(["predict", str(german_run), "--csv", str(target), "--overwrite"]) == 0
    predictions = list(csv.DictReader(target.open()))
    assert len(predictions) == 250 and list(predictions[0])[:3] == ["id", "label", "prediction"]


@pytest.mark.slow
def test_table_data_that_does_not_fit_the_run_is_refused(german_run, german_rows, tmp_path, capsys):
    import pandas as pd

    frame = pd.read_csv(german_rows)
    frame.drop(columns=["age_years"]).to_csv(tmp_path / "no_age.csv", index=False)
    assert main(["evaluate", str(german_run), "--dataset", str(tmp_path / "no_age.csv"), "--label-column",
                 "credit"]) == 1
    assert "lacks columns ['age_years'] that this run was fitted on" in _error_line(capsys)
    assert main(["predict", str(german_run), "--input", str(tmp_path / "no_age.csv"), "--csv",
                 str(tmp_path / "p.csv")]) == 1
    assert "age_years" in _error_line(capsys)
    frame.assign(credit=np.where(frame["credit"] == "bad", "bad", "unknown")).to_csv(tmp_path / "other.csv",
                                                                                     index=False)
    assert main(["evaluate", str(german_run), "--dataset", str(tmp_path / "other.csv"), "--label-column",
                 "credit"]) == 1
    assert "labels ['unknown'] were not seen by this run" in _error_line(capsys)
    assert main(["evaluate", str(german_run), "--resample"]) == 1
    assert "--resample does not apply to a table run" in _error_line(capsys)


@pytest.mark.slow
def test_align_a_table_run_takes_representations_or_says_why_not(german_run, tmp_path, capsys):
    assert main(["align", str(german_run), "--source-samples", str(SHARED / "data" / "speech_words")]) == 1
    assert "no reader of source-domain samples for image-style sources" in _error_line(capsys)
    points = tmp_path / "logits.npy"
    np.save(points, np.random.default_rng(0).normal(size=(30, 35)))
    assert main(["align", str(german_run), "--source-samples", str(points), "--method", "sliced",
                 "--json", str(tmp_path / "align.json")]) == 0
    report = json.loads((tmp_path / "align.json").read_text())
    assert report["task"] == "table" and report["n_target"] == 250 and report["bound"] is None


@pytest.mark.slow
def test_a_csv_table_fit_with_its_label_column(german_rows, tmp_path, capsys):
    subset = tmp_path / "small.csv"
    subset.write_text("\n".join(german_rows.read_text().splitlines()[:121]) + "\n")
    out = tmp_path / "run"
    assert main(["fit", "table", "--dataset", str(subset), "--label-column", "credit", "--out", str(out),
                 "--quiet", "--epochs", "1", "--cell-size", "2"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["n_train"], metrics["n_test"]) == (96, 24) and metrics["settings"]["cell_size"] == 2
    assert metrics["data"]["label_column"] == "credit"
    capsys.readouterr()
    assert main(["evaluate", str(out)]) == 0  # the recorded label column and split
    assert json.loads(capsys.readouterr().out)["accuracy"] == metrics["test_accuracy"]


@pytest.mark.parametrize("args, message", [
    (["--dataset", str(FRAUD)], "name the label column with --label-column"),
    (["--dataset", str(FRAUD), "--label-column", "label"], "has no column 'label'"),
    (["--dataset", str(GERMAN), "--source", "bc-resnet-gsc35", "--epochs", "0"], "audio"),
])
def test_table_user_errors_are_one_line(args, message, tmp_path, capsys):
    assert main(["fit", "table", "--quiet", "--out", str(tmp_path / "r"), *args]) == 1
    assert message in _error_line(capsys)
    assert not (tmp_path / "r").exists()
