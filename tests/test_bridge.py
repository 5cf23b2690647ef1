"""The V2S bridge x' = Pad(x) + M * delta: placement, mask, bounds and bad input."""

import pytest
import torch

from xmodal.bridges.series_to_audio import SeriesToAudio, SeriesToAudioConfig, standardize
from xmodal.errors import DataError


def series(n=3, length=50, seed=0):
    return torch.randn(n, length, generator=torch.Generator().manual_seed(seed))


def test_standardize_per_series_and_constant_series():
    x = torch.cat([series(2) * 5 + 3, torch.full((1, 50), 7.0)])
    z = standardize(x)
    assert torch.allclose(z[:2].mean(1), torch.zeros(2), atol=1e-5)
    assert torch.allclose(z[:2].std(1, unbiased=False), torch.ones(2), atol=1e-4)
    assert torch.equal(z[2], torch.zeros(50))


def test_copies_at_equal_intervals_and_mask():
    bridge = SeriesToAudio(num_samples=1000, copies=4, standardize=False, tanh_bound=False)
    x = series(1, 100)
    padded, mask = bridge.place(x)
    for start in (0, 250, 500, 750):
        assert torch.equal(padded[0, start : start + 100], x[0])
        assert mask[start : start + 100].sum() == 0
    assert mask.sum() == 1000 - 400 and padded[0, 100:250].abs().sum() == 0


@pytest.mark.parametrize("offset, start", [("start", 0), ("centre", 450), (123, 123)])
def test_single_copy_offsets(offset, start):
    bridge = SeriesToAudio(num_samples=1000, offset=offset, standardize=False)
    x = series(1, 100)
    padded, mask = bridge.place(x)
    assert torch.equal(padded[0, start : start + 100], x[0]) and mask[start : start + 100].sum() == 0


def test_mask_really_zeroes_delta_where_the_series_sits():
    bridge = SeriesToAudio(num_samples=1000, standardize=False, tanh_bound=False)
    x = series(2, 100)
    with torch.no_grad():
        bridge.delta.fill_(0.3)
    out = bridge(x)
    assert torch.equal(out[:, :100], x)  # delta is masked out under the series
    assert torch.allclose(out[:, 100:], torch.full((2, 900), 0.3))
    unmasked = SeriesToAudio(num_samples=1000, standardize=False, tanh_bound=False, masked=False)
    with torch.no_grad():
        unmasked.delta.fill_(0.3)
    assert torch.allclose(unmasked(x)[:, :100], x + 0.3)


def test_delta_gets_no_gradient_under_the_mask():
    bridge = SeriesToAudio(num_samples=1000)
    bridge(series(2, 100)).sum().backward()
    assert bridge.delta.grad[:100].abs().sum() == 0 and bridge.delta.grad[100:].abs().sum() > 0


def test_tanh_bound_keeps_waveform_in_range():
    bridge = SeriesToAudio(num_samples=1000, standardize=False)
    with torch.no_grad():
        bridge.delta.fill_(50.0)
    out = bridge(series(2, 100) * 100)
    assert out.abs().max() <= 1.0
    free = SeriesToAudio(num_samples=1000, standardize=False, tanh_bound=False)
    assert free(series(2, 100) * 100).abs().max() > 1.0


def test_upsampling_by_factor_and_to_duration():
    x = torch.linspace(0, 1, 10)[None]
    by_factor = SeriesToAudio(num_samples=1000, upsample_factor=3, standardize=False, tanh_bound=False)
    padded, mask = by_factor.place(x)
    assert mask[:30].sum() == 0 and mask[30:].sum() == 970
    assert padded[0, 0] == 0 and torch.isclose(padded[0, 29], torch.tensor(1.0))
    to_duration = SeriesToAudio(num_samples=16000, target_duration=0.5, standardize=False)
    assert (to_duration.place(x)[1] == 0).sum() == 8000
    nearest = SeriesToAudio(num_samples=1000, upsample_factor=2, interpolation="nearest", standardize=False)
    assert torch.equal(nearest.place(x)[0][0, :4], torch.tensor([0.0, 0.0, 1 / 9, 1 / 9]))


def test_dropout_on_delta_only_in_training():
    bridge = SeriesToAudio(num_samples=1000, delta_dropout=0.5, standardize=False, tanh_bound=False)
    with torch.no_grad():
        bridge.delta.fill_(1.0)
    x = series(1, 10)
    bridge.train()
    assert (bridge(x)[0, 10:] == 0).any()
    bridge.eval()
    assert torch.equal(bridge(x)[0, 10:], torch.ones(990))


def test_series_longer_than_the_input_suggests_a_factor():
    bridge = SeriesToAudio(num_samples=16000, upsample_factor=200)
    with pytest.raises(DataError, match=r"upsample_factor <= 106"):
        bridge(series(1, 150))
    with pytest.raises(DataError, match="does not fit"):
        SeriesToAudio(num_samples=1000)(series(1, 1001))


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
        SeriesToAudio(num_samples=1000)(bad)


def test_length_is_fixed_after_first_use():
    bridge = SeriesToAudio(num_samples=1000)
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
        SeriesToAudioConfig(**settings)


def test_config_tolerates_unknown_keys():
    config = SeriesToAudioConfig.from_dict({"copies": 2, "added_in_a_future_version": True})
    assert config.copies == 2


def _dominant_hz(tone: torch.Tensor, sample_rate: int) -> float:
    spectrum = torch.fft.rfft(tone * torch.hann_window(len(tone))).abs()
    return float(spectrum.argmax()) * sample_rate / len(tone)


def test_pitch_encoding_turns_the_series_value_into_the_tone_frequency():
    from xmodal.bridges.series_to_audio import mel

    bridge = SeriesToAudio(encoding="pitch", masked=False, tanh_bound=False, delta_init=0.0)
    step = torch.cat([torch.zeros(1, 50), torch.ones(1, 50)], dim=1)  # standardised: -1 then +1
    tone, mask = bridge.place(step)
    assert tone.shape == (1, 16000) and mask.sum() == 0  # the tone fills the window
    assert tone.abs().max() <= 0.5 + 1e-6
    low, high = mel(80.0), mel(7000.0)
    for level, part in ((1 / 3, tone[0, 1000:7000]), (2 / 3, tone[0, 9000:15000])):  # -1 and +1 sd of +-3
        expected = 700 * (10 ** ((low + (high - low) * level) / 2595) - 1)
        assert abs(_dominant_hz(part, 16000) - expected) < 16000 / len(part) * 2


def test_pitch_encoding_refuses_settings_it_cannot_honour():
    with pytest.raises(DataError, match="masked=False"):
        SeriesToAudioConfig(encoding="pitch")
    with pytest.raises(DataError, match="copies"):
        SeriesToAudioConfig(encoding="pitch", masked=False, copies=3)
    with pytest.raises(DataError, match="Nyquist"):
        SeriesToAudioConfig(encoding="pitch", masked=False, pitch_high=9000.0)
    with pytest.raises(DataError, match="encoding must be one of"):
        SeriesToAudioConfig(encoding="sound")
    with pytest.raises(DataError, match="standardize=True"):
        SeriesToAudioConfig(encoding="pitch", masked=False, standardize=False)
    with pytest.raises(DataError, match="too narrow"):
        SeriesToAudioConfig(encoding="pitch+slope", masked=False, pitch_low=1000.0, pitch_high=1100.0)
    assert SeriesToAudioConfig(encoding="pitch", masked=False, offset=0).offset == 0  # where "start" puts it


def test_pitch_and_slope_encoding_plays_the_slope_in_the_upper_band():
    from xmodal.bridges.series_to_audio import SLOPE_BAND_GAP, mel

    bridge = SeriesToAudio(encoding="pitch+slope", masked=False, tanh_bound=False, delta_init=0.0)
    triangle = torch.cat([torch.linspace(0, 1, 51), torch.linspace(1, 0, 51)[1:]])[None]  # 50 steps up, 50 down
    tone, _ = bridge.place(triangle)
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
    with pytest.raises(DataError, match="at least 2 samples"):
        SeriesToAudio(encoding="pitch+slope", masked=False).place(torch.ones(2, 1))
