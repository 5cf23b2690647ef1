"""Shared fixtures: the real weights and data in ../shared (or $XMODAL_SHARED).

The tests need them: they check behaviour against the real BC-ResNet and
real UCR data, so a missing shared folder is an error, not a skip.
"""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("XMODAL_SHARED", REPO.parent / "shared")).resolve()
MODELS = SHARED / "models"
UCR = SHARED / "data" / "ucr"
SPEECH = SHARED / "data" / "speech_words"
BC_RESNET_FILE = MODELS / "bc_resnet_gsc35" / "model-sc-2.pt"

if not BC_RESNET_FILE.is_file() or not UCR.is_dir():
    raise pytest.UsageError(
        f"the shared models and data were not found at {SHARED}; put them beside the repository "
        "as ../shared or set XMODAL_SHARED to their folder"
    )

# Weights come from ../shared; nothing may write to (or read from) the user's cache.
os.environ["XMODAL_WEIGHTS_DIR"] = str(MODELS)
os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XMODAL_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def source():
    from adapters_modal import load_source

    return load_source("bc-resnet-gsc35")


@pytest.fixture(scope="session")
def gunpoint():
    from xmodal.data.ucr import load_ucr

    return load_ucr("GunPoint", UCR)


@pytest.fixture(scope="session")
def speech_samples(tmp_path_factory):
    """Labelled source-domain samples for the speech sources: the three real
    recordings (eight, five, follow) plus every Speech Commands word spoken
    by espeak-ng in two voices (.ci/run installs espeak-ng)."""
    import shutil

    from adapters_modal.audio import GSC35_WORDS
    from adapters_modal.speech_synthesis import synthesize_words

    folder = tmp_path_factory.mktemp("speech_samples")
    synthesize_words(GSC35_WORDS, folder, voices=("en-us", "en-gb"), progress=False)
    for recording in SPEECH.glob("*.wav"):
        shutil.copy(recording, folder / recording.name)
    return folder


PEPTIDES = SHARED / "data" / "peptides"
MOLECULES = SHARED / "data" / "molecules"
AMP_SCANNER = PEPTIDES / "amp_scanner_v2_veltri2018"


@pytest.fixture(scope="session")
def minilm():
    from adapters_modal import load_source

    return load_source("minilm-l6")


@pytest.fixture(scope="session")
def amp():
    from xmodal.data.sequences import load_sequence_dataset

    return load_sequence_dataset(AMP_SCANNER)
