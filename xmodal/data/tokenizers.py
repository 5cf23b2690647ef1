"""Target vocabularies and tokenisers: amino acids, SMILES, nucleotides.

A tokeniser turns one record (a string) into a list of target tokens; a
`Vocabulary` numbers them. Id 0 is padding and id 1 the unknown token, so a
batch is a right-padded LongTensor that the R2DL bridge reads directly.

Policies, stated once:

- Amino acids: the 20 standard one-letter codes. Lower case is upper-cased
  (FASTA uses it for soft-masked low-complexity regions, not for other
  residues). The two genetically encoded rare residues are folded onto their
  closest standard residue: U (selenocysteine) -> C, O (pyrrolysine) -> K.
  Ambiguity codes B (D/N), Z (E/Q), J (I/L), X (any) and every other
  character are unknown tokens.
- Nucleotides: A, C, G, T; lower case upper-cased; U (RNA) read as T. IUPAC
  ambiguity codes (N, R, Y, ...) are unknown.
- SMILES: atom-level regex (Schwaller et al. 2019): bracket atoms ([nH],
  [C@@H], [Na+]) are single tokens, as are Cl and Br, ring-bond digits and
  two-digit %nn ring bonds, bonds (- = # $ : / \\), branches and dots. A
  character the regex cannot place is an error naming it. With RDKit
  installed, `validate=True` also rejects strings RDKit cannot parse.

An unknown token is an error naming the record and the token, unless the
caller chooses `unknown="unk"`, which maps it to <unk>.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import torch

from xmodal.errors import DataError

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
UNKNOWN_POLICIES = ("error", "unk")
TRUNCATION_POLICIES = ("error", "keep_start", "keep_end")

AMINO_ACIDS = tuple("ACDEFGHIKLMNPQRSTVWY")
AMINO_ACID_ALIASES = {"U": "C", "O": "K"}
NUCLEOTIDES = tuple("ACGT")
NUCLEOTIDE_ALIASES = {"U": "T"}
SMILES_PATTERN = re.compile(
    r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|/|:|~|@|\?|>|\*|\$|%[0-9]{2}|[0-9])"
)
# Organic-subset atoms, aromatic atoms, bonds, branches and ring digits: every
# SMILES vocabulary holds these; bracket atoms are added from the training data.
SMILES_BASE = tuple("B C N O S P F I b c n o s p ( ) . = # - + \\ / : ~ @ ? > * $".split()) + ("Br", "Cl") + tuple("0123456789")


class LetterTokenizer:
    """One token per character, from a fixed alphabet, with case and alias folding."""

    def __init__(self, kind: str, alphabet: tuple[str, ...], aliases: dict[str, str]):
        self.kind, self.alphabet, self.aliases = kind, alphabet, aliases

    def tokenize(self, text: str, record: str = "record") -> list[str]:
        if not text.strip():
            raise DataError(f"{record}: empty sequence")
        return [self.aliases.get(c, c) for c in text.strip().upper()]

    def base_tokens(self) -> tuple[str, ...]:
        return self.alphabet


class SmilesTokenizer:
    """Atom-level SMILES tokens; the concatenated tokens must give back the string."""

    kind = "smiles"

    def __init__(self, validate: bool = False):
        self.validate = validate

    def tokenize(self, text: str, record: str = "record") -> list[str]:
        text = text.strip()
        if not text:
            raise DataError(f"{record}: empty SMILES")
        tokens = SMILES_PATTERN.findall(text)
        if "".join(tokens) != text:
            position = _first_mismatch(tokens, text)
            raise DataError(f"{record}: SMILES {text!r} has a character the tokeniser cannot place at "
                            f"position {position} ({text[position]!r}); fix or drop the record")
        if self.validate:
            _check_with_rdkit(text, record)
        return tokens

    def base_tokens(self) -> tuple[str, ...]:
        return SMILES_BASE


def _first_mismatch(tokens: list[str], text: str) -> int:
    position = 0
    for match in SMILES_PATTERN.finditer(text):
        if match.start() != position:
            return position
        position = match.end()
    return position


def _check_with_rdkit(text: str, record: str) -> None:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")  # the DataError below says what is wrong, once
    if Chem.MolFromSmiles(text) is None:
        raise DataError(f"{record}: RDKit cannot parse SMILES {text!r}; fix or drop the record")


def make_tokenizer(kind: str, validate: bool = False):
    if kind == "protein":
        return LetterTokenizer("protein", AMINO_ACIDS, AMINO_ACID_ALIASES)
    if kind == "dna":
        return LetterTokenizer("dna", NUCLEOTIDES, NUCLEOTIDE_ALIASES)
    if kind == "smiles":
        return SmilesTokenizer(validate=validate)
    raise DataError(f"unknown alphabet {kind!r}; choose protein, dna or smiles")


@dataclass(frozen=True)
class Vocabulary:
    """Target tokens numbered from 2 (0 = <pad>, 1 = <unk>)."""

    tokens: tuple[str, ...]

    def __post_init__(self):
        if len(set(self.tokens)) != len(self.tokens) or {PAD, UNK} & set(self.tokens):
            raise DataError("vocabulary tokens must be distinct and must not include <pad> or <unk>")

    @classmethod
    def build(cls, tokenizer, token_lists: list[list[str]] = ()) -> "Vocabulary":
        """The tokeniser's base alphabet, then (SMILES) tokens first seen in the data.
        Letter alphabets are closed: a letter outside them stays unknown."""
        tokens = list(tokenizer.base_tokens())
        if tokenizer.kind == "smiles":
            seen = set(tokens)
            for token in (t for tokens_ in token_lists for t in tokens_):
                if token not in seen:
                    seen.add(token)
                    tokens.append(token)
        return cls(tuple(tokens))

    @property
    def size(self) -> int:
        """Rows of the target embedding table: padding, unknown and the tokens."""
        return len(self.tokens) + 2

    def all_tokens(self) -> list[str]:
        return [PAD, UNK, *self.tokens]

    def ids(self, tokens: list[str], record: str, unknown: str = "error") -> list[int]:
        index = self._index
        missing = [t for t in tokens if t not in index]
        if missing and unknown != "unk":
            raise DataError(f"{record}: unknown token {missing[0]!r} (vocabulary: {''.join(self.tokens[:40])}...); "
                            "clean the record or choose the UNK policy (unknown='unk', CLI --unknown unk)")
        return [index.get(t, UNK_ID) for t in tokens]

    @cached_property
    def _index(self) -> dict[str, int]:
        return {t: i + 2 for i, t in enumerate(self.tokens)}


@dataclass
class EncodedBatch:
    ids: torch.Tensor  # (N, L) long, right-padded with PAD_ID
    truncated: int  # records cut to max_tokens
    truncated_records: list[str]


def encode(token_lists: list[list[str]], vocabulary: Vocabulary, records: list[str], max_tokens: int,
           truncation: str = "error", unknown: str = "error") -> EncodedBatch:
    """Token lists -> padded id tensor. Records over `max_tokens` follow the truncation
    policy: an error naming them, or keep the first / last `max_tokens` tokens."""
    if truncation not in TRUNCATION_POLICIES:
        raise DataError(f"truncation must be one of {TRUNCATION_POLICIES}, got {truncation!r}")
    if unknown not in UNKNOWN_POLICIES:
        raise DataError(f"unknown-token policy must be one of {UNKNOWN_POLICIES}, got {unknown!r}")
    if not token_lists:
        raise DataError("no records to encode")
    rows, cut = [], []
    for tokens, record in zip(token_lists, records):
        ids = vocabulary.ids(tokens, record, unknown)
        if len(ids) > max_tokens:
            if truncation == "error":
                raise DataError(f"{record}: {len(ids)} tokens but the source takes at most {max_tokens} here; "
                                "choose a truncation policy (truncation='keep_start' or 'keep_end', CLI --truncation)")
            ids = ids[:max_tokens] if truncation == "keep_start" else ids[-max_tokens:]
            cut.append(record)
        rows.append(ids)
    batch = torch.full((len(rows), max(len(r) for r in rows)), PAD_ID, dtype=torch.long)
    for i, ids in enumerate(rows):
        batch[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return EncodedBatch(batch, len(cut), cut)


def token_counts(ids: torch.Tensor) -> torch.Tensor:
    """Tokens per row of a padded id batch."""
    return (ids != PAD_ID).sum(dim=1)
