"""The series -> image bridge (TiViT-style): windows, pictures (the window rows, the recurrence
plot, the line chart), value range, delta, the factory's refusals, and a save / load round trip through
V2SClassifier on image sources."""

import json

import numpy as np
import pytest
import torch

from adapters_modal.base import InputSpec
from xmodal.bridges.series import SeriesBridge, standardize
from xmodal.bridges.series_factory import BRIDGE_SETTINGS, series_bridge
from xmodal.bridges.series_image import (
    SeriesToImage,
    SeriesToImageConfig,
    frame_mask,
    line_image,
    recurrence_image,
    series_image,
    unit_scale,
    window_and_stride,
    window_rows,
)
from xmodal.errors import DataError
from xmodal.persistence import BRIDGES, CONFIG_FILE, FORMAT_VERSION, LINE_FORMAT_VERSION

IMAGE = InputSpec(modality="image", channels=3, height=16, width=12, value_range=(-1.0, 2.0))
AUDIO = InputSpec(modality="audio", sample_rate=16000, num_samples=16000)


def series(n=3, length=50, seed=0):
    return torch.randn(n, length, generator=torch.Generator().manual_seed(seed))


def test_window_is_about_sqrt_length_and_stride_half_of_it():
    assert window_and_stride(100) == (10, 5)
    assert window_and_stride(150) == (12, 6)  # GunPoint
    assert window_and_stride(4) == (2, 1)


def test_windows_overlap_and_cover_the_series_padding_with_its_last_value():
    x = torch.arange(10.0)[None]
    rows = window_rows(x, 3, 2)
    assert rows.shape == (1, 5, 3)
    assert rows[0].tolist() == [[0, 1, 2], [2, 3, 4], [4, 5, 6], [6, 7, 8], [8, 9, 9]]
    exact = window_rows(torch.arange(100.0)[None], *window_and_stride(100))  # (100 - 10) / 5 + 1 rows, no padding
    assert exact.shape == (1, 19, 10) and exact[0, -1, -1] == 99 and exact[0, 1, 0] == 5


def test_series_image_has_the_canvas_shape_and_spans_zero_to_one():
    picture = series_image(series(2, 100), 16, 12)
    assert picture.shape == (2, 16, 12)
    assert torch.allclose(picture.flatten(1).amin(1), torch.zeros(2))
    assert torch.allclose(picture.flatten(1).amax(1), torch.ones(2))
    assert torch.equal(unit_scale(torch.full((1, 3, 3), 7.0)), torch.full((1, 3, 3), 0.5))  # constant: mid-grey


def test_a_ramp_draws_rows_that_grow_downward_and_rightward():
    picture = series_image(torch.arange(100.0)[None], 19, 10, "nearest")  # the window image's own size
    assert torch.all(picture[0, 1:] > picture[0, :-1]) and torch.all(picture[0, :, 1:] > picture[0, :, :-1])


def test_the_recurrence_plot_is_how_far_apart_every_two_moments_are():
    x = torch.tensor([[0.0, 1.0, 3.0]])
    square = torch.tensor([[0.0, 1, 3], [1, 0, 2], [3, 2, 0]]) / 3  # |x_i - x_j|, scaled by the largest
    torch.testing.assert_close(recurrence_image(x, 3, 3)[0], square)
    stretched = torch.tensor([0.0, 0, 1, 1, 3, 3])  # the columns: x stretched to 6 samples (nearest)
    torch.testing.assert_close(recurrence_image(x, 3, 6, "nearest")[0], (x[0, :, None] - stretched).abs() / 3)
    assert torch.equal(recurrence_image(torch.full((1, 5), 2.0), 4, 4), torch.full((1, 4, 4), 0.5))  # mid-grey


def test_the_line_chart_inks_each_column_where_the_series_passes():
    ramp = line_image(torch.arange(5.0)[None], 9, 5)[0]  # margin 4 of 9 rows: every value on row 4
    assert ramp.shape == (9, 5) and torch.equal(ramp[4], torch.zeros(5)) and torch.equal(ramp[[0, 8]], torch.ones(2, 5))
    torch.testing.assert_close(ramp[:, 0], torch.tensor([1, 1, 1, 0.5, 0, 0.5, 1, 1, 1]))  # fading over 2 pixels
    up = line_image(torch.arange(50.0)[None], 40, 40)[0]  # high values drawn at the top
    assert up[:, 0].argmin() > 30 and up[:, -1].argmin() < 10 and up.amin(dim=0).max() < 0.5  # ink in every column
    peak = torch.tensor([[0.0, 1.0, 0.0]])  # on 9 columns: the samples at columns 0, 4 and 8
    linear, nearest = line_image(peak, 21, 9)[0], line_image(peak, 21, 9, "nearest")[0]  # rows 4 (top) to 16
    assert linear[9, 2] == 0 and linear[16, 2] == 1  # straight segments: halfway up at column 2
    assert torch.all(nearest[16, :3] == 0) and torch.all(nearest[4, 3:6] == 0)  # a step chart: held flat
    spike = torch.zeros(1, 2000)
    spike[0, 1234] = 1.0  # one sample in 2 000, squeezed with 50 others into a column: its peak still drawn
    assert line_image(spike, 40, 40)[0, 4].min() == 0
    assert torch.equal(line_image(torch.full((1, 5), 2.0), 12, 4), line_image(torch.full((1, 5), -7.0), 12, 4))
    assert torch.all(line_image(torch.full((1, 5), 2.0), 12, 4)[0, 5:7] < 1)  # a constant series: level, mid-height


def test_a_line_chart_saves_as_format_11_and_predicts_the_same_after_loading(tmp_path):
    from xmodal.estimators.series import V2SClassifier

    x, y = series(12, 40, seed=4).numpy(), np.array([0, 1] * 6)
    model = V2SClassifier("fused", source="bc-resnet-gsc35-image", encoding="image", picture="line", epochs=0,
                          random_state=0).fit(x, y)
    document = json.loads((model.save_pretrained(tmp_path / "line") / CONFIG_FILE).read_text())
    assert document["bridge"]["config"]["picture"] == "line"
    assert document["format_version"] == LINE_FORMAT_VERSION == FORMAT_VERSION == 11  # a version-10 reader: upgrade
    reloaded = V2SClassifier.from_pretrained(tmp_path / "line")
    np.testing.assert_allclose(reloaded.predict_proba(x), model.predict_proba(x), atol=1e-6)


def test_the_bridge_draws_the_picture_its_config_names():
    x = series(2, 50)
    recurrence = series_bridge(IMAGE, {"encoding": "image", "picture": "recurrence"})
    expected = 2 * recurrence_image(standardize(x), IMAGE.height, IMAGE.width) - 1
    torch.testing.assert_close(recurrence.place(x), expected[:, None].expand(-1, 3, -1, -1), atol=1e-5, rtol=0)
    windows = series_bridge(IMAGE, {"encoding": "image"})
    assert windows.config.picture == "windows" and not torch.allclose(windows.place(x), recurrence.place(x))
    older_save = {name: value for name, value in recurrence.config.to_dict().items() if name != "picture"}
    assert SeriesToImageConfig.from_dict(older_save).picture == "windows"  # saved before there was a choice


@pytest.mark.parametrize("tanh_bound", [True, False])
def test_output_stays_in_the_value_range_and_repeats_over_channels(tanh_bound):
    bridge = series_bridge(IMAGE, {"encoding": "image", "masked": False, "tanh_bound": tanh_bound})
    assert isinstance(bridge, SeriesToImage) and isinstance(bridge, SeriesBridge)
    with torch.no_grad():
        bridge.delta.normal_(0, 5.0)  # a large delta pushes far past the bounds
    out = bridge(series(4, 60))
    assert out.shape == (4, 3, 16, 12)
    assert out.min() >= -1.0 and out.max() <= 2.0
    with torch.no_grad():
        bridge.delta.zero_()
        image = bridge(series(4, 60))
    assert torch.equal(image[:, 0], image[:, 2])  # grayscale: the same picture on every channel
    if not tanh_bound:  # a clamp leaves the picture exact: its darkest and brightest pixels at the range's ends
        assert torch.allclose(image.flatten(1).amin(1), torch.full((4,), -1.0))
        assert torch.allclose(image.flatten(1).amax(1), torch.full((4,), 2.0))


def test_gradients_reach_delta_and_the_mask_keeps_them_on_the_frame():
    bridge = SeriesToImage(SeriesToImageConfig.for_source(IMAGE, frame=2, masked=True), seed=1)
    assert bridge.delta.shape == (3, 16, 12)
    bridge(series(2, 40)).square().sum().backward()
    grad = bridge.delta.grad
    assert grad.abs().sum() > 0
    mask = frame_mask(bridge.config)
    assert mask.sum() == 16 * 12 - 12 * 8
    assert torch.all(grad[:, mask == 0] == 0) and torch.all(grad[:, mask == 1] != 0)
    unmasked = SeriesToImage(SeriesToImageConfig.for_source(IMAGE), seed=1)
    unmasked(series(2, 40)).sum().backward()
    assert torch.all(unmasked.delta.grad != 0)


def test_delta_dropout_and_seeded_init():
    a = series_bridge(IMAGE, {"encoding": "image", "masked": False, "delta_dropout": 0.5}, seed=3)
    b = SeriesToImage(SeriesToImageConfig.for_source(IMAGE, delta_dropout=0.5), seed=3)
    assert torch.equal(a.delta, b.delta) and a.delta.std() < 1e-2
    a.eval()
    assert torch.equal(a(series(1, 30)), a(series(1, 30)))


def test_series_length_is_fixed_by_the_first_batch():
    bridge = SeriesToImage(SeriesToImageConfig.for_source(IMAGE))
    with pytest.raises(DataError, match="at least 4 samples"):
        bridge(torch.ones(2, 3))
    assert bridge.config.series_length is None
    bridge(series(2, 30))
    assert bridge.config.series_length == 30
    with pytest.raises(DataError, match="fitted on length 30"):
        bridge(series(2, 31))
    with pytest.raises(DataError, match="univariate"):
        bridge(torch.zeros(2, 2, 30))


def test_config_round_trips_through_its_dict():
    config = SeriesToImageConfig.for_source(IMAGE, frame=1, masked=True, tanh_bound=False)
    config.series_length = 77
    saved = config.to_dict()
    assert saved["value_range"] == [-1.0, 2.0] and "encoding" not in saved
    assert SeriesToImageConfig.from_dict(saved) == config
    assert BRIDGES["series_to_image"] == (SeriesToImage, SeriesToImageConfig) and FORMAT_VERSION >= 4


def test_refusals_name_the_fix_in_one_line():
    cases = [
        (AUDIO, {"encoding": "image", "masked": False}, "this source takes audio; use an image source"),
        (IMAGE, {"encoding": "pitch+slope", "masked": False}, r"set encoding='image' \(CLI: --encoding image\)"),
        (IMAGE, {"encoding": "waveform"}, "this source takes image"),
        (IMAGE, {"encoding": "image", "masked": True}, r"set masked=False \(CLI: --no-masked\)"),
        (IMAGE, {"encoding": "image", "masked": False, "copies": 2}, "copies=2 cannot apply; leave them at copies=1"),
        (IMAGE, {"encoding": "image", "masked": False, "pitch_low": 100.0}, "pitch_low=100.0 cannot apply"),
        (IMAGE, {"encoding": "image", "masked": False, "target_duration": 0.5}, "target_duration=0.5"),
        (AUDIO, {"encoding": "waveform", "frame": 2}, "frame=2: only encoding='image'.*leave frame=0"),
        (AUDIO, {"encoding": "pitch", "masked": False, "frame": 2}, "encoding='pitch' plays the series"),
        (AUDIO, {"encoding": "waveform", "picture": "recurrence"}, "picture='recurrence'.*leave picture='windows'"),
        (IMAGE, {"encoding": "image", "picture": "gasf"}, "name one of .'windows', 'recurrence', 'line'. for"),
        (IMAGE, {"encoding": "image", "frame": 8}, "frame must be"),
    ]
    for spec, settings, message in cases:
        with pytest.raises(DataError, match=message) as refused:
            series_bridge(spec, settings)
        assert "\n" not in str(refused.value)
    with pytest.raises(DataError, match="offset=7") as both:
        series_bridge(IMAGE, {"encoding": "image", "masked": True, "offset": "7"})
    assert "--no-masked" in str(both.value)
    # the neutral audio settings, however spelled, are taken; an image source defaults to encoding "image"
    assert type(series_bridge(IMAGE, {"masked": False, "offset": "0", "copies": 1, "upsample_factor": 1})) is SeriesToImage


def test_a_preset_record_with_encoding_image_builds_the_bridge():
    from xmodal.presets import resolve_settings

    settings = resolve_settings("series", "late-fusion", {"encoding": "image", "source": "efficientnet-lite0"})
    bridge = series_bridge(IMAGE, {name: settings[name] for name in BRIDGE_SETTINGS}, seed=0)
    assert type(bridge) is SeriesToImage and not bridge.config.masked
    with pytest.raises(DataError, match="masked=False"):
        series_bridge(IMAGE, {name: resolve_settings("series", "v2s", {"encoding": "image"})[name]
                              for name in BRIDGE_SETTINGS})


def tiny_ucr(n_per_class=3, length=40, seed=0):
    """Two classes of short series: a bump early or late."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, length)
    X, y = [], []
    for label, centre in (("early", 0.3), ("late", 0.7)):
        for _ in range(n_per_class):
            X.append(np.exp(-((t - centre) ** 2) / 0.01) + 0.05 * rng.standard_normal(length))
            y.append(label)
    return np.asarray(X)[:, None, :], np.asarray(y)


def test_v2s_classifier_reads_an_image_source_and_round_trips(tmp_path):
    from xmodal.estimators.series import V2SClassifier

    X, y = tiny_ucr()
    classifier = V2SClassifier(encoding="image", source="bc-resnet-gsc35-image", mapping="layers", epochs=1,
                               trained_view=False, patience=1, val_fraction=0.0, random_state=0).fit(X, y)
    assert isinstance(classifier.reprogrammer_.bridge, SeriesToImage)
    proba = classifier.predict_proba(X)
    folder = classifier.save_pretrained(tmp_path / "image")
    reloaded = V2SClassifier.from_pretrained(folder)
    assert isinstance(reloaded.reprogrammer_.bridge, SeriesToImage)
    assert reloaded.reprogrammer_.bridge.config == classifier.reprogrammer_.bridge.config
    np.testing.assert_allclose(reloaded.predict_proba(X), proba, atol=1e-6)
    assert (classifier.predict(X) == y).mean() >= 0.5
    with pytest.raises(DataError, match="this source takes image"):
        V2SClassifier(encoding="pitch+slope", source="bc-resnet-gsc35-image", masked=False, epochs=0,
                      trained_view=False).fit(X, y)
    with pytest.raises(DataError, match="this source takes audio"):
        V2SClassifier(encoding="image", source="bc-resnet-gsc35", masked=False, epochs=0,
                      trained_view=False).fit(X, y)


def test_efficientnet_probe_on_a_tiny_ucr_subset_round_trips(tmp_path):
    pytest.importorskip("timm")
    from xmodal.estimators.series import V2SClassifier

    X, y = tiny_ucr(n_per_class=2)
    classifier = V2SClassifier(encoding="image", source="efficientnet-lite0", mapping="layers", epochs=0,
                               trained_view=False, random_state=0).fit(X, y)
    assert classifier.reprogrammer_.bridge(torch.tensor(X[:1], dtype=torch.float32)).shape == (1, 3, 224, 224)
    folder = classifier.save_pretrained(tmp_path / "lite0")
    reloaded = V2SClassifier.from_pretrained(folder)
    np.testing.assert_allclose(reloaded.predict_proba(X), classifier.predict_proba(X), atol=1e-6)
