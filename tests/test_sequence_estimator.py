"""SequenceClassifier: scikit-learn interface, save/load round trip, bad input."""

import json
import warnings

import numpy as np
import pytest
import safetensors.torch
import torch
from sklearn.base import clone

from xmodal.cli.fit import _verdict
from xmodal.devices import native_bfloat16
from xmodal.errors import DataError, PersistenceError, XmodalError
from xmodal.estimators.sequence import SequenceClassifier
from xmodal.maps import KernelHead
from xmodal.persistence import CONFIG_FILE, weights_file
from xmodal.training.kernel_probe import KERNEL_C
from xmodal.training.probe import PROBE_C


def pick(records, n, seed=0):
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(records), n, replace=False)
    return [records.sequences[i] for i in picks], records.labels[picks]


@pytest.fixture(scope="module")
def fitted(amp, tmp_path_factory):
    x, y = pick(amp.train, 64)
    x_val, y_val = pick(amp.validation, 24)
    # a random head: training is always kept, so theta here is a trained one (the probe start,
    # which can win selection at epoch 0, is tested on its own below)
    model = SequenceClassifier(head="linear", epochs=2, sparsity=6, head_init="random", random_state=3).fit(
        x, y, validation_data=(x_val, y_val))
    folder = model.save_pretrained(tmp_path_factory.mktemp("runs") / "amp", {"dataset": "amp-subset"})
    return model, folder, pick(amp.test, 40)


@pytest.mark.slow  # the fitted fixture: MiniLM over 88 records, about a minute here
def test_fit_predict_on_strings(fitted):
    model, _, (x_test, _) = fitted
    assert model.classes_.tolist() == ["AMP", "DECOY"]
    probabilities = model.predict_proba(x_test)
    assert probabilities.shape == (40, 2) and np.allclose(probabilities.sum(axis=1), 1)
    assert set(model.predict(x_test)) <= {"AMP", "DECOY"}
    assert model.fit_result_.n_val == 24 and model.fit_result_.selection == "validation"
    assert model.sparsity_["max_nonzeros_per_row"] == 6 and model.n_truncated_ == 0


@pytest.mark.slow
def test_probe_start_competes_in_selection(amp):
    """head_init="probe": the probe is epoch 0 of the selection; training is kept only where
    a trained epoch beats it on validation log-loss. Without validation_data the training loop
    carves the validation records before probing, so the probe never sees them."""
    x, y = pick(amp.train, 64)
    x_val, y_val = pick(amp.validation, 24)
    model = SequenceClassifier(head="linear", epochs=2, sparsity=6, random_state=3).fit(
        x, y, validation_data=(x_val, y_val))
    assert model.fit_result_.probe_c in PROBE_C  # its strength chosen by k-fold log-loss on the training records
    assert model.fit_result_.probe_val_accuracy == model.fit_result_.history[0]["val_accuracy"]
    history = model.fit_result_.history
    assert history[0]["epoch"] == 0 and model.fit_result_.epochs_run == len(history) - 1
    best = min(history, key=lambda record: record["val_loss"])
    assert model.fit_result_.best_epoch == best["epoch"]
    assert model.fit_result_.val_loss == best["val_loss"]
    # a probe start that wins is refitted on the given validation records too
    refitted = model.fit_result_.best_epoch == 0
    assert model.fit_result_.n_fit == (64 + 24 if refitted else 64)
    assert model.fit_result_.selection.endswith("and the validation split") == refitted
    carved = SequenceClassifier(head="linear", epochs=1, sparsity=6, random_state=3).fit(x, y)
    # 6 records carved for validation; a probe start that wins is refitted on all 64
    result = carved.fit_result_
    assert result.n_val == 6 and result.n_fit == (64 if result.best_epoch == 0 else 58)
    assert result.selection.startswith("validation") and result.probe_c in PROBE_C


@pytest.mark.slow  # the fitted fixture: MiniLM over 88 records, about a minute here
def test_bfloat16_reads_what_float32_reads_within_its_rounding(fitted):
    """precision: autocast around the frozen LM alone (which reads with its bfloat16 copy), its reading handed
    back in float32; on real peptides it moves the pooled features by under a percent and no prediction."""
    model, _, (x_test, _) = fitted
    reprogrammer, ids = model.reprogrammer_.eval(), model.encode(x_test).ids
    kept = reprogrammer.compute_dtype
    readings = {}
    try:
        for dtype in (None, torch.bfloat16):
            reprogrammer.compute_dtype = dtype
            with torch.no_grad():
                readings[dtype] = reprogrammer.source_logits(ids)
    finally:
        reprogrammer.compute_dtype = kept
    full, reduced = readings[None], readings[torch.bfloat16]
    assert reduced.dtype == full.dtype == torch.float32 and not torch.equal(reduced, full)
    assert ((reduced - full).norm() / full.norm()).item() < 0.01
    head = reprogrammer.output_map
    assert torch.equal(head(reduced).argmax(dim=1), head(full).argmax(dim=1))


@pytest.mark.slow  # the fitted fixture: MiniLM over 88 records, about a minute here
def test_sklearn_parameters_and_clone(fitted):
    model, _, _ = fitted
    params = model.get_params()
    assert params["preset"] == "best" and params["sparsity"] == 6 and params["mode"] is None  # None: the preset's
    assert model.settings_["mode"] == "sparse" and model.settings_["source"] == "minilm-l6"
    assert model.settings_["sparsity"] == 6 and model.seed_ == 3
    copy = clone(model).set_params(mode="dense")
    assert copy.mode == "dense" and not hasattr(copy, "classes_") and not hasattr(copy, "settings_")


@pytest.mark.slow  # the fitted fixture: MiniLM over 88 records, about a minute here
def test_round_trip_predicts_the_same(fitted):
    model, folder, (x_test, _) = fitted
    loaded = SequenceClassifier.from_pretrained(folder)
    assert np.array_equal(loaded.predict_proba(x_test), model.predict_proba(x_test))
    # precision auto, resolved at fit time for this CPU and kept with the run
    assert loaded.precision_ == model.precision_ == ("bfloat16" if native_bfloat16(torch.device("cpu")) else "float32")
    assert loaded.reprogrammer_.compute_dtype == model.reprogrammer_.compute_dtype
    assert json.loads((folder / CONFIG_FILE).read_text())["metadata"]["precision"] == model.precision_
    assert loaded.settings_ == model.settings_ and loaded.seed_ == model.seed_
    assert loaded.classes_.tolist() == ["AMP", "DECOY"]
    document = json.loads((folder / CONFIG_FILE).read_text())
    assert document["reads"] == "features" and document["bridge"]["kind"] == "tokens_to_embeddings"
    assert document["source"]["name"] == "minilm-l6" and document["metadata"]["sparsity"]["k"] == 6
    state = safetensors.torch.load_file(str(weights_file(folder)))
    assert state["bridge.theta_values"].shape == state["bridge.theta_indices"].shape == (22, 6)
    assert weights_file(folder).stat().st_size < 90_000  # the head (8064 x 2) and k-sparse theta, not 22 x 30522
    # Rows of tokens seen in training hold k = 6 atoms; [PAD] and [UNK] get no gradient and keep
    # the (sparser) OMP code of their spelling.
    nonzeros = (loaded.reprogrammer_.bridge.theta != 0).sum(dim=1)
    assert (nonzeros[2:] == 6).all() and (nonzeros[:2] < 6).all()
    assert ((state["bridge.theta_values"] != 0).sum(dim=1) == nonzeros).all()


@pytest.mark.slow  # the fitted fixture: MiniLM over 88 records, about a minute here
def test_corrupt_save_is_refused(fitted, tmp_path):
    _, folder, _ = fitted
    import shutil

    copy = shutil.copytree(folder, tmp_path / "copy")
    weights_file(copy).write_bytes(weights_file(copy).read_bytes()[:-10])
    with pytest.raises(PersistenceError, match="sha256 differs"):
        SequenceClassifier.from_pretrained(copy)


@pytest.mark.slow  # the fitted fixture: MiniLM over 88 records, about a minute here
def test_bad_input_names_the_problem(fitted):
    model, _, _ = fitted
    with pytest.raises(DataError, match="single string"):
        model.predict("GLFDIVKK")
    with pytest.raises(DataError, match=r"X\[1\] is int"):
        model.predict(["GLF", 7])
    with pytest.raises(DataError, match=r"record 1 \('GLXK'\): unknown token 'X'"):
        model.predict(["GLFK", "GLXK"])


def test_bad_training_input_is_refused():
    with pytest.raises(DataError, match="single class"):
        SequenceClassifier().fit(["GLF", "KKL"], ["AMP", "AMP"])
    with pytest.raises(DataError, match="'head_init' must be one of probe, random, got 'zeros'"):
        SequenceClassifier(head_init="zeros").fit(["GLF", "KKL"], ["AMP", "DECOY"])
    with pytest.raises(DataError, match="2 sequences but 3 labels"):
        SequenceClassifier().fit(["GLF", "KKL"], ["AMP", "DECOY", "AMP"])
    with pytest.raises(DataError, match=r"labels \['TOXIN'\] are not among"):
        SequenceClassifier().fit(["GLF", "KKL"], ["AMP", "DECOY"], validation_data=(["GLF"], ["TOXIN"]))


@pytest.mark.slow  # the fitted fixture: MiniLM over 88 records, about a minute here
def test_long_records_follow_the_truncation_policy(fitted):
    model, _, _ = fitted
    long = "GLFDIVKKVV" * 60  # 600 residues, 510 fit between [CLS] and [SEP]
    with pytest.raises(DataError, match="600 tokens but the source takes at most 510"):
        model.predict([long])
    keep_start = clone(model).set_params(truncation="keep_start")
    keep_start.__dict__.update({k: v for k, v in model.__dict__.items() if k.endswith("_")})
    keep_start.settings_ = keep_start.resolved_settings()  # the fitted model, with the new truncation policy
    with pytest.warns(UserWarning, match="1 of 2 records were cut to 510 tokens"):
        probabilities = keep_start.predict_proba([long, "GLF"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.allclose(probabilities[0], keep_start.predict_proba([long[:510]])[0], atol=1e-6)


@pytest.mark.slow  # MiniLM over 88 records, two epochs and a second reading
def test_a_trained_view_reads_trained_theta_beside_its_start(amp, tmp_path):
    """The trained-view preset: theta trained from the probe start, then both readings under one probe,
    scored on the validation records against the probe start; the start state is the best preset's model."""
    x, y = pick(amp.train, 64)
    x_val, y_val = pick(amp.validation, 24)
    x_test, _ = pick(amp.test, 20)
    short = {"head": "linear", "epochs": 2, "sparsity": 6, "random_state": 3}
    viewed = SequenceClassifier("trained-view", **short).fit(x, y, validation_data=(x_val, y_val))
    model, result = viewed.reprogrammer_, viewed.fit_result_
    assert model.bridge.views == 2 and model.output_map.num_source == 2 * model.source.feature_dim
    assert result.beside_start and result.best_epoch >= 1 and result.history[0]["epoch"] == 0
    assert result.reprogramming_kept == (result.val_loss < result.history[0]["val_loss"])
    plain = SequenceClassifier("best", **{**short, "epochs": 0}).fit(x, y, validation_data=(x_val, y_val))
    # The same model up to float noise. On an AVX-512 Xeon the two differed by up to 6e-5 in float32 and 1e-4 in
    # bfloat16 (what precision="auto" picks there); the trained model is 3e-2 away.
    noise = 5e-4 if viewed.precision_ == "bfloat16" else 1e-4
    np.testing.assert_allclose(viewed.probe_predict_proba(x_test), plain.predict_proba(x_test), atol=noise)
    assert not np.allclose(viewed.predict_proba(x_test), plain.predict_proba(x_test), atol=1e-3)
    folder = viewed.save_pretrained(tmp_path / "run")
    loaded = SequenceClassifier.from_pretrained(folder)
    assert loaded.settings_["trained_view"] and loaded.reprogrammer_.bridge.views == 2
    np.testing.assert_array_equal(loaded.predict_proba(x_test), viewed.predict_proba(x_test))
    # an xmodal that predates the trained view asks for an upgrade (version 8); a run that reads once stays
    # readable by it (version 6, no beside_start key)
    assert json.loads((folder / CONFIG_FILE).read_text())["format_version"] == 8
    plain_document = json.loads((plain.save_pretrained(tmp_path / "plain") / CONFIG_FILE).read_text())
    assert plain_document["format_version"] == 6 and "beside_start" not in plain_document["bridge"]["config"]


def test_a_trained_view_without_training_is_refused_in_one_line():
    with pytest.raises(XmodalError, match="epochs >= 1"):
        SequenceClassifier("trained-view", epochs=0).fit(["KLAK", "GIGK"], ["AMP", "DECOY"])


@pytest.mark.slow  # MiniLM over 88 records: a reading, an epoch, a second reading
def test_a_trained_view_under_a_kernel_head_keeps_theta_only_where_it_beats_the_best_presets_model(amp, tmp_path):
    """The trained-view preset: theta trained from the linear probe start, then kernel heads on the start's
    reading alone (the best preset's model) and on both readings compete on validation log-loss."""
    x, y = pick(amp.train, 64)
    x_val, y_val = pick(amp.validation, 24)
    x_test, _ = pick(amp.test, 20)
    viewed = SequenceClassifier("trained-view", sparsity=6, random_state=3).fit(x, y, validation_data=(x_val, y_val))
    plain = SequenceClassifier("best", sparsity=6, random_state=3).fit(x, y, validation_data=(x_val, y_val))
    model, result = viewed.reprogrammer_, viewed.fit_result_
    assert viewed.settings_["head"] == "kernel" and result.epochs_run == 1 and result.n_fit == 64 + 24
    # the start competing is the best preset's model, fitted and scored alike (the same reading, C and refit)
    assert result.history[0]["val_loss"] == pytest.approx(plain.fit_result_.val_loss, abs=1e-4)
    assert result.probe_val_accuracy == pytest.approx(plain.fit_result_.val_accuracy, abs=1e-6)
    kept = result.val_loss < result.history[0]["val_loss"]
    # the trained epoch is scored by the kernel head on both readings; training's linear head keeps its own keys
    trained_epoch = result.history[1]
    assert trained_epoch["epoch"] == 1 and {"linear_val_loss", "linear_val_accuracy"} <= set(trained_epoch)
    assert (trained_epoch["val_loss"] == result.val_loss) == kept
    assert result.reprogramming_kept == kept == result.beside_start and (result.best_epoch == 1) == kept
    assert isinstance(model.output_map, KernelHead) and model.bridge.views == (2 if kept else 1)
    assert model.output_map.num_source == model.bridge.views * model.source.feature_dim
    noise = 5e-4 if viewed.precision_ == "bfloat16" else 1e-4  # as the linear trained view's test says
    np.testing.assert_allclose(viewed.probe_predict_proba(x_test), plain.predict_proba(x_test), atol=noise)
    assert kept != np.allclose(viewed.predict_proba(x_test), plain.predict_proba(x_test), atol=noise)
    assert _verdict(viewed).startswith("trained view: θ of epoch 1 of 1 kept" if kept else "the start won")
    loaded = SequenceClassifier.from_pretrained(viewed.save_pretrained(tmp_path / "run"))
    assert loaded.reprogrammer_.bridge.views == model.bridge.views
    np.testing.assert_array_equal(loaded.predict_proba(x_test), viewed.predict_proba(x_test))


@pytest.mark.slow  # MiniLM over 64 records, no training
def test_a_trained_view_under_a_kernel_head_without_a_validation_part_is_the_start(amp):
    x, y = pick(amp.train, 64)
    model = SequenceClassifier("trained-view", sparsity=6, val_fraction=0.0, random_state=3).fit(x, y)
    result = model.fit_result_
    assert result.epochs_run == 0 and result.n_fit == 64 and not result.beside_start
    assert isinstance(model.reprogrammer_.output_map, KernelHead) and model.reprogrammer_.bridge.views == 1
    assert _verdict(model).startswith("no training: there is no validation part")


@pytest.mark.slow  # MiniLM over 88 records
def test_the_best_presets_kernel_head_is_fitted_refitted_and_saved(amp, tmp_path):
    x, y = pick(amp.train, 64)
    x_val, y_val = pick(amp.validation, 24)
    x_test, _ = pick(amp.test, 20)
    model = SequenceClassifier(sparsity=6, random_state=3).fit(x, y, validation_data=(x_val, y_val))
    head, result = model.reprogrammer_.output_map, model.fit_result_
    assert isinstance(head, KernelHead) and model.settings_["head"] == "kernel"
    assert result.probe_c in KERNEL_C and result.epochs_run == 0 and result.n_fit == 64 + 24  # refitted on both
    assert result.selection.endswith("and the validation split") and 0 < head.support.shape[0] <= 88
    # the model is its start, so the probe beside it is the model itself
    assert np.array_equal(model.probe_predict_proba(x_test), model.predict_proba(x_test))
    loaded = SequenceClassifier.from_pretrained(model.save_pretrained(tmp_path / "run"))
    assert np.array_equal(loaded.predict_proba(x_test), model.predict_proba(x_test))
    assert loaded.reprogrammer_.output_map.settings() == head.settings()


def test_a_kernel_head_on_too_many_records_is_refused_before_the_source_is_read(amp):
    x, y = np.tile(amp.train.sequences, 14), np.tile(amp.train.labels, 14)  # 19 936: the validation records tip it
    with pytest.raises(DataError, match=f"a kernel head on {len(x) + len(amp.validation)} records needs"):
        SequenceClassifier().fit(x, y, validation_data=(amp.validation.sequences, amp.validation.labels))


def test_a_kernel_head_with_training_is_refused_in_one_line():
    with pytest.raises(XmodalError, match="a kernel head is fitted on the reading, not trained") as caught:
        SequenceClassifier(epochs=2).fit(["KLAK", "GIGK"], ["AMP", "DECOY"])
    assert "\n" not in str(caught.value) and "set head 'linear'" in str(caught.value)
