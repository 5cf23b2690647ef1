"""Image-style source models: frozen classifiers of (N, C, H, W) tensors.

Three kinds:

- `bc-resnet-gsc35-image` (registered): the BC-ResNet keyword spotter without
  its audio front end, a classifier of 40 x 32 single-channel log-mel images.
  It is the one real image-style network on this machine (no pretrained image
  weights can be downloaded here), so table reprogramming is measured with it.
  `bc-resnet-gsc35-image-bands` (registered) is the same network, its reading also
  telling where in the image each filter responds (the series `best` preset's).
- `load_hf_image_source(path_or_id)`: any Hugging Face
  `AutoModelForImageClassification`, from a local folder or a hub id.
- `load_torchvision_source(name)`: a torchvision classifier, when torchvision
  is installed (it is optional: there is no CPU build of it for this torch).

They are not all in the name registry: a Hugging Face or torchvision source is
named by where it comes from, so a saved reprogrammer trained on one is loaded
by passing the source back (`load_reprogrammer(folder, source=...)`); its
identity (name + sha256 of its weights) is still checked.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import torch

from adapters_modal.audio import BC_RESNET_WEIGHTS, GSC35_WORDS, load_bc_resnet
from adapters_modal.base import InputSpec, SourceEntry, SourceModel, register_source, register_source_scheme
from adapters_modal.bc_resnet import channel_statistics, row_band_means
from adapters_modal.hf_loading import (
    from_pretrained,
    hf_class_names,
    require_transformers,
    resolve_location,
)
from adapters_modal.weights import sha256_of
from xmodal.errors import WeightsError, XmodalError

# BC-ResNet's LogMel front end on a 1-s, 16 kHz window: 40 mel bands x 32 frames
# (hop 512). Its log2 values lie in about [-30, 12]: -30 is digital silence,
# speech at full scale reaches about 10 (measured on the shared speech words).
LOG_MEL_SPEC = InputSpec(modality="image", channels=1, height=40, width=32, value_range=(-30.0, 12.0))


class BCResNetImageSource(SourceModel):
    """The same network and weights as `bc-resnet-gsc35`, fed log-mel images directly."""

    name = "bc-resnet-gsc35-image"
    input_spec = LOG_MEL_SPEC
    class_names = GSC35_WORDS

    def __init__(self, weights_path: Path):
        super().__init__(weights_sha256=sha256_of(weights_path))
        self.network = load_bc_resnet(weights_path)

    def features(self, log_mel: torch.Tensor) -> torch.Tensor:
        return self.network.features(log_mel)

    def feature_maps(self, log_mel: torch.Tensor) -> list[torch.Tensor]:
        """Every stage's output map (N, C, bands, frames), input conv first (BCResNet.feature_maps)."""
        return self.network.feature_maps(log_mel)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.network.head(features)

    def layer_features(self, log_mel: torch.Tensor) -> torch.Tensor:
        """(N, 1392): per channel of every stage, mean, maximum and share of positive values over
        bands and frames (BCResNet.layer_statistics), as `bc-resnet-gsc35` reads them after its front end."""
        return self.network.layer_statistics(log_mel)


# The bands of rows bc-resnet-gsc35-image-bands reads each channel's mean in: measured against the whole map's
# statistics alone on the UCR training splits' nested folds (docs/experiments.md 0.37; the one count tried).
ROW_BANDS = 3


class BCResNetImageBandsSource(BCResNetImageSource):
    """`bc-resnet-gsc35-image` whose reading also says where in the image each filter responds: beside each
    channel's statistics over the whole map, its mean in each of ROW_BANDS bands of rows. The series' window
    image stacks its windows as rows, so the bands are the series' beginning, middle and end; a class that
    differs at a fixed place (a spectrum's peak) differs in one band."""

    name = "bc-resnet-gsc35-image-bands"

    def layer_features(self, log_mel: torch.Tensor) -> torch.Tensor:
        """(N, 2592): `bc-resnet-gsc35-image`'s 1392 numbers, then the ROW_BANDS band means of each channel of
        the stages with that many rows (all but the last, 400 channels x 3)."""
        maps = self.feature_maps(log_mel)
        return torch.cat([channel_statistics(maps), row_band_means(maps, ROW_BANDS)], dim=1)


_IMAGE_ENTRY = SourceEntry(
    name=BCResNetImageSource.name,
    description="BC-ResNet-2 without its audio front end: a classifier of 1x40x32 log-mel images (35 words)",
    weight_file=BC_RESNET_WEIGHTS,
    build=BCResNetImageSource,
    modality="image", parameters=30_939, input="1x40x32 log-mel", output="35 words", licence="MIT",
)
register_source(_IMAGE_ENTRY)
register_source(replace(
    _IMAGE_ENTRY, name=BCResNetImageBandsSource.name, build=BCResNetImageBandsSource,
    description=f"bc-resnet-gsc35-image, its reading also each channel's mean in {ROW_BANDS} bands of rows "
                "(where in the picture a filter responds)",
))


def state_sha256(module: torch.nn.Module) -> str:
    """sha256 over a module's parameters and buffers (names, shapes, bytes), in
    name order: the identity of weights that do not come as one checked file."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class WrappedImageSource(SourceModel):
    """A frozen image classifier given as a module whose output is (N, classes)
    logits or an object with `.logits`. `features` is the mean of the last
    hidden feature map, the representation used for alignment."""

    def __init__(self, name: str, network: torch.nn.Module, input_spec: InputSpec, class_names: list[str]):
        super().__init__(weights_sha256=state_sha256(network))
        self.name, self.input_spec, self.class_names = name, input_spec, list(class_names)
        self.network = network

    def check_input(self, x: torch.Tensor) -> None:
        expected = self.input_spec.sample_shape
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise XmodalError(f"{self.name} takes images of shape (N, {', '.join(map(str, expected))}), "
                              f"got {tuple(x.shape)}; build the bridge from this source's input_spec")

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        output = self.network(x)
        return output.logits if hasattr(output, "logits") else output

    def features(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        if not hasattr(self.network, "config"):
            raise XmodalError(f"{self.name}: features are only available for Hugging Face image sources")
        hidden = self.network(x, output_hidden_states=True).hidden_states[-1]
        return hidden.flatten(2).mean(dim=2) if hidden.ndim == 4 else hidden.mean(dim=1)


def _hf_image_size(config) -> tuple[int, int]:
    size = getattr(config, "image_size", None)
    if isinstance(size, (list, tuple)):
        return int(size[0]), int(size[1])
    if isinstance(size, int):
        return size, size
    raise XmodalError(f"the model config ({type(config).__name__}) states no image_size; "
                      "set config.image_size before loading")


def load_hf_image_source(path_or_id: str | Path, value_range: tuple[float, float] = (-1.0, 1.0)) -> WrappedImageSource:
    """A frozen `AutoModelForImageClassification` from a local folder or a hub id.

    value_range: the normalised pixel range the model expects (most HF image
    processors map [0, 255] to [-1, 1] or to ImageNet-standardised values,
    about [-2.1, 2.6]); bridges scale their canvas into it.
    """
    transformers = require_transformers("image classifier")
    location, _ = resolve_location(path_or_id, "image classifier")
    network = from_pretrained(transformers.AutoModelForImageClassification.from_pretrained, location,
                              "image classifier")
    height, width = _hf_image_size(network.config)
    spec = InputSpec(modality="image", channels=int(getattr(network.config, "num_channels", 3)),
                     height=height, width=width, value_range=tuple(value_range))
    source = WrappedImageSource(f"hf-image:{path_or_id}", network, spec, hf_class_names(network.config))
    return source.freeze()


# ImageNet-normalised pixels: (0 - mean) / std .. (1 - mean) / std over the three channels.
IMAGENET_RANGE = (-2.12, 2.64)


def load_torchvision_source(name: str, weights: str = "DEFAULT", image_size: int = 224) -> WrappedImageSource:
    """A frozen torchvision classifier (`torchvision.models.get_model(name, weights=...)`)."""
    try:
        from torchvision import models
    except ImportError as exc:
        raise XmodalError("torchvision is not installed (it is optional; no CPU build matches this torch): "
                          "use a Hugging Face image source or bc-resnet-gsc35-image") from exc
    try:
        chosen = models.get_model_weights(name).verify(weights)
        network = models.get_model(name, weights=chosen)
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        raise WeightsError(f"cannot build torchvision model {name!r} with weights {weights!r} ({exc})") from exc
    categories = chosen.meta["categories"]
    spec = InputSpec(modality="image", channels=3, height=image_size, width=image_size, value_range=IMAGENET_RANGE)
    return WrappedImageSource(f"torchvision:{name}:{weights}", network, spec, categories).freeze()


def _torchvision_from_name(location: str) -> WrappedImageSource:
    name, _, weights = location.partition(":")
    return load_torchvision_source(name, weights or "DEFAULT")


# The names these loaders give their sources, so that a saved run finds its source again.
register_source_scheme("hf-image", load_hf_image_source,
                       "Hugging Face image classifier (ViT, ConvNeXt, ...) from a save_pretrained folder or a hub id")
register_source_scheme("torchvision", _torchvision_from_name,
                       "torchvision classifier, torchvision:NAME[:WEIGHTS] (torchvision is optional)")

__all__ = ["BCResNetImageBandsSource", "BCResNetImageSource", "WrappedImageSource", "load_hf_image_source",
           "load_torchvision_source", "state_sha256"]
