"""Output maps: many-to-one label mapping (random / frequency) and the linear head, started
as a logistic-regression probe (xmodal.training.probe)."""

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from xmodal.errors import XmodalError
from xmodal.maps import LabelMapping, LinearHead, build_output_map
from xmodal.maps.label_mapping import frequency_assignment
from xmodal.training.probe import PROBE_C, fit_probe


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


def _probe_head(inputs, targets, num_target, seed=0, c=None):
    head = LinearHead(inputs.shape[1], num_target)
    probe = fit_probe(inputs, targets, seed, c)
    head.load_probe(probe.coef, probe.intercept, probe.mean, probe.scale)
    return head, probe


@pytest.mark.parametrize("classes", [2, 3])
def test_a_blended_probe_averages_the_two_probes_logits(classes):
    """blend_probe: (1 - share) x the head's logits + share x those of a probe standardised its own way
    (late fusion of members fitted on different rows: a fused source's window slices)."""
    generator = torch.Generator().manual_seed(0)
    targets = torch.arange(60) % classes
    inputs = torch.randn(60, 5, generator=generator) + 0.8 * targets[:, None]
    first, _ = _probe_head(inputs, targets, classes, c=1.0)
    second, probe = _probe_head(inputs[:40] * 2 + 1, targets[:40], classes, c=0.1)  # another standardisation
    blended, _ = _probe_head(inputs, targets, classes, c=1.0)
    blended.blend_probe(probe.coef, probe.intercept, probe.mean, probe.scale, share=0.25)
    with torch.no_grad():
        expected = 0.75 * first(inputs) + 0.25 * second(inputs)
        torch.testing.assert_close(blended(inputs), expected, rtol=1e-5, atol=1e-5)
        assert not torch.allclose(blended(inputs), first(inputs), atol=1e-3)


@pytest.mark.parametrize("classes", [2, 3])
def test_probe_head_reproduces_scaled_logistic_regression(classes):
    generator = torch.Generator().manual_seed(0)
    targets = torch.arange(60) % classes
    inputs = torch.randn(60, 5, generator=generator) * 0.01 + 0.002 * targets[:, None] + 3.0  # small, offset features
    head, _ = _probe_head(inputs, targets, classes, c=1.0)
    reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=0))
    expected = reference.fit(inputs.double().numpy(), targets.numpy()).predict_proba(inputs.double().numpy())
    assert np.allclose(head(inputs).softmax(dim=1).detach().numpy(), expected, atol=1e-4)
    with pytest.raises(XmodalError, match="does not fit a 5 -> 3 head"):  # a probe of 2 classes on a 3-class head
        _probe_head(inputs[:4], torch.tensor([0, 1, 0, 1]), 3)


@pytest.mark.parametrize("classes", [2, 3])
def test_a_probe_wider_than_long_is_the_regression_on_every_feature(classes):
    """More features than rows: fitted on the rows' coordinates in their span and mapped back, it
    predicts what scikit-learn's regression on all 400 columns, solved to a tight tolerance,
    predicts, on rows it never saw too (at the default tolerance the full-width solve is further
    from that optimum than the probe is), and its C search scores the same."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    from xmodal.training.probe import row_space

    generator = torch.Generator().manual_seed(1)
    targets = torch.arange(90) % classes
    inputs = torch.randn(90, 400, generator=generator) + 0.3 * targets[:, None] * torch.linspace(-1, 1, 400)
    fit, held_out = slice(0, 60), slice(60, 90)
    probe = fit_probe(inputs[fit], targets[fit], 0)
    head = LinearHead(400, classes)
    head.load_probe(probe.coef, probe.intercept, probe.mean, probe.scale)
    scaler = StandardScaler().fit(inputs[fit].double().numpy())
    z = scaler.transform(inputs.double().numpy())
    coordinates, basis = row_space(z[fit])
    assert coordinates.shape[1] == 59 and np.allclose(coordinates @ basis.T, z[fit], atol=1e-8)  # centred: rank n - 1
    search = LogisticRegressionCV(Cs=list(PROBE_C), cv=StratifiedKFold(5, shuffle=True, random_state=0),
                                  scoring="neg_log_loss", max_iter=2000, random_state=0)
    search.fit(z[fit], targets[fit].numpy())
    assert probe.c == float(np.atleast_1d(search.C_)[0])
    assert probe.cv_log_loss == pytest.approx(-next(iter(search.scores_.values())).mean(axis=0).max(), rel=5e-3)
    reference = LogisticRegression(C=probe.c, tol=1e-12, max_iter=100_000).fit(z[fit], targets[fit].numpy())
    for rows in (fit, held_out):
        assert np.allclose(head(inputs[rows]).softmax(dim=1).detach().numpy(), reference.predict_proba(z[rows]),
                           atol=1e-2)  # lbfgs stops at its default tolerance


@pytest.mark.parametrize("classes", [2, 3])
def test_a_per_view_probe_is_the_regression_on_each_views_principal_components(classes):
    """views > 1: each block of columns reduced by PCA, standardised, regressed, and folded back
    into one full-width head that predicts what the reduced pipeline predicts."""
    from sklearn.decomposition import PCA

    from xmodal.training.probe import VIEW_COMPONENTS

    generator = torch.Generator().manual_seed(0)
    targets = torch.arange(90) % classes
    inputs = torch.randn(90, 3 * 50, generator=generator) + 0.5 * targets[:, None] - 7.0  # 3 views of 50
    probe = fit_probe(inputs, targets, 0, c=1.0, views=3)
    head = LinearHead(150, classes)
    head.load_probe(probe.coef, probe.intercept, probe.mean, probe.scale)
    x = inputs.double().numpy()
    reduced = np.concatenate([PCA(VIEW_COMPONENTS, random_state=0).fit_transform(block) for block in np.split(x, 3, 1)],
                             axis=1)
    reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=0))
    expected = reference.fit(reduced, targets.numpy()).predict_proba(reduced)
    assert probe.coef.shape[1] == 150 and reduced.shape[1] == 3 * VIEW_COMPONENTS
    assert np.allclose(head(inputs).softmax(dim=1).detach().numpy(), expected, atol=1e-4)


def test_a_constant_feature_is_not_blown_up_by_standardising():
    """A feature constant over the fitting data has (almost) no spread: its scale is floored,
    so float noise in it cannot become huge standardised values."""
    generator = torch.Generator().manual_seed(3)
    targets = torch.arange(40) % 2
    inputs = torch.cat([torch.randn(40, 3, generator=generator) + targets[:, None], torch.full((40, 1), 2.5)], dim=1)
    head, probe = _probe_head(inputs, targets, 2, c=1.0)
    assert probe.scale[3] > 0 and np.isfinite(head.linear.weight.detach().numpy()).all()
    shifted = inputs.clone()
    shifted[:, 3] += 1e-7
    assert torch.allclose(head(shifted), head(inputs), atol=1e-3)


def test_probe_strength_by_cross_validation_follows_the_signal():
    """fit_probe without C: LogisticRegressionCV on stratified folds, scored by log-loss. On
    labels the features cannot predict, the strongest regularisation (smallest C, probabilities
    near the class prior) has the lowest k-fold log-loss; on separable features a weaker one
    wins; one example of a class leaves C = 1 (no folds)."""
    generator = torch.Generator().manual_seed(2)
    noise = torch.randn(60, 30, generator=generator)
    targets = torch.arange(60) % 2
    assert fit_probe(noise, targets[torch.randperm(60, generator=generator)], seed=0).c == min(PROBE_C)
    separable = noise + 3.0 * targets[:, None]
    assert fit_probe(separable, targets, seed=0).c > min(PROBE_C)
    assert fit_probe(noise[:11], torch.tensor([0] * 10 + [1]), seed=0).c == 1.0
    a, b = fit_probe(separable, targets, seed=4), fit_probe(separable, targets, seed=4)
    assert a.c == b.c and np.array_equal(a.coef, b.coef)  # seeded folds


@pytest.mark.parametrize("classes", [2, 3])
def test_the_probes_cross_validated_log_loss_is_scikit_learns_at_the_chosen_c(classes):
    """What choosing a fused source's parts compares (xmodal.training.source_choice): the held-out
    log-loss of the chosen C, averaged over the same seeded folds; none when C is given."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    generator = torch.Generator().manual_seed(5)
    targets = torch.arange(60) % classes
    inputs = torch.randn(60, 8, generator=generator) + 0.8 * targets[:, None]
    probe = fit_probe(inputs, targets, seed=3)
    z = StandardScaler().fit_transform(inputs.double().numpy())
    folds = StratifiedKFold(5, shuffle=True, random_state=3)
    expected = -cross_val_score(LogisticRegression(C=probe.c, max_iter=2000, random_state=3), z, targets.numpy(),
                                cv=folds, scoring="neg_log_loss").mean()
    assert probe.cv_log_loss == pytest.approx(expected, rel=1e-4)
    assert fit_probe(inputs, targets, seed=3, c=1.0).cv_log_loss is None
