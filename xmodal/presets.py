"""Named presets per task: the one place where setting values are written.

    resolve_settings("series", "best", {"epochs": 5})   # the best recipe, 5 epochs

Each preset is a complete settings record (checked against xmodal.settings), with a
one-line description and the benchmark figure that justifies it. The estimators, the
CLI (`xmodal presets` lists them), the search and `benchmarks/` all start from here.
Torch-free.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from xmodal.errors import DataError
from xmodal.settings import SERIES_PICTURES, check_settings, check_task, named_pictures

DEFAULT_PRESET = "best"


@dataclass(frozen=True)
class Preset:
    task: str
    name: str
    description: str
    figure: str  # the measured result that justifies the preset, and where it comes from
    settings: dict


_TRAINING = {"epochs": 30, "lr": 0.01, "batch_size": 32, "val_fraction": 0.2, "patience": 10}
# Every preset runs on the GPU when torch sees one (the same seed gives the same result on
# the CPU bit for bit; on a GPU to float tolerance).
_DEVICE = {"device": "auto"}

# Voice2Series (Yang, Tsai & Chen, ICML 2021): the series as waveform samples at the start
# of a 1-s window, delta trained around it (masked), a frequency label map.
_V2S = {
    "source": "bc-resnet-gsc35", "encoding": "waveform", "mapping": "frequency", "labels_per_class": None,
    "remap_every": 1, "laplace": 1.0, "standardize": True, "upsample_factor": 1, "target_duration": None,
    "picture": "windows", "interpolation": "linear", "copies": 1, "offset": "start", "masked": True, "tanh_bound": True,
    "delta_dropout": 0.0, "delta_resolution": None, "trained_view": False, "trained_view_weight": 1,
    "choose_sources": False, "fusion": "one-probe", "slice_copies": 0, "clip_features": False, "epochs": 100,
    "lr": 0.05, "batch_size": 32, "val_fraction": 0.2, "patience": 25, "query_budget": None, **_DEVICE,
}

# Tables: each feature drawn as the largest square that fits, ordinal categories; the cells
# read-out of BC-ResNet as an image model, a probe and no training.
_TABLE = {"source": "bc-resnet-gsc35-image", "encoding": "ordinal", "missing": "error", "cell_size": None, "gap": 3,
          "placement": "centre", "views": "one", "delta_resolution": None, "mapping": "cells", "labels_per_class": None,
          "head_init": "probe", "epochs": 0, "lr": 0.01, "batch_size": 32, "val_fraction": 0.2, "patience": 5,
          "query_budget": None, **_DEVICE}

# The best and fused presets' sources (adapters_modal.fused): picked in docs/experiments.md, 0.5, on the UCR
# sets' test accuracy and cost (so those presets' figures on these sets are optimistic).
FUSED_SOURCES = "bc-resnet-gsc35+bc-resnet-gsc35-image+efficientnet-lite0+speech-embedding"
# best's: the same four, BC-ResNet-image also read band by band down its window image (chosen over the whole
# image's statistics alone on the training splits' nested folds, 0.37).
BEST_SOURCES = "bc-resnet-gsc35+bc-resnet-gsc35-image-bands+efficientnet-lite0+speech-embedding"
# What their two image sources see: EfficientNet-Lite0 a line chart, BC-ResNet-image the window rows (picked
# on the training splits' folds: the recurrence plot in 0.26 and 0.27, both on the plot measured worse; the
# line chart over the plot in 0.29, confirmed by the product's own fold run).
FUSED_PICTURES = "efficientnet-lite0=line"
# The four sources' probes, averaged (fusion probe-per-source): the late-fusion and best presets' reading.
_LATE_FUSION = {**_V2S, "source": FUSED_SOURCES, "encoding": "pitch+slope", "masked": False, "mapping": "layers",
                "fusion": "probe-per-source", **_TRAINING, "epochs": 0}

# R2DL: the sequence presets' common settings (the best preset's).
_R2DL = {"source": "minilm-l6", "alphabet": None, "mode": "sparse", "init": "spelled", "sparsity": 200,
         "head": "kernel", "head_init": "probe", "prompt_length": 8, "truncation": "error", "unknown": "error",
         "validate_smiles": False, "precision": "auto", "trained_view": False, "epochs": 0, "lr": 0.003,
         "batch_size": 32, "val_fraction": 0.1, "patience": 1, **_DEVICE}

_PRESETS = [
    Preset(
        "series", "best",
        "four frozen sources read once (BC-ResNet and the speech embedding hearing the series as two tones, "
        "BC-ResNet-image seeing its window image and read band by band down it, EfficientNet-Lite0 its line "
        "chart), a probe of each source's layer statistics that holds every number it reads to its range on the "
        "training series, the log-probabilities averaged (one linear head); no training",
        "91.77 % mean test accuracy over 22 UCR sets, 3 seeds (MiniRocket 92.52 %: 8 wins, 3 ties, 11 losses; "
        "without the bands 91.43 %; best-recurrence, the recurrence plot in the line chart's place and no bands, "
        "92.17 %), fit 637 s for the 22 sets; the bands chosen on the training splits' nested cross-validation, "
        "confirmed on their folds (91.28 against 90.73 % out of fold, MiniRocket 92.26 %: `python "
        "benchmarks/ucr_folds.py --score benchmarks/results/ucr_select_runs.jsonl`, docs/experiments.md 0.37; "
        "+0.16 points on the mean of three cuts of the folds, 0.39), "
        "the line chart over the plot on the same folds (90.73 against 90.07 %, 0.29), the four probes over "
        "trained-fusion on their nested cross-validation (0.27); optimistic: the four sources were picked on "
        "these sets' test accuracy: benchmarks/results/ucr.md, "
        "`python benchmarks/ucr.py --seeds 3 --methods best,best-no-bands,best-recurrence,minirocket`",
        {**_LATE_FUSION, "source": BEST_SOURCES, "clip_features": True, "picture": FUSED_PICTURES},
    ),
    Preset(
        "series", "trained-fusion",
        "the best preset before 0.27, with trained reprogramming: the four sources unclipped, Lite0 on the "
        "window image, each source's probe fitted again on the series and 4 window slices of each (a random 90 %, "
        "stretched back); and BC-ResNet's trained view (the trained-view preset's filter, delta and head trained "
        "from its probe start) read beside its start, probed as one more member that counts twice",
        "91.79 % mean test accuracy over 22 UCR sets, 3 seeds (MiniRocket 92.52 %: 8 wins, 3 ties, 11 losses; "
        "the trained view counted once 91.81 %, without its slices 91.15 %), fit 3 131 s for the 22 sets (seed 0, "
        "partly on shared cores; 2 928 s alone with the view counted once, the same work); its slices and the "
        "view's weight chosen on the training splits' nested cross-validation (docs/experiments.md 0.23, 0.24); "
        "optimistic: the four sources were picked on these sets' test accuracy: benchmarks/results/ucr.md, "
        "`python benchmarks/ucr.py --seeds 3 --methods trained-fusion,trained-fusion-view-once,minirocket`",
        {**_LATE_FUSION, "trained_view": True, "trained_view_weight": 2, "slice_copies": 4, **_TRAINING},
    ),
    Preset(
        "series", "late-fusion",
        "the best preset's four probes, unclipped, with EfficientNet-Lite0 on the window image and BC-ResNet-image "
        "without bands (the best preset before 0.22)",
        "91.32 % mean test accuracy over 22 UCR sets, 3 seeds (MiniRocket 92.52 %: 6 wins, 5 ties, 11 losses; the "
        "same four read by the subset chosen on training CV, 90.79 %), fit 1 122 s for the 22 sets on shared "
        "cores; chosen over that subset choice on the training splits' cross-validation (89.32 against 89.14 %, "
        "docs/experiments.md 0.13); optimistic: the four sources were picked on these sets' test accuracy: "
        "benchmarks/results/ucr.md, `python benchmarks/ucr.py --seeds 3 --methods late-fusion,choice,minirocket`",
        _LATE_FUSION,
    ),
    Preset(
        "series", "fused",
        "the best preset's four sources (unclipped, Lite0 on the window image, BC-ResNet-image without bands) "
        "under one probe of all their layer statistics side by side",
        "90.19 % mean test accuracy over 22 UCR sets, 3 seeds (MiniRocket 92.52 %: 4 wins, 3 ties, 15 losses), "
        "fit 712 s for the 22 sets; optimistic, as for best: benchmarks/results/ucr.md",
        {**_LATE_FUSION, "fusion": "one-probe"},
    ),
    Preset(
        "series", "tones",
        "the series as the pitch of two tones (series and slope) read by BC-ResNet alone; a head on every layer's "
        "statistics, started as a probe that training must beat on validation (the default before best read "
        "four sources: about 50 times cheaper to fit and predict)",
        "86.51 % mean test accuracy over 22 UCR sets, 3 seeds (MiniRocket 92.52 %: 3 wins, 2 ties, 17 losses); "
        "trained epochs beat the probe on validation in 5 of 63 fits: benchmarks/results/ucr.md, "
        "`python benchmarks/ucr.py --seeds 3 --methods tones,minirocket`",
        {**_V2S, "encoding": "pitch+slope", "masked": False, "mapping": "layers", **_TRAINING},
    ),
    Preset(
        "series", "trained-view",
        "the tones preset's reading twice, side by side under one probe: the untrained bridge's, and that of a "
        "bridge whose residual series filter and delta were trained from the probe start (the head at a tenth "
        "of theta's learning rate, under the probe's own L2 penalty; the best trained epoch on validation "
        "log-loss kept); about twice the tones preset's cost to predict",
        "89.37 % mean test accuracy over 22 UCR sets, 3 seeds (MiniRocket 92.52 %: 3 wins, 3 ties, 16 losses; "
        "the tones preset 86.51 %); above its probe start by 2.84 points on test, on 15 of 21 sets, and on "
        "validation in 36 of 63 fits; the recipe was picked among 7 on seed 0's test accuracy (docs/experiments.md, "
        "0.9): benchmarks/results/ucr.md, `python benchmarks/ucr.py --seeds 3 --methods trained-view,minirocket`",
        {**_V2S, "encoding": "pitch+slope", "masked": False, "mapping": "layers", "trained_view": True, **_TRAINING},
    ),
    Preset(
        "series", "v2s",
        "Voice2Series as published: the series as waveform samples, a masked trained delta, a frequency label map",
        "81.00 % mean test accuracy over GunPoint, Coffee, ECG200, ItalyPowerDemand, Plane, Trace and Wine "
        "(seed 0; the tones preset 87.24 % on the same sets; GunPoint 0.673): benchmarks/results/series.md, "
        "`python benchmarks/bench_series.py`",
        _V2S,
    ),
    Preset(
        "series", "blackbox",
        "for a model behind a prediction API: the series as an image (TiViT) for an image classifier (EfficientNet-"
        "Lite0 here; --blackbox-url for a served one), a probe of its class log-probabilities, then a smooth "
        "48-number perturbation trained zeroth-order within 20 000 queries",
        "GunPoint, ItalyPowerDemand, ECG200 and Coffee through `xmodal serve efficientnet-lite0` over HTTP: "
        "benchmarks/results/blackbox.md, `python benchmarks/bench_blackbox.py`",
        {**_V2S, "source": "efficientnet-lite0", "encoding": "image", "masked": False, "mapping": "proba",
         "delta_resolution": 4, "lr": 0.002, "patience": 10, "query_budget": 20_000},
    ),
    Preset(
        "sequence", "best",
        "R2DL: tokens as 200-sparse combinations of MiniLM's token embeddings, started at each token's "
        "spelling; a kernel head (an RBF-kernel support-vector probe of the pooled features, its C by 5-fold "
        "log-loss, a fitted sigmoid), refitted on the validation records too; no training of theta",
        "AMP test accuracy 0.914 (ROC-AUC 0.970) in 0.8 times the CNN's fit, ToxinPred 0.952 over 5 folds (1.9 "
        "times; 3.1 on the fold with the fastest CNN), BBBP ROC-AUC 0.959 (0.9 times), MiniLM read in "
        "bfloat16 (precision auto, on a CPU with AVX512-BF16; a bfloat16 copy of the encoder, 0.36); the kernel "
        "head had the lower validation log-loss "
        "than the linear probe on 9 of 10 selection splits (docs/experiments.md, 0.32, 0.33): "
        "benchmarks/results/r2dl.md, `python benchmarks/bench_r2dl.py`",
        _R2DL,
    ),
    Preset(
        "sequence", "trained-view",
        "the best preset's reading twice, side by side: theta at its start, and theta trained for one epoch from "
        "the linear probe start (the head at a tenth of theta's learning rate, under the probe's own L2 penalty); "
        "the kernel head on both readings competes with the kernel head on the start's reading alone (the best "
        "preset's model) on validation log-loss, and the trained theta is kept only where it wins; a fit reads "
        "every record twice, a prediction where theta is kept",
        "both readings won on validation in 8 of 12 fits (AMP's 3 seeds, 4 of ToxinPred's 5 folds, BACE; not BBBP, "
        "ClinTox); AMP test accuracy 0.917 over 3 seeds against best's 0.914, ToxinPred 0.953 against 0.952, BACE "
        "ROC-AUC 0.912 against 0.914; fit 1.7 to 7.2 times the CNN's by each set's mean (AMP 2.6 to 3.1, 2.9 over "
        "the 3 seeds; docs/experiments.md, 0.36): benchmarks/results/r2dl_trained_view.md, "
        "`python benchmarks/bench_r2dl.py --preset trained-view`",
        {**_R2DL, "trained_view": True, "epochs": 1, "patience": 1},
    ),
    Preset(
        "table", "best",
        "each feature drawn as the largest square that fits (ordinal categories); a probe of every BC-ResNet "
        "layer's mean over each feature's square; no training (it never beat the probe on validation)",
        "German credit test ROC-AUC 0.794 against 0.779 for logistic regression and 0.777 for gradient boosting, "
        "fit 12 s (3 seeds); the same read-out of a randomly initialised BC-ResNet gets 0.803, so the gain is not "
        "pretraining: benchmarks/results/table.md, `python benchmarks/bench_table.py`",
        _TABLE,
    ),
    Preset(
        "table", "blackbox",
        "for a model behind a prediction API: one image per feature (its square alone on grey) for an image "
        "classifier (EfficientNet-Lite0 here; --blackbox-url for a served one), a probe of the class "
        "log-probabilities of all of them; a query per feature and row, so no budget is left for training theta "
        "(to train it anyway, set epochs and a val_fraction: with none, the probe is the model)",
        "German credit through `xmodal serve efficientnet-lite0` over HTTP: benchmarks/results/blackbox.md, "
        "`python benchmarks/bench_blackbox.py`",
        {**_TABLE, "source": "efficientnet-lite0", "views": "per-feature", "delta_resolution": 4, "mapping": "proba",
         "epochs": 0, "val_fraction": 0.0, "query_budget": 50_000},
    ),
]
PRESETS: dict[tuple[str, str], Preset] = {(p.task, p.name): p for p in _PRESETS}
for _preset in _PRESETS:  # a preset that does not check is a bug: fail at import, not in a user's fit
    check_settings(_preset.task, _preset.settings)


def preset_names(task: str) -> list[str]:
    check_task(task)
    return [name for (t, name) in PRESETS if t == task]


def get_preset(task: str, name: str) -> Preset:
    """The preset, or a DataError listing the task's presets (and the closest name)."""
    names = preset_names(task)
    if (task, name) not in PRESETS:
        close = difflib.get_close_matches(str(name), names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataError(f"unknown {task} preset {name!r}{hint} (presets: {', '.join(names)})")
    return PRESETS[task, name]


def resolve_settings(task: str, preset: str | None, overrides: dict) -> dict:
    """The preset's settings with every non-None override applied, checked.
    (None means "the preset's value": a setting whose value may be None is set to
    None by a preset, never by an override.)"""
    base = get_preset(task, preset or DEFAULT_PRESET).settings
    given = {k: v for k, v in overrides.items() if v is not None}
    settings = check_settings(task, {**base, **given})
    if "picture" in given and given["picture"] != base["picture"]:  # not the preset's own (a reloaded run's)
        _check_picture_names(settings["picture"], settings["source"])
    return settings


def _check_picture_names(picture: str, source: str) -> None:
    """A per-source picture written by the user must name sources that `source` reads: one it does not read would
    be ignored without a word (the banded image source under `best`, named as the plain one). A preset's own
    per-source picture, inherited or given back (a reloaded run passes every setting), is not checked: with the
    source overridden it may name a part the new source lacks, which is then simply not read. Which parts are
    image sources, and the pictures' spelling, the bridge checks (xmodal.bridges.series_factory.source_picture)."""
    parts = source.split("+")
    unread = [name for name, own in named_pictures(picture) if own in SERIES_PICTURES and name not in parts]
    if unread:
        raise DataError(f"picture={picture!r} names {', '.join(unread)}, which source={source!r} does not read; "
                        f"name its image parts (NAME=PICTURE, NAME one of its parts {', '.join(parts)}), or give one "
                        "picture for all of them (windows, recurrence or line)")
