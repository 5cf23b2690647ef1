"""Automatic square cells and the cell read-out (every BC-ResNet layer's mean over
each feature's cell), with the real BC-ResNet weights and real German credit data."""

import numpy as np
import pytest
import torch
from torch import nn

from adapters_modal import InputSpec
from tests.conftest import SHARED
from xmodal.bridges.cell_readout import cell_means, pooled_cell_weights
from xmodal.bridges.table_encoding import TableEncoder
from xmodal.bridges.table_to_image import TableToImage, TableToImageConfig, auto_layout
from xmodal.data.tables import load_table
from xmodal.errors import DataError, XmodalError

GERMAN = SHARED / "data" / "tabular" / "german_credit_uci"


@pytest.fixture(scope="module")
def german():
    return load_table(GERMAN)


@pytest.fixture(scope="module")
def image_source():
    from adapters_modal import load_source

    return load_source("bc-resnet-gsc35-image")


def _encoder(num_features):
    names = [f"c{i}" for i in range(num_features)]
    return TableEncoder(numeric=names, means=dict.fromkeys(names, 0.0), scales=dict.fromkeys(names, 1.0))


def _bridge(num_features=20, **layout):
    spec = InputSpec(modality="image", channels=1, height=40, width=32, value_range=(-30.0, 12.0))
    return TableToImage(TableToImageConfig.for_source(spec, _encoder(num_features), **layout))


def test_auto_layout_finds_the_largest_square_that_fits():
    assert auto_layout(20, 40, 32, gap=2) == 6  # 5 rows of 4: 38 x 30 pixels; 7-pixel cells fit 3 a row, 7 rows
    assert auto_layout(20, 40, 32, gap=0) == 8  # 5 rows of 4 fill 40 x 32 exactly
    assert auto_layout(1, 40, 32, gap=2) == 32
    assert auto_layout(61, 40, 32, gap=2) == 2  # German credit one-hot: 8 a row, 8 rows
    assert auto_layout(20, 40, 32, gap=2, cells_per_row=2) == 2  # 10 rows of 2: 38 high; 3-pixel cells need 48
    assert auto_layout(1280, 40, 32, gap=0) == 1
    with pytest.raises(DataError, match="1281 features do not fit a 40x32 image even as 1-pixel cells \\(gap 0\\)"):
        auto_layout(1281, 40, 32, gap=0)
    with pytest.raises(DataError, match="330 features do not fit a 40x32 image .*gap 1"):
        auto_layout(330, 40, 32, gap=1)  # 16 a row, 20 rows: at most 320


def test_cell_size_none_resolves_and_is_saved_as_drawn():
    bridge = _bridge(cell_size=None, gap=2)
    assert (bridge.config.cell_height, bridge.config.cell_width) == (6, 6)
    again = TableToImageConfig.from_dict(bridge.config.to_dict())
    assert again == bridge.config and again.cell_height == 6
    assert (_bridge(cell_size=3).config.cell_height, _bridge(cell_size=3).config.cell_width) == (3, 3)
    assert _bridge().config.cell_height == 2  # no size given: the former default, 2 x 2
    with pytest.raises(DataError, match="cell_size or cell_height"):
        _bridge(cell_size=3, cell_height=2)
    with pytest.raises(DataError, match="set both cell_height and cell_width, or neither"):
        _bridge(cell_height=None)
    with pytest.raises(DataError, match="needs the fitted table encoder"):
        TableToImageConfig(cell_height=None, cell_width=None)
    with pytest.raises(DataError, match="2000 features do not fit a 40x32 image"):
        _bridge(2000, cell_size=None, gap=2)


def test_cell_masks_are_disjoint_squares_of_the_drawn_cells():
    bridge = _bridge(cell_size=None, gap=2)
    masks = bridge.cell_masks()
    assert masks.shape == (20, 40, 32) and masks.dtype == torch.float32
    assert set(masks.unique().tolist()) == {0.0, 1.0}
    assert (masks.sum(dim=(1, 2)) == 36).all()  # 6 x 6 each
    assert masks.sum(dim=0).max() == 1 and torch.equal(masks.sum(dim=0), bridge.mask)
    assert masks[0].nonzero().min(dim=0).values.tolist() == [1, 1]  # 38 x 30 grid centred in 40 x 32
    assert masks[5].nonzero().min(dim=0).values.tolist() == [9, 9]  # second row, second column
    rows = torch.zeros(1, 20)
    rows[0, 7] = 1.0
    image = bridge(rows)[0, 0]
    assert torch.equal(image == 12.0, masks[7].bool())  # feature 7 is drawn exactly on its mask


def test_cell_means_equal_hand_computed_means():
    masks = torch.zeros(2, 4, 4)
    masks[0, 0:2, 0:3] = 1  # 2 x 3 cell at the top left
    masks[1, 3, 3] = 1  # one pixel at the bottom right
    full = torch.arange(32.0).reshape(1, 2, 4, 4)  # 2 channels at the input resolution
    half = torch.tensor([[[[1.0, 4.0], [10.0, 100.0]]]])  # 1 channel at half resolution
    out = cell_means([full, half], masks)
    assert out.shape == (1, 2 * 2 + 1 * 2)
    channel0 = [np.mean([0, 1, 2, 4, 5, 6]), 15.0]
    channel1 = [np.mean([16, 17, 18, 20, 21, 22]), 31.0]
    # half resolution: the first cell covers all of position (0, 0) and half of (0, 1) -> weights 2/3, 1/3
    pooled = [(2 * 1.0 + 1 * 4.0) / 3, 100.0]
    assert torch.allclose(out[0], torch.tensor(channel0 + channel1 + pooled, dtype=torch.float32))  # order: map, channel, feature
    assert torch.allclose(pooled_cell_weights(masks, (2, 2))[0], torch.tensor([[2 / 3, 1 / 3], [0, 0]]))
    with pytest.raises(DataError, match="at least one pixel"):
        cell_means([full], torch.zeros(1, 4, 4))


def test_gradients_flow_through_the_cell_read_out(image_source):
    from xmodal.maps import LinearHead
    from xmodal.reprogrammer import Reprogrammer

    bridge = _bridge(cell_size=None, gap=2)
    image = bridge(torch.rand(3, 20)).detach().requires_grad_(True)
    maps = image_source.feature_maps(image)
    assert [tuple(m.shape[1:]) for m in maps][:2] == [(32, 20, 32), (16, 20, 32)] and len(maps) == 14
    features = cell_means(maps, bridge.cell_masks())
    width = sum(m.shape[1] for m in maps) * 20
    assert features.shape == (3, width) == (3, 464 * 20)
    features.sum().backward()
    assert image.grad.abs().sum() > 0 and torch.isfinite(image.grad).all()

    model = Reprogrammer(bridge, image_source, LinearHead(width, 2), classes=["bad", "good"], reads="cells")
    assert model.source_logits(torch.rand(2, 20)).shape == (2, width)
    model(torch.rand(4, 20)).sum().backward()
    assert bridge.perturbation.grad.abs().sum() > 0  # theta gets a gradient through the gaps
    with pytest.raises(XmodalError, match="reads='cells' needs a bridge that draws cells"):
        Reprogrammer(nn.Identity(), image_source, LinearHead(width, 2), reads="cells")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")  # scikit-learn 1.9 LogisticRegressionCV deprecations
def test_cell_probe_on_german_credit_beats_chance_by_far(german, image_source):
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = (german.labels == "bad").astype(int)
    train, test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=0)
    frames = [german.features.iloc[np.sort(part)].reset_index(drop=True) for part in (train, test)]
    encoder = TableEncoder.fit(frames[0], encoding="ordinal")
    bridge = TableToImage(TableToImageConfig.for_source(image_source.input_spec, encoder, cell_size=None, gap=2))
    assert bridge.config.cell_height == 6
    with torch.no_grad():
        x_train, x_test = (cell_means(image_source.feature_maps(bridge(bridge.encode(f))), bridge.cell_masks()).numpy()
                           for f in frames)
    assert x_train.shape == (800, 464 * 20)
    probe = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=10, cv=5, scoring="roc_auc", max_iter=3000))
    probe.fit(x_train, y[np.sort(train)])
    auc = roc_auc_score(y[np.sort(test)], probe.predict_proba(x_test)[:, 1])
    assert auc >= 0.75, auc
