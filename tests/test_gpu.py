"""The three tasks on a CUDA GPU, end to end: fit on the GPU, predict, save, load on the CPU
(and on the GPU) with the same predictions to float tolerance, the caller's random state
(CPU and GPU) left as it was; and the speed-up of a fit against the CPU, printed.

Skipped without CUDA. Run alone with `python -m pytest -s tests/test_gpu.py` to see the
timings (they are printed whatever -s says).
"""

import random
import time

import numpy as np
import pytest
import torch

from tests.conftest import SHARED, UCR
from xmodal.data.tables import load_table, split_table
from xmodal.data.ucr import load_ucr
from xmodal.estimators.sequence import SequenceClassifier
from xmodal.estimators.series import V2SClassifier
from xmodal.estimators.table import TableClassifier

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

TASKS = ("series", "sequence", "table")
CLASSES = {"series": V2SClassifier, "sequence": SequenceClassifier, "table": TableClassifier}
# Short fits that still train every part: the best presets with a few epochs.
SHORT = {"series": {"preset": "tones", "epochs": 3, "delta_dropout": 0.1},
         # float32: bfloat16 kernels round differently on a GPU and a CPU, by far more than the tolerance
         "sequence": {"head": "linear", "epochs": 1, "sparsity": 16, "batch_size": 16, "precision": "float32"},
         "table": {"mapping": "linear", "head_init": "random", "epochs": 3}}
TOLERANCE = 1e-4  # GPU and CPU kernels round differently: the same model, not the same bits


@pytest.fixture(scope="module")
def data(amp):
    """task -> (X_train, y_train, X_test)."""
    gunpoint = load_ucr("GunPoint", UCR)
    picks = np.random.default_rng(0).choice(len(amp.train), 96, replace=False)
    german = load_table(SHARED / "data" / "tabular" / "german_credit_uci")
    train, test = split_table(german, 0.3, seed=0)
    return {
        "series": (gunpoint.x_train[:, None, :], gunpoint.y_train, gunpoint.x_test[:, None, :]),
        "sequence": ([amp.train.sequences[i] for i in picks], amp.train.labels[picks], list(amp.test.sequences[:64])),
        "table": (train.features, train.labels, test.features),
    }


def _fit(task, data, device):
    x, y, _ = data[task]
    return CLASSES[task](**SHORT[task], device=device, random_state=0).fit(x, y)


def _random_state():
    return (torch.get_rng_state(), torch.cuda.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())


@pytest.mark.parametrize("task", TASKS)
def test_fit_on_the_gpu_predict_save_and_load_on_the_cpu(task, data, tmp_path):
    _, _, x_test = data[task]
    before = _random_state()
    on_gpu = _fit(task, data, "cuda")
    after = _random_state()
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])  # CPU and GPU generators
    assert np.array_equal(before[2], after[2]) and before[3] == after[3]
    model = on_gpu.reprogrammer_
    assert model.device.type == "cuda" and all(p.device.type == "cuda" for p in model.parameters())
    probabilities = on_gpu.predict_proba(x_test)
    assert probabilities.shape == (len(x_test), 2) and np.allclose(probabilities.sum(axis=1), 1)
    probe = on_gpu.probe_predict_proba(x_test)
    assert probe is None or probe.shape == probabilities.shape
    folder = on_gpu.save_pretrained(tmp_path / task)
    on_cpu = CLASSES[task].from_pretrained(folder, device="cpu")
    assert on_cpu.reprogrammer_.device.type == "cpu"
    assert np.allclose(on_cpu.predict_proba(x_test), probabilities, atol=TOLERANCE)
    again = CLASSES[task].from_pretrained(folder, device="cuda")
    assert again.reprogrammer_.device.type == "cuda"
    assert np.allclose(again.predict_proba(x_test), probabilities, atol=1e-6)


@pytest.mark.parametrize("task", TASKS)
def test_a_cpu_run_loads_on_the_gpu(task, data, tmp_path):
    _, _, x_test = data[task]
    on_cpu = _fit(task, data, "cpu")
    folder = on_cpu.save_pretrained(tmp_path / task)
    on_gpu = CLASSES[task].from_pretrained(folder, device="cuda")
    assert np.allclose(on_gpu.predict_proba(x_test), on_cpu.predict_proba(x_test), atol=TOLERANCE)


def test_black_box_training_on_the_gpu(data):
    x, y, x_test = data["series"]
    classifier = V2SClassifier("v2s", epochs=1, query_budget=3000, device="cuda", random_state=0).fit(x, y)
    assert classifier.fit_result_.queries > 0 and classifier.reprogrammer_.device.type == "cuda"
    assert classifier.predict_proba(x_test).shape == (len(x_test), 2)


@pytest.mark.parametrize("task", TASKS)
def test_speed_up_of_a_fit_against_the_cpu(task, data, capsys):
    _fit(task, data, "cuda")  # warm-up: CUDA context, kernels, cuDNN autotuning
    seconds = {}
    for device in ("cpu", "cuda"):
        torch.cuda.synchronize()
        start = time.perf_counter()
        _fit(task, data, device)
        torch.cuda.synchronize()
        seconds[device] = time.perf_counter() - start
    with capsys.disabled():
        print(f"\n{task}: fit {seconds['cpu']:.1f} s on the CPU ({torch.get_num_threads()} threads), "
              f"{seconds['cuda']:.1f} s on {torch.cuda.get_device_name()}: speed-up x{seconds['cpu'] / seconds['cuda']:.1f}")
    assert seconds["cuda"] > 0
