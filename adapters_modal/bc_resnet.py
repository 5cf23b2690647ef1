"""BC-ResNet (Kim et al. 2021, arXiv 2106.04140), the network only.

Parameter names match the public state dict of re9ulus/BC-ResNet
(`example_model/model-sc-2.pt`, width scale 2), so it loads with
`load_state_dict(strict=True)`. Input: log-mel images (N, 1, 40, T).
"""

from __future__ import annotations

import torch
from torch import nn


class SubSpectralNorm(nn.Module):
    """BatchNorm with separate statistics for each of `bands` frequency sub-bands."""

    def __init__(self, channels: int, bands: int = 5):
        super().__init__()
        self.bands = bands
        self.bn = nn.BatchNorm2d(channels * bands)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, f, t = x.shape
        x = self.bn(x.reshape(n, c * self.bands, f // self.bands, t))
        return x.reshape(n, c, f, t)


def _temporal_branch(channels: int, dilation: int) -> nn.Sequential:
    """f1: the 1-D temporal convolution applied to the frequency-averaged map."""
    return nn.Sequential(
        nn.Conv2d(channels, channels, (1, 3), padding="same", groups=channels, dilation=(1, dilation)),
        nn.BatchNorm2d(channels),
        nn.SiLU(),
        nn.Conv2d(channels, channels, 1),
        nn.Dropout2d(0.1),
    )


class NormalBlock(nn.Module):
    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.f2 = nn.Sequential(
            nn.Conv2d(channels, channels, (3, 1), padding="same", groups=channels),
            SubSpectralNorm(channels),
        )
        self.f1 = _temporal_branch(channels, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spectral = self.f2(x)
        temporal = self.f1(spectral.mean(dim=2, keepdim=True))
        return torch.relu(x + spectral + temporal)  # temporal broadcasts over frequency


class TransitionBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, dilation: int, stride: int):
        super().__init__()
        padding = "same" if stride == 1 else (1, 0)
        self.f2 = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, (3, 1), stride=(stride, 1), padding=padding, groups=out_channels),
            SubSpectralNorm(out_channels),
        )
        self.f1 = _temporal_branch(out_channels, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spectral = self.f2(x)
        return torch.relu(spectral + self.f1(spectral.mean(dim=2, keepdim=True)))


class BCResNet(nn.Module):
    """BC-ResNet at width scale 2 (channels 16/24/32/40), 35 classes by default."""

    def __init__(self, num_classes: int = 35):
        super().__init__()
        self.input_conv = nn.Conv2d(1, 32, 5, stride=(2, 1), padding=2)
        self.t1 = TransitionBlock(32, 16, dilation=1, stride=1)
        self.n11 = NormalBlock(16, dilation=1)
        self.t2 = TransitionBlock(16, 24, dilation=2, stride=2)
        self.n21 = NormalBlock(24, dilation=2)
        self.t3 = TransitionBlock(24, 32, dilation=4, stride=2)
        self.n31 = NormalBlock(32, dilation=4)
        self.n32 = NormalBlock(32, dilation=4)
        self.n33 = NormalBlock(32, dilation=4)
        self.t4 = TransitionBlock(32, 40, dilation=8, stride=1)
        self.n41 = NormalBlock(40, dilation=8)
        self.n42 = NormalBlock(40, dilation=8)
        self.n43 = NormalBlock(40, dilation=8)
        self.dw_conv = nn.Conv2d(40, 40, 5, groups=20)
        self.onexone_conv = nn.Conv2d(40, 64, 1)
        self.head_conv = nn.Conv2d(64, num_classes, 1)
        self.blocks = ["t1", "n11", "t2", "n21", "t3", "n31", "n32", "n33", "t4", "n41", "n42", "n43"]

    def feature_maps(self, log_mel: torch.Tensor) -> list[torch.Tensor]:
        """Every stage's output map (N, C, bands, frames): the input conv, the 12 blocks
        and the penultimate 1x1 conv (64 channels, last)."""
        maps = [self.input_conv(log_mel)]
        for name in self.blocks:
            maps.append(getattr(self, name)(maps[-1]))
        maps.append(self.onexone_conv(self.dw_conv(maps[-1])))
        return maps

    def features(self, log_mel: torch.Tensor) -> torch.Tensor:
        """The penultimate representation: (N, 64), averaged over time."""
        return self.feature_maps(log_mel)[-1].mean(dim=3, keepdim=True)[:, :, 0, 0]

    def layer_statistics(self, log_mel: torch.Tensor) -> torch.Tensor:
        """(N, 1392): per channel of every stage, the mean, the maximum and the share of
        positive values over bands and frames (464 channels x 3).

        The penultimate 64 averages keep what separates 35 words; the earlier stages
        still hold generic time-frequency detectors. The share of positive values is
        MiniRocket's PPV: how often a filter fires, whatever the input's scale. It has no
        gradient; mean and maximum carry the gradient to the input."""
        return channel_statistics(self.feature_maps(log_mel))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head_conv(features[:, :, None, None])[:, :, 0, 0]

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(log_mel))


def channel_statistics(maps: list[torch.Tensor]) -> torch.Tensor:
    """(N, 3 x channels of all maps): per channel of every (N, C, H, W) map, its mean, maximum and share of
    positive values over H and W, map by map."""
    stats = []
    for fmap in maps:
        stats += [fmap.mean(dim=(2, 3)), fmap.amax(dim=(2, 3)), (fmap > 0).float().mean(dim=(2, 3))]
    return torch.cat(stats, dim=1)


def row_band_means(maps: list[torch.Tensor], bands: int) -> torch.Tensor:
    """(N, bands x channels of the maps with at least `bands` rows): per channel of each such map, its mean
    over each of `bands` consecutive bands of rows (as even as `torch.tensor_split` makes them), top band
    first. A map with fewer rows has no bands to tell apart, and is left out."""
    tall = [fmap for fmap in maps if fmap.shape[2] >= bands]
    if not tall:
        raise ValueError(f"no map has {bands} rows to split into bands (rows: {[fmap.shape[2] for fmap in maps]})")
    return torch.cat([band.mean(dim=(2, 3)) for fmap in tall for band in torch.tensor_split(fmap, bands, dim=2)],
                     dim=1)
