"""`xmodal fit --task sequence` on real peptides (FASTA folder) and molecules (CSV),
and `xmodal evaluate` / `predict` on the saved runs."""

import csv
import json

import pytest

from cli import main
from tests.conftest import AMP_SCANNER, MOLECULES
from xmodal.data.sequences import read_fasta


@pytest.fixture(scope="module")
def amp_folder(tmp_path_factory):
    """The AMP Scanner layout with the first records of each real file."""
    folder = tmp_path_factory.mktemp("amp")
    for label in ("AMP", "DECOY"):
        for split, n in (("tr", 24), ("eval", 8), ("te", 10)):
            ids, sequences = read_fasta(AMP_SCANNER / f"{label}.{split}.fa")
            (folder / f"{label}.{split}.fasta").write_text("".join(f">{i}\n{s}\n" for i, s in list(zip(ids, sequences))[:n]))
    return folder


def test_fit_on_a_fasta_folder_uses_its_splits(amp_folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "--task", "sequence", "--dataset", str(amp_folder), "--out", str(out), "--epochs", "1",
                 "--sparsity", "5", "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["n_train"], metrics["n_validation"], metrics["n_test"]) == (48, 16, 20)
    assert metrics["n_val"] == 16 and metrics["test_split"] == "given" and metrics["source"] == "minilm-l6"
    for key in ("test_accuracy", "test_roc_auc", "test_mcc"):
        assert metrics[key] is not None and -1 <= metrics[key] <= 1
    assert metrics["truncated"] == {"train": 0, "test": 0}
    assert metrics["sparsity"]["k"] == 5 and metrics["sparsity"]["max_nonzeros_per_row"] <= 5
    assert "ROC-AUC" in capsys.readouterr().out
    assert (out / "reprogrammer.json").is_file() and (out / "reprogrammer.safetensors").is_file()

    assert main(["evaluate", str(out), "--dataset", str(amp_folder)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["n"] == 20 and report["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert report["roc_auc"] == pytest.approx(metrics["test_roc_auc"])
    predictions = tmp_path / "predictions.csv"
    assert main(["predict", str(out), "--dataset", str(amp_folder), "--split", "train", "--csv", str(predictions)]) == 0
    rows = list(csv.DictReader(predictions.open()))
    assert len(rows) == 48 and set(rows[0]) == {"record", "label", "prediction", "p_AMP", "p_DECOY"}
    assert {row["label"] for row in rows} == {"AMP", "DECOY"}


def test_fit_on_smiles_csv_with_a_scaffold_split(tmp_path, capsys):
    rows = (MOLECULES / "bbbp.csv").read_text().splitlines()
    subset = tmp_path / "bbbp_small.csv"
    subset.write_text("\n".join(rows[:1] + rows[1:41] + rows[-40:]) + "\n")  # both classes
    out = tmp_path / "run"
    assert main(["fit", "--task", "sequence", "--dataset", str(subset), "--split", "scaffold", "--out", str(out),
                 "--epochs", "1", "--quiet", "--bridge-mode", "prompt", "--unknown", "unk"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["alphabet"] == "smiles" and metrics["test_split"] == "scaffold"
    assert metrics["n_train"] + metrics["n_validation"] + metrics["n_test"] == 80
    assert metrics["sparsity"]["mode"] == "prompt" and metrics["params"]["mode"] == "prompt"
    # evaluate rebuilds the same scaffold test split from the saved split settings
    assert main(["evaluate", str(out), "--dataset", str(subset)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["n"] == metrics["n_test"] and report["accuracy"] == pytest.approx(metrics["test_accuracy"])


def test_user_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("sequence,label\nGLFDIV,1\nKKJLLA,0\nGLFDIW,1\nKKLLAA,0\n")
    assert main(["fit", "--task", "sequence", "--dataset", str(bad), "--out", str(tmp_path / "r"), "--quiet"]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("xmodal fit: error: bad.csv:row 3: unknown token 'J'")
    assert not (tmp_path / "r").exists()
    assert main(["fit", "--task", "sequence", "--dataset", str(tmp_path / "none.csv")]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["fit", "--task", "sequence", "--dataset", str(bad), "--split", "scaffold"]) == 1
    assert "needs SMILES" in capsys.readouterr().err


def test_cli_defaults_are_the_estimators():
    """The CLI keeps its own defaults (so `--help` loads no torch); they must not drift."""
    from xmodal.cli.sequence_task import DEFAULTS
    from xmodal.estimators.sequence import SequenceClassifier

    params = SequenceClassifier().get_params()
    assert {key: params[key] for key in DEFAULTS} == DEFAULTS
