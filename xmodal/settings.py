"""The settings of each task, defined once: name, type, allowed values, help.

Torch-free, so the CLI builds its parsers (and `xmodal presets` its listing) without
loading a model. The values themselves live in xmodal.presets; an estimator or a CLI
call gives only the settings it changes, and `resolve_settings` checks the result.

    SETTINGS["series"]["epochs"].check(-1)   # DataError: 'epochs' must be at least 0
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from xmodal.errors import DataError

TASKS = ("series", "sequence", "table")
# The table bridge's drawings (xmodal.bridges.table_to_image): every feature on one image, or one image each.
TABLE_VIEWS = ("one", "per-feature")
# The series image bridge's pictures (xmodal.bridges.series_image): TiViT's window rows, the recurrence plot,
# or the series drawn as a line chart.
SERIES_PICTURES = ("windows", "recurrence", "line")


def named_pictures(picture: str) -> list[tuple[str, str]]:
    """A picture written per source, NAME=PICTURE joined by +, as its (NAME, PICTURE) pairs, unchecked (PICTURE
    '' for a part without '='); none for one of SERIES_PICTURES, which every image source sees."""
    if picture in SERIES_PICTURES:
        return []
    return [(name, own) for name, _, own in (pair.partition("=") for pair in picture.split("+"))]


@dataclass(frozen=True)
class Setting:
    """One setting. kind: int, float, str or bool; choices: the allowed values of a str
    setting; nullable: None is a value ("automatic", "off"); minimum: the smallest number
    allowed; help: one line for the docstring, the CLI help and `xmodal presets`."""

    name: str
    kind: type
    help: str
    choices: tuple | None = None
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    also_index: bool = False  # a text setting that also takes a whole number (a sample index)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def check(self, value):
        """The value, converted to `kind` (an int for a float setting, "3" for an int from
        JSON is refused), or a DataError naming the setting and what it takes."""
        if value is None:
            if self.nullable:
                return None
            raise DataError(f"{self.name!r} needs a value ({self.describe()}); None is not one")
        if self.kind is bool:
            if not isinstance(value, (bool, np.bool_)):
                raise DataError(f"{self.name!r} must be true or false, got {value!r}")
            return bool(value)
        if self.kind in (int, float):
            wanted = numbers.Integral if self.kind is int else numbers.Real
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, wanted) or not math.isfinite(value):
                raise DataError(f"{self.name!r} must be {'a whole number' if self.kind is int else 'a finite number'}, "
                                f"got {value!r}")
            value = self.kind(value)  # numpy scalars (a GridSearchCV grid from np.arange) become plain numbers
            if self.minimum is not None and value < self.minimum:
                raise DataError(f"{self.name!r} must be at least {self.minimum:g}, got {value:g}")
            if self.maximum is not None and value >= self.maximum:
                raise DataError(f"{self.name!r} must be below {self.maximum:g}, got {value:g}")
            return value
        if self.also_index and isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
            if value < 0:
                raise DataError(f"{self.name!r} must be a sample index >= 0 or one of its words, got {value}")
            return str(int(value))  # kept as text, as the CLI gives it: "123"
        if not isinstance(value, str):
            raise DataError(f"{self.name!r} must be a string, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise DataError(f"{self.name!r} must be one of {', '.join(self.choices)}, got {value!r}")
        return value

    def describe(self) -> str:
        if self.choices:
            allowed = " | ".join(self.choices)
        else:
            allowed = {int: "integer", float: "number", bool: "true | false", str: "text"}[self.kind]
        return allowed + (" | none" if self.nullable else "")


def _settings(*items: Setting) -> dict[str, Setting]:
    return {item.name: item for item in items}


# Training: the same for every task (white-box; black-box adds query_budget).
_TRAINING = (
    Setting("epochs", int, "training epochs at most (0: the probe start is the model, no training)", minimum=0),
    Setting("lr", float, "Adam learning rate of theta and omega", minimum=1e-12),
    Setting("batch_size", int, "mini-batch size", minimum=1),
    Setting("val_fraction", float, "share of the training data held out to select the epoch (0: none)",
            minimum=0, maximum=1),
    Setting("patience", int, "epochs without a better validation score before stopping", minimum=1),
)
_HEAD_INIT = Setting("head_init", str, "linear head at the start: a logistic-regression probe of the frozen "
                     "features (training must beat it on validation) or random weights", choices=("probe", "random"))
_BLACKBOX = Setting("query_budget", int, "train black-box (zeroth-order, the source seen as probabilities only) "
                    "within this many source queries; none: white-box", nullable=True, minimum=1)
SERIES_MAPPINGS = ("frequency", "random", "ilm", "blm", "blm+", "linear", "proba", "layers")
MIN_DELTA_RESOLUTION = 2  # linear interpolation needs two points
_DELTA_RESOLUTION = Setting("delta_resolution", int, "theta drawn at this many points over an audio window (r x r "
                            "per image channel) and stretched: a smooth, low-dimensional perturbation for "
                            "black-box training; none: one value per sample or pixel", nullable=True,
                            minimum=MIN_DELTA_RESOLUTION)
DEVICES = ("auto", "cpu", "cuda")
# Where a series search runs its candidates (xmodal.training.search): here, or as Ray Tune trials.
SEARCH_BACKENDS = ("local", "ray")
# Where, not what: the same for every task, and not part of what a run learned (a saved run
# loads on any device; xmodal.devices).
DEVICE = Setting("device", str, "where to fit and predict: auto (cuda when torch sees a GPU, else cpu), cpu or "
                  "cuda", choices=DEVICES)
PRECISIONS = ("auto", "float32", "bfloat16")

SETTINGS: dict[str, dict[str, Setting]] = {
    "series": _settings(
        Setting("source", str, "frozen source model, audio or image (see `xmodal sources`; hf:PATH_OR_ID for a "
                "Hugging Face audio classifier); registered ones joined by + are read side by side (mapping layers)"),
        Setting("encoding", str, "the series as waveform samples (V2S), as the pitch of a tone, or as two tones "
                "(series and slope), for an audio source; or, for an image source, as a picture (see picture); "
                "tones and image need masked false",
                choices=("waveform", "pitch", "pitch+slope", "image")),
        Setting("picture", str, "what an image source sees (encoding image, or a fused source's image sources): "
                "windows (the series' overlapping windows stacked as rows, TiViT), recurrence (its recurrence "
                "plot: how far apart every two moments' values are) or line (the series drawn as a line chart, "
                "dark on white), for every image source; or per source, "
                "NAME=PICTURE joined by + (efficientnet-lite0=recurrence; each NAME a source the run reads), the "
                "window rows for a source not named"),
        Setting("mapping", str, "output map: label mappings (frequency, random, ilm, blm, blm+), a linear head on "
                "the logits, proba: a probe-started head on the class log-probabilities (all a prediction API "
                "returns; black-box), or layers: a probe-started head on every source layer's statistics",
                choices=SERIES_MAPPINGS),
        Setting("labels_per_class", int, "source classes per target class of a label mapping (none: K_S // K_T)",
                nullable=True, minimum=1),
        Setting("remap_every", int, "epochs between re-mappings of ilm, blm and blm+", minimum=1),
        Setting("laplace", float, "Laplace smoothing lambda of blm and blm+", minimum=1e-12),
        Setting("standardize", bool, "z-normalise each series first"),
        Setting("upsample_factor", int, "stretch the series by this integer factor (waveform)", minimum=1),
        Setting("target_duration", float, "stretch the series to this many seconds of audio (waveform; none: "
                "no stretch)", nullable=True, minimum=1e-6),
        Setting("interpolation", str, "how stretching fills new samples", choices=("linear", "nearest")),
        Setting("copies", int, "copies of the series at equal intervals (waveform)", minimum=1),
        Setting("offset", str, "where a single copy starts: start, centre or a sample index (waveform)",
                also_index=True),
        Setting("masked", bool, "delta only around the series (V2S's mask); false lets it cover the series"),
        Setting("tanh_bound", bool, "squash the input into [-1, 1] (image: into the source's value range; false "
                "clamps it there)"),
        Setting("delta_dropout", float, "dropout probability on delta in training", minimum=0, maximum=1),
        _DELTA_RESOLUTION,
        Setting("trained_view", bool, "tones only: train a small residual filter of the series with delta, from the "
                "probe start, and read the trained bridge beside the untrained one under one probe refitted on the "
                "training split (the start never competes: both readings are kept). For a fused source (a+b+...), "
                "its first audio source's trained view, one more member of the probe per source"),
        Setting("choose_sources", bool, "for a fused source (a+b+...): keep the subset of its sources whose probe "
                "has the lowest cross-validated log-loss on the training split (every subset tried, the choice and "
                "its cost reported); false: read them all. A single source is read as it is"),
        Setting("trained_view_weight", int, "for a fused source with trained_view: how many members its trained "
                "view counts as in the average of the probes per source (1: one, as each source's probe; ignored "
                "without a trained view)", minimum=1),
        Setting("fusion", str, "for a fused source (a+b+...): one probe of all its sources' layer statistics side "
                "by side, or a probe of each source's alone, their log-probabilities averaged (late fusion: still "
                "one linear head). A single source is read as it is", choices=("one-probe", "probe-per-source")),
        Setting("slice_copies", int, "for a fused source under a probe per source: this many window slices of each "
                "training series (a random 90 % of it, stretched back to its length) are read too, and each source's "
                "probe is fitted again on the series and their slices (its C kept): one more member per source "
                "(0: none). A single source is read as it is", minimum=0),
        Setting("clip_features", bool, "a probe head holds each number it reads to the range that number had on "
                "the training series (and their window slices), so that a series read far outside it cannot swing "
                "the prediction; a head trained by gradient reads them as they are"),
        *_TRAINING,
        _BLACKBOX,
        DEVICE,
    ),
    "sequence": _settings(
        Setting("source", str, "frozen language model: a registered name, a model folder or hf:ID"),
        Setting("alphabet", str, "token alphabet (none: smiles for a smiles column, else protein)",
                choices=("protein", "dna", "smiles"), nullable=True),
        Setting("mode", str, "R2DL sparse theta, dense theta (ReprogBERT) or a soft prompt (WARP)",
                choices=("sparse", "dense", "prompt")),
        Setting("init", str, "what theta codes at the start: each token's spelling as the LM reads it, or "
                "random vectors (original R2DL)", choices=("spelled", "random")),
        Setting("sparsity", int, "non-zeros per row of theta in sparse mode, k", minimum=1),
        Setting("head", str, "what reads the LM's pooled features out: a linear head (a logistic-regression "
                "probe, which training theta starts from) or a kernel head (an RBF-kernel support-vector probe "
                "with a fitted sigmoid; fitted on the reading, not trained: epochs 0, or with trained_view theta "
                "trains under a linear head first)", choices=("linear", "kernel")),
        _HEAD_INIT,
        Setting("prompt_length", int, "soft prompt tokens in prompt mode", minimum=1),
        Setting("truncation", str, "records longer than the source fits: refuse, or keep the start / end",
                choices=("error", "keep_start", "keep_end")),
        Setting("unknown", str, "unknown tokens: refuse, or map to <unk>", choices=("error", "unk")),
        Setting("validate_smiles", bool, "check SMILES with RDKit while tokenising"),
        Setting("precision", str, "the language model's arithmetic: auto (bfloat16 where the device computes it "
                "natively: a CPU with AVX512-BF16 or AMX, a GPU that supports it; else float32), float32 or "
                "bfloat16 (emulated, and slower, where it is not native)", choices=PRECISIONS),
        Setting("trained_view", bool, "train theta from the linear probe start, and read the trained bridge beside "
                "the untrained one. Head linear: one probe of both readings, refitted on the training records (the "
                "start never competes; every record read twice). Head kernel (the trained-view preset): the kernel "
                "head on both readings competes with the one on the start's reading alone on validation log-loss, "
                "and the trained theta is kept only where it wins (a fit reads every record twice, a prediction "
                "where theta is kept)"),
        *_TRAINING,
        DEVICE,
    ),
    "table": _settings(
        Setting("source", str, "frozen image-style source (see `xmodal sources`)"),
        Setting("encoding", str, "categorical columns: one cell per category, or one cell per column",
                choices=("onehot", "ordinal")),
        Setting("missing", str, "missing values: refuse, or impute (numeric at the training mean, categorical "
                "as no category)", choices=("error", "impute")),
        Setting("cell_size", int, "side in pixels of each feature's square (none: the largest that fits)",
                nullable=True, minimum=1),
        Setting("gap", int, "pixels between feature squares", minimum=0),
        Setting("placement", str, "where the grid of squares sits on the image", choices=("centre", "top-left")),
        Setting("views", str, "one image per row, or per-feature: one image per feature (its square alone), the "
                "source's answers read side by side (a query per feature for a source behind an API)",
                choices=TABLE_VIEWS),
        _DELTA_RESOLUTION,
        Setting("mapping", str, "output map: label mappings, a linear head on the logits, proba: a probe-started "
                "head on the class log-probabilities (black-box), or cells: a probe-started head on every layer's "
                "mean over each feature's square", choices=("frequency", "random", "linear", "proba", "cells")),
        Setting("labels_per_class", int, "source classes per target class of a label mapping (none: K_S // K_T)",
                nullable=True, minimum=1),
        _HEAD_INIT,
        *_TRAINING,
        _BLACKBOX,
        DEVICE,
    ),
}


def check_task(task: str) -> dict[str, Setting]:
    if task not in SETTINGS:
        raise DataError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    return SETTINGS[task]


def check_settings(task: str, values: dict) -> dict:
    """Every setting of `task` checked (unknown names refused), in definition order."""
    definitions = check_task(task)
    unknown = sorted(set(values) - set(definitions))
    if unknown:
        raise DataError(f"unknown {task} settings {unknown}; the {task} task takes {', '.join(definitions)}")
    missing = [name for name in definitions if name not in values]
    if missing:
        raise DataError(f"{task} settings lack {missing}")
    return {name: definitions[name].check(values[name]) for name in definitions}
