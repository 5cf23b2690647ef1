"""A low-dimensional theta (delta_resolution): the perturbation drawn at a few points and
stretched, for every bridge that has a perturbation; checked against hand-computed values."""

import numpy as np
import pytest
import torch

from xmodal.bridges.low_resolution import check_resolution, coarse_shape, stretch
from xmodal.bridges.series_image import SeriesToImage
from xmodal.bridges.tones import SeriesToTones
from xmodal.bridges.waveform import SeriesToWaveform
from xmodal.errors import DataError


def test_a_coarse_window_is_stretched_linearly_through_its_points():
    coarse = torch.tensor([0.0, 1.0, -1.0])
    full = stretch(coarse, (5,))
    assert torch.allclose(full, torch.tensor([0.0, 0.5, 1.0, 0.0, -1.0]))  # the points at 0, 2, 4; midpoints between


def test_a_coarse_image_is_stretched_bilinearly_per_channel():
    coarse = torch.tensor([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 1.0], [1.0, 1.0]]])
    full = stretch(coarse, (2, 3, 3))
    assert full.shape == (2, 3, 3)
    assert torch.allclose(full[0], torch.tensor([[0.0, 0.5, 1.0], [1.0, 1.5, 2.0], [2.0, 2.5, 3.0]]))
    assert torch.equal(full[1], torch.ones(3, 3))


def test_a_full_resolution_delta_is_left_as_it_is():
    delta = torch.randn(7)
    assert stretch(delta, (7,)) is delta and coarse_shape((7,), None) == (7,)


@pytest.mark.parametrize("bad", [1, 0, True, 2.5, 20001])
def test_resolutions_below_two_or_finer_than_the_input_are_refused(bad):
    with pytest.raises(DataError, match="delta_resolution"):
        check_resolution(bad, (16000,))


@pytest.mark.parametrize("bridge, shape", [
    (lambda: SeriesToWaveform(num_samples=16000, delta_resolution=32, masked=False), (32,)),
    (lambda: SeriesToTones(num_samples=16000, encoding="pitch", delta_resolution=64), (64,)),
    (lambda: SeriesToImage(delta_resolution=8), (3, 8, 8)),
])
def test_every_series_bridge_has_theta_of_the_coarse_shape_and_a_smooth_perturbation(bridge, shape):
    bridge = bridge()
    assert tuple(bridge.delta.shape) == shape
    with torch.no_grad():
        bridge.delta.copy_(torch.randn(shape, generator=torch.Generator().manual_seed(0)))
    perturbation = bridge.perturbation()
    assert perturbation.shape[-1] > shape[-1]
    # linear between the points: the second difference is zero except at the points, where the slope changes
    kinks = (perturbation.diff(dim=-1).diff(dim=-1).abs() > 1e-4).float().mean()
    assert 0 < kinks < 2 * shape[-1] / perturbation.shape[-1]


def test_the_table_bridge_takes_a_coarse_perturbation(tmp_path):
    import pandas as pd

    from xmodal.bridges.table_encoding import TableEncoder
    from xmodal.bridges.table_to_image import TableToImage, TableToImageConfig

    frame = pd.DataFrame({"a": np.arange(6.0), "b": list("xyxyxy")})
    encoder = TableEncoder.fit(frame, encoding="ordinal", missing="error")
    config = TableToImageConfig(channels=3, height=32, width=32, encoder=encoder.to_dict(), delta_resolution=4)
    bridge = TableToImage(config)
    assert tuple(bridge.perturbation.shape) == (3, 4, 4)
    assert bridge(bridge.encode(frame)).shape == (6, 3, 32, 32)
    with pytest.raises(DataError, match="delta_resolution 40 is finer than the input"):
        TableToImageConfig(channels=3, height=32, width=32, encoder=encoder.to_dict(), delta_resolution=40)


def test_a_low_resolution_fit_saves_and_reloads_the_same(tmp_path, gunpoint):
    from xmodal.estimators.series import V2SClassifier

    x, y = gunpoint.x_train[:20, None, :], gunpoint.y_train[:20]
    model = V2SClassifier("v2s", delta_resolution=50, epochs=2, random_state=0).fit(x, y)
    assert model.reprogrammer_.bridge.delta.numel() == 50
    model.save_pretrained(tmp_path / "run")
    again = V2SClassifier.from_pretrained(tmp_path / "run")
    assert again.settings_["delta_resolution"] == 50
    assert np.allclose(again.predict_proba(x[:5]), model.predict_proba(x[:5]), atol=1e-6)
