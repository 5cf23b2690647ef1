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
from xmodal.data.labels import SHOWN, check_class_labels
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


def _record_names(part) -> list[str]:
    return part.ids or [f"{part.name} record {i + 1}" for i in range(len(part.X))]


def _tokenized(tokenizer, part) -> list[list[str]]:
    """The part's records as tokens; a record the tokeniser refuses names its split too."""
    try:
        return [tokenizer.tokenize(sequence, name) for sequence, name in zip(part.X, _record_names(part))]
    except DataError as exc:
        raise DataError(f"{part.where}: {exc}") from None


def _refuse_unknown(part, token_lists, vocabulary: frozenset, tokenizer) -> None:
    names = _record_names(part)
    holders: dict[str, list[str]] = {}  # unknown token -> the records that hold it
    for name, tokens in zip(names, token_lists):
        for token in dict.fromkeys(t for t in tokens if t not in vocabulary):
            holders.setdefault(token, []).append(name)
    if not holders:
        return
    records = len({name for held in holders.values() for name in held})
    ranked = sorted(holders.items(), key=lambda item: -len(item[1]))
    listed = ", ".join(f"{token!r} in {len(held)} (first {held[0]})" for token, held in ranked[:SHOWN])
    more = f" and {len(ranked) - SHOWN} more tokens" if len(ranked) > SHOWN else ""
    why = ("no training record holds them" if tokenizer.kind == "smiles"
           else f"the {tokenizer.kind} alphabet is {''.join(tokenizer.alphabet)}")
    raise DataError(f"{part.where}: unknown tokens in {records} of {len(names)} records: {listed}{more}; {why}, so "
                    "the model has no embedding for them: clean or drop those records, or map such tokens to <unk> "
                    "with --unknown unk")


def _max_tokens(settings: dict) -> int:
    """Tokens per record the source takes (its positions less [CLS], [SEP] and a prompt)."""
    from adapters_modal.text import load_text_source
    from xmodal.bridges.tokens_to_embeddings import reserved_positions

    positions = load_text_source(settings["source"]).input_spec.max_positions
    return positions - reserved_positions(settings["mode"], settings["prompt_length"])


def _refuse_long(part, token_lists, limit: int) -> None:
    long = [(name, len(tokens)) for name, tokens in zip(_record_names(part), token_lists) if len(tokens) > limit]
    if long:
        listed = ", ".join(f"{name} ({count} tokens)" for name, count in long[:SHOWN])
        raise DataError(f"{part.where}: {len(long)} of {len(token_lists)} records are longer than the source takes "
                        f"({limit} tokens): {listed}; shorten or drop them, or cut them with --truncation keep_start "
                        "or keep_end")


def _files(ids) -> str:
    """The files records come from: record names are "<file>:<record>"."""
    return ", ".join(sorted({str(name).split(":", 1)[0] for name in ids}))


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
        check_class_labels(data.train.labels, str(path))  # before a stratified split refuses them less clearly
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
                     validation_ids=None if data.validation is None else list(data.validation.ids), extras=extras,
                     sources={part: _files(records.ids) for part, records in
                              (("train", data.train), ("validation", data.validation), ("test", data.test)) if records})

    def estimator(self, args, overrides, split):
        from xmodal.estimators.sequence import SequenceClassifier

        overrides = {**overrides, "alphabet": split.record["alphabet"]}
        return SequenceClassifier(args.preset, **overrides, random_state=args.seed, verbose=not args.quiet)

    def fit(self, estimator, split):
        estimator.fit(split.X_train, split.y_train, split.validation, names=split.train_ids)

    def check_values(self, split, parts, settings):
        """Every record of every part tokenised now, so that an unknown token (with unknown
        "error") or a record longer than the source takes (with truncation "error") is refused
        before the fit, naming the split and its records, not when the test split is scored."""
        from xmodal.data.tokenizers import Vocabulary, make_tokenizer

        tokenizer = make_tokenizer(split.record["alphabet"], validate=settings["validate_smiles"])
        tokens = [_tokenized(tokenizer, part) for part in parts]
        if settings["unknown"] == "error":
            vocabulary = frozenset(Vocabulary.build(tokenizer, tokens[0]).tokens)
            for part, lists in zip(parts, tokens):
                _refuse_unknown(part, lists, vocabulary, tokenizer)
        if settings["truncation"] == "error":
            limit = _max_tokens(settings)
            for part, lists in zip(parts, tokens):
                _refuse_long(part, lists, limit)

    def fit_extras(self, estimator, split, probabilities):
        return {**split.extras, "truncated_train": estimator.n_truncated_, "sparsity": estimator.sparsity_}

    def baseline_options(self, split):
        return {"alphabet": split.record["alphabet"]}

    def load_estimator(self, run, args):
        from xmodal.estimators.sequence import SequenceClassifier

        return SequenceClassifier.from_pretrained(run.folder, trust_source=args.trust_source, device=args.device)

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
