"""Time series -> a frozen speech model (Voice2Series and the pitch recipe) or, with encoding="image",
a frozen image model (TiViT's window image, the recurrence plot or a line chart), as an sktime classifier.

    V2SClassifier().fit(X, y).predict(X)                 # the "best" preset: four sources' probes, clipped
    V2SClassifier("trained-fusion").fit(X, y)            # those, window slices and a trained view
    V2SClassifier("late-fusion").fit(X, y)               # the four sources' probes alone, no training
    V2SClassifier("tones", epochs=30).fit(X, y)          # BC-ResNet alone, 30 epochs of training
    V2SClassifier("v2s", epochs=20).fit(X, y)            # Voice2Series, 20 epochs
    V2SClassifier("late-fusion", encoding="image", source="efficientnet-lite0").fit(X, y)  # TiViT-style probe

X is anything sktime accepts for a univariate, equal-length panel (a 3-D numpy array
(n, 1, length), a nested DataFrame, ...); sktime converts it to numpy3D first.
"""

from __future__ import annotations

import copy
import dataclasses
import time

import numpy as np
import torch
from sktime.classification.base import BaseClassifier

from adapters_modal.base import fused_part_names, load_source
from adapters_modal.fused import FUSED
from xmodal.bridges.series_factory import (
    BRIDGE_SETTINGS,
    fused_series_bridge,
    part_encoding,
    series_bridge,
    source_picture,
    trained_part,
)
from xmodal.bridges.series_image import WINDOWS
from xmodal.data.window_slices import window_slices
from xmodal.devices import resolve_device
from xmodal.errors import PersistenceError, XmodalError
from xmodal.estimators.base import ReprogrammingEstimator, with_settings
from xmodal.maps import build_output_map
from xmodal.reprogrammer import Reprogrammer
from xmodal.settings import SETTINGS
from xmodal.training.loop import in_batches
from xmodal.training.probe import fit_probe
from xmodal.training.source_choice import SourceChoice, choose_sources
from xmodal.training.split import selection_split

# Mappings whose head starts as a probe: of every layer's statistics, or of the class log-probabilities.
PROBE_STARTED = ("layers", "proba")


@with_settings("series", weights_path=None, search=None, search_folds=1, search_backend="local", random_state=None,
               verbose=False)
class V2SClassifier(ReprogrammingEstimator, BaseClassifier):
    """Classify univariate series with a frozen speech model: bridge -> source -> output map.

    Besides the settings: weights_path (an explicit weights file for the source),
    search (None, a grid name "small" / "tiny" of xmodal.training.search, or a list of
    candidate dicts: settings chosen on held-out parts of the training data, the choice in
    `search_result_`), search_folds (1: one held-out quarter; k > 1: stratified k-fold),
    search_backend ("local": GridSearchCV in this process; "ray": one Ray Tune trial per
    candidate, on the cluster RAY_ADDRESS names or an embedded Ray),
    random_state (None draws a seed, kept as `seed_`), verbose (progress bars).

    Examples
    --------
    >>> from sktime.datasets import load_italy_power_demand
    >>> from xmodal.estimators.series import V2SClassifier
    >>> X, y = load_italy_power_demand(split="train", return_X_y=True)
    >>> classifier = V2SClassifier("tones", epochs=2, random_state=0).fit(X, y)
    >>> classifier.predict_proba(X[:4]).shape
    (4, 2)
    """

    _tags = {
        "X_inner_mtype": "numpy3D",
        "y_inner_mtype": "numpy1D",
        "capability:multivariate": False,
        "capability:unequal_length": False,
        "capability:missing_values": False,
        "capability:predict_proba": True,
        "capability:random_state": True,
        "python_dependencies": ["torch", "torchaudio", "soundfile", "safetensors"],
        "authors": "xmodal developers",
        "maintainers": "xmodal developers",
    }

    def __sklearn_tags__(self):
        """scikit-learn's view of this sktime estimator (GridSearchCV in xmodal.training.search
        needs it since scikit-learn 1.6): a classifier, with predict_proba, on 3-D arrays."""
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags(multi_class=True), input_tags=InputTags(two_d_array=False,
                                                                                       three_d_array=True))

    # Settings added after some runs were saved, with the value those runs were fitted with.
    _settings_added_later = {"choose_sources": False, "trained_view": False, "fusion": "one-probe", "slice_copies": 0,
                             "trained_view_weight": 1, "clip_features": False, "picture": WINDOWS}

    def reset(self):
        """sktime's reset (at the start of every fit), keeping what scikit-learn's GridSearchCV
        set on a candidate before calling fit and deletes after it (its callback context)."""
        kept = {name: value for name, value in self.__dict__.items() if name == "_parent_callback_ctx"}
        super().reset()
        self.__dict__.update(kept)
        return self

    def _check_combination(self, s: dict) -> None:
        """Refuse, before any work, settings that cannot go together."""
        if self.search is not None and s["encoding"] != "waveform":
            raise XmodalError(f"the search grids place the series as waveform samples (copies, stretch, mask), which "
                              f"encoding {s['encoding']!r} does not take: search with the v2s preset, "
                              "or fit fixed settings")
        if s["trained_view"] and (s["mapping"] != "layers" or s["epochs"] < 1 or s["query_budget"] is not None):
            raise XmodalError("trained_view trains the bridge with backpropagation and reads both readings under a "
                              "probe of every layer's statistics: it needs mapping='layers', epochs >= 1 and no "
                              f"query_budget (got {s['mapping']!r}, {s['epochs']}, {s['query_budget']}); or set "
                              "trained_view false (CLI: --no-trained-view; --preset late-fusion: probes, no training)")
        if s["trained_view"] and fused_part_names(s["source"]) is not None and (
                s["fusion"] != "probe-per-source" or s["choose_sources"]):
            raise XmodalError("a fused source's trained view is one more member of its probe per source: set "
                              f"fusion='probe-per-source' and choose_sources false (got {s['fusion']!r}, "
                              f"{s['choose_sources']}), or trained_view false")
        if s["slice_copies"] and fused_part_names(s["source"]) is not None and (
                s["fusion"] != "probe-per-source" or s["choose_sources"] or (s["epochs"] and not s["trained_view"])):
            raise XmodalError("slice_copies adds a member per source to a fused source's probe per source, fitted "
                              "without training the fused bridge: it needs fusion='probe-per-source', choose_sources "
                              f"false, and epochs 0 or trained_view (got {s['fusion']!r}, {s['choose_sources']}, "
                              f"{s['epochs']}, {s['trained_view']}); or set slice_copies 0 (CLI: --slice-copies 0)")
        if fused_part_names(s["source"]) is not None and s["mapping"] != "layers":
            raise XmodalError(f"the fused source {s['source']!r} has no classes of its own, only its sources' layer "
                              f"statistics: set mapping='layers' (CLI: --mapping layers), not {s['mapping']!r}")

    def _build(self, s: dict) -> Reprogrammer:
        source = load_source(s["source"], self.weights_path)
        settings = {k: s[k] for k in BRIDGE_SETTINGS}
        if source.input_spec.modality == FUSED:
            bridge = fused_series_bridge([part.input_spec for part in source.parts], settings, self.seed_,
                                         [part.name for part in source.parts])
        else:
            bridge = series_bridge(source.input_spec, settings, self.seed_, source.name)
        if s["mapping"] == "layers":
            head = self._linear_head(source.layer_width())
            return Reprogrammer(bridge, source, head, list(self.classes_), reads="layers")
        if s["mapping"] == "proba":
            head = self._linear_head(source.num_classes)
            return Reprogrammer(bridge, source, head, list(self.classes_), reads="log_probs")
        output_map = build_output_map(s["mapping"], source.num_classes, len(self.classes_), s["labels_per_class"],
                                      seed=self.seed_, remap_every=s["remap_every"], laplace=s["laplace"])
        return Reprogrammer(bridge, source, output_map, list(self.classes_))

    def _fit(self, X, y):
        loaded = self.__dict__.pop("_loaded__state", None)
        if loaded is not None:  # from_pretrained: install the saved state, train nothing
            self.__dict__.update(loaded)
            return self
        self._begin_fit(y)
        self._check_black_box()
        self._check_combination(self.settings_)
        if self.search is not None:
            from xmodal.training.search import resolve_grid, search

            grid = resolve_grid(self.search, tuple(SETTINGS["series"]))
            winner, self.search_result_ = search(self, X, y, grid, self.seed_, self.search_folds, self.search_backend)
            for name in ("settings_", "reprogrammer_", "fit_result_", "start_state_"):
                setattr(self, name, getattr(winner, name))
            return self
        self.reprogrammer_ = self._build(self.settings_)
        x, targets, start_features = torch.tensor(X, dtype=torch.float32), self._targets(y), None
        s = self.settings_
        if s["choose_sources"] and self.reprogrammer_.source.input_spec.modality == FUSED:  # else nothing to choose
            rows, _ = selection_split(targets.numpy(), s["val_fraction"], s["epochs"], self.seed_)
            self.reprogrammer_, self.source_choice_, start_features = choose_sources(
                self.reprogrammer_.to(resolve_device(s["device"])), x, targets, rows, self.seed_, s["batch_size"],
                bool(self.verbose))
            self.settings_ = self._settings_of_choice(self.reprogrammer_.source)
        if self.settings_["trained_view"]:
            fused = self.reprogrammer_.source.input_spec.modality == FUSED
            self._fit_trained_member(x, targets) if fused else self._fit_trained_view(x, targets)
            return self
        probe = self.settings_["mapping"] in PROBE_STARTED
        # A single source is read as it is: no member per source to fit on slices.
        slices = s["slice_copies"] if self.reprogrammer_.source.input_spec.modality == FUSED else 0
        if slices and start_features is None:  # the slices' members are fitted beside this reading
            start_features = self._read_sources(x, "probes: reading the sources")
        # A probe-started head is a fitted model: an epoch must beat it on validation log-loss,
        # the criterion its C was chosen by.
        self._train(self.reprogrammer_, x, targets, head_init="probe" if probe else "random",
                    select_on="loss" if probe else "accuracy", start_features=start_features,
                    probe_blocks=self._probe_blocks())
        if slices:
            self._add_slice_members(x, targets, start_features, self.fit_result_.probe_c)
        return self

    def _probe_blocks(self, trained_member: bool = True) -> tuple[tuple[int, int], ...] | None:
        """The column ranges probed alone under fusion probe-per-source: each part's reading, and (unless
        not `trained_member`) a part read through two views (a trained view beside its start) once more, as
        both readings together, listed trained_view_weight times (members it counts as)."""
        model = self.reprogrammer_
        if self.settings_["fusion"] != "probe-per-source" or model.source.input_spec.modality != FUSED:
            return None
        blocks, start = [], 0
        for part, views in zip(model.source.parts, model.bridge.part_views()):
            width = part.layer_width()
            blocks.append((start, start + width))
            if views > 1 and trained_member:
                blocks += [(start, start + views * width)] * self.settings_["trained_view_weight"]
            start += views * width
        return tuple(blocks)

    def _fit_trained_member(self, x: torch.Tensor, targets: torch.Tensor) -> None:
        """A probe per source with one more member: the trained view of the first audio source (bridges'
        `trained_part`), fitted first as the trained-view preset fits it, on that source alone (its theta
        trained from its probe start, the best epoch on validation log-loss kept, then read beside its
        start). Then every source is read once (that one through both views) and each member's probe is
        fitted on every training sample; the members' logits are averaged (docs/experiments.md 0.20, 0.22).
        The start state is the same without the trained member: the sources' probes alone (and, with
        slice_copies, their slices' members: `_add_slice_members`). The fit record's
        validation scores and history are the trained member's alone (against its own probe start, the
        criterion it was chosen by); its Cs, rows fitted and seconds are the whole fit's."""
        model, s, began = self.reprogrammer_, self.settings_, time.perf_counter()
        index = trained_part([part.input_spec for part in model.source.parts], s)
        part = model.source.parts[index]
        self._fit_trained_view(x, targets, model=Reprogrammer(
            model.bridge.parts[index], part, self._linear_head(part.layer_width()),
            list(self.classes_), reads="layers"))
        member = self.fit_result_
        width = max(end for _, end in self._probe_blocks())  # every reading, BC-ResNet's views included
        model.output_map = self._linear_head(width)
        features = self._read_sources(x, "probes: reading the sources")
        # The sources' probes alone (the start), then with the trained view: one fit when no view was kept.
        members = dict.fromkeys([self._probe_blocks(trained_member=False), self._probe_blocks()])
        fits = [self._train(model, x, targets, head_init="probe", select_on="loss", epochs=0,
                            start_features=features, probe_blocks=blocks) for blocks in members]
        self.start_state_ = fits[0].start_state
        probed = "every source" + ("" if len(fits) == 1 else " and of the trained view")
        self.fit_result_ = dataclasses.replace(
            member, probe_c=fits[-1].probe_c, n_fit=fits[-1].n_fit, start_state=self.start_state_,
            seconds=time.perf_counter() - began,
            selection=f"{member.selection}; the probes of {probed}, fitted on all training samples, averaged")
        if s["slice_copies"]:
            self._add_slice_members(x, targets, features, fits[0].probe_c)

    def _read_sources(self, x: torch.Tensor, progress: str) -> torch.Tensor:
        """The fused source's reading of x, every part through its bridge's views, on the settings' device."""
        model = self.reprogrammer_.to(resolve_device(self.settings_["device"])).eval()
        with torch.no_grad():
            return in_batches(model.source_logits, x.to(model.device), self.settings_["batch_size"],
                              progress=progress if self.verbose else None)

    def _add_slice_members(self, x: torch.Tensor, targets: torch.Tensor, features: torch.Tensor,
                           cs: tuple[float, ...]) -> None:
        """One more member per source: each source's probe fitted again on the series and `slice_copies`
        window slices of each (xmodal.data.window_slices; `cs`, the Cs its probe of the series chose, kept),
        averaged with the members fitted so far, in the model and in its start state (docs/experiments.md
        0.23). `features`: the sources' reading of x."""
        model, copies, began = self.reprogrammer_, self.settings_["slice_copies"], time.perf_counter()
        sliced = self._read_sources(window_slices(x, copies, self.seed_), "probes: reading the window slices")
        blocks = self._probe_blocks(trained_member=False)
        probe = fit_probe(torch.cat([features, sliced.to(features)]), targets.repeat(copies + 1), self.seed_, c=cs,
                          blocks=blocks)

        def with_slices(state: dict, members: int) -> dict:
            model.load_state_dict(state, strict=False)
            model.output_map.blend_probe(probe.coef, probe.intercept, probe.mean, probe.scale,
                                         share=len(blocks) / (members + len(blocks)), bounds=probe.bounds)
            return copy.deepcopy(model.trainable_state())

        fitted = with_slices(copy.deepcopy(model.trainable_state()), len(self._probe_blocks()))
        self.start_state_ = with_slices(self.start_state_, len(blocks))
        model.load_state_dict(fitted, strict=False)
        self.fit_result_ = dataclasses.replace(
            self.fit_result_, start_state=self.start_state_,
            seconds=self.fit_result_.seconds + time.perf_counter() - began,
            selection=f"{self.fit_result_.selection}; with each source's probe refitted on {copies} window slices "
                      "of every training series")

    def _settings_of_choice(self, source) -> dict:
        """The settings of the model the choice kept, as if it had been fitted directly: its source
        (an image source alone draws the picture named for it; without an image source, none), no
        choice left to make."""
        encoding = part_encoding(source.input_spec, self.settings_["encoding"])
        parts = getattr(source, "parts", [source])
        picture = self.settings_["picture"]
        if all(part.input_spec.modality != "image" for part in parts):
            picture = WINDOWS
        elif len(parts) == 1:
            picture = source_picture(picture, source.name)
        return {**self.settings_, "source": source.name, "encoding": encoding, "picture": picture,
                "choose_sources": False}

    def _predict_proba(self, X) -> np.ndarray:
        x = torch.tensor(X, dtype=torch.float32)  # batches of the training size: four sources at 256 took 7.5 GB
        return self.reprogrammer_.predict_proba(x, batch_size=self.settings_["batch_size"]).numpy().astype(np.float64)

    def _predict(self, X) -> np.ndarray:
        return self.classes_[self._predict_proba(X).argmax(axis=1)]

    def _save_state(self) -> dict:
        kept = {"search": getattr(self, "search_result_", None), "source_choice": getattr(self, "source_choice_", None)}
        return {name: result.to_dict() for name, result in kept.items() if result is not None}

    def _restore(self, document: dict) -> None:
        # sktime's own fit records the classes and input metadata its predict checks rely
        # on; fed one placeholder series per class, `_fit` installs the saved state instead
        # of training. ("__" in the name survives sktime's reset.)
        self._loaded__state = {name: getattr(self, name)
                               for name in ("settings_", "seed_", "fit_result_", "reprogrammer_")}
        choice = document["metadata"].get("source_choice")
        if isinstance(choice, dict):  # a run that chose its sources: the choice, kept when it is saved again
            try:
                self._loaded__state["source_choice_"] = SourceChoice(**choice)
            except TypeError as exc:
                raise PersistenceError(f"the saved source choice is damaged ({exc}); re-run the fit") from exc
        classes = self.classes_
        length = self.reprogrammer_.bridge.series_length
        self.fit(np.zeros((len(classes), 1, length)), classes)

    @classmethod
    def get_test_params(cls, parameter_set="default"):
        """Small, fast settings for sktime's estimator checks (real model, few epochs)."""
        return [
            {"preset": "tones", "epochs": 2, "patience": 2, "random_state": 0},
            {"preset": "v2s", "epochs": 2, "patience": 2, "random_state": 1, "mapping": "linear", "copies": 2,
             "masked": False},
            {"preset": "v2s", "epochs": 2, "patience": 2, "random_state": 2, "mapping": "blm"},
        ]
