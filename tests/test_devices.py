"""Devices: the `device` setting (auto | cpu | cuda) of every estimator and command, a clear
error for cuda without a GPU, CPU and auto end to end, and no tensor made on a fixed device.

The GPU itself is exercised in tests/test_gpu.py (skipped without one). Here, a model moved
to torch's "meta" device stands in for it: a forward pass that made a tensor on the CPU
instead of on its input's device fails there as it would on a GPU.
"""

import numpy as np
import pandas as pd
import pytest
import torch

import xmodal.bridges.series as series_module
from adapters_modal import load_source
from cli import main
from tests.conftest import UCR
from xmodal.bridges.series_image import SeriesToImage
from xmodal.bridges.table_encoding import TableEncoder
from xmodal.bridges.table_to_image import TableToImage, TableToImageConfig
from xmodal.bridges.tones import SeriesToTones
from xmodal.bridges.waveform import SeriesToWaveform
from xmodal.data.ucr import load_ucr
from xmodal.devices import module_device, resolve_device, resolve_precision, seeded_global_rng
from xmodal.errors import DataError, DeviceError
from xmodal.estimators.sequence import SequenceClassifier
from xmodal.estimators.series import V2SClassifier
from xmodal.estimators.table import TableClassifier
from xmodal.maps import MAP_KINDS, LinearHead, build_output_map
from xmodal.reprogrammer import Reprogrammer
from xmodal.settings import SETTINGS

META = torch.device("meta")


@pytest.fixture(scope="module")
def coffee():
    data = load_ucr("Coffee", UCR)
    return data.x_train[:, None, :], data.y_train, data.x_test[:, None, :]


@pytest.fixture
def no_gpu(monkeypatch):
    """This machine as one without a GPU, whatever it has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def _error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if line]
    assert len([line for line in lines if "error" in line]) == 1 and "error" in lines[-1], lines
    return lines[-1]


# -- the setting ----------------------------------------------------------------------------

@pytest.mark.parametrize("task", SETTINGS)
def test_every_task_takes_the_device_setting(task):
    assert SETTINGS[task]["device"].choices == ("auto", "cpu", "cuda")
    cls = {"series": V2SClassifier, "sequence": SequenceClassifier, "table": TableClassifier}[task]
    assert cls().get_params()["device"] is None and cls().resolved_settings()["device"] == "auto"
    assert cls(device="cpu").resolved_settings()["device"] == "cpu"


def test_auto_is_cuda_when_torch_sees_a_gpu_else_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu") and resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


@pytest.mark.parametrize("native", [False, True])
def test_auto_precision_is_bfloat16_only_where_the_cpu_computes_it(monkeypatch, native):
    """auto: bfloat16 on a CPU with AVX512-BF16 or AMX tiles (emulated elsewhere, slower than
    float32); float32 and bfloat16 as asked, whatever the CPU."""
    cpu = torch.device("cpu")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert resolve_precision("auto", cpu) == (torch.bfloat16 if native else None)
    assert resolve_precision("float32", cpu) is None and resolve_precision("bfloat16", cpu) == torch.bfloat16
    with pytest.raises(DeviceError, match=r"^precision must be one of auto, float32, bfloat16, got 'half'$"):
        resolve_precision("half", cpu)


def test_cuda_without_a_gpu_is_one_line_naming_the_fix(no_gpu):
    with pytest.raises(DeviceError, match=r"^device 'cuda' was asked for but .*; use device 'cpu' or 'auto' "
                                          r"\(CLI: --device cpu\), or run on a machine with an NVIDIA GPU"):
        resolve_device("cuda")


def test_an_estimator_refuses_cuda_without_a_gpu_before_loading_a_model(no_gpu, coffee, monkeypatch):
    x, y, _ = coffee
    monkeypatch.setattr("xmodal.estimators.series.load_source", lambda *a: pytest.fail("a model was loaded"))
    with pytest.raises(DeviceError, match="device 'cuda' was asked for"):
        V2SClassifier("v2s", device="cuda").fit(x, y)
    with pytest.raises(DataError, match="'device' must be one of auto, cpu, cuda, got 'gpu'"):
        V2SClassifier("v2s", device="gpu").fit(x, y)


# -- end to end on the CPU ------------------------------------------------------------------

def test_cpu_and_auto_fit_predict_save_and_load(coffee, tmp_path):
    x, y, x_test = coffee
    on_cpu = V2SClassifier("v2s", epochs=1, device="cpu", random_state=3).fit(x, y)
    on_auto = V2SClassifier("v2s", epochs=1, device="auto", random_state=3).fit(x, y)
    assert on_cpu.settings_["device"] == "cpu" and on_auto.settings_["device"] == "auto"
    assert on_cpu.reprogrammer_.device == torch.device("cpu")
    assert on_auto.reprogrammer_.device.type == resolve_device("auto").type
    expected = on_cpu.predict_proba(x_test)
    if resolve_device("auto").type == "cpu":
        assert np.array_equal(on_auto.predict_proba(x_test), expected)
    else:  # another device: the same model to float tolerance
        assert np.allclose(on_auto.predict_proba(x_test), expected, atol=1e-4)
    folder = on_auto.save_pretrained(tmp_path / "run")
    for device in ("cpu", "auto", None):
        loaded = V2SClassifier.from_pretrained(folder, device=device)
        assert loaded.settings_["device"] == (device or "auto")
        assert loaded.reprogrammer_.device.type == resolve_device(device or "auto").type
        assert np.allclose(loaded.predict_proba(x_test), on_auto.predict_proba(x_test), atol=1e-5)


def test_a_run_loads_with_cuda_refused_without_a_gpu(coffee, tmp_path, no_gpu):
    x, y, _ = coffee
    folder = V2SClassifier("v2s", epochs=0, random_state=0).fit(x, y).save_pretrained(tmp_path / "run")
    with pytest.raises(DeviceError, match="device 'cuda' was asked for"):
        V2SClassifier.from_pretrained(folder, device="cuda")


def test_the_cli_takes_device_on_fit_evaluate_predict_and_align(tmp_path, capsys, monkeypatch):
    run = tmp_path / "coffee"
    assert main(["fit", "series", "--preset", "v2s", "--dataset", "Coffee", "--data-dir", str(UCR), "--epochs", "1",
                 "--device", "cpu", "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--device", "auto"]) == 0
    assert '"accuracy"' in capsys.readouterr().out
    assert main(["predict", str(run), "--device", "cpu", "--csv", str(tmp_path / "p.csv")]) == 0
    assert "prediction" in (tmp_path / "p.csv").read_text().splitlines()[0]
    assert main(["evaluate", str(run), "--device", "tpu"]) == 2  # not a choice: argparse
    assert "argument --device: invalid choice: 'tpu'" in capsys.readouterr().err
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for command in (["evaluate", str(run)], ["align", str(run), "--source-samples", str(tmp_path / "x.npy")],
                    ["fit", "series", "--preset", "tones", "--dataset", "Coffee", "--data-dir", str(UCR),
                     "--out", str(tmp_path / "new")]):
        assert main([*command, "--device", "cuda"]) == 1
        line = _error_line(capsys)
        assert f"xmodal {' '.join(command[:2]) if command[0] == 'fit' else command[0]}: error: device 'cuda' was " \
               "asked for" in line and "--device cpu" in line
    assert not (tmp_path / "new").exists()  # refused before any work


# -- no tensor on a fixed device --------------------------------------------------------------

@pytest.fixture
def meta_series_batches(monkeypatch):
    """Series checks read values (finite?), which meta tensors do not have: skipped here."""
    monkeypatch.setattr(series_module, "as_series_batch", lambda x: (x[:, 0, :] if x.ndim == 3 else x).float())


SERIES_BRIDGES = [
    (SeriesToWaveform, {}),
    (SeriesToWaveform, {"copies": 2, "masked": True, "target_duration": 0.5, "delta_dropout": 0.1}),
    (SeriesToTones, {"encoding": "pitch+slope", "delta_dropout": 0.1}),
    (SeriesToTones, {"encoding": "pitch"}),
    (SeriesToImage, {"channels": 3, "height": 40, "width": 40, "value_range": (-1.0, 1.0), "masked": True, "frame": 2}),
]


@pytest.mark.parametrize("cls, settings", SERIES_BRIDGES)
def test_series_bridges_build_every_tensor_on_their_inputs_device(cls, settings, meta_series_batches):
    bridge = cls(**settings)
    bridge.check_length(60)  # the series length is fixed on first use
    bridge = bridge.to(META).train()
    assert bridge(torch.randn(3, 60, device=META)).device == META


@pytest.mark.parametrize("kind", MAP_KINDS)
def test_output_maps_build_every_tensor_on_their_inputs_device(kind):
    output_map = build_output_map(kind, 35, 3).to(META)  # (`prepare` reads values: not on meta)
    assert output_map(torch.randn(4, 35, device=META)).device == META


def test_the_table_bridge_builds_every_tensor_on_its_inputs_device(monkeypatch):
    frame = pd.DataFrame({"amount": np.arange(8.0), "purpose": list("abcdabcd")})
    encoder = TableEncoder.fit(frame, encoding="onehot", missing="error")
    source = load_source("bc-resnet-gsc35-image")
    config = TableToImageConfig.for_source(source.input_spec, encoder, cell_height=None, cell_width=None, gap=2,
                                           placement="centre")
    monkeypatch.setattr(TableToImage, "check", lambda self, x: x.float())  # reads values: skipped on meta
    model = Reprogrammer(TableToImage(config, seed=0), source, build_output_map("frequency", 35, 2)).to(META)
    assert model(torch.rand(2, encoder.num_features, device=META)).device == META
    assert model.bridge.cell_masks().device == META


def test_a_series_reprogrammer_on_every_layer_builds_on_its_inputs_device(meta_series_batches):
    source = load_source("bc-resnet-gsc35")  # a fresh copy: the session's stays on the CPU
    bridge = SeriesToTones(encoding="pitch+slope")
    bridge.check_length(60)
    width = source.layer_features(torch.zeros(1, 16000)).shape[1]
    model = Reprogrammer(bridge, source, LinearHead(width, 2), reads="layers").to(META)
    assert model.device == META and module_device(model.source) == META
    assert model(torch.randn(2, 60, device=META)).device == META


def test_the_seeded_global_rng_is_seeded_inside_and_restored_after():
    torch.manual_seed(5)
    outside = torch.get_rng_state()
    with seeded_global_rng(9, torch.device("cpu")):
        inside = torch.rand(3)
    assert torch.equal(torch.get_rng_state(), outside)
    with seeded_global_rng(9):
        assert torch.equal(torch.rand(3), inside)
