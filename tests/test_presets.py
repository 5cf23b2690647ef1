"""Presets and settings: one source of truth, checked values, torch-free."""

import subprocess
import sys

import numpy as np
import pytest

from xmodal.errors import DataError
from xmodal.presets import PRESETS, get_preset, resolve_settings
from xmodal.settings import SETTINGS, TASKS, check_settings


@pytest.mark.parametrize("key", sorted(PRESETS))
def test_every_preset_is_a_complete_checked_record_with_a_figure(key):
    preset = PRESETS[key]
    assert set(preset.settings) == set(SETTINGS[preset.task])
    assert check_settings(preset.task, preset.settings) == preset.settings
    assert preset.description and "benchmarks/results/" in preset.figure


def test_every_task_has_a_best_preset():
    assert all((task, "best") in PRESETS for task in TASKS)


def test_explicit_settings_override_and_none_means_the_presets_value():
    resolved = resolve_settings("series", "best", {"epochs": 5, "lr": None})
    assert resolved == {**PRESETS["series", "best"].settings, "epochs": 5}


def test_unknown_preset_and_setting_are_refused_in_one_line():
    with pytest.raises(DataError, match="did you mean 'best'"):
        get_preset("series", "bset")
    with pytest.raises(DataError, match="unknown sequence settings"):
        resolve_settings("sequence", "best", {"encoding": "pitch"})


def test_values_are_checked_and_numpy_scalars_accepted():
    epochs, lr, masked = (SETTINGS["series"][name] for name in ("epochs", "lr", "masked"))
    assert epochs.check(np.int64(5)) == 5 and type(epochs.check(np.int64(5))) is int
    assert masked.check(np.bool_(False)) is False
    assert SETTINGS["series"]["offset"].check(120) == "120"
    for setting, bad, message in ((epochs, -1, "at least 0"), (lr, float("inf"), "finite"), (lr, "0.1", "number"),
                                  (epochs, 2.5, "whole number"), (masked, 1, "true or false")):
        with pytest.raises(DataError, match=message):
            setting.check(bad)


def test_presets_and_settings_import_without_torch():
    code = "import sys, xmodal.presets, xmodal.settings; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_a_picture_given_for_a_source_the_run_does_not_read_is_refused():
    # best reads the banded image source; naming the plain one would leave the picture ignored.
    with pytest.raises(DataError, match=r"names bc-resnet-gsc35-image, which source=.* does not read"):
        resolve_settings("series", "best", {"picture": "bc-resnet-gsc35-image=recurrence"})
    named = resolve_settings("series", "best", {"picture": "bc-resnet-gsc35-image-bands=recurrence"})
    assert named["picture"] == "bc-resnet-gsc35-image-bands=recurrence"
    assert resolve_settings("series", "best", {"picture": "line"})["picture"] == "line"


def test_a_presets_own_picture_may_name_a_part_an_overridden_source_lacks():
    settings = resolve_settings("series", "best", {"source": "bc-resnet-gsc35+bc-resnet-gsc35-image"})
    assert settings["picture"] == "efficientnet-lite0=line"  # best's, for a part this source does not read
    given_back = {**settings, "device": None}  # a reloaded run passes every saved setting
    assert resolve_settings("series", "best", given_back)["picture"] == "efficientnet-lite0=line"
