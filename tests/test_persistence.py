"""Save/load as JSON + safetensors: round trip, source identity, corruption."""

import json
import shutil

import pytest
import safetensors.torch
import torch

from adapters_modal.audio import BCResNetSource
from tests.conftest import BC_RESNET_FILE
from xmodal.bridges.waveform import SeriesToWaveform
from xmodal.errors import PersistenceError
from xmodal.maps import build_output_map
from xmodal.persistence import (
    CONFIG_FILE,
    FORMAT_VERSION,
    PLAIN_FORMAT_VERSION,
    load_reprogrammer,
    save_reprogrammer,
    weights_file,
)
from xmodal.reprogrammer import Reprogrammer
from xmodal.training.config import TrainConfig
from xmodal.training.loop import train


@pytest.fixture(scope="module")
def trained(source, gunpoint, tmp_path_factory):
    x = torch.tensor(gunpoint.x_train, dtype=torch.float32)
    y = torch.tensor(gunpoint.y_train - 1)
    model = Reprogrammer(SeriesToWaveform(target_duration=0.5), source,
                         build_output_map("linear", 35, 2), classes=gunpoint.classes)
    train(model, x[:16], y[:16], TrainConfig(epochs=2, progress=False, val_fraction=0))
    folder = save_reprogrammer(model, tmp_path_factory.mktemp("run") / "saved", {"note": "test"})
    return model, folder, torch.tensor(gunpoint.x_test, dtype=torch.float32)


def test_round_trip_gives_identical_predictions(trained):
    model, folder, x_test = trained
    loaded, document = load_reprogrammer(folder)
    assert torch.equal(model.predict_proba(x_test), loaded.predict_proba(x_test))
    assert loaded.classes == [1, 2] and document["metadata"] == {"note": "test"}
    assert loaded.bridge.config == model.bridge.config


def test_save_is_kilobytes_and_holds_no_source_weights(trained):
    _, folder, _ = trained
    assert weights_file(folder).stat().st_size < 100_000
    keys = safetensors.torch.load_file(str(weights_file(folder))).keys()
    assert keys and not any(k.startswith("source.") for k in keys)
    document = json.loads((folder / CONFIG_FILE).read_text())
    assert document["source"]["name"] == "bc-resnet-gsc35" and len(document["source"]["weights_sha256"]) == 64


def test_a_different_source_is_refused(trained, tmp_path):
    _, folder, _ = trained
    state = torch.load(BC_RESNET_FILE, map_location="cpu", weights_only=True)
    state["head_conv.bias"] += 0.01  # a different checkpoint of the same architecture
    other_file = tmp_path / "other.pt"
    torch.save(state, other_file)
    other = BCResNetSource(other_file).freeze()
    with pytest.raises(PersistenceError, match="exact source it was trained on"):
        load_reprogrammer(folder, source=other)


def _copy(folder, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(folder, target)
    return target


def test_corrupt_json_is_named(trained, tmp_path):
    copy = _copy(trained[1], tmp_path)
    (copy / CONFIG_FILE).write_text("{ not json")
    with pytest.raises(PersistenceError, match="corrupt"):
        load_reprogrammer(copy)


def test_truncated_weights_are_detected(trained, tmp_path):
    copy = _copy(trained[1], tmp_path)
    data = weights_file(copy).read_bytes()
    weights_file(copy).write_bytes(data[: len(data) // 2])
    with pytest.raises(PersistenceError, match="corrupt or was interrupted"):
        load_reprogrammer(copy)


def test_missing_folder_and_missing_weights(trained, tmp_path):
    with pytest.raises(PersistenceError, match="not a saved reprogrammer"):
        load_reprogrammer(tmp_path / "nothing")
    copy = _copy(trained[1], tmp_path)
    weights_file(copy).unlink()
    with pytest.raises(PersistenceError, match="incomplete"):
        load_reprogrammer(copy)


def test_failed_save_leaves_the_previous_save_intact(trained, tmp_path, monkeypatch):
    model, folder, _ = trained
    copy = _copy(folder, tmp_path)
    before = {p.name: p.read_bytes() for p in copy.iterdir()}

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save", broken)
    with pytest.raises(OSError):
        save_reprogrammer(model, copy)
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == before
    load_reprogrammer(copy)


def test_unserialisable_metadata_leaves_the_previous_save_intact(trained, tmp_path):
    model, folder, _ = trained
    copy = _copy(folder, tmp_path)
    before = {p.name: p.read_bytes() for p in copy.iterdir()}
    with pytest.raises(PersistenceError, match="JSON"):
        save_reprogrammer(model, copy, {"path": object()})
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == before


def test_malformed_document_is_named(trained, tmp_path):
    copy = _copy(trained[1], tmp_path)
    document = json.loads((copy / CONFIG_FILE).read_text())
    document["bridge"] = "oops"
    (copy / CONFIG_FILE).write_text(json.dumps(document))
    with pytest.raises(PersistenceError, match="'bridge' is missing or not a JSON dict"):
        load_reprogrammer(copy)


def _rewrite(folder, tmp_path, change):
    copy = _copy(folder, tmp_path)
    document = json.loads((copy / CONFIG_FILE).read_text())
    change(document)
    (copy / CONFIG_FILE).write_text(json.dumps(document, indent=2))
    return copy


def test_a_newer_format_is_refused_naming_both_versions(trained, tmp_path):
    copy = _rewrite(trained[1], tmp_path, lambda d: d.update(format_version=FORMAT_VERSION + 1, xmodal_version="9.0"))
    with pytest.raises(PersistenceError, match=rf"format version {FORMAT_VERSION + 1} \(written by xmodal 9.0\).*"
                                              rf"reads up to {FORMAT_VERSION}; upgrade xmodal"):
        load_reprogrammer(copy)


def test_a_map_size_other_than_the_saved_tensors_is_refused_before_the_map_is_built(trained, tmp_path):
    """A head of num_source inputs allocates num_source x num_target weights: a damaged num_source of 2**31 - 1
    took 24 GB before the weights file's shapes could refuse it (found by tests/test_fuzz_runs.py)."""
    copy = _rewrite(trained[1], tmp_path, lambda d: d["output_map"].update(num_source=2**31 - 1))
    with pytest.raises(PersistenceError, match=r"map settings are damaged \(output_map.linear.weight would be "
                                               r"\(2, 2147483647\) but the weights file holds \(2, 35\)\)"):
        load_reprogrammer(copy)


def test_a_label_mapping_of_other_than_the_sources_classes_is_refused(source, tmp_path):
    """A label mapping's num_source sizes only its random start (a permutation of the source classes), which no
    saved tensor shows: it must be the source's class count."""
    model = Reprogrammer(SeriesToWaveform(target_duration=0.5), source, build_output_map("random", 35, 2, 3),
                         classes=[1, 2])
    folder = save_reprogrammer(model, tmp_path / "saved")
    assert torch.equal(load_reprogrammer(folder)[0].output_map.assignment, model.output_map.assignment)
    copy = _rewrite(folder, tmp_path, lambda d: d["output_map"].update(num_source=2**31 - 1))
    with pytest.raises(PersistenceError, match=r"a label mapping of 2147483647 source classes for .*'s 35\)"):
        load_reprogrammer(copy)


def test_saves_name_the_bridge_kind_and_the_current_format(trained):
    document = json.loads((trained[1] / CONFIG_FILE).read_text())
    # a save names the lowest version that reads it right: 7 only for a fused run (tests/test_fused_sources.py),
    # 8 only for a sequence trained view (tests/test_sequence_estimator.py), 10 only for a recurrence plot
    # (tests/test_fused_sources.py), 11 only for a line chart (tests/test_series_image_bridge.py)
    assert document["format_version"] == PLAIN_FORMAT_VERSION == 6 and FORMAT_VERSION == 11
    assert document["bridge"]["kind"] == "series_to_waveform" and "encoding" not in document["bridge"]["config"]


def test_a_bridge_size_other_than_the_sources_is_refused_before_the_bridge_is_built(trained, tmp_path):
    """Building a bridge allocates theta at its saved size: a damaged num_samples of 2**40 must be refused
    against the source's input spec first, not take the memory (found by tests/test_fuzz_runs.py)."""
    copy = _rewrite(trained[1], tmp_path, lambda d: d["bridge"]["config"].update(num_samples=2**40))
    with pytest.raises(PersistenceError, match=r"bridge or map settings are damaged \(the bridge's num_samples "
                                               r"1099511627776 is not .*'s 16000\); re-run the fit"):
        load_reprogrammer(copy)
