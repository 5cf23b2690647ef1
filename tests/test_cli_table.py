"""`xmodal fit --task table` and `--blackbox` on real data, and their user errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from cli import main
from tests.conftest import REPO, SHARED, UCR

GERMAN = SHARED / "data" / "tabular" / "german_credit_uci"
FRAUD = SHARED / "data" / "tabular" / "creditcard_fraud_ulb_sample" / "creditcard_sample.csv"


@pytest.fixture(scope="module")
def german_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "german"
    assert main(["fit", "--task", "table", "--dataset", str(GERMAN), "--out", str(out), "--epochs", "2",
                 "--test-size", "0.25", "--seed", "3", "--quiet"]) == 0
    return out


def test_table_fit_writes_binary_metrics(german_run):
    metrics = json.loads((german_run / "metrics.json").read_text())
    assert metrics["n_train"] == 750 and metrics["n_test"] == 250 and metrics["source"] == "bc-resnet-gsc35-image"
    assert metrics["positive_class"] == "bad" and metrics["classes"] == ["bad", "good"]
    for key in ("test_accuracy", "test_roc_auc", "test_pr_auc"):
        assert 0 <= metrics[key] <= 1
    assert metrics["test_pr_auc"] > 0.3  # above the 30 % base rate of "bad"
    assert "queries_used" not in metrics and metrics["training"] == "white-box"


def test_saved_table_run_reproduces_its_test_accuracy(german_run):
    from xmodal.persistence import load_reprogrammer
    from xmodal.data.tables import load_table
    from xmodal.estimators.table import split_table

    model, document = load_reprogrammer(german_run)
    split = split_table(load_table(GERMAN), 0.25, seed=3)
    predicted = model.predict_proba(model.bridge.encode(split.test.features)).argmax(dim=1).numpy()
    assert np.mean(predicted == split.targets(split.test)) == document["metadata"]["metrics"]["test_accuracy"]


def test_black_box_table_fit_records_queries(tmp_path):
    out = tmp_path / "fraud"
    assert main(["fit", "--task", "table", "--dataset", str(FRAUD), "--label-column", "Class", "--out", str(out),
                 "--blackbox", "--query-budget", "3000", "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 1377 <= metrics["queries_used"] <= 3000 and metrics["training"] == "black-box"
    assert metrics["positive_class"] == 1 and 0 <= metrics["test_roc_auc"] <= 1


def test_black_box_series_fit_records_queries(tmp_path):
    out = tmp_path / "coffee"
    assert main(["fit", "--dataset", "Coffee", "--data-dir", str(UCR), "--out", str(out), "--blackbox",
                 "--query-budget", "1000", "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 28 <= metrics["queries_used"] <= 1000
    from xmodal.estimators.series import V2SClassifier

    reloaded = V2SClassifier.from_pretrained(out)  # a black-box run reloads with the real source
    assert reloaded.reprogrammer_.source.name == "bc-resnet-gsc35"
    assert isinstance(reloaded.reprogrammer_.bridge.delta, torch.nn.Parameter)


def _xmodal(*args):
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, cwd=REPO)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", str(FRAUD)], "name the label column with --label-column"),
        (["--dataset", str(FRAUD), "--label-column", "label"], "has no column 'label'"),
        (["--dataset", str(GERMAN), "--test-size", "1.5"], "--test-size must be in (0, 1)"),
        (["--dataset", str(GERMAN), "--blackbox", "--query-budget", "100"], "raise --query-budget"),
        (["--dataset", str(GERMAN), "--cell-size", "9"], "use smaller cells"),
        (["--dataset", str(GERMAN), "--source", "bc-resnet-gsc35"], "this source takes audio"),
    ],
)
def test_table_user_errors_are_one_line(args, message):
    done = _xmodal("fit", "--task", "table", "--quiet", "--epochs", "1", *args)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr and message in lines[-1]


def test_csv_with_gaps_needs_impute(tmp_path, capsys):
    from xmodal.data.tables import load_table

    german = load_table(GERMAN)
    frame = german.features.head(120).copy()
    frame["credit"] = german.labels[:120]
    frame.loc[3, "age_years"] = np.nan
    frame.loc[5, "purpose"] = np.nan
    path = tmp_path / "holes.csv"
    frame.to_csv(path, index=False)
    common = ["fit", "--task", "table", "--dataset", str(path), "--label-column", "credit", "--epochs", "1", "--quiet"]
    assert main(common + ["--out", str(tmp_path / "refused")]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "missing values in columns" in error and "--impute" in error
    assert not (tmp_path / "refused").exists()
    assert main(common + ["--out", str(tmp_path / "imputed"), "--impute"]) == 0
    assert json.loads((tmp_path / "imputed" / "metrics.json").read_text())["n_train"] == 96
