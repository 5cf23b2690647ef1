"""Black-box reprogramming through a real HTTP endpoint, beside white-box and the majority rate.

    python benchmarks/bench_blackbox.py [--series-budget 5000] [--table-budget 50000]
                                        [--price-per-1000 1.20] [--datasets GunPoint,...]

`xmodal serve efficientnet-lite0` runs in this process (uvicorn on 127.0.0.1, an API key,
the default limits); every black-box fit talks to it only through HttpBlackBoxSource:
class probabilities over HTTP, every sample sent counted. The recipe is the `blackbox`
preset of each task (series: the series as an image, a probe of the 1 000 class
log-probabilities, then a 48-number smooth perturbation trained zeroth-order, q = 10
directions, with 5 000 of the preset's 20 000 queries so that the benchmark fits about an
hour; table: one image per feature, a probe of their 20 x 1 000 class log-probabilities,
no training: it spends 16 000 of its 50 000 queries), seed 0; the test
predictions go through the endpoint too (not counted in the training budget). White-box:
the same settings with backpropagation and at most WHITE_BOX_EPOCHS epochs. UCR sets: their
standard splits; German credit: a stratified 80/20 split, seed 0, with logistic
regression's ROC-AUC beside. Cost: queries at an assumed price per 1 000 (default USD
1.20: Clarifai's pre-built models in its 2018 price list, the API family BAR reprogrammed).
Writes benchmarks/results/blackbox.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from results_io import RESULTS, write_results

SHARED = REPO.parent / "shared" / "data"
UCR_SETS = ("GunPoint", "ItalyPowerDemand", "ECG200", "Coffee")
TASKS = (*UCR_SETS, "german_credit")
GERMAN = SHARED / "tabular" / "german_credit_uci"
SOURCE = "efficientnet-lite0"
WHITE_BOX_EPOCHS = 3
# Goals of the issue (single seed): accuracy for the UCR sets, for German credit logistic
# regression's ROC-AUC minus 0.05.
GOALS = {"GunPoint": 0.85, "ItalyPowerDemand": 0.90}
BAR_NOTE = ("BAR (Tsai, Chen & Ho, ICML 2020, section 4.4) reprogrammed Clarifai.com's prediction APIs for medical "
            "image tasks and reports the cost in US dollars per task; its exact figure could not be re-checked "
            "offline here, so the table states our own queries and the price assumption instead")


def white_box_settings(task: str) -> dict:
    """The blackbox preset's settings without its query budget, trained by backpropagation."""
    from xmodal.presets import PRESETS

    settings = {k: v for k, v in PRESETS[task, "blackbox"].settings.items() if k != "query_budget"}
    return {**settings, "epochs": WHITE_BOX_EPOCHS}


def black_box_record(model, url_source, seconds: float) -> dict:
    result = model.fit_result_
    return {"queries": result.queries, "sent_over_http": url_source.sent, "seconds": seconds,
            "best_epoch": result.best_epoch, "epochs_run": result.epochs_run, "stopped_by": result.stopped_by,
            "trained_beat_probe_on_validation": result.best_epoch > 0, "probe_val_accuracy": result.probe_val_accuracy,
            "val_accuracy": result.val_accuracy,
            "curve": [{"queries": r["queries"], "val_accuracy": r.get("val_accuracy")} for r in result.history]}


def series_task(name: str, url: str, budget: int) -> dict:
    from xmodal.data.ucr import load_ucr
    from xmodal.estimators.series import V2SClassifier

    data = load_ucr(name, SHARED / "ucr")
    x_train, x_test = data.x_train[:, None, :], data.x_test[:, None, :]

    def accuracy(probabilities):
        return float((model.classes_[probabilities.argmax(axis=1)] == data.y_test).mean())

    start = time.perf_counter()
    model = V2SClassifier("blackbox", source=url, query_budget=budget, random_state=0).fit(x_train, data.y_train)
    record = black_box_record(model, model.reprogrammer_.source, time.perf_counter() - start)
    record.update(test=accuracy(model.predict_proba(x_test)), probe_test=accuracy(model.probe_predict_proba(x_test)))
    start = time.perf_counter()
    model = V2SClassifier("v2s", **white_box_settings("series"), random_state=0).fit(x_train, data.y_train)
    white = {"test": accuracy(model.predict_proba(x_test)), "seconds": time.perf_counter() - start,
             "trained_beat_probe_on_validation": model.fit_result_.best_epoch > 0}
    majority = max(float(np.mean(data.y_test == c)) for c in data.classes)
    return {"kind": "series", "metric": "accuracy", "n_train": len(data.y_train), "n_test": len(data.y_test),
            "majority": majority, "black_box": record, "white_box": white, "goal": GOALS.get(name)}


def table_task(url: str, budget: int) -> dict:
    from sklearn.metrics import roc_auc_score

    from xmodal.baselines import fit_predict
    from xmodal.data.tables import load_table, split_table
    from xmodal.estimators.table import TableClassifier

    train, test = split_table(load_table(GERMAN), 0.2, seed=0)
    classes = np.unique(train.labels)

    def auc(probabilities):
        return float(roc_auc_score(test.labels == classes[1], probabilities[:, 1]))

    start = time.perf_counter()
    model = TableClassifier("blackbox", source=url, query_budget=budget, random_state=0).fit(train.features,
                                                                                             train.labels)
    record = black_box_record(model, model.reprogrammer_.source, time.perf_counter() - start)
    record.update(test=auc(model.predict_proba(test.features)))
    # untrained, the model is its probe start: no second pass over the test rows
    record["probe_test"] = auc(model.probe_predict_proba(test.features)) if record["epochs_run"] else record["test"]
    start = time.perf_counter()
    model = TableClassifier("best", **white_box_settings("table"), random_state=0).fit(train.features, train.labels)
    white = {"test": auc(model.predict_proba(test.features)), "seconds": time.perf_counter() - start,
             "trained_beat_probe_on_validation": model.fit_result_.best_epoch > 0}
    logistic = auc(fit_predict("table", "logistic", train.features, train.labels, test.features, 0))
    return {"kind": "table", "metric": "ROC-AUC", "n_train": len(train.labels), "n_test": len(test.labels),
            "majority": 0.5, "black_box": record, "white_box": white, "logistic_regression": logistic,
            "goal": logistic - 0.05}


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    names = list(report["tasks"])
    figure, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.4), squeeze=False)
    for axis, name in zip(axes[0], names):
        task = report["tasks"][name]
        box = task["black_box"]
        curve = [point for point in box["curve"] if point["val_accuracy"] is not None]
        axis.plot([p["queries"] for p in curve], [p["val_accuracy"] for p in curve], ".-", color="C0", alpha=0.6,
                  label="black-box, validation accuracy")
        start_queries = curve[0]["queries"] if curve else box["queries"]  # untrained: the probe is the end
        axis.plot([start_queries, box["queries"]], [box["probe_test"], box["test"]], "o", color="C3",
                  label=f"black-box test {task['metric']} (probe start, end)")
        axis.axhline(task["white_box"]["test"], color="C1", ls="--", label="white-box test")
        axis.axhline(task["majority"], color="grey", ls=":", label="majority / chance")
        if task["goal"] is not None:
            axis.axhline(task["goal"], color="C2", ls="-.", lw=0.8, label="goal")
        axis.set_title(f"{name} ({task['metric']})", fontsize=9)
        axis.set_xlabel("queries asked of the API (budget count)")
        axis.set_ylim(0.3, 1.02)
        axis.set_xlim(left=0)
        axis.xaxis.set_major_locator(MaxNLocator(4))
    axes[0][0].set_ylabel("accuracy / ROC-AUC")
    axes[0][0].legend(loc="lower right", fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def kept(box: dict) -> str:
    if not box["epochs_run"]:
        return "not trained"
    return "yes" if box["trained_beat_probe_on_validation"] else "no"


def markdown(report: dict) -> str:
    price = report["price_per_1000"]
    lines = [f"# Black-box reprogramming through HTTP (`xmodal serve {SOURCE}`), seed 0", "",
             f"Machine: {report['machine']}. Recipe: the `blackbox` preset of each task, with a budget of "
             f"{report['series_budget']} queries per UCR set (the preset allows 20 000) and "
             f"{report['table_budget']} for German credit. German credit is drawn one image per feature (20 "
             "queries per row), so the probe alone reads 16 000 queries and θ is not trained. White-box: the "
             "same settings, backpropagation, at most "
             f"{WHITE_BOX_EPOCHS} epochs. Queries are samples asked of the API, the probe's reading of the "
             f"training data and the validation scoring included; cost of those sent, at an assumed USD {price:.2f} "
             "per 1 000 "
             "(Clarifai's 2018 price for its pre-built models). " + BAR_NOTE + ".", "",
             "![accuracy against queries](blackbox.png)", "",
             "| task | metric | train / test | majority | white-box | black-box probe start | black-box | goal | "
             "queries | sent over HTTP | trained θ kept | wall s | cost USD |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, task in report["tasks"].items():
        box = task["black_box"]
        goal = "–" if task["goal"] is None else f"≥ {task['goal']:.3f}"
        lines.append(f"| {name} | {task['metric']} | {task['n_train']} / {task['n_test']} | {task['majority']:.3f} | "
                     f"{task['white_box']['test']:.3f} | {box['probe_test']:.3f} | {box['test']:.3f} | {goal} | "
                     f"{box['queries']} | {box['sent_over_http']} | {kept(box)} | "
                     f"{box['seconds']:.0f} | {box['sent_over_http'] / 1000 * price:.2f} |")
    if "german_credit" in report["tasks"]:
        lines += ["", f"German credit, logistic regression on the same split: ROC-AUC "
                      f"{report['tasks']['german_credit']['logistic_regression']:.3f}."]
    lines += ["", "\"queries\": what the query budget counts, every sample asked about. \"sent over HTTP\": what "
                  "reached the server and what an API bills (the cost column): the client answers an input it has "
                  "asked about before from its journal of answers (xmodal/http_source.py); German credit's 16 000 "
                  "per-feature images hold 868 distinct ones.",
              "", "\"trained θ kept\": whether zeroth-order training beat the probe start on the validation part "
                  "(log-loss); where it did not, the probe start, refitted on all training samples, is the model."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series-budget", type=int, default=5000)
    parser.add_argument("--table-budget", type=int, default=50000)
    parser.add_argument("--price-per-1000", type=float, default=1.20, help="assumed USD per 1000 queries")
    parser.add_argument("--datasets", default=",".join(TASKS),
                        help="tasks to run; the others keep their record in blackbox.json from the last run")
    args = parser.parse_args()
    import torch

    from adapters_modal import load_source
    from adapters_modal.http import API_KEY_VARIABLE
    from xmodal.serve import BackgroundServer, create_app

    torch.set_num_threads(1)
    key = secrets.token_hex(16)
    os.environ[API_KEY_VARIABLE] = key  # how an http: source name gets its key (adapters_modal.http)
    report = {"series_budget": args.series_budget, "table_budget": args.table_budget,
              "price_per_1000": args.price_per_1000, "source": SOURCE,
              "machine": f"{platform.machine()}, torch {torch.__version__}, 1 thread, server in the same process",
              "tasks": {}}
    wanted = args.datasets.split(",")
    if unknown := sorted(set(wanted) - set(TASKS)):
        parser.error(f"unknown tasks {unknown}; choose among {', '.join(TASKS)}")
    last = RESULTS / "blackbox.json"
    last_tasks = json.loads(last.read_text())["tasks"] if last.is_file() else {}
    with BackgroundServer(create_app(load_source(SOURCE), api_key=key)) as server:
        for name in wanted:
            task = table_task(server.url, args.table_budget) if name == "german_credit" else \
                series_task(name, server.url, args.series_budget)
            report["tasks"][name] = task
            print(name, {k: v for k, v in task["black_box"].items() if k != "curve"}, task["white_box"],
                  file=sys.stderr, flush=True)
    report["tasks"] = {name: report["tasks"].get(name, last_tasks.get(name)) for name in TASKS
                       if name in report["tasks"] or name in last_tasks}
    plot(report, RESULTS / "blackbox.png")
    write_results("blackbox", report, markdown(report))


if __name__ == "__main__":
    main()
