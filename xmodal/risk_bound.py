"""Voice2Series' Theorem 1, measured.

    target risk <= source risk + 2 sqrt(K) * W1( mu(z_S(x~_T)), mu(z_S(x_S)) )

z_S are the frozen source model's logits, x~_T the reprogrammed target
samples, x_S source-domain samples, and K the number of source classes (the
dimension of z_S). Both risks use the theorem's loss ||f(x) - y||_2 between
a probability vector and the one-hot label: the source risk with the source
model's own softmax on labelled source samples, the target risk with the
reprogrammer's target-class probabilities.

"Before" is the reprogrammer with theta = 0 (no perturbation) and its
initial output map; "after" is the trained one. A frequency or random
assignment is fixed before training, so the trained one is the initial one;
an iteratively re-mapped map (ilm, blm) is rebuilt from the untrained model's
responses to the training data; a linear head is re-drawn from its seed.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch

from adapters_modal.base import SourceModel
from xmodal.alignment import Distance, wasserstein1
from xmodal.devices import module_device
from xmodal.errors import DataError
from xmodal.maps import output_map_from_settings
from xmodal.reprogrammer import Reprogrammer

REPRESENTATIONS = ("logits", "features")


def _batched(function, inputs, batch_size: int, device: torch.device | None = None) -> np.ndarray:
    """function over batches of inputs (each moved to `device` when it is a tensor), as float64 numpy."""
    def batch(i):
        part = inputs[i : i + batch_size]
        return part.to(device) if device is not None and isinstance(part, torch.Tensor) else part

    with torch.no_grad():
        parts = [function(batch(i)).cpu() for i in range(0, len(inputs), batch_size)]
    return torch.cat(parts).double().numpy()


def _representation(source: SourceModel, kind: str):
    if kind not in REPRESENTATIONS:
        raise DataError(f"unknown representation {kind!r}; choose logits or features")
    return source.logits if kind == "logits" else source.features


def source_representations(source: SourceModel, inputs, kind: str = "logits", batch_size: int = 64) -> np.ndarray:
    """z_S(x) (logits) or the penultimate features of source-model inputs; a
    list of sentences is read through a language model's own tokenizer."""
    represent = _representation(source, kind)
    if isinstance(inputs, list):
        return _batched(lambda batch: represent(source.text_inputs(batch)), inputs, batch_size)
    return _batched(represent, inputs, batch_size, module_device(source))


def reprogrammed_representations(model: Reprogrammer, x: torch.Tensor, kind: str = "logits",
                                 batch_size: int = 64) -> np.ndarray:
    """The source model's representation of reprogrammed target samples, z_S(x~_T) (of a trained view,
    the trained bridge's: its default view)."""
    if model.probe_views > 1:  # separate inputs per sample; a trained view's two are readings of one
        raise DataError(f"this run draws each sample as {model.queries_per_sample} source inputs (per-feature "
                          "views), which have no single representation to align; align a run of views='one'")
    represent = _representation(model.source, kind)
    model.eval()
    return _batched(lambda batch: represent(model.bridge(batch)), x, batch_size, model.device)


def l2_risk(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean ||p(x) - onehot(y)||_2, the theorem's loss."""
    onehot = np.eye(probabilities.shape[1])[labels]
    return float(np.linalg.norm(probabilities - onehot, axis=1).mean())


def source_risk(source: SourceModel, inputs, labels: np.ndarray) -> float:
    """The source model's own risk on labelled source samples (class indices)."""
    logits = source_representations(source, inputs, "logits")
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    return l2_risk(probabilities / probabilities.sum(axis=1, keepdims=True), labels)


def untrained(model: Reprogrammer, seed: int = 0, fit_data: tuple | None = None) -> Reprogrammer:
    """The reprogrammer before training, with the initial output map and
    theta = 0 (V2S: no perturbation), or, for a bridge whose zero is no
    starting point (R2DL's Theta would erase every token), its own seeded
    initialisation (`bridge.initialise(seed)`)."""
    bridge = copy.deepcopy(model.bridge, memo={id(model.source): model.source})  # never copy the source
    with torch.no_grad():
        if hasattr(bridge, "initialise"):
            bridge.initialise(seed)
        else:
            for parameter in bridge.parameters():
                parameter.zero_()
    output_map = output_map_from_settings(model.output_map.settings(), seed=seed).to(model.device)
    before = Reprogrammer(bridge, model.source, output_map, model.classes, reads=model.reads).eval()
    before.compute_dtype = model.compute_dtype  # the source read as the trained model reads it
    if output_map.remap_every > 0:  # ilm / blm: the trained map is the last re-mapping, not the first
        if fit_data is None:
            raise DataError("an iteratively re-mapped output map (ilm, blm) needs the training data to rebuild "
                            "its initial mapping; pass fit_data=(x_train, class indices)")
        x_fit, y_fit = fit_data
        device = model.device
        with torch.no_grad():
            outputs = torch.cat([before.source_logits(x_fit[i : i + 64].to(device)) for i in range(0, len(x_fit), 64)])
        output_map.prepare(outputs, torch.as_tensor(y_fit, device=device))
    else:  # frequency / random: the assignment was fixed before training, so the trained one is the initial one
        buffers = dict(model.output_map.named_buffers())
        output_map.load_state_dict({k: v for k, v in model.output_map.state_dict().items() if k in buffers},
                                   strict=False)
    return before


@dataclass
class Stage:
    """The theorem's terms for one reprogrammer (before or after training)."""

    w1: Distance
    target_risk: float
    source_risk: float | None
    num_source_classes: int

    @property
    def slack(self) -> float:
        return 2 * math.sqrt(self.num_source_classes) * self.w1.value

    @property
    def bound(self) -> float | None:
        return None if self.source_risk is None else self.source_risk + self.slack

    @property
    def holds(self) -> bool | None:
        return None if self.bound is None else self.target_risk <= self.bound


def measure_stage(model: Reprogrammer, x: torch.Tensor, labels: np.ndarray, source_points: np.ndarray,
                  source_risk: float | None, kind: str, method: str, **distance_options) -> tuple[Stage, np.ndarray]:
    """(the stage's terms, the target points) for target samples x with class indices `labels`."""
    target_points = reprogrammed_representations(model, x, kind)
    distance = wasserstein1(source_points, target_points, method, **distance_options)
    risk = l2_risk(model.predict_proba(x).numpy(), labels)
    return Stage(distance, risk, source_risk, model.source.num_classes), target_points


@dataclass
class AlignmentMeasurement:
    """Both stages, the source risk, and the point clouds (for plots)."""

    before: Stage
    after: Stage
    source_risk: float | None
    representation: str
    source_points: np.ndarray
    before_points: np.ndarray
    after_points: np.ndarray

    def to_dict(self) -> dict:
        """The machine-readable report (`xmodal align --json`)."""
        theorem = self.representation == "logits"  # 2 sqrt(K) W1 is the theorem's term for logits only
        return {
            "method": self.after.w1.method,
            "representation": self.representation,
            "num_source_classes": self.after.num_source_classes,
            "n_source": self.after.w1.n_source,
            "n_target": self.after.w1.n_target,
            "w1_before": self.before.w1.value,
            "w1_after": self.after.w1.value,
            "w1_before_interval": self.before.w1.interval,
            "w1_after_interval": self.after.w1.interval,
            "distance_settings": self.after.w1.settings,
            "source_risk": self.source_risk,
            "target_risk_before": self.before.target_risk,
            "target_risk": self.after.target_risk,
            "slack_before": self.before.slack if theorem else None,
            "slack_after": self.after.slack if theorem else None,
            "bound_before": self.before.bound,
            "bound": self.after.bound,
            "bound_holds_before": self.before.holds,
            "bound_holds": self.after.holds,
        }


def measure_alignment(model: Reprogrammer, x: torch.Tensor, labels: np.ndarray, source_points: np.ndarray,
                      source_risk: float | None, representation: str = "logits", method: str = "auto",
                      seed: int = 0, fit_data: tuple | None = None, **distance_options) -> AlignmentMeasurement:
    """The theorem's terms before (theta = 0, initial map) and after training.

    `labels` are target class indices into `model.classes`; `source_points`
    are the source samples' representations of the same kind. The bound is
    stated for logits: with features only the distances are comparable."""
    risk_for_bound = source_risk if representation == "logits" else None
    stages, clouds = [], []
    for stage_model in (untrained(model, seed, fit_data), model):
        stage, points = measure_stage(stage_model, x, labels, source_points, risk_for_bound, representation,
                                      method, seed=seed, **distance_options)
        stages.append(stage)
        clouds.append(points)
    return AlignmentMeasurement(stages[0], stages[1], source_risk, representation, source_points, *clouds)
