"""Seeds and determinism: the seed is the only source of randomness.

For every task (and black-box training): the same seed gives bit-identical results on the
CPU whatever the caller's global random state, and fit, predict, save and load leave that
state (torch, numpy, Python's random) as it was. The seed is kept in the run, and `align`
rebuilds the untrained state from it.

Small real fits: Coffee (28 series), 32 AMP Scanner peptides, 200 German credit rows.
"""

import random

import numpy as np
import pytest
import torch

from tests.conftest import SHARED, UCR
from xmodal.cli.align import run_seed
from xmodal.cli.runs import Run, read_run
from xmodal.data.tables import load_table, split_table
from xmodal.data.ucr import load_ucr
from xmodal.estimators.sequence import SequenceClassifier
from xmodal.estimators.series import V2SClassifier
from xmodal.estimators.table import TableClassifier
from xmodal.metrics import fit_metrics
from xmodal.risk_bound import untrained

SEED = 11
# Settings that draw random numbers everywhere they can: dropout on delta (the global RNG,
# seeded in a fork), shuffled mini-batches, R2DL's random start, a randomly drawn head, the
# table bridge's perturbation, zeroth-order directions.
CASES = {
    "series": (V2SClassifier, {"preset": "tones", "epochs": 2, "batch_size": 8, "delta_dropout": 0.2}),
    "series-trained-view": (V2SClassifier, {"preset": "trained-view", "epochs": 2, "batch_size": 8}),
    "series-blackbox": (V2SClassifier, {"preset": "v2s", "epochs": 1, "batch_size": 8, "query_budget": 800}),
    "sequence": (SequenceClassifier, {"head": "linear", "epochs": 1, "sparsity": 8, "batch_size": 8, "init": "random",
                                      "head_init": "random"}),
    "table": (TableClassifier, {"mapping": "linear", "head_init": "random", "epochs": 2, "batch_size": 16}),
}
VARYING = {"fit_seconds", "peak_rss_mb"}  # metrics that measure the machine, not the model


@pytest.fixture(autouse=True, scope="module")
def two_threads():
    """Bit-identical results are promised for a given number of torch threads; two, so that
    an op whose result depends on how threads split the work shows (the backward of
    advanced indexing in the token bridge did, until it became F.embedding)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(amp):
    """case -> (X_train, y_train, X_test, y_test)."""
    coffee = load_ucr("Coffee", UCR)
    series = (coffee.x_train[:, None, :], coffee.y_train, coffee.x_test[:, None, :], coffee.y_test)
    rng = np.random.default_rng(0)
    train, test = rng.choice(len(amp.train), 32, replace=False), rng.choice(len(amp.test), 16, replace=False)
    german = load_table(SHARED / "data" / "tabular" / "german_credit_uci")
    small, _ = split_table(german, 0.8, seed=0)
    table_train, table_test = split_table(small, 0.3, seed=0)
    return {
        "series": series, "series-trained-view": series, "series-blackbox": series,
        "sequence": ([amp.train.sequences[i] for i in train], amp.train.labels[train],
                     [amp.test.sequences[i] for i in test], amp.test.labels[test]),
        "table": (table_train.features, table_train.labels, table_test.features, table_test.labels),
    }


def _estimator(case):
    cls, settings = CASES[case]
    return cls(**settings, random_state=SEED)


def _global_state():
    return torch.get_rng_state(), np.random.get_state(), random.getstate()


def _changed(before, after) -> list[str]:
    """Which of the global generators moved."""
    names = []
    if not torch.equal(before[0], after[0]):
        names.append("torch")
    if before[1][0] != after[1][0] or not np.array_equal(before[1][1], after[1][1]) or before[1][2:] != after[1][2:]:
        names.append("numpy")
    if before[2] != after[2]:
        names.append("random")
    return names


def _scramble_global_rng(seed: int) -> None:
    """A caller's own global random state, different per call: it must not matter."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    torch.rand(seed % 7 + 1), np.random.rand(seed % 5 + 1), random.random()


def _watched(moved: dict, name: str, action, *args):
    """action(*args), noting in moved[name] which global generators it moved."""
    before = _global_state()
    result = action(*args)
    moved[name] = _changed(before, _global_state())
    return result


@pytest.fixture(scope="module")
def first(data, tmp_path_factory):
    """case -> (fitted estimator, {step: the global generators it moved}, reloaded estimator):
    one fit, predict, save and load per case, the global state compared around each."""
    results = {}
    for case in CASES:
        x, y, x_test, _ = data[case]
        _scramble_global_rng(1)
        moved = {}
        estimator = _watched(moved, "fit", _estimator(case).fit, x, y)
        _watched(moved, "predict_proba", estimator.predict_proba, x_test)
        _watched(moved, "probe_predict_proba", estimator.probe_predict_proba, x_test)
        folder = _watched(moved, "save_pretrained", estimator.save_pretrained, tmp_path_factory.mktemp(case) / "run")
        reloaded = _watched(moved, "from_pretrained", type(estimator).from_pretrained, folder)
        _watched(moved, "predict after loading", reloaded.predict_proba, x_test)
        results[case] = estimator, moved, reloaded
    return results


@pytest.mark.parametrize("case", CASES)
def test_fit_predict_save_and_load_leave_the_global_random_state_as_it_was(case, first):
    _, moved, _ = first[case]
    assert {step: generators for step, generators in moved.items() if generators} == {}


@pytest.mark.parametrize("case", CASES)
def test_the_same_seed_gives_bit_identical_results_whatever_the_global_state(case, data, first):
    x, y, x_test, y_test = data[case]
    one, _, reloaded = first[case]
    _scramble_global_rng(2)  # another caller state than the first fit's
    two = _estimator(case).fit(x, y)
    assert one.seed_ == two.seed_ == SEED
    assert np.array_equal(one.predict_proba(x_test), two.predict_proba(x_test))
    probe_one, probe_two = one.probe_predict_proba(x_test), two.probe_predict_proba(x_test)
    assert (probe_one is None and probe_two is None) or np.array_equal(probe_one, probe_two)
    state_one, state_two = one.reprogrammer_.trainable_state(), two.reprogrammer_.trainable_state()
    assert state_one.keys() == state_two.keys()
    assert all(torch.equal(state_one[k], state_two[k]) for k in state_one)
    assert {k: v for k, v in one.fit_result_.to_dict().items() if k != "seconds"} == \
        {k: v for k, v in two.fit_result_.to_dict().items() if k != "seconds"}
    metrics = [{k: v for k, v in fit_metrics(e, "test", len(y), y_test, e.predict_proba(x_test),
                                             e.probe_predict_proba(x_test), 1.0).items() if k not in VARYING}
               for e in (one, two)]
    assert metrics[0] == metrics[1]
    if case == "series-blackbox":
        assert one.fit_result_.queries == two.fit_result_.queries > 0
    # the saved run predicts the same, bit for bit
    assert reloaded.seed_ == SEED and np.array_equal(reloaded.predict_proba(x_test), one.predict_proba(x_test))


def test_a_drawn_seed_is_kept_in_the_run(data, tmp_path):
    x, y, _, _ = data["series"]
    classifier = V2SClassifier("v2s", epochs=0).fit(x, y)  # random_state None: a seed is drawn once
    folder = classifier.save_pretrained(tmp_path / "run")
    assert read_run(folder).metadata["seed"] == classifier.seed_
    assert V2SClassifier.from_pretrained(folder).seed_ == classifier.seed_


def test_align_rebuilds_the_untrained_state_from_the_runs_seed(amp, tmp_path):
    """R2DL with a random start and a random head, not trained (epochs 0): the model is its own
    untrained state, which `untrained` must rebuild from the seed the run recorded."""
    picks = np.random.default_rng(1).choice(len(amp.train), 16, replace=False)
    x, y = [amp.train.sequences[i] for i in picks], amp.train.labels[picks]
    fitted = SequenceClassifier(head="linear", epochs=0, sparsity=4, init="random", head_init="random",
                                random_state=23).fit(x, y)
    folder = fitted.save_pretrained(tmp_path / "run")
    seed = run_seed(read_run(folder))
    assert seed == 23
    model = SequenceClassifier.from_pretrained(folder).reprogrammer_
    rebuilt, other = untrained(model, seed), untrained(model, 0)
    assert torch.equal(rebuilt.bridge.theta, fitted.reprogrammer_.bridge.theta)
    assert torch.equal(rebuilt.output_map.linear.weight, fitted.reprogrammer_.output_map.linear.weight)
    assert not torch.equal(other.bridge.theta, fitted.reprogrammer_.bridge.theta)


def test_a_run_without_a_seed_is_aligned_with_seed_0_and_says_so(tmp_path, capsys):
    assert run_seed(Run(tmp_path, "series", {"seed": 5}, {})) == 5
    assert capsys.readouterr().err == ""
    assert run_seed(Run(tmp_path, "series", {}, {})) == 0  # saved by an older xmodal
    note = capsys.readouterr().err
    assert "records no seed" in note and "rebuilt with seed 0" in note and len(note.strip().splitlines()) == 1
