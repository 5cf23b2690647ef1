"""`series_bridge`: the series bridge a setting record asks for (waveform samples or tones for
an audio source, a picture for an image source), refusing settings that only another
bridge takes; `fused_series_bridge`: one such bridge per part of a fused source."""

from __future__ import annotations

from dataclasses import fields

from adapters_modal.base import InputSpec, source_entries
from xmodal.bridges.filtered_tones import FilteredTones
from xmodal.bridges.fused import FusedBridge
from xmodal.bridges.series import (
    ENCODINGS,
    IMAGE,
    TONE_ENCODINGS,
    WAVEFORM,
    SeriesBridge,
    SeriesBridgeConfig,
)
from xmodal.bridges.series_image import WINDOWS, SeriesToImage, SeriesToImageConfig
from xmodal.bridges.tones import SeriesToTones
from xmodal.bridges.waveform import SeriesToWaveform
from xmodal.errors import DataError
from xmodal.settings import SERIES_PICTURES, named_pictures

# The series task's settings (xmodal.settings.SETTINGS["series"]) that `series_bridge` takes.
BRIDGE_SETTINGS = ("encoding", "picture", "standardize", "upsample_factor", "target_duration", "interpolation",
                   "copies", "offset", "masked", "tanh_bound", "delta_dropout", "delta_resolution", "trained_view")

_BRIDGES = {"waveform": SeriesToWaveform, "pitch": SeriesToTones, "pitch+slope": SeriesToTones, IMAGE: SeriesToImage}
# The source's input space: arguments (its InputSpec), not settings.
_FIXED = {"num_samples", "sample_rate", "channels", "height", "width", "value_range"}
_KNOWN = {f.name for cls in (SeriesToWaveform, SeriesToTones, SeriesToImage) for f in fields(cls.config_class)} - _FIXED
TRAINED_VIEW = "trained_view"  # a choice of bridge (FilteredTones for the tones), not a config field
# What only the image bridge draws, at the values where an audio bridge loses nothing.
IMAGE_ONLY = {"frame": 0, "picture": WINDOWS}


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


def series_bridge(spec: InputSpec, settings: dict, seed: int = 0, name: str | None = None) -> SeriesBridge:
    """The series bridge that `settings["encoding"]` asks for, for a source of input spec
    `spec` (an audio source's window of num_samples at sample_rate Hz, or an image
    source's channels x height x width and value range) and registered `name` (what
    `source_picture` reads a per-source picture for), delta drawn from `seed`.

    settings: bridge settings, such as the BRIDGE_SETTINGS of a series setting record, or
    any of the three configs' fields (pitch_low, delta_init, frame, ...); encoding defaults
    to "waveform" for an audio source and "image" for an image source, offset may be a
    string of digits. An audio encoding needs an audio source and "image" an image source.
    A setting that only another bridge takes is refused unless it is at the value where
    it changes nothing (copies 1, masked false for the tones, ...); so is a name that no
    series bridge takes. trained_view true asks for the tones with a trainable series filter
    (FilteredTones).
    """
    encoding = settings.get("encoding", IMAGE if spec.modality == "image" else WAVEFORM)
    if "picture" in settings:
        settings = {**settings, "picture": source_picture(settings["picture"], name)}
    if encoding not in ENCODINGS:
        raise DataError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    _check_modality(encoding, spec)
    settings = dict(settings)
    bridge_cls = FilteredTones if settings.pop(TRAINED_VIEW, False) else _BRIDGES[encoding]
    if bridge_cls is FilteredTones and encoding not in TONE_ENCODINGS:
        raise DataError(f"trained_view trains a filter of the series played as tones, so it needs encoding "
                        f"'pitch' or 'pitch+slope', not {encoding!r}; set trained_view false for this encoding "
                        f"(CLI: --no-trained-view, or --preset late-fusion: a probe, no training)")
    unknown = sorted(set(settings) - _KNOWN)
    if unknown:
        raise DataError(f"unknown series bridge settings {unknown}; a series bridge takes {sorted(_KNOWN)}")
    if "offset" in settings:
        settings = {**settings, "offset": parse_offset(settings["offset"])}
    tone_only = _only_in(SeriesToTones.config_class)
    placement = {name: value for name, value in _only_in(SeriesToWaveform.config_class).items() if name != "masked"}
    drawn = _changed(settings, IMAGE_ONLY)
    if encoding != IMAGE and drawn:
        raise DataError(f"{', '.join(f'{name}={settings[name]!r}' for name in drawn)}: only encoding='image' (an "
                        f"image source) draws a picture; encoding={encoding!r} plays the series, so leave "
                        f"{', '.join(f'{name}={IMAGE_ONLY[name]!r}' for name in drawn)}")
    if encoding == WAVEFORM:
        _refuse_tone_settings(settings, tone_only)
    elif encoding == IMAGE:
        _refuse_image_settings(settings, {**placement, **tone_only})
    else:
        # The tone fills the window: a mask would leave delta nowhere, so unmasked is neutral there.
        _refuse_placement_settings(encoding, settings, {**placement, "masked": False})
    own = {name: value for name, value in settings.items()
           if name in {f.name for f in fields(bridge_cls.config_class)} - _FIXED}
    if encoding == IMAGE:
        return bridge_cls(SeriesToImageConfig.for_source(spec, **own), seed=seed)
    return bridge_cls(bridge_cls.config_class(num_samples=spec.num_samples, sample_rate=spec.sample_rate, **own),
                      seed=seed)


def fused_series_bridge(specs: list[InputSpec], settings: dict, seed: int = 0,
                        names: list[str] | None = None) -> FusedBridge:
    """The bridges of a fused source's parts, of input specs `specs` (and registered `names`): each
    image part draws the picture `settings["picture"]` names for it (`source_picture`), each audio part
    plays the series as `settings["encoding"]` says (an audio encoding: an image one would leave the
    audio parts nothing to hear); with trained_view, the first audio part plays them through the
    trainable filter (`trained_part`)."""
    if settings.get("encoding") == IMAGE and any(spec.modality == "audio" for spec in specs):
        raise DataError("a fused source draws its image sources' input as a picture and plays its audio "
                        "sources' with `encoding`, which must then be an audio one: set encoding 'pitch+slope', "
                        "'pitch' or 'waveform' (CLI: --encoding pitch+slope)")
    picture = settings.get("picture", WINDOWS)
    source_picture(picture, None)  # spelled right, even where no part sees it
    if picture in SERIES_PICTURES and picture != WINDOWS and all(spec.modality != "image" for spec in specs):
        raise DataError(f"picture={picture!r} is what image sources see, and this fused source has none: leave "
                        f"picture={WINDOWS!r}, or add an image source such as efficientnet-lite0")
    audio = settings.get("encoding", WAVEFORM)
    trained = trained_part(specs, settings)
    heard = {key: value for key, value in settings.items() if key not in IMAGE_ONLY}
    parts = []
    for index, (spec, name) in enumerate(zip(specs, names or [None] * len(specs))):
        own = settings if spec.modality == "image" else heard  # series_bridge reads the image part's picture
        parts.append(series_bridge(spec, {**own, "encoding": part_encoding(spec, audio),
                                          TRAINED_VIEW: index == trained}, seed, name))
    return FusedBridge(parts)


def source_picture(picture: str, name: str | None) -> str:
    """What the image source `name` sees: `picture`, one picture for every image source; or, written
    per source as NAME=PICTURE joined by + (efficientnet-lite0=recurrence), the one given for `name`,
    the window rows for a source not named. Each NAME must be a registered image source."""
    if picture in SERIES_PICTURES:
        return picture
    images, named = {entry.name for entry in source_entries() if entry.modality == "image"}, {}
    for source, own in named_pictures(picture):
        if own not in SERIES_PICTURES or source not in images:
            pair = f"{source}={own}" if own else source
            raise DataError(f"picture={picture!r}: name one of {SERIES_PICTURES} for every image source, or one per "
                            "registered image source (`xmodal sources`) as NAME=PICTURE joined by + "
                            f"(efficientnet-lite0=recurrence); {pair!r} is neither")
        named[source] = own
    return named.get(name, WINDOWS)


def trained_part(specs: list[InputSpec], settings: dict) -> int | None:
    """The part of a fused source whose bridge trained_view trains (FilteredTones): the first audio part,
    when the audio parts hear tones; None without trained_view."""
    if not settings.get(TRAINED_VIEW):
        return None
    audio = [index for index, spec in enumerate(specs) if spec.modality == "audio"]
    if not audio or settings.get("encoding") not in TONE_ENCODINGS:
        raise DataError(f"trained_view trains a filter of the series played as tones to the fused source's first "
                        f"audio source, so it needs one and encoding 'pitch' or 'pitch+slope' (got "
                        f"{settings.get('encoding')!r}, {len(audio)} audio sources); or set trained_view false "
                        "(CLI: --no-trained-view)")
    return audio[0]


def part_encoding(spec: InputSpec, encoding: str) -> str:
    """How one source of a fused run reads the series: an image source sees a picture, an audio
    source hears `encoding`."""
    return IMAGE if spec.modality == "image" else encoding


def _check_modality(encoding: str, spec: InputSpec) -> None:
    """One line naming the fix when the encoding and the source's modality do not meet."""
    if encoding == IMAGE and spec.modality != "image":
        raise DataError(f"encoding='image' draws the series as an image, but this source takes {spec.modality}; "
                        "use an image source (source='efficientnet-lite0', CLI: --source efficientnet-lite0) "
                        "or an audio encoding ('waveform', 'pitch', 'pitch+slope')")
    if encoding != IMAGE and spec.modality != "audio":
        raise DataError(f"encoding={encoding!r} plays the series as audio, but this source takes {spec.modality}; "
                        "set encoding='image' (CLI: --encoding image), or use an audio source such as bc-resnet-gsc35")


def _refuse_image_settings(settings: dict, neutral: dict) -> None:
    changed = _changed(settings, neutral)
    problems = []
    if changed:
        problems.append(f"encoding='image' draws the series' windows over the whole image, so the audio settings "
                        f"{', '.join(f'{name}={settings[name]!r}' for name in changed)} cannot apply; leave them at "
                        f"{', '.join(f'{name}={neutral[name]!r}' for name in changed)}")
    if settings.get("masked") and not settings.get("frame"):
        problems.append("encoding='image' fills the whole image, so the mask would zero delta everywhere; "
                        "set masked=False (CLI: --no-masked)")
    if problems:
        raise DataError("; ".join(problems))


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
