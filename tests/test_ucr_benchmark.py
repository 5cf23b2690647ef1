"""benchmarks/ucr.py: its help, and the summary statistics on a hand-made table."""

import subprocess
import sys

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

from ucr_summary import (  # noqa: E402
    complete_datasets,
    mean_accuracy,
    mean_rank,
    ranks,
    wins_ties_losses,
)

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
    assert mean_rank(TABLE, ["v2s", "rocket", "c"], ["D1", "D2"]) == pytest.approx({"v2s": 1.75, "rocket": 2.25, "c": 2.0})
    assert wins_ties_losses(TABLE, "v2s", "rocket", both) == (1, 1, 1)
    assert wins_ties_losses(TABLE, "c", "rocket", ["D1", "D2"]) == (1, 0, 1)


def test_aggregation_and_summary_over_seeds():
    from ucr import aggregate, summary

    runs = [{"dataset": "D1", "method": m, "seed": s, "accuracy": a, "fit_seconds": 1.0, "n_train": 10, "n_test": 5,
             "n_classes": 2} for m, s, a in [("v2s", 0, 0.6), ("v2s", 1, 0.8), ("minirocket", 0, 0.7)]]
    rows = {r["method"]: r for r in aggregate(runs)}
    assert rows["v2s"]["accuracy_mean"] == pytest.approx(0.7)
    assert rows["v2s"]["accuracy_std"] == pytest.approx(0.1) and rows["v2s"]["n_seeds"] == 2
    stats = summary(list(rows.values()))
    assert stats["vs_minirocket"]["v2s"] == (0, 1, 0) and stats["datasets_complete"] == ["D1"]


def test_a_method_that_did_not_finish_every_set_is_summarised_apart():
    from ucr import summary

    runs = [("D1", "minirocket", 0.9), ("D2", "minirocket", 0.7), ("D3", "minirocket", 0.8),
            ("D1", "best", 0.8), ("D2", "best", 0.8), ("D3", "best", 0.8), ("D1", "zoo-crepe-full", 0.95)]
    rows = [{"dataset": d, "method": m, "accuracy_mean": a} for d, m, a in runs]
    stats = summary(rows)
    assert stats["summarised_methods"] == ["best", "minirocket"] and stats["datasets_complete"] == ["D1", "D2", "D3"]
    assert stats["vs_minirocket"]["best"] == (1, 1, 1)
    assert stats["partial"]["zoo-crepe-full"] == {"datasets": 1, "mean_accuracy": 0.95,
                                                  "minirocket_mean_accuracy": 0.9, "vs_minirocket": (1, 0, 0)}


def test_help_names_the_modes():
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "ucr.py"), "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    for option in ("--quick", "--seeds", "--workers", "--report-only", "minirocket"):
        assert option in done.stdout


def test_report_reads_only_the_runs_made_with_the_current_settings():
    from ucr import aggregate, current_runs, method_settings

    now = method_settings("full", "v2s-attrnn")
    assert now["preset"] == "v2s"  # a method is a preset and what it changes
    runs = [{"dataset": "D1", "method": "v2s-attrnn", "seed": 0, "settings": settings, "accuracy": accuracy,
             "fit_seconds": 1.0, "n_train": 10, "n_test": 5, "n_classes": 2}
            for settings, accuracy in [({**now, "epochs": now["epochs"] + 1}, 0.5), (now, 0.9)]]
    runs.append({**runs[1], "method": "minirocket", "settings": {}, "accuracy": 0.95})
    kept, superseded = current_runs(runs, "full")
    assert superseded == 1
    rows = {r["method"]: r for r in aggregate(kept)}
    assert rows["v2s-attrnn"]["accuracy_mean"] == 0.9 and rows["v2s-attrnn"]["n_seeds"] == 1
    assert rows["minirocket"]["accuracy_mean"] == 0.95
