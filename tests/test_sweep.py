"""`xmodal sweep` on Ray, with the real BC-ResNet and real UCR sets: the same numbers as the
fits run one by one, resumable after an interruption, failures recorded, a separate Ray
head reached by --address; and the config's checks (one line before any work)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import UCR
from xmodal.errors import DataError
from xmodal.sweep import config_from_dict, load_config, read_results, run_sweep

SMALL = ["Coffee", "GunPoint", "ItalyPowerDemand"]
XMODAL = str(Path(sys.executable).parent / "xmodal")


def _config(**changes) -> dict:
    return {"name": "t", "task": "series", "datasets": SMALL, "data_dir": str(UCR), "seeds": 2,
            "presets": ["tones", "v2s"], "settings": {"epochs": 1, "patience": 1}, **changes}


def _write(folder: Path, text: str) -> Path:
    path = folder / "sweep.toml"
    path.write_text(text)
    return path


# -- the config ----------------------------------------------------------------------------

def test_a_config_expands_to_datasets_x_methods_x_seeds(tmp_path):
    config = config_from_dict(_config(grid={"lr": [0.01, 0.001]}, baselines=["minirocket"],
                                      methods={"v2s-search": {"preset": "v2s", "search": "tiny"}}))
    assert list(config.methods) == ["tones[lr=0.01]", "tones[lr=0.001]", "v2s[lr=0.01]", "v2s[lr=0.001]", "minirocket",
                                    "v2s-search"]
    assert config.methods["tones[lr=0.001]"] == {"preset": "tones", "epochs": 1, "patience": 1, "lr": 0.001}
    assert config.methods["minirocket"] == {"baseline": "minirocket"}  # a baseline takes no settings
    assert config.methods["v2s-search"] == {"epochs": 1, "patience": 1, "preset": "v2s", "search": "tiny"}
    items = config.items()
    assert len(items) == 3 * 6 * 2 and len({item.key for item in items}) == len(items)
    assert len({item.folder_name for item in items}) == len(items)
    sizes = [item.cost for item in items]
    assert sizes == sorted(sizes, reverse=True)  # the largest dataset first


def test_a_folder_of_ucr_datasets_stands_for_all_of_them_and_yaml_reads_like_toml(tmp_path):
    toml = load_config(_write(tmp_path, f'task = "series"\ndatasets = ["{UCR}"]\npresets = ["tones"]\n'))
    assert len(toml.datasets) == len(list(UCR.glob("*/*_TRAIN.ts*"))) and toml.name == "sweep"
    yaml_file = tmp_path / "other.yaml"
    yaml_file.write_text(f"task: series\ndatasets: [{UCR}]\npresets: [best]\n")
    assert load_config(yaml_file).datasets == toml.datasets


@pytest.mark.parametrize("changes, message", [
    ({"task": "speech"}, "task must be one of"),
    ({"seed": 3}, "unknown keys ['seed']"),
    ({"datasets": ["NoSuchSet"]}, "NoSuchSet is not in data_dir"),
    ({"presets": ["bset"]}, "did you mean 'best'"),
    ({"settings": {"lr": -1}}, "lr"),
    ({"settings": {"learning_rate": 0.1}}, "['learning_rate'] are not series settings"),
    ({"baselines": ["rocket"]}, "NAME one of minirocket, probe"),
    ({"grid": {"lr": 0.1}}, "grid lr must be a non-empty list"),
    ({"seeds": 0}, "seeds must be a positive count"),
    ({"methods": {"s": {"preset": "v2s", "search": ["a"]}}}, "search must name a grid"),
    ({"methods": {"s": {"preset": "v2s", "search": "smal"}}}, "unknown search grid 'smal'"),
    ({"methods": {"s": {"preset": "tones", "search": "small"}}}, "search with --preset v2s"),
    ({"methods": {"tones": {"preset": "v2s"}}}, "two methods are named tones"),
    ({"data": {"label_column": "y"}}, "--label-column is a flag of xmodal fit sequence and xmodal fit table"),
])
def test_a_bad_config_is_refused_in_one_line_before_any_work(changes, message):
    with pytest.raises(DataError) as error:
        config_from_dict(_config(**changes))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_config_file_that_is_not_toml_names_the_file(tmp_path):
    path = _write(tmp_path, "task = series\n")
    with pytest.raises(DataError, match="is not valid TOML"):
        load_config(path)
    done = subprocess.run([XMODAL, "sweep", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "not valid TOML" in done.stderr


# -- on Ray ---------------------------------------------------------------------------------

def _one_by_one(tmp_path: Path, config) -> dict:
    """Each item as a user runs it: `xmodal fit series ...` in this process, one thread."""
    from cli import main
    from xmodal.sweep.item import fit_argv

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        accuracies = {}
        for item in config.items():
            folder = tmp_path / "one-by-one" / item.folder_name
            assert main(fit_argv(item, folder)) == 0
            metrics = json.loads((folder / "metrics.json").read_text())
            accuracies[item.key] = (metrics["test_accuracy"], metrics["probe_test_accuracy"], metrics["val_accuracy"])
        return accuracies
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_a_sweep_on_local_ray_gives_the_numbers_of_the_fits_run_one_by_one(tmp_path):
    config = config_from_dict(_config())  # 3 datasets x 2 presets x 2 seeds
    outcome = run_sweep(config, tmp_path / "sweep", workers=2, progress=False)
    assert not outcome.failed and len(outcome.finished) == 12
    records = read_results(tmp_path / "sweep" / "results.jsonl")
    swept = {(r["dataset"], r["method"], r["seed"], json.dumps(r["settings"], sort_keys=True)):
             (r["accuracy"], r["probe_test_accuracy"], r["val_accuracy"]) for r in records}
    assert swept == _one_by_one(tmp_path, config)
    for record in records:  # every item is a run folder that `xmodal evaluate` takes
        assert (Path(record["run"]) / "reprogrammer.json").is_file()
    assert len({r["accuracy"] for r in records}) > 1  # not one number everywhere
    again = run_sweep(config, tmp_path / "sweep", workers=2, progress=False)
    assert again.skipped == 12 and not again.finished  # finished items are never run twice


def _wait_for_lines(path: Path, count: int, process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(read_results(path)) >= count:
            return
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.5)
    raise AssertionError(f"{path} did not reach {count} lines in {timeout} s")


@pytest.mark.slow
def test_an_interrupted_sweep_resumes_where_it_stopped(tmp_path):
    text = (f'task = "series"\ndatasets = ["GunPoint"]\ndata_dir = "{UCR}"\nseeds = 6\npresets = ["tones"]\n'
            '[settings]\nepochs = 1\npatience = 1\n')
    path, out = _write(tmp_path, text), tmp_path / "out"
    command = [XMODAL, "sweep", str(path), "--out", str(out), "--workers", "1", "--quiet"]
    # SIGINT back to its default in the child: an ignored SIGINT is inherited (some earlier test
    # of the suite leaves it ignored in pytest's process), and Ctrl-C would then be lost.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_for_lines(out / "results.jsonl", 1, process, timeout=300)
        process.send_signal(signal.SIGINT)  # Ctrl-C while the next items run
        process.wait(timeout=120)
    finally:
        process.kill()
    first = read_results(out / "results.jsonl")
    assert 1 <= len(first) < 6
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{len(first)} already done" in done.stdout
    final = read_results(out / "results.jsonl")
    assert sorted(r["seed"] for r in final) == list(range(6))  # each item once
    assert final[: len(first)] == first  # the finished ones untouched
    assert (out / "sweep.md").is_file() and (out / "sweep.csv").is_file()


@pytest.mark.slow
def test_a_failing_item_is_recorded_with_its_error_line_and_the_others_finish(tmp_path):
    data = tmp_path / "data"
    for name in ("Coffee", "Broken"):
        (data / name).mkdir(parents=True)
        for part in ("TRAIN", "TEST"):
            lines = (UCR / "Coffee" / f"Coffee_{part}.tsv").read_text().splitlines()
            if name == "Broken" and part == "TEST":
                lines[0] = "\t".join(lines[0].split("\t")[:5] + ["NaN"] + lines[0].split("\t")[6:])
            (data / name / f"{name}_{part}.tsv").write_text("\n".join(lines) + "\n")
    config = config_from_dict({"task": "series", "datasets": [str(data)], "presets": ["tones"],
                               "settings": {"epochs": 1}})
    outcome = run_sweep(config, tmp_path / "out", workers=2, progress=False)
    assert [r["dataset"] for r in outcome.finished] == ["Coffee"]
    [failure] = outcome.failed
    assert failure["dataset"] == "Broken" and failure["attempts"] == 2
    assert "missing values" in failure["error"] and "\n" not in failure["error"]
    assert json.loads((tmp_path / "out" / "failures.jsonl").read_text())["error"] == failure["error"]
    [broken] = [item for item in config.items() if item.dataset == "Broken"]
    assert not (tmp_path / "out" / "items" / broken.folder_name / "reprogrammer.json").exists()  # no half run


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_a_sweep_runs_on_a_separate_ray_head_given_by_address(tmp_path):
    """A Ray head of its own (`ray start --head --block`, its own temp folder), stopped by
    signalling its process group: never `ray stop`, which would stop every Ray on the machine."""
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="xr", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    # Token authentication off for this private head and its client: with it on, Ray 2.60's `ray start`
    # and a client can disagree on the token, depending on what earlier Ray sessions left behind.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    head = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
                             "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2",
                             "--include-dashboard", "false", "--temp-dir", temp],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert head.poll() is None and time.monotonic() < deadline, "the Ray head did not start"
            time.sleep(1)
        text = (f'task = "series"\ndatasets = ["Coffee", "GunPoint"]\ndata_dir = "{UCR}"\npresets = ["tones"]\n'
                'baselines = ["minirocket"]\n[settings]\nepochs = 1\n')
        out = tmp_path / "out"
        done = subprocess.run([XMODAL, "sweep", str(_write(tmp_path, text)), "--out", str(out), "--address",
                               f"127.0.0.1:{port}", "--quiet"], capture_output=True, text=True, timeout=600, env=env)
        assert done.returncode == 0, done.stderr
        records = read_results(out / "results.jsonl")
        assert sorted((r["dataset"], r["method"]) for r in records) == [
            ("Coffee", "minirocket"), ("Coffee", "tones"), ("GunPoint", "minirocket"), ("GunPoint", "tones")]
        assert "wins / ties / losses vs minirocket" in (out / "sweep.md").read_text()
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def test_an_item_asking_for_more_than_any_node_has_is_refused_at_once(tmp_path):
    config = config_from_dict(_config(seeds=1, presets=["tones"], datasets=["Coffee"]))
    with pytest.raises(DataError, match="no Ray node has 1 CPUs and 1 GPUs"):
        run_sweep(config, tmp_path, workers=1, gpus_per_item=1, progress=False)


def test_an_unreachable_cluster_is_one_line(tmp_path):
    config = config_from_dict(_config(seeds=1, presets=["tones"], datasets=["Coffee"]))
    with pytest.raises(DataError, match="cannot reach the Ray cluster"):
        run_sweep(config, tmp_path, address=f"127.0.0.1:{_free_port()}", progress=False)


# -- the search on Ray Tune -----------------------------------------------------------------

@pytest.mark.slow
def test_the_search_on_ray_tune_scores_the_candidates_as_the_local_search_does():
    from xmodal.data.ucr import load_ucr
    from xmodal.estimators.series import V2SClassifier

    data = load_ucr(UCR / "Coffee")
    X = data.x_train[:, None, :]
    grid = [{"mapping": mapping, "epochs": 2} for mapping in ("frequency", "linear", "blm")]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a Tune trial of one CPU: the same seed gives the same bits per thread count
    try:
        fitted = {backend: V2SClassifier("v2s", search=grid, search_backend=backend, random_state=0).fit(
            X, data.y_train) for backend in ("local", "ray")}
    finally:
        torch.set_num_threads(threads)
    local, tuned = (fitted[b].search_result_ for b in ("local", "ray"))
    assert tuned.scores == local.scores and tuned.best_index == local.best_index
    assert tuned.method == local.method + " on Ray Tune"
    x_test = data.x_test[:, None, :]
    np.testing.assert_array_equal(fitted["ray"].predict_proba(x_test), fitted["local"].predict_proba(x_test))
