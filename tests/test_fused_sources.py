"""Fused sources (adapters_modal.fused): several frozen sources read through their own bridges under
one head, with the real BC-ResNet and BC-ResNet-image and real GunPoint series; the fused reading
is checked against the single sources' own readings, its members (a trained view, window slices) against
their own fits, saved, reloaded and refused where it cannot work."""

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch

from adapters_modal import load_source
from adapters_modal.base import is_registered
from cli import main
from tests.conftest import UCR
from xmodal.bridges.series_factory import fused_series_bridge
from xmodal.data.window_slices import window_slices
from xmodal.errors import PersistenceError, XmodalError
from xmodal.estimators.series import V2SClassifier
from xmodal.persistence import (
    CONFIG_FILE,
    FUSED_FORMAT_VERSION,
    FUSED_TRAINED_VIEW_FORMAT_VERSION,
    RECURRENCE_FORMAT_VERSION,
)
from xmodal.presets import BEST_SOURCES, FUSED_SOURCES, get_preset
from xmodal.training.probe import fit_probe

PAIR = "bc-resnet-gsc35+bc-resnet-gsc35-image"
SLICES = 2  # window slices per series in these tests (the trained-fusion preset reads 4)


@pytest.fixture(scope="module")
def fused_run(gunpoint, tmp_path_factory):
    """A probe of the pair's layers on GunPoint (no training), saved."""
    estimator = V2SClassifier("fused", source=PAIR, epochs=0, random_state=0)
    estimator.fit(gunpoint.x_train[:, None, :], gunpoint.y_train)
    folder = estimator.save_pretrained(tmp_path_factory.mktemp("fused") / "run")
    return estimator, folder


def _each_part_alone() -> list[V2SClassifier]:
    """PAIR's parts as single-source probes (no training), each with its natural bridge."""
    return [V2SClassifier("fused", source="bc-resnet-gsc35", epochs=0, random_state=0),
            V2SClassifier("fused", source="bc-resnet-gsc35-image", encoding="image", epochs=0, random_state=0)]


def _layer_reading(estimator, x) -> torch.Tensor:
    with torch.no_grad():
        return estimator.reprogrammer_.source_logits(torch.as_tensor(x, dtype=torch.float32))


def test_a_fused_source_reads_each_part_as_the_part_alone_reads_it(fused_run, gunpoint):
    """The fused features are BC-ResNet's (tones) then BC-ResNet-image's (window image), each
    exactly what a single-source estimator with that part's natural bridge reads."""
    fused, _ = fused_run
    x = gunpoint.x_test[:8, None, :]
    alone = _each_part_alone()
    readings = [_layer_reading(single.fit(gunpoint.x_train[:, None, :], gunpoint.y_train), x) for single in alone]
    expected = torch.cat(readings, dim=1)
    assert fused.reprogrammer_.output_map.num_source == expected.shape[1] == load_source(PAIR).layer_width()
    torch.testing.assert_close(_layer_reading(fused, x), expected)
    assert fused.score(gunpoint.x_test[:, None, :], gunpoint.y_test) >= 0.95


def test_each_image_source_sees_the_picture_named_for_it(gunpoint, tmp_path):
    """picture names one for every image source, or one per source by name (the others see the window
    rows); the audio parts hear the series as before. Saved with the run."""
    x_train, x = gunpoint.x_train[:, None, :], gunpoint.x_test[:8, None, :]
    fused = V2SClassifier("fused", source=PAIR, picture="recurrence", epochs=0, random_state=0).fit(
        x_train, gunpoint.y_train)
    tones, windows = (_layer_reading(single.fit(x_train, gunpoint.y_train), x) for single in _each_part_alone())
    recurrence = _layer_reading(V2SClassifier("fused", source="bc-resnet-gsc35-image", encoding="image",
                                              picture="recurrence", epochs=0, random_state=0).fit(
        x_train, gunpoint.y_train), x)
    torch.testing.assert_close(_layer_reading(fused, x), torch.cat([tones, recurrence], dim=1))
    assert not torch.allclose(recurrence, windows)
    folder = fused.save_pretrained(tmp_path / "recurrence")
    document = json.loads((folder / CONFIG_FILE).read_text())
    assert document["format_version"] == RECURRENCE_FORMAT_VERSION == 10  # a version-9 reader asks for an upgrade
    assert [part["config"].get("picture") for part in document["bridge"]["config"]["parts"]] == [None, "recurrence"]
    reloaded = V2SClassifier.from_pretrained(folder)
    np.testing.assert_allclose(reloaded.predict_proba(x), fused.predict_proba(x), atol=1e-6)
    specs = [load_source(name).input_spec for name in FUSED_SOURCES.split("+")]
    parts = fused_series_bridge(specs, {"encoding": "pitch+slope", "picture": "efficientnet-lite0=recurrence"},
                                names=FUSED_SOURCES.split("+")).parts
    assert [getattr(part.config, "picture", "heard") for part in parts] == ["heard", "windows", "recurrence", "heard"]
    with pytest.raises(XmodalError, match="names efficientnet-lite0, which source=.* does not read"):
        V2SClassifier("fused", source=PAIR, picture="efficientnet-lite0=recurrence", epochs=0,
                      random_state=0).fit(x_train, gunpoint.y_train)  # a picture that would be ignored


def test_a_chosen_subset_keeps_only_a_picture_it_can_draw(fused_run):
    """choose_sources: an audio source kept alone sees no picture; an image source alone, the one named for it."""
    estimator, _ = fused_run
    chosen = {}
    for picture in ("recurrence", "bc-resnet-gsc35-image=recurrence", "efficientnet-lite0=recurrence"):
        estimator.settings_ = {**estimator.settings_, "picture": picture}
        chosen[picture] = [estimator._settings_of_choice(load_source(name))["picture"] for name in PAIR.split("+")]
    assert chosen == {"recurrence": ["windows", "recurrence"], "bc-resnet-gsc35-image=recurrence": [
        "windows", "recurrence"], "efficientnet-lite0=recurrence": ["windows", "windows"]}
    estimator.settings_ = {**estimator.settings_, "picture": "windows"}


@pytest.mark.parametrize(("source", "picture", "message"), [
    (PAIR, "efficientnet-lite0=gasf", "'efficientnet-lite0=gasf' is neither"),
    (PAIR, "bc-resnet-gsc35=recurrence", "'bc-resnet-gsc35=recurrence' is neither"),
    (PAIR, "windows+recurrence", "'windows' is neither"),
    ("bc-resnet-gsc35+speech-embedding", "recurrence", "this fused source has none"),
    (PAIR, "gasf", "'gasf' is neither"),
    ("bc-resnet-gsc35+speech-embedding", "efficientnet-lite0=gasf", "is neither"),
], ids=["unknown-picture-of-a-source", "audio-source", "one-per-part", "no-image-source", "unknown",
        "unknown-without-an-image-source"])
def test_pictures_a_fused_source_cannot_draw_are_refused_in_one_line(source, picture, message, gunpoint):
    with pytest.raises(XmodalError, match=message) as caught:
        V2SClassifier("fused", source=source, picture=picture, epochs=0, random_state=0).fit(
            gunpoint.x_train[:, None, :], gunpoint.y_train)
    assert "\n" not in str(caught.value)


def test_a_fused_run_is_saved_with_its_parts_and_reloads_to_the_same_predictions(fused_run, gunpoint):
    fused, folder = fused_run
    document = json.loads((folder / CONFIG_FILE).read_text())
    parts = [load_source(name) for name in PAIR.split("+")]
    combined = hashlib.sha256("\n".join(part.weights_sha256 for part in parts).encode()).hexdigest()
    assert document["source"] == {"name": PAIR, "weights_sha256": combined}
    assert document["format_version"] == FUSED_FORMAT_VERSION == 7  # a version-6 reader asks for an upgrade
    assert [part["kind"] for part in document["bridge"]["config"]["parts"]] == ["series_to_tones", "series_to_image"]
    reloaded = V2SClassifier.from_pretrained(folder)  # registered parts: trusted without asking
    x = gunpoint.x_test[:, None, :]
    np.testing.assert_allclose(reloaded.predict_proba(x), fused.predict_proba(x), atol=1e-6)


def test_a_run_reading_the_image_in_bands_names_that_source_and_reloads_with_its_bands(gunpoint, tmp_path):
    """best's BC-ResNet-image: a saved run names the banded source, so a reload reads the bands again."""
    pair = "bc-resnet-gsc35+bc-resnet-gsc35-image-bands"
    estimator = V2SClassifier("fused", source=pair, epochs=0, random_state=0)
    estimator.fit(gunpoint.x_train[:, None, :], gunpoint.y_train)
    x = gunpoint.x_test[:, None, :]
    assert _layer_reading(estimator, x[:4]).shape == (4, 1392 + 2592)  # the tones' statistics, then the image's
    folder = estimator.save_pretrained(tmp_path / "run")
    assert json.loads((folder / CONFIG_FILE).read_text())["source"]["name"] == pair
    reloaded = V2SClassifier.from_pretrained(folder)
    np.testing.assert_allclose(reloaded.predict_proba(x), estimator.predict_proba(x), atol=1e-6)


def test_the_best_preset_fuses_registered_sources_with_a_probe_per_source():
    best, trained, fused = (get_preset("series", name).settings for name in ("best", "trained-fusion", "fused"))
    assert trained["source"] == fused["source"] == FUSED_SOURCES and is_registered(FUSED_SOURCES)
    # best: BC-ResNet-image also read band by band down its picture, the other three the same
    assert best["source"] == BEST_SOURCES == ("bc-resnet-gsc35+bc-resnet-gsc35-image-bands+efficientnet-lite0"
                                              "+speech-embedding")
    assert is_registered(BEST_SOURCES)
    assert best["mapping"] == fused["mapping"] == "layers" and fused["epochs"] == 0 and not fused["trained_view"]
    assert (best["fusion"], trained["fusion"], fused["fusion"]) == ("probe-per-source", "probe-per-source", "one-probe")
    assert best["clip_features"] and best["picture"] == "efficientnet-lite0=line"  # BC-ResNet-image: windows
    assert best["epochs"] == 0 and not best["trained_view"] and not best["slice_copies"]  # the probes alone
    assert trained["trained_view"] and trained["epochs"] >= 1  # BC-ResNet's trained view: one more member
    assert not best["choose_sources"] and not fused["choose_sources"]


def test_a_probe_per_source_is_the_average_of_each_source_probed_alone(gunpoint):
    """fusion probe-per-source: the pair's class probabilities are the renormalised geometric mean of
    those of each part fitted alone (same seed, its own C), i.e. the softmax of their mean logits."""
    x_train, x_test = gunpoint.x_train[:, None, :], gunpoint.x_test[:, None, :]
    pair = V2SClassifier("late-fusion", source=PAIR, random_state=0).fit(x_train, gunpoint.y_train)
    alone = _each_part_alone()
    log_probabilities = np.mean([np.log(single.fit(x_train, gunpoint.y_train).predict_proba(x_test))
                                 for single in alone], axis=0)
    expected = np.exp(log_probabilities) / np.exp(log_probabilities).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(pair.predict_proba(x_test), expected, atol=1e-5)
    assert pair.fit_result_.probe_c == tuple(single.fit_result_.probe_c for single in alone)
    assert not np.allclose(expected, V2SClassifier("fused", source=PAIR, random_state=0).fit(
        x_train, gunpoint.y_train).predict_proba(x_test), atol=1e-3)  # one probe of both is another model


def test_window_slices_are_90_percent_windows_stretched_back_and_seeded(gunpoint):
    """Each slice is np.interp's stretch of a window of 90 % of its series (135 of GunPoint's 150 samples),
    copy-major; the seed alone draws the windows."""
    x = torch.tensor(gunpoint.x_train[:5, None, :], dtype=torch.float64)
    slices = window_slices(x, copies=3, seed=0)
    assert slices.shape == (15, 1, 150)
    grid = np.linspace(0, 134, 150)
    for row, piece in enumerate(slices[:, 0].numpy()):
        series = x[row % 5, 0].numpy()
        assert any(np.allclose(piece, np.interp(grid, np.arange(135), series[start:start + 135]))
                   for start in range(16)), row
    torch.testing.assert_close(window_slices(x, copies=3, seed=0), slices)
    assert not torch.allclose(window_slices(x, copies=3, seed=1), slices)


def test_slice_members_are_each_sources_probe_refitted_on_the_series_and_their_slices(gunpoint):
    """late-fusion with slice_copies: each source's probe of the series and its probe of the series and
    their slices (at the same C), the four logits averaged; without training, that is also the start."""
    x_train, x_test = gunpoint.x_train[:, None, :], gunpoint.x_test[:, None, :]
    run = V2SClassifier("late-fusion", source=PAIR, slice_copies=SLICES, random_state=0).fit(x_train,
                                                                                            gunpoint.y_train)
    x = torch.tensor(x_train, dtype=torch.float32)
    reading = torch.cat([_layer_reading(run, x), _layer_reading(run, window_slices(x, SLICES, 0))])
    targets = torch.tensor(np.searchsorted(run.classes_, gunpoint.y_train)).repeat(SLICES + 1)
    width = load_source("bc-resnet-gsc35").layer_width()
    blocks = ((0, width), (width, reading.shape[1]))
    plain = fit_probe(reading[:len(x)], targets[:len(x)], 0, blocks=blocks)
    sliced = fit_probe(reading, targets, 0, c=plain.c, blocks=blocks)
    test = _layer_reading(run, x_test).double().numpy()
    logits = np.mean([(test - p.mean) / p.scale @ p.coef.T + p.intercept for p in (plain, sliced)], axis=0)[:, 0]
    expected = np.stack([1 / (1 + np.exp(logits)), 1 / (1 + np.exp(-logits))], axis=1)  # binary: one logit
    np.testing.assert_allclose(run.predict_proba(x_test), expected, atol=1e-5)
    np.testing.assert_allclose(run.probe_predict_proba(x_test), expected, atol=1e-5)
    assert not np.allclose(expected, V2SClassifier("late-fusion", source=PAIR, random_state=0).fit(
        x_train, gunpoint.y_train).predict_proba(x_test), atol=1e-3)
    assert "2 window slices" in run.fit_result_.selection


@pytest.fixture(scope="module")
def trained_member_run(gunpoint, tmp_path_factory):
    """The trained-fusion preset on PAIR: a probe per source, each again with window slices, and BC-ResNet's trained
    view as one more member (counted twice: the preset's trained_view_weight), saved."""
    estimator = V2SClassifier("trained-fusion", source=PAIR, slice_copies=SLICES, random_state=0).fit(
        gunpoint.x_train[:, None, :], gunpoint.y_train)
    return estimator, estimator.save_pretrained(tmp_path_factory.mktemp("member") / "run")


def test_the_trained_view_is_one_more_member_and_the_probes_alone_are_its_start(trained_member_run, gunpoint):
    """BC-ResNet is read twice, through its bridge's start (as the late-fusion preset reads it) and through
    the trained bridge; the sources' probes alone (the late-fusion model, with the same slices) are the
    start state."""
    run, _ = trained_member_run
    x_train, x_test = gunpoint.x_train[:, None, :], gunpoint.x_test[:, None, :]
    late = V2SClassifier("late-fusion", source=PAIR, slice_copies=SLICES, random_state=0).fit(x_train,
                                                                                             gunpoint.y_train)
    width = load_source("bc-resnet-gsc35").layer_width()
    reading, start_reading = _layer_reading(run, x_test), _layer_reading(late, x_test)
    assert reading.shape[1] == start_reading.shape[1] + width
    torch.testing.assert_close(reading[:, :width], start_reading[:, :width])
    torch.testing.assert_close(reading[:, 2 * width:], start_reading[:, width:])
    assert not torch.allclose(reading[:, width:2 * width], reading[:, :width])  # theta was trained
    # 1e-5, as the slice members' test above: the two readings agree within assert_close's float32 tolerance,
    # which the probes carry to 1.6e-6 on an AVX-512 Xeon
    np.testing.assert_allclose(run.probe_predict_proba(x_test), late.predict_proba(x_test), atol=1e-5)
    assert not np.allclose(run.predict_proba(x_test), late.predict_proba(x_test), atol=1e-3)
    result = run.fit_result_
    assert result.beside_start and result.best_epoch >= 1 and len(result.probe_c) == 4  # two sources, the view twice
    assert run.score(x_test, gunpoint.y_test) >= 0.95


def test_the_trained_view_counts_as_trained_view_weight_members(trained_member_run, gunpoint):
    """The trained-fusion preset counts the trained view twice: against the same fit counting it once (the same trained
    view, seeded), its logits are the start's four members (two sources, each with slices) plus the view twice,
    over six, where counting it once gives five: log p2 = (10 log p1 - 4 log p_start) / 6 up to a constant."""
    run, _ = trained_member_run
    x_train, x_test = gunpoint.x_train[:, None, :], gunpoint.x_test[:, None, :]
    once = V2SClassifier("trained-fusion", source=PAIR, slice_copies=SLICES, trained_view_weight=1, random_state=0).fit(
        x_train, gunpoint.y_train)
    assert run.settings_["trained_view_weight"] == 2 and once.fit_result_.best_epoch == run.fit_result_.best_epoch
    expected = torch.softmax(torch.tensor(10 * np.log(once.predict_proba(x_test))
                                          - 4 * np.log(once.probe_predict_proba(x_test))) / 6, dim=1).numpy()
    np.testing.assert_allclose(run.predict_proba(x_test), expected, atol=1e-5)
    assert not np.allclose(run.predict_proba(x_test), once.predict_proba(x_test), atol=1e-3)


def test_a_trained_member_run_is_saved_as_format_9_and_reloads_to_the_same_predictions(trained_member_run,
                                                                                        gunpoint):
    run, folder = trained_member_run
    document = json.loads((folder / CONFIG_FILE).read_text())
    assert document["format_version"] == FUSED_TRAINED_VIEW_FORMAT_VERSION == 9  # a version-8 reader: upgrade
    parts = document["bridge"]["config"]["parts"]
    assert [part["kind"] for part in parts] == ["series_to_filtered_tones", "series_to_image"]
    assert parts[0]["config"]["beside_start"]
    x = gunpoint.x_test[:, None, :]
    np.testing.assert_allclose(V2SClassifier.from_pretrained(folder).predict_proba(x), run.predict_proba(x),
                               atol=1e-6)


def test_without_a_validation_part_the_sources_probes_are_the_model(gunpoint):
    """val_fraction 0: nothing can show that the trained view helps, so none is trained or read."""
    x_train, x_test = gunpoint.x_train[:, None, :], gunpoint.x_test[:, None, :]
    run = V2SClassifier("trained-fusion", source=PAIR, val_fraction=0.0, slice_copies=SLICES, random_state=0).fit(
        x_train, gunpoint.y_train)
    late = V2SClassifier("late-fusion", source=PAIR, slice_copies=SLICES, random_state=0).fit(x_train,
                                                                                             gunpoint.y_train)
    assert run.fit_result_.stopped_by.startswith("no validation part") and len(run.fit_result_.probe_c) == 2
    np.testing.assert_allclose(run.predict_proba(x_test), late.predict_proba(x_test), atol=1e-6)


@pytest.mark.parametrize(("source", "settings", "message"), [
    (PAIR, {"fusion": "one-probe"}, "one more member of its probe per source"),
    (PAIR, {"choose_sources": True}, "one more member of its probe per source"),
    ("bc-resnet-gsc35-image+efficientnet-lite0", {}, "fused source's first audio source"),
], ids=["one-probe", "choice", "no-audio-source"])
def test_a_fused_trained_view_it_cannot_make_is_refused_in_one_line(source, settings, message, gunpoint):
    with pytest.raises(XmodalError, match=message) as caught:
        V2SClassifier("trained-fusion", source=source, random_state=0, **settings).fit(gunpoint.x_train[:, None, :],
                                                                                      gunpoint.y_train)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("name", "message"), [
    ("bc-resnet-gsc35+nope", "'nope' is not a registered source"),
    ("bc-resnet-gsc35+bc-resnet-gsc35", "names a source twice"),
    ("bc-resnet-gsc35+", "'' is not a registered source"),
])
def test_a_fused_name_of_unknown_or_repeated_sources_is_refused_in_one_line(name, message):
    with pytest.raises(XmodalError, match=message) as caught:
        load_source(name)
    assert "\n" not in str(caught.value) and not is_registered(name)


@pytest.mark.parametrize(("preset", "settings"), [
    ("fused", {}),
    ("late-fusion", {"choose_sources": True}),
    ("late-fusion", {"epochs": 5}),
], ids=["one-probe", "choice", "training-the-fused-bridge"])
def test_window_slices_where_no_probe_per_source_takes_them_are_refused_in_one_line(preset, settings, gunpoint):
    with pytest.raises(XmodalError, match="slice_copies adds a member per source") as caught:
        V2SClassifier(preset, source=PAIR, slice_copies=SLICES, random_state=0, **settings).fit(
            gunpoint.x_train[:, None, :], gunpoint.y_train)
    assert "\n" not in str(caught.value) and "--slice-copies 0" in str(caught.value)


@pytest.mark.parametrize(("settings", "message"), [
    ({"mapping": "linear"}, "set mapping='layers'"),
    ({"encoding": "image"}, "must then be an audio one"),
    ({"weights_path": "model.pt"}, "drop --weights"),
], ids=["no-classes", "image-for-audio-parts", "one-weights-file"])
def test_settings_a_fused_source_cannot_take_are_refused_before_training(settings, message, gunpoint):
    estimator = V2SClassifier("fused", source=PAIR, epochs=0, random_state=0, **settings)
    with pytest.raises(XmodalError, match=message):
        estimator.fit(gunpoint.x_train[:, None, :], gunpoint.y_train)


def test_a_fused_run_with_an_unregistered_part_is_not_loaded_without_trust(fused_run, tmp_path):
    _, folder = fused_run
    hostile = tmp_path / "run"
    shutil.copytree(folder, hostile)
    document = json.loads((hostile / CONFIG_FILE).read_text())
    document["source"]["name"] = f"bc-resnet-gsc35+hf:{tmp_path}"
    (hostile / CONFIG_FILE).write_text(json.dumps(document))
    with pytest.raises(PersistenceError, match="not a registered source"):
        V2SClassifier.from_pretrained(hostile)


@pytest.mark.parametrize("parts", [lambda parts: parts[:1], lambda parts: parts + parts[:1],
                                   lambda parts: [parts[0], {"kind": "fused", "config": {"parts": parts}}]],
                         ids=["one-part", "a-part-too-many", "nested"])
def test_a_damaged_fused_bridge_is_one_line(parts, fused_run, tmp_path):
    _, folder = fused_run
    hostile = tmp_path / "run"
    shutil.copytree(folder, hostile)
    document = json.loads((hostile / CONFIG_FILE).read_text())
    document["bridge"]["config"]["parts"] = parts(document["bridge"]["config"]["parts"])
    (hostile / CONFIG_FILE).write_text(json.dumps(document))
    with pytest.raises(PersistenceError, match="damaged") as caught:
        V2SClassifier.from_pretrained(hostile)
    assert "\n" not in str(caught.value)


def test_the_cli_fits_a_fused_source_and_refuses_to_align_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "series", "--dataset", "Coffee", "--data-dir", str(UCR), "--preset", "fused", "--source", PAIR,
                 "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "metrics.json").read_text())["test_accuracy"] >= 0.9
    capsys.readouterr()
    assert main(["align", str(out), "--source-samples", str(tmp_path / "z.npy")]) != 0
    assert "fuses several sources" in capsys.readouterr().err


# -- choosing the parts on the training split (choose_sources) -----------------------------------

@pytest.fixture(scope="module")
def chosen_run(gunpoint):
    return V2SClassifier("fused", source=PAIR, choose_sources=True, random_state=0).fit(gunpoint.x_train[:, None, :],
                                                                                      gunpoint.y_train)


def test_choose_sources_keeps_the_subset_whose_probe_has_the_lowest_training_cv_log_loss(chosen_run, gunpoint):
    """Each candidate's log-loss is the probe's of that subset read alone; the kept model is the one
    fitted directly on the chosen subset, with no choice left in its settings."""
    choice = chosen_run.source_choice_
    assert choice.candidates == ["bc-resnet-gsc35", "bc-resnet-gsc35-image", PAIR]
    x, y = gunpoint.x_train[:, None, :], torch.as_tensor(np.searchsorted(chosen_run.classes_, gunpoint.y_train))
    for name, loss in zip(choice.candidates, choice.cv_log_loss):
        alone = V2SClassifier("fused", source=name, epochs=0, random_state=0,
                              **({"encoding": "image"} if name == "bc-resnet-gsc35-image" else {}))
        alone.fit(gunpoint.x_train[:, None, :], gunpoint.y_train)
        assert loss == pytest.approx(fit_probe(_layer_reading(alone, x), y, 0).cv_log_loss, rel=1e-6)
    assert choice.chosen == choice.candidates[int(np.argmin(choice.cv_log_loss))]
    assert chosen_run.settings_["source"] == chosen_run.reprogrammer_.source.name == choice.chosen
    assert not chosen_run.settings_["choose_sources"]
    direct = V2SClassifier(**{**chosen_run.settings_, "random_state": 0})
    direct.fit(gunpoint.x_train[:, None, :], gunpoint.y_train)
    x_test = gunpoint.x_test[:, None, :]
    np.testing.assert_allclose(chosen_run.predict_proba(x_test), direct.predict_proba(x_test), atol=1e-6)


def test_a_run_saves_its_choice_and_reloads(chosen_run, gunpoint, tmp_path):
    folder = chosen_run.save_pretrained(tmp_path / "run")
    metadata = json.loads((folder / CONFIG_FILE).read_text())["metadata"]
    assert metadata["source_choice"]["chosen"] == chosen_run.source_choice_.chosen
    x = gunpoint.x_test[:, None, :]
    reloaded = V2SClassifier.from_pretrained(folder)
    np.testing.assert_allclose(reloaded.predict_proba(x), chosen_run.predict_proba(x), atol=1e-6)
    assert reloaded.source_choice_ == chosen_run.source_choice_  # kept when the run is saved again


@pytest.mark.parametrize("fused_settings", [{"choose_sources": True}, {"fusion": "probe-per-source"},
                                            {"fusion": "probe-per-source", "slice_copies": SLICES}])
def test_one_source_is_read_as_it_is(fused_settings, gunpoint):
    """A single --source with a fused source's settings: nothing to choose, average or slice, that source's
    probe."""
    x_train, x_test = gunpoint.x_train[:, None, :], gunpoint.x_test[:, None, :]
    single = V2SClassifier("fused", source="bc-resnet-gsc35", random_state=0, **fused_settings).fit(x_train,
                                                                                                  gunpoint.y_train)
    plain = V2SClassifier("tones", epochs=0, random_state=0).fit(x_train, gunpoint.y_train)
    assert not hasattr(single, "source_choice_") and single.settings_ | fused_settings == single.settings_
    assert single.reprogrammer_.source.name == "bc-resnet-gsc35" and isinstance(single.fit_result_.probe_c, float)
    np.testing.assert_allclose(single.predict_proba(x_test), plain.predict_proba(x_test), atol=1e-6)


def test_only_the_series_task_reads_a_fused_source():
    """A sequence or table run names one source; a fused name there is refused before any model loads
    (and never read as a model folder of that name)."""
    from adapters_modal.text import load_text_source
    from xmodal.estimators.table import TableClassifier

    with pytest.raises(XmodalError, match="only the series task reads"):
        load_text_source("minilm-l6+bc-resnet-gsc35")
    table = TableClassifier(source=PAIR)
    table.settings_ = table.resolved_settings()
    with pytest.raises(XmodalError, match="a table run reads one source"):
        table._load_source()


def test_the_cli_reports_the_choice_and_records_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["fit", "series", "--dataset", "Coffee", "--data-dir", str(UCR), "--preset", "fused", "--source", PAIR,
                 "--choose-sources", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["source"] == metrics["source_choice"]["chosen"] and len(metrics["source_choice"]["candidates"]) == 3
    assert "sources chosen on the training split (3 subsets" in capsys.readouterr().err


def test_the_cli_reports_a_trained_member_beside_the_sources_probes(tmp_path, capsys):
    """The trained-fusion preset on a fused source: the probe row is the sources' probes alone, and the
    validation scores, the trained member's alone, stay out of the table and are said in the verdict."""
    out = tmp_path / "run"
    assert main(["fit", "series", "--dataset", "Coffee", "--data-dir", str(UCR), "--preset", "trained-fusion",
                 "--source", PAIR, "--seed", "0", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["preset"] == "trained-fusion" and metrics["settings"]["trained_view"]
    probe_row = next(line for line in printed.splitlines() if line.strip().startswith("probe (start)"))
    assert probe_row.split()[2] == "-" and f"{metrics['probe_test_accuracy']:.4f}" in probe_row
    assert "trained view of the first audio source" in printed
    assert "as one more member counted 2 times beside the 2 sources' probes" in printed  # the preset's weight
    assert "each also refitted on 4 window slices of every series (the start)" in printed  # the preset's
