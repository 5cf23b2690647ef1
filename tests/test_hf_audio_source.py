"""Hugging Face audio classifiers as sources (adapters_modal/hf_audio.py).

No pretrained Hugging Face audio weights can be downloaded here, so each
architecture is a tiny randomly initialised model saved locally with its real
feature extractor class. The front ends are checked against those feature
extractors on a real recording; the models' own code runs unchanged.
"""

import os

import numpy as np
import pytest
import torch
from transformers import (
    ASTConfig,
    ASTFeatureExtractor,
    ASTForAudioClassification,
    HubertConfig,
    HubertForSequenceClassification,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForSequenceClassification,
)

from adapters_modal import load_source
from adapters_modal.audio_io import read_wav
from adapters_modal.hf_audio import front_end_for, load_hf_audio_source
from adapters_modal.weights import sha256_of
from cli import main
from tests.conftest import REPO, SPEECH, UCR
from xmodal.errors import WeightsError, XmodalError

WORDS = ["yes", "no", "up", "down", "eight"]
LABELS = dict(id2label=dict(enumerate(WORDS)), label2id={w: i for i, w in enumerate(WORDS)})
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
# A tiny wav2vec2/HuBERT feature encoder: two convolutions (stride 20 in all) instead of seven.
TINY_CONV = dict(conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
                 num_conv_pos_embedding_groups=2, classifier_proj_size=8)
# 1 s at 16 kHz gives 98 Kaldi frames: max_length 100 pads them, 64 truncates them.
AST_FRAMES, AST_BINS = 100, 32


def _build(kind: str):
    torch.manual_seed(0)
    if kind == "ast":
        config = ASTConfig(**TINY, **LABELS, max_length=AST_FRAMES, num_mel_bins=AST_BINS,
                           frequency_stride=16, time_stride=16)
        return ASTForAudioClassification(config), ASTFeatureExtractor(num_mel_bins=AST_BINS, max_length=AST_FRAMES)
    model_cls, config_cls = {"wav2vec2": (Wav2Vec2ForSequenceClassification, Wav2Vec2Config),
                             "hubert": (HubertForSequenceClassification, HubertConfig)}[kind]
    return model_cls(config_cls(**TINY, **TINY_CONV, **LABELS)), Wav2Vec2FeatureExtractor(do_normalize=True)


KINDS = ["ast", "wav2vec2", "hubert"]
FEATURE_SIZE = {"ast": 32, "wav2vec2": 8, "hubert": 8}  # AST: hidden size; others: the projector's size


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """kind -> a save_pretrained folder holding a tiny model and its feature extractor."""
    made = {}
    for kind in KINDS:
        folder = tmp_path_factory.mktemp(kind)
        model, extractor = _build(kind)
        model.save_pretrained(folder)
        extractor.save_pretrained(folder)
        made[kind] = folder
    return made


@pytest.fixture(scope="module")
def recordings():
    return torch.stack([read_wav(SPEECH / f"word_{word}.wav", 16000, 16000) for word in ("eight", "five", "follow")])


def _hf_reference(folder, waveforms):
    """The Hugging Face pipeline itself: its numpy feature extractor, then the model."""
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    extractor = AutoFeatureExtractor.from_pretrained(folder)
    inputs = extractor([w.numpy() for w in waveforms], sampling_rate=16000, return_tensors="pt")
    return AutoModelForAudioClassification.from_pretrained(folder).eval()(**inputs).logits


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_class_names_and_identity(folders, recordings, kind):
    source = load_hf_audio_source(folders[kind])
    assert source.class_names == WORDS and source.num_classes == 5
    assert source.input_spec.modality == "audio"
    assert (source.input_spec.sample_rate, source.input_spec.num_samples) == (16000, 16000)
    with torch.no_grad():
        features, logits = source.features(recordings), source.logits(recordings)
    assert features.shape == (3, FEATURE_SIZE[kind]) and logits.shape == (3, 5)
    assert torch.allclose(source.head(features), logits)
    assert source.identity == {"name": f"hf:{folders[kind].resolve()}",
                               "weights_sha256": sha256_of(folders[kind] / "model.safetensors")}
    assert load_hf_audio_source(folders[kind], num_samples=8000).input_spec.num_samples == 8000


@pytest.mark.parametrize("kind", KINDS)
def test_logits_equal_the_hugging_face_pipeline(folders, recordings, kind):
    source = load_source(f"hf:{folders[kind]}")  # through the hf: scheme, as the CLI and estimator load it
    with torch.no_grad():
        expected = _hf_reference(folders[kind], recordings)
        assert torch.allclose(source.logits(recordings), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_frozen_and_gradients_reach_the_waveform(folders, recordings, kind):
    source = load_hf_audio_source(folders[kind])
    before = {k: v.clone() for k, v in source.state_dict().items()}
    assert not any(p.requires_grad for p in source.parameters())
    source.train()
    assert not source.training and not source.network.model.training
    waveform = recordings[:2].clone().requires_grad_(True)
    source.logits(waveform).logsumexp(dim=1).sum().backward()
    assert waveform.grad is not None and torch.isfinite(waveform.grad).all() and waveform.grad.abs().sum() > 0
    assert all(torch.equal(before[k], v) for k, v in source.state_dict().items())


@pytest.mark.parametrize("max_length", [AST_FRAMES, 64])  # 98 frames padded to 100 / truncated to 64
def test_ast_filter_banks_match_the_feature_extractor(recordings, max_length, monkeypatch):
    extractor = ASTFeatureExtractor(num_mel_bins=AST_BINS, max_length=max_length)
    ours = front_end_for(extractor)(recordings)
    # Hugging Face computes fbank with the same torchaudio function when torchaudio is installed.
    theirs = torch.from_numpy(np.stack(extractor([w.numpy() for w in recordings], sampling_rate=16000)["input_values"]))
    assert ours.shape == theirs.shape == (3, max_length, AST_BINS)
    assert torch.allclose(ours, theirs, atol=1e-6, rtol=0)
    # Its numpy implementation is independent code: measured max difference 8.6e-5 on these
    # recordings (normalised values span about -1.3..1.0), so 2e-4 is the stated tolerance.
    import transformers.models.audio_spectrogram_transformer.feature_extraction_audio_spectrogram_transformer as ast_fe

    monkeypatch.setattr(ast_fe, "is_speech_available", lambda: False)
    numpy_extractor = ast_fe.ASTFeatureExtractor(num_mel_bins=AST_BINS, max_length=max_length)
    numpy_theirs = np.stack(numpy_extractor([w.numpy() for w in recordings], sampling_rate=16000)["input_values"])
    assert torch.allclose(ours, torch.from_numpy(numpy_theirs), atol=2e-4, rtol=0)
    if max_length == AST_FRAMES:  # the two padded frames hold the normalised zero of the padding
        assert torch.allclose(ours[:, 98:], torch.tensor((0 - extractor.mean) / (2 * extractor.std)))


@pytest.mark.parametrize("do_normalize", [True, False])
def test_waveform_normalisation_matches_the_feature_extractor(recordings, do_normalize):
    extractor = Wav2Vec2FeatureExtractor(do_normalize=do_normalize)
    ours = front_end_for(extractor)(recordings * 0.3)
    theirs = torch.from_numpy(np.stack(extractor([w.numpy() * 0.3 for w in recordings], sampling_rate=16000)["input_values"]))
    assert torch.allclose(ours, theirs, atol=1e-6, rtol=0)  # measured 4.8e-7
    if do_normalize:
        assert torch.allclose(ours.mean(dim=1), torch.zeros(3), atol=1e-5)
        # not exactly 1: the 1e-7 added to the variance matters for quiet clips (variance ~1e-4)
        assert torch.allclose(ours.std(dim=1, unbiased=False), torch.ones(3), atol=1e-3)


def test_missing_or_bad_locations_are_clear_errors(folders, tmp_path, recordings):
    with pytest.raises(WeightsError, match="the folder .*nothing-here does not exist"):
        load_hf_audio_source(tmp_path / "nothing-here")
    with pytest.raises(WeightsError, match="is a file; give the folder written by save_pretrained"):
        load_hf_audio_source(folders["ast"] / "config.json")
    with pytest.raises(WeightsError, match="cannot load a Hugging Face audio classifier"):
        load_hf_audio_source(tmp_path)  # an empty folder
    without_extractor = tmp_path / "model-only"
    _build("hubert")[0].save_pretrained(without_extractor)
    with pytest.raises(WeightsError, match="feature extractor"):
        load_hf_audio_source(without_extractor)
    with pytest.raises(WeightsError, match="HF_HUB_OFFLINE"):
        load_hf_audio_source("xmodal-tests/no-such-model")  # a hub id, not in the cache, offline
    with pytest.raises(XmodalError, match="drop --weights"):
        load_source(f"hf:{folders['ast']}", weights_path=folders["ast"] / "model.safetensors")
    with pytest.raises(XmodalError, match=r"takes waveforms of shape \(N, 16000\), got \(3, 8000\)"):
        load_hf_audio_source(folders["wav2vec2"]).logits(recordings[:, :8000])


@pytest.mark.slow
def test_a_hub_id_loads_offline_from_the_cache_with_the_same_identity(folders, tmp_path):
    # The Hugging Face cache layout, filled from the local folder (nothing can be downloaded
    # here); huggingface_hub reads HF_HUB_CACHE when imported, hence a fresh process.
    import json
    import shutil
    import subprocess
    import sys

    repo = tmp_path / "hub" / "models--xmodal-tests--tiny-hubert"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(folders["hubert"], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    code = ("import json; from adapters_modal import load_source; "
            "print(json.dumps(load_source('hf:xmodal-tests/tiny-hubert').identity))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    identity = json.loads(done.stdout.strip().splitlines()[-1])
    assert identity == {"name": "hf:xmodal-tests/tiny-hubert",
                        "weights_sha256": load_hf_audio_source(folders["hubert"]).weights_sha256}


def test_predict_source_command(folders, capsys, tmp_path):
    files = [str(SPEECH / f"word_{word}.wav") for word in ("eight", "five")]
    assert main(["predict-source", "--source", f"hf:{folders['ast']}", *files]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    assert [row[0] for row in rows] == files
    assert all(row[1] in WORDS and 0.2 <= float(row[2]) <= 1 for row in rows)  # the top of 5 classes
    assert main(["predict-source", "--source", "hf:/no/such/model", files[0]]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["fit", "series", "--dataset", "Coffee", "--data-dir", str(UCR), "--source", "hf:/no/such/model",
                 "--out", str(tmp_path / "run"), "--quiet"]) == 1
    assert "the folder /no/such/model does not exist" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_v2s_trains_on_ucr_series_with_the_tiny_ast(folders, tmp_path):
    from xmodal.data.ucr import load_ucr
    from xmodal.estimators.series import V2SClassifier

    data = load_ucr("Coffee", UCR)
    picked = np.concatenate([np.flatnonzero(data.y_train == label)[:4] for label in data.classes])
    x, y = data.x_train[picked][:, None, :], data.y_train[picked]
    # no validation part: the epoch is chosen on the training loss, so a trained delta is kept (with 2 validation
    # series the untrained start, which competes as epoch 0, may win)
    classifier = V2SClassifier("v2s", source=f"hf:{folders['ast']}", epochs=2, batch_size=4, val_fraction=0.0,
                               random_state=0, verbose=False)
    classifier.fit(x, y)
    model = classifier.reprogrammer_
    assert classifier.fit_result_.epochs_run == 2 and classifier.fit_result_.selection == "training loss"
    initial = classifier._build(classifier.settings_).bridge.delta  # same seed: untrained delta
    assert not torch.equal(model.bridge.delta.detach(), initial.detach())
    assert all(torch.equal(a, b) for a, b in zip(model.source.state_dict().values(),
                                                 load_hf_audio_source(folders["ast"]).state_dict().values()))
    proba = classifier.predict_proba(x)
    assert proba.shape == (8, 2) and np.allclose(proba.sum(axis=1), 1)
    classifier.save_pretrained(tmp_path / "run")  # the run names its source hf:<folder>; reloading finds it
    with pytest.raises(XmodalError, match="not a registered source.*trust_source=True"):
        V2SClassifier.from_pretrained(tmp_path / "run")  # a folder named by a run: loaded only when trusted
    again = V2SClassifier.from_pretrained(tmp_path / "run", trust_source=True)  # its weights hashed as recorded
    assert np.allclose(again.predict_proba(x), proba, atol=1e-6)
