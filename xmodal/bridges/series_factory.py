"""`series_bridge`: the series bridge a setting record asks for (waveform samples or tones),
refusing settings that only the other bridge takes."""

from __future__ import annotations

from dataclasses import fields

from xmodal.bridges.series import ENCODINGS, WAVEFORM, SeriesBridge, SeriesBridgeConfig
from xmodal.bridges.tones import SeriesToTones
from xmodal.bridges.waveform import SeriesToWaveform
from xmodal.errors import DataError

# The series task's settings (xmodal.settings.SETTINGS["series"]) that `series_bridge` takes.
BRIDGE_SETTINGS = ("encoding", "standardize", "upsample_factor", "target_duration", "interpolation", "copies",
                   "offset", "masked", "tanh_bound", "delta_dropout")


def parse_offset(offset):
    """An offset from a setting record or the CLI: "start", "centre", or a sample index
    (an int, or a string of digits)."""
    if isinstance(offset, str) and offset.isdigit():
        return int(offset)
    return offset


def _only_in(config_class) -> dict:
    """The settings of a bridge's config that the base does not have, with their defaults."""
    shared = {f.name for f in fields(SeriesBridgeConfig)} | {"encoding"}
    return {f.name: f.default for f in fields(config_class) if f.name not in shared}


def _changed(settings: dict, neutral: dict) -> list[str]:
    """The names in `neutral` whose value in `settings` is not the neutral one (an offset of
    0 is where "start" puts the series)."""
    return [name for name, value in neutral.items() if name in settings
            and (settings[name] not in ("start", 0) if name == "offset" else settings[name] != value)]


def series_bridge(num_samples: int, sample_rate: int, settings: dict, seed: int = 0) -> SeriesBridge:
    """The series bridge that `settings["encoding"]` asks for, for a source window of
    `num_samples` samples at `sample_rate` Hz, delta drawn from `seed`.

    settings: bridge settings, such as the BRIDGE_SETTINGS of a series setting record, or
    any of the two configs' fields (pitch_low, delta_init, ...); encoding defaults to
    "waveform", offset may be a string of digits. A setting that only the other bridge
    takes is refused unless it is at the value where it changes nothing (copies 1,
    masked false for the tones, ...); so is a name that no series bridge takes.
    """
    encoding = settings.get("encoding", WAVEFORM)
    if encoding not in ENCODINGS:
        raise DataError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    bridge_cls = SeriesToWaveform if encoding == WAVEFORM else SeriesToTones
    fixed = {"num_samples", "sample_rate"}  # the source's window: arguments, not settings
    known = {f.name for cls in (SeriesToWaveform, SeriesToTones) for f in fields(cls.config_class)} - fixed
    unknown = sorted(set(settings) - known)
    if unknown:
        raise DataError(f"unknown series bridge settings {unknown}; a series bridge takes {sorted(known)}")
    if "offset" in settings:
        settings = {**settings, "offset": parse_offset(settings["offset"])}
    if encoding == WAVEFORM:
        _refuse_tone_settings(settings, _only_in(SeriesToTones.config_class))
    else:
        # The tone fills the window: a mask would leave delta nowhere, so unmasked is neutral there.
        _refuse_placement_settings(encoding, settings, {**_only_in(SeriesToWaveform.config_class), "masked": False})
    own = {f.name for f in fields(bridge_cls.config_class)} - fixed
    config = bridge_cls.config_class(num_samples=num_samples, sample_rate=sample_rate,
                                     **{name: value for name, value in settings.items() if name in own})
    return bridge_cls(config, seed=seed)


def _refuse_placement_settings(encoding: str, settings: dict, neutral: dict) -> None:
    changed = _changed(settings, neutral)
    placement = [name for name in changed if name != "masked"]
    problems = []
    if placement:
        problems.append(f"encoding={encoding!r} stretches the series over the whole window, so the waveform placement "
                        f"settings {', '.join(f'{name}={settings[name]!r}' for name in placement)} cannot apply; "
                        f"leave them at {', '.join(f'{name}={neutral[name]!r}' for name in placement)}")
    if "masked" in changed:
        problems.append(f"encoding={encoding!r} fills the whole window, so the mask would zero delta everywhere; "
                        "set masked=False (CLI: --no-masked)")
    if problems:
        raise DataError("; ".join(problems))


def _refuse_tone_settings(settings: dict, neutral: dict) -> None:
    changed = _changed(settings, neutral)
    if changed:
        raise DataError(f"encoding='waveform' plays the series as samples, so the tone settings "
                        f"{', '.join(f'{name}={settings[name]!r}' for name in changed)} cannot apply; leave them at "
                        f"{', '.join(f'{name}={neutral[name]!r}' for name in changed)}, or choose encoding "
                        "'pitch' or 'pitch+slope'")
