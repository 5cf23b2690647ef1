"""The commands under load, on real UCR data: `predict` streams its input in batches (same
predictions as one read), eight `predict` processes on one run agree byte for byte, and an
interrupted `fit` leaves no run folder behind (and never touches the user's own)."""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from cli import main
from tests.conftest import REPO, UCR
from xmodal.data.inputs import iter_inputs, read_inputs
from xmodal.errors import DataError

GUNPOINT_TEST = UCR / "GunPoint" / "GunPoint_TEST.tsv"
SERIES_RUN = {"series_length": 150}


def _xmodal(*args, **options) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import sys; from cli import main; sys.exit(main(sys.argv[1:]))",
                             *args], cwd=options.pop("cwd", REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, **options)


# -- streamed inputs -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tsv", "npy"])
def test_batches_of_a_file_are_the_whole_file(tmp_path, kind):
    ids, whole = read_inputs("series", GUNPOINT_TEST, SERIES_RUN)
    path = GUNPOINT_TEST
    if kind == "npy":
        path = tmp_path / "gunpoint.npy"
        np.save(path, whole)
    batches = list(iter_inputs("series", path, SERIES_RUN, batch_size=7))
    assert [len(batch_ids) for batch_ids, _ in batches] == [7] * 21 + [3]
    assert [i for batch_ids, _ in batches for i in batch_ids] == ids
    np.testing.assert_array_equal(np.concatenate([x for _, x in batches]), whole)


def test_a_gap_in_a_later_batch_names_its_series_in_the_file(tmp_path):
    lines = GUNPOINT_TEST.read_text().splitlines()
    fields = lines[99].split("\t")
    fields[10] = ""
    lines[99] = "\t".join(fields)
    (tmp_path / "gap.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"gap.tsv: missing or infinite values in series 100 \(1 of them, first at "
                                        r"position 10: nan\)"):
        list(iter_inputs("series", tmp_path / "gap.tsv", SERIES_RUN, batch_size=16))


# -- one run, many predicts --------------------------------------------------------------


@pytest.fixture(scope="module")
def gunpoint_run(tmp_path_factory):
    """A GunPoint run fitted in seconds: the probe start, no training epoch."""
    out = tmp_path_factory.mktemp("runs") / "gunpoint"
    assert main(["fit", "series", "--preset", "tones", "--dataset", "GunPoint", "--data-dir", str(UCR),
                 "--epochs", "0", "--out", str(out), "--quiet"]) == 0
    return out


@pytest.mark.slow
def test_predict_in_small_batches_writes_the_same_csv(gunpoint_run, tmp_path, monkeypatch, capsys):
    import xmodal.cli.predict

    assert main(["predict", str(gunpoint_run), "--input", str(GUNPOINT_TEST), "--csv", str(tmp_path / "one.csv")]) == 0
    monkeypatch.setattr(xmodal.cli.predict, "BATCH_SIZE", 16)
    assert main(["predict", str(gunpoint_run), "--input", str(GUNPOINT_TEST), "--csv", str(tmp_path / "many.csv")]) == 0
    one, many = ((tmp_path / name).read_text().splitlines() for name in ("one.csv", "many.csv"))
    assert len(one) == len(many) == 151 and one[0] == many[0] == "id,prediction,p_1,p_2"
    # The same ids and classes; probabilities equal to the CSV's 6 decimals (a batch of 16 instead of 32
    # sums BC-ResNet's convolutions in another order: float noise can round the last digit the other way).
    rows_one, rows_many = ([line.split(",") for line in rows[1:]] for rows in (one, many))
    assert [row[:2] for row in rows_many] == [row[:2] for row in rows_one]
    np.testing.assert_allclose(np.array([row[2:] for row in rows_many], dtype=float),
                               np.array([row[2:] for row in rows_one], dtype=float), atol=1.5e-6, rtol=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many.csv", "one.csv"]  # no temporary file left
    assert "wrote 150 predictions for GunPoint_TEST.tsv" in capsys.readouterr().out


@pytest.mark.slow
def test_eight_concurrent_predicts_on_one_run_agree_byte_for_byte(gunpoint_run, tmp_path):
    processes = [_xmodal("predict", str(gunpoint_run), "--input", str(GUNPOINT_TEST), "--csv",
                         str(tmp_path / f"p{i}.csv")) for i in range(8)]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err.decode()
    outputs = {(tmp_path / f"p{i}.csv").read_bytes() for i in range(8)}
    assert len(outputs) == 1 and len(outputs.pop().splitlines()) == 151


# -- an interrupted fit ----------------------------------------------------------------------


def test_a_failed_or_interrupted_write_removes_only_the_folders_it_made(tmp_path, monkeypatch):
    from xmodal.cli.runs import run_folder

    for error in (KeyboardInterrupt, OSError):
        with pytest.raises(error), run_folder(tmp_path / "new" / "run", "GunPoint") as folder:
            assert folder.is_dir()
            (folder / "metrics.json").write_text("{")
            raise error
        assert not (tmp_path / "new").exists()
    own = tmp_path / "mine"
    own.mkdir()
    (own / "notes.txt").write_text("mine")
    with pytest.raises(KeyboardInterrupt), run_folder(own, "GunPoint") as folder:
        (folder / "metrics.json").write_text("{")
        raise KeyboardInterrupt
    assert [p.name for p in own.iterdir()] == ["notes.txt"]  # the user's folder and file stay, the run's go
    monkeypatch.chdir(tmp_path)
    with pytest.raises(KeyboardInterrupt), run_folder(None, "GunPoint") as folder:
        assert folder.parent.name == "runs" and folder.is_dir()
        raise KeyboardInterrupt
    assert not (tmp_path / "runs").exists()


def _interrupt_when_training(process: subprocess.Popen, timeout: float = 180) -> str:
    """SIGINT once the training's progress bar shows; the whole stderr."""
    seen = bytearray()

    def drain():
        while chunk := process.stderr.read1(4096):
            seen.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while b"fit:" not in seen:
        assert process.poll() is None, seen.decode()
        assert time.monotonic() < deadline, f"no training after {timeout} s: {seen.decode()}"
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    reader.join(timeout=10)
    return seen.decode()


@pytest.mark.slow
@pytest.mark.parametrize("own_folder", [False, True])
def test_an_interrupted_fit_exits_130_and_leaves_no_run(tmp_path, own_folder):
    out = []
    if own_folder:  # the user's own empty folder: kept, and left empty
        (tmp_path / "mine").mkdir()
        out = ["--out", str(tmp_path / "mine")]
    process = _xmodal("fit", "series", "--preset", "tones", "--dataset", "GunPoint", "--data-dir", str(UCR),
                      "--epochs", "500", "--patience", "500", *out, cwd=tmp_path)
    stderr = _interrupt_when_training(process)
    assert process.returncode == 130, stderr
    lines = [line.strip() for line in stderr.replace("\r", "\n").splitlines() if line.strip()]
    assert lines[-1] == "xmodal fit series: interrupted" and "Traceback" not in stderr
    assert not (tmp_path / "runs").exists()
    if own_folder:
        assert (tmp_path / "mine").is_dir() and not list((tmp_path / "mine").iterdir())
