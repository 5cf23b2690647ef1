"""Sequence baselines (moved from benchmarks/r2dl_baselines.py), trained on the same splits as R2DL.

(a) `composition`: logistic regression on composition: amino-acid + dipeptide frequencies
    (protein), nucleotide + dinucleotide frequencies (dna) or 2048-bit Morgan fingerprints,
    radius 2 (smiles);
(b) `cnn`: a small CNN trained from scratch on one-hot tokens;
(c) `lm_text_logistic` (benchmarks only: it needs a loaded language model): the same frozen
    language model fed the records as plain English text (letters separated by spaces; SMILES
    as written) with a linear head, i.e. logistic regression on its pooled features.

The three-part functions (`composition_logistic`, `cnn_from_scratch`, `lm_text_logistic`) take
(alphabet, train, validation, test, seed) SequenceRecords, as benchmarks/bench_r2dl.py calls
them, and return predicted probabilities of the test records for the sorted string labels.
The regularisation strength of (a) and (c) and the CNN's epoch are chosen on the validation
records. `composition` and `cnn` (the `fit_predict` interface) carve that validation part
from the training records: stratified, seeded, VAL_FRACTION of them.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from xmodal.baselines import in_class_order
from xmodal.data.sequences import SequenceRecords
from xmodal.data.tokenizers import (
    AMINO_ACIDS,
    NUCLEOTIDES,
    PAD_ID,
    Vocabulary,
    encode,
    make_tokenizer,
)
from xmodal.devices import seeded_global_rng
from xmodal.errors import DataError
from xmodal.presets import PRESETS
from xmodal.training.split import validation_split

DIPEPTIDES = ["".join(p) for p in itertools.product(AMINO_ACIDS, repeat=2)]
ALPHABETS = ("protein", "dna", "smiles")
VAL_FRACTION = PRESETS["sequence", "best"].settings["val_fraction"]  # as the model's own validation part


def composition(sequences: list[str], letters: tuple[str, ...] = AMINO_ACIDS) -> np.ndarray:
    """(N, L + L^2): letter and letter-pair frequencies (letters of `letters` only; the
    20 standard amino acids by default, 20 + 400 columns)."""
    pairs = DIPEPTIDES if letters == AMINO_ACIDS else ["".join(p) for p in itertools.product(letters, repeat=2)]
    single = {a: i for i, a in enumerate(letters)}
    double = {d: i for i, d in enumerate(pairs)}
    rows = np.zeros((len(sequences), len(single) + len(double)))
    for r, sequence in enumerate(sequences):
        sequence = sequence.upper()
        for a in sequence:
            if a in single:
                rows[r, single[a]] += 1 / len(sequence)
        for i in range(len(sequence) - 1):
            if sequence[i : i + 2] in double:
                rows[r, len(single) + double[sequence[i : i + 2]]] += 1 / max(len(sequence) - 1, 1)
    return rows


def morgan(smiles: list[str]) -> np.ndarray:
    from rdkit import Chem, RDLogger
    from rdkit.Chem import rdFingerprintGenerator

    RDLogger.DisableLog("rdApp.*")
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    rows = []
    for i, text in enumerate(smiles):
        molecule = Chem.MolFromSmiles(text)
        if molecule is None:
            raise DataError(f"record {i}: RDKit cannot parse SMILES {text!r}; Morgan fingerprints need valid SMILES")
        rows.append(generator.GetFingerprintAsNumPy(molecule))
    return np.array(rows, dtype=np.float32)


def features_for(alphabet: str):
    """The composition features of an alphabet: a function list[str] -> (N, d) array."""
    if alphabet == "protein":
        return composition
    if alphabet == "dna":
        return lambda sequences: composition(sequences, NUCLEOTIDES)
    if alphabet == "smiles":
        return morgan
    raise DataError(f"unknown alphabet {alphabet!r}; choose {', '.join(ALPHABETS)}")


def _logistic(train_x, train_y, val_x, val_y, test_x, seed: int) -> np.ndarray:
    """Logistic regression, C chosen by validation log-loss."""
    best = None
    for c in (0.01, 0.1, 1.0, 10.0):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000, random_state=seed))
        model.fit(train_x, train_y)
        loss = log_loss(val_y, model.predict_proba(val_x), labels=model.classes_)
        if best is None or loss < best[0]:
            best = (loss, model)
    return best[1].predict_proba(test_x)


def composition_logistic(alphabet, train, val, test, seed) -> np.ndarray:
    features = features_for(alphabet)
    return _logistic(features(train.sequences), train.labels.astype(str), features(val.sequences),
                     val.labels.astype(str), features(test.sequences), seed)


def plain_text(sequence: str, alphabet: str) -> str:
    return " ".join(sequence.upper()) if alphabet == "protein" else sequence


@torch.no_grad()
def lm_features(source, texts: list[str], batch_size: int = 64) -> np.ndarray:
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), source.feature_dim), dtype=np.float32)
    for i in range(0, len(texts), batch_size):
        chunk = order[i : i + batch_size]
        out[chunk] = source.features(source.text_inputs([texts[j] for j in chunk])).numpy()
    return out


def lm_text_logistic(source, alphabet, train, val, test, seed) -> np.ndarray:
    features = [lm_features(source, [plain_text(s, alphabet) for s in part.sequences]) for part in (train, val, test)]
    return _logistic(features[0], train.labels.astype(str), features[1], val.labels.astype(str), features[2], seed)


class TokenCNN(nn.Module):
    """One-hot tokens -> two convolutions -> global max pool -> linear."""

    def __init__(self, vocabulary_size: int, num_classes: int, width: int = 64):
        super().__init__()
        self.vocabulary_size = vocabulary_size
        self.conv1 = nn.Conv1d(vocabulary_size, width, kernel_size=5, padding=2)
        self.conv2 = nn.Conv1d(width, width, kernel_size=5, padding=2)
        self.dropout = nn.Dropout(0.3)
        self.out = nn.Linear(width, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = F.one_hot(ids, self.vocabulary_size).float().transpose(1, 2)
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        x = x.masked_fill((ids == PAD_ID)[:, None, :], -1e4).amax(dim=2)
        return self.out(self.dropout(x))


def cnn_from_scratch(alphabet, train, val, test, seed, epochs: int = 30, patience: int = 5) -> np.ndarray:
    # The network's initialisation and dropout draw from torch's global RNG: seeded inside a
    # fork, so the caller's random state is the same afterwards.
    with seeded_global_rng(seed):
        return _train_cnn(alphabet, train, val, test, seed, epochs, patience)


def _train_cnn(alphabet, train, val, test, seed: int, epochs: int, patience: int) -> np.ndarray:
    tokenizer = make_tokenizer(alphabet)
    parts = [[tokenizer.tokenize(s) for s in part.sequences] for part in (train, val, test)]
    vocabulary = Vocabulary.build(tokenizer, parts[0])
    ids = [encode(p, vocabulary, [str(i) for i in range(len(p))], 10_000, unknown="unk").ids for p in parts]
    classes = np.unique(train.labels.astype(str))
    targets = [torch.as_tensor(np.searchsorted(classes, part.labels.astype(str))) for part in (train, val)]
    model = TokenCNN(vocabulary.size, len(classes))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    best = (np.inf, None, 0)
    for epoch in range(epochs):
        model.train()
        for batch in torch.randperm(len(ids[0]), generator=generator).split(32):
            loss = F.cross_entropy(model(ids[0][batch]), targets[0][batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val_loss = F.cross_entropy(model(ids[1]), targets[1]).item()
        if val_loss < best[0]:
            best = (val_loss, copy.deepcopy(model.state_dict()), epoch)
        elif epoch - best[2] >= patience:
            break
    model.load_state_dict(best[1])
    model.eval()
    with torch.no_grad():
        return model(ids[2]).softmax(dim=1).numpy()


def _records(sequences: list[str], labels: np.ndarray, what: str) -> SequenceRecords:
    for i, sequence in enumerate(sequences):
        if not isinstance(sequence, str) or not sequence.strip():
            raise DataError(f"{what} record {i}: empty or not a string ({sequence!r})")
    return SequenceRecords([f"{what} {i}" for i in range(len(sequences))], list(sequences), labels)


def _parts(X_train: list[str], y_train, X_test: list[str], seed: int):
    """(train, validation, test) records: the validation part a stratified, seeded
    VAL_FRACTION of the training records (at least one per class)."""
    y = np.asarray(y_train)
    classes, codes = np.unique(y, return_inverse=True)
    # Stratified on the class codes (np.unique order), so the split does not depend on how the labels are spelled.
    fit, val = validation_split(codes, VAL_FRACTION, seed)
    if len(val) == 0:
        raise DataError(f"{len(y)} training records in {len(classes)} classes are too few to hold out a stratified "
                        "validation part; every class needs at least 2 records")
    records = _records(list(X_train), y, "training")
    return records.subset(fit), records.subset(val), _records(list(X_test), np.zeros(len(X_test)), "test")


def _string_classes(y_train) -> np.ndarray:
    """The column order of the three-part functions: the sorted string labels."""
    return np.unique(np.asarray(y_train).astype(str))


def composition_fit_predict(X_train: list[str], y_train, X_test: list[str], seed: int = 0,
                            alphabet: str = "protein") -> np.ndarray:
    features_for(alphabet)  # an unknown alphabet fails before any work
    proba = composition_logistic(alphabet, *_parts(X_train, y_train, X_test, seed), seed)
    return in_class_order(proba, _string_classes(y_train), y_train)


def cnn_fit_predict(X_train: list[str], y_train, X_test: list[str], seed: int = 0,
                    alphabet: str = "protein") -> np.ndarray:
    make_tokenizer(alphabet)  # an unknown alphabet fails before any work
    proba = cnn_from_scratch(alphabet, *_parts(X_train, y_train, X_test, seed), seed)
    return in_class_order(proba, _string_classes(y_train), y_train)


FIT_PREDICT = {"composition": composition_fit_predict, "cnn": cnn_fit_predict}
