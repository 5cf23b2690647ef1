"""The one training loop (xmodal.training.loop.train) on real data with the real frozen model."""

import numpy as np
import pytest
import torch

from tests.conftest import UCR
from xmodal.bridges.waveform import SeriesToWaveform
from xmodal.data.ucr import load_ucr
from xmodal.errors import DataError
from xmodal.maps import build_output_map
from xmodal.reprogrammer import Reprogrammer
from xmodal.training.config import TrainConfig
from xmodal.training.loop import train
from xmodal.training.probe import fit_probe
from xmodal.training.split import validation_split


def _encoded(data):
    classes = data.classes
    return (torch.tensor(data.x_train, dtype=torch.float32),
            torch.tensor(np.searchsorted(classes, data.y_train)),
            torch.tensor(data.x_test, dtype=torch.float32),
            np.searchsorted(classes, data.y_test))


def _model(source, num_target, seed=0, **bridge):
    return Reprogrammer(SeriesToWaveform(seed=seed, **bridge), source,
                        build_output_map("frequency", source.num_classes, num_target, seed=seed))


def test_source_parameters_are_bit_identical_after_fit(source, gunpoint):
    before = {k: v.clone() for k, v in source.state_dict().items()}
    x, y, _, _ = _encoded(gunpoint)
    model = _model(source, 2)
    delta_before = model.bridge.delta.detach().clone()
    train(model, x[:20], y[:20], TrainConfig(epochs=3, progress=False))
    after = source.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN running stats included
    assert not torch.equal(delta_before, model.bridge.delta)  # theta did train
    assert all(not p.requires_grad for p in source.parameters())


def test_same_seed_same_numbers(source, gunpoint):
    x, y, x_test, _ = _encoded(gunpoint)
    runs = []
    for _ in range(2):
        model = _model(source, 2, seed=7, delta_dropout=0.1)
        result = train(model, x, y, TrainConfig(epochs=4, seed=7, progress=False))
        runs.append((result.history, model.predict_proba(x_test)))
    assert runs[0][0] == runs[1][0]
    assert torch.equal(runs[0][1], runs[1][1])


def test_validation_split_is_stratified_and_from_training_only():
    targets = np.array([0] * 30 + [1] * 10)
    fit_idx, val_idx = validation_split(targets, 0.2, seed=0)
    assert len(val_idx) == 8 and set(fit_idx).isdisjoint(val_idx)
    assert np.bincount(targets[val_idx]).tolist() == [6, 2]
    lone = np.array([0, 0, 0, 1])  # a class with one sample cannot be split
    fit_idx, val_idx = validation_split(lone, 0.2, seed=0)
    assert len(val_idx) == 0 and len(fit_idx) == 4


@pytest.mark.slow
def test_fit_beats_the_majority_rate_on_real_data(source):
    """A small real dataset (Coffee: 28 training series, 28 test), V2S's settings."""
    data = load_ucr("Coffee", UCR)
    x, y, x_test, y_test = _encoded(data)
    model = _model(source, 2)
    result = train(model, x, y, TrainConfig(epochs=100, patience=25, progress=False))
    accuracy = float(np.mean(model.predict_proba(x_test).argmax(1).numpy() == y_test))
    majority = np.bincount(y_test).max() / len(y_test)
    assert result.selection == "validation" and result.n_val >= 2
    assert accuracy > majority + 0.15, (accuracy, majority)


def test_selection_on_loss_keeps_the_epoch_with_the_lowest_validation_loss(source, gunpoint):
    """select_on="loss" (R2DL's criterion) ranks epochs by validation log-loss alone; the
    kept state is that epoch's, so its validation loss is what the history recorded for it."""
    x, y, _, _ = _encoded(gunpoint)
    model = _model(source, 2)
    result = train(model, x, y, TrainConfig(epochs=6, patience=6, progress=False, select_on="loss"))
    losses = {record["epoch"]: record["val_loss"] for record in result.history}
    assert result.best_epoch == min(losses, key=losses.get)
    assert result.val_loss == losses[result.best_epoch] == min(losses.values())
    assert len(set(losses.values())) > 1  # the epochs differed, so the choice was a real one


def test_zero_epochs_keep_the_start_state(source, gunpoint):
    """epochs 0: no training, no validation part carved (nothing to select), the start is the model."""
    x, y, _, _ = _encoded(gunpoint)
    model = _model(source, 2)
    delta = model.bridge.delta.detach().clone()
    result = train(model, x[:20], y[:20], TrainConfig(epochs=0, progress=False))
    assert torch.equal(model.bridge.delta, delta)
    assert (result.epochs_run, result.best_epoch, result.n_fit, result.n_val) == (0, 0, 20, 0)
    assert result.stopped_by == "no training" and not result.reprogramming_kept
    assert result.start_state is not None  # the prepared label map: the model "without reprogramming"


def test_a_probe_that_wins_on_a_given_validation_split_is_refitted_on_it_too(source, gunpoint):
    """A given validation split is training data as much as a carved one: the probe start that
    wins on it is refitted, at the C chosen on the training rows, on those rows and it."""
    from xmodal.maps import LinearHead
    from xmodal.training.probe import fit_probe

    x, y, _, _ = _encoded(gunpoint)
    model = Reprogrammer(SeriesToWaveform(seed=0), source, LinearHead(source.num_classes, 2))
    result = train(model, x[:30], y[:30], TrainConfig(epochs=0, head_init="probe", select_on="loss", progress=False),
                   validation=(x[30:], y[30:]))
    assert (result.best_epoch, result.n_fit, result.n_val) == (0, 50, 20)
    assert result.selection.endswith("refitted on all training samples and the validation split")
    with torch.no_grad():
        expected = fit_probe(model.source_logits(x), y, 0, c=result.probe_c)
    head = LinearHead(source.num_classes, 2)
    head.load_probe(expected.coef, expected.intercept, expected.mean, expected.scale)
    assert torch.allclose(model.output_map.linear.weight, head.linear.weight, atol=1e-6)
    assert torch.allclose(model.output_map.linear.bias, head.linear.bias, atol=1e-6)


def test_one_trained_epoch_the_start_does_not_compete_with_is_kept_unscored(source, gunpoint):
    """Nothing is compared (epochs 1, start_competes False): the epoch is kept without reading the validation
    rows again; the start, read once, is scored as epoch 0."""
    from xmodal.maps import LinearHead

    x, y, _, _ = _encoded(gunpoint)
    model = Reprogrammer(SeriesToWaveform(seed=0), source, LinearHead(source.num_classes, 2))
    config = TrainConfig(epochs=1, head_init="probe", select_on="loss", start_competes=False, progress=False)
    result = train(model, x[:30], y[:30], config, validation=(x[30:], y[30:]))
    assert [record["epoch"] for record in result.history] == [0, 1]
    assert "val_loss" in result.history[0] and "val_loss" not in result.history[1]
    assert (result.best_epoch, result.val_loss) == (1, None)
    assert result.selection == "one trained epoch, kept unscored: the start does not compete"
    scored = train(Reprogrammer(SeriesToWaveform(seed=0), source, LinearHead(source.num_classes, 2)), x[:30], y[:30],
                   TrainConfig(epochs=2, head_init="probe", select_on="loss", start_competes=False, progress=False),
                   validation=(x[30:], y[30:]))
    assert all("val_loss" in record for record in scored.history)


def test_a_non_finite_loss_stops_the_fit_naming_the_learning_rate(source, gunpoint):
    """An lr so large that delta overflows: the loss turns NaN or infinite in the first steps."""
    x, y, _, _ = _encoded(gunpoint)
    model = Reprogrammer(SeriesToWaveform(seed=0, tanh_bound=False), source,
                         build_output_map("linear", source.num_classes, 2))
    with pytest.raises(DataError, match=r"the learning rate 1e\+30 is too large"):
        train(model, x[:16], y[:16], TrainConfig(epochs=2, lr=1e30, batch_size=8, val_fraction=0, progress=False))


def test_invalid_training_settings_are_refused():
    for bad in ({"epochs": -1}, {"batch_size": 0}, {"patience": 0}, {"lr": -0.1}, {"val_fraction": 1.0},
                {"select_on": "auc"}, {"head_init": "zeros"}, {"probe_c_rows": 1}):
        with pytest.raises(DataError):
            TrainConfig(**bad)
    with pytest.raises(DataError, match="'epochs' must be at least 0"):
        TrainConfig(epochs=-1)
    assert TrainConfig(epochs=0).epochs == 0  # the probe start (or the prepared map) alone


def test_a_probe_per_block_needs_column_ranges_of_the_features():
    features, targets = torch.randn(20, 6, generator=torch.Generator().manual_seed(0)), torch.arange(20) % 2
    assert fit_probe(features, targets, 0, blocks=((0, 2), (2, 6))).coef.shape == (1, 6)
    with pytest.raises(ValueError, match=r"blocks \(\(0, 2\), \(2, 7\)\) are not non-empty column ranges of the 6"):
        fit_probe(features, targets, 0, blocks=((0, 2), (2, 7)))


def test_c_chosen_on_a_sample_of_rows_then_the_probe_fitted_on_every_row():
    """c_rows: C is chosen by the same search on a stratified sample of that many rows, and the probe is the
    one fitted on every row at that C; with no more rows than c_rows the search runs on all of them."""
    from sklearn.model_selection import train_test_split

    generator = torch.Generator().manual_seed(2)
    features, targets = torch.randn(200, 8, generator=generator, dtype=torch.float64), torch.arange(200) % 2
    features[:, 0] += targets
    sampled = fit_probe(features, targets, 0, c_rows=60)
    sample, _ = train_test_split(np.arange(200), train_size=60, stratify=targets.numpy(), random_state=0)
    chosen = fit_probe(features[sample], targets[sample], 0).c
    assert sampled.c == chosen and sampled.cv_log_loss is None
    np.testing.assert_allclose(sampled.coef, fit_probe(features, targets, 0, c=chosen).coef)
    whole = fit_probe(features, targets, 0)
    every_row = fit_probe(features, targets, 0, c_rows=200)
    assert (every_row.c, every_row.cv_log_loss) == (whole.c, whole.cv_log_loss) and whole.cv_log_loss is not None


def test_c_is_chosen_on_every_row_where_no_stratified_sample_can_be_drawn():
    """A class of one row, or fewer rows left beside the sample than classes: no stratified sample exists,
    so c_rows falls back to choosing C on every row (as without it) instead of failing."""
    generator = torch.Generator().manual_seed(3)
    features = torch.randn(61, 8, generator=generator, dtype=torch.float64)
    singleton = torch.cat([torch.arange(60) % 2, torch.tensor([2])])
    crowded = torch.arange(61) % 3
    for targets, rows in ((singleton, 30), (crowded, 60)):
        whole, sampled = fit_probe(features, targets, 0), fit_probe(features, targets, 0, c_rows=rows)
        assert (sampled.c, sampled.cv_log_loss) == (whole.c, whole.cv_log_loss)
        np.testing.assert_allclose(sampled.coef, whole.coef)


def test_overlapping_blocks_average_each_blocks_own_probe():
    """A block inside another (a trained view's columns hold its start's): each block's probe is fitted
    alone and their logits averaged; columns of no block get no weight."""
    generator = torch.Generator().manual_seed(0)
    features, targets = torch.randn(40, 6, generator=generator, dtype=torch.float64), torch.arange(40) % 2
    features[:, 0] += 2 * targets
    blocks = ((0, 2), (0, 4))
    probe = fit_probe(features, targets, 0, blocks=blocks)
    alone = [fit_probe(features[:, start:end], targets, 0) for start, end in blocks]
    z = (features.numpy() - probe.mean) / probe.scale
    logits = z @ probe.coef.T + probe.intercept
    expected = np.mean([(features.numpy()[:, s:e] - a.mean) / a.scale @ a.coef.T + a.intercept
                        for (s, e), a in zip(blocks, alone)], axis=0)
    np.testing.assert_allclose(logits, expected, rtol=1e-9, atol=1e-9)
    assert not probe.coef[:, 4:].any() and probe.c == tuple(a.c for a in alone)


def test_a_block_listed_twice_counts_as_two_members_of_the_average():
    """The weight of a fused source's trained view (trained_view_weight): its block listed twice weighs
    twice in the average of logits, and has one C per listing."""
    generator = torch.Generator().manual_seed(1)
    features, targets = torch.randn(40, 6, generator=generator, dtype=torch.float64), torch.arange(40) % 2
    features[:, 3] += 2 * targets
    probe = fit_probe(features, targets, 0, blocks=((0, 2), (0, 4), (0, 4)))
    alone = [fit_probe(features[:, start:end], targets, 0) for start, end in ((0, 2), (0, 4))]
    logits = (features.numpy() - probe.mean) / probe.scale @ probe.coef.T + probe.intercept
    first, second = ((features.numpy()[:, :e] - a.mean) / a.scale @ a.coef.T + a.intercept
                     for e, a in zip((2, 4), alone))
    np.testing.assert_allclose(logits, (first + 2 * second) / 3, rtol=1e-9, atol=1e-9)
    assert probe.c == (alone[0].c, alone[1].c, alone[1].c)
