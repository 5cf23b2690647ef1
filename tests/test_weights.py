"""Weight resolution order, sha256 pinning, download, and freezing on load."""

import shutil

import pytest
import torch

from adapters_modal import load_source, weights
from adapters_modal.audio import BC_RESNET_WEIGHTS
from adapters_modal.weights import (
    WeightFile,
    cache_dir,
    download_weights,
    resolve_weights,
)
from tests.conftest import BC_RESNET_FILE, MODELS
from xmodal.errors import WeightsError


def test_explicit_path_wins(tmp_path, monkeypatch):
    copy = tmp_path / "elsewhere.pt"
    shutil.copy(BC_RESNET_FILE, copy)
    assert resolve_weights(BC_RESNET_WEIGHTS, copy) == copy


def test_missing_explicit_path_is_an_error():
    with pytest.raises(WeightsError, match="does not exist"):
        resolve_weights(BC_RESNET_WEIGHTS, "/no/such/model-sc-2.pt")


def test_weights_dir_is_searched_recursively():
    found = resolve_weights(BC_RESNET_WEIGHTS)
    assert found == BC_RESNET_FILE
    assert MODELS in found.parents and found.parent != MODELS


@pytest.fixture
def no_weights_dir(monkeypatch, tmp_path):
    """Neither XMODAL_WEIGHTS_DIR nor a ../shared/models beside the checkout."""
    monkeypatch.delenv("XMODAL_WEIGHTS_DIR")
    monkeypatch.setattr(weights, "SHARED_WEIGHTS_DIR", tmp_path / "no-shared-models")


def test_shared_models_are_found_without_any_setting(monkeypatch):
    """README: the weights in ../shared/models are found when that folder exists."""
    monkeypatch.delenv("XMODAL_WEIGHTS_DIR")
    monkeypatch.setattr(weights, "SHARED_WEIGHTS_DIR", MODELS)
    assert resolve_weights(BC_RESNET_WEIGHTS) == BC_RESNET_FILE


def test_cache_is_used_when_weights_dir_is_unset(no_weights_dir):
    cache_dir().mkdir(parents=True, exist_ok=True)
    shutil.copy(BC_RESNET_FILE, cache_dir() / BC_RESNET_WEIGHTS.filename)
    assert resolve_weights(BC_RESNET_WEIGHTS) == cache_dir() / BC_RESNET_WEIGHTS.filename


def test_download_from_url_into_cache(no_weights_dir):
    local_url = WeightFile(BC_RESNET_WEIGHTS.filename, BC_RESNET_WEIGHTS.sha256, BC_RESNET_FILE.as_uri())
    path = resolve_weights(local_url)
    assert path == cache_dir() / BC_RESNET_WEIGHTS.filename
    assert path.read_bytes() == BC_RESNET_FILE.read_bytes()


def test_download_with_wrong_hash_leaves_nothing_behind(no_weights_dir):
    wrong = WeightFile(BC_RESNET_WEIGHTS.filename, "0" * 64, BC_RESNET_FILE.as_uri())
    with pytest.raises(WeightsError, match="sha256"):
        download_weights(wrong)
    assert list(cache_dir().iterdir()) == []


def test_unreachable_download_says_where_it_looked(no_weights_dir, tmp_path):
    gone = WeightFile("absent.pt", "0" * 64, (tmp_path / "absent.pt").as_uri())
    with pytest.raises(WeightsError) as info:
        resolve_weights(gone)
    message = str(info.value)
    assert "XMODAL_WEIGHTS_DIR" in message and str(cache_dir()) in message and "--weights" in message


def test_corrupt_file_is_refused(tmp_path):
    corrupt = tmp_path / "model-sc-2.pt"
    corrupt.write_bytes(BC_RESNET_FILE.read_bytes()[:-10])
    with pytest.raises(WeightsError, match="corrupt or a different checkpoint"):
        load_source("bc-resnet-gsc35", corrupt)


def test_loading_freezes_the_model(source):
    assert all(not p.requires_grad for p in source.parameters())
    assert not source.training
    source.train()  # a parent module calling train() must not unfreeze BatchNorm/dropout
    assert not source.training and not any(m.training for m in source.modules())
    assert source.identity == {"name": "bc-resnet-gsc35", "weights_sha256": BC_RESNET_WEIGHTS.sha256}


def test_unknown_source_lists_the_registered_ones():
    from xmodal.errors import XmodalError

    with pytest.raises(XmodalError, match="bc-resnet-gsc35"):
        load_source("whisper-xxl")


def test_gradients_reach_the_waveform(source):
    waveform = (0.1 * torch.randn(2, 16000)).requires_grad_()
    source.logits(waveform)[:, 3].sum().backward()
    assert waveform.grad is not None and waveform.grad.abs().sum() > 0
