"""`xmodal sources` (one row per registered source, no model built) and `xmodal predict-source`
on every kind of source, with the real packaged weights: ImageNet labels of real photos,
CREPE's pitch of a sine, Whisper's transcription of espeak-ng speech, and a one-line refusal
for a source without labels."""

import math
import subprocess

import numpy as np
import pytest
import soundfile

from adapters_modal import load_source, source_entries
from adapters_modal.audio import GSC35_WORDS
from cli import main
from tests.conftest import SHARED
from xmodal.cli.sources import COLUMNS, count

IMAGES = SHARED / "data" / "images"
# ../shared/data/images/README.md: what an ImageNet classifier should say
EXPECTED = {
    "chelsea.png": ("tabby", "tiger cat", "Egyptian cat"),
    "coffee.png": ("espresso", "cup"),
    "rocket.jpg": ("missile", "projectile", "space shuttle"),
}


def _error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if line]
    assert len(lines) == 1 and "error" in lines[0], lines
    return lines[0]


def _predictions(capsys) -> dict[str, list[str]]:
    """file name -> the fields after it, one line per file."""
    rows = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    return {row[0].rsplit("/", 1)[-1]: row[1:] for row in rows}


def _sine(path, hz: float, seconds: float = 1.0, rate: int = 16000):
    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(str(path), (0.5 * np.sin(2 * math.pi * hz * t)).astype(np.float32), rate)
    return path


def test_parameter_counts_read_like_a_model_zoo():
    assert [count(n) for n in (30_939, 202_249, 4_652_008, 37_760_256, 512, None)] == \
        ["30.9 k", "202 k", "4.65 M", "37.8 M", "512", "?"]


def test_sources_lists_every_registered_source_with_its_columns(capsys):
    assert main(["sources"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == list(COLUMNS)
    for entry in source_entries():
        row = next(line for line in lines if line.startswith(entry.name + " "))
        for fact in (entry.modality, count(entry.parameters), entry.input, entry.output, entry.licence, "found: "):
            assert fact and fact in row, (entry.name, fact, row)
    assert any(line.strip().startswith("hf:PATH_OR_ID") for line in lines)
    assert any(line.startswith("registered names joined by + are read side by side") for line in lines)


def test_sources_tsv_has_one_row_of_every_column_per_source(capsys):
    assert main(["sources", "--tsv"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    assert tuple(rows[0]) == COLUMNS
    by_name = {row[0]: dict(zip(COLUMNS, row)) for row in rows[1:]}
    assert {entry.name for entry in source_entries()} <= set(by_name)
    assert by_name["efficientnet-lite0"] == {
        **by_name["efficientnet-lite0"], "modality": "image", "parameters": "4.65 M", "input": "3x224x224 RGB",
        "output": "1000 ImageNet classes", "licence": "Apache-2.0"}
    assert by_name["efficientnet-lite0"]["weights"].endswith("efficientnet-lite0-57934424.pth")
    assert by_name["crepe-tiny"]["output"].startswith("360 pitch bins")
    assert by_name["speech-embedding"]["output"].startswith("features only")


@pytest.mark.slow
def test_the_listed_facts_are_those_of_the_built_models():
    for entry in source_entries():
        source = load_source(entry.name)
        spec = source.input_spec
        assert entry.parameters == sum(p.numel() for p in source.parameters()), entry.name
        assert entry.modality == spec.modality, entry.name
        if spec.modality == "audio":
            assert entry.input.startswith(f"{spec.sample_rate // 1000} kHz, {spec.num_samples // spec.sample_rate} s")
        elif spec.modality == "image":
            assert entry.input.startswith(f"{spec.channels}x{spec.height}x{spec.width}"), entry.name
        assert entry.output.startswith("features only") == (not source.class_names), entry.name


def test_efficientnet_lite0_names_the_photos(capsys):
    files = [str(IMAGES / name) for name in EXPECTED]
    assert main(["predict-source", "--source", "efficientnet-lite0", *files]) == 0
    predictions = _predictions(capsys)
    for name, expected in EXPECTED.items():
        label, probability = predictions[name]
        assert any(label.startswith(cls) for cls in expected), (name, label)
        assert 0.2 < float(probability) <= 1.0
    assert float(predictions["coffee.png"][1]) > 0.8  # espresso 0.95


def test_crepe_tiny_reads_a_440_hz_sine(tmp_path, capsys):
    wav = _sine(tmp_path / "a440.wav", 440.0)
    assert main(["predict-source", "--source", "crepe-tiny", str(wav)]) == 0
    (reading,) = _predictions(capsys)["a440.wav"]
    value, unit = reading.split()
    assert unit == "Hz" and abs(float(value) - 440.0) < 4.4  # within 1 % (440.3 measured)


def test_a_source_without_labels_refuses_in_one_line(tmp_path, capsys):
    wav = _sine(tmp_path / "tone.wav", 440.0, seconds=2.0)
    assert main(["predict-source", "--source", "speech-embedding", str(wav)]) == 1
    line = _error_line(capsys)
    assert "has no labels" in line and "features only" in line


def test_files_of_the_wrong_kind_are_one_line_errors(tmp_path, capsys):
    wav = _sine(tmp_path / "tone.wav", 440.0)
    assert main(["predict-source", "--source", "efficientnet-lite0", str(wav)]) == 1
    assert "as an image" in _error_line(capsys)
    assert main(["predict-source", "--source", "efficientnet-lite0", str(tmp_path / "none.png")]) == 1
    assert "does not exist" in _error_line(capsys)
    assert main(["predict-source", "--source", "crepe-tiny", str(IMAGES / "coffee.png")]) == 1
    assert "as audio" in _error_line(capsys)


def test_whisper_transcribes_espeak_speech_and_names_its_top_word(tmp_path, capsys):
    wav = tmp_path / "hello.wav"  # espeak-ng: .ci/run installs it
    subprocess.run(["espeak-ng", "-w", str(wav), "Hello, how are you today?"], check=True)
    assert main(["predict-source", "--source", "whisper-tiny-en", str(wav)]) == 0
    word, probability, transcription = _predictions(capsys)["hello.wav"]
    assert transcription == '"Hello, how are you today?"'  # measured: exact
    assert word in GSC35_WORDS and 0 < float(probability) <= 1  # a zero-shot Speech Commands word
