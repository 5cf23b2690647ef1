"""Image-style sources: BC-ResNet without its front end (real weights) and a Hugging Face
image classifier built from a tiny local config."""

import importlib.util

import pytest
import torch

from adapters_modal import load_source
from adapters_modal.audio_io import read_wav
from adapters_modal.bc_resnet import row_band_means
from adapters_modal.vision import ROW_BANDS, load_hf_image_source, load_torchvision_source
from tests.conftest import SPEECH
from xmodal.errors import PersistenceError, WeightsError, XmodalError


def test_bc_resnet_image_source_is_the_speech_network_on_log_mel_images(source):
    image_source = load_source("bc-resnet-gsc35-image")
    spec = image_source.input_spec
    assert (spec.modality, spec.channels, spec.height, spec.width) == ("image", 1, 40, 32)
    assert image_source.weights_sha256 == source.weights_sha256  # the same file, no copy
    waveforms = torch.stack([read_wav(SPEECH / f"word_{w}.wav", 16000, 16000) for w in ("eight", "five", "follow")])
    with torch.no_grad():
        log_mel = source.front_end(waveforms)
        assert log_mel.shape[1:] == (1, 40, 32)
        assert torch.allclose(image_source.logits(log_mel), source.logits(waveforms), atol=1e-5)
    assert [image_source.class_names[i] for i in image_source.logits(log_mel).argmax(1)] == ["eight", "five", "follow"]
    low, high = spec.value_range
    assert low <= log_mel.min() and log_mel.max() <= high + 1


def test_row_band_means_are_each_channels_mean_over_consecutive_rows():
    first, second, flat = torch.randn(2, 3, 7, 5), torch.randn(2, 4, 3, 6), torch.randn(2, 2, 1, 9)
    bands = row_band_means([first, second, flat], 3)
    # tensor_split's bands of 7 rows: 3, 2 and 2; of 3 rows, one each; a map of 1 row is left out
    expected = [first[:, :, 0:3].mean(dim=(2, 3)), first[:, :, 3:5].mean(dim=(2, 3)), first[:, :, 5:7].mean(dim=(2, 3)),
                second[:, :, 0].mean(dim=2), second[:, :, 1].mean(dim=2), second[:, :, 2].mean(dim=2)]
    assert torch.allclose(bands, torch.cat(expected, dim=1), atol=1e-6)


def test_the_bands_source_reads_the_image_source_then_where_in_the_image_each_channel_responds():
    whole, banded = load_source("bc-resnet-gsc35-image"), load_source("bc-resnet-gsc35-image-bands")
    assert banded.weights_sha256 == whole.weights_sha256 and banded.input_spec == whole.input_spec
    torch.manual_seed(0)
    images = torch.rand(3, 1, 40, 32) * 30 - 25
    with torch.no_grad():
        reading, plain = banded.layer_features(images), whole.layer_features(images)
        assert reading.shape == (3, banded.layer_width()) == (3, 2592)
        assert torch.equal(reading[:, :1392], plain)
        assert torch.allclose(reading[:, 1392:], row_band_means(whole.feature_maps(images), ROW_BANDS))
        # a bright stripe over the image's top rows changes the first stage's top band and not its bottom one;
        # over its bottom rows, the reverse (the first stage's 32 channels, bands in order)
        top, bottom = images[:1].clone(), images[:1].clone()
        top[..., :8, :], bottom[..., -8:, :] = 10.0, 10.0
        first_stage = banded.layer_features(torch.cat([images[:1], top, bottom]))[:, 1392:1392 + 3 * 32]
    base, top, bottom = first_stage.reshape(3, 3, 32)
    assert not torch.allclose(top[0], base[0]) and torch.allclose(top[2], base[2])
    assert not torch.allclose(bottom[2], base[2]) and torch.allclose(bottom[0], base[0])


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory):
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    config = ViTConfig(image_size=16, patch_size=4, num_channels=3, hidden_size=16, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=32, num_labels=5,
                       id2label={i: f"thing{i}" for i in range(5)}, label2id={f"thing{i}": i for i in range(5)})
    folder = tmp_path_factory.mktemp("tiny_vit")
    ViTForImageClassification(config).eval().save_pretrained(folder)
    return folder


def test_hugging_face_image_classifier_from_a_local_folder(tiny_vit):
    from transformers import ViTForImageClassification

    image_source = load_hf_image_source(tiny_vit)
    spec = image_source.input_spec
    assert (spec.modality, spec.channels, spec.height, spec.width) == ("image", 3, 16, 16)
    assert image_source.class_names == [f"thing{i}" for i in range(5)] and image_source.num_classes == 5
    assert not any(p.requires_grad for p in image_source.parameters())
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    logits = image_source.logits(x)
    reference = ViTForImageClassification.from_pretrained(tiny_vit).eval()(x).logits
    assert torch.allclose(logits, reference, atol=1e-6)
    logits.sum().backward()
    assert x.grad.abs().sum() > 0  # white-box: gradients reach the input
    assert image_source.features(x).shape == (4, 16)
    again = load_hf_image_source(tiny_vit)
    assert again.identity == image_source.identity and image_source.identity["name"] == f"hf-image:{tiny_vit}"
    by_name = load_source(image_source.name)  # how a saved run finds its source again
    assert by_name.identity == image_source.identity and torch.equal(by_name.logits(x.detach()), logits.detach())


def test_hugging_face_source_reprograms_a_table(tiny_vit, tmp_path):
    import pandas as pd

    from xmodal.bridges.table_encoding import TableEncoder
    from xmodal.bridges.table_to_image import TableToImage, TableToImageConfig
    from xmodal.maps import build_output_map
    from xmodal.persistence import load_reprogrammer, save_reprogrammer
    from xmodal.reprogrammer import Reprogrammer

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "kind": ["a", "b", "a", "c"]})
    image_source = load_hf_image_source(tiny_vit)
    # what TableClassifier(mapping="random") builds, on a source given as an object
    config = TableToImageConfig.for_source(image_source.input_spec, TableEncoder.fit(frame), cell_size=None)
    model = Reprogrammer(TableToImage(config), image_source, build_output_map("random", 5, 2), [0, 1])
    image = model.bridge(model.bridge.encode(frame))
    assert image.shape == (4, 3, 16, 16) and image.min() >= -1 and image.max() <= 1
    save_reprogrammer(model, tmp_path / "run")
    loaded, _ = load_reprogrammer(tmp_path / "run", source=image_source)
    with pytest.raises(PersistenceError, match="not a registered source"):  # a folder's model: only if trusted
        load_reprogrammer(tmp_path / "run")
    by_name, _ = load_reprogrammer(tmp_path / "run", trust_source=True)  # its source found again by its name
    rows = model.bridge.encode(frame)
    assert torch.equal(by_name.predict_proba(rows), model.predict_proba(rows))
    assert torch.equal(loaded.predict_proba(loaded.bridge.encode(frame)), model.predict_proba(model.bridge.encode(frame)))


def test_bad_hugging_face_paths_and_shapes(tiny_vit, tmp_path):
    with pytest.raises(WeightsError, match="cannot load a Hugging Face image classifier"):
        load_hf_image_source(tmp_path / "nothing-here")
    with pytest.raises(XmodalError, match=r"takes images of shape \(N, 3, 16, 16\), got \(2, 1, 16, 16\)"):
        load_hf_image_source(tiny_vit).logits(torch.zeros(2, 1, 16, 16))


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None, reason="torchvision is installed")
def test_torchvision_sources_explain_that_torchvision_is_missing():
    with pytest.raises(XmodalError, match="torchvision is not installed"):
        load_torchvision_source("resnet18")
    with pytest.raises(XmodalError, match="torchvision is not installed"):
        load_source("torchvision:resnet18:DEFAULT")
