"""Fuzzing run folders: a saved run with its JSON or its tensors mutated at random either
loads or is refused with one XmodalError line naming the file; never another exception."""

import copy
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters_modal import load_source
from xmodal.cli.runs import read_run
from xmodal.errors import XmodalError
from xmodal.estimators.series import V2SClassifier
from xmodal.persistence import CONFIG_FILE, load_reprogrammer, weights_file_name

FIXTURE = Path(__file__).parent / "fixtures" / "runs" / "v3-series-best"

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = V2SClassifier.from_pretrained(FIXTURE).save_pretrained(tmp_path_factory.mktemp("fuzz") / "run")
    document = json.loads((folder / CONFIG_FILE).read_text())
    return folder, document, load_source(document["source"]["name"])


def _paths(value, prefix=()):
    """Every key path of a JSON document (lists by index)."""
    yield prefix
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from _paths(child, (*prefix, key))


def _replace(document, path, value, delete):
    document = copy.deepcopy(document)
    if not path:
        return value
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return document


def _attempt(folder: Path, source) -> None:
    """Load the run as `predict` does (its document, then the model); refusals are XmodalError."""
    try:
        read_run(folder)
        load_reprogrammer(folder, source=source)
    except XmodalError as exc:
        assert "\n" not in str(exc) and str(folder) in str(exc)


def _copy(folder: Path) -> Path:
    target = Path(tempfile.mkdtemp(prefix="xmodal-fuzz-")) / "run"
    shutil.copytree(folder, target)
    return target


def _document_mutations(document):
    paths = list(_paths(document))
    return st.tuples(st.sampled_from(paths), JSON_VALUES, st.booleans())


def _check_document(run, mutation):
    folder, document, source = run
    path, value, delete = mutation
    target = _copy(folder)
    try:
        mutated = _replace(document, path, value, delete and bool(path))
        (target / CONFIG_FILE).write_text(json.dumps(mutated))
        _attempt(target, source)
    finally:
        shutil.rmtree(target.parent)


def _check_tensors(run, cut, flips):
    """The weights file damaged, and the JSON re-pointed at it with its true hash, so the
    damage reaches safetensors' parser and the shape checks instead of the hash check."""
    folder, document, source = run
    target = _copy(folder)
    try:
        data = bytearray((target / document["weights_file"]).read_bytes())[:cut]
        for position, byte in flips:
            if data:
                data[position % len(data)] = byte
        digest = hashlib.sha256(data).hexdigest()
        (target / weights_file_name(digest)).write_bytes(bytes(data))
        (target / CONFIG_FILE).write_text(json.dumps({**document, "weights_sha256": digest,
                                                      "weights_file": weights_file_name(digest)}))
        _attempt(target, source)
    finally:
        shutil.rmtree(target.parent)


TENSOR_DAMAGE = (st.integers(0, 70_000), st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 255)), max_size=6))
def fuzz(examples: int):
    # reproducible in CI (derandomize), no time limit per example (a save loads in milliseconds
    # to tens of them on a busy machine)
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def test_mutated_json_loads_or_is_refused_in_one_line(run):
    @fuzz(150)
    @given(_document_mutations(run[1]))
    def check(mutation):
        _check_document(run, mutation)

    check()


def test_damaged_tensors_load_or_are_refused_in_one_line(run):
    @fuzz(100)
    @given(*TENSOR_DAMAGE)
    def check(cut, flips):
        _check_tensors(run, cut, flips)

    check()


@pytest.mark.slow  # 10 000 examples each: a few minutes
def test_ten_thousand_run_folders_each(run):
    @fuzz(10_000)
    @given(_document_mutations(run[1]))
    def documents(mutation):
        _check_document(run, mutation)

    @fuzz(10_000)
    @given(*TENSOR_DAMAGE)
    def tensors(cut, flips):
        _check_tensors(run, cut, flips)

    documents()
    tensors()
