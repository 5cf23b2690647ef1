"""`xmodal sources` (the registered source models and where their weights are) and
`xmodal predict-source` (the bare source's top-1 label for audio files)."""

from __future__ import annotations

import argparse
import sys

from xmodal.errors import XmodalError
from xmodal.presets import DEFAULT_PRESET, get_preset

# the speech source of the default series preset
DEFAULT_SPEECH_SOURCE = get_preset("series", DEFAULT_PRESET).settings["source"]


def add_parsers(commands) -> None:
    sources = commands.add_parser("sources", help="registered source models and whether their weights are here")
    sources.set_defaults(run=run_sources)
    predict = commands.add_parser("predict-source", help="top-1 label of the bare source model for audio files")
    predict.add_argument("--source", default=DEFAULT_SPEECH_SOURCE,
                         help=f"a name from `xmodal sources` (default {DEFAULT_SPEECH_SOURCE}) or hf:PATH_OR_ID")
    predict.add_argument("--weights", help="explicit weights file")
    predict.add_argument("--window", choices=("loudest", "start"), default="loudest",
                         help="which 1-s window of a longer clip: the loudest (default) or the first")
    predict.add_argument("files", nargs="+", metavar="FILE.wav")
    predict.set_defaults(run=run_predict_source)


def run_sources(args: argparse.Namespace) -> None:
    import adapters_modal

    for entry in adapters_modal.source_entries():
        try:
            where = adapters_modal.local_weights(entry.name)
            status = f"available: {where}" if where else f"not on this machine; downloads from {entry.weight_file.url}"
        except XmodalError as exc:
            status = f"BROKEN: {exc}"
        print(f"{entry.name}\t{entry.description}\t{status}")
    for prefix, description in adapters_modal.source_schemes().items():
        print(f"{prefix}:PATH_OR_ID\t{description}\tloaded from that folder or hub id")


def run_predict_source(args: argparse.Namespace) -> None:
    import torch

    import adapters_modal
    from adapters_modal.audio_io import read_wav

    source = adapters_modal.load_source(args.source, args.weights)
    spec = source.input_spec
    if spec.modality != "audio":
        raise XmodalError(f"source {args.source!r} takes {spec.modality}, not audio files")
    waveforms = torch.stack([read_wav(f, spec.sample_rate, spec.num_samples, args.window) for f in args.files])
    with torch.no_grad():
        probabilities = source.logits(waveforms).softmax(dim=1)
    for name, row in zip(args.files, probabilities):
        best = int(row.argmax())
        print(f"{name}\t{source.class_names[best]}\t{row[best].item():.4f}")
    sys.stdout.flush()
