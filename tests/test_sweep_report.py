"""xmodal.sweep.report and .summary: the statistics on hand-made tables; benchmarks/ucr.py's help."""

import subprocess
import sys

import pytest

from tests.conftest import REPO
from xmodal.sweep.report import against_probe, aggregate, markdown, summarise
from xmodal.sweep.summary import complete_datasets, mean_accuracy, mean_rank, ranks, wins_ties_losses

# Three datasets, three methods; "c" is missing on D3.
TABLE = {
    "D1": {"v2s": 0.90, "rocket": 0.80, "c": 0.70},
    "D2": {"v2s": 0.50, "rocket": 0.50, "c": 0.90},
    "D3": {"v2s": 0.60, "rocket": 0.70},
}


def test_ranks_share_ties():
    assert ranks({"a": 0.9, "b": 0.5, "c": 0.5, "d": 0.1}) == {"a": 1.0, "b": 2.5, "c": 2.5, "d": 4.0}


def test_statistics_on_a_hand_made_table():
    assert complete_datasets(TABLE, ["v2s", "rocket", "c"]) == ["D1", "D2"]
    both = complete_datasets(TABLE, ["v2s", "rocket"])
    assert mean_accuracy(TABLE, ["v2s", "rocket"], both) == pytest.approx({"v2s": 2.0 / 3, "rocket": 2.0 / 3})
    # D1: v2s 1, rocket 2; D2: tie, 1.5 each; D3: rocket 1, v2s 2
    assert mean_rank(TABLE, ["v2s", "rocket"], both) == pytest.approx({"v2s": 4.5 / 3, "rocket": 4.5 / 3})
    # on D1, D2 with all three: D1 ranks v2s 1, rocket 2, c 3; D2 ranks c 1, v2s and rocket 2.5
    assert mean_rank(TABLE, ["v2s", "rocket", "c"], ["D1", "D2"]) == pytest.approx(
        {"v2s": 1.75, "rocket": 2.25, "c": 2.0})
    assert wins_ties_losses(TABLE, "v2s", "rocket", both) == (1, 1, 1)
    assert wins_ties_losses(TABLE, "c", "rocket", ["D1", "D2"]) == (1, 0, 1)


def _run(dataset, method, seed, accuracy, **extra):
    return {"dataset": dataset, "method": method, "seed": seed, "accuracy": accuracy, "fit_seconds": 1.0,
            "n_train": 10, "n_test": 5, "n_classes": 2, "epochs_run": 5, **extra}


def test_aggregation_and_summary_over_seeds():
    runs = [_run("D1", m, s, a) for m, s, a in [("v2s", 0, 0.6), ("v2s", 1, 0.8), ("minirocket", 0, 0.7)]]
    rows = {r["method"]: r for r in aggregate(runs)}
    assert rows["v2s"]["accuracy_mean"] == pytest.approx(0.7)
    assert rows["v2s"]["accuracy_std"] == pytest.approx(0.1) and rows["v2s"]["n_seeds"] == 2
    stats = summarise(list(rows.values()), ["v2s", "minirocket"], "minirocket")
    assert stats["vs_reference"]["v2s"] == (0, 1, 0) and stats["datasets_complete"] == ["D1"]


def test_a_method_that_did_not_finish_every_set_is_summarised_apart():
    runs = [("D1", "minirocket", 0.9), ("D2", "minirocket", 0.7), ("D3", "minirocket", 0.8),
            ("D1", "best", 0.8), ("D2", "best", 0.8), ("D3", "best", 0.8), ("D1", "zoo-crepe-full", 0.95)]
    rows = [{"dataset": d, "method": m, "accuracy_mean": a, "n_seeds": 1 + (m == "best"), "fit_seconds_mean": 2.0}
            for d, m, a in runs]
    stats = summarise(rows, ["best", "minirocket", "zoo-crepe-full"], "minirocket")
    assert stats["summarised_methods"] == ["best", "minirocket"] and stats["datasets_complete"] == ["D1", "D2", "D3"]
    # one seed of every complete set, and the fewest seeds of any of them
    assert stats["fit_seconds_all_sets"] == {"best": 6.0, "minirocket": 6.0} and stats["seeds"]["best"] == 2
    assert stats["vs_reference"]["best"] == (1, 1, 1)
    assert stats["partial"]["zoo-crepe-full"] == {"datasets": 1, "mean_accuracy": 0.95,
                                                  "reference_mean_accuracy": 0.9, "vs_reference": (1, 0, 0)}


def test_trained_reprogramming_is_weighed_against_its_probe_start():
    runs = [_run("D1", "best", 0, 0.80, probe_test_accuracy=0.70, reprogramming_kept=True),
            _run("D1", "best", 1, 0.70, probe_test_accuracy=0.70, reprogramming_kept=False),
            _run("D2", "best", 0, 0.50, probe_test_accuracy=0.60, reprogramming_kept=False),
            _run("D1", "minirocket", 0, 0.9)]
    summary = against_probe(runs, "best")
    # D1: mean difference +0.05 (above); D2: -0.10 (below)
    assert summary == {"fits": 3, "kept_on_validation": 1, "fits_compared_on_validation": 3, "datasets": 2,
                       "datasets_above_probe_on_test": 1, "mean_test_difference": pytest.approx(-0.025)}
    assert against_probe(runs, "minirocket") is None  # a baseline has no probe start
    untrained = [{**run, "epochs_run": 0} for run in runs]
    assert against_probe(untrained, "best") is None  # a probe alone (epochs 0) did not try to beat itself
    rows = aggregate(runs)
    text = markdown(rows, summarise(rows, ["best", "minirocket"], "minirocket", runs), "t")
    assert "| best | 1 of 3 | 1 of 2 | -2.50 |" in text


def test_ucr_help_names_the_modes():
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "ucr.py"), "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    for option in ("--quick", "--seeds", "--workers", "--address", "--report-only", "minirocket"):
        assert option in done.stdout


def test_ucr_methods_are_valid_sweep_methods():
    """Every method of the benchmark, in both modes, passes the sweep's checks (presets, settings, baselines)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from ucr import METHOD_SETTINGS, QUICK_DATASETS, find_datasets, sweep_config

    from tests.conftest import UCR

    datasets = {name: path for name, path in find_datasets([UCR]).items() if name in QUICK_DATASETS}
    for mode, methods in METHOD_SETTINGS.items():
        config = sweep_config("check", datasets, list(methods), 2, mode)
        assert len(config.items()) == len(datasets) * len(methods) * 2
