"""Target vocabularies and tokenisers: the stated policies, edge cases, errors."""

import re

import pytest
import torch

from xmodal.data.tokenizers import (
    PAD_ID,
    UNK_ID,
    Vocabulary,
    encode,
    make_tokenizer,
    token_counts,
)
from xmodal.errors import DataError


def test_amino_acids_fold_case_and_rare_residues():
    protein = make_tokenizer("protein")
    assert protein.tokenize("gLfDiv") == list("GLFDIV")
    assert protein.tokenize("AUO") == ["A", "C", "K"]  # selenocysteine -> C, pyrrolysine -> K
    assert Vocabulary.build(protein).tokens == tuple("ACDEFGHIKLMNPQRSTVWY")


@pytest.mark.parametrize("code", ["X", "B", "Z", "J", "*", "1"])
def test_ambiguous_residues_name_the_record_and_token(code):
    protein = make_tokenizer("protein")
    vocabulary = Vocabulary.build(protein)
    with pytest.raises(DataError, match=re.escape(f"AP001: unknown token '{code}'")):
        vocabulary.ids(protein.tokenize(f"GL{code}K"), "AP001")
    assert vocabulary.ids(protein.tokenize(f"GL{code}K"), "AP001", unknown="unk")[2] == UNK_ID


def test_nucleotides_read_rna_and_refuse_ambiguity():
    dna = make_tokenizer("dna")
    vocabulary = Vocabulary.build(dna)
    assert dna.tokenize("acgu") == ["A", "C", "G", "T"]
    with pytest.raises(DataError, match="seq7: unknown token 'N'"):
        vocabulary.ids(dna.tokenize("ACNT"), "seq7")


@pytest.mark.parametrize("smiles, tokens", [
    ("ClCBr", ["Cl", "C", "Br"]),
    ("c1ccccc1[nH]", ["c", "1", "c", "c", "c", "c", "c", "1", "[nH]"]),
    ("C[C@@H](N)C(=O)O", ["C", "[C@@H]", "(", "N", ")", "C", "(", "=", "O", ")", "O"]),
    ("C%12CC%12", ["C", "%12", "C", "C", "%12"]),
    ("[Na+].[Cl-]", ["[Na+]", ".", "[Cl-]"]),
    ("C#N", ["C", "#", "N"]),
    ("F/C=C/F", ["F", "/", "C", "=", "C", "/", "F"]),
    ("*C(=O)O", ["*", "C", "(", "=", "O", ")", "O"]),
])
def test_smiles_atoms_rings_bonds_and_branches(smiles, tokens):
    assert make_tokenizer("smiles").tokenize(smiles) == tokens


def test_smiles_errors_name_the_record():
    smiles = make_tokenizer("smiles")
    with pytest.raises(DataError, match=r"mol3: .*position 1 \('&'\)"):
        smiles.tokenize("C&C", "mol3")
    with pytest.raises(DataError, match="mol4: RDKit cannot parse"):
        make_tokenizer("smiles", validate=True).tokenize("C1CC", "mol4")  # unclosed ring
    with pytest.raises(DataError, match="mol5: empty"):
        smiles.tokenize("  ", "mol5")


def test_smiles_vocabulary_grows_with_bracket_atoms_from_training_only():
    smiles = make_tokenizer("smiles")
    vocabulary = Vocabulary.build(smiles, [smiles.tokenize("[Na+].[Cl-]"), smiles.tokenize("CC")])
    assert vocabulary.tokens[-2:] == ("[Na+]", "[Cl-]") and "Cl" in vocabulary.tokens
    with pytest.raises(DataError, match=r"test 0: unknown token '\[K\+\]'"):
        vocabulary.ids(smiles.tokenize("[K+]"), "test 0")


def test_encode_pads_right_and_truncates_only_by_policy():
    protein = make_tokenizer("protein")
    vocabulary = Vocabulary.build(protein)
    tokens = [protein.tokenize("ACDEF"), protein.tokenize("GH")]
    with pytest.raises(DataError, match="long: 5 tokens but the source takes at most 3"):
        encode(tokens, vocabulary, ["long", "short"], 3)
    start = encode(tokens, vocabulary, ["long", "short"], 3, truncation="keep_start")
    end = encode(tokens, vocabulary, ["long", "short"], 3, truncation="keep_end")
    assert start.truncated == 1 and start.truncated_records == ["long"]
    assert start.ids[0].tolist() == vocabulary.ids(list("ACD"), "x")
    assert end.ids[0].tolist() == vocabulary.ids(list("DEF"), "x")
    assert start.ids[1, 2].item() == PAD_ID and token_counts(start.ids).tolist() == [3, 2]
    assert start.ids.dtype == torch.long
    with pytest.raises(DataError, match="truncation must be one of"):
        encode(tokens, vocabulary, ["a", "b"], 3, truncation="middle")
