"""Sequence datasets: peptides / proteins / DNA from FASTA or CSV, molecules from CSV.

    load_sequence_dataset(PATH) -> SequenceDataset(train, validation, test)

PATH is
  - a CSV with a `sequence` or `smiles` column and a label column (`label`,
    the one other column, or the one named by `label_column`); rows whose
    label cell is empty (or NaN, ?) are dropped and counted (MoleculeNet marks
    missing labels so);
  - a folder of FASTA files named `<LABEL>.<SPLIT>.fa` (or `.fasta`), SPLIT one
    of tr/train, eval/val, te/test: the AMP Scanner v2 layout. Every record of
    a file gets the file's label.
FASTA is read with Biopython's SeqIO. A dataset without a test split gets
one from `with_test_split` (stratified) or `scaffold_split` (molecules).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from xmodal.data.ucr import is_missing_label, parse_labels
from xmodal.errors import DataError

SPLIT_NAMES = {"tr": "train", "train": "train", "eval": "validation", "val": "validation",
               "te": "test", "test": "test"}
FASTA_NAME = re.compile(r"^(?P<label>.+)\.(?P<split>[A-Za-z]+)\.(fa|fasta)$")
SEQUENCE_COLUMNS = ("sequence", "smiles")


@dataclass
class SequenceRecords:
    ids: list[str]  # record names (FASTA ids, or "<file>:row <n>") for error messages
    sequences: list[str]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.sequences)

    def subset(self, indices) -> "SequenceRecords":
        indices = np.asarray(indices, dtype=np.int64)
        return SequenceRecords([self.ids[i] for i in indices], [self.sequences[i] for i in indices],
                               self.labels[indices])


@dataclass
class SequenceDataset:
    name: str
    alphabet: str  # "protein", "dna" or "smiles"
    train: SequenceRecords
    validation: SequenceRecords | None
    test: SequenceRecords | None
    source: str
    dropped_missing_labels: int = 0
    split: str = "given"  # how the test split was made: given, stratified or scaffold


def read_fasta(path: str | Path) -> tuple[list[str], list[str]]:
    from Bio import SeqIO

    try:  # str(seq) inside: Biopython decodes a sequence as ASCII only when it is asked for it
        records = [(r.id, str(r.seq)) for r in SeqIO.parse(str(path), "fasta")]
    except (ValueError, UnicodeDecodeError) as exc:
        reason = str(exc).split("\n\n")[0].replace("\n", " ")  # Biopython's first paragraph says it
        raise DataError(f"cannot read {path} as FASTA: {reason}") from exc
    if not records:
        raise DataError(f"{path} holds no FASTA records (is it a FASTA file?)")
    if empty := [name for name, sequence in records if not sequence.strip()]:
        raise DataError(f"{path}: {len(empty)} records have an empty sequence (first: {empty[0]!r}); remove them")
    return [name for name, _ in records], [sequence for _, sequence in records]


def load_fasta_folder(folder: str | Path) -> dict[str, SequenceRecords]:
    """{split: records} from `<LABEL>.<SPLIT>.fa` files."""
    folder = Path(folder)
    parts: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for path in sorted(folder.iterdir()):
        match = FASTA_NAME.match(path.name)
        if not match:
            continue
        split = SPLIT_NAMES.get(match["split"].lower())
        if split is None:
            raise DataError(f"{path.name}: split {match['split']!r} is not one of {', '.join(SPLIT_NAMES)}; "
                            "name FASTA files <LABEL>.<SPLIT>.fa")
        ids, sequences = read_fasta(path)
        parts[split] += [(f"{path.name}:{i}", s, match["label"]) for i, s in zip(ids, sequences)]
    if "train" not in parts:
        raise DataError(f"{folder} holds no <LABEL>.tr.fa / <LABEL>.train.fa files; a FASTA dataset folder "
                        "needs one file per label and split, e.g. AMP.tr.fa, DECOY.tr.fa")
    return {split: SequenceRecords([r[0] for r in rows], [r[1] for r in rows], np.array([r[2] for r in rows], dtype=object))
            for split, rows in parts.items()}


def _pick_column(columns: list[str], wanted: str | None, candidates: tuple[str, ...], what: str, path: Path) -> str:
    by_lower = {c.lower(): c for c in columns}
    if wanted is not None:
        if wanted not in columns:
            raise DataError(f"{path}: no column {wanted!r}; columns are {columns}")
        return wanted
    for candidate in candidates:
        if candidate in by_lower:
            return by_lower[candidate]
    raise DataError(f"{path}: cannot tell which column is the {what} (columns {columns}); "
                    f"name it {' or '.join(candidates)} or pass it explicitly (CLI --label-column)")


def load_sequence_csv(path: str | Path, label_column: str | None = None) -> tuple[SequenceRecords, str, int]:
    """(records, alphabet guessed from the column name, rows dropped for a missing label)."""
    import pandas as pd

    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError as exc:  # pandas says "No columns to parse from file"
        raise DataError(f"{path} is empty (or only blank lines); give a CSV file with a header row") from exc
    except Exception as exc:  # pandas raises several parser error types
        reason = " ".join(str(exc).split())  # pandas' messages end in (or span) new lines
        raise DataError(f"cannot read {path} as CSV: {reason}") from exc
    columns = list(table.columns)
    sequence_column = _pick_column(columns, None, SEQUENCE_COLUMNS, "sequence column", path)
    others = [c for c in columns if c != sequence_column]
    label_candidates = ("label",) + ((others[0].lower(),) if len(others) == 1 else ())
    label = _pick_column(columns, label_column, label_candidates, "label column", path)
    raw_labels = table[label].str.strip()
    keep = ~raw_labels.map(is_missing_label).to_numpy(dtype=bool)
    if not keep.any():
        raise DataError(f"{path}: column {label!r} has no labels")
    rows = np.flatnonzero(keep)
    sequences = table[sequence_column].to_numpy()[rows].tolist()
    ids = [f"{path.name}:row {r + 2}" for r in rows]  # +2: header line, 1-based
    for record, sequence in zip(ids, sequences):
        if not sequence.strip():
            raise DataError(f"{record}: empty {sequence_column}")
    alphabet = "smiles" if sequence_column.lower() == "smiles" else "protein"
    return SequenceRecords(ids, sequences, parse_labels(raw_labels[keep].tolist())), alphabet, int((~keep).sum())


def load_sequence_dataset(path: str | Path, label_column: str | None = None, alphabet: str | None = None) -> SequenceDataset:
    path = Path(path)
    if path.is_dir():
        splits = load_fasta_folder(path)
        return SequenceDataset(path.name, alphabet or "protein", splits["train"], splits.get("validation"),
                               splits.get("test"), str(path))
    if not path.is_file():
        raise DataError(f"dataset {path} not found; give a CSV file or a folder of <LABEL>.<SPLIT>.fa files")
    records, guessed, dropped = load_sequence_csv(path, label_column)
    return SequenceDataset(path.stem, alphabet or guessed, records, None, None, str(path), dropped)


def with_test_split(data: SequenceDataset, test_size: float, seed: int) -> SequenceDataset:
    """A stratified, seeded test split carved from `train` if there is no test split."""
    from sklearn.model_selection import train_test_split

    if data.test is not None:
        return data
    if not 0 < test_size < 1:
        raise DataError(f"test size must be in (0, 1), got {test_size}")
    _, counts = np.unique(data.train.labels.astype(str), return_counts=True)
    n_test = max(int(round(test_size * len(data.train))), len(counts))  # one test record per class at least
    if counts.min() < 2 or len(data.train) - n_test < len(counts):
        raise DataError(f"{data.name}: {len(data.train)} records in {len(counts)} classes (smallest {counts.min()}) "
                        "are too few for a stratified test split; add records or give a test split")
    fit_idx, test_idx = train_test_split(np.arange(len(data.train)), test_size=n_test,
                                         stratify=data.train.labels.astype(str), random_state=seed)
    return replace(data, train=data.train.subset(np.sort(fit_idx)), test=data.train.subset(np.sort(test_idx)),
                   split="stratified")


def scaffold_groups(smiles: list[str]) -> list[list[int]]:
    """Record indices grouped by Bemis-Murcko scaffold (RDKit)."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem.Scaffolds import MurckoScaffold

    RDLogger.DisableLog("rdApp.*")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, text in enumerate(smiles):
        molecule = Chem.MolFromSmiles(text)
        if molecule is None:
            raise DataError(f"record {i}: RDKit cannot parse SMILES {text!r}; a scaffold split needs valid SMILES")
        groups[MurckoScaffold.MurckoScaffoldSmiles(mol=molecule, includeChirality=False)].append(i)
    return list(groups.values())


def scaffold_split(smiles: list[str], fractions=(0.8, 0.1, 0.1), seed: int = 0) -> tuple[np.ndarray, ...]:
    """(train, validation, test) indices with no scaffold shared between parts.

    Balanced and seeded as in chemprop: scaffold sets bigger than half the
    test size go to train first (so no small split is one big scaffold),
    the rest in a seeded random order; each set goes whole to the first part
    with room for it."""
    groups = scaffold_groups(smiles)
    n = len(smiles)
    sizes = [fractions[0] * n, fractions[1] * n, fractions[2] * n]
    big = [g for g in groups if len(g) > sizes[2] / 2]
    small = [g for g in groups if len(g) <= sizes[2] / 2]
    rng = np.random.default_rng(seed)
    rng.shuffle(big)
    rng.shuffle(small)
    parts: list[list[int]] = [[], [], []]
    for group in big + small:
        for part, limit in enumerate(sizes):
            if len(parts[part]) + len(group) <= limit or part == 2:
                parts[part] += group
                break
    return tuple(np.array(sorted(p), dtype=np.int64) for p in parts)
