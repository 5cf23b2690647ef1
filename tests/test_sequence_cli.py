"""`xmodal fit sequence` on real peptides (FASTA folder) and molecules (CSV), and
`xmodal evaluate` / `predict` on the saved runs."""

import csv
import json

import pytest

from cli import main
from tests.conftest import AMP_SCANNER, MOLECULES
from xmodal.data.sequences import read_fasta
from xmodal.metrics import SCHEMA
from xmodal.persistence import weights_file


def _error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if line]
    errors = [line for line in lines if "error" in line]
    assert errors == lines[-1:], lines
    return lines[-1]


@pytest.fixture(scope="module")
def amp_folder(tmp_path_factory):
    """The AMP Scanner layout with the first records of each real file."""
    folder = tmp_path_factory.mktemp("amp")
    for label in ("AMP", "DECOY"):
        for split, n in (("tr", 24), ("eval", 8), ("te", 10)):
            ids, sequences = read_fasta(AMP_SCANNER / f"{label}.{split}.fa")
            (folder / f"{label}.{split}.fasta").write_text("".join(f">{i}\n{s}\n" for i, s in list(zip(ids, sequences))[:n]))
    return folder


@pytest.fixture(scope="module")
def amp_run(amp_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "amp"
    # the best preset: its kernel head fitted on the untrained reading, saved and read back below
    assert main(["fit", "sequence", "--dataset", str(amp_folder), "--out", str(out),
                 "--sparsity", "5", "--quiet", "--baseline", "composition"]) == 0
    return out


@pytest.mark.slow
def test_fit_on_a_fasta_folder_uses_its_splits(amp_run):
    metrics = json.loads((amp_run / "metrics.json").read_text())
    assert list(metrics)[: len(SCHEMA)] == list(SCHEMA)
    assert (metrics["n_train"], metrics["n_val"], metrics["n_test"]) == (48, 16, 20)
    assert metrics["test_split"] == "given" and metrics["alphabet"] == "protein" and metrics["source"] == "minilm-l6"
    for key in ("test_accuracy", "test_roc_auc", "test_mcc", "probe_test_accuracy"):
        assert metrics[key] is not None and -1 <= metrics[key] <= 1
    assert metrics["settings"]["sparsity"] == 5 and metrics["sparsity"]["max_nonzeros_per_row"] <= 5
    assert set(metrics["baselines"]) == {"composition"}
    assert (amp_run / "reprogrammer.json").is_file() and weights_file(amp_run).is_file()


@pytest.mark.slow
def test_evaluate_and_predict_a_sequence_run(amp_run, amp_folder, tmp_path, capsys):
    metrics = json.loads((amp_run / "metrics.json").read_text())
    assert main(["evaluate", str(amp_run)]) == 0  # the recorded FASTA folder
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["task"] == "sequence" and report["n"] == 20
    assert report["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert report["roc_auc"] == pytest.approx(metrics["test_roc_auc"])

    predictions = tmp_path / "train.csv"
    assert main(["predict", str(amp_run), "--split", "train", "--csv", str(predictions)]) == 0
    rows = list(csv.DictReader(predictions.open()))
    assert len(rows) == 48 and list(rows[0]) == ["id", "label", "prediction", "p_AMP", "p_DECOY"]
    assert {row["label"] for row in rows} == {"AMP", "DECOY"}

    new = tmp_path / "new.fa"  # new peptides, unlabelled
    new.write_text(">pep1\nGLFDIVKKVVGALGSL\n>pep2\nMKTAYIAKQRQISFVK\n")
    assert main(["predict", str(amp_run), "--input", str(new), "--csv", str(predictions)]) == 1  # kept
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert len(list(csv.DictReader(predictions.open()))) == 48
    assert main(["predict", str(amp_run), "--input", str(new), "--csv", str(predictions), "--overwrite"]) == 0
    rows = list(csv.DictReader(predictions.open()))
    assert [row["id"] for row in rows] == ["pep1", "pep2"] and list(rows[0]) == ["id", "prediction", "p_AMP",
                                                                                   "p_DECOY"]


@pytest.mark.slow
def test_sequences_that_do_not_fit_the_run_are_refused(amp_run, tmp_path, capsys):
    molecules = tmp_path / "molecules.csv"
    molecules.write_text("smiles,label\nCCO,AMP\nCCN,DECOY\nCCC,AMP\nCCCl,DECOY\nCO,AMP\nCN,DECOY\n")
    assert main(["evaluate", str(amp_run), "--dataset", str(molecules)]) == 1
    assert "holds smiles records but this run reads protein sequences" in _error_line(capsys)
    dna = tmp_path / "dna.csv"  # A, C, G and T are amino acids too: the tokens alone would let DNA through
    dna.write_text("sequence,label\n" + "".join(f"{'ACGTTGCA' * 5}{'ACGT'[i % 4]},{('AMP', 'DECOY')[i % 2]}\n"
                                                 for i in range(6)))
    assert main(["evaluate", str(amp_run), "--dataset", str(dna)]) == 1
    assert "dna holds dna records but this run reads protein sequences" in _error_line(capsys)
    reads = tmp_path / "reads.fa"
    reads.write_text(">r1\nACGTACGTTTGACCAGTACGATCGATCGGA\n>r2\nTTGACAGT\n")
    assert main(["predict", str(amp_run), "--input", str(reads), "--csv", str(tmp_path / "p.csv")]) == 1
    assert "reads.fa holds dna records but this run reads protein sequences" in _error_line(capsys)
    bad = tmp_path / "bad.fa"
    bad.write_text(">odd\nGLFJIV\n")
    assert main(["predict", str(amp_run), "--input", str(bad), "--csv", str(tmp_path / "p.csv")]) == 1
    assert "unknown token 'J'" in _error_line(capsys)
    assert main(["evaluate", str(amp_run), "--data-dir", str(tmp_path)]) == 1
    assert "--data-dir does not apply to a sequence run" in _error_line(capsys)


@pytest.mark.slow
def test_fit_on_smiles_csv_with_a_scaffold_split(tmp_path, capsys):
    rows = (MOLECULES / "bbbp.csv").read_text().splitlines()
    subset = tmp_path / "bbbp_small.csv"
    subset.write_text("\n".join(rows[:1] + rows[1:41] + rows[-40:]) + "\n")  # both classes
    out = tmp_path / "run"
    assert main(["fit", "sequence", "--dataset", str(subset), "--split", "scaffold", "--out", str(out),
                 "--head", "linear", "--epochs", "1", "--quiet", "--mode", "prompt", "--unknown", "unk"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["alphabet"] == "smiles" and metrics["test_split"] == "scaffold"
    assert metrics["n_train"] + metrics["n_val"] + metrics["n_test"] == 80
    assert metrics["sparsity"]["mode"] == "prompt" and metrics["settings"]["mode"] == "prompt"
    capsys.readouterr()
    # evaluate rebuilds the same scaffold test split from the recorded data
    assert main(["evaluate", str(out)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["n"] == metrics["n_test"] and report["accuracy"] == pytest.approx(metrics["test_accuracy"])


@pytest.mark.parametrize("sequences, data_alphabet, run_alphabet, refused", [
    (["ACGTTGCAACGTTGCAACGT", "TTGACCAGTACGATCGAT"], "protein", "protein", "dna"),  # DNA on a protein run
    (["GLFDIVKKVVGALGSL", "MKTAYIAKQRQISFVK"], "protein", "dna", "protein"),  # peptides on a DNA run
    (["CCO", "c1ccccc1"], "smiles", "protein", "smiles"),
    (["GLFDIVKKVVGALGSL"], "protein", "smiles", "protein"),
    (["GLFDIVKKVVGALGSL", "MKTAYIAKQRQISFVK"], "protein", "protein", None),
    (["ACGTTGCAACGTTGCAACGTTGCAACGTTGCA"], "protein", "dna", None),
    (["GATC"], "protein", "protein", None),  # too few letters to call it DNA: a peptide of A, C, G, T
    (["CCO", "CCN"], "smiles", "smiles", None),
])
def test_records_of_another_alphabet_are_refused(sequences, data_alphabet, run_alphabet, refused):
    from xmodal.cli.tasks.sequence import check_alphabet
    from xmodal.errors import DataError

    if refused is None:
        check_alphabet(sequences, data_alphabet, run_alphabet, "data")
        return
    with pytest.raises(DataError, match=f"data holds {refused} records but this run reads {run_alphabet} sequences"):
        check_alphabet(sequences, data_alphabet, run_alphabet, "data")


def test_sequence_user_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("sequence,label\nGLFDIV,1\nKKJLLA,0\nGLFDIW,1\nKKLLAA,0\n")
    assert main(["fit", "sequence", "--dataset", str(tmp_path / "bd.csv"), "--out", str(tmp_path / "r")]) == 1
    assert f"not found; did you mean '{bad}'?" in _error_line(capsys)
    assert main(["fit", "sequence", "--dataset", str(bad), "--split", "scaffold", "--out", str(tmp_path / "r")]) == 1
    assert "needs SMILES" in _error_line(capsys)
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_an_unknown_token_is_refused_before_anything_is_written(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("sequence,label\nGLFDIV,1\nKKJLLA,0\nGLFDIW,1\nKKLLAA,0\nGLFDIK,1\nKKLLAK,0\n")
    assert main(["fit", "sequence", "--dataset", str(bad), "--out", str(tmp_path / "r"), "--quiet"]) == 1
    line = _error_line(capsys)
    assert "split (bad.csv): unknown tokens in 1 of" in line and "'J' in 1 (first bad.csv:row 3)" in line
    assert "--unknown unk" in line
    assert not (tmp_path / "r").exists()
