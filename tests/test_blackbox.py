"""Black-box reprogramming: the zeroth-order estimator, the query budget, gradient-hiding
sources, and training through them (the one loop with a ZerothOrder gradient) on real data."""

import numpy as np
import pytest
import torch

from tests.conftest import UCR
from xmodal.blackbox import BlackBoxSource, BudgetExhausted, QueryBudget, hide_gradients
from xmodal.bridges.waveform import SeriesToWaveform
from xmodal.errors import DataError, XmodalError
from xmodal.maps import build_output_map
from xmodal.reprogrammer import Reprogrammer
from xmodal.training.config import TrainConfig
from xmodal.training.gradients import ZerothOrder, zeroth_order_gradient
from xmodal.training.loop import train

# With q directions in d dimensions the sphere estimate's cosine with the true
# gradient is about sqrt(q / (q + d)): 0.98 for q = 1000, d = 20. Threshold 0.9.
COSINE_THRESHOLD = 0.9


def _smooth_problem(d=20):
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(d, d, generator=generator, dtype=torch.float64)
    matrix = a @ a.T / d + torch.eye(d, dtype=torch.float64)
    b = torch.randn(d, generator=generator, dtype=torch.float64)
    theta = torch.randn(d, generator=generator, dtype=torch.float64)

    def loss(t):  # smooth and not separable: a quadratic plus a log-cosh term
        return float(0.5 * t @ matrix @ t + b @ t + torch.log(torch.cosh(t)).sum())

    return loss, theta, matrix @ theta + b + torch.tanh(theta)


@pytest.mark.parametrize("distribution", ["sphere", "gaussian"])
def test_estimator_direction_agrees_with_the_true_gradient(distribution):
    loss, theta, gradient = _smooth_problem()
    estimate, base = zeroth_order_gradient(loss, theta, directions=1000, smoothing=1e-4, distribution=distribution,
                                           generator=torch.Generator().manual_seed(1))
    cosine = torch.nn.functional.cosine_similarity(estimate, gradient, dim=0).item()
    assert cosine > COSINE_THRESHOLD
    assert base == loss(theta)
    # b = d (sphere) and b = 1 (Gaussian) make the estimate unbiased, so its size is right too
    assert 0.7 < (estimate.norm() / gradient.norm()).item() < 1.3


def test_few_directions_give_a_poor_direction():
    loss, theta, gradient = _smooth_problem(d=200)
    estimate, _ = zeroth_order_gradient(loss, theta, directions=2, smoothing=1e-4,
                                        generator=torch.Generator().manual_seed(1))
    assert torch.nn.functional.cosine_similarity(estimate, gradient, dim=0).item() < COSINE_THRESHOLD


def test_query_budget_counts_and_refuses_before_overspending():
    budget = QueryBudget(10)
    budget.charge(7)
    assert budget.remaining == 3 and budget.can_afford(3) and not budget.can_afford(4)
    with pytest.raises(BudgetExhausted, match="4 more queries would exceed the budget of 10 \\(7 used\\)"):
        budget.charge(4)
    assert budget.used == 7
    with pytest.raises(DataError):
        QueryBudget(0)


@pytest.fixture(scope="module")
def italy():
    from xmodal.data.ucr import load_ucr

    return load_ucr("ItalyPowerDemand", UCR)


def _series_model(source, data, mapping="frequency"):
    classes = data.classes
    bridge = SeriesToWaveform(num_samples=16000, sample_rate=16000)
    return Reprogrammer(bridge, source, build_output_map(mapping, source.num_classes, len(classes)), classes)


def _targets(data, labels):
    return torch.as_tensor(np.searchsorted(data.classes, labels), dtype=torch.long)


class CountingAPI:
    """A prediction API around the real source that counts the samples it is sent."""

    def __init__(self, source):
        self.source, self.samples = source, 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.samples += len(batch)
        with torch.no_grad():
            return self.source.logits(torch.from_numpy(batch)).softmax(dim=1).numpy()


@pytest.mark.parametrize("mapping", ["frequency", "random"])
def test_budget_is_never_exceeded_and_every_call_is_counted(source, italy, mapping):
    api = CountingAPI(source)
    black_box = BlackBoxSource(api, source.input_spec, source.class_names, "counting-api")
    model = _series_model(black_box, italy, mapping)
    x, y = torch.tensor(italy.x_train, dtype=torch.float32), _targets(italy, italy.y_train)
    config = TrainConfig(epochs=50, batch_size=16, progress=False)
    result = train(model, x, y, config, gradients=ZerothOrder(1500, directions=4))
    assert result.queries == api.samples <= 1500
    # stopped at the last affordable step: one more costs 16 * (4 + 1) queries plus the validation part
    assert result.stopped_by == "budget" and result.queries > 1500 - 16 * 5 - result.n_val
    assert black_box.budget.limit is None  # the training budget is not left installed
    model.predict_proba(x[:2])  # so the API still answers after training
    with pytest.raises(BudgetExhausted, match=r"a query budget of 60 does not cover preparing the output map "
                                              r"and scoring the start \(67 queries\)"):
        # the frequency map is prepared on the 54 fitting series, the start scored on 13: refused before any query
        api.samples = 0
        train(_series_model(black_box, italy), x, y, config, gradients=ZerothOrder(60))
    assert api.samples == 0 and black_box.budget.limit is None and model.source is black_box


@pytest.mark.slow
def test_black_box_training_beats_the_majority_rate_and_lowers_the_loss(source, italy):
    model = _series_model(source, italy)
    x, y = torch.tensor(italy.x_train, dtype=torch.float32), _targets(italy, italy.y_train)
    config = TrainConfig(epochs=100, patience=100, lr=0.01, seed=0, progress=False)
    result = train(model, x, y, config, gradients=ZerothOrder(6000, seed=0))
    assert result.queries <= 6000 and model.source is source  # hidden for the fit, the real one put back
    losses = [record["val_loss"] for record in result.history]
    assert losses[-1] < losses[0] - 0.02
    x_test, y_test = torch.tensor(italy.x_test, dtype=torch.float32), _targets(italy, italy.y_test)
    accuracy = (model.predict_proba(x_test).argmax(dim=1) == y_test).float().mean().item()
    majority = np.bincount(y_test.numpy()).max() / len(y_test)
    assert accuracy > majority + 0.1


def test_hidden_source_gives_probabilities_without_gradients(source):
    hidden = hide_gradients(source)
    x = torch.randn(3, 16000) * 0.1
    log_probabilities = hidden.logits(x)
    assert torch.allclose(log_probabilities.exp(), source.logits(x).softmax(dim=1), atol=1e-6)
    assert not log_probabilities.requires_grad and hidden.identity == source.identity
    assert hidden.budget.used == 3


def test_bad_black_boxes_and_linear_heads_are_refused(source, italy):
    broken = BlackBoxSource(lambda batch: np.full((len(batch), 3), np.nan), source.input_spec,
                            source.class_names, "broken")
    with pytest.raises(XmodalError, match="returned shape \\(2, 3\\) for 2 inputs"):
        broken.logits(torch.zeros(2, 16000))
    x, y, config = torch.zeros(4, 24), torch.tensor([0, 1, 0, 1]), TrainConfig(progress=False)
    model = _series_model(hide_gradients(source), italy, mapping="linear")
    with pytest.raises(XmodalError, match="takes a fixed label mapping"):
        train(model, x, y, config, gradients=ZerothOrder(1000))
    iterative = _series_model(source, italy, mapping="ilm")
    with pytest.raises(XmodalError, match="re-mapping \\(ilm\\) would spend the query budget"):
        train(iterative, x, y, config, gradients=ZerothOrder(1000))
    assert iterative.source is source
    for bad in ({"budget": 0}, {"budget": 10, "directions": 0}, {"budget": 10, "smoothing": 0.0},
                {"budget": 10, "distribution": "cauchy"}):
        with pytest.raises(DataError):
            ZerothOrder(**bad)


def test_the_estimator_trains_black_box_within_its_query_budget(italy):
    """query_budget on an estimator: zeroth-order training, the spent queries in fit_result_."""
    from xmodal.estimators.series import V2SClassifier

    classifier = V2SClassifier("v2s", query_budget=1200, epochs=5, random_state=0)
    classifier.fit(italy.x_train[:, None, :], italy.y_train)
    result = classifier.fit_result_
    assert 0 < result.queries <= 1200 and result.stopped_by == "budget"
    assert classifier.reprogrammer_.source.name == "bc-resnet-gsc35"  # the real source put back
    assert classifier.predict_proba(italy.x_test[:5, None, :]).shape == (5, 2)


def _proba_model(source, data, resolution=16):
    from xmodal.bridges.tones import SeriesToTones
    from xmodal.maps import LinearHead

    bridge = SeriesToTones(num_samples=16000, encoding="pitch", delta_resolution=resolution)
    return Reprogrammer(bridge, source, LinearHead(source.num_classes, len(data.classes)), data.classes,
                        reads="log_probs")


def test_a_head_on_log_probabilities_reads_the_same_from_the_source_and_from_its_api(source, italy):
    model = _proba_model(source, italy)
    x = torch.tensor(italy.x_test[:8], dtype=torch.float32)
    white_box = model.predict_proba(x)
    model.source = hide_gradients(source)
    assert torch.allclose(model.predict_proba(x), white_box, atol=1e-5)


def test_black_box_training_of_a_probe_head_pays_for_the_probe_and_trains_theta_only(source, italy):
    api = CountingAPI(source)
    model = _proba_model(BlackBoxSource(api, source.input_spec, source.class_names, "counting-api"), italy)
    x, y = torch.tensor(italy.x_train, dtype=torch.float32), _targets(italy, italy.y_train)
    config = TrainConfig(epochs=3, patience=3, batch_size=16, head_init="probe", select_on="loss", seed=0,
                         progress=False)
    result = train(model, x, y, config, gradients=ZerothOrder(2000, directions=4, seed=0))
    # the probe read all 67 training series (the start is scored from that reading of the 13
    # validation ones), each epoch's steps and validation came on top
    assert result.queries == api.samples <= 2000 and result.epochs_run == 3
    assert api.samples == 67 + 3 * (54 * 5 + 13)
    trained = [record for record in result.history if record["epoch"] > 0]
    assert len(trained) == 3 and result.probe_c is not None
    # Training moves theta (16 numbers) and never the probe head (the start state reported beside
    # the model holds that probe refitted on all 67 series).
    assert model.bridge.delta.numel() == 16
    head = {id(p) for p in model.output_map.parameters()}
    assert not any(id(p) in head for p in model.trainable_parameters())
    if result.best_epoch > 0:
        assert not torch.equal(model.bridge.delta, result.start_state["bridge.delta"])


def test_the_estimator_trains_a_probe_head_black_box_and_refuses_a_random_one(italy):
    from xmodal.estimators.series import V2SClassifier
    from xmodal.estimators.table import TableClassifier

    classifier = V2SClassifier("v2s", encoding="pitch", masked=False, mapping="proba", delta_resolution=16,
                               query_budget=1500, epochs=3, random_state=0)
    classifier.fit(italy.x_train[:, None, :], italy.y_train)
    assert 0 < classifier.fit_result_.queries <= 1500 and classifier.fit_result_.probe_c is not None
    assert (classifier.predict(italy.x_test[:, None, :]) == italy.y_test).mean() > 0.6
    with pytest.raises(DataError, match="a random head would stay random; set head_init=.probe."):
        TableClassifier(mapping="proba", head_init="random", query_budget=1000, epochs=3).fit(
            np.zeros((4, 2)), [0, 1, 0, 1])


def test_white_box_training_moves_theta_and_leaves_a_log_probability_head_as_its_probe_set_it(source, italy):
    from xmodal.training.gradients import Backprop

    model = _proba_model(source, italy)
    x, y = torch.tensor(italy.x_train[:8], dtype=torch.float32), _targets(italy, italy.y_train[:8])
    head, delta = model.output_map.linear.weight.clone(), model.bridge.delta.clone()
    backprop = Backprop()
    with backprop.attached(model, lr=0.01):
        backprop.step(x, y)
    assert torch.equal(model.output_map.linear.weight, head) and not torch.equal(model.bridge.delta, delta)


def test_per_feature_table_views_cost_a_query_per_feature_and_row():
    """German credit's 20 columns drawn one per image for bc-resnet-gsc35-image (35 classes) behind
    a counting API: every sample read is 20 queries, the budget is checked in those terms, and the
    head reads the 20 answers side by side."""
    from adapters_modal import load_source
    from tests.conftest import SHARED
    from xmodal.bridges.table_encoding import TableEncoder
    from xmodal.bridges.table_to_image import TableToImage, TableToImageConfig
    from xmodal.data.tables import load_table
    from xmodal.maps import LinearHead

    german = load_table(SHARED / "data" / "tabular" / "german_credit_uci").rows(np.arange(100))
    source = load_source("bc-resnet-gsc35-image")
    encoder = TableEncoder.fit(german.features, encoding="ordinal")
    config = TableToImageConfig.for_source(source.input_spec, encoder, cell_size=None, gap=1, views="per-feature",
                                           delta_resolution=4)

    def model(api):
        black_box = BlackBoxSource(api, source.input_spec, source.class_names, "counting-api")
        return Reprogrammer(TableToImage(config, seed=0), black_box, LinearHead(20 * 35, 2), german.classes,
                            reads="log_probs")

    x, y = TableToImage(config).encode(german.features), _targets(german, german.labels)
    config_train = TrainConfig(epochs=1, patience=1, batch_size=16, val_fraction=0.2, head_init="probe",
                               select_on="loss", seed=0, progress=False)
    api = CountingAPI(source)
    result = train(model(api), x, y, config_train, gradients=ZerothOrder(8000, directions=2, seed=0))
    # the probe reads 100 rows (validation's 20 among them: the start is scored from that reading),
    # 5 steps of 16 rows x 3 evaluations, validation 20 at epoch 1
    assert api.samples == result.queries == 20 * (100 + 5 * 16 * 3 + 20) and result.epochs_run == 1
    api = CountingAPI(source)
    with pytest.raises(BudgetExhausted, match="does not cover preparing the output map"):
        train(model(api), x, y, config_train, gradients=ZerothOrder(20 * 100 - 1, directions=2, seed=0))
    assert api.samples == 0
