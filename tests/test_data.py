"""UCR loading: by name, from folders and files, label encoding, and bad data."""

import numpy as np
import pytest

from tests.conftest import UCR
from xmodal.data.ucr import load_ucr, sktime_data_dir
from xmodal.errors import DataError


def test_ucr_2018_folder_layout(gunpoint):
    assert gunpoint.x_train.shape == (50, 150) and gunpoint.x_test.shape == (150, 150)
    assert gunpoint.classes == [1, 2] and gunpoint.source == str(UCR / "GunPoint")


def test_ecg200_minus_one_and_one_stay_two_classes():
    data = load_ucr("ECG200", UCR)
    assert data.classes == [-1, 1]
    assert set(np.unique(data.y_test)) == {-1, 1}


def test_numeric_labels_sort_numerically():
    assert load_ucr("SwedishLeaf", UCR).classes == list(range(1, 16))


def test_bundled_sktime_set_by_name_and_ts_file():
    data = load_ucr("ItalyPowerDemand")
    assert data.x_train.shape == (67, 24) and data.x_test.shape == (1029, 24)
    ts_file = sktime_data_dir() / "GunPoint" / "GunPoint_TRAIN.ts"
    from_file = load_ucr(str(ts_file))
    tsv = load_ucr("GunPoint", UCR)
    assert from_file.x_train.shape == tsv.x_train.shape
    assert np.allclose(from_file.x_train, tsv.x_train, atol=1e-5)  # same data, two formats


def _ragged_copy(tmp_path, cut_interior=False):
    """A UCR-layout copy of GunPoint with a shortened series (UCR pads it with NaN)."""
    folder = tmp_path / "Ragged"
    folder.mkdir()
    for split in ("TRAIN", "TEST"):
        lines = (UCR / "GunPoint" / f"GunPoint_{split}.tsv").read_text().splitlines()
        cells = lines[0].split("\t")
        if cut_interior:
            cells[10] = "NaN"
        else:
            cells[-20:] = ["NaN"] * 20
        lines[0] = "\t".join(cells)
        (folder / f"Ragged_{split}.tsv").write_text("\n".join(lines) + "\n")
    return folder


def test_variable_length_is_an_error_unless_resampled(tmp_path):
    folder = _ragged_copy(tmp_path)
    with pytest.raises(DataError, match="lengths vary.*unequal='resample'"):
        load_ucr(str(folder))
    data = load_ucr(str(folder), unequal="resample")
    assert data.x_train.shape == (50, 150) and np.isfinite(data.x_train).all()


def test_missing_values_are_an_error_unless_interpolated(tmp_path):
    folder = _ragged_copy(tmp_path, cut_interior=True)
    with pytest.raises(DataError, match="missing values.*interpolate"):
        load_ucr(str(folder))
    data = load_ucr(str(folder), missing="interpolate")
    row = data.x_train[0]
    assert np.isclose(row[9], (row[8] + row[10]) / 2)


def test_multivariate_data_is_refused():
    with pytest.raises(DataError, match="multivariate"):
        load_ucr("BasicMotions")


def test_unknown_dataset_lists_what_is_known():
    with pytest.raises(DataError, match="GunPoint"):
        load_ucr("NoSuchSet", UCR)
