"""Series-to-image bridge, for an image source: the series as a grayscale picture of its
overlapping windows (TiViT, Roschmann et al. 2025, arXiv 2506.08641), as its recurrence
plot, or as a line chart.

    x' = mid + half * bound( 2 * Frame(Picture(x)) - 1 + M * delta )

Picture is one of three (`picture`). The windows (the default), Resize(Rows(x)): Rows cuts
the (optionally z-normalised) series of L samples into overlapping windows of
w = round(sqrt(L)) samples at a stride of s = max(1, round(w / 2)), the end padded with
the last value so the windows cover every sample, and stacks them as the rows of an
image (rows = 1 + ceil((L - w) / s), w columns): neighbouring rows share half their
samples, so a pattern shows as a vertical structure and a period as a texture. Resize
stretches that image to the source's height x width (bilinear; "nearest" with
interpolation="nearest") and min-max scales it into [0, 1] per series (a constant
series is mid-grey). The recurrence plot (Eckmann et al. 1987, unthresholded): the series
stretched to the height for the rows and to the width for the columns, pixel (i, j) =
|x_rows[i] - x_columns[j]|, min-max scaled the same way; on a square canvas it is
symmetric with a dark diagonal, and it shows which moments look alike wherever they are.
The line chart (as ViTST draws a series, Li et al. 2023, arXiv 2303.12799): dark ink on
white paper, time across and value up, the series min-max scaled to the height less a
margin; each column is inked from the lowest to the highest value the series takes within
it, so a long series keeps its peaks and a short one is joined by straight segments
(interpolation "linear"; "nearest" holds each sample flat, a step chart). It keeps what the
other two drop: the level and sign of every moment.

Frame leaves a border of `frame` pixels (0 by default) around the picture. delta (theta)
is one value per channel and pixel; the mask M is 1 on the border and 0 on the series
(masked=True needs a border: the series fills a frameless image). bound is tanh
(tanh_bound=True) or a clamp to [-1, 1], and mid + half * [-1, 1] is the source's value
range, so x' stays inside what the source model saw in training.
The grayscale picture is repeated over the source's channels.

The functions are pure (easy to test); `SeriesToImage` is the thin trainable module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from xmodal.bridges.low_resolution import check_resolution
from xmodal.bridges.series import IMAGE, INTERPOLATIONS, SeriesBridge
from xmodal.errors import DataError
from xmodal.settings import SERIES_PICTURES
from xmodal.settings_record import SettingsRecord

MIN_LENGTH = 4  # a 2-sample window at stride 1: anything shorter is a single grey pixel
WINDOWS, RECURRENCE, LINE = SERIES_PICTURES
# The line chart's pen: the pixels over which the ink fades linearly to paper on either side of each
# column's span (a line about 3 pixels wide on a 224-pixel canvas), and the paper left above the
# highest and below the lowest value, so the ink never touches the edge.
LINE_FADE = 2.0
LINE_MARGIN = 4


@dataclass
class SeriesToImageConfig(SettingsRecord):
    """Settings of the series-to-image bridge; every one is saved with a trained reprogrammer.

    channels / height / width / value_range: the canvas, from the source's input spec.
    picture: what is drawn: "windows" (TiViT's window rows), "recurrence" (the recurrence plot) or
        "line" (a line chart).
    standardize: z-normalise each series first (the picture is min-max scaled anyway;
        this only matters for how a constant series is drawn: mid-grey either way).
    interpolation: how the picture is stretched, "linear" (bilinear) or "nearest".
    tanh_bound: squash with tanh (True) or clamp (False) into the value range.
    frame: border pixels around the series' picture, where only delta shows.
    masked: delta only on that border (needs frame > 0); False lets it cover the picture.
    delta_dropout: dropout probability on delta during training (0 = off).
    delta_init: std of the Gaussian that initialises delta.
    delta_resolution: None (one delta value per channel and pixel), or r: r x r values per
        channel stretched bilinearly over the image (xmodal.bridges.low_resolution).
    series_length: the raw series length seen at fit time (set by the bridge).
    """

    encoding: ClassVar[str] = IMAGE  # not a setting: what this bridge does, as series_bridge names it

    channels: int = 3
    height: int = 224
    width: int = 224
    value_range: tuple[float, float] = (0.0, 1.0)
    picture: str = WINDOWS
    standardize: bool = True
    interpolation: str = "linear"
    tanh_bound: bool = True
    frame: int = 0
    masked: bool = False
    delta_dropout: float = 0.0
    delta_init: float = 1e-3
    delta_resolution: int | None = None
    series_length: int | None = None

    def __post_init__(self):
        for name in ("channels", "height", "width"):
            if int(getattr(self, name)) < 1:
                raise DataError(f"{name} must be at least 1, got {getattr(self, name)}")
        check_resolution(self.delta_resolution, (self.channels, self.height, self.width))
        if self.interpolation not in INTERPOLATIONS:
            raise DataError(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")
        if self.picture not in SERIES_PICTURES:
            raise DataError(f"picture must be one of {SERIES_PICTURES}, got {self.picture!r}")
        if not 0 <= self.delta_dropout < 1:
            raise DataError(f"delta_dropout must be in [0, 1), got {self.delta_dropout}")
        if not 0 <= 2 * self.frame < min(self.height, self.width):
            raise DataError(f"frame must be >= 0 and leave room for the series in the {self.height}x{self.width} "
                            f"image (below {(min(self.height, self.width) + 1) // 2}), got {self.frame}")
        if self.masked and self.frame == 0:
            raise DataError("encoding='image' fills the whole image, so the mask would zero delta everywhere; "
                            "set masked=False (CLI: --no-masked), or give the bridge a frame > 0")
        low, high = self.value_range = tuple(float(v) for v in self.value_range)
        if not low < high:
            raise DataError(f"value_range must be (low, high) with low < high, got {self.value_range}")

    @classmethod
    def for_source(cls, spec, **settings) -> SeriesToImageConfig:
        """The canvas of an image source's InputSpec, with the given settings."""
        if spec.modality != "image":
            raise DataError(f"encoding='image' draws the series as an image, but this source takes {spec.modality}; "
                            "use an image source such as efficientnet-lite0, or encoding 'waveform' or 'pitch+slope'")
        return cls(channels=spec.channels, height=spec.height, width=spec.width,
                   value_range=spec.value_range or (0.0, 1.0), **settings)

    def to_dict(self) -> dict:
        """The settings as saved; picture only where it is not the window rows, so a window image stays
        readable by an xmodal that predates the choice (format versions 10 and 11, xmodal.persistence)."""
        values = {**super().to_dict(), "value_range": list(self.value_range)}
        if self.picture == WINDOWS:
            del values["picture"]
        return values


def window_and_stride(length: int) -> tuple[int, int]:
    """TiViT's window of about sqrt(L) samples and its half as the stride: (w, s)."""
    window = max(1, round(math.sqrt(length)))
    return window, max(1, round(window / 2))


def window_rows(x: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """x (N, L) -> (N, rows, window): overlapping windows, the end padded with the last
    value so that every sample is in a window (rows = 1 + ceil((L - window) / stride))."""
    length = x.shape[1]
    rows = 1 + max(0, -(-(length - window) // stride))
    padded = (rows - 1) * stride + window
    if padded > length:
        x = torch.cat([x, x[:, -1:].expand(-1, padded - length)], dim=1)
    return x.unfold(1, window, stride)


def unit_scale(images: torch.Tensor) -> torch.Tensor:
    """Per-image min-max scaling of (N, H, W) into [0, 1]; a constant image becomes 0.5."""
    flat = images.flatten(1)
    low, high = flat.amin(dim=1)[:, None, None], flat.amax(dim=1)[:, None, None]
    spread = high - low
    scaled = (images - low) / spread.clamp_min(1e-12)
    return torch.where(spread > 0, scaled, torch.full_like(images, 0.5))


def series_image(x: torch.Tensor, height: int, width: int, interpolation: str = "linear") -> torch.Tensor:
    """x (N, L) -> (N, height, width) in [0, 1]: the window rows resized and min-max scaled."""
    rows = window_rows(x, *window_and_stride(x.shape[1]))
    kwargs = {"mode": "bilinear", "align_corners": False} if interpolation == "linear" else {"mode": "nearest"}
    return unit_scale(F.interpolate(rows[:, None], size=(height, width), **kwargs)[:, 0])


def recurrence_image(x: torch.Tensor, height: int, width: int, interpolation: str = "linear") -> torch.Tensor:
    """x (N, L) -> (N, height, width) in [0, 1]: |x_rows[i] - x_columns[j]| min-max scaled, the
    series stretched to `height` samples for the rows and to `width` for the columns."""
    kwargs = {"mode": "linear", "align_corners": False} if interpolation == "linear" else {"mode": "nearest"}
    rows, columns = (F.interpolate(x[:, None], size=size, **kwargs)[:, 0] for size in (height, width))
    return unit_scale((rows[:, :, None] - columns[:, None, :]).abs())


def line_image(x: torch.Tensor, height: int, width: int, interpolation: str = "linear") -> torch.Tensor:
    """x (N, L) -> (N, height, width) in [0, 1]: the series as a line chart, 1 the paper, 0 the ink.
    Column j is inked over the rows the series spans within it (a polyline sampled 4 times per
    column or per sample, whichever is finer), fading to paper over LINE_FADE pixels either side;
    the highest value LINE_MARGIN pixels below the top, the lowest as far above the bottom. A
    constant series is a level line at mid-height."""
    n, length = x.shape
    dense = 4 * max(length, width)
    kwargs = {"mode": "linear", "align_corners": True} if interpolation == "linear" else {"mode": "nearest"}
    line = F.interpolate(x[:, None], size=dense, **kwargs)[:, 0]
    low, high = line.amin(dim=1, keepdim=True), line.amax(dim=1, keepdim=True)
    spread = high - low
    scaled = torch.where(spread > 0, (high - line) / spread.clamp_min(1e-12), torch.full_like(line, 0.5))
    rows = LINE_MARGIN + scaled * (height - 1 - 2 * LINE_MARGIN)  # row 0 at the top: high values up
    columns = torch.linspace(0, width - 1, dense, device=x.device).round().long().expand(n, -1)
    top = torch.full((n, width), torch.inf, dtype=x.dtype, device=x.device).scatter_reduce(1, columns, rows, "amin")
    bottom = torch.full_like(top, -torch.inf).scatter_reduce(1, columns, rows, "amax")
    row = torch.arange(height, dtype=x.dtype, device=x.device)[None, :, None]
    outside = torch.maximum(top[:, None, :] - row, row - bottom[:, None, :]).clamp_min(0)  # pixels from the span
    return (outside / LINE_FADE).clamp(max=1)


_DRAW = {WINDOWS: series_image, RECURRENCE: recurrence_image, LINE: line_image}


def frame_mask(config: SeriesToImageConfig) -> torch.Tensor:
    """(height, width): 1 on the border of `frame` pixels, 0 where the series is drawn."""
    mask = torch.ones(config.height, config.width)
    f = config.frame
    mask[f : config.height - f, f : config.width - f] = 0
    return mask


class SeriesToImage(SeriesBridge):
    """The trainable series-to-image bridge. theta = delta, one value per channel and pixel
    (or delta_resolution x delta_resolution per channel, stretched)."""

    config_class = SeriesToImageConfig

    def input_shape(self) -> tuple[int, ...]:
        return (self.config.channels, self.config.height, self.config.width)

    def _check_fits(self, length: int) -> None:
        if length < MIN_LENGTH:
            raise DataError(f"encoding='image' cuts the series into windows of about sqrt(L) samples, so series need "
                            f"at least {MIN_LENGTH} samples; got {length}")

    def place(self, x: torch.Tensor) -> torch.Tensor:
        """The series' picture (N, channels, height, width) in [-1, 1] (0 on the frame),
        before delta and the bound."""
        c = self.config
        picture = _DRAW[c.picture](self.prepare(x), c.height - 2 * c.frame, c.width - 2 * c.frame, c.interpolation)
        picture = F.pad(2 * picture - 1, (c.frame,) * 4)
        return picture[:, None].expand(-1, c.channels, -1, -1)

    def mask(self) -> torch.Tensor:
        """M (height, width): 1 on the frame, 0 on the series."""
        return frame_mask(self.config).to(self.delta)

    def perturbation(self) -> torch.Tensor:
        delta = super().perturbation()
        return self.mask() * delta if self.config.masked else delta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        unit = self.place(x) + self.perturbation()
        bounded = torch.tanh(unit) if self.config.tanh_bound else unit.clamp(-1.0, 1.0)
        low, high = self.config.value_range
        return (low + high) / 2 + (high - low) / 2 * bounded
