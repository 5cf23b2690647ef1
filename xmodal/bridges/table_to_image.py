"""Table-to-image bridge (Chen, Fan & Ye, CIKM 2021): rows drawn onto an image.

    x' = lo + (hi - lo) * [ M * Draw(e(row)) + (1 - M) * sigmoid(W) ]

e is the fitted TableEncoder (table_encoding.py): D intensities in [0, 1].
With `views="per-feature"` a row becomes D images instead of one: image k draws
only feature k's rectangle (M = 1 there alone) on the same background, and the
output map reads the source's answers to all D side by side (Reprogrammer): the
frozen model turns each feature into a 1000-number reading of its own, at the
cost of D queries per row for a source behind an API.
Draw puts intensity d into its own rectangle of `cell_height` x `cell_width`
pixels (all channels) on a grid (automatic layout, `cell_size=None`: the
largest squares that fit, `auto_layout`); M is 1 on those rectangles and 0
elsewhere; W is the trainable universal perturbation (theta), one value per
pixel and channel, squashed into [0, 1] by a sigmoid so the image stays in
the value range [lo, hi] that the source model expects (its input spec).

`auto_layout` and `layout_index` are pure (easy to test); `TableToImage` is the
thin module. `TableToImage.cell_masks` gives each feature's cell as a pixel
mask, what a cell read-out (cell_readout.py) averages a feature map over.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import nn

from adapters_modal.base import InputSpec
from xmodal.bridges.low_resolution import check_resolution, coarse_shape, stretch
from xmodal.bridges.table_encoding import TableEncoder
from xmodal.errors import DataError
from xmodal.settings import TABLE_VIEWS
from xmodal.settings_record import SettingsRecord

PLACEMENTS = ("centre", "top-left")


@dataclass
class TableToImageConfig(SettingsRecord):
    """Settings of the bridge; every one (encoder statistics included) is saved
    with a trained reprogrammer, so a reloaded run draws rows identically.

    channels / height / width / value_range: the canvas, from the source's input spec.
    cell_height / cell_width: pixels of the rectangle each intensity is drawn as;
        both None: the largest square that fits (`auto_layout`), resolved at
        construction, so the saved config holds the size actually drawn.
        `for_source(..., cell_size=s)` sets both (s=None: automatic).
    gap: empty pixels between neighbouring rectangles (the perturbation shows there).
    cells_per_row: rectangles per grid row (default: as many as fit the width).
    placement: "centre" puts the grid in the middle of the canvas, "top-left" at (0, 0).
    perturbation_init: std of the Gaussian that initialises W (0 = mid-range grey).
    delta_resolution: None (W has one value per channel and pixel), or r: r x r values per
        channel stretched bilinearly over the canvas (xmodal.bridges.low_resolution).
    views: "one" (every feature on one image) or "per-feature" (one image per feature, the
        feature's rectangle alone on the background; D images per row).
    encoder: the fitted TableEncoder as a dict.
    """

    channels: int = 1
    height: int = 40
    width: int = 32
    value_range: tuple[float, float] = (0.0, 1.0)
    cell_height: int | None = 2
    cell_width: int | None = 2
    gap: int = 0
    cells_per_row: int | None = None
    placement: str = "centre"
    perturbation_init: float = 0.0
    delta_resolution: int | None = None
    views: str = "one"
    encoder: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.cell_height is None and self.cell_width is None:
            self.resolve_auto_layout()
        elif self.cell_height is None or self.cell_width is None:
            raise DataError("set both cell_height and cell_width, or neither (automatic square cells)")
        for name in ("channels", "height", "width", "cell_height", "cell_width"):
            if int(getattr(self, name)) < 1:
                raise DataError(f"{name} must be at least 1, got {getattr(self, name)}")
        check_resolution(self.delta_resolution, (self.channels, self.height, self.width))
        if self.gap < 0 or (self.cells_per_row is not None and self.cells_per_row < 1):
            raise DataError("gap must be >= 0 and cells_per_row >= 1")
        if self.placement not in PLACEMENTS:
            raise DataError(f"placement must be one of {PLACEMENTS}, got {self.placement!r}")
        if self.views not in TABLE_VIEWS:
            raise DataError(f"views must be one of {TABLE_VIEWS}, got {self.views!r}")
        low, high = self.value_range = tuple(float(v) for v in self.value_range)
        if not low < high:
            raise DataError(f"value_range must be (low, high) with low < high, got {self.value_range}")

    def resolve_auto_layout(self) -> None:
        """cell_height = cell_width = the largest square side that fits (needs the fitted encoder)."""
        if self.gap < 0:
            raise DataError(f"gap must be >= 0, got {self.gap}")
        num_features = TableEncoder.from_dict(self.encoder).num_features if self.encoder else 0
        if num_features == 0:
            raise DataError("automatic cell size needs the fitted table encoder (its number of features)")
        size = auto_layout(num_features, int(self.height), int(self.width), self.gap, self.cells_per_row)
        self.cell_height = self.cell_width = size

    @classmethod
    def for_source(cls, spec: InputSpec, encoder: TableEncoder, **layout) -> "TableToImageConfig":
        """The canvas of an image-style source, with the given layout options.

        layout: TableToImageConfig fields, or `cell_size` (square cells of that side;
        None: the largest that fit) in place of cell_height / cell_width."""
        if "cell_size" in layout:
            if "cell_height" in layout or "cell_width" in layout:
                raise DataError("give cell_size or cell_height / cell_width, not both")
            layout["cell_height"] = layout["cell_width"] = layout.pop("cell_size")
        if spec.modality != "image":
            raise DataError(f"the table bridge draws images, but this source takes {spec.modality}; "
                            "use an image-style source such as bc-resnet-gsc35-image")
        return cls(channels=spec.channels, height=spec.height, width=spec.width,
                   value_range=spec.value_range or (0.0, 1.0), encoder=encoder.to_dict(), **layout)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "value_range": list(self.value_range)}


def grid_shape(num_features: int, height: int, width: int, cell_height: int, cell_width: int, gap: int,
               cells_per_row: int | None = None) -> tuple[int, int, int, bool]:
    """(cells per row, grid height, grid width, whether the grid fits the height x width canvas)."""
    step_h, step_w = cell_height + gap, cell_width + gap
    fit_per_row = (width + gap) // step_w
    per_row = cells_per_row or fit_per_row
    if per_row < 1:
        return per_row, num_features * step_h - gap, cell_width, False
    rows = -(-num_features // per_row)
    grid_h, grid_w = rows * step_h - gap, min(per_row, num_features) * step_w - gap
    return per_row, grid_h, grid_w, per_row <= fit_per_row and grid_h <= height


def auto_layout(num_features: int, height: int, width: int, gap: int, cells_per_row: int | None = None) -> int:
    """The largest square cell side such that `num_features` cells, `gap` pixels apart
    (rows filled left to right, `cells_per_row` per row or as many as fit), fit a
    height x width image. 20 features in 40 x 32 with gap 2: 6 (5 rows of 4)."""
    if num_features < 1:
        raise DataError(f"automatic layout needs at least one feature, got {num_features}")
    for size in range(min(height, width), 0, -1):
        if grid_shape(num_features, height, width, size, size, gap, cells_per_row)[3]:
            return size
    per_row = f", {cells_per_row} per row" if cells_per_row else ""
    raise DataError(
        f"{num_features} features do not fit a {height}x{width} image even as 1-pixel cells (gap {gap}{per_row}); "
        "use a smaller gap, ordinal encoding (one cell per categorical column) or fewer columns"
    )


def layout_index(num_features: int, config: TableToImageConfig) -> torch.Tensor:
    """(height, width) long tensor: the feature drawn at each pixel, -1 where none is."""
    step_h, step_w = config.cell_height + config.gap, config.cell_width + config.gap
    per_row, grid_h, grid_w, fits = grid_shape(num_features, config.height, config.width, config.cell_height,
                                               config.cell_width, config.gap, config.cells_per_row)
    if not fits:
        raise DataError(
            f"{num_features} features as {config.cell_height}x{config.cell_width}-pixel cells (gap {config.gap}, "
            f"{per_row} per row) need a {grid_h}x{grid_w} grid, but the canvas is {config.height}x{config.width}; "
            "use smaller cells, a smaller gap, fewer cells per row, or ordinal encoding (fewer features)"
        )
    top, left = (0, 0) if config.placement == "top-left" else ((config.height - grid_h) // 2, (config.width - grid_w) // 2)
    index = torch.full((config.height, config.width), -1, dtype=torch.long)
    for feature in range(num_features):
        row, col = divmod(feature, per_row)
        y, x = top + row * step_h, left + col * step_w
        index[y : y + config.cell_height, x : x + config.cell_width] = feature
    return index


class TableToImage(nn.Module):
    """The trainable bridge. theta = W, one value per canvas pixel and channel (or delta_resolution
    x delta_resolution per channel, stretched)."""

    def __init__(self, config: TableToImageConfig, seed: int = 0):
        super().__init__()
        self.config = config
        self.encoder = TableEncoder.from_dict(config.encoder)
        if self.encoder.num_features == 0:
            raise DataError("the table encoder has no features; fit it on the training table first")
        self.register_buffer("index", layout_index(self.encoder.num_features, config), persistent=False)
        generator = torch.Generator().manual_seed(seed)
        shape = coarse_shape((config.channels, config.height, config.width), config.delta_resolution)
        self.perturbation = nn.Parameter(torch.randn(shape, generator=generator) * config.perturbation_init)

    @property
    def views(self) -> int:
        """Images drawn per row: 1, or one per feature (views "per-feature")."""
        return self.encoder.num_features if self.config.views == "per-feature" else 1

    @property
    def mask(self) -> torch.Tensor:
        """1 where a feature is drawn, 0 where the perturbation shows."""
        return (self.index >= 0).float()

    def cell_masks(self) -> torch.Tensor:
        """(num_features, height, width) float masks: 1 on feature i's cell, 0 elsewhere."""
        features = torch.arange(self.encoder.num_features, device=self.index.device)
        return (self.index[None] == features[:, None, None]).float()

    def encode(self, frame: pd.DataFrame) -> torch.Tensor:
        """Table rows -> (N, D) intensities, the input `forward` takes."""
        return torch.from_numpy(self.encoder.transform(frame))

    def draw(self, intensities: torch.Tensor) -> torch.Tensor:
        """Draw(e): (N, D) -> (N, channels, height, width) in [0, 1], zero off the cells."""
        padded = torch.cat([intensities, intensities.new_zeros(len(intensities), 1)], dim=1)
        picture = padded[:, self.index]  # index -1 picks the zero column
        return picture[:, None].expand(-1, self.config.channels, -1, -1)

    def check(self, x: torch.Tensor) -> torch.Tensor:
        expected = self.encoder.num_features
        if x.ndim != 2 or x.shape[1] != expected or x.shape[0] == 0:
            raise DataError(f"the table bridge takes encoded rows of shape (N, {expected}), got {tuple(x.shape)}; "
                            "encode a DataFrame with bridge.encode(frame)")
        if not torch.isfinite(x).all():
            raise DataError("encoded rows contain NaN or infinite values; encode them with bridge.encode(frame)")
        return x.float()

    def forward(self, x: torch.Tensor, view: int | None = None) -> torch.Tensor:
        """(N, D) encoded rows -> (N, channels, height, width) images: every feature's rectangle,
        or (`view` = k) feature k's alone on the background (the k-th of the per-feature views)."""
        drawn = self.draw(self.check(x))
        mask = self.mask if view is None else (self.index == view).float()
        full = (self.config.channels, self.config.height, self.config.width)
        unit = mask * drawn + (1 - mask) * torch.sigmoid(stretch(self.perturbation, full))
        low, high = self.config.value_range
        return low + (high - low) * unit
