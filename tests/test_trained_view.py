"""The trained view (trained_view, the trained-view preset): the filtered tones bridge, the probe's
own penalty on the head, and the fit that reads the trained bridge beside its start."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.conftest import UCR
from xmodal.bridges.filtered_tones import FilteredTones, FilteredTonesConfig
from xmodal.bridges.tones import SeriesToTones, SeriesToTonesConfig
from xmodal.cli.fit import _verdict
from xmodal.data.ucr import load_ucr
from xmodal.errors import DataError, XmodalError
from xmodal.estimators.series import V2SClassifier
from xmodal.maps import LinearHead
from xmodal.risk_bound import reprogrammed_representations
from xmodal.training.probe import fit_probe

SHORT = {"epochs": 2, "patience": 2, "random_state": 0}


def test_the_filtered_bridge_starts_as_the_tones_and_its_start_view_stays(gunpoint):
    x = torch.tensor(gunpoint.x_train[:8], dtype=torch.float32)
    tones = SeriesToTones(SeriesToTonesConfig(), seed=3)
    filtered = FilteredTones(FilteredTonesConfig(beside_start=True), seed=3)
    assert filtered.views == 2 and filtered.probe_views == 1
    assert torch.equal(filtered(x, view=1), tones(x)) and torch.equal(filtered(x, view=0), tones(x))
    with torch.no_grad():  # training moves the filter and delta; the start's view must not move
        filtered.filter.outer.weight.normal_(0, 0.1)
        filtered.delta.add_(0.1)
    assert not torch.allclose(filtered(x, view=1), tones(x), atol=1e-3)
    assert torch.equal(filtered(x, view=0), tones(x))


def test_an_even_filter_width_is_refused_in_one_line():
    with pytest.raises(DataError, match="odd width"):
        FilteredTonesConfig(filter_width=8)


@pytest.mark.parametrize("name", ["GunPoint", "CBF"])  # a binary probe (one weight vector) and a multinomial one
def test_with_the_probes_penalty_the_probe_is_where_training_rests(name):
    """The mean log-loss plus LinearHead.penalty is scikit-learn's objective: its gradient at the probe is ~0."""
    data = load_ucr(name, UCR)
    features = torch.tensor(data.x_train, dtype=torch.float32)
    y = torch.as_tensor(np.unique(data.y_train, return_inverse=True)[1])
    probe = fit_probe(features, y, seed=0, c=0.1)
    classes = int(y.max()) + 1

    def gradient(penalty: float) -> float:
        head = LinearHead(features.shape[1], classes)
        head.load_probe(probe.coef, probe.intercept, probe.mean, probe.scale, penalty=penalty)
        loss = F.cross_entropy(head(features), y) + head.penalty()
        loss.backward()
        return head.linear.weight.grad.norm().item()

    plain, held = gradient(0.0), gradient(1 / (2 * probe.c * len(y)))
    assert held < plain / 50, (held, plain)


def test_a_trained_view_fit_keeps_a_trained_epoch_beside_the_probe_start(gunpoint):
    x, y = gunpoint.x_train[:, None, :], gunpoint.y_train
    viewed = V2SClassifier("trained-view", **SHORT).fit(x, y)
    model, result = viewed.reprogrammer_, viewed.fit_result_
    assert model.bridge.views == 2 and model.output_map.num_source == 2 * model.source.layer_width()
    assert result.beside_start and result.best_epoch >= 1 and result.history[0]["epoch"] == 0
    assert result.reprogramming_kept == (result.val_loss < result.history[0]["val_loss"])
    assert _verdict(viewed).startswith(f"trained view: epoch {result.best_epoch} of")
    # The start state is the probe start: the tones preset with the same seed reads the same bridge,
    # splits the same validation part and refits the same probe.
    tones = V2SClassifier("tones", **SHORT).fit(x, y)
    np.testing.assert_allclose(viewed.probe_predict_proba(gunpoint.x_test), tones.probe_predict_proba(gunpoint.x_test),
                               atol=1e-6)
    assert not np.allclose(viewed.predict_proba(gunpoint.x_test), tones.probe_predict_proba(gunpoint.x_test),
                           atol=1e-3)


def test_a_saved_trained_view_predicts_as_before(gunpoint, tmp_path):
    viewed = V2SClassifier("trained-view", **SHORT).fit(gunpoint.x_train, gunpoint.y_train)
    folder = viewed.save_pretrained(tmp_path / "run")
    loaded = V2SClassifier.from_pretrained(folder)
    assert loaded.settings_["trained_view"] and loaded.reprogrammer_.bridge.views == 2
    np.testing.assert_array_equal(loaded.predict_proba(gunpoint.x_test), viewed.predict_proba(gunpoint.x_test))
    # alignment reads the trained bridge's input (its default view), one representation per series
    x = torch.tensor(gunpoint.x_test[:4], dtype=torch.float32)
    assert reprogrammed_representations(loaded.reprogrammer_, x).shape == (4, loaded.reprogrammer_.source.num_classes)


@pytest.mark.parametrize(("settings", "error", "message"), [
    ({"encoding": "waveform"}, DataError, "needs encoding 'pitch' or 'pitch\\+slope'"),
    ({"mapping": "frequency"}, XmodalError, "mapping='layers'"),
    ({"epochs": 0}, XmodalError, "epochs >= 1"),
    ({"source": "bc-resnet-gsc35+efficientnet-lite0"}, XmodalError, "one more member of its probe per source"),
])
def test_settings_it_cannot_take_are_refused_in_one_line(gunpoint, settings, error, message):
    with pytest.raises(error, match=message):
        V2SClassifier("trained-view", **{**SHORT, **settings}).fit(gunpoint.x_train[:10], gunpoint.y_train[:10])
