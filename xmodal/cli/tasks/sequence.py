"""The sequence task: a CSV (sequence or smiles column) or an AMP Scanner FASTA folder,
split stratified or by scaffold when it has no test split."""

from __future__ import annotations

from xmodal.cli.tasks.base import (
    DEFAULT_TEST_SIZE,
    Records,
    Split,
    Task,
    absolute,
    add_test_size_flag,
    check_labels,
    existing_path,
)
from xmodal.errors import DataError

NUCLEOTIDE_LETTERS = frozenset("ACGTUN")  # N: any base
LEAST_LETTERS = 30  # fewer letters than this cannot tell DNA from a peptide made of A, C, G, T


def letters_alphabet(sequences) -> str | None:
    """The letters' alphabet: dna when every letter is a nucleotide, protein when some letter
    is not, None when the records hold too few letters to tell (a peptide of A, C, G, T)."""
    letters = [c for sequence in sequences for c in str(sequence).upper() if c.isalpha()]
    if set(letters) - NUCLEOTIDE_LETTERS:
        return "protein"
    return "dna" if len(letters) >= LEAST_LETTERS else None


def check_alphabet(sequences, data_alphabet: str, alphabet: str, name: str) -> None:
    """Refuse records of another alphabet than the run's: SMILES against letters, and DNA
    against protein (A, C, G and T are amino acids too, so tokens alone would let DNA
    through a protein run)."""
    if (data_alphabet == "smiles") != (alphabet == "smiles"):
        found = data_alphabet
    elif alphabet == "smiles":
        return
    else:
        found = letters_alphabet(sequences) or alphabet
    if found != alphabet:
        raise DataError(f"{name} holds {found} records but this run reads {alphabet} sequences; "
                        "give data in the run's alphabet")


class SequenceTask(Task):
    name = "sequence"
    own_flags = ("--label-column",)

    def add_fit_flags(self, parser):
        data = parser.add_argument_group("data")
        data.add_argument("--dataset", required=True,
                          help="a CSV with a sequence or smiles column and a label column, or a folder of FASTA "
                               "files <LABEL>.<SPLIT>.fa (AMP Scanner layout: tr, eval, te)")
        data.add_argument("--label-column", help="label column of a CSV (default: 'label', or the only other column)")
        data.add_argument("--split", choices=("stratified", "scaffold"), default="stratified",
                          help="the test split when the dataset has none: stratified (default), or by Bemis-Murcko "
                               "scaffold (SMILES; also carves the validation part by scaffold)")
        add_test_size_flag(data, "share held out for testing when the dataset has no test split")

    @staticmethod
    def _split(data, split: str, size: float, seed: int, val_fraction: float):
        from dataclasses import replace

        from xmodal.data.sequences import scaffold_split, with_test_split

        if data.test is not None or split == "stratified":
            return with_test_split(data, size, seed)
        if data.alphabet != "smiles":
            raise DataError("--split scaffold needs SMILES records (a smiles column or --alphabet smiles)")
        fractions = (1 - size - val_fraction, val_fraction, size)
        if fractions[0] <= 0:
            raise DataError(f"--test-size {size:g} plus val_fraction {val_fraction:g} leave no training data")
        train, validation, test = scaffold_split(data.train.sequences, fractions, seed)
        records = data.train
        return replace(data, train=records.subset(train), validation=records.subset(validation),
                       test=records.subset(test), split="scaffold")

    def load_fit(self, args, settings):
        from xmodal.data.sequences import load_sequence_dataset

        path = existing_path(args.dataset)
        data = load_sequence_dataset(path, args.label_column, settings["alphabet"])
        data = self._split(data, args.split, args.test_size, args.seed, settings["val_fraction"])
        record = {"dataset": data.name, "path": absolute(args.dataset), "label_column": args.label_column,
                  "alphabet": data.alphabet, "split": args.split, "test_split": data.split, "test_size": args.test_size,
                  "seed": args.seed, "val_fraction": settings["val_fraction"]}
        validation = None if data.validation is None else (data.validation.sequences, data.validation.labels)
        summary = (f"{data.name}: {len(data.train)} train / {len(data.validation or [])} validation / "
                   f"{len(data.test)} test records ({data.alphabet}, test split {data.split})")
        extras = {"alphabet": data.alphabet, "test_split": data.split,
                  "dropped_missing_labels": data.dropped_missing_labels}
        return Split(data.name, data.train.sequences, data.train.labels, data.test.sequences, data.test.labels,
                     record, summary, validation, train_ids=list(data.train.ids), test_ids=list(data.test.ids),
                     validation_ids=None if data.validation is None else list(data.validation.ids), extras=extras)

    def estimator(self, args, overrides, split):
        from xmodal.estimators.sequence import SequenceClassifier

        overrides = {**overrides, "alphabet": split.record["alphabet"]}
        return SequenceClassifier(args.preset, **overrides, random_state=args.seed, verbose=not args.quiet)

    def fit(self, estimator, split):
        self._check_tokens(estimator.resolved_settings(), split)
        estimator.fit(split.X_train, split.y_train, split.validation, names=split.train_ids)

    @staticmethod
    def _check_tokens(settings: dict, split) -> None:
        """With unknown "error", a validation or test token the training records never hold
        is refused before the fit (the fitted vocabulary would refuse it after), naming the record."""
        from xmodal.data.tokenizers import make_tokenizer

        if settings["unknown"] != "error":
            return
        tokenizer = make_tokenizer(split.record["alphabet"], validate=settings["validate_smiles"])
        seen = {t for s, n in zip(split.X_train, split.train_ids) for t in tokenizer.tokenize(s, n)}
        parts = [("test", split.X_test, split.test_ids)]
        if split.validation is not None:
            parts.append(("validation", split.validation[0], split.validation_ids))
        for part, sequences, ids in parts:
            for i, sequence in enumerate(sequences):
                name = ids[i] if ids else f"{part} record {i}"
                unknown = sorted(set(tokenizer.tokenize(sequence, name)) - seen)
                if unknown:
                    raise DataError(f"{name}: unknown token {unknown[0]!r}: no training record holds it, so the "
                                    f"model has no embedding for it; clean the record, or map such tokens to <unk> "
                                    "with --unknown unk")

    def fit_extras(self, estimator, split, probabilities):
        return {**split.extras, "truncated_train": estimator.n_truncated_, "sparsity": estimator.sparsity_}

    def baseline_options(self, estimator):
        return {"alphabet": estimator.settings_["alphabet"]}

    def load_estimator(self, run, args):
        from xmodal.estimators.sequence import SequenceClassifier

        return SequenceClassifier.from_pretrained(run.folder)

    @staticmethod
    def alphabet(run, estimator) -> str:
        return estimator.settings_["alphabet"] or run.data.get("alphabet") or "protein"

    def load_run(self, run, estimator, args, split):
        from dataclasses import replace

        from xmodal.data.sequences import load_sequence_dataset

        alphabet = self.alphabet(run, estimator)
        path = existing_path(self.dataset_argument(run, args))
        label_column = self.recorded(run, args, "label_column", args.label_column)
        data = load_sequence_dataset(path, label_column)
        every = [s for part in (data.train, data.validation, data.test) if part is not None for s in part.sequences]
        check_alphabet(every, data.alphabet, alphabet, data.name)
        data = replace(data, alphabet=alphabet)
        data = self._split(data, run.data.get("split", "stratified"), run.data.get("test_size", DEFAULT_TEST_SIZE),
                           int(run.data.get("seed", run.metadata.get("seed") or 0)),
                           run.data.get("val_fraction", estimator.settings_["val_fraction"]))
        records = data.test if split == "test" else data.train
        check_labels(records.labels, estimator.classes_, data.name, run.dataset)
        return Records(data.name, list(records.ids), list(records.sequences), records.labels)

    def check_inputs(self, run, estimator, args, records):
        from xmodal.estimators.sequence import as_sequences

        records.X = as_sequences(records.X, records.name)
        alphabet = self.alphabet(run, estimator)
        if alphabet != "smiles":
            check_alphabet(records.X, alphabet, alphabet, records.name)
        estimator.encode(records.X, records.ids)  # unknown tokens / too long: refused here, naming the record
        return records
