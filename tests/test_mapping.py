"""Output maps: many-to-one label mapping (random / frequency) and the linear head."""

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from xmodal.errors import XmodalError
from xmodal.maps import PROBE_C, LabelMapping, LinearHead, build_output_map, frequency_assignment


def test_default_owns_floor_ks_over_kt_distinct_sources():
    mapping = LabelMapping(35, 4, assignment="random", seed=3)
    assert mapping.assignment.shape == (4, 8)
    assert len(set(mapping.assignment.flatten().tolist())) == 32


def test_random_assignment_is_seeded():
    a, b, c = (LabelMapping(35, 3, assignment="random", seed=s).assignment for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_scores_are_the_mean_of_owned_probabilities():
    mapping = LabelMapping(6, 2, per_class=3, assignment="random", seed=0)
    logits = torch.randn(4, 6)
    probs = logits.softmax(1)
    expected = torch.stack([probs[:, mapping.assignment[t]].mean(1) for t in range(2)], dim=1)
    assert torch.allclose(mapping(logits).exp(), expected, atol=1e-6)


def test_frequency_assignment_follows_the_frozen_models_votes():
    # target 0's samples are labelled source 4 (and then 1), target 1's source 2 (then 0)
    logits = torch.full((6, 5), -5.0)
    logits[0:3, 4] = 5.0
    logits[2, 1] = 4.0
    logits[3:6, 2] = 5.0
    logits[3, 0] = 4.0
    targets = torch.tensor([0, 0, 0, 1, 1, 1])
    owned = frequency_assignment(logits, targets, num_target=2, per_class=2)
    assert owned[0].tolist() == [4, 1] and owned[1].tolist() == [2, 0]


def test_frequency_prepare_replaces_the_initial_assignment():
    mapping = LabelMapping(10, 2, per_class=1, assignment="frequency")
    logits = torch.zeros(4, 10)
    logits[:2, 7] = 9.0
    logits[2:, 3] = 9.0
    mapping.prepare(logits, torch.tensor([0, 0, 1, 1]))
    assert mapping.assignment.flatten().tolist() == [7, 3]


def test_more_target_than_source_classes_suggests_the_linear_head():
    with pytest.raises(XmodalError, match="linear head"):
        build_output_map("frequency", 35, 36)
    assert build_output_map("linear", 35, 36)(torch.randn(2, 35)).shape == (2, 36)


def test_too_many_labels_per_class_is_refused():
    with pytest.raises(XmodalError, match="labels_per_class <= 11"):
        LabelMapping(35, 3, per_class=12)


def test_linear_head_is_seeded_and_trainable():
    a, b = LinearHead(35, 3, seed=5), LinearHead(35, 3, seed=5)
    assert torch.equal(a.linear.weight, b.linear.weight)
    assert all(p.requires_grad for p in a.parameters())


def test_unknown_map_kind():
    with pytest.raises(XmodalError, match="frequency, random, linear"):
        build_output_map("bayesian", 35, 2)


def test_log_scores_normalise_to_probabilities():
    mapping = LabelMapping(35, 5, assignment="random")
    probs = mapping(torch.randn(3, 35)).softmax(1)
    assert torch.allclose(probs.sum(1), torch.ones(3)) and not math.isnan(probs.sum().item())


@pytest.mark.parametrize("classes", [2, 3])
def test_probe_head_reproduces_scaled_logistic_regression(classes):
    generator = torch.Generator().manual_seed(0)
    targets = torch.arange(60) % classes
    inputs = torch.randn(60, 5, generator=generator) * 0.01 + 0.002 * targets[:, None] + 3.0  # small, offset features
    head = LinearHead(5, classes)
    head.fit_probe(inputs, targets, seed=0)
    reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=0))
    expected = reference.fit(inputs.double().numpy(), targets.numpy()).predict_proba(inputs.double().numpy())
    assert np.allclose(head(inputs).softmax(dim=1).detach().numpy(), expected, atol=1e-4)
    with pytest.raises(XmodalError, match="all 3 classes"):
        LinearHead(5, 3).fit_probe(inputs[:4], torch.tensor([0, 1, 0, 1]))


def test_probe_start_keeps_the_strength_with_the_lowest_validation_loss():
    """start_as_probe tries every C in PROBE_C and leaves the head exactly as the fit with
    the lowest validation log-loss left it (restored, not refitted); C = 1 without validation."""
    generator = torch.Generator().manual_seed(1)
    targets = torch.arange(80) % 2
    inputs = torch.randn(80, 20, generator=generator) + 0.4 * targets[:, None]  # noisy: C matters
    fit, val = (inputs[:50], targets[:50]), (inputs[50:], targets[50:])
    validation_loss = lambda head: float(torch.nn.functional.cross_entropy(head(val[0]).detach(), val[1]))
    losses = {}
    for c in PROBE_C:
        head = LinearHead(20, 2)
        head.fit_probe(*fit, seed=0, c=c)
        losses[c] = validation_loss(head)
    best = min(losses, key=losses.get)
    assert len(set(losses.values())) == len(PROBE_C)  # the strengths really differ here
    head = LinearHead(20, 2)
    assert head.start_as_probe(*fit, val, seed=0) == best
    assert validation_loss(head) == pytest.approx(losses[best])
    assert LinearHead(20, 2).start_as_probe(*fit, None, seed=0) == 1.0


def test_probe_strength_by_cross_validation_follows_the_signal():
    """probe_c_by_cv: on labels the features cannot predict, the strongest regularisation
    (smallest C, probabilities near the class prior) has the lowest k-fold log-loss; on
    separable features a weaker one wins; one example of a class leaves C = 1."""
    generator = torch.Generator().manual_seed(2)
    noise = torch.randn(60, 30, generator=generator)
    targets = torch.arange(60) % 2
    head = LinearHead(30, 2)
    assert head.probe_c_by_cv(noise, targets[torch.randperm(60, generator=generator)]) == min(PROBE_C)
    separable = noise + 3.0 * targets[:, None]
    assert head.probe_c_by_cv(separable, targets) > min(PROBE_C)
    assert head.probe_c_by_cv(noise[:11], torch.tensor([0] * 10 + [1])) == 1.0
