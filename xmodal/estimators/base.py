"""What every estimator shares: presets and settings, the seed, training, probe scores,
saving and loading.

An estimator's parameters are `preset` (first), every setting of its task (None: the
preset's value) and a few of its own (random_state, verbose, ...). `with_settings`
writes that `__init__` from xmodal.settings, so a setting is named once, and the
class docstring lists them. Fitted attributes: `settings_` (the effective settings),
`seed_` (drawn once when random_state is None), `fit_result_` (epochs, validation,
history), `reprogrammer_`, `classes_`.

The seed is the only source of randomness: every draw (initialisation, validation split,
shuffling, dropout, zeroth-order directions) comes from it, so the same seed gives the same
model bit for bit on the CPU, and the caller's global random state (torch, numpy, Python's
random) is the same after fit, predict, save and load as before. The `device` setting
says where the model (bridge, frozen source, output map) is moved for fit and predict.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.utils.multiclass import check_classification_targets

from adapters_modal.base import load_source
from xmodal.devices import resolve_device
from xmodal.errors import DataError, PersistenceError, XmodalError
from xmodal.maps import KernelHead, LinearHead
from xmodal.presets import DEFAULT_PRESET, preset_names, resolve_settings
from xmodal.settings import DEVICE, SETTINGS, check_settings
from xmodal.training.config import FitResult, TrainConfig
from xmodal.training.gradients import BLACK_BOX_MAPPINGS, Backprop, ZerothOrder
from xmodal.training.kernel_probe import fit_kernel_probe
from xmodal.training.loop import NO_VALIDATION_PART, in_batches, loss_and_accuracy, train
from xmodal.training.probe import PROBE_C
from xmodal.training.split import selection_split

# How a trained view trains its bridge (docs/experiments.md, 0.9): the best trained epoch is kept, as the
# start is read beside it anyway; the probe-started head moves at a tenth of theta's rate and under the
# probe's own L2 penalty, so the start is where its objective rests and theta does the moving.
TRAINED_VIEW_TRAINING = {"start_competes": False, "head_lr_ratio": 0.1, "probe_penalty": True}
# The kernel trained view's linear start only steers training (kernel heads, with C of their own, are the model), so
# its C is chosen on this many fit records, a stratified sample; the start is then fitted on all at that C. ToxinPred
# fold 0 (3 886 records): that start 66 s -> 11 s, the kernel head on both readings 0.1052 -> 0.1054 validation
# log-loss (docs/experiments.md, 0.35).
STEERING_C_ROWS = 1000


def _refitted_on(validation) -> str:
    """What a trained view's read-out is refitted on: the training samples, and the validation records where
    they were given (carved, they are training samples already)."""
    return "all training samples" + ("" if validation is None else " and the validation split")


def settings_doc(task: str) -> str:
    lines = [f"    preset : {' | '.join(preset_names(task))} (default {DEFAULT_PRESET!r}); see `xmodal presets`",
             "        and xmodal.presets. Every setting below left at None takes the preset's value."]
    for setting in SETTINGS[task].values():
        lines.append(f"    {setting.name} : {setting.describe()}")
        lines.append(f"        {setting.help}")
    return "\n".join(lines)


def with_settings(task: str, **own):
    """Class decorator: an `__init__(self, preset="best", *, <task settings>=None, **own)`
    with a real signature (scikit-learn's get_params and clone read it), and the settings
    appended to the class docstring."""

    def decorate(cls):
        names = ["preset", *SETTINGS[task], *own]
        defaults = {"preset": DEFAULT_PRESET, **dict.fromkeys(SETTINGS[task]), **own}
        signature = inspect.Signature(
            [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
             inspect.Parameter("preset", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=DEFAULT_PRESET)]
            + [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=defaults[name]) for name in names[1:]])

        def __init__(self, *args, **kwargs):
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            for name in names:
                setattr(self, name, bound.arguments[name])
            super(cls, self).__init__()

        __init__.__signature__ = signature
        cls.__init__ = __init__
        cls.task = task
        doc, examples = (cls.__doc__ or ""), ""
        if "    Examples\n" in doc:  # numpydoc order: Parameters before Examples
            doc, examples = doc.split("    Examples\n", 1)
            examples = "    Examples\n" + examples
        cls.__doc__ = doc.rstrip() + "\n\n    Parameters\n    ----------\n" + settings_doc(task) + "\n\n" + examples
        return cls

    return decorate


class ReprogrammingEstimator:
    """Mixin for the task estimators (V2SClassifier, SequenceClassifier, TableClassifier)."""

    task: str

    # -- settings and seed -------------------------------------------------------------
    def resolved_settings(self) -> dict:
        """The preset's settings with this estimator's explicit ones applied, checked."""
        return resolve_settings(self.task, self.preset, {name: getattr(self, name) for name in SETTINGS[self.task]})

    def _begin_fit(self, y) -> None:
        """settings_, seed_ and classes_; refuses a single class, and a device this machine lacks."""
        self.settings_ = self.resolved_settings()
        resolve_device(self.settings_["device"])  # device="cuda" without a GPU fails before any model loads
        self.seed_ = (int(np.random.default_rng().integers(2**31 - 1)) if self.random_state is None
                      else int(self.random_state))
        try:  # continuous or multi-output targets are no classes
            check_classification_targets(y)
        except ValueError as exc:
            raise DataError(f"{exc}; a classifier takes one class label per sample") from None
        classes = np.unique(np.asarray(y))
        if len(classes) < 2:
            raise DataError(f"the training labels hold a single class ({classes.tolist()}); "
                            "a classifier needs at least 2")
        self.classes_ = classes

    def _check_black_box(self) -> None:
        """Refuse, before any work, a head that could not train and a query budget with settings
        black-box training cannot take. (A budget with epochs 0 caps what reading the probe spends.)"""
        s = self.settings_
        if s["mapping"] == "proba" and s.get("head_init", "probe") != "probe":
            raise DataError("a head on the log-probabilities (mapping 'proba') stays where it starts, so a random "
                            "head would stay random; set head_init='probe'")
        if s.get("query_budget") is None:
            return
        if s["mapping"] not in BLACK_BOX_MAPPINGS:
            raise DataError(f"black-box training (query_budget) takes a fixed label mapping or a head on the class "
                            f"log-probabilities ({', '.join(BLACK_BOX_MAPPINGS)}): mapping {s['mapping']!r} reads "
                            "what a prediction API does not return, or spends the budget on re-mapping; "
                            "set mapping='proba'")

    def _targets(self, y) -> torch.Tensor:
        y = np.asarray(y)
        unknown = sorted(set(y.tolist()) - set(self.classes_.tolist()), key=str)
        if unknown:
            raise DataError(f"labels {unknown[:5]} are not among the training classes {self.classes_.tolist()}")
        return torch.as_tensor(np.searchsorted(self.classes_, y), dtype=torch.long)

    # -- training ----------------------------------------------------------------------
    def _train(self, model, x: torch.Tensor, targets: torch.Tensor, head_init: str, select_on: str,
               validation=None, lengths=None, probe_cs: tuple[float, ...] = PROBE_C,
               start_features: torch.Tensor | None = None, start_val_features: torch.Tensor | None = None,
               **config) -> FitResult:
        """The one training call of every task: white-box, or zeroth-order within query_budget.
        config: TrainConfig fields beyond the settings (or instead of them: epochs=0)."""
        s = self.settings_
        config = TrainConfig(**{"epochs": s["epochs"], "lr": s["lr"], "batch_size": s["batch_size"],
                                "val_fraction": s["val_fraction"], "patience": s["patience"], "seed": self.seed_,
                                "progress": bool(self.verbose), "head_init": head_init, "select_on": select_on,
                                "probe_cs": probe_cs, **config})
        budget = s.get("query_budget")
        gradients = Backprop() if budget is None else ZerothOrder(budget, seed=self.seed_)
        model.to(resolve_device(s["device"]))  # built on the CPU; trained and kept where the setting says
        self.fit_result_ = train(model, x, targets, config, validation, lengths, gradients, start_features,
                                 start_val_features)
        self.start_state_ = self.fit_result_.start_state
        return self.fit_result_

    def _linear_head(self, width: int) -> LinearHead:
        """A linear head from `width` source numbers to the classes; clipping where the settings say (only
        series have clip_features)."""
        return LinearHead(width, len(self.classes_), seed=self.seed_, clip=self.settings_.get("clip_features", False))

    def _selection_parts(self, x: torch.Tensor, targets: torch.Tensor, validation, lengths: torch.Tensor | None):
        """(x, targets, validation, lengths) of the fit part, with the validation records given, or carved from
        x as training carves them (selection_split, the same seed): the validation rows ordered by length, as a
        given validation split is (less padding per batch)."""
        if validation is not None:
            return x, targets, validation, lengths
        fit, val = selection_split(targets.numpy(), self.settings_["val_fraction"], self.settings_["epochs"],
                                   self.seed_)
        if lengths is not None:
            val = val[torch.argsort(lengths[val], stable=True).numpy()]
        return x[fit], targets[fit], (x[val], targets[val]), None if lengths is None else lengths[fit]

    def _fit_trained_view(self, x: torch.Tensor, targets: torch.Tensor, validation=None,
                          lengths: torch.Tensor | None = None, model=None) -> None:
        """Train theta from the probe start (TRAINED_VIEW_TRAINING), then read the trained bridge beside
        its start (the bridge's `beside_start` view): a probe of both readings, fitted on the fit part (its
        validation score is the model's) and refitted on every training sample (and the given validation
        records). The start state is the probe start in the two-reading model (its weights on the start's
        reading, zeros on the trained one). Series (filtered tones) and sequences (R2DL's theta) alike."""
        model = self.reprogrammer_ if model is None else model  # a fused source's trained part: its own model
        refitted_on = _refitted_on(validation)
        trained = self._train(model, x, targets, head_init="probe", select_on="loss", validation=validation,
                              lengths=lengths, **TRAINED_VIEW_TRAINING)
        if not trained.epochs_run:  # no validation part: the probe start is the model
            return
        width = model.output_map.num_source // model.bridge.views
        model.bridge.config.beside_start = True
        model.output_map = self._linear_head(width * model.bridge.views)
        x, targets, validation, lengths = self._selection_parts(x, targets, validation, lengths)
        both = self._train(model, x, targets, head_init="probe", select_on="loss", validation=validation,
                           lengths=lengths, epochs=0)
        weight = trained.start_state["output_map.linear.weight"]
        start = {**trained.start_state,
                 "output_map.linear.weight": torch.cat([weight, torch.zeros_like(weight)], dim=1)}
        self.fit_result_ = dataclasses.replace(
            trained, val_accuracy=both.val_accuracy, val_loss=both.val_loss, n_fit=both.n_fit, probe_c=both.probe_c,
            seconds=trained.seconds + both.seconds, start_state=start, beside_start=True,
            selection=f"validation: trained epoch {trained.best_epoch} kept, read beside the start under a probe of "
                      f"both readings, refitted on {refitted_on}")
        self.start_state_ = start

    def _fit_trained_kernel_view(self, x: torch.Tensor, targets: torch.Tensor, validation=None,
                                 lengths: torch.Tensor | None = None) -> None:
        """The trained view read out by a kernel head (KernelHead; the model is built with a linear head, which
        training needs). Theta trains as in `_fit_trained_view`, from the linear probe start; then a kernel
        probe of the start's reading alone and one of both readings side by side are fitted on the fit part and
        compete on validation log-loss: the trained theta is kept only where both readings win. The winner is
        refitted, with its C, on the fit part and the validation records. With validation records given, the
        start's kernel head is the best preset's model (carved from x, its C is chosen on the fit part alone).
        The start's reading is made once, for training's probe start and both kernel heads. History: epoch 0
        is the start's kernel head, the trained epoch compared is scored by the kernel head on both readings
        (the linear head's own scores are kept as linear_val_loss, linear_val_accuracy: training scores no lone
        epoch, so that one's are taken from the trained reading here)."""
        started = time.perf_counter()
        model = self.reprogrammer_
        refitted_on = _refitted_on(validation)
        x, targets, validation, lengths = self._selection_parts(x, targets, validation, lengths)
        x_val, y_val = validation
        model.to(resolve_device(self.settings_["device"])).eval()

        def read(ids: torch.Tensor, ids_lengths: torch.Tensor | None) -> torch.Tensor:
            return in_batches(model.source_logits, ids.to(model.device), self.settings_["batch_size"], ids_lengths,
                              progress="reading the source" if self.verbose else None).cpu()

        start_fit = read(x, lengths)
        if not len(y_val):  # nothing could show that training beats the start: its kernel head is the model
            model.output_map = KernelHead(start_fit.shape[1], len(self.classes_))
            self._train(model, x, targets, head_init="probe", select_on="loss", validation=validation,
                        lengths=lengths, start_features=start_fit, epochs=0)
            self.fit_result_.stopped_by = NO_VALIDATION_PART
            return
        start_val = read(x_val, None)
        trained = self._train(model, x, targets, head_init="probe", select_on="loss", validation=validation,
                              lengths=lengths, start_features=start_fit, start_val_features=start_val,
                              refit_start=False, probe_c_rows=STEERING_C_ROWS, **TRAINED_VIEW_TRAINING)
        model.eval()
        trained_fit, trained_val = read(x, lengths), read(x_val, None)
        with torch.no_grad():  # the trained linear head's own score, on the reading the kernel heads take
            linear = dict(zip(("linear_val_loss", "linear_val_accuracy"),
                              loss_and_accuracy(model.output_map(trained_val.to(model.device)).cpu(), y_val)))
        both_fit, both_val = torch.cat([start_fit, trained_fit], dim=1), torch.cat([start_val, trained_val], dim=1)
        start_probe, start_score = self._kernel_scored(start_fit, start_val, targets, y_val)
        both_probe, both_score = self._kernel_scored(both_fit, both_val, targets, y_val)
        keep = both_score["val_loss"] < start_score["val_loss"]
        every_y = torch.cat([targets, y_val])
        start_head = KernelHead.holding(fit_kernel_probe(torch.cat([start_fit, start_val]), every_y, self.seed_,
                                                         start_probe.c))
        bridge_start = {k: v for k, v in trained.start_state.items() if not k.startswith("output_map.")}
        if keep:  # the trained theta stays, read beside its start
            model.bridge.config.beside_start = True
            model.output_map = KernelHead.holding(fit_kernel_probe(torch.cat([both_fit, both_val]), every_y,
                                                                   self.seed_, both_probe.c))
        else:
            model.load_state_dict(bridge_start, strict=False)
            model.output_map = start_head
        model.output_map.to(model.device)
        start_model_head = start_head.widened(start_fit.shape[1]) if keep else start_head  # in the model's shape
        start_state = {**bridge_start, **{f"output_map.{k}": v.clone()
                                          for k, v in start_model_head.state_dict().items()}}
        history = [{"epoch": 0, **start_score}]
        for record in trained.history[1:]:
            record = {("linear_" + k if k in start_score else k): v for k, v in record.items()}
            history.append({**record, **({**linear, **both_score} if record["epoch"] == trained.best_epoch else {})})
        chosen, probe = (both_score, both_probe) if keep else (start_score, start_probe)
        self.fit_result_ = dataclasses.replace(
            trained, best_epoch=trained.best_epoch if keep else 0, **chosen, n_fit=len(every_y), probe_c=probe.c,
            probe_val_accuracy=start_score["val_accuracy"], beside_start=keep, start_state=start_state,
            seconds=time.perf_counter() - started, history=history,
            selection=f"validation: kernel heads on the start's reading alone (log-loss {start_score['val_loss']:.4f}) "
                      f"and beside trained epoch {trained.best_epoch}'s ({both_score['val_loss']:.4f}); "
                      f"{'both readings' if keep else 'the start'} won, refitted on {refitted_on}")
        self.start_state_ = start_state

    def _kernel_scored(self, features: torch.Tensor, val_features: torch.Tensor, targets: torch.Tensor,
                       val_targets: torch.Tensor):
        """A kernel probe of `features` (C chosen on them) and its validation log-loss and accuracy."""
        probe = fit_kernel_probe(features, targets, self.seed_)
        with torch.no_grad():
            loss, accuracy = loss_and_accuracy(KernelHead.holding(probe)(val_features), val_targets)
        return probe, {"val_loss": loss, "val_accuracy": accuracy}

    # -- saving and loading ------------------------------------------------------------
    def _save_state(self) -> dict:
        """Task-specific JSON-native state to save beside the settings (none by default)."""
        return {}

    def save_pretrained(self, folder: str | Path, metadata: dict | None = None) -> Path:
        """JSON + safetensors (kilobytes: theta and omega, never the source); reload with
        `from_pretrained`. The effective settings, the seed and the fit history are kept."""
        from xmodal.persistence import save_reprogrammer

        if not hasattr(self, "reprogrammer_"):
            if len(getattr(self, "classes_", ())) == 1:  # sktime fits a single-class y without calling _fit
                raise PersistenceError("nothing to save: the training labels held a single class, "
                                       "so nothing was trained")
            raise PersistenceError(f"this {type(self).__name__} is not fitted; call fit before save_pretrained")
        info = {"estimator": type(self).__name__, "task": self.task, "preset": self.preset or DEFAULT_PRESET,
                "settings": self.settings_, "seed": self.seed_,
                "fit": None if self.fit_result_ is None else self.fit_result_.to_dict(), **self._save_state()}
        return save_reprogrammer(self.reprogrammer_, folder, {**info, **(metadata or {})})

    # Settings added after some runs were saved, with the value such a run was made with (not
    # today's preset's: a table run saved before `views` existed drew one image, whatever
    # the blackbox preset draws now).
    _settings_added_later: dict = {}

    @classmethod
    def _saved_settings(cls, metadata: dict) -> dict:
        """Settings of a saved run; runs of xmodal 0.1 kept their constructor parameters as "params"."""
        saved = metadata.get("settings") or metadata.get("params", {})
        known = {k: v for k, v in saved.items() if k in SETTINGS[cls.task]}
        return {**cls._settings_added_later, **known} if metadata.get("settings") else known

    @classmethod
    def from_pretrained(cls, folder: str | Path, weights_path=None, trust_source: bool = False,
                        device: str | None = None):
        """The saved estimator, ready to predict (and to train further: theta stays trainable).
        A run whose source is not a registered name (an hf: name, a model folder) is refused
        unless `trust_source` (xmodal.persistence explains why). device: where to load it,
        auto (the default: cuda when torch sees a GPU), cpu or cuda, whatever device it was
        trained on (the saved tensors are CPU tensors, moved on load)."""
        from xmodal.persistence import load_reprogrammer, read_document

        device = DEVICE.check("auto" if device is None else device)
        where = resolve_device(device)  # cuda without a GPU fails before the save is read
        document = read_document(folder)
        metadata = document.get("metadata", {})
        task = metadata.get("task", "series" if "series" in document["bridge"].get("kind", "") else None)
        if metadata.get("estimator", cls.__name__) != cls.__name__ or (task and task != cls.task):
            raise PersistenceError(f"{folder} holds a {metadata.get('estimator', task)} run, not a {cls.__name__}; "
                                   f"load it with {metadata.get('estimator', 'its own estimator')}.from_pretrained")
        reprogrammer, document = load_reprogrammer(folder, weights_path=weights_path, trust_source=trust_source,
                                                   loader=cls._load_saved_source)
        preset = metadata.get("preset", DEFAULT_PRESET)
        # The device the run was trained on says nothing about this machine: the one asked for here.
        # The source is the one the save is identified by (and was trust-checked), whatever the
        # metadata's settings say: a later fit must not load another model than the one checked.
        saved = {**cls._saved_settings(metadata), "device": device, "source": document["source"]["name"]}
        estimator = cls(preset if preset in preset_names(cls.task) else DEFAULT_PRESET,
                        **{k: v for k, v in saved.items() if v is not None})
        estimator.random_state = metadata.get("seed", estimator.random_state)
        # The settings the run was trained with, as saved: not re-read through today's preset.
        # (Runs of xmodal 0.1 saved only some; the preset fills the rest.)
        complete = set(saved) == set(SETTINGS[cls.task])
        try:
            estimator.settings_ = check_settings(cls.task, saved) if complete else estimator.resolved_settings()
            estimator.fit_result_ = FitResult.from_dict(metadata["fit"]) if metadata.get("fit") else None
        except (XmodalError, TypeError, KeyError, ValueError) as exc:
            raise PersistenceError(f"{folder}: the saved settings or fit record are damaged ({exc}); "
                                   "re-run the fit") from exc
        estimator.seed_ = metadata.get("seed")
        estimator.reprogrammer_ = reprogrammer.to(where)
        estimator.classes_ = np.array(document["classes"])
        estimator._restore(document)
        return estimator

    # How a saved run's source is loaded by its name, after persistence's trust check: any
    # registered source (the sequence estimator loads language models only).
    _load_saved_source = staticmethod(load_source)

    def _restore(self, document: dict) -> None:
        """Task-specific fitted state from a saved document."""

    # -- the probe beside the model ----------------------------------------------------
    def probe_predict_proba(self, X, predicted: np.ndarray | None = None) -> np.ndarray | None:
        """Probabilities of the start state (untrained theta; the probe head, or the
        prepared label map): what the frozen source gives without reprogramming. None
        after loading from disk (only the trained state is saved) or for a random head.
        predicted: this model's own `predict_proba(X)`, returned as is when the model is its
        start state (no trained epoch kept), instead of reading the source a second time."""
        start = getattr(self, "start_state_", None)
        if start is None:
            return None
        model = self.reprogrammer_
        if predicted is not None and all(name in start and torch.equal(value, start[name].to(value.device))
                                         for name, value in model.trainable_state().items()):
            return predicted
        trained = copy.deepcopy(model.trainable_state())
        model.load_state_dict(start, strict=False)
        try:
            return self.predict_proba(X)
        finally:
            model.load_state_dict(trained, strict=False)
