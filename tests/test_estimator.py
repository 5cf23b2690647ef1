"""The sktime classifier V2SClassifier: sktime's own estimator checks and the user-facing API."""

import numpy as np
import pytest
import torch

from xmodal.errors import PersistenceError, XmodalError
from xmodal.estimators.series import V2SClassifier
from xmodal.training.probe import PROBE_C, fit_probe


@pytest.mark.slow
def test_passes_sktimes_check_estimator():
    from sktime.utils.estimator_checks import check_estimator

    results = check_estimator(V2SClassifier, raise_exceptions=False)
    failed = {name: outcome for name, outcome in results.items() if outcome != "PASSED"}
    assert not failed, failed
    assert len(results) > 50


@pytest.fixture(scope="module")
def fitted(gunpoint):
    classifier = V2SClassifier("v2s", epochs=3, random_state=0)
    return classifier.fit(gunpoint.x_train[:, None, :], gunpoint.y_train)


def test_fit_predict_and_proba(fitted, gunpoint):
    x = gunpoint.x_test[:, None, :]
    predicted = fitted.predict(x)
    probabilities = fitted.predict_proba(x)
    assert set(predicted) <= {1, 2} and probabilities.shape == (150, 2)
    assert np.allclose(probabilities.sum(axis=1), 1)
    assert np.array_equal(predicted, fitted.classes_[probabilities.argmax(axis=1)])
    assert fitted.fit_result_.n_val == 10  # 20 % of the 50 training series, stratified
    assert fitted.seed_ == 0 and fitted.settings_["epochs"] == 3 and fitted.settings_["mapping"] == "frequency"


def test_save_and_from_pretrained(fitted, gunpoint, tmp_path):
    fitted.save_pretrained(tmp_path / "run")
    reloaded = V2SClassifier.from_pretrained(tmp_path / "run")
    x = gunpoint.x_test[:, None, :]
    assert np.array_equal(reloaded.predict_proba(x), fitted.predict_proba(x))
    assert reloaded.settings_ == fitted.settings_ and reloaded.seed_ == fitted.seed_
    assert reloaded.preset == "v2s" and reloaded.fit_result_.history == fitted.fit_result_.history
    # the saved settings are all explicit on the reloaded estimator: a refit repeats the run
    assert reloaded.get_params()["epochs"] == 3 and reloaded.get_params()["random_state"] == 0


def test_multivariate_input_is_refused(gunpoint):
    x = np.repeat(gunpoint.x_train[:, None, :], 2, axis=1)
    with pytest.raises(ValueError, match="multivariate"):
        V2SClassifier("tones", epochs=1).fit(x, gunpoint.y_train)


def test_more_classes_than_source_words_needs_the_linear_head():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(72, 1, 20))
    y = np.repeat(np.arange(36), 2)
    with pytest.raises(XmodalError, match="linear head"):
        V2SClassifier("v2s", epochs=1, random_state=0).fit(x, y)
    V2SClassifier("v2s", epochs=1, mapping="linear", random_state=0, val_fraction=0).fit(x, y)


def test_a_single_class_cannot_be_saved(gunpoint, tmp_path):
    with pytest.warns(UserWarning):  # sktime's convention: constant predictions and a warning
        classifier = V2SClassifier("tones", epochs=1).fit(gunpoint.x_train[:, None, :], np.ones(50))
    with pytest.raises(PersistenceError, match="single class"):
        classifier.save_pretrained(tmp_path / "run")


@pytest.fixture(scope="module")
def pitch_layers(gunpoint):
    """The best preset (pitch+slope tones, a probe-started head on every layer), 3 epochs."""
    classifier = V2SClassifier("tones", epochs=3, random_state=0)
    return classifier.fit(gunpoint.x_train[:, None, :], gunpoint.y_train)


@pytest.mark.slow
def test_pitch_encoding_with_a_probe_started_layer_head(pitch_layers, gunpoint, tmp_path):
    x = gunpoint.x_test[:, None, :]
    accuracy = np.mean(pitch_layers.predict(x) == gunpoint.y_test)
    assert accuracy >= 0.85  # frequency mapping on the waveform, same budget: about 0.5-0.65
    assert pitch_layers.settings_["encoding"] == "pitch+slope" and pitch_layers.settings_["mapping"] == "layers"
    assert pitch_layers.reprogrammer_.reads == "layers"
    assert pitch_layers.fit_result_.probe_c in PROBE_C
    assert pitch_layers.fit_result_.history[0]["epoch"] == 0  # the probe start competed in selection
    assert pitch_layers.fit_result_.probe_val_accuracy == pitch_layers.fit_result_.history[0]["val_accuracy"]
    # the probe start beside the model: the untrained bridge read by the start head
    probe = pitch_layers.probe_predict_proba(x)
    assert probe.shape == (150, 2) and np.allclose(probe.sum(axis=1), 1)
    pitch_layers.save_pretrained(tmp_path / "run")
    reloaded = V2SClassifier.from_pretrained(tmp_path / "run")
    assert np.array_equal(reloaded.predict_proba(x), pitch_layers.predict_proba(x))
    assert reloaded.reprogrammer_.reads == "layers" and reloaded.reprogrammer_.bridge.config.encoding == "pitch+slope"
    assert reloaded.probe_predict_proba(x) is None  # only the trained state is saved


def test_layer_head_is_refused_where_it_cannot_work(gunpoint):
    x, y = gunpoint.x_train[:, None, :], gunpoint.y_train
    with pytest.raises(XmodalError, match="black-box"):
        V2SClassifier("tones", mapping="layers", query_budget=100, epochs=1, random_state=0).fit(x, y)
    with pytest.raises(XmodalError, match="search grids place the series as waveform samples"):
        V2SClassifier("tones", encoding="pitch", masked=False, mapping="layers", search="tiny",
                      random_state=0).fit(x, y)


def test_a_kept_probe_start_is_refitted_on_every_training_series(gunpoint):
    """An lr that wrecks every trained epoch leaves the probe start as the selected model,
    which is then the probe with the chosen C on all 50 series, not only the fit part."""
    from xmodal.training.loop import in_batches

    x, y = gunpoint.x_train[:, None, :], gunpoint.y_train
    classifier = V2SClassifier("tones", encoding="pitch+slope", masked=False, mapping="layers", lr=50.0, epochs=2,
                               patience=2, random_state=0).fit(x, y)
    result = classifier.fit_result_
    assert result.best_epoch == 0 and result.n_fit == 50 and "refitted on all training samples" in result.selection
    assert not result.reprogramming_kept
    model = classifier.reprogrammer_
    expected = type(model.output_map)(model.output_map.num_source, 2)
    targets = torch.as_tensor(np.searchsorted(classifier.classes_, y))
    probe = fit_probe(in_batches(model.source_logits, torch.tensor(x, dtype=torch.float32), 32), targets, 0,
                      result.probe_c)
    expected.load_probe(probe.coef, probe.intercept, probe.mean, probe.scale)
    assert torch.allclose(model.output_map.linear.weight, expected.linear.weight)


def test_layer_head_without_a_validation_part_keeps_the_probe(gunpoint):
    """A class with a single series leaves no stratified validation part: nothing could show
    that training delta helps, so the probe on every series is the model, untrained."""
    first, second = np.flatnonzero(gunpoint.y_train == 1)[:20], np.flatnonzero(gunpoint.y_train == 2)[:1]
    rows = np.concatenate([first, second])
    classifier = V2SClassifier("tones", encoding="pitch", masked=False, mapping="layers", epochs=5, random_state=0)
    classifier.fit(gunpoint.x_train[rows, None, :], gunpoint.y_train[rows])
    result = classifier.fit_result_
    assert result.epochs_run == 0 and result.selection.startswith("none") and result.n_val == 0
    assert result.probe_c == 1.0 and result.n_fit == 21 and not result.reprogramming_kept
    assert set(classifier.predict(gunpoint.x_test[:, None, :])) <= {1, 2}
