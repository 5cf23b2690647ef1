"""`xmodal align` and `xmodal synthesize-words` on a real run, real speech and real data."""

import json

import numpy as np
import pytest

from cli import main
from tests.conftest import UCR

REPORT_KEYS = ("method", "w1_before", "w1_after", "source_risk", "target_risk", "bound", "bound_holds")


def _error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if line]
    errors = [line for line in lines if "error" in line]
    assert errors == lines[-1:], lines
    return lines[-1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Voice2Series on Coffee: a label map on the source's logits, the theorem's setting."""
    out = tmp_path_factory.mktemp("runs") / "coffee"
    assert main(["fit", "series", "--preset", "v2s", "--dataset", "Coffee", "--data-dir", str(UCR), "--out", str(out),
                 "--epochs", "3", "--quiet"]) == 0
    return out


@pytest.mark.slow
def test_align_prints_a_table_and_writes_json_and_a_png(run_dir, speech_samples, tmp_path, capsys):
    report_file, plot_file = tmp_path / "align.json", tmp_path / "align.png"
    assert main(["align", str(run_dir), "--source-samples", str(speech_samples), "--json", str(report_file),
                 "--plot", str(plot_file)]) == 0  # the dataset and its folder come from the run
    table = capsys.readouterr().out
    assert "after training: bound holds" in table and "Coffee (test split)" in table
    report = json.loads(report_file.read_text())
    assert all(key in report for key in REPORT_KEYS) and report["task"] == "series"
    assert report["method"] == "exact" and report["n_source"] == 73 and report["n_target"] == 28
    assert report["bound"] == pytest.approx(report["source_risk"] + report["slack_after"])
    assert report["bound_holds"] == (report["target_risk"] <= report["bound"])
    assert plot_file.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot_file.stat().st_size > 20_000


@pytest.mark.slow
def test_precomputed_representations_give_distances_without_a_bound(run_dir, tmp_path, capsys):
    points = tmp_path / "source_logits.npy"
    np.save(points, np.random.default_rng(0).normal(size=(50, 35)))
    report_file = tmp_path / "align.json"
    assert main(["align", str(run_dir), "--source-samples", str(points), "--method", "sliced",
                 "--json", str(report_file)]) == 0
    assert "no source risk, so no bound" in capsys.readouterr().err
    report = json.loads(report_file.read_text())
    assert report["method"] == "sliced" and report["bound"] is None and report["source_risk"] is None


@pytest.mark.slow
def test_representations_of_the_wrong_dimension_are_refused(run_dir, tmp_path, capsys):
    points = tmp_path / "features.npy"
    np.save(points, np.zeros((10, 64)))
    assert main(["align", str(run_dir), "--source-samples", str(points)]) == 1
    assert "dimension 64 but target points 35" in _error_line(capsys)


@pytest.mark.slow
@pytest.mark.parametrize("arguments, message", [
    (["--source-samples", "nowhere"], "source samples nowhere do not exist"),
    (["--source-samples", ".", "--dataset", "GunPoint"],
     "fitted on Coffee (length 286); GunPoint has length 150: score a dataset of the run's kind"),
])
def test_align_errors_are_one_line(run_dir, arguments, message, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert main(["align", str(run_dir), *arguments]) == 1
    assert message in _error_line(capsys)


def test_align_without_a_run_says_how_to_make_one(tmp_path, capsys):
    assert main(["align", str(tmp_path), "--source-samples", str(tmp_path)]) == 1
    assert "run `xmodal fit series|sequence|table --out FOLDER` first" in _error_line(capsys)


def test_synthesize_words_writes_labelled_wavs(tmp_path, capsys):
    assert main(["synthesize-words", str(tmp_path / "words"), "--words", "yes", "no", "--voices", "en-us",
                 "--quiet"]) == 0
    assert sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "words").rglob("*.wav")) == [
        "words/no/en-us_140.wav", "words/yes/en-us_140.wav"]


def test_synthesize_words_names_a_bad_voice(tmp_path, capsys):
    assert main(["synthesize-words", str(tmp_path), "--words", "yes", "--voices", "xx-nonsense", "--quiet"]) == 1
    assert "espeak-ng failed for 'yes' in voice 'xx-nonsense'" in _error_line(capsys)


def test_synthesize_words_refuses_bad_speeds(tmp_path, capsys):
    assert main(["synthesize-words", str(tmp_path), "--words", "yes", "--speeds", "fast", "--quiet"]) == 1
    assert "--speeds 'fast'" in _error_line(capsys)


@pytest.mark.slow
def test_a_sequence_run_aligns_its_peptides_with_english_sentences(tmp_path, capsys):
    """R2DL: the frozen MiniLM's features of reprogrammed peptides against its features of real English."""
    from tests.conftest import AMP_SCANNER
    from xmodal.data.sequences import read_fasta

    folder = tmp_path / "amp"
    folder.mkdir()
    for label in ("AMP", "DECOY"):
        for split, n in (("tr", 16), ("te", 6)):
            ids, sequences = read_fasta(AMP_SCANNER / f"{label}.{split}.fa")
            (folder / f"{label}.{split}.fa").write_text("".join(f">{i}\n{s}\n" for i, s in zip(ids[:n], sequences[:n])))
    run = tmp_path / "run"
    assert main(["fit", "sequence", "--dataset", str(folder), "--out", str(run), "--epochs", "1",
                 "--head", "linear", "--sparsity", "5", "--quiet"]) == 0
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("The cat sat on the mat.\nProteins fold into shapes.\nIt rained all day in town.\n"
                         "She bought bread and milk.\nThe river runs to the sea.\n")
    capsys.readouterr()
    assert main(["align", str(run), "--source-samples", str(sentences)]) == 1
    assert "no logits; use --representation features" in _error_line(capsys)
    report_file = tmp_path / "align.json"
    assert main(["align", str(run), "--source-samples", str(sentences), "--representation", "features",
                 "--json", str(report_file)]) == 0
    report = json.loads(report_file.read_text())
    assert report["task"] == "sequence" and report["n_source"] == 5 and report["n_target"] == 12
    assert report["representation"] == "features"
    assert report["w1_before"] > 0 and report["w1_after"] > 0 and report["bound"] is None
    assert 0 <= report["target_risk"] <= 2 ** 0.5
