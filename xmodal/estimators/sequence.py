"""scikit-learn classifier for sequences: R2DL through a frozen language model.

    SequenceClassifier(alphabet="protein").fit(["GLFDIVKK...", ...], y).predict([...])

X is a list (or 1-D array) of strings: peptides / proteins, DNA, or SMILES.
The pipeline is tokeniser -> R2DL bridge (theta) -> frozen text source ->
linear head on pooled features (omega). Only theta and omega are trained;
omega starts as a logistic-regression probe of the initial features (head_init
"probe"), and that start competes as epoch 0: training is kept only where it wins
on validation log-loss. With trained_view (the trained-view preset) the start does not
compete: it is read beside the trained theta, under one probe of both readings. With
head "kernel" (the best preset) omega is an RBF-kernel probe of the untrained reading
instead, fitted as the linear probe is and refitted on the validation records too;
theta is not trained. With both (the trained-view preset) theta trains under a linear head
first, and the kernel head on both readings competes with the one on the start's reading
alone (the best preset's model) on validation log-loss.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from adapters_modal.text import load_text_source
from xmodal.bridges.tokens_to_embeddings import (
    TokensToEmbeddings,
    TokensToEmbeddingsConfig,
)
from xmodal.data.tokenizers import (
    EncodedBatch,
    Vocabulary,
    encode,
    make_tokenizer,
    token_counts,
)
from xmodal.devices import resolve_device, resolve_precision
from xmodal.errors import DataError, XmodalError
from xmodal.estimators.base import ReprogrammingEstimator, with_settings
from xmodal.maps import KernelHead, LinearHead
from xmodal.reprogrammer import Reprogrammer
from xmodal.training.kernel_probe import check_kernel_rows
from xmodal.training.loop import in_batches


def as_sequences(X, what: str = "X") -> list[str]:
    """A list of non-empty strings, or a DataError naming the bad element."""
    if isinstance(X, (str, bytes)):
        raise DataError(f"{what} is a single string; pass a list of sequences")
    sequences = list(np.asarray(X, dtype=object).ravel()) if not isinstance(X, list) else X
    if not sequences:
        raise DataError(f"{what} is empty")
    for i, value in enumerate(sequences):
        if not isinstance(value, str):
            raise DataError(f"{what}[{i}] is {type(value).__name__} {value!r}, not a sequence string")
    return sequences


@with_settings("sequence", random_state=None, verbose=False)
class SequenceClassifier(ReprogrammingEstimator, ClassifierMixin, BaseEstimator):
    """Classify sequences or molecules with a frozen English language model (R2DL).

    Besides the settings: random_state (None draws a seed, kept as `seed_`), verbose
    (progress bars). `fit(X, y, validation_data=None, names=None)`: validation_data, an
    optional (X_val, y_val) used to select the epoch instead of carving val_fraction from
    X; names, record names for error messages.
    """

    # Runs saved before these settings existed were fitted in float32 (and refit so), without a trained view,
    # under a linear head.
    _settings_added_later = {"precision": "float32", "trained_view": False, "head": "linear"}

    def _alphabet(self) -> str:
        return self.settings_["alphabet"] or "protein"

    def _tokenizer(self):
        return make_tokenizer(self._alphabet(), validate=self.settings_["validate_smiles"])

    def _tokenize(self, sequences: list[str], names: list[str] | None) -> list[list[str]]:
        tokenizer = self._tokenizer()
        names = names or [f"record {i} ({s[:20]!r})" for i, s in enumerate(sequences)]
        return [tokenizer.tokenize(s, n) for s, n in zip(sequences, names)]

    def encode(self, X, names: list[str] | None = None) -> EncodedBatch:
        """Sequences -> padded ids with this fitted vocabulary and truncation policy."""
        check_is_fitted(self, "reprogrammer_")
        sequences = as_sequences(X)
        names = names or [f"record {i} ({s[:20]!r})" for i, s in enumerate(sequences)]
        tokens = self._tokenize(sequences, names)
        max_tokens = self.reprogrammer_.bridge.config.max_tokens
        batch = encode(tokens, self.vocabulary_, names, max_tokens, self.settings_["truncation"],
                       self.settings_["unknown"])
        if batch.truncated:
            warnings.warn(f"{batch.truncated} of {len(tokens)} records were cut to {max_tokens} tokens "
                          f"({self.settings_['truncation']}): {', '.join(batch.truncated_records[:3])}...",
                          stacklevel=2)
        return batch

    def fit(self, X, y, validation_data=None, names=None):
        sequences = as_sequences(X)
        if len(sequences) != len(y):
            raise DataError(f"{len(sequences)} sequences but {len(y)} labels; give one label per sequence")
        self._begin_fit(y)
        s = self.settings_
        if s["head"] == "kernel" and ((s["epochs"] and not s["trained_view"]) or s["head_init"] != "probe"):
            raise XmodalError("a kernel head is fitted on the reading, not trained: it needs head_init='probe' and "
                              f"epochs 0, or trained_view to train theta under a linear head first (got epochs="
                              f"{s['epochs']}, head_init={s['head_init']!r}, trained_view={s['trained_view']}); "
                              "or set head 'linear'")
        if s["head"] == "kernel":  # before minutes of reading the source: the refit holds the validation records too
            check_kernel_rows(len(sequences) + (0 if validation_data is None else len(validation_data[0])))
        if s["trained_view"] and (s["head_init"] != "probe" or s["epochs"] < 1):
            raise XmodalError("trained_view trains theta from the probe start and reads both readings under one "
                              f"probe: it needs head_init='probe' and epochs >= 1 (got head_init={s['head_init']!r}, "
                              f"epochs={s['epochs']}); or set trained_view false")
        source = load_text_source(s["source"])
        self.vocabulary_ = Vocabulary.build(self._tokenizer(), self._tokenize(sequences, names))
        spec = source.input_spec
        bridge = TokensToEmbeddings(TokensToEmbeddingsConfig(
            tokens=list(self.vocabulary_.tokens), alphabet=self._alphabet(), mode=s["mode"], init=s["init"],
            sparsity=s["sparsity"], prompt_length=s["prompt_length"], source_vocab_size=spec.vocab_size,
            embedding_dim=spec.embedding_dim, max_positions=spec.max_positions))
        # A trained view trains theta under a linear head; a kernel head reads it out afterwards.
        head = (KernelHead(source.feature_dim, len(self.classes_)) if s["head"] == "kernel" and not s["trained_view"]
                else LinearHead(source.feature_dim, len(self.classes_), seed=self.seed_))
        self.reprogrammer_ = Reprogrammer(bridge, source, head, list(self.classes_), reads="features")
        autocast = resolve_precision(s["precision"], resolve_device(s["device"]))
        self._use_precision("float32" if autocast is None else "bfloat16")
        bridge.initialise(self.seed_)
        train = self.encode(sequences, names)
        self.n_truncated_ = train.truncated
        validation = None
        if validation_data is not None:
            val_ids = self.encode(validation_data[0]).ids
            order = torch.argsort(token_counts(val_ids), stable=True)  # less padding per batch, same scores
            validation = (val_ids[order], self._targets(validation_data[1])[order])
        if s["trained_view"]:
            fit_view = self._fit_trained_kernel_view if s["head"] == "kernel" else self._fit_trained_view
            fit_view(train.ids, self._targets(y), validation, token_counts(train.ids))
        else:
            # Selection on validation log-loss, the criterion the probe's C is chosen by: accuracy
            # would let one flipped record of a small validation split (BACE, ClinTox: about 150)
            # pick an epoch whose ranking, the ROC-AUC reported, is worse.
            self._train(self.reprogrammer_, train.ids, self._targets(y), head_init=s["head_init"], select_on="loss",
                        validation=validation, lengths=token_counts(train.ids))
        self.sparsity_ = bridge.sparsity_report()
        return self

    def _use_precision(self, name: str) -> None:
        """Read the LM in `name` (float32 or bfloat16), kept as `precision_`: `auto` is resolved once,
        at fit time, and a saved run keeps what it was fitted with, so it predicts the same numbers
        on any machine (emulated, and slower, where bfloat16 is not native)."""
        self.precision_ = name
        self.reprogrammer_.compute_dtype = resolve_precision(name, self.reprogrammer_.device)

    def predict_proba(self, X) -> np.ndarray:
        ids = self.encode(X).ids
        model = self.reprogrammer_.eval()
        device = model.device
        with torch.no_grad():
            probabilities = in_batches(lambda batch: model(batch.to(device)).softmax(dim=1).cpu(), ids, 64,
                                       token_counts(ids))
        return probabilities.numpy().astype(np.float64)

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def _save_state(self) -> dict:
        return {"sparsity": self.sparsity_, "n_truncated": self.n_truncated_, "precision": self.precision_}

    @staticmethod
    def _load_saved_source(name: str, weights_path=None):
        return load_text_source(name)  # a language model, whatever else the name could load

    def _restore(self, document: dict) -> None:
        if not isinstance(self.reprogrammer_.bridge, TokensToEmbeddings):
            raise DataError(f"this run holds a {type(self.reprogrammer_.bridge).__name__}, not a sequence classifier")
        self.vocabulary_ = Vocabulary(tuple(self.reprogrammer_.bridge.config.tokens))
        self._use_precision(document.get("metadata", {}).get("precision", "float32"))  # older runs: float32
        self.sparsity_ = self.reprogrammer_.bridge.sparsity_report()
        self.n_truncated_ = document.get("metadata", {}).get("n_truncated", 0)
