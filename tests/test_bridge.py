"""The series bridges: V2S's x' = Pad(x) + M * delta (placement, mask, bounds, bad input),
the tones, and `series_bridge`, which picks one from a setting record."""

import pytest
import torch

from adapters_modal.base import InputSpec
from xmodal.bridges.series import (
    SeriesBridge,
    mel,
    standardize,
)
from xmodal.bridges.series_factory import BRIDGE_SETTINGS, series_bridge
from xmodal.bridges.tones import SLOPE_BAND_GAP, SeriesToTones, SeriesToTonesConfig
from xmodal.bridges.waveform import SeriesToWaveform, SeriesToWaveformConfig
from xmodal.errors import DataError


def audio_spec(num_samples: int, sample_rate: int) -> InputSpec:
    return InputSpec(modality="audio", sample_rate=sample_rate, num_samples=num_samples)


AUDIO = audio_spec(16000, 16000)


def series(n=3, length=50, seed=0):
    return torch.randn(n, length, generator=torch.Generator().manual_seed(seed))


def test_standardize_per_series_and_constant_series():
    x = torch.cat([series(2) * 5 + 3, torch.full((1, 50), 7.0)])
    z = standardize(x)
    assert torch.allclose(z[:2].mean(1), torch.zeros(2), atol=1e-5)
    assert torch.allclose(z[:2].std(1, unbiased=False), torch.ones(2), atol=1e-4)
    assert torch.equal(z[2], torch.zeros(50))


def test_copies_at_equal_intervals_and_mask():
    bridge = SeriesToWaveform(num_samples=1000, copies=4, standardize=False, tanh_bound=False)
    x = series(1, 100)
    padded, mask = bridge.place(x), bridge.mask()
    for start in (0, 250, 500, 750):
        assert torch.equal(padded[0, start : start + 100], x[0])
        assert mask[start : start + 100].sum() == 0
    assert mask.sum() == 1000 - 400 and padded[0, 100:250].abs().sum() == 0


@pytest.mark.parametrize("offset, start", [("start", 0), ("centre", 450), (123, 123)])
def test_single_copy_offsets(offset, start):
    bridge = SeriesToWaveform(num_samples=1000, offset=offset, standardize=False)
    x = series(1, 100)
    padded, mask = bridge.place(x), bridge.mask()
    assert torch.equal(padded[0, start : start + 100], x[0]) and mask[start : start + 100].sum() == 0


def test_mask_really_zeroes_delta_where_the_series_sits():
    bridge = SeriesToWaveform(num_samples=1000, standardize=False, tanh_bound=False)
    x = series(2, 100)
    with torch.no_grad():
        bridge.delta.fill_(0.3)
    out = bridge(x)
    assert torch.equal(out[:, :100], x)  # delta is masked out under the series
    assert torch.allclose(out[:, 100:], torch.full((2, 900), 0.3))
    unmasked = SeriesToWaveform(num_samples=1000, standardize=False, tanh_bound=False, masked=False)
    with torch.no_grad():
        unmasked.delta.fill_(0.3)
    assert torch.allclose(unmasked(x)[:, :100], x + 0.3)


def test_delta_gets_no_gradient_under_the_mask():
    bridge = SeriesToWaveform(num_samples=1000)
    bridge(series(2, 100)).sum().backward()
    assert bridge.delta.grad[:100].abs().sum() == 0 and bridge.delta.grad[100:].abs().sum() > 0


def test_tanh_bound_keeps_waveform_in_range():
    bridge = SeriesToWaveform(num_samples=1000, standardize=False)
    with torch.no_grad():
        bridge.delta.fill_(50.0)
    out = bridge(series(2, 100) * 100)
    assert out.abs().max() <= 1.0
    free = SeriesToWaveform(num_samples=1000, standardize=False, tanh_bound=False)
    assert free(series(2, 100) * 100).abs().max() > 1.0


def test_upsampling_by_factor_and_to_duration():
    x = torch.linspace(0, 1, 10)[None]
    by_factor = SeriesToWaveform(num_samples=1000, upsample_factor=3, standardize=False, tanh_bound=False)
    padded, mask = by_factor.place(x), by_factor.mask()
    assert mask[:30].sum() == 0 and mask[30:].sum() == 970
    assert padded[0, 0] == 0 and torch.isclose(padded[0, 29], torch.tensor(1.0))
    to_duration = SeriesToWaveform(num_samples=16000, target_duration=0.5, standardize=False)
    to_duration.place(x)
    assert (to_duration.mask() == 0).sum() == 8000
    nearest = SeriesToWaveform(num_samples=1000, upsample_factor=2, interpolation="nearest", standardize=False)
    assert torch.equal(nearest.place(x)[0, :4], torch.tensor([0.0, 0.0, 1 / 9, 1 / 9]))


def test_dropout_on_delta_only_in_training():
    bridge = SeriesToWaveform(num_samples=1000, delta_dropout=0.5, standardize=False, tanh_bound=False)
    with torch.no_grad():
        bridge.delta.fill_(1.0)
    x = series(1, 10)
    bridge.train()
    assert (bridge(x)[0, 10:] == 0).any()
    bridge.eval()
    assert torch.equal(bridge(x)[0, 10:], torch.ones(990))


def test_series_longer_than_the_input_suggests_a_factor():
    bridge = SeriesToWaveform(num_samples=16000, upsample_factor=200)
    with pytest.raises(DataError, match=r"upsample_factor <= 106"):
        bridge(series(1, 150))
    with pytest.raises(DataError, match="does not fit"):
        SeriesToWaveform(num_samples=1000)(series(1, 1001))


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.tensor([[1.0, float("nan"), 2.0]]), "NaN or infinite"),
        (torch.tensor([[1.0, float("inf"), 2.0]]), "NaN or infinite"),
        (torch.zeros(0, 10), "empty input"),
        (torch.zeros(2, 0), "empty input"),
        (torch.zeros(2, 3, 10), "univariate"),
        (torch.zeros(10), "shape"),
    ],
)
def test_bad_input_is_named(bad, message):
    with pytest.raises(DataError, match=message):
        SeriesToWaveform(num_samples=1000)(bad)


def test_length_is_fixed_after_first_use():
    bridge = SeriesToWaveform(num_samples=1000)
    bridge(series(1, 50))
    with pytest.raises(DataError, match="fitted on length 50"):
        bridge(series(1, 60))


@pytest.mark.parametrize(
    "settings",
    [{"upsample_factor": 0}, {"upsample_factor": 2, "target_duration": 0.5}, {"target_duration": 2.0},
     {"interpolation": "cubic"}, {"copies": 0}, {"copies": 2, "offset": "centre"}, {"offset": "middle"},
     {"delta_dropout": 1.0}],
)
def test_invalid_settings_are_refused(settings):
    with pytest.raises(DataError):
        SeriesToWaveformConfig(**settings)


def test_config_refuses_unknown_keys_and_wrong_types():
    # a saved config is data from anywhere (xmodal.settings_record); newer saves are refused on their version
    assert SeriesToWaveformConfig.from_dict({"copies": 2}).copies == 2
    with pytest.raises(TypeError, match="unknown SeriesToWaveformConfig setting.*'added_in_a_future_version'"):
        SeriesToWaveformConfig.from_dict({"copies": 2, "added_in_a_future_version": True})
    for key, value in [("copies", 2.0), ("copies", True), ("masked", 1), ("offset", None), ("target_duration", "1")]:
        with pytest.raises(TypeError, match=f"setting {key!r} should be"):
            SeriesToWaveformConfig.from_dict({key: value})
    assert SeriesToWaveformConfig.from_dict({"offset": 7, "target_duration": 1}).offset == 7  # str | int, float


def _dominant_hz(tone: torch.Tensor, sample_rate: int) -> float:
    spectrum = torch.fft.rfft(tone * torch.hann_window(len(tone))).abs()
    return float(spectrum.argmax()) * sample_rate / len(tone)


def test_pitch_encoding_turns_the_series_value_into_the_tone_frequency():
    bridge = SeriesToTones(encoding="pitch", tanh_bound=False, delta_init=0.0)
    step = torch.cat([torch.zeros(1, 50), torch.ones(1, 50)], dim=1)  # standardised: -1 then +1
    tone = bridge.place(step)
    with torch.no_grad():
        bridge.delta.fill_(0.3)
    assert tone.shape == (1, 16000) and torch.equal(bridge.perturbation(), bridge.delta)  # the tone fills the window
    assert tone.abs().max() <= 0.5 + 1e-6
    low, high = mel(80.0), mel(7000.0)
    for level, part in ((1 / 3, tone[0, 1000:7000]), (2 / 3, tone[0, 9000:15000])):  # -1 and +1 sd of +-3
        expected = 700 * (10 ** ((low + (high - low) * level) / 2595) - 1)
        assert abs(_dominant_hz(part, 16000) - expected) < 16000 / len(part) * 2


def test_tone_settings_are_checked():
    with pytest.raises(DataError, match="Nyquist"):
        SeriesToTonesConfig(encoding="pitch", pitch_high=9000.0)
    with pytest.raises(DataError, match="one of"):
        SeriesToTonesConfig(encoding="waveform")
    with pytest.raises(DataError, match="standardize=True"):
        SeriesToTonesConfig(encoding="pitch", standardize=False)
    with pytest.raises(DataError, match="too narrow"):
        SeriesToTonesConfig(encoding="pitch+slope", pitch_low=1000.0, pitch_high=1100.0)
    with pytest.raises(DataError, match="interpolation"):
        SeriesToTonesConfig(interpolation="cubic")


def test_pitch_and_slope_encoding_plays_the_slope_in_the_upper_band():
    bridge = SeriesToTones(encoding="pitch+slope", tanh_bound=False, delta_init=0.0)
    triangle = torch.cat([torch.linspace(0, 1, 51), torch.linspace(1, 0, 51)[1:]])[None]  # 50 steps up, 50 down
    tone = bridge.place(triangle)
    assert tone.abs().max() <= 0.5 + 1e-6
    low, high = mel(80.0), mel(7000.0)
    split = 700 * (10 ** ((low + high) / 2 / 2595) - 1)
    upper_low = mel(split * (1 + SLOPE_BAND_GAP))
    for level, part in ((2 / 3, tone[0, 1000:7000]), (1 / 3, tone[0, 9000:15000])):  # slope +1 sd, then -1 sd
        spectrum = torch.fft.rfft(part * torch.hann_window(len(part))).abs()
        hz = torch.arange(len(spectrum)) * 16000 / len(part)
        spectrum[hz < split] = 0  # the series' own tone lives below the split
        expected = 700 * (10 ** ((upper_low + (high - upper_low) * level) / 2595) - 1)
        assert abs(float(hz[spectrum.argmax()]) - expected) < 16000 / len(part) * 2
    too_short = SeriesToTones(encoding="pitch+slope")
    with pytest.raises(DataError, match="at least 2 samples"):
        too_short.place(torch.ones(2, 1))
    assert too_short.config.series_length is None  # a refused length is not fixed


@pytest.mark.parametrize("preset, kind", [("v2s", SeriesToWaveform), ("tones", SeriesToTones)])
def test_series_bridge_builds_the_bridge_a_preset_asks_for(preset, kind):
    from xmodal.presets import resolve_settings

    settings = resolve_settings("series", preset, {})
    bridge = series_bridge(AUDIO, {name: settings[name] for name in BRIDGE_SETTINGS}, seed=3)
    assert type(bridge) is kind and isinstance(bridge, SeriesBridge)
    assert bridge.config.encoding == settings["encoding"]
    direct = kind(kind.config_class(num_samples=16000, sample_rate=16000,
                                    **{k: v for k, v in settings.items() if k in bridge.config.to_dict()}), seed=3)
    assert bridge.config == direct.config and torch.equal(bridge(series(2, 60)), direct(series(2, 60)))


def test_bridge_settings_are_the_series_settings_a_bridge_takes():
    from dataclasses import fields

    from xmodal.bridges.series_image import SeriesToImageConfig
    from xmodal.settings import SETTINGS

    taken = {f.name for config in (SeriesToWaveformConfig, SeriesToTonesConfig, SeriesToImageConfig)
             for f in fields(config)}
    # encoding and trained_view choose the bridge; the others are its config's fields
    assert set(BRIDGE_SETTINGS) == (taken | {"encoding", "trained_view"}) & set(SETTINGS["series"])
    with pytest.raises(DataError, match="unknown series bridge settings \\['epochs'\\]"):
        series_bridge(AUDIO, {"encoding": "waveform", "epochs": 3})


def test_series_bridge_reads_the_offset_from_a_string():
    assert series_bridge(audio_spec(1000, 1000), {"offset": "123"}).config.offset == 123
    assert series_bridge(audio_spec(1000, 1000), {"offset": "centre"}).config.offset == "centre"
    with pytest.raises(DataError, match="offset must be"):
        series_bridge(audio_spec(1000, 1000), {"offset": "-5"})
    # a tone bridge takes the neutral placement, however it is spelled
    assert type(series_bridge(AUDIO, {"encoding": "pitch", "masked": False, "offset": "0"})) is SeriesToTones


def test_series_bridge_refuses_settings_the_encoding_cannot_honour():
    with pytest.raises(DataError, match=r"set masked=False \(CLI: --no-masked\)"):
        series_bridge(AUDIO, {"encoding": "pitch", "masked": True})
    with pytest.raises(DataError, match="copies=3 cannot apply; leave them at copies=1"):
        series_bridge(AUDIO, {"encoding": "pitch", "masked": False, "copies": 3})
    with pytest.raises(DataError, match="offset=123") as both:
        series_bridge(AUDIO, {"encoding": "pitch+slope", "masked": True, "offset": "123", "upsample_factor": 2})
    assert "upsample_factor=2" in str(both.value) and "--no-masked" in str(both.value) and "\n" not in str(both.value)
    with pytest.raises(DataError, match="tone settings pitch_high=5000.0"):
        series_bridge(AUDIO, {"encoding": "waveform", "pitch_high": 5000.0})
    with pytest.raises(DataError, match="encoding must be one of"):
        series_bridge(AUDIO, {"encoding": "sound"})
    with pytest.raises(DataError, match="unknown series bridge settings \\['mask'\\]"):
        series_bridge(AUDIO, {"mask": False})
    with pytest.raises(DataError, match="standardize=True"):
        series_bridge(AUDIO, {"encoding": "pitch", "masked": False, "standardize": False})


def test_waveform_config_names_its_encoding_but_does_not_save_it():
    config = SeriesToWaveformConfig()
    assert config.encoding == "waveform" and "encoding" not in config.to_dict()
