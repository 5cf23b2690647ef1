"""Sequence datasets from the real AMP Scanner folder, ToxinPred and MoleculeNet CSVs."""

import numpy as np
import pytest

from tests.conftest import MOLECULES, PEPTIDES
from xmodal.data.sequences import (
    load_sequence_csv,
    load_sequence_dataset,
    read_fasta,
    scaffold_groups,
    scaffold_split,
    with_test_split,
)
from xmodal.errors import DataError


def test_amp_scanner_folder_gives_its_three_splits(amp):
    assert (len(amp.train), len(amp.validation), len(amp.test)) == (1424, 708, 1424)
    assert sorted(set(amp.train.labels)) == ["AMP", "DECOY"]
    assert (amp.train.labels == "AMP").sum() == 712 and amp.alphabet == "protein"
    assert amp.train.ids[0] == "AMP.tr.fa:AP00085" and amp.train.sequences[0] == "SLFSLIKAGAKFLGKNLLKQGACYAACKASKQC"


def test_csv_columns_are_found_or_named(tmp_path):
    records, alphabet, dropped = load_sequence_csv(PEPTIDES / "ican_toxinpred_swissprot" / "data.csv")
    assert len(records) == 5398 and alphabet == "protein" and dropped == 0
    assert sorted(np.unique(records.labels).tolist()) == [0, 1]
    records, alphabet, _ = load_sequence_csv(MOLECULES / "bbbp.csv")  # label column p_np: the only other one
    assert alphabet == "smiles" and len(records) == 2039
    with pytest.raises(DataError, match="cannot tell which column is the label column"):
        load_sequence_csv(MOLECULES / "clintox.csv")
    assert len(load_sequence_csv(MOLECULES / "clintox.csv", "CT_TOX")[0]) == 1478
    missing = tmp_path / "m.csv"
    missing.write_text("smiles,label\nCCO,1\nCCC,\nCCN,0\n")
    records, _, dropped = load_sequence_csv(missing)
    assert dropped == 1 and records.ids == ["m.csv:row 2", "m.csv:row 4"]
    with pytest.raises(DataError, match="no column 'y'"):
        load_sequence_csv(missing, "y")


def test_fasta_folder_errors(tmp_path):
    (tmp_path / "AMP.weird.fa").write_text(">a\nGLF\n")
    with pytest.raises(DataError, match="split 'weird'"):
        load_sequence_dataset(tmp_path)
    (tmp_path / "AMP.weird.fa").unlink()
    (tmp_path / "AMP.te.fa").write_text(">a\nGLF\n")
    with pytest.raises(DataError, match="no <LABEL>.tr.fa"):
        load_sequence_dataset(tmp_path)
    (tmp_path / "notes.fa").write_text("just text\n")
    with pytest.raises(DataError, match="cannot read .*notes.fa as FASTA: This FASTA file contains comments"):
        read_fasta(tmp_path / "notes.fa")
    (tmp_path / "empty.fa").write_text("")
    with pytest.raises(DataError, match="no FASTA records"):
        read_fasta(tmp_path / "empty.fa")
    with pytest.raises(DataError, match="not found"):
        load_sequence_dataset(tmp_path / "nothing.csv")


def test_stratified_test_split_keeps_class_balance():
    data = with_test_split(load_sequence_dataset(PEPTIDES / "ican_toxinpred_swissprot" / "data.csv"), 0.2, 0)
    assert len(data.test) == 1080 and data.split == "stratified"
    assert abs(data.test.labels.mean() - data.train.labels.mean()) < 0.01
    assert not set(data.test.ids) & set(data.train.ids)


def test_scaffold_split_never_shares_a_scaffold():
    records, _, _ = load_sequence_csv(MOLECULES / "bace.csv")
    parts = scaffold_split(records.sequences, (0.8, 0.1, 0.1), seed=0)
    assert sum(len(p) for p in parts) == len(records) and abs(len(parts[2]) - 151) < 40
    group_of = {i: g for g, members in enumerate(scaffold_groups(records.sequences)) for i in members}
    scaffolds = [{group_of[i] for i in p} for p in parts]
    assert not scaffolds[0] & scaffolds[2] and not scaffolds[0] & scaffolds[1] and not scaffolds[1] & scaffolds[2]
    again = scaffold_split(records.sequences, (0.8, 0.1, 0.1), seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
