"""Iterative (ILM-VP) and Bayesian-guided (BLM, BLM+) label mappings, with the
real BC-ResNet on real UCR data."""

import json

import numpy as np
import pytest
import torch

from cli import main
from tests.conftest import UCR
from xmodal.bridges.waveform import SeriesToWaveform
from xmodal.errors import XmodalError
from xmodal.estimators.series import V2SClassifier
from xmodal.maps import BayesianMapping, build_output_map
from xmodal.maps.bayesian import bayesian_counts, bayesian_matrix
from xmodal.reprogrammer import Reprogrammer
from xmodal.training.config import TrainConfig
from xmodal.training.loop import train


def _gunpoint_subset(gunpoint, n=30):
    x = torch.tensor(gunpoint.x_train[:n], dtype=torch.float32)
    return x, torch.tensor(np.searchsorted(gunpoint.classes, gunpoint.y_train[:n]))


def test_ilm_reassigns_the_labels_during_training(source, gunpoint):
    x, y = _gunpoint_subset(gunpoint)
    model = Reprogrammer(SeriesToWaveform(seed=0), source, build_output_map("ilm", 35, 2, remap_every=2))
    result = train(model, x, y, TrainConfig(epochs=5, lr=0.1, val_fraction=0, progress=False))
    remaps = [record["epoch"] for record in result.history if record.get("remapped")]
    assert remaps == [3, 5]  # every 2 epochs, through the theta trained so far
    assert any(record["map_changed"] for record in result.history if record.get("remapped"))
    owned = model.output_map.assignment
    assert owned.shape == (2, 17) and len(set(owned.flatten().tolist())) == 34


def test_frequency_map_is_never_redone(source, gunpoint):
    x, y = _gunpoint_subset(gunpoint, 16)
    model = Reprogrammer(SeriesToWaveform(seed=0), source, build_output_map("frequency", 35, 2))
    result = train(model, x, y, TrainConfig(epochs=3, val_fraction=0, progress=False))
    assert not any("remapped" in record for record in result.history)


@pytest.mark.parametrize("kind, top_k", [("blm", 1), ("blm+", 3)])
def test_blm_matrix_is_smoothed_and_normalised_as_documented(source, gunpoint, kind, top_k):
    x, y = _gunpoint_subset(gunpoint)
    with torch.no_grad():
        logits = source.logits(SeriesToWaveform(seed=0)(x))
    counts = bayesian_counts(logits, y, 2, top_k)
    expected_mass = len(y) if top_k == 1 else logits.softmax(1).topk(top_k, dim=1).values.sum().item()
    assert counts.shape == (35, 2) and counts.sum().item() == pytest.approx(expected_mass, rel=1e-5)
    conditional = (counts + 1.0) / (counts.sum(1, keepdim=True) + 2.0)
    assert torch.allclose(conditional.sum(dim=1), torch.ones(35, dtype=conditional.dtype))  # rows: P(t | s)
    mapping = build_output_map(kind, 35, 2, laplace=1.0)
    assert mapping.prepare(logits, y) is True  # the uniform start was replaced
    omega = mapping.omega
    assert torch.allclose(omega.sum(dim=0), torch.ones(2))  # columns sum to 1
    assert (omega > 0).all()  # Laplace smoothing: no source label is ever cut off
    assert torch.allclose(omega.double(), conditional / conditional.sum(0, keepdim=True))
    unseen = counts.sum(1) == 0
    assert unseen.any() and torch.allclose(omega[unseen], omega[unseen][:1].expand_as(omega[unseen]))


def test_bayesian_matrix_by_hand():
    counts = torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    # P(t|s) = (d + 1) / (n_s + 2): [[3/4, 1/4], [1/2, 1/2], [1/2, 1/2]]; columns sum to 7/4 and 5/4
    expected = torch.tensor([[3 / 7, 1 / 5], [2 / 7, 2 / 5], [2 / 7, 2 / 5]], dtype=torch.float64)
    assert torch.allclose(bayesian_matrix(counts, 1.0), expected)


def test_blm_scores_are_source_probabilities_times_omega(source, gunpoint):
    x, y = _gunpoint_subset(gunpoint)
    with torch.no_grad():
        logits = source.logits(SeriesToWaveform(seed=0)(x))
    mapping = BayesianMapping(35, 2, laplace=0.5)
    mapping.prepare(logits, y)
    assert torch.allclose(mapping(logits).exp(), logits.softmax(1) @ mapping.omega, rtol=1e-5)


def test_iterative_maps_survive_save_and_load(gunpoint, tmp_path):
    x = gunpoint.x_train[:24, None, :]
    y = gunpoint.y_train[:24]
    for mapping in ("ilm", "blm", "blm+"):
        fitted = V2SClassifier("v2s", mapping=mapping, remap_every=1, laplace=0.5, epochs=3, patience=3,
                               lr=0.1, random_state=0).fit(x, y)
        folder = fitted.save_pretrained(tmp_path / mapping)
        settings = json.loads((folder / "reprogrammer.json").read_text())["output_map"]
        assert settings["kind"] == mapping and settings["remap_every"] == 1
        loaded = V2SClassifier.from_pretrained(folder)
        assert loaded.get_params()["mapping"] == mapping
        for name, value in fitted.reprogrammer_.output_map.state_dict().items():
            assert torch.equal(loaded.reprogrammer_.output_map.state_dict()[name], value)
        x_test = gunpoint.x_test[:, None, :]
        assert np.array_equal(fitted.predict_proba(x_test), loaded.predict_proba(x_test))


def test_blm_plus_from_the_command_line(tmp_path):
    out = tmp_path / "coffee"
    assert main(["fit", "series", "--dataset", "Coffee", "--data-dir", str(UCR), "--preset", "v2s", "--out", str(out),
                 "--epochs", "2", "--mapping", "blm+", "--remap-every", "2", "--laplace", "0.1", "--quiet"]) == 0
    settings = json.loads((out / "reprogrammer.json").read_text())["output_map"]
    assert settings == {"kind": "blm+", "num_source": 35, "num_target": 2, "laplace": 0.1, "top_k": 3,
                        "remap_every": 2}


def test_bad_variant_settings_are_refused():
    with pytest.raises(XmodalError, match="remap_every"):
        build_output_map("ilm", 35, 2, remap_every=0)
    with pytest.raises(XmodalError, match="laplace"):
        build_output_map("blm", 35, 2, laplace=0.0)
    with pytest.raises(XmodalError, match="top_k"):
        BayesianMapping(35, 2, top_k=36)
    assert build_output_map("blm", 35, 40).omega.shape == (35, 40)  # a dense matrix needs no K_T <= K_S
