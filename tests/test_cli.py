"""The xmodal command: fit/evaluate/predict on real data, listings, and user errors."""

import csv
import json
import subprocess
import sys

import pytest

from cli import main
from tests.conftest import REPO, UCR


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "coffee"
    code = main(["fit", "--dataset", "Coffee", "--data-dir", str(UCR), "--out", str(out), "--epochs", "3",
                 "--seed", "1", "--quiet"])
    assert code == 0
    return out


def test_fit_writes_metrics_beside_the_reprogrammer(run_dir, capsys):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("dataset", "source", "n_train", "n_test", "val_accuracy", "test_accuracy", "fit_seconds"):
        assert key in metrics
    assert metrics["dataset"] == "Coffee" and metrics["n_train"] == 28 and metrics["n_test"] == 28
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["seed"] == 1
    assert (run_dir / "reprogrammer.json").is_file() and (run_dir / "reprogrammer.safetensors").is_file()


def test_evaluate_matches_the_fit(run_dir, capsys):
    assert main(["evaluate", str(run_dir), "--dataset", "Coffee", "--data-dir", str(UCR)]) == 0
    report = json.loads(capsys.readouterr().out)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert report["accuracy"] == metrics["test_accuracy"] and report["n"] == 28


def test_predict_writes_a_csv(run_dir, tmp_path):
    target = tmp_path / "preds.csv"
    assert main(["predict", str(run_dir), "--dataset", "Coffee", "--data-dir", str(UCR), "--csv", str(target)]) == 0
    rows = list(csv.DictReader(target.open()))
    assert len(rows) == 28 and set(rows[0]) == {"index", "label", "prediction", "p_0", "p_1"}


def test_sources_and_datasets_listings(capsys):
    assert main(["sources"]) == 0
    assert "bc-resnet-gsc35" in capsys.readouterr().out
    assert main(["datasets", "--data-dir", str(UCR)]) == 0
    out = capsys.readouterr().out
    assert "ItalyPowerDemand" in out and "Strawberry" in out


def _xmodal(*args):
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, cwd=REPO)


@pytest.mark.parametrize(
    "args, message",
    [
        (["fit", "--dataset", "NoSuchSet"], "not found"),
        (["fit", "--dataset", "GunPoint", "--source", "nope"], "unknown source model"),
        (["fit", "--dataset", "GunPoint", "--upsample-factor", "500"], "does not fit"),
        (["evaluate", "/no/run", "--dataset", "GunPoint"], "not a saved reprogrammer"),
        (["predict-source", "/no/file.wav"], "does not exist"),
        (["fit", "--dataset", "GunPoint", "--epochs", "0"], "epochs must be at least 1"),
        (["fit", "--dataset", "GunPoint", "--series-encoding", "pitch"], "--no-mask"),
        (["fit", "--dataset", "GunPoint", "--source", "attrnn-gsc35", "--mapping", "layers"], "no per-layer statistics"),
        (["fit", "--dataset", "GunPoint", "--out", "/dev/null/run", "--epochs", "1"], "Not a directory"),
    ],
)
def test_user_errors_are_one_line_without_traceback(args, message):
    done = _xmodal(*args)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr and message in lines[-1]
    assert [line for line in lines if "error" in line] == [lines[-1]]


@pytest.mark.parametrize("command", [[], ["fit"], ["evaluate"], ["predict"], ["sources"], ["datasets"], ["predict-source"]])
def test_help_everywhere(command):
    done = _xmodal(*command, "--help")
    assert done.returncode == 0 and "usage: xmodal" in done.stdout
