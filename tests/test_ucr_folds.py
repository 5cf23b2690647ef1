"""benchmarks/ucr_folds.py: real UCR training splits cut into the nested cross-validation's stratified folds,
written as UCR datasets the benchmark reads, and its runs on them pooled into out-of-fold accuracy."""

import json
import sys
from collections import Counter

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold

from tests.conftest import REPO, UCR
from xmodal.data.ucr import load_ucr
from xmodal.errors import DataError

sys.path.insert(0, str(REPO / "benchmarks"))
from ucr import find_datasets  # noqa: E402
from ucr_folds import fold_datasets, main, out_of_fold_accuracy  # noqa: E402

GUNPOINT = UCR / "GunPoint" / "GunPoint_TRAIN.tsv"


def test_folds_partition_the_training_split_stratified(tmp_path):
    """Every GunPoint training series is held out exactly once, as it was written; each fold's training split is
    the rest; every class is spread evenly; the benchmark finds the folds as datasets and loads them."""
    lines = GUNPOINT.read_text().splitlines()
    classes = Counter(line.split("\t")[0] for line in lines)  # 24 and 26 series
    folders = fold_datasets(GUNPOINT, tmp_path)
    assert [f.name for f in folders] == [f"GunPoint-fold{i}" for i in range(5)]
    held_out = []
    for folder in folders:
        test = (folder / f"{folder.name}_TEST.tsv").read_text().splitlines()
        train = (folder / f"{folder.name}_TRAIN.tsv").read_text().splitlines()
        assert sorted(train + test) == sorted(lines)
        counts = Counter(line.split("\t")[0] for line in test)
        for label, count in classes.items():
            assert counts[label] in (count // 5, -(-count // 5))  # stratified: a fifth, rounded either way
        held_out += test
    assert sorted(held_out) == sorted(lines)
    assert set(find_datasets([tmp_path])) == {f.name for f in folders}
    fold, whole = load_ucr(folders[0]), load_ucr(UCR / "GunPoint")
    assert len(fold.y_train) + len(fold.y_test) == len(whole.y_train)
    assert {tuple(row) for row in np.concatenate([fold.x_train, fold.x_test])} == {tuple(row) for row in whole.x_train}


def test_the_folds_are_the_nested_cross_validations(tmp_path):
    """The held-out series are those of docs/experiments.md's outer folds: StratifiedKFold(5, shuffle, seed 0)
    over the class codes of load_ucr's training labels."""
    whole = load_ucr(UCR / "GunPoint")
    y = np.unique(whole.y_train, return_inverse=True)[1]
    folders = fold_datasets(GUNPOINT, tmp_path)
    for folder, (_, held_out) in zip(folders, StratifiedKFold(5, shuffle=True, random_state=0).split(y, y)):
        test = load_ucr(folder).x_test
        assert np.array_equal(test, whole.x_train[held_out])


def test_folds_are_fewer_where_a_class_is_small_and_a_recut_replaces_them(tmp_path):
    """Beef has 5 classes of 6 training series: asked for 10 folds, it gets 6; cut again into 5, the sixth
    fold of the first cut is gone, so the benchmark would not score it."""
    beef = UCR / "Beef" / "Beef_TRAIN.tsv"
    assert len(fold_datasets(beef, tmp_path, folds=10)) == 6
    assert len(fold_datasets(beef, tmp_path, folds=5)) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"Beef-fold{i}" for i in range(5)]


def test_a_class_of_one_series_has_no_folds(tmp_path):
    train_file = tmp_path / "Tiny_TRAIN.tsv"
    train_file.write_text("1\t0.1\t0.2\n1.0\t0.3\t0.1\n2\t0.5\t0.4\n")  # 1 and 1.0: one class, as load_ucr reads
    assert fold_datasets(train_file, tmp_path / "out") == []
    assert not (tmp_path / "out").exists()


def test_the_command_cuts_names_the_skipped_and_refuses_in_one_line(tmp_path, capsys):
    data = tmp_path / "data"
    for name, text in (("Tiny", "1\t0.1\t0.2\n2\t0.3\t0.1\n2\t0.5\t0.4\n"),
                       ("Small", "".join(f"{i % 2}\t{i}\t{-i}\n" for i in range(8)))):
        (data / name).mkdir(parents=True)
        (data / name / f"{name}_TRAIN.tsv").write_text(text)
        (data / name / f"{name}_TEST.tsv").write_text("this test split is never read\n")
    main([str(data), "--out", str(tmp_path / "folds")])
    assert capsys.readouterr().out.strip() == (f"4 fold datasets of 1 training splits in {tmp_path / 'folds'}; "
                                               "no folds (a class with one training series): Tiny")
    with pytest.raises(SystemExit):
        main(["--folds", "1"])
    assert "--folds must be at least 2, got 1" in capsys.readouterr().err
    (data / "Ts").mkdir()
    (data / "Ts" / "Ts_TRAIN.ts").write_text("@problemName Ts\n")
    with pytest.raises(SystemExit):
        main([str(data), "--out", str(tmp_path / "other")])
    assert "only UCR tab-separated training files are cut into folds" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()  # refused before any fold was written


def test_out_of_fold_accuracy_pools_each_sets_folds(tmp_path, capsys):
    """Folds weighted by their size within a set, sets alike; a set counts only where every fold was run."""
    runs = [{"dataset": "A-fold0", "method": "m", "accuracy": 1.0, "n_test": 3},
            {"dataset": "A-fold1", "method": "m", "accuracy": 0.5, "n_test": 2},  # A: 4 of 5
            {"dataset": "B-fold0", "method": "m", "accuracy": 0.0, "n_test": 4},
            {"dataset": "B-fold1", "method": "m", "accuracy": 0.5, "n_test": 4},  # B: 2 of 8
            {"dataset": "A-fold0", "method": "n", "accuracy": 1.0, "n_test": 3}]  # n: A's fold 1 missing
    assert out_of_fold_accuracy(runs) == {"m": (pytest.approx((0.8 + 0.25) / 2), 2)}
    with pytest.raises(DataError, match="GunPoint is not a fold dataset"):
        out_of_fold_accuracy([{"dataset": "GunPoint", "method": "m", "accuracy": 1.0, "n_test": 3}])
    runs_file = tmp_path / "select_runs.jsonl"
    runs_file.write_text("".join(json.dumps(run) + "\n" for run in runs))
    main(["--score", str(runs_file)])
    assert capsys.readouterr().out.strip() == "m: 52.50 % out-of-fold accuracy, mean over 2 sets"
