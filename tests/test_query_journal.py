"""The query journal: append-only, torn tails dropped, other servers refused, the first
(.npz) format converted; checked byte for byte against what was recorded."""

import io

import numpy as np
import pytest

from xmodal.errors import XmodalError
from xmodal.query_journal import QueryJournal

SERVER = ("http://127.0.0.1:8000", "ab" * 32)


def _answers(n, k=5, seed=0):
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(n, 16)).astype(np.float32)
    return [QueryJournal.key(x) for x in inputs], rng.dirichlet(np.ones(k), size=n)


def test_recorded_answers_come_back_exactly_and_each_batch_only_appends(tmp_path):
    path = tmp_path / "q.journal"
    journal = QueryJournal(path, SERVER, 5)
    keys, probabilities = _answers(30)
    journal.record(keys[:10], probabilities[:10])
    size = path.stat().st_size
    journal.record(keys[10:], probabilities[10:])
    assert path.stat().st_size - size == 20 * journal.record_bytes  # the new answers, nothing rewritten
    again = QueryJournal(path, SERVER, 5)
    assert list(again.answers) == keys
    assert all(np.array_equal(again.answers[k], p) for k, p in zip(keys, probabilities))


def test_a_torn_last_record_is_dropped_and_later_answers_line_up(tmp_path):
    path = tmp_path / "q.journal"
    journal = QueryJournal(path, SERVER, 5)
    keys, probabilities = _answers(6)
    journal.record(keys[:4], probabilities[:4])
    with open(path, "ab") as handle:  # a kill in the middle of appending the fifth answer
        handle.write(b"\x01" * (journal.record_bytes // 2))
    resumed = QueryJournal(path, SERVER, 5)
    assert list(resumed.answers) == keys[:4]
    resumed.record(keys[4:], probabilities[4:])
    assert list(QueryJournal(path, SERVER, 5).answers) == keys


def test_another_servers_journal_or_a_stranger_file_is_refused_unchanged(tmp_path):
    path = tmp_path / "q.journal"
    QueryJournal(path, SERVER, 5).record(*_answers(2))
    before = path.read_bytes()
    with pytest.raises(XmodalError, match="holds answers of http://127.0.0.1:8000 .*give another --query-journal"):
        QueryJournal(path, ("http://127.0.0.1:9000", SERVER[1]), 5)
    with pytest.raises(XmodalError, match="3 classes per answer, the server gives 5"):
        QueryJournal(_with_classes(path, 3), SERVER, 5)
    assert path.read_bytes() == before
    stranger = tmp_path / "notes.txt"
    stranger.write_text("my notes\n")
    with pytest.raises(XmodalError, match="is not a query journal .*give another --query-journal or remove it"):
        QueryJournal(stranger, SERVER, 5)
    assert stranger.read_text() == "my notes\n"


def _with_classes(path, classes):
    """A copy of the journal at `path` whose header claims `classes` classes."""
    copy = path.with_suffix(".other")
    header, body = path.read_bytes().split(b"\n", 1)
    copy.write_bytes(header.replace(b'"classes": 5', f'"classes": {classes}'.encode()) + b"\n" + body)
    return copy


def test_a_journal_of_the_first_format_is_converted_with_its_answers(tmp_path):
    path = tmp_path / "queries.npz"
    keys, probabilities = _answers(7)
    buffer = io.BytesIO()
    np.savez(buffer, server=np.array(SERVER), keys=np.array(keys), probabilities=probabilities)
    path.write_bytes(buffer.getvalue())
    journal = QueryJournal(path, SERVER, 5)
    assert list(journal.answers) == keys and np.array_equal(journal.answers[keys[3]], probabilities[3])
    assert path.read_bytes().startswith(b'{"xmodal_query_journal": 1')
    assert list(QueryJournal(path, SERVER, 5).answers) == keys
