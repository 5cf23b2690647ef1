"""The xmodal command: parsers per task, run folders, errors and exit codes, and
`fit series` / `evaluate` / `predict` / `align` on a real run (ItalyPowerDemand)."""

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cli import main
from tests.conftest import REPO, UCR
from xmodal.cli.arguments import shown
from xmodal.metrics import SCHEMA
from xmodal.presets import DEFAULT_PRESET, PRESETS, get_preset
from xmodal.settings import SETTINGS


def _xmodal(*args):
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, cwd=REPO, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def _error_line(capsys) -> str:
    """The one line a failed command prints (and nothing else on stderr that says error)."""
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if line]
    errors = [line for line in lines if "error" in line]
    assert errors == lines[-1:], lines  # the last line, and the only one that says error
    return lines[-1]


# -- parsers -------------------------------------------------------------------------


@pytest.mark.parametrize("task, flag, value", [
    ("sequence", "--query-budget", "5"),   # black-box is a series / table setting
    ("sequence", "--encoding", "onehot"),  # a table (and series) setting
    ("series", "--alphabet", "protein"),   # a sequence setting
    ("table", "--resample", None),         # a series data flag
    ("series", "--split", "scaffold"),     # a sequence data flag
])
def test_a_flag_of_another_task_exits_2(task, flag, value, capsys):
    extra = [flag] + ([value] if value else [])
    assert main(["fit", task, "--dataset", "x", *extra]) == 2
    err = capsys.readouterr().err
    assert f"xmodal fit {task}: error: unrecognized arguments: {flag}" in err and "is a flag of xmodal fit" in err


def test_the_old_task_flag_is_gone(capsys):
    assert main(["fit", "--task", "series", "--dataset", "GunPoint"]) == 2
    assert "unrecognized arguments: --task (the task is a word: xmodal fit series|sequence|table)" in \
        capsys.readouterr().err


def test_a_setting_out_of_range_is_an_argparse_error(capsys):
    assert main(["fit", "series", "--preset", "tones", "--dataset", "x", "--epochs", "-1"]) == 2
    assert "argument --epochs: 'epochs' must be at least 0, got -1" in capsys.readouterr().err
    assert main(["fit", "table", "--dataset", "x", "--test-size", "1.5"]) == 2
    assert "argument --test-size: the test share must be in (0, 1), got 1.5" in capsys.readouterr().err


@pytest.mark.parametrize("task", list(SETTINGS))
def test_each_task_help_lists_its_settings_with_the_best_preset_defaults(task, capsys):
    assert main(["fit", task, "--help"]) == 0
    # argparse wraps lines, long names after a hyphen (efficientnet-\n lite0)
    text = " ".join(re.sub(r"(\w-)\n\s+", r"\1", capsys.readouterr().out).split())
    best = get_preset(task, DEFAULT_PRESET).settings
    for name, setting in SETTINGS[task].items():
        assert setting.flag in text
        assert f"(default: {shown(best[name])} in preset {DEFAULT_PRESET})" in text
    others = {s.flag for t in SETTINGS if t != task for s in SETTINGS[t].values()} - {
        s.flag for s in SETTINGS[task].values()}
    assert not [flag for flag in others if f" {flag} " in text]
    if task == "series":
        assert "--masked, --no-masked" in text and "(default: 0 in preset best)" in text  # epochs: a probe


def test_presets_lists_every_preset_with_its_figure(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for (task, name), preset in PRESETS.items():
        assert f"{task} {name}" in out and f"xmodal fit {task} --preset {name}" in out
        assert preset.figure.split()[0] in out
    assert main(["presets", "--task", "table"]) == 0
    out = capsys.readouterr().out
    assert "table best" in out and "series" not in out.split(":")[0]


@pytest.mark.parametrize("command", [[], ["fit"], ["fit", "series"], ["fit", "sequence"], ["fit", "table"],
                                     ["evaluate"], ["predict"], ["align"], ["presets"], ["sources"], ["datasets"],
                                     ["predict-source"], ["synthesize-words"]])
def test_help_everywhere(command, capsys):
    assert main([*command, "--help"]) == 0
    assert "usage: xmodal" in capsys.readouterr().out


def test_help_and_presets_do_not_load_torch():
    code = ("import sys; from cli import main; main(['presets']); main(['fit', 'series', '--help']); "
            "main(['evaluate', '--help']); print('torch' in sys.modules, 'sklearn' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False)
    assert done.returncode == 0 and done.stdout.strip().endswith("False False")


# -- errors and exit codes -----------------------------------------------------------


def test_an_unexpected_exception_is_reported_as_a_bug_with_exit_70(monkeypatch, capsys):
    import xmodal.cli.presets

    def broken(args):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(xmodal.cli.presets, "run_presets", broken)
    assert main(["presets"]) == 70
    line = _error_line(capsys)
    assert line.startswith("xmodal presets: internal error (a bug in xmodal): RuntimeError: boom second line; "
                           "the traceback is in ")
    trace = Path(line.rsplit("the traceback is in ", 1)[1])
    assert trace.is_file() and "Traceback" in trace.read_text() and "boom" in trace.read_text()
    trace.unlink()


def test_interrupted_exits_130(monkeypatch, capsys):
    import xmodal.cli.presets

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(xmodal.cli.presets, "run_presets", interrupted)
    assert main(["presets"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_a_mistyped_dataset_name_gets_did_you_mean(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "series", "--preset", "tones", "--dataset", "ItalyPowerDemnd", "--data-dir", str(UCR),
                 "--out", str(out)]) == 1
    line = _error_line(capsys)
    assert line.startswith("xmodal fit series: error: ") and "did you mean 'ItalyPowerDemand'?" in line
    # case: sktime's bundled set
    assert main(["fit", "series", "--preset", "tones", "--dataset", "gunpoint", "--out", str(out)]) == 1
    assert "did you mean 'GunPoint'?" in _error_line(capsys)
    assert not out.exists()


def test_a_mistyped_path_gets_did_you_mean(tmp_path, capsys):
    (tmp_path / "credit.csv").write_text("a,label\n1,x\n2,y\n")
    assert main(["fit", "table", "--dataset", str(tmp_path / "credt.csv"), "--label-column", "label"]) == 1
    assert f"did you mean '{tmp_path / 'credit.csv'}'?" in _error_line(capsys)


def test_search_needs_the_waveform_preset_before_any_data_is_read(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "series", "--preset", "tones", "--dataset", "NoSuchSet", "--search", "tiny",
                 "--out", str(out)]) == 1
    line = _error_line(capsys)
    assert line.startswith("xmodal fit series: error: --search places the series as waveform samples")
    assert "search with --preset v2s" in line and "NoSuchSet" not in line
    assert main(["fit", "series", "--dataset", "NoSuchSet", "--preset", "v2s", "--search", "tiny",
                 "--out", str(out)]) == 1  # the v2s preset passes the check and reaches the data
    assert "NoSuchSet" in _error_line(capsys)
    assert not out.exists()


def test_predict_refuses_an_existing_csv_unless_overwrite(tmp_path, capsys):
    target = tmp_path / "predictions.csv"
    target.write_text("mine\n")
    assert main(["predict", str(tmp_path / "no-run"), "--csv", str(target)]) == 1
    assert _error_line(capsys) == (f"xmodal predict: error: --csv {target} already exists; pass --overwrite to "
                                   "replace it, or give another file")
    assert target.read_text() == "mine\n"
    assert main(["predict", str(tmp_path / "no-run"), "--csv", str(target), "--overwrite"]) == 1
    assert "not a saved reprogrammer" in _error_line(capsys)  # past the check: the run is read
    assert main(["predict", str(tmp_path / "no-run"), "--csv", str(tmp_path)]) == 1
    assert "is a folder, not a file" in _error_line(capsys)


def test_an_unknown_baseline_names_the_tasks_baselines(tmp_path, capsys):
    from xmodal.baselines import BASELINES

    assert main(["fit", "series", "--preset", "tones", "--dataset", "GunPoint", "--baseline", "minirocket,rocket",
                 "--out", str(tmp_path / "r")]) == 1
    assert f"unknown series baseline 'rocket'; the series baselines are {', '.join(BASELINES['series'])}" \
        in _error_line(capsys)
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_user_errors_in_a_subprocess_are_one_line_without_traceback(tmp_path):
    for args, message in [
        (["fit", "series", "--dataset", "GunPoint", "--source", "nope"], "unknown source model"),
        (["evaluate", str(tmp_path / "no-run")], "not a saved reprogrammer"),
        (["predict-source", "/no/file.wav"], "does not exist"),
        (["fit", "series", "--dataset", "GunPoint", "--preset", "v2s", "--encoding", "pitch"], "--no-masked"),
    ]:
        done = _xmodal(*args)
        assert done.returncode == 1, (args, done.stderr)
        assert "Traceback" not in done.stderr
        errors = [line for line in done.stderr.strip().splitlines() if "error" in line]
        assert len(errors) == 1 and message in errors[0], (args, done.stderr)


# -- fit's printout --------------------------------------------------------------------


def _fitted(epochs=3, epochs_run=3, best_epoch=2, probe_c=1.0, start=True, stopped_by="epochs", n_val=10,
            kept="auto"):
    """A stand-in for a fitted estimator: what fit's verdict reads of it."""
    from types import SimpleNamespace

    competed = start and n_val > 0 and not stopped_by.startswith("no validation part")
    history = ([{"epoch": 0}] if competed else []) + [{"epoch": e} for e in range(1, epochs_run + 1)]
    if kept == "auto":
        kept = best_epoch > 0 if competed else None
    result = SimpleNamespace(probe_c=probe_c, start_state={} if start else None, stopped_by=stopped_by,
                             epochs_run=epochs_run, best_epoch=best_epoch, n_val=n_val, history=history,
                             queries=500, reprogramming_kept=kept, beside_start=False)
    return SimpleNamespace(fit_result_=result, settings_={"epochs": epochs})


@pytest.mark.parametrize("fitted, start_row, verdict", [
    (_fitted(), "probe (start)", "reprogramming kept: trained epochs beat the probe on validation (best epoch 2 of 3)"),
    (_fitted(best_epoch=0), "probe (start)",
     "the start won: the model is the probe (no trained epoch of 3 beat it on validation)"),
    (_fitted(probe_c=None, best_epoch=0), "start (θ untrained)",
     "the start won: the model is untrained θ with its label map (no trained epoch of 3 beat it"),
    (_fitted(probe_c=None), "start (θ untrained)", "reprogramming kept: trained epochs beat the start (θ untrained)"),
    (_fitted(probe_c=None, start=False), None, "trained 3 epochs; best epoch 2 on validation"),
    (_fitted(epochs=0, epochs_run=0, best_epoch=0), "probe (start)",
     "no training (epochs 0): the model is the probe start"),
    (_fitted(epochs=0, epochs_run=0, best_epoch=0, probe_c=(0.1, 1.0)), "probe (start)",
     "no training (epochs 0): the model is the probe start (a probe of each of the 2 sources, averaged)"),
    (_fitted(epochs=0, epochs_run=0, best_epoch=0, probe_c=None), "start (θ untrained)",
     "no training (epochs 0): the model is the start (θ untrained)"),
    (_fitted(epochs=0, epochs_run=0, best_epoch=0, probe_c=None, start=False), None,
     "no training (epochs 0): the model is the untrained random head"),
    (_fitted(epochs_run=0, best_epoch=0, n_val=0, stopped_by="no validation part: the probe is the model"),
     "probe (start)", "no training: there is no validation part to show that trained epochs beat the probe"),
    (_fitted(stopped_by="budget"), "probe (start)",
     "(best epoch 2 of 3); training stopped by the query budget (500 queries)"),
    (_fitted(epochs_run=0, best_epoch=0, stopped_by="budget"), "probe (start)",
     "no training: the query budget ran out before the first batch"),
])
def test_fit_names_the_start_and_says_what_training_did(fitted, start_row, verdict):
    from xmodal.cli.fit import _start_label, _verdict

    line = _verdict(fitted)
    assert verdict in line
    assert ("the model is the probe" in line) == (fitted.fit_result_.probe_c is not None and
                                                  ("won" in line or "no validation" in line or "epochs 0" in line))
    if fitted.fit_result_.start_state is None:  # a random head: no start row, no word about a start
        assert "start" not in line and "probe" not in line
    if start_row is not None:
        assert _start_label(fitted.fit_result_) == start_row


# -- run folders ---------------------------------------------------------------------


def test_new_run_folders_are_unique(tmp_path, monkeypatch):
    from xmodal.cli.runs import new_run_folder

    monkeypatch.chdir(tmp_path)
    first, second = new_run_folder("Gun Point", when=0), new_run_folder("Gun Point", when=0)
    assert first.parent == second.parent == Path("runs") and first != second
    assert first.name.startswith("Gun_Point-1970") and second.name == first.name + "-2"


def test_json_is_written_atomically(tmp_path):
    from xmodal.cli.runs import write_json

    write_json(tmp_path / "m.json", {"a": np.float64(0.5), "b": np.arange(2)})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 0.5, "b": [0, 1]}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temporary file left


# -- a real series run ---------------------------------------------------------------


@pytest.fixture(scope="module")
def series_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "italy"
    code = main(["fit", "series", "--preset", "tones", "--dataset", "ItalyPowerDemand", "--data-dir", str(UCR),
                 "--out", str(out),
                 "--epochs", "1", "--seed", "1", "--quiet", "--plot", "--baseline", "probe"])
    assert code == 0
    return out


@pytest.mark.slow
def test_fit_writes_the_metrics_schema_first(series_run):
    metrics = json.loads((series_run / "metrics.json").read_text())
    assert list(metrics)[: len(SCHEMA)] == list(SCHEMA)
    assert metrics["task"] == "series" and metrics["dataset"] == "ItalyPowerDemand" and metrics["seed"] == 1
    assert metrics["preset"] == "tones" and metrics["settings"]["epochs"] == 1
    assert metrics["settings"] == {**get_preset("series", "tones").settings, "epochs": 1}
    assert (metrics["n_train"], metrics["n_test"]) == (67, 1029) and metrics["n_val"] > 0
    for key in ("test_accuracy", "test_roc_auc", "probe_test_accuracy", "probe_val_accuracy", "val_accuracy"):
        assert 0 <= metrics[key] <= 1
    assert isinstance(metrics["reprogramming_kept"], bool) and metrics["history"][0]["epoch"] == 0
    assert set(metrics["baselines"]) == {"probe"} and 0.5 <= metrics["baselines"]["probe"]["test_accuracy"] <= 1
    assert metrics["data"]["series_length"] == 24 and metrics["data"]["data_dir"] == str(UCR.resolve())
    saved = json.loads((series_run / "reprogrammer.json").read_text())["metadata"]
    assert saved["task"] == "series" and saved["data"] == metrics["data"]
    for picture in ("learning_curve.png", "confusion_matrix.png"):
        assert (series_run / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_fit_prints_probe_and_model_side_by_side(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "series", "--preset", "tones", "--dataset", "ItalyPowerDemand", "--data-dir", str(UCR),
                 "--out", str(out), "--epochs", "0", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "probe (start)" in printed and "reprogrammed" in printed and "ROC-AUC" in printed
    assert "no training (epochs 0): the model is the probe start" in printed
    assert f"run saved in {out}" in printed


@pytest.mark.slow
def test_without_out_a_new_run_folder_is_made(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "series", "--preset", "tones", "--dataset", "ItalyPowerDemand", "--data-dir", str(UCR),
                 "--epochs", "0",
                 "--quiet"]) == 0
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("ItalyPowerDemand-") and (folder / "metrics.json").is_file()
    assert f"run saved in runs/{folder.name}" in capsys.readouterr().out


@pytest.mark.slow
def test_an_existing_run_is_refused_and_left_byte_identical(series_run, capsys):
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in series_run.iterdir()}
    assert main(["fit", "series", "--preset", "tones", "--dataset", "ItalyPowerDemand", "--data-dir", str(UCR),
                 "--out", str(series_run),
                 "--epochs", "0", "--quiet"]) == 1
    assert "already exists and is not empty; pass --overwrite" in _error_line(capsys)
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in series_run.iterdir()} == before


@pytest.mark.slow
def test_overwrite_replaces_the_run_and_drops_its_stale_files(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "learning_curve.png").write_bytes(b"old")
    (out / "notes.txt").write_text("mine")
    assert main(["fit", "series", "--preset", "tones", "--dataset", "ItalyPowerDemand", "--data-dir", str(UCR),
                 "--out", str(out), "--epochs", "0", "--quiet", "--overwrite"]) == 0
    weights = json.loads((out / "reprogrammer.json").read_text())["weights_file"]
    assert {p.name for p in out.iterdir()} == {"metrics.json", "notes.txt", "reprogrammer.json", weights}


@pytest.mark.slow
def test_evaluate_defaults_to_the_recorded_dataset_and_matches_the_fit(series_run, capsys):
    assert main(["evaluate", str(series_run)]) == 0
    report = json.loads(capsys.readouterr().out)
    metrics = json.loads((series_run / "metrics.json").read_text())
    assert report["task"] == "series" and report["dataset"] == "ItalyPowerDemand" and report["n"] == 1029
    assert report["accuracy"] == metrics["test_accuracy"] and report["roc_auc"] == metrics["test_roc_auc"]


@pytest.mark.slow
def test_predict_a_split_and_new_unlabelled_series(series_run, tmp_path, capsys):
    target = tmp_path / "train.csv"
    assert main(["predict", str(series_run), "--split", "train", "--csv", str(target)]) == 0
    rows = list(csv.DictReader(target.open()))
    assert len(rows) == 67 and list(rows[0]) == ["id", "label", "prediction", "p_1", "p_2"]

    lines = (UCR / "ItalyPowerDemand" / "ItalyPowerDemand_TEST.tsv").read_text().splitlines()[:5]
    new = tmp_path / "new.tsv"
    new.write_text("\n".join(line.split("\t", 1)[1] for line in lines) + "\n")  # no labels
    target = tmp_path / "new.csv"
    assert main(["predict", str(series_run), "--input", str(new), "--csv", str(target)]) == 0
    rows = list(csv.DictReader(target.open()))
    assert len(rows) == 5 and list(rows[0]) == ["id", "prediction", "p_1", "p_2"]
    assert all(abs(float(r["p_1"]) + float(r["p_2"]) - 1) < 1e-5 and r["prediction"] in ("1", "2") for r in rows)
    capsys.readouterr()
    assert main(["predict", str(series_run), "--input", str(new), "--split", "test", "--csv", str(target)]) == 1
    assert "--split applies to a dataset split" in _error_line(capsys)


@pytest.mark.slow
def test_data_that_does_not_fit_the_run_is_refused_in_one_line(series_run, tmp_path, capsys):
    assert main(["evaluate", str(series_run), "--dataset", "GunPoint"]) == 1
    line = _error_line(capsys)
    assert line == (f"xmodal evaluate: error: {series_run} was fitted on ItalyPowerDemand (length 24); GunPoint has "
                    "length 150: score a dataset of the run's kind")
    for command in (["predict", str(series_run), "--csv", str(tmp_path / "p.csv")],
                    ["align", str(series_run), "--source-samples", str(tmp_path / "none.npy")]):
        assert main([*command, "--dataset", "GunPoint"]) == 1
        assert "GunPoint has length 150: score a dataset of the run's kind" in _error_line(capsys)
    assert not (tmp_path / "p.csv").exists()
    assert main(["evaluate", str(series_run), "--dataset", "GunPoint", "--resample"]) == 1  # never stretched to fit
    line = _error_line(capsys)
    assert "--resample applies only to the run's own dataset" in line and "GunPoint" in line
    assert main(["evaluate", str(series_run), "--resample"]) == 0  # its own dataset: as at fit time
    capsys.readouterr()

    other = tmp_path / "Other"  # the run's length, a class it never saw
    other.mkdir()
    rows = "\n".join(f"{label}\t" + "\t".join(str(v) for v in np.sin(np.arange(24) + i))
                     for i, label in enumerate([1, 3, 1, 3]))
    for split in ("TRAIN", "TEST"):
        (other / f"Other_{split}.tsv").write_text(rows + "\n")
    assert main(["evaluate", str(series_run), "--dataset", str(other)]) == 1
    assert "labels [3] were not seen by this run (fitted on ItalyPowerDemand)" in _error_line(capsys)

    assert main(["evaluate", str(series_run), "--label-column", "y"]) == 1
    assert "--label-column does not apply to a series run" in _error_line(capsys)


@pytest.mark.slow
def test_align_a_series_run_on_precomputed_representations(series_run, tmp_path, capsys):
    points = tmp_path / "logits.npy"
    np.save(points, np.random.default_rng(0).normal(size=(30, 35)))
    report_file = tmp_path / "align.json"
    assert main(["align", str(series_run), "--source-samples", str(points), "--method", "sliced",
                 "--json", str(report_file)]) == 0
    report = json.loads(report_file.read_text())
    assert report["task"] == "series" and report["dataset"] == "ItalyPowerDemand" and report["n_target"] == 1029


def test_sources_and_datasets_listings(capsys):
    assert main(["sources"]) == 0
    assert "bc-resnet-gsc35" in capsys.readouterr().out
    assert main(["datasets", "--data-dir", str(UCR)]) == 0
    out = capsys.readouterr().out
    assert "ItalyPowerDemand" in out and "Strawberry" in out


@pytest.mark.slow
def test_a_run_saved_from_python_needs_its_dataset_named(tmp_path, capsys):
    from xmodal.data.ucr import load_ucr
    from xmodal.estimators.series import V2SClassifier

    data = load_ucr("ItalyPowerDemand", UCR)
    model = V2SClassifier("tones", epochs=0, random_state=0).fit(data.x_train[:, None, :], data.y_train)
    model.save_pretrained(tmp_path / "r")
    assert main(["evaluate", str(tmp_path / "r")]) == 1
    assert "does not record its dataset" in _error_line(capsys)
    assert main(["evaluate", str(tmp_path / "r"), "--dataset", "ItalyPowerDemand", "--data-dir", str(UCR)]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 1029
