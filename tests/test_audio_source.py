"""BC-ResNet on real recordings: the adapter reproduces the published behaviour."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch

from adapters_modal.audio_io import loudest_window, read_wav
from tests.conftest import SPEECH

WORDS = ["eight", "five", "follow"]


def test_real_recordings_are_recognised(source):
    waves = torch.stack([read_wav(SPEECH / f"word_{w}.wav", 16000, 16000) for w in WORDS])
    probabilities = source.logits(waves).softmax(dim=1)
    assert [source.class_names[i] for i in probabilities.argmax(dim=1)] == WORDS
    assert probabilities.max(dim=1).values.min() > 0.95
    assert source.features(waves).shape == (3, 64)


def test_predict_source_command_prints_eight_five_follow():
    files = [str(SPEECH / f"word_{w}.wav") for w in WORDS]
    done = subprocess.run([sys.executable, "-m", "cli", "predict-source", "--source", "bc-resnet-gsc35", *files],
                          capture_output=True, text=True, check=True)
    lines = [line.split("\t") for line in done.stdout.strip().splitlines()]
    assert [line[1] for line in lines] == WORDS
    assert [line[0] for line in lines] == files
    assert all(0.95 < float(line[2]) <= 1 for line in lines)


def test_read_wav_mixes_resamples_and_crops(tmp_path):
    stereo, rate = soundfile.read(SPEECH / "word_eight.wav", dtype="float32")
    assert stereo.ndim == 2 and rate == 48000 and len(stereo) > rate  # the real file is long stereo
    wave = read_wav(SPEECH / "word_eight.wav", 16000, 16000)
    assert wave.shape == (16000,)
    short = tmp_path / "short.wav"
    soundfile.write(short, np.full(800, 0.5, dtype="float32"), 8000)
    padded = read_wav(short, 16000, 16000)
    assert padded.shape == (16000,) and padded[:1500].abs().min() > 0.4 and padded[1700:].abs().max() == 0


def test_loudest_window_finds_the_burst():
    signal = torch.zeros(30000)
    signal[20000:21000] = 1.0
    window = loudest_window(signal, 16000)
    assert window.sum() == 1000 and window.shape == (16000,)


def test_unreadable_audio_is_a_clear_error(tmp_path):
    import pytest

    from xmodal.errors import DataError

    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    with pytest.raises(DataError, match="cannot read"):
        read_wav(bad, 16000, 16000)


def test_start_window_takes_the_first_second_and_pads_short_clips():
    from adapters_modal.audio_io import start_window

    signal = torch.arange(30000, dtype=torch.float32)
    assert torch.equal(start_window(signal, 16000), signal[:16000])
    padded = start_window(torch.ones(100), 16000)
    assert padded.shape == (16000,) and padded.sum() == 100
    first = read_wav(SPEECH / "word_eight.wav", 16000, 16000, window="start")
    loudest = read_wav(SPEECH / "word_eight.wav", 16000, 16000)
    assert first.shape == (16000,) and not torch.equal(first, loudest)


def test_unknown_window_is_refused():
    import pytest

    from xmodal.errors import DataError

    with pytest.raises(DataError, match="loudest, start"):
        read_wav(SPEECH / "word_eight.wav", 16000, 16000, window="middle")


def test_layer_features_pool_every_stage_and_end_with_the_penultimate_layer(source):
    waveform = torch.randn(3, 16000, generator=torch.Generator().manual_seed(0)) * 0.1
    with torch.no_grad():
        stats = source.layer_features(waveform)
        penultimate = source.features(waveform)
    assert stats.shape == (3, 464 * 3)  # 464 channels over 14 stages, mean / max / share positive
    last_mean, last_share = stats[:, -3 * 64 : -2 * 64], stats[:, -64:]
    assert torch.allclose(last_mean, penultimate, atol=1e-5)
    assert ((last_share >= 0) & (last_share <= 1)).all()


def test_a_source_without_layer_statistics_says_what_to_use_instead():
    """Every registered source reads layer by layer; a prediction API (a black box) cannot."""
    from adapters_modal import load_source
    from xmodal.blackbox import hide_gradients
    from xmodal.errors import XmodalError

    with pytest.raises(XmodalError, match="no per-layer statistics; use an output map on its logits"):
        hide_gradients(load_source("bc-resnet-gsc35")).layer_features(torch.zeros(1, 16000))
