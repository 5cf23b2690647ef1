"""Source-domain speech samples synthesised with espeak-ng.

Alignment needs labelled samples from the source domain. For a keyword
spotter the source domain is its own vocabulary spoken aloud; when no real
recordings are at hand, espeak-ng (a Debian/Ubuntu/Homebrew package) speaks
each class name in several voices and speeds. The files are written in
Speech Commands layout, `<folder>/<word>/<voice>_<speed>.wav`, so their
label is their folder name.

Synthetic speech is a narrow slice of the source domain (one formant
synthesiser, no noise, no room): it estimates the source risk on clean
words, not on Speech Commands' real recordings.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tqdm.auto import tqdm

from xmodal.atomic import atomic_write
from xmodal.errors import XmodalError

DEFAULT_VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb-scotland")
DEFAULT_SPEEDS = (140,)


def espeak_binary() -> str:
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise XmodalError("espeak-ng is not installed; install it (Debian/Ubuntu: apt-get install espeak-ng, "
                          "macOS: brew install espeak-ng) or give real recordings instead")
    return binary


def _speak(binary: str, word: str, voice: str, speed: int, path: str) -> None:
    result = subprocess.run([binary, "-v", voice, "-s", str(speed), "-w", path, word],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0 or not Path(path).stat().st_size:
        raise XmodalError(f"espeak-ng failed for {word!r} in voice {voice!r}: {result.stderr.strip()}; "
                          "list the installed voices with `espeak-ng --voices`")


def synthesize_words(words, folder: str | Path, voices=DEFAULT_VOICES, speeds=DEFAULT_SPEEDS,
                     progress: bool = True) -> list[Path]:
    """Speak every word in every voice and speed; returns the WAV paths written."""
    binary = espeak_binary()
    folder = Path(folder)
    jobs = [(word, voice, speed) for word in words for voice in voices for speed in speeds]
    if not jobs:
        raise XmodalError("nothing to synthesise: give at least one word, voice and speed")
    written = []
    for word, voice, speed in tqdm(jobs, desc="espeak-ng", unit="file", disable=not progress, leave=False):
        target = folder / word / f"{voice.replace('+', '-')}_{speed}.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, lambda temporary: _speak(binary, word, voice, speed, temporary))
        written.append(target)
    return written
