"""sktime classifiers wrapping bridge + frozen source + output map + training.

    V2SClassifier(source="bc-resnet-gsc35").fit(X, y).predict(X)

X is anything sktime accepts for a univariate, equal-length panel (a 3-D
numpy array (n, 1, length), a nested DataFrame, ...); sktime converts it
to numpy3D before `_fit` / `_predict` see it.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from sktime.classification.base import BaseClassifier

from adapters_modal.base import load_source
from xmodal.bridges.series_to_audio import SeriesToAudio, SeriesToAudioConfig
from xmodal.errors import PersistenceError, XmodalError
from xmodal.maps import LinearHead, build_output_map
from xmodal.persistence import load_reprogrammer, save_reprogrammer
from xmodal.reprogrammer import Reprogrammer
from xmodal.training.loop import FitResult, TrainConfig, fit_reprogrammer, source_outputs, validation_split


class V2SClassifier(BaseClassifier):
    """Voice2Series: classify univariate series with a frozen speech-command model.

    Parameters
    ----------
    source : registered source model name (see `xmodal sources`).
    weights_path : explicit weights file; default resolution otherwise (XMODAL_WEIGHTS_DIR,
        cache, download).
    mapping : "frequency" (greedy many-to-one from the frozen model's responses),
        "random" (seeded many-to-one), "ilm" (the frequency assignment redone during
        training, ILM-VP), "blm" / "blm+" (Bayesian-guided probabilistic matrix, top-1
        counts / top-3 probability sums), "linear" (trainable head on the source logits) or
        "layers" (linear head on pooled statistics of every source layer, started as a
        logistic-regression probe that training must beat on validation log-loss; when the
        probe is kept it is refitted on all training series; bc-resnet-gsc35 only).
    labels_per_class : source classes per target class for the label mappings
        (default floor(K_S / K_T)).
    remap_every : epochs between re-estimations of the "ilm", "blm" and "blm+" maps.
    laplace : Laplace smoothing lambda of "blm" / "blm+".
    encoding : "waveform" (V2S: the series as samples), "pitch" (the series as the pitch of a
        tone over the whole window) or "pitch+slope" (plus a tone for its first difference);
        the tones need masked=False. See SeriesToAudioConfig.
    standardize, upsample_factor, target_duration, interpolation, copies, offset,
    masked, tanh_bound, delta_dropout : bridge settings, see SeriesToAudioConfig.
    epochs, lr, batch_size, val_fraction, patience : training, see TrainConfig.
    query_budget : None trains white-box (backpropagation); a number trains black-box
        (zeroth-order, the source seen only as probabilities) within that many queries,
        see xmodal.blackbox.
    search : None (use the settings above), a grid name ("small", "tiny") or a list of
        candidate dicts: choose mapping, copies, upsampling, mask, lr and epochs on a
        held-out part of the training data, then refit the winner on all of it; the
        grid, the scores and the choice end up in `search_result_` (see xmodal.training.search).
    search_folds : 1 scores candidates on one stratified held-out quarter of the
        training data; k > 1 uses stratified k-fold instead.
    random_state : seed for the split, the map and the training; None draws one.
    verbose : show a progress bar during fit.

    Examples
    --------
    >>> from sktime.datasets import load_italy_power_demand
    >>> from xmodal.estimators.series import V2SClassifier
    >>> X, y = load_italy_power_demand(split="train", return_X_y=True)
    >>> classifier = V2SClassifier(epochs=3, random_state=0).fit(X, y)
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

    def __init__(
        self,
        source="bc-resnet-gsc35",
        weights_path=None,
        mapping="frequency",
        labels_per_class=None,
        remap_every=1,
        laplace=1.0,
        encoding="waveform",
        standardize=True,
        upsample_factor=1,
        target_duration=None,
        interpolation="linear",
        copies=1,
        offset="start",
        masked=True,
        tanh_bound=True,
        delta_dropout=0.0,
        epochs=100,
        lr=0.05,
        batch_size=32,
        val_fraction=0.2,
        patience=25,
        random_state=None,
        verbose=False,
        query_budget=None,
        search=None,
        search_folds=1,
    ):
        self.source = source
        self.weights_path = weights_path
        self.mapping = mapping
        self.labels_per_class = labels_per_class
        self.remap_every = remap_every
        self.laplace = laplace
        self.encoding = encoding
        self.standardize = standardize
        self.upsample_factor = upsample_factor
        self.target_duration = target_duration
        self.interpolation = interpolation
        self.copies = copies
        self.offset = offset
        self.masked = masked
        self.tanh_bound = tanh_bound
        self.delta_dropout = delta_dropout
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.patience = patience
        self.random_state = random_state
        self.verbose = verbose
        self.query_budget = query_budget
        self.search = search
        self.search_folds = search_folds
        super().__init__()

    def _seed(self) -> int:
        if self.random_state is None:
            return int(np.random.default_rng().integers(2**31 - 1))
        return int(self.random_state)

    def _build(self, seed: int, p: dict) -> Reprogrammer:
        """p: the effective hyper-parameters (get_params with the search's choice applied)."""
        source_model = load_source(self.source, self.weights_path)
        spec = source_model.input_spec
        bridge = SeriesToAudio(
            SeriesToAudioConfig(
                num_samples=spec.num_samples,
                sample_rate=spec.sample_rate,
                **{name: p[name] for name in ("encoding", "standardize", "upsample_factor", "target_duration", "interpolation",
                                              "copies", "offset", "masked", "tanh_bound", "delta_dropout")},
            ),
            seed=seed,
        )
        if p["mapping"] == "layers":
            with torch.no_grad():
                width = source_model.layer_features(torch.zeros(1, spec.num_samples)).shape[1]
            head = LinearHead(width, len(self.classes_), seed=seed)
            return Reprogrammer(bridge, source_model, head, list(self.classes_), reads="layers")
        output_map = build_output_map(
            p["mapping"], source_model.num_classes, len(self.classes_), p["labels_per_class"], seed=seed,
            remap_every=p["remap_every"], laplace=p["laplace"],
        )
        return Reprogrammer(bridge, source_model, output_map, list(self.classes_))

    def _fit(self, X, y):
        pretrained = self.__dict__.pop("_loaded__state", None)
        if pretrained is not None:  # from_pretrained: install the saved state, train nothing
            self.reprogrammer_, self.fit_result_ = pretrained
            return self
        self._check_combination()
        seed = self._seed()
        p = self.get_params(deep=False)
        if self.search is not None:
            from xmodal.training.search import resolve_grid, select_hyperparameters

            self.search_result_ = select_hyperparameters(self, X, y, resolve_grid(self.search), seed,
                                                         folds=self.search_folds, progress=self.verbose)
            p.update(self.search_result_.best)
        self.reprogrammer_ = self._build(seed, p)
        targets = torch.as_tensor(np.searchsorted(self.classes_, y), dtype=torch.long)
        settings = dict(epochs=p["epochs"], lr=p["lr"], batch_size=self.batch_size, val_fraction=self.val_fraction,
                        patience=self.patience, seed=seed, progress=self.verbose)
        x = torch.tensor(X, dtype=torch.float32)
        if p["mapping"] == "layers":
            self.fit_result_ = self._fit_from_probe(x, targets, TrainConfig(**settings), seed)
        elif self.query_budget is None:
            self.fit_result_ = fit_reprogrammer(self.reprogrammer_, x, targets, TrainConfig(**settings))
        else:
            from xmodal.blackbox import BlackBoxConfig, fit_through_hidden_gradients

            config = BlackBoxConfig(**settings, query_budget=self.query_budget)
            self.fit_result_ = fit_through_hidden_gradients(self.reprogrammer_, x, targets, config)
        return self

    def _check_combination(self) -> None:
        """Refuse, before any work, settings that cannot go together."""
        if self.mapping == "layers" and self.query_budget is not None:
            raise XmodalError("mapping 'layers' reads the source's inner layers, which black-box training "
                              "never sees: use a label mapping or mapping 'linear' with a query_budget")
        if self.search is not None and self.encoding != "waveform":
            raise XmodalError(f"the search grids place the series as waveform samples (copies, stretch, mask), "
                              f"which encoding={self.encoding!r} does not take: fit it with fixed settings, "
                              "or search with encoding='waveform'")

    def _fit_from_probe(self, x: torch.Tensor, targets: torch.Tensor, config: TrainConfig, seed: int) -> FitResult:
        """mapping "layers": LP-FT, as R2DL. The head starts as a logistic-regression probe
        of the untrained bridge's layer statistics, its C chosen by k-fold log-loss on the
        fit part (LinearHead.probe_c_by_cv); delta and head then train, and an epoch is
        kept only where it beats that start on validation log-loss. A kept start is refitted
        on every training series with the same C: a UCR set of 30 series cannot spare its
        validation fifth. Without a validation part (a class with one series) nothing could
        show that training helps, so the probe on every series is the model."""
        start = time.perf_counter()
        model, head = self.reprogrammer_, self.reprogrammer_.output_map
        fit_idx, val_idx = validation_split(targets.numpy(), config.val_fraction, seed)
        # One pass over every series: the start state is also what a kept start is refitted on.
        features = source_outputs(model, x)
        self.probe_c_ = head.probe_c_by_cv(features[fit_idx], targets[fit_idx], seed)
        head.fit_probe(features[fit_idx], targets[fit_idx], seed, self.probe_c_)
        if len(val_idx) == 0:
            return FitResult(best_epoch=0, epochs_run=0, val_accuracy=None, val_loss=None,
                             selection="none: no validation part (a class has a single series), probe kept",
                             n_fit=len(x), n_val=0, seconds=time.perf_counter() - start)
        config = replace(config, select_start=True, select_on="loss")
        result = fit_reprogrammer(model, x[fit_idx], targets[fit_idx], config, (x[val_idx], targets[val_idx]))
        if result.best_epoch == 0:  # the validation scores in `result` are the split probe's
            head.fit_probe(features, targets, seed, self.probe_c_)
            result = replace(result, n_fit=len(x), selection="validation: probe start kept, refitted on all series")
        return replace(result, seconds=time.perf_counter() - start)

    def _predict_proba(self, X) -> np.ndarray:
        return self.reprogrammer_.predict_proba(torch.tensor(X, dtype=torch.float32)).numpy().astype(np.float64)

    def _predict(self, X) -> np.ndarray:
        return self.classes_[self._predict_proba(X).argmax(axis=1)]

    def save_pretrained(self, folder: str | Path, metadata: dict | None = None) -> Path:
        """JSON + safetensors (kilobytes); reload with `V2SClassifier.from_pretrained`."""
        self.check_is_fitted()
        if not hasattr(self, "reprogrammer_"):  # sktime fits a single-class y without calling _fit
            raise PersistenceError("nothing to save: the training labels held a single class, so nothing was trained")
        params = {k: (v if v is None or isinstance(v, (bool, int, float, str)) else str(v))
                  for k, v in self.get_params(deep=False).items()}
        info = {"estimator": type(self).__name__, "params": params,
                "fit": {k: v for k, v in self.fit_result_.to_dict().items() if k != "history"}}
        if hasattr(self, "search_result_"):  # the settings actually trained, and how they were chosen
            info["search"] = self.search_result_.to_dict()
        return save_reprogrammer(self.reprogrammer_, folder, {**info, **(metadata or {})})

    @classmethod
    def from_pretrained(cls, folder: str | Path, weights_path=None) -> "V2SClassifier":
        reprogrammer, document = load_reprogrammer(folder, weights_path=weights_path)
        metadata = document.get("metadata", {})
        known = cls.get_param_names()
        estimator = cls(**{k: v for k, v in metadata.get("params", {}).items() if k in known})
        fit_summary = metadata.get("fit")
        # sktime's own fit records the classes and input metadata its predict checks
        # rely on; fed one placeholder series per class, `_fit` installs the saved
        # state instead of training. ("__" in the name survives sktime's reset.)
        if fit_summary:  # black-box fits record more (queries_used, ...) than FitResult holds
            fit_summary = {k: v for k, v in fit_summary.items() if k in FitResult.__dataclass_fields__}
        estimator._loaded__state = (reprogrammer, FitResult(**fit_summary) if fit_summary else None)
        classes = np.array(document["classes"])
        estimator.fit(np.zeros((len(classes), 1, reprogrammer.bridge.config.series_length)), classes)
        return estimator

    @classmethod
    def get_test_params(cls, parameter_set="default"):
        """Small, fast settings for sktime's estimator checks (real model, few epochs)."""
        return [
            {"epochs": 2, "patience": 2, "random_state": 0},
            {"epochs": 2, "patience": 2, "random_state": 1, "mapping": "linear", "copies": 2, "masked": False},
            {"epochs": 2, "patience": 2, "random_state": 2, "mapping": "blm", "remap_every": 1},
            {"epochs": 2, "patience": 2, "random_state": 3, "mapping": "layers", "encoding": "pitch+slope",
             "masked": False},
        ]
