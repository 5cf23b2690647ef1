"""`fit` checks every split (train, validation, test) before the training: labels, tokens,
lengths and missing values, on real data. A bad record is refused in one line naming the
split, its file, the value and the fix; the training (Task.fit) must never start."""

import numpy as np
import pandas as pd
import pytest

from cli import main
from tests.conftest import AMP_SCANNER, MOLECULES, SHARED, UCR
from xmodal.data.labels import check_class_labels, check_known_classes, continuous_target
from xmodal.data.sequences import read_fasta
from xmodal.errors import DataError

CREDITCARD = SHARED / "data" / "tabular" / "creditcard_fraud_ulb_sample" / "creditcard_sample.csv"


@pytest.fixture(autouse=True)
def no_training(monkeypatch):
    """Every fit here must fail in its checks: reaching the training is a failure of the test."""
    from xmodal.cli.tasks import TASKS

    def trained(*_):
        raise AssertionError("the training started: the data should have been refused before it")

    for task in TASKS.values():
        monkeypatch.setattr(type(task), "fit", trained)


def _refused(args, capsys, tmp_path) -> str:
    """Run `xmodal fit ARGS --out tmp/run`: exit 1, one error line, no run folder."""
    assert main(["fit", *args, "--out", str(tmp_path / "run"), "--quiet"]) == 1
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith(f"xmodal fit {args[0]}: error: "), lines
    assert not (tmp_path / "run").exists()
    return lines[0]


# -- continuous targets ---------------------------------------------------------------


def test_a_regression_set_is_refused_for_series(tmp_path, capsys):
    """Tecator (bundled with sktime): fat content, a continuous target."""
    line = _refused(["series", "--dataset", "Tecator", "--mapping", "linear"], capsys, tmp_path)
    assert "the train split (" in line and "Tecator_TRAIN.ts): the labels are a continuous (regression) target" in line
    assert "124 distinct numbers among 172 labels" in line and "bin the target into classes" in line


def test_a_regression_set_is_refused_for_sequences(tmp_path, capsys):
    """ESOL: solubility, refused before the stratified split could say 'too few per class'."""
    line = _refused(["sequence", "--dataset", str(MOLECULES / "esol.csv")], capsys, tmp_path)
    assert "esol.csv: the labels are a continuous (regression) target" in line and "1128 labels" in line


def test_a_numeric_column_as_the_label_of_a_table_is_refused(tmp_path, capsys):
    line = _refused(["table", "--dataset", str(CREDITCARD), "--label-column", "Amount"], capsys, tmp_path)
    assert "creditcard_sample.csv: the labels are a continuous (regression) target" in line


def test_real_classification_labels_are_never_taken_for_a_target():
    """Every local UCR set and every MoleculeNet classification column passes; ESOL does not."""
    from xmodal.data.ucr import load_ucr

    for folder in sorted(UCR.iterdir()):
        data = load_ucr(folder.name, UCR)
        assert continuous_target(data.y_train) is None, folder.name
        check_class_labels(data.y_test, folder.name)
    for name, column in (("bbbp", "p_np"), ("bace", "Class"), ("clintox", "FDA_APPROVED"), ("clintox", "CT_TOX")):
        labels = pd.read_csv(MOLECULES / f"{name}.csv")[column].dropna()
        assert continuous_target(labels.to_numpy()) is None, (name, column)
    assert "distinct numbers" in continuous_target(pd.read_csv(MOLECULES / "esol.csv")["logSolubility"].to_numpy())


def test_missing_and_unseen_labels_name_the_split():
    labels = np.array(["AMP", None, "DECOY", ""], dtype=object)
    with pytest.raises(DataError, match=r"^the test split \(x.fa\): 2 of 4 labels are missing \(first: sample 2\)"):
        check_class_labels(labels, "the test split (x.fa)")
    with pytest.raises(DataError, match=r"1 of 2 samples have labels \['TOXIN'\] that no training sample has"):
        check_known_classes(["AMP", "TOXIN"], ["AMP", "DECOY"], "the test split (x.fa)")


def test_a_test_class_training_never_saw_is_refused(tmp_path, capsys):
    folder = tmp_path / "GunPoint"
    folder.mkdir()
    (folder / "GunPoint_TRAIN.tsv").write_bytes((UCR / "GunPoint" / "GunPoint_TRAIN.tsv").read_bytes())
    rows = (UCR / "GunPoint" / "GunPoint_TEST.tsv").read_text().splitlines()
    rows[4] = "3" + rows[4][rows[4].index("\t"):]  # a class GunPoint's training split does not have
    (folder / "GunPoint_TEST.tsv").write_text("\n".join(rows) + "\n")
    line = _refused(["series", "--dataset", str(folder)], capsys, tmp_path)
    assert "the test split (" in line and "GunPoint_TEST.tsv): 1 of 150 samples have labels [3]" in line


# -- tokens and lengths ----------------------------------------------------------------


def test_an_unknown_smiles_token_of_the_test_split_is_refused_before_training(tmp_path, capsys):
    """BBBP's stratified test split holds bracket atoms ([nH+], ...) that no training molecule has."""
    line = _refused(["sequence", "--dataset", str(MOLECULES / "bbbp.csv")], capsys, tmp_path)
    assert "the test split (bbbp.csv): unknown tokens in 4 of 408 records" in line
    assert "'[nH+]' in 1 (first bbbp.csv:row 643)" in line and "--unknown unk" in line


def _amp_subset(folder, change=None):
    """The AMP Scanner layout with the first 12 real records of each file; `change(sequences)`
    edits those of AMP.te.fa."""
    folder.mkdir()
    for label in ("AMP", "DECOY"):
        for split in ("tr", "eval", "te"):
            ids, sequences = read_fasta(AMP_SCANNER / f"{label}.{split}.fa")
            ids, sequences = ids[:12], sequences[:12]
            if change is not None and (label, split) == ("AMP", "te"):
                change(sequences)
            (folder / f"{label}.{split}.fa").write_text("".join(f">{i}\n{s}\n" for i, s in zip(ids, sequences)))
    return folder


def test_an_unknown_peptide_letter_of_the_test_split_is_refused_before_training(tmp_path, capsys):
    def ambiguous(sequences):
        sequences[1] = sequences[1][:3] + "X" + sequences[1][4:]  # X: any amino acid, outside the alphabet

    folder = _amp_subset(tmp_path / "amp", ambiguous)
    line = _refused(["sequence", "--dataset", str(folder)], capsys, tmp_path)
    assert "the test split (AMP.te.fa, DECOY.te.fa): unknown tokens in 1 of 24 records: 'X' in 1 (first AMP.te.fa:" in line
    assert "the protein alphabet is ACDEFGHIKLMNPQRSTVWY" in line


def test_a_test_record_longer_than_the_source_takes_is_refused_before_training(tmp_path, capsys):
    def long(sequences):
        sequences[2] = sequences[2] * 40  # beyond MiniLM's 512 positions

    folder = _amp_subset(tmp_path / "amp", long)
    line = _refused(["sequence", "--dataset", str(folder)], capsys, tmp_path)
    assert "the test split (AMP.te.fa, DECOY.te.fa): 1 of 24 records are longer than the source takes (510 tokens)" in line
    assert "--truncation keep_start or keep_end" in line


# -- missing values ------------------------------------------------------------------------


def test_empty_cells_in_any_split_are_refused_before_training(tmp_path, capsys):
    table = pd.read_csv(CREDITCARD)
    table.loc[table.index[::50], "V3"] = np.nan  # every 50th row: some in the train, some in the test split
    table.to_csv(tmp_path / "gaps.csv", index=False)
    line = _refused(["table", "--dataset", str(tmp_path / "gaps.csv"), "--label-column", "Class"], capsys, tmp_path)
    assert "split (" in line and "gaps.csv): " in line and "rows have empty cells, in columns ['V3']" in line
    assert "--missing impute" in line


def test_datasets_marks_the_classification_sets(capsys):
    assert main(["datasets", "--data-dir", str(UCR)]) == 0
    lines = capsys.readouterr().out.splitlines()
    regression = next(line for line in lines if line.startswith("bundled with sktime, regression"))
    assert "Tecator" in regression and "GunPoint" not in regression
    assert any(line.startswith(f"in {UCR}, classification: ") and "GunPoint" in line for line in lines)
