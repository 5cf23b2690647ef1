"""UCR benchmark: the series presets and the source zoo against MiniRocket, same run, on Ray.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/ucr.py [--seeds 3] [--workers 2] [FOLDER ...]
    python benchmarks/ucr.py --quick          # 3 small datasets, 1 seed, few epochs: a few minutes
    python benchmarks/ucr.py --address auto   # on a running Ray cluster (xmodal sweep --address)

A thin configuration of `xmodal sweep` (xmodal.sweep): every (dataset, method, seed) is one
work item, `xmodal fit series` run as a Ray task with one CPU, largest first. FOLDER:
folders of UCR-layout datasets (<Name>/<Name>_TRAIN.tsv, _TEST.tsv); default
../shared/data/ucr. Methods:
  best           the "best" preset of xmodal.presets (the default of `xmodal fit series`): four frozen
                 sources read once (Lite0 seeing a line chart, BC-ResNet-image read band by band down
                 its window image), a probe of each source holding its inputs to their training range,
                 their log-probabilities averaged
  best-no-bands  best before 0.37: BC-ResNet-image's statistics over its whole image alone
  best-recurrence  best before 0.29: best-no-bands with Lite0 seeing the recurrence plot
  trained-fusion the "trained-fusion" preset (best before 0.27): the four sources unclipped, Lite0
                 on the window image, each probe again on the series and 4 window slices of each,
                 and one of BC-ResNet's trained view beside its start (counted twice)
  trained-fusion-clipped     trained-fusion with each probe holding its inputs to their range
  trained-fusion-clipped-rp  that, with Lite0 seeing the recurrence plot
  trained-fusion-view-once   trained-fusion with its trained view counted once
  trained-fusion-no-slices   trained-fusion without window slices (its trained view counted once)
  late-fusion    the "late-fusion" preset: the four sources' probes alone, unclipped, Lite0 on the
                 window image
  late-fusion-clipped  late-fusion with each probe holding its inputs to their training range
  fused          the "fused" preset: all four sources under one probe
  choice         the fused preset's four, the subset of the four whose probe has the lowest
                 training-split cross-validated log-loss kept, its probe the model
  tones          the "tones" preset: BC-ResNet alone hearing two tones, its probe-started head trained
  trained-view   the "trained-view" preset: the tones' reading beside that of a bridge whose series
                 filter and delta were trained from the probe start, one probe of both
  v2s            the "v2s" preset (Voice2Series: waveform placement, masked delta, frequency map)
  v2s-search     the "v2s" preset with its settings chosen by the "small" grid on the training
                 split (xmodal.training.search), then refitted
  v2s-attrnn     the "v2s" preset on attrnn-gsc35 (slower, so fixed settings, no search: the
                 series stretched to 0.9 s, linear head, lr 0.01, batches of 8, at most 100 epochs)
  minirocket     sktime MiniRocket + StandardScaler + RidgeClassifierCV (the standard recipe;
                 xmodal.baselines.series.minirocket)
  best+minirocket  a hybrid, not reprogramming (MiniRocket's features inside, so it does not count
                 toward the issue's goal): the best preset's log-probabilities averaged with those of a
                 clipped logistic probe of MiniRocket's features (xmodal.baselines.series)
  zoo-SOURCE     the probe of a frozen source's layer statistics with its natural bridge, no
                 training (issue "The source zoo")

Every finished item is appended to benchmarks/results/<name>_runs.jsonl at once (its run
folder is in runs/sweeps/<name>/items/), so an interrupted run resumes where it stopped
(items with the same settings are skipped). The tables (<name>.csv, .md, .json, .png) are
rebuilt from that file at the end, or alone with --report-only, from the runs made with the
current settings only (runs of older settings stay in the file, counted and left out).
Only the test split is scored; nothing is chosen on it. To choose between methods on training data,
run them on the training splits' folds (benchmarks/ucr_folds.py writes them as UCR datasets).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from xmodal.errors import DataError  # noqa: E402
from xmodal.presets import FUSED_SOURCES  # noqa: E402
from xmodal.sweep import config_from_dict, read_results, run_sweep, write_report  # noqa: E402
from xmodal.sweep.config import find_datasets as sweep_datasets  # noqa: E402
from xmodal.sweep.item import result_key  # noqa: E402

RESULTS = HERE / "results"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "ucr"
# The source weights: ../shared/models unless the caller says otherwise (Ray tasks get it).
os.environ.setdefault("XMODAL_WEIGHTS_DIR", str(REPO.parent / "shared" / "models"))
# Voice2Series paper (V2Sa) test accuracies, percent, from ../shared/data/README.md.
V2S_PAPER = {"Coffee": 100, "ECG200": 87.0, "Earthquakes": 78.42, "GunPoint": 96.67, "ItalyPowerDemand": 97.08,
             "Plane": 100, "Strawberry": 97.57, "Trace": 100, "Wine": 90.74}
# EfficientNet-Lite0 seeing the recurrence plot, the other image source the window rows (the best preset's
# pictures from 0.27 to 0.29).
LITE0_RECURRENCE = "efficientnet-lite0=recurrence"
# Each method is a sweep method: a preset of xmodal.presets and what changes from it, or a
# baseline (the whole dict is the run's "settings", so a changed method never mixes with old
# runs). Quick mode only cuts the training budget.
METHOD_SETTINGS = {
    "full": {
        "best": {"preset": "best"},
        # The best preset before 0.37: BC-ResNet-image's statistics over its whole image alone.
        "best-no-bands": {"preset": "best", "source": FUSED_SOURCES},
        # The best preset before 0.29: that, with Lite0 seeing the recurrence plot (docs/experiments.md, 0.27).
        "best-recurrence": {"preset": "best", "source": FUSED_SOURCES, "picture": LITE0_RECURRENCE},
        # The best preset before 0.27 (docs/experiments.md, 0.25).
        "trained-fusion": {"preset": "trained-fusion"},
        # Its probes clipped to the range they were fitted on (docs/experiments.md, 0.26).
        "trained-fusion-clipped": {"preset": "trained-fusion", "clip_features": True},
        # And EfficientNet-Lite0 seeing the recurrence plot (docs/experiments.md, 0.27).
        "trained-fusion-clipped-rp": {"preset": "trained-fusion", "clip_features": True, "picture": LITE0_RECURRENCE},
        # The trained-fusion preset before its trained view counted twice (docs/experiments.md, 0.24).
        "trained-fusion-view-once": {"preset": "trained-fusion", "trained_view_weight": 1},
        # Before its window slices (docs/experiments.md, 0.23).
        "trained-fusion-no-slices": {"preset": "trained-fusion", "slice_copies": 0, "trained_view_weight": 1},
        # Before the trained view (docs/experiments.md, 0.13 and 0.22).
        "late-fusion": {"preset": "late-fusion"},
        # Its probes clipped to the range they were fitted on (docs/experiments.md, 0.26).
        "late-fusion-clipped": {"preset": "late-fusion", "clip_features": True},
        "fused": {"preset": "fused"},
        # The best preset before a probe per source (docs/experiments.md, 0.6 and 0.13).
        "choice": {"preset": "fused", "choose_sources": True},
        "tones": {"preset": "tones"},
        "trained-view": {"preset": "trained-view"},
        "v2s": {"preset": "v2s"},
        "v2s-search": {"preset": "v2s", "search": "small", "patience": 10},
        # The AttRNN's frames hop 128 samples: stretched to 0.9 s a series spans most of its 125
        # frames instead of about 12, and with batches of 8 delta gets 4 times the Adam steps per
        # epoch. 100 epochs, not more: at 200 / patience 50, Strawberry and SwedishLeaf alone took
        # about 16 min each on shared cores.
        "v2s-attrnn": {"preset": "v2s", "source": "attrnn-gsc35", "mapping": "linear", "lr": 0.01, "batch_size": 8,
                       "epochs": 100, "patience": 25, "target_duration": 0.9},
        "minirocket": {"baseline": "minirocket"},
        "best+minirocket": {"baseline": "best+minirocket"},
    },
    "quick": {
        "best": {"preset": "best"},
        "best-no-bands": {"preset": "best", "source": FUSED_SOURCES},
        "best-recurrence": {"preset": "best", "source": FUSED_SOURCES, "picture": LITE0_RECURRENCE},
        "trained-fusion": {"preset": "trained-fusion", "epochs": 2, "patience": 2},
        "trained-fusion-clipped": {"preset": "trained-fusion", "clip_features": True, "epochs": 2, "patience": 2},
        "trained-fusion-clipped-rp": {"preset": "trained-fusion", "clip_features": True, "picture": LITE0_RECURRENCE,
                                      "epochs": 2, "patience": 2},
        "trained-fusion-view-once": {"preset": "trained-fusion", "trained_view_weight": 1, "epochs": 2, "patience": 2},
        "trained-fusion-no-slices": {"preset": "trained-fusion", "slice_copies": 0, "trained_view_weight": 1,
                                     "epochs": 2, "patience": 2},
        "late-fusion": {"preset": "late-fusion"},
        "late-fusion-clipped": {"preset": "late-fusion", "clip_features": True},
        "fused": {"preset": "fused"},
        "choice": {"preset": "fused", "choose_sources": True},
        "tones": {"preset": "tones", "epochs": 2, "patience": 2},
        "trained-view": {"preset": "trained-view", "epochs": 2, "patience": 2},
        "v2s": {"preset": "v2s", "epochs": 3, "patience": 3},
        "v2s-search": {"preset": "v2s", "patience": 3, "search": "tiny"},
        "v2s-attrnn": {"preset": "v2s", "source": "attrnn-gsc35", "epochs": 3, "patience": 3},
        "minirocket": {"baseline": "minirocket"},
        "best+minirocket": {"baseline": "best+minirocket"},
    },
}
# The zoo (issue "The source zoo"): the probe of each frozen source's layer statistics, with
# its natural bridge (the tones preset's tones for audio sources, the series as an image for
# image sources), no training: which source reads time series best, and at what cost.
ZOO = {"bc-resnet-gsc35": "audio", "crepe-tiny": "audio", "crepe-full": "audio", "speech-embedding": "audio",
       "whisper-tiny-en": "audio", "whisper-tiny-en-clip": "audio", "bc-resnet-gsc35-image": "image",
       "bc-resnet-gsc35-image-bands": "image", "efficientnet-lite0": "image"}
for _mode in METHOD_SETTINGS.values():
    _mode.update({f"zoo-{name}": {"preset": "tones", "source": name, "epochs": 0,
                                  **({"encoding": "image"} if kind == "image" else {})} for name, kind in ZOO.items()})
METHODS = list(METHOD_SETTINGS["full"])
QUICK_DATASETS = ["Coffee", "GunPoint", "ItalyPowerDemand"]
# Left out of --quick unless named in --methods: minutes per set each (crepe-full took 16 min on ItalyPowerDemand).
SLOW_METHODS = ("zoo-whisper-tiny-en", "zoo-crepe-full")
# Relative cost per byte of data, to start the largest work first (zoo: measured forward speed, bench_sources.md).
COSTS = {"zoo-bc-resnet-gsc35": 1, "zoo-bc-resnet-gsc35-image": 1, "zoo-bc-resnet-gsc35-image-bands": 1,
         "zoo-crepe-tiny": 10, "zoo-efficientnet-lite0": 10,
         "zoo-speech-embedding": 20, "zoo-whisper-tiny-en": 300,
         "zoo-whisper-tiny-en-clip": 3, "zoo-crepe-full": 400,
         "best": 32, "best-no-bands": 32, "best-recurrence": 32, "trained-fusion": 90, "trained-fusion-clipped": 90,
         "trained-fusion-clipped-rp": 90,
         "trained-fusion-view-once": 90, "trained-fusion-no-slices": 40, "late-fusion": 32, "late-fusion-clipped": 32,
         "fused": 32, "choice": 35,
         "tones": 30, "trained-view": 35, "v2s": 100, "v2s-search": 200, "v2s-attrnn": 100,
         "minirocket": 1, "best+minirocket": 40}


def find_datasets(folders: list[Path]) -> dict[str, str]:
    """Name -> folder of every UCR dataset in `folders` (the sweep config's own expansion)."""
    if missing := [str(folder) for folder in folders if not folder.is_dir()]:
        raise DataError(f"{', '.join(missing)}: not a folder of UCR-layout datasets")
    return sweep_datasets("series", [str(folder) for folder in folders], None, REPO)


def sweep_config(name: str, datasets: dict[str, str], methods: list[str], seeds: int, mode: str):
    """The benchmark as a sweep: these datasets x methods x seeds."""
    return config_from_dict({"name": name, "task": "series", "datasets": [str(p) for p in datasets.values()],
                             "seeds": seeds, "methods": {m: METHOD_SETTINGS[mode][m] for m in methods},
                             "costs": {m: COSTS[m] for m in methods}})


def report(runs_file: Path, name: str, mode: str, datasets: dict[str, str]) -> None:
    """The tables, from the runs of every method's current settings on these datasets."""
    current = sweep_config(name, datasets, METHODS, 1, mode)
    wanted = {(item.dataset, item.method, item.key[3]) for item in current.items()}
    runs = read_results(runs_file)
    kept = [r for r in runs if (r["dataset"], r["method"], result_key(r)[3]) in wanted]
    if len(kept) < len(runs):
        print(f"{len(runs) - len(kept)} runs in {runs_file} were made with older settings or other methods: left out "
              "of the tables", flush=True)
    seeds = max(Counter((r["dataset"], r["method"]) for r in kept).values(), default=0)
    title = f"UCR benchmark ({'quick: ' if mode == 'quick' else ''}{len(datasets)} datasets, up to {seeds} seed(s))"
    print(write_report(RESULTS, name, kept, METHODS, "minirocket", title, published=("V2S paper", V2S_PAPER)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("folders", nargs="*", type=Path, help=f"UCR-layout folders (default {DEFAULT_DATA})")
    parser.add_argument("--quick", action="store_true", help=f"{', '.join(QUICK_DATASETS)}; 1 seed; 2-3 epochs")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per method (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray, one per item (default 2)")
    parser.add_argument("--address", help="a running Ray cluster instead of a local Ray (auto, HOST:PORT)")
    parser.add_argument("--methods", help="comma-separated subset of " + ",".join(METHODS) + " (default: all; with "
                        "--quick all but " + ", ".join(SLOW_METHODS) + ")")
    parser.add_argument("--datasets", help="comma-separated subset of the datasets found")
    parser.add_argument("--name", help="results name (default ucr, or ucr_quick with --quick)")
    parser.add_argument("--report-only", action="store_true", help="rebuild the tables from the runs file, fit nothing")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    name = args.name or ("ucr_quick" if args.quick else "ucr")
    methods = (args.methods.split(",") if args.methods
               else [m for m in METHODS if not (args.quick and m in SLOW_METHODS)])
    if unknown := set(methods) - set(METHODS):
        parser.error(f"unknown methods {sorted(unknown)}; choose from {', '.join(METHODS)}")
    try:
        datasets = find_datasets(args.folders or [DEFAULT_DATA])
    except DataError as exc:
        parser.error(str(exc))
    wanted = args.datasets.split(",") if args.datasets else (QUICK_DATASETS if args.quick else list(datasets))
    if missing := [d for d in wanted if d not in datasets]:
        parser.error(f"datasets {missing} not found in the given folders")
    datasets = {d: datasets[d] for d in wanted}
    runs_file = RESULTS / f"{name}_runs.jsonl"
    if not args.report_only:
        config = sweep_config(name, datasets, methods, 1 if args.quick else args.seeds, mode)
        outcome = run_sweep(config, REPO / "runs" / "sweeps" / name, runs_file, address=args.address,
                            workers=None if args.address else args.workers)
        print(f"{len(outcome.finished)} items run in {outcome.seconds:.0f} s ({outcome.skipped} already in "
              f"{runs_file}, {len(outcome.failed)} failed)", flush=True)
    report(runs_file, name, mode, datasets)


if __name__ == "__main__":
    main()
