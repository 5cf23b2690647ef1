"""Prediction inputs (xmodal.data.inputs.read_inputs): every format of every task on real
data, and each kind of bad file refused with one DataError naming the file."""

import re

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SHARED, UCR
from xmodal.data.inputs import read_inputs
from xmodal.data.tables import read_german_credit
from xmodal.data.ucr import load_ucr, sktime_data_dir
from xmodal.errors import DataError

GUNPOINT_TEST = UCR / "GunPoint" / "GunPoint_TEST.tsv"
SERIES_RUN = {"series_length": 150}
AMP = SHARED / "data" / "peptides" / "amp_scanner_v2_veltri2018"
GERMAN = SHARED / "data" / "tabular" / "german_credit_uci"


@pytest.fixture(scope="module")
def gunpoint_test():
    return load_ucr("GunPoint", UCR).x_test  # (150, 150)


@pytest.fixture(scope="module")
def german():
    return read_german_credit(GERMAN)


def refused(path, match: str):
    """pytest.raises for a DataError whose message names `path` and matches `match`."""
    return pytest.raises(DataError, match=rf"(?s){re.escape(str(path))}.*{match}")


# --- series -------------------------------------------------------------------------------

def test_labelled_ucr_tsv_drops_the_label_column(gunpoint_test):
    ids, x = read_inputs("series", GUNPOINT_TEST, SERIES_RUN)
    assert x.shape == (150, 150) and x.dtype == np.float64
    assert ids == [str(i) for i in range(1, 151)]
    np.testing.assert_array_equal(x, gunpoint_test)


def test_unlabelled_tsv_and_csv_with_and_without_header(tmp_path, gunpoint_test):
    x = gunpoint_test[:5]
    np.savetxt(tmp_path / "plain.tsv", x, delimiter="\t", fmt="%.17g")
    np.savetxt(tmp_path / "plain.csv", x, delimiter=",", fmt="%.17g")
    named = pd.DataFrame(x, columns=[f"t{i}" for i in range(150)])
    named.to_csv(tmp_path / "named.csv", index=False)
    pd.DataFrame(x).to_csv(tmp_path / "pandas_default.csv", index=False)  # header 0,1,...,149
    labelled = pd.DataFrame(x).assign(label=["a", "b", "a", "b", "a"])[["label", *range(150)]]
    labelled.to_csv(tmp_path / "labelled.csv", index=False, header=False)
    for name in ("plain.tsv", "plain.csv", "named.csv", "pandas_default.csv", "labelled.csv"):
        ids, read = read_inputs("series", tmp_path / name, SERIES_RUN)
        assert ids == ["1", "2", "3", "4", "5"], name
        np.testing.assert_allclose(read, x, err_msg=name)


def test_ts_file_labelled_and_unlabelled(tmp_path):
    ts = sktime_data_dir() / "GunPoint" / "GunPoint_TEST.ts"
    ids, x = read_inputs("series", ts, SERIES_RUN)
    assert x.shape == (150, 150) and len(ids) == 150
    np.testing.assert_allclose(x, load_ucr("GunPoint", UCR).x_test, atol=1e-5)  # same data, two formats
    body = "\n".join(",".join(f"{v:g}" for v in row) for row in x[:3])
    (tmp_path / "bare.ts").write_text("@problemName bare\n@timeStamps false\n@univariate true\n"
                                      f"@equalLength true\n@seriesLength 150\n@classLabel false\n@data\n{body}\n")
    ids, bare = read_inputs("series", tmp_path / "bare.ts", SERIES_RUN)
    assert ids == ["1", "2", "3"]
    np.testing.assert_allclose(bare, x[:3], rtol=1e-5)


def test_npy_two_and_three_dimensional(tmp_path, gunpoint_test):
    np.save(tmp_path / "flat.npy", gunpoint_test[:4].astype(np.float32))
    np.save(tmp_path / "panel.npy", gunpoint_test[:4, None, :])
    for name in ("flat.npy", "panel.npy"):
        ids, x = read_inputs("series", tmp_path / name, SERIES_RUN)
        assert x.shape == (4, 150) and x.dtype == np.float64 and ids == ["1", "2", "3", "4"]
        np.testing.assert_allclose(x, gunpoint_test[:4], rtol=1e-6)


def test_bad_series_files(tmp_path, gunpoint_test):
    x = gunpoint_test[:3]
    cases = {}

    def case(name, content, match):
        path = tmp_path / name
        if isinstance(content, np.ndarray):
            np.save(path, content)
        else:
            path.write_text(content)
        cases[path] = match

    case("empty.tsv", "", "empty")
    case("blank.csv", "\n\n", "no series")
    case("wrong.txt", "1,2,3\n", r"must be a \.tsv")
    rows = [",".join(map(str, r)) for r in x]
    case("ragged.csv", "\n".join([rows[0], rows[1].rsplit(",", 1)[0] + ",1,2", rows[2].rsplit(",", 1)[0]]), "ragged")
    case("short.csv", "\n".join(",".join(map(str, r[:100])) for r in x), "length 150")
    case("nan.csv", "\n".join([rows[0], rows[1].replace(",", ",nan,", 1).rsplit(",", 1)[0]]), "missing")
    case("gap.tsv", "\t".join(["1"] + [""] + ["0.5"] * 149), "missing")
    case("word.csv", "\n".join([rows[0], rows[1].replace(",", ",abc,", 1).rsplit(",", 1)[0]]), "'abc' is not a number")
    case("commas.tsv", "\n".join(rows), "tab-separated")
    case("flat.npy", x[0], "2-D")
    case("channels.npy", np.stack([x, x], axis=1), "2 channels")
    case("short.npy", x[:, :100], "length 100")
    case("nan.npy", np.where(np.arange(150) == 7, np.nan, x), "missing")
    case("text.npy", np.array([["a"] * 150]), "numbers")
    case("broken.npy", "not an array", "readable")
    case("nodata.ts", "@problemName x\n@classLabel false\n", "@data")
    case("multi.ts", "@classLabel false\n@data\n" + rows[0] + ":" + rows[1] + "\n", "univariate")
    case("ragged.ts", "@classLabel false\n@data\n" + rows[0] + "\n" + rows[1].rsplit(",", 1)[0] + "\n", "ragged")
    for path, match in cases.items():
        with refused(path, match):
            read_inputs("series", path, SERIES_RUN)
    with refused(tmp_path / "absent.tsv", "no such file"):
        read_inputs("series", tmp_path / "absent.tsv", SERIES_RUN)
    with refused(tmp_path, "not a file"):
        read_inputs("series", tmp_path, SERIES_RUN)


def test_unknown_task():
    with pytest.raises(DataError, match="unknown task 'image'"):
        read_inputs("image", GUNPOINT_TEST, SERIES_RUN)


# --- sequences ----------------------------------------------------------------------------

def test_fasta_ids_from_headers():
    ids, sequences = read_inputs("sequence", AMP / "AMP.te.fa", {})
    assert len(ids) == len(sequences) == 712 and len(set(ids)) == len(ids)
    assert all(isinstance(s, str) and s for s in sequences)
    first_header = (AMP / "AMP.te.fa").read_text().splitlines()[0]
    assert first_header[1:].split()[0] == ids[0]


def test_sequence_csv_columns_and_ids(tmp_path):
    _, amp = read_inputs("sequence", AMP / "AMP.te.fa", {})
    pd.DataFrame({"id": ["p1", "p2", "p3"], "Sequence": amp[:3], "label": [1, 0, 1]}).to_csv(tmp_path / "a.csv", index=False)
    assert read_inputs("sequence", tmp_path / "a.csv", {}) == (["p1", "p2", "p3"], amp[:3])
    pd.DataFrame({"peptide": amp[:3]}).to_csv(tmp_path / "only.csv", index=False)
    assert read_inputs("sequence", tmp_path / "only.csv", {}) == (["1", "2", "3"], amp[:3])
    bbbp = SHARED / "data" / "molecules" / "bbbp.csv"
    ids, smiles = read_inputs("sequence", bbbp, {})
    assert ids[:2] == ["1", "2"] and smiles[0] == pd.read_csv(bbbp)["smiles"][0].strip()


def test_bad_sequence_files(tmp_path):
    cases = {"empty.fasta": ("", "empty"), "notfasta.fa": ("just text\n", "as FASTA"),
             "two.csv": ("a,b\nAC,GT\n", "which column"), "header.csv": ("sequence\n", "no records"),
             "blank.csv": ("id,sequence\nx,ACD\ny,\n", "empty 'sequence' cells .*line 3"),
             "noid.csv": ("id,sequence\n,ACD\n", "empty 'id'"), "seq.txt": ("ACD\n", r"must be a \.fa")}
    for name, (content, match) in cases.items():
        (tmp_path / name).write_text(content)
        with refused(tmp_path / name, match):
            read_inputs("sequence", tmp_path / name, {})


# --- tables -------------------------------------------------------------------------------

def _table_run(german):
    return {"columns": list(german.features.columns), "label_column": "class"}


def test_table_csv_drops_label_and_extra_columns(tmp_path, german):
    frame = german.features.head(20).copy()
    frame.insert(0, "customer", [f"c{i}" for i in range(20)])
    frame["class"] = german.labels[:20]
    frame = frame[["class", *reversed(frame.columns.drop("class"))]]  # another column order
    frame.to_csv(tmp_path / "rows.csv")  # with pandas' index: an unnamed column
    ids, table = read_inputs("table", tmp_path / "rows.csv", _table_run(german))
    assert ids == [str(i) for i in range(1, 21)]
    assert list(table.columns) == list(german.features.columns)
    pd.testing.assert_frame_equal(table, german.features.head(20).reset_index(drop=True), check_dtype=False)
    assert table["duration_months"].dtype == float and table["purpose"].dtype == object


def test_bad_table_files(tmp_path, german):
    run = _table_run(german)
    german.features.head(5).drop(columns=["age_years", "purpose"]).to_csv(tmp_path / "cols.csv", index=False)
    with refused(tmp_path / "cols.csv", r"missing the columns \['purpose', 'age_years'\]"):
        read_inputs("table", tmp_path / "cols.csv", run)
    holes = german.features.head(5).copy()
    holes.loc[3, "credit_amount"] = np.nan
    holes.to_csv(tmp_path / "holes.csv", index=False)
    with refused(tmp_path / "holes.csv", r"\['credit_amount'\] \(first on line 5\)"):
        read_inputs("table", tmp_path / "holes.csv", run)
    assert np.isnan(read_inputs("table", tmp_path / "holes.csv", {**run, "missing": "impute"})[1]["credit_amount"][3])
    german.features.head(0).to_csv(tmp_path / "header.csv", index=False)
    with refused(tmp_path / "header.csv", "no rows"):
        read_inputs("table", tmp_path / "header.csv", run)
    for name, content, match in (("empty.csv", "", "empty"), ("blank.csv", "\n\n", "no CSV rows"),
                                 ("table.tsv", "a\tb\n", r"must be a \.csv")):
        (tmp_path / name).write_text(content)
        with refused(tmp_path / name, match):
            read_inputs("table", tmp_path / name, run)
