"""Run folders are data from anywhere: hostile ones are refused with one line and change
nothing; saves of every older format version load and predict as they did.

tests/fixtures/runs holds real saves, kilobytes each: v1 and v2 written by xmodal 0.1 at the
commits that introduced those formats (series, GunPoint, 2 epochs), v3 by xmodal 0.2.0 before
format 4 (series, a 48-peptide AMP subset, 200 German credit rows), v4 and v6 by xmodal 0.2.0
before formats 5 and 7 (series, GunPoint); each with the inputs it was asked about and the
probabilities it gave then."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import safetensors.torch
import torch

from cli import main
from xmodal.errors import PersistenceError, XmodalError
from xmodal.estimators.sequence import SequenceClassifier
from xmodal.estimators.series import V2SClassifier
from xmodal.estimators.table import TableClassifier
from xmodal.persistence import (
    CONFIG_FILE,
    FORMAT_VERSION,
    PLAIN_FORMAT_VERSION,
    load_reprogrammer,
    weights_file_name,
)

FIXTURES = Path(__file__).parent / "fixtures" / "runs"


def _inputs(folder: Path):
    if (folder / "expected_inputs.npy").is_file():
        return np.load(folder / "expected_inputs.npy")
    if (folder / "expected_inputs.txt").is_file():
        return (folder / "expected_inputs.txt").read_text().split()
    return pd.read_csv(folder / "expected_inputs.csv")


OLD_RUNS = [("v1-series-waveform", V2SClassifier, 1), ("v2-series-tones", V2SClassifier, 2),
            ("v3-series-best", V2SClassifier, 3), ("v3-sequence", SequenceClassifier, 3),
            ("v3-table", TableClassifier, 3), ("v4-series-best", V2SClassifier, 4),
            ("v6-series-best", V2SClassifier, 6)]


@pytest.mark.parametrize(("name", "estimator", "version"), OLD_RUNS, ids=[r[0] for r in OLD_RUNS])
def test_every_older_format_loads_and_predicts_as_before(name, estimator, version, tmp_path):
    folder = FIXTURES / name
    assert json.loads((folder / CONFIG_FILE).read_text())["format_version"] == version < FORMAT_VERSION
    before = _snapshot(folder)
    model = estimator.from_pretrained(folder)
    probabilities = model.predict_proba(_inputs(folder))
    # Float32 kernels round differently from one CPU to another: MiniLM's six layers moved a
    # v3-sequence probability by 7.6e-6 on another machine. A wrongly loaded tensor moves them by far more.
    np.testing.assert_allclose(probabilities, np.load(folder / "expected_proba.npy"), rtol=0, atol=1e-4)
    assert _snapshot(folder) == before  # loading never rewrites an old save
    # and saved again, it is a current save that predicts the same
    again = estimator.from_pretrained(model.save_pretrained(tmp_path / "again"))
    assert json.loads((tmp_path / "again" / CONFIG_FILE).read_text())["format_version"] == PLAIN_FORMAT_VERSION
    np.testing.assert_array_equal(again.predict_proba(_inputs(folder)), probabilities)


# -- hostile run folders --------------------------------------------------------------------
@pytest.fixture(scope="module")
def current_run(tmp_path_factory):
    """A format-4 save of a real series run (the v3 fixture, saved again)."""
    return V2SClassifier.from_pretrained(FIXTURES / "v3-series-best").save_pretrained(
        tmp_path_factory.mktemp("runs") / "current")


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _hostile(current_run, tmp_path, change_document=None, change_state=None) -> Path:
    """A copy of the run with its JSON and/or tensors changed; the weights file is renamed and
    re-hashed as a save would, so what is tested is the change, not a hash mismatch."""
    folder = tmp_path / "hostile"
    shutil.copytree(current_run, folder)
    document = json.loads((folder / CONFIG_FILE).read_text())
    if change_state is not None:
        weights = folder / document["weights_file"]
        state = safetensors.torch.load_file(str(weights))
        change_state(state)
        weights.unlink()
        data = safetensors.torch.save(state)
        digest = hashlib.sha256(data).hexdigest()
        (folder / weights_file_name(digest)).write_bytes(data)
        document.update(weights_sha256=digest, weights_file=weights_file_name(digest))
    if change_document is not None:
        change_document(document)
    (folder / CONFIG_FILE).write_text(json.dumps(document))
    return folder


def _set(path: str, value):
    def change(document):
        *parents, last = path.split(".")
        target = document
        for key in parents:
            target = target[key]
        target[last] = value
    return change


HOSTILE_DOCUMENTS = {
    "source path elsewhere": (_set("source.name", "hf:/tmp/not-a-registered-model"), "not a registered source"),
    "source hub id": (_set("source.name", "hf:someone/their-model"), "--trust-source"),
    "extra top-level key": (_set("run_this", "rm -rf /"), "unknown key"),
    "extra bridge setting": (_set("bridge.config.exec", "x"), "unknown SeriesToTonesConfig setting"),
    "wrong-typed bridge setting": (_set("bridge.config.num_samples", "16000"), "'num_samples' should be"),
    "infinite bridge setting": (_set("bridge.config.pitch_low", float("inf")), "'pitch_low' should be"),
    "wrong-typed classes": (_set("classes", {"a": 1}), "'classes'"),
    "empty classes": (_set("classes", []), "'classes'"),
    "class list of objects": (_set("classes", [[1], [2]]), "'classes'"),
    "weights file elsewhere": (_set("weights_file", "../../etc/passwd"), "not a weights file name"),
    "sha256 not a hash": (_set("weights_sha256", "abc"), "not a sha256"),
    "source without sha": (_set("source", {"name": "bc-resnet-gsc35"}), "'source' must hold"),
    "format version as text": (_set("format_version", "4"), "format_version"),
    "format version newer": (_set("format_version", FORMAT_VERSION + 7), f"reads up to {FORMAT_VERSION}"),
    "reads unknown": (_set("reads", "__class__"), "reads must be one of"),
    "bridge kind unknown": (_set("bridge.kind", "os.system"), "unknown to this xmodal"),
    "output map damaged": (_set("output_map.kind", 17), "damaged"),
    "extra output map setting": (_set("output_map.exec", "x"), "unknown output map setting"),
    "output map of no source classes": (_set("output_map.num_source", False), "positive whole numbers"),
    "metadata not an object": (_set("metadata", [1, 2]), "'metadata'"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_DOCUMENTS))
def test_hostile_json_is_one_line_and_changes_nothing(case, current_run, tmp_path):
    change, message = HOSTILE_DOCUMENTS[case]
    folder = _hostile(current_run, tmp_path, change_document=change)
    before = _snapshot(folder)
    with pytest.raises(XmodalError, match=message) as caught:
        V2SClassifier.from_pretrained(folder)
    assert "\n" not in str(caught.value)
    assert _snapshot(folder) == before


def _drop(state):
    state.pop(sorted(state)[0])


def _add(state):
    state["bridge.extra"] = torch.zeros(3)


def _reshape(state):
    name = sorted(state)[0]
    state[name] = torch.zeros(state[name].numel() + 1)


@pytest.mark.parametrize(("change", "message"), [(_drop, "missing tensors"), (_add, "unexpected tensors"),
                                                 (_reshape, "needs")], ids=["missing", "extra", "reshaped"])
def test_safetensors_that_do_not_match_the_json_are_refused(change, message, current_run, tmp_path):
    folder = _hostile(current_run, tmp_path, change_state=change)
    before = _snapshot(folder)
    with pytest.raises(PersistenceError, match=message) as caught:
        load_reprogrammer(folder)
    assert "\n" not in str(caught.value) and _snapshot(folder) == before


def test_a_trusted_source_location_must_exist_and_hash_as_recorded(current_run, tmp_path):
    folder = _hostile(current_run, tmp_path, change_document=_set("source.name", f"hf:{tmp_path / 'gone'}"))
    with pytest.raises(PersistenceError, match="--trust-source"):
        V2SClassifier.from_pretrained(folder)
    with pytest.raises(XmodalError, match="does not exist"):  # trusted: now it is looked at, and is not there
        V2SClassifier.from_pretrained(folder, trust_source=True)


def test_a_sequence_run_naming_a_model_folder_is_not_loaded_without_trust(tmp_path):
    folder = tmp_path / "sequence"
    shutil.copytree(FIXTURES / "v3-sequence", folder)
    document = json.loads((folder / CONFIG_FILE).read_text())
    document["source"]["name"] = str(tmp_path / "someone-elses-model")
    (folder / CONFIG_FILE).write_text(json.dumps(document))
    with pytest.raises(PersistenceError, match="not a registered source"):
        SequenceClassifier.from_pretrained(folder)


def test_the_cli_refuses_an_untrusted_run_in_one_line(current_run, tmp_path, capsys):
    folder = _hostile(current_run, tmp_path, change_document=_set("source.name", "hf:/tmp/elsewhere"))
    series = tmp_path / "series.npy"
    np.save(series, np.load(FIXTURES / "v3-series-best" / "expected_inputs.npy")[:, 0, :])
    assert main(["predict", str(folder), "--input", str(series),
                 "--csv", str(tmp_path / "out.csv")]) == 1
    error = capsys.readouterr().err.strip()
    assert "--trust-source" in error and len(error.splitlines()) == 1
    assert not (tmp_path / "out.csv").exists()


def test_the_source_weights_must_be_the_recorded_ones(current_run, tmp_path):
    folder = _hostile(current_run, tmp_path, change_document=_set("source.weights_sha256", "0" * 64))
    with pytest.raises(PersistenceError, match="exact source it was trained on"):
        V2SClassifier.from_pretrained(folder)


HOSTILE_METADATA = {
    "settings name another source": (_set("metadata.settings.source", "hf:/tmp/evil-model"), None),
    "fit record a string": (_set("metadata.fit", "x"), "metadata 'fit' should be"),
    "fit record empty of fields": (_set("metadata.fit", {"bogus": 1}), "fit record are damaged"),
    "settings a list": (_set("metadata.settings", [1]), "metadata 'settings' should be"),
    "seed a string": (_set("metadata.seed", "abc"), "metadata 'seed' should be"),
    "setting a nested object": (_set("metadata.settings.lr", {"a": 1}), "should be a JSON scalar"),
    "sha256 a number": (_set("source.weights_sha256", 10 ** 63), "'source' must hold"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_METADATA))
def test_hostile_metadata_is_refused_or_ignored_never_obeyed(case, current_run, tmp_path, monkeypatch):
    change, message = HOSTILE_METADATA[case]
    folder = _hostile(current_run, tmp_path, change_document=change)
    before = _snapshot(folder)
    if message is None:  # the settings' source is overruled by the save's checked identity
        model = V2SClassifier.from_pretrained(folder)
        assert model.settings_["source"] == "bc-resnet-gsc35"
    else:
        with pytest.raises(XmodalError, match=message) as caught:
            V2SClassifier.from_pretrained(folder)
        assert "\n" not in str(caught.value)
    assert _snapshot(folder) == before


def test_absurdly_nested_json_is_one_line(current_run, tmp_path):
    folder = _hostile(current_run, tmp_path)
    text = (folder / CONFIG_FILE).read_text()
    (folder / CONFIG_FILE).write_text(text[:-1] + ', "metadata": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(PersistenceError, match="corrupt"):
        V2SClassifier.from_pretrained(folder)
