"""Does a trained input transformation earn its keep over its probe start? (issue "Accuracy", point 2)

    OMP_NUM_THREADS=1 python benchmarks/bench_trained_view.py [--seeds 3] [--workers 2] [--datasets GunPoint,Wine]

The `tones` preset's reading (BC-ResNet hearing the series and its slope as two tones, the
statistics of every layer) on the UCR sets of ../shared/data/ucr. Per set and seed:

1. The probe start, as the product's loop makes it: the untrained bridge's reading, a logistic
   probe (xmodal.training.probe) with C chosen by k-fold log-loss on the fit part (80 % of the
   training split; k = 5, fewer where a class has fewer series), refitted on the whole training
   split at that C.
2. theta trained on the fit part: a residual filter of the standardised series (two 1-D
   convolutions, 8 channels, 9 samples wide; its output layer starts at zero, so training starts
   from the probe start's reading) and the bridge's delta, with the probe-started head. Adam, lr
   0.01 for theta and 0.001 for the head, whose L2 penalty is the probe's own (so the start is the
   optimum of the objective for the untrained theta); at most 30 epochs, the trained one with the
   lowest validation log-loss kept (patience 10; the start does not compete, as its reading is
   kept beside the trained one).
3. Three readings, each under a probe made as in 1:
   - trained: the trained bridge's reading alone;
   - both: the start's reading and the trained bridge's, side by side;
   - control: both, with a theta that was not trained: the filter's output layer drawn at random
     with the trained one's norm, the rest at the start. It measures what a second, different
     reading gives without training.

Test accuracy is only the outcome; each reading's validation log-loss (its probe fitted on the
fit part) is reported beside it. It favours the trained readings a little: their epoch was chosen
on those validation rows, and their probe's C on folds of the rows theta was trained on. A set
with a single-sample class has no validation part and is skipped, as the product's loop then keeps
the probe. Writes benchmarks/results/trained_view.json and .md (docs/experiments.md, 0.9). The
recipe is in the product since as the trained-view preset (0.10); this script keeps the control.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))
os.environ.setdefault("XMODAL_WEIGHTS_DIR", str(REPO.parent / "shared" / "models"))

DATA = REPO.parent / "shared" / "data" / "ucr"
EPOCHS, PATIENCE, BATCH, VAL_FRACTION = 30, 10, 32, 0.2
LR_THETA, LR_HEAD = 0.01, 0.001
READINGS = ("probe", "trained", "both", "control")


def run_one(name: str, seed: int) -> dict:
    """One set and seed, in a worker process: the four readings' test accuracy and validation log-loss."""
    import torch
    import torch.nn.functional as F

    from xmodal.bridges.filtered_tones import FilteredTones, FilteredTonesConfig
    from xmodal.data.ucr import load_ucr
    from xmodal.estimators.series import V2SClassifier
    from xmodal.maps import LinearHead
    from xmodal.training.loop import in_batches
    from xmodal.training.probe import fit_probe
    from xmodal.training.split import selection_split

    torch.set_num_threads(1)
    started = time.perf_counter()
    data = load_ucr(name, DATA)
    estimator = V2SClassifier(preset="tones", epochs=0, random_state=seed, verbose=0).fit(data.x_train, data.y_train)
    model, classes = estimator.reprogrammer_, len(estimator.classes_)
    x, y = torch.tensor(data.x_train, dtype=torch.float32), estimator._targets(data.y_train)
    x_test, y_test = torch.tensor(data.x_test, dtype=torch.float32), estimator._targets(data.y_test)
    fit, val = (torch.as_tensor(i) for i in selection_split(y.numpy(), VAL_FRACTION, EPOCHS, seed))
    if len(val) == 0:
        return {"dataset": name, "seed": seed, "skipped": "a class has a single sample: no validation part"}

    model.bridge = FilteredTones(FilteredTonesConfig(**model.bridge.config.to_dict()), seed)  # tones + filter
    start_state = copy.deepcopy(model.bridge.state_dict())

    def reading() -> tuple[torch.Tensor, torch.Tensor]:
        model.eval()
        return in_batches(model.source_logits, x, 64), in_batches(model.source_logits, x_test, 64)

    def probe_of(train_features, test_features) -> tuple[dict, object]:
        """(validation log-loss of the fit part's probe and test accuracy of its refit on every training
        series, the fit part's probe)."""
        head = LinearHead(train_features.shape[1], classes)
        on_fit = fit_probe(train_features[fit], y[fit], seed)
        head.load_probe(on_fit.coef, on_fit.intercept, on_fit.mean, on_fit.scale)
        with torch.no_grad():
            val_loss = F.cross_entropy(head(train_features[val]), y[val]).item()
            on_all = fit_probe(train_features, y, seed, on_fit.c)
            head.load_probe(on_all.coef, on_all.intercept, on_all.mean, on_all.scale)
            accuracy = (head(test_features).argmax(1) == y_test).float().mean().item()
        return {"val_loss": val_loss, "test_accuracy": accuracy, "c": on_fit.c}, on_fit

    start, start_test = reading()
    results = {}
    results["probe"], start_probe = probe_of(start, start_test)

    # Training from the probe start, with the probe's own L2 penalty on the head.
    head = model.output_map
    head.load_probe(start_probe.coef, start_probe.intercept, start_probe.mean, start_probe.scale,
                    penalty=1 / (2 * start_probe.c * len(fit)))

    optimizer = torch.optim.Adam([{"params": model.bridge.parameters(), "lr": LR_THETA},
                                  {"params": head.parameters(), "lr": LR_HEAD}])
    generator = torch.Generator().manual_seed(seed)
    best_loss, best_epoch, best_state, history = float("inf"), 0, None, []
    for epoch in range(1, EPOCHS + 1):
        model.train()
        for batch in fit[torch.randperm(len(fit), generator=generator)].split(BATCH):
            loss = F.cross_entropy(model(x[batch]), y[batch]) + head.penalty()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val_loss = F.cross_entropy(in_batches(model, x[val], 64), y[val]).item()
        history.append(round(val_loss, 4))
        if val_loss < best_loss:
            best_loss, best_epoch, best_state = val_loss, epoch, copy.deepcopy(model.bridge.state_dict())
        elif epoch - best_epoch >= PATIENCE:
            break
    model.bridge.load_state_dict(best_state)
    trained, trained_test = reading()
    results["trained"] = probe_of(trained, trained_test)[0]
    results["both"] = probe_of(torch.cat([start, trained], 1), torch.cat([start_test, trained_test], 1))[0]

    # Control: an untrained theta of the trained one's size.
    control_state = copy.deepcopy(start_state)
    outer = best_state["filter.outer.weight"]
    drawn = torch.randn(outer.shape, generator=torch.Generator().manual_seed(seed + 1))
    control_state["filter.outer.weight"] = drawn * outer.norm() / drawn.norm()
    model.bridge.load_state_dict(control_state)
    control, control_test = reading()
    results["control"] = probe_of(torch.cat([start, control], 1), torch.cat([start_test, control_test], 1))[0]
    return {"dataset": name, "seed": seed, "best_epoch": best_epoch, "val_history": history,
            "seconds": time.perf_counter() - started, **results}


def report(rows: list[dict]) -> str:
    done = [r for r in rows if "skipped" not in r]
    names = sorted({r["dataset"] for r in done})
    seeds = sorted({r["seed"] for r in done})
    per_set = {n: {k: statistics.mean(r[k]["test_accuracy"] for r in done if r["dataset"] == n) for k in READINGS}
               for n in names}
    lines = [f"# Trained theta against its probe start: {len(names)} UCR sets, seeds {seeds}",
             "", "`python benchmarks/bench_trained_view.py`. Test accuracy (%), mean over seeds. "
             "probe: the untrained bridge's reading; trained: the trained bridge's alone; both: the two side by "
             "side; control: both, with an untrained theta of the trained one's size. Every column's model is a "
             "probe made the same way (C on the fit part's folds, refitted on the whole training split).", "",
             "| dataset | " + " | ".join(READINGS) + " |", "|---|" + "---|" * len(READINGS)]
    lines += [f"| {n} | " + " | ".join(f"{100 * per_set[n][k]:.2f}" for k in READINGS) + " |" for n in names]
    lines += ["", "| reading | mean test accuracy | vs probe | sets above / below the probe | the same without Wine "
              "| mean validation log-loss | sets with lower validation log-loss than the probe's |",
              "|---|---|---|---|---|---|---|"]
    for k in READINGS:
        gains = [per_set[n][k] - per_set[n]["probe"] for n in names]
        dry = [g for n, g in zip(names, gains) if n != "Wine"]
        val = [r[k]["val_loss"] for r in done]
        lower = sum(statistics.mean(r[k]["val_loss"] - r["probe"]["val_loss"] for r in done if r["dataset"] == n) < 0
                    for n in names)
        lines.append(f"| {k} | {100 * statistics.mean(per_set[n][k] for n in names):.2f} % | "
                     f"{100 * statistics.mean(gains):+.2f} | {sum(g > 0 for g in gains)} / {sum(g < 0 for g in gains)} "
                     f"of {len(names)} | {100 * statistics.mean(dry):+.2f} | {statistics.mean(val):.3f} | "
                     f"{'–' if k == 'probe' else lower} |")
    by_seed = [statistics.mean(r["both"]["test_accuracy"] - r["probe"]["test_accuracy"] for r in done
                               if r["seed"] == s) for s in seeds]
    skipped = sorted({r["dataset"] for r in rows if "skipped" in r})
    lines += ["", "both against the probe, per seed: " + ", ".join(f"{100 * g:+.2f}" for g in by_seed) + " points. "
              f"Fit of the trained bridge and the four probes: {statistics.mean(r['seconds'] for r in done):.0f} s "
              "per set and seed on one thread." + (f" Skipped (no validation part): {', '.join(skipped)}."
                                                    if skipped else ""), ""]
    return "\n".join(lines)


def main() -> None:
    from results_io import write_results
    from tqdm.auto import tqdm

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--datasets", help="comma-separated UCR names (default: every set in ../shared/data/ucr)")
    args = parser.parse_args()
    names = args.datasets.split(",") if args.datasets else sorted(p.name for p in DATA.iterdir() if p.is_dir())
    jobs = [(name, seed) for seed in range(args.seeds) for name in names]
    with ProcessPoolExecutor(args.workers) as pool:
        futures = [pool.submit(run_one, *job) for job in jobs]
        rows = [f.result() for f in tqdm(as_completed(futures), total=len(futures), desc="sets x seeds")]
    rows.sort(key=lambda r: (r["dataset"], r["seed"]))
    write_results("trained_view", rows, report(rows))


if __name__ == "__main__":
    main()
