"""clip_features: a probe head holds each number it reads to the range it had where the probe was fitted
(docs/experiments.md, 0.26), checked against the probe of the clipped reading on real GunPoint."""

import numpy as np
import torch

from xmodal.estimators.series import V2SClassifier
from xmodal.maps import LinearHead, output_map_from_settings
from xmodal.training.probe import fit_probe

COEF, INTERCEPT, MEAN, SCALE = np.array([[1.0, -2.0, 0.5]]), np.array([0.25]), np.array([0.5, 0.0, 1.0]), np.ones(3)


def _probe_head(clip: bool, bounds=None) -> LinearHead:
    head = LinearHead(3, 2, clip=clip)
    head.load_probe(COEF, INTERCEPT, MEAN, SCALE, bounds=bounds)
    return head


def test_a_clipping_head_reads_its_inputs_held_to_the_probes_range():
    head = _probe_head(True, bounds=(np.array([-1.0, 0.0, 2.0]), np.array([1.0, 3.0, 4.0])))
    plain = _probe_head(False)
    x = torch.tensor([[5.0, -1.0, 3.0], [0.5, 2.0, 2.5]])
    assert torch.allclose(head(x), plain(torch.tensor([[1.0, 0.0, 3.0], [0.5, 2.0, 2.5]])))
    assert not torch.allclose(head(x[:1]), plain(x[:1]))


def test_blending_a_probe_widens_the_range_and_unbound_drops_it():
    head = _probe_head(True, bounds=(np.array([-1.0, 0.0, 2.0]), np.array([1.0, 3.0, 4.0])))
    other = (np.array([-2.0, 1.0, 0.0]), np.array([0.0, 5.0, 1.0]))
    head.blend_probe(COEF, INTERCEPT, MEAN, SCALE, share=0.5, bounds=other)
    assert torch.equal(head.low, torch.tensor([-2.0, 0.0, 0.0]))
    assert torch.equal(head.high, torch.tensor([1.0, 5.0, 4.0]))
    head.unbound()
    x = torch.tensor([[50.0, -10.0, 30.0]])
    assert torch.allclose(head(x), _probe_head(False)(x))  # the same probe blended in: the same weights


def test_clipping_is_saved_with_the_head_and_older_heads_do_not_clip():
    assert output_map_from_settings(LinearHead(4, 2, clip=True).settings()).clip
    assert not output_map_from_settings({"kind": "linear", "num_source": 4, "num_target": 2}).clip
    assert set(LinearHead(4, 2).state_dict()) == {"linear.weight", "linear.bias"}  # saved as before clip existed


def test_a_clipped_probe_predicts_as_the_probe_of_the_reading_clipped_to_the_training_range(gunpoint, tmp_path):
    x_train, x_test = gunpoint.x_train[:, None, :], gunpoint.x_test[:, None, :]
    model = V2SClassifier("tones", epochs=0, clip_features=True, random_state=0).fit(x_train, gunpoint.y_train)
    with torch.no_grad():
        train_reading = model.reprogrammer_.source_logits(torch.tensor(x_train, dtype=torch.float32)).double()
        test_reading = model.reprogrammer_.source_logits(torch.tensor(x_test, dtype=torch.float32)).double().numpy()
    targets = torch.tensor(np.searchsorted(model.classes_, gunpoint.y_train))
    probe = fit_probe(train_reading, targets, model.seed_)
    low, high = train_reading.min(dim=0).values.numpy(), train_reading.max(dim=0).values.numpy()
    assert ((test_reading < low) | (test_reading > high)).any()  # test series leave the range: the clip acts
    logit = ((np.clip(test_reading, low, high) - probe.mean) / probe.scale) @ probe.coef[0] + probe.intercept[0]
    proba = model.predict_proba(x_test)[:, 1]
    assert np.allclose(proba, 1 / (1 + np.exp(-logit)), atol=1e-4)
    unclipped = ((test_reading - probe.mean) / probe.scale) @ probe.coef[0] + probe.intercept[0]
    assert not np.allclose(proba, 1 / (1 + np.exp(-unclipped)), atol=1e-4)
    model.save_pretrained(tmp_path / "run")
    loaded = V2SClassifier.from_pretrained(tmp_path / "run")
    assert np.allclose(loaded.predict_proba(x_test), model.predict_proba(x_test), atol=1e-6)


def test_a_head_trained_from_a_clipped_probe_reads_unclipped_and_its_start_keeps_the_clip(gunpoint):
    model = V2SClassifier("tones", epochs=2, patience=2, clip_features=True, random_state=0).fit(
        gunpoint.x_train[:, None, :], gunpoint.y_train)
    assert torch.isfinite(model.start_state_["output_map.low"]).all()
    assert torch.isfinite(model.start_state_["output_map.high"]).all()
    trained = model.fit_result_.best_epoch > 0
    head = model.reprogrammer_.output_map
    assert torch.isinf(head.low).all() == trained and torch.isinf(head.high).all() == trained
