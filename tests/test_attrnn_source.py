"""AttRNN (Voice2Series' source) from the publisher's Keras file: fidelity on the
real recordings, the TensorFlow front end, freezing, bad weight files."""

import json
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

from adapters_modal import load_source
from adapters_modal.attrnn import AttRNN, load_keras_weights
from adapters_modal.audio_io import read_wav
from adapters_modal.tf_log_mel import tf_mel_weight_matrix
from tests.conftest import MODELS, SPEECH, UCR
from xmodal.errors import WeightsError

ATTRNN_FILE = MODELS / "attrnn_gsc35" / "model-attRNN.h5"
WORDS = ["eight", "five", "follow"]
PUBLISHED = [1.0000, 0.9997, 0.9998]  # douglas125/SpeechCmdRecognition, first second of each clip


@pytest.fixture(scope="module")
def attrnn():
    return load_source("attrnn-gsc35")


def test_predict_source_matches_the_published_probabilities():
    files = [str(SPEECH / f"word_{w}.wav") for w in WORDS]
    done = subprocess.run([sys.executable, "-m", "cli", "predict-source", "--source", "attrnn-gsc35",
                           "--window", "start", *files], capture_output=True, text=True, check=True)
    lines = [line.split("\t") for line in done.stdout.strip().splitlines()]
    assert [line[1] for line in lines] == WORDS
    assert np.allclose([float(line[2]) for line in lines], PUBLISHED, atol=5e-4)


def test_loudest_window_also_recognises_the_words(attrnn):
    waves = torch.stack([read_wav(SPEECH / f"word_{w}.wav", 16000, 16000) for w in WORDS])
    with torch.no_grad():
        probabilities = attrnn.logits(waves).softmax(dim=1)
    assert [attrnn.class_names[i] for i in probabilities.argmax(dim=1)] == WORDS
    assert probabilities.max(dim=1).values.min() > 0.99


def test_class_order_is_the_models_own(attrnn):
    names = attrnn.class_names
    assert len(names) == 36 and len(set(names)) == 36
    assert names[:3] == ["unknown", "nine", "yes"] and names[20] == "eight" and names[35] == "wow"


def test_mel_matrix_equals_the_one_stored_in_the_keras_graph():
    with h5py.File(ATTRNN_FILE, "r") as handle:
        config = json.loads(handle.attrs["model_config"])
    spectrogram_layers = config["config"]["layers"][1]["config"]["layers"]
    (tensordot,) = [layer for layer in spectrogram_layers if layer["config"]["name"].startswith("tf.tensordot")]
    stored = np.array(tensordot["inbound_nodes"][0][3]["b"])
    ours = tf_mel_weight_matrix().numpy()
    assert stored.shape == ours.shape == (513, 80)
    assert np.abs(ours[0]).max() == 0  # DC bin
    assert np.abs(stored - ours).max() < 1e-4  # TensorFlow built it in float32


def test_front_end_gives_125_standardised_frames(attrnn):
    wave = read_wav(SPEECH / "word_five.wav", 16000, 16000)[None]
    log_mel = attrnn.front_end(wave)
    assert log_mel.shape == (1, 125, 80)
    assert abs(log_mel.mean().item()) < 1e-5 and abs(log_mel.std(unbiased=False).item() - 1) < 1e-4
    assert torch.isfinite(attrnn.front_end(torch.zeros(1, 16000))).all()  # silence: no NaN


def test_frozen_but_gradients_reach_the_waveform(attrnn):
    before = {k: v.clone() for k, v in attrnn.state_dict().items()}
    assert not any(p.requires_grad for p in attrnn.parameters())
    attrnn.train()
    assert not attrnn.training and not attrnn.network.batch_normalization.training
    wave = read_wav(SPEECH / "word_follow.wav", 16000, 16000)[None].requires_grad_(True)
    attrnn.logits(wave)[0, attrnn.class_names.index("follow")].backward()
    assert torch.isfinite(wave.grad).all() and wave.grad.abs().sum() > 0
    assert attrnn.features(wave).shape == (1, 32)
    assert all(torch.equal(before[k], v) for k, v in attrnn.state_dict().items())


def test_corrupt_or_missing_weights_file_is_a_clear_error(tmp_path):
    corrupt = tmp_path / "model-attRNN.h5"
    corrupt.write_bytes(ATTRNN_FILE.read_bytes()[:100_000])
    with pytest.raises(WeightsError, match="sha256"):
        load_source("attrnn-gsc35", corrupt)
    with pytest.raises(WeightsError, match="does not exist"):
        load_source("attrnn-gsc35", tmp_path / "absent.h5")


def test_hdf5_without_the_attrnn_layers_is_refused(tmp_path):
    wrong = tmp_path / "other.h5"
    with h5py.File(wrong, "w") as handle:
        handle.create_dataset("model_weights/dense/dense/kernel:0", data=np.zeros((128, 128), np.float32))
    with pytest.raises(WeightsError, match="model-attRNN.h5"):
        load_keras_weights(AttRNN(), wrong)
    truncated = tmp_path / "truncated.h5"
    shutil.copy(ATTRNN_FILE, truncated)
    with open(truncated, "r+b") as handle:
        handle.truncate(50_000)
    with pytest.raises(WeightsError, match="cannot read AttRNN weights"):
        load_keras_weights(AttRNN(), truncated)


def test_v2s_classifier_fits_with_36_source_classes():
    from xmodal.data.ucr import load_ucr
    from xmodal.estimators.series import V2SClassifier

    data = load_ucr("CBF", UCR)  # 3 classes: 36 // 3 = 12 source words each
    x, y = data.x_train[:15, None, :], data.y_train[:15]
    classifier = V2SClassifier("v2s", source="attrnn-gsc35", epochs=2, patience=2, random_state=0).fit(x, y)
    assignment = classifier.reprogrammer_.output_map.assignment
    assert assignment.shape == (3, 12) and sorted(assignment.flatten().tolist()) == list(range(36))
    probabilities = classifier.predict_proba(x)
    assert probabilities.shape == (15, 3) and np.allclose(probabilities.sum(axis=1), 1)
    assert classifier.fit_result_.epochs_run == 2


def test_every_block_is_readable_and_the_layer_head_fits(attrnn):
    """layer_features pools every block (convolutions per channel and mel band, LSTMs,
    attention context, dense layers), gradients reach the waveform, and the best preset's
    probe-started all-layer head works on AttRNN too."""
    from xmodal.data.ucr import load_ucr
    from xmodal.estimators.series import V2SClassifier

    waveform = (0.1 * torch.randn(2, 16000, generator=torch.Generator().manual_seed(0))).requires_grad_()
    pooled = attrnn.layer_features(waveform)
    assert pooled.shape == (2, 2 * 10 * 80 + 2 * 80 + 2 * 128 + 2 * 128 + 128 + 64 + 32)
    assert torch.equal(pooled[:, -32:], attrnn.features(waveform))  # the last block is the penultimate layer
    pooled.sum().backward()
    assert waveform.grad.abs().sum() > 0
    data = load_ucr("Coffee", UCR)
    classifier = V2SClassifier("late-fusion", source="attrnn-gsc35", random_state=0)
    classifier.fit(data.x_train[:, None, :], data.y_train)
    assert classifier.score(data.x_test[:, None, :], data.y_test) > 0.7
