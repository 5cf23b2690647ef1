"""A sweep's tables, from its results lines: CSV, markdown, JSON and a scatter plot.

    rows = aggregate(records)                    # one row per (dataset, method), over seeds
    stats = summarise(rows, methods, "minirocket", records)
    write_report(folder, "ucr", rows, stats, "UCR benchmark", published=("V2S paper", {...}))

Accuracy is the test accuracy of each item (nothing is chosen on it). The headline
numbers (mean accuracy, mean rank, wins / ties / losses against the reference method)
are computed on the datasets every summarised method finished; a method that did not
finish every dataset is summarised apart, on its own sets. For reprogramming methods the
report also says how often trained reprogramming beat its probe start: on validation
(the fit kept the trained epochs) and on test, with the mean difference.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from xmodal.sweep.summary import complete_datasets, mean_accuracy, mean_rank, wins_ties_losses


def aggregate(records: list[dict]) -> list[dict]:
    """One row per (dataset, method): accuracy mean and std over seeds, mean fit time."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        groups.setdefault((record["dataset"], record["method"]), []).append(record)
    rows = []
    for (dataset, method), group in sorted(groups.items()):
        accuracies = [r["accuracy"] for r in group]
        rows.append({"dataset": dataset, "method": method, "n_seeds": len(group),
                     "accuracy_mean": float(np.mean(accuracies)), "accuracy_std": float(np.std(accuracies)),
                     "fit_seconds_mean": float(np.mean([r["fit_seconds"] for r in group])),
                     "n_train": group[0]["n_train"], "n_test": group[0]["n_test"], "n_classes": group[0]["n_classes"]})
    return rows


def summarise(rows: list[dict], methods: list[str], reference: str | None, records: list[dict] = ()) -> dict:
    table: dict[str, dict[str, float]] = {}
    for row in rows:
        table.setdefault(row["dataset"], {})[row["method"]] = row["accuracy_mean"]
    cells = {(row["dataset"], row["method"]): row for row in rows}
    methods = [m for m in methods if any(m in t for t in table.values())]
    # The summary compares the methods that finished every dataset; one still running (or
    # given up) would shrink it to the few sets it finished, so it is summarised on its own.
    whole = [m for m in methods if all(m in t for t in table.values())] or methods
    reference = reference if reference in whole else None
    datasets = complete_datasets(table, whole)
    result = {"methods": methods, "summarised_methods": whole, "reference": reference, "datasets_complete": datasets,
              "table": table, "partial": {m: partial_summary(table, m, reference) for m in methods if m not in whole},
              "reprogramming_vs_probe": {m: s for m in methods if (s := against_probe(records, m))}}
    if datasets:
        result["mean_accuracy"] = mean_accuracy(table, whole, datasets)
        result["mean_rank"] = mean_rank(table, whole, datasets)
        # One seed's fit of every set (the mean over seeds, summed), and the fewest seeds any set had.
        result["fit_seconds_all_sets"] = {m: sum(cells[d, m]["fit_seconds_mean"] for d in datasets) for m in whole}
        result["seeds"] = {m: min(cells[d, m]["n_seeds"] for d in datasets) for m in whole}
        if reference:
            result["vs_reference"] = {m: wins_ties_losses(table, m, reference, datasets)
                                      for m in whole if m != reference}
    return result


def partial_summary(table: dict[str, dict[str, float]], method: str, reference: str | None) -> dict:
    """A method that did not finish every dataset, against the reference on the sets it finished."""
    sets = [d for d, t in table.items() if method in t and (reference is None or reference in t)]
    result = {"datasets": len(sets)}
    if sets:
        result["mean_accuracy"] = float(np.mean([table[d][method] for d in sets]))
        if reference:
            result.update(reference_mean_accuracy=float(np.mean([table[d][reference] for d in sets])),
                          vs_reference=wins_ties_losses(table, method, reference, sets))
    return result


def against_probe(records: list[dict], method: str) -> dict | None:
    """How often trained reprogramming beat its probe start: fits kept on validation, and
    datasets where the mean test accuracy beat the probe's (None: no fit trained from a probe
    start, such as a baseline or a probe alone, epochs 0)."""
    fits = [r for r in records
            if r["method"] == method and r.get("probe_test_accuracy") is not None and r.get("epochs_run")]
    if not fits:
        return None
    per_dataset: dict[str, list[float]] = {}
    for r in fits:
        per_dataset.setdefault(r["dataset"], []).append(r["accuracy"] - r["probe_test_accuracy"])
    differences = [float(np.mean(d)) for d in per_dataset.values()]
    kept = [r for r in fits if r.get("reprogramming_kept") is not None]
    return {"fits": len(fits), "kept_on_validation": sum(bool(r["reprogramming_kept"]) for r in kept),
            "fits_compared_on_validation": len(kept), "datasets": len(differences),
            "datasets_above_probe_on_test": sum(d > 1e-9 for d in differences),
            "mean_test_difference": float(np.mean(differences))}


def markdown(rows: list[dict], stats: dict, title: str, published: tuple[str, dict] | None = None) -> str:
    methods, reference = stats["methods"], stats["reference"]
    cells = {(r["dataset"], r["method"]): r for r in rows}
    label, numbers = published or ("", {})
    lines = [f"# {title}", "",
             "Test accuracy (%), mean ± std over seeds (n = seeds finished), and mean fit time in seconds."
             + (f" {label}: the published number." if published else ""), "",
             "| dataset | " + " | ".join(methods) + (f" | {label} |" if published else " |"),
             "|---|" + "---|" * (len(methods) + bool(published))]
    for dataset in sorted(stats["table"]):
        row = []
        for method in methods:
            r = cells.get((dataset, method))
            row.append("–" if r is None else f"{100 * r['accuracy_mean']:.2f} ± {100 * r['accuracy_std']:.2f} "
                                             f"(n={r['n_seeds']}, {r['fit_seconds_mean']:.0f} s)")
        lines.append(f"| {dataset} | " + " | ".join(row) + (f" | {numbers.get(dataset, '')} |" if published else " |"))
    complete = stats["datasets_complete"]
    against = f" vs {reference}" if reference else ""
    lines += ["", f"Summary over the {len(complete)} datasets on which every method below finished:", "",
              f"| method | seeds | mean accuracy (%) | mean rank | wins / ties / losses{against} | fit, one seed of "
              "every set (s) |", "|---|---|---|---|---|---|"]
    for method in stats["summarised_methods"] if complete else []:
        wtl = stats.get("vs_reference", {}).get(method)
        lines.append(f"| {method} | {stats['seeds'][method]} | {100 * stats['mean_accuracy'][method]:.2f} | "
                     f"{stats['mean_rank'][method]:.2f} | {'–' if wtl is None else ' / '.join(map(str, wtl))} | "
                     f"{stats['fit_seconds_all_sets'][method]:.0f} |")
    for method, part in stats["partial"].items():
        if part["datasets"]:
            versus = (f" against {reference}'s {100 * part['reference_mean_accuracy']:.2f} % on the same sets "
                      f"({' / '.join(map(str, part['vs_reference']))} wins / ties / losses)" if reference else "")
            lines.append(f"\nNot finished on every dataset: {method}, {part['datasets']} datasets, "
                         f"{100 * part['mean_accuracy']:.2f} %{versus}.")
    if stats["reprogramming_vs_probe"]:
        lines += ["", "Trained reprogramming against its own probe start (the head fitted on the untrained bridge):",
                  "",
                  "| method | fits kept on validation | datasets above the probe on test | mean test difference "
                  "(points) |", "|---|---|---|---|"]
        for method, s in stats["reprogramming_vs_probe"].items():
            lines.append(f"| {method} | {s['kept_on_validation']} of {s['fits_compared_on_validation']} | "
                         f"{s['datasets_above_probe_on_test']} of {s['datasets']} | "
                         f"{100 * s['mean_test_difference']:+.2f} |")
    return "\n".join(lines) + "\n"


def scatter(stats: dict, path: Path) -> None:
    """Each method's test accuracy against the reference's, one point per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reference = stats["reference"]
    figure, axes = plt.subplots(figsize=(8.5, 5.5))
    lowest = 100.0
    for method, marker in zip([m for m in stats["methods"] if m != reference], "soD^v<>pPX*h" * 4):
        points = [(t[reference], t[method]) for t in stats["table"].values() if reference in t and method in t]
        if points:
            x, y = np.array(points).T * 100
            lowest = min(lowest, x.min(), y.min())
            axes.scatter(x, y, marker=marker, label=f"{method} ({len(points)} datasets)", alpha=0.8)
    # From just below the lowest point, not from 0: accuracies crowd the top corner of a 0-100 square.
    low = max(0.0, 5 * np.floor(lowest / 5) - 2)
    axes.plot([low, 100], [low, 100], color="grey", linewidth=1)
    axes.set(xlabel=f"{reference} test accuracy (%)", ylabel="test accuracy (%)", xlim=(low, 101), ylim=(low, 101),
             title=f"Against {reference} (above the line: better)", aspect="equal")
    if axes.collections:  # beside the square: inside it, the legend hid the points it names
        axes.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120, bbox_inches="tight")  # the legend beside the axes included
    plt.close(figure)


def write_report(folder: Path, name: str, records: list[dict], methods: list[str], reference: str | None,
                 title: str, published: tuple[str, dict] | None = None) -> str:
    """<name>.csv, .md, .json and (with a reference method) .png in `folder`; the markdown."""
    from xmodal.atomic import atomic_write

    rows = aggregate(records)
    stats = summarise(rows, methods, reference, records)
    folder.mkdir(parents=True, exist_ok=True)
    table = _csv(rows)
    text = markdown(rows, stats, title, published)
    atomic_write(folder / f"{name}.csv", table)
    atomic_write(folder / f"{name}.json", json.dumps({"rows": rows, "summary": stats}, indent=2, default=str) + "\n")
    atomic_write(folder / f"{name}.md", text)
    if stats["reference"]:
        scatter(stats, folder / f"{name}.png")
    return text


def _csv(rows: list[dict]) -> str:
    import io

    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=list(rows[0]) if rows else ["dataset"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return stream.getvalue()
