"""`xmodal synthesize-words OUT`: a speech source's class words spoken by espeak-ng, as
labelled source samples for `xmodal align`."""

from __future__ import annotations

import argparse

from xmodal.cli.sources import DEFAULT_SPEECH_SOURCE
from xmodal.errors import XmodalError


def add_parser(commands) -> None:
    speak = commands.add_parser("synthesize-words", help="speak a speech source's class words with espeak-ng "
                                                         "(labelled source samples for `align`)")
    speak.add_argument("out", help="folder to write <word>/<voice>_<speed>.wav into")
    speak.add_argument("--source", default=DEFAULT_SPEECH_SOURCE,
                       help=f"speak this source's class names (default {DEFAULT_SPEECH_SOURCE})")
    speak.add_argument("--weights", help="explicit weights file for the source model")
    speak.add_argument("--words", nargs="+", help="speak these words instead")
    speak.add_argument("--voices", help="comma-separated espeak-ng voices (default en-us,en-gb,en-us+f3,"
                                        "en-gb-scotland; list them with `espeak-ng --voices`)")
    speak.add_argument("--speeds", help="comma-separated speaking rates in words per minute (default 140)")
    speak.add_argument("--quiet", action="store_true", help="no progress bar")
    speak.set_defaults(run=run_synthesize_words)


def run_synthesize_words(args: argparse.Namespace) -> None:
    import adapters_modal
    from adapters_modal.speech_synthesis import (
        DEFAULT_SPEEDS,
        DEFAULT_VOICES,
        synthesize_words,
    )

    try:
        speeds = [int(s) for s in args.speeds.split(",")] if args.speeds else DEFAULT_SPEEDS
    except ValueError:
        raise XmodalError(f"--speeds {args.speeds!r}: give comma-separated words per minute, e.g. 120,160") from None
    # Class names such as "_unknown_" or "_silence_" are no words to speak.
    words = args.words or [w for w in adapters_modal.load_source(args.source, args.weights).class_names if w.isalpha()]
    voices = args.voices.split(",") if args.voices else DEFAULT_VOICES
    written = synthesize_words(words, args.out, voices, speeds, progress=not args.quiet)
    print(f"wrote {len(written)} WAV files for {len(words)} words to {args.out}/<word>/")
