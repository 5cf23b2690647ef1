"""Peak memory and time of `xmodal predict RUN --input FILE` on 10 000 and 100 000 series:
predict streams its input, so its peak memory must not grow with the number of series.

    OMP_NUM_THREADS=1 python benchmarks/bench_predict_stream.py [--sizes 10000,100000] [--formats tsv,npy]
        [--baseline-tree DIR [--baseline-label TEXT]]

A GunPoint run is fitted (epochs 0: the probe start, seconds). Input files of N series
of GunPoint's length are made by repeating the 200 real series of its train and test splits
(.tsv: their UCR lines, label first; .npy: a float64 (N, 150) array). Each `predict` runs in a
fresh child process that reports its own peak RSS (ru_maxrss) and time, and its CSV is
checked to hold N predictions. The row of the 200 series alone is the fixed cost (Python,
torch, the source model and one scored batch). --baseline-tree DIR measures the same with
the xmodal of another checkout (e.g. `git archive HEAD | tar -x -C DIR`: the version that read
the whole input before scoring it). Writes benchmarks/results/predict_stream.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import write_results  # noqa: E402

SHARED = Path(os.environ.get("XMODAL_SHARED", REPO.parent / "shared"))
GUNPOINT = SHARED / "data" / "ucr" / "GunPoint"
REFERENCE = 200  # GunPoint's real series, train and test: the size whose peak is the fixed cost

# The child: the xmodal of a tree (first on the path), its `main`, its own peak RSS.
CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from cli import main
start = time.perf_counter()
code = main(sys.argv[2:])
print(json.dumps({"code": code, "seconds": time.perf_counter() - start,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _environment() -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "HF_HUB_OFFLINE": "1"}
    if (SHARED / "models").is_dir():  # a tree outside the checkout finds no ../shared of its own
        env.setdefault("XMODAL_WEIGHTS_DIR", str(SHARED / "models"))
    return env


def _xmodal(tree: Path, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(tree), *args], capture_output=True, text=True,
                          env=_environment(), check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise SystemExit(f"xmodal {' '.join(args)} failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["code"] != 0:
        raise SystemExit(f"xmodal {' '.join(args)} exited {result['code']}:\n{done.stderr}")
    return result


def _real_series() -> tuple[list[str], np.ndarray]:
    """The UCR lines and the values of GunPoint's 200 real series."""
    lines = [line for split in ("TRAIN", "TEST")
             for line in (GUNPOINT / f"GunPoint_{split}.tsv").read_text().splitlines() if line.strip()]
    values = np.array([[float(v) for v in line.split("\t")[1:]] for line in lines])
    return lines, values


def _input_file(folder: Path, n: int, kind: str, lines: list[str], values: np.ndarray) -> Path:
    path = folder / f"gunpoint_{n}.{kind}"
    if kind == "tsv":
        with open(path, "w") as stream:
            for i in range(n):
                stream.write(lines[i % len(lines)] + "\n")
    else:
        np.save(path, np.resize(values, (n, values.shape[1])))
    return path


def _measure(tree: Path, run: Path, path: Path, n: int, out: Path) -> dict:
    result = _xmodal(tree, "predict", str(run), "--input", str(path), "--csv", str(out), "--overwrite")
    with open(out) as stream:
        rows = sum(1 for _ in stream) - 1
    if rows != n:
        raise SystemExit(f"{out} holds {rows} predictions, expected {n}")
    return {"n": n, "format": path.suffix[1:], "file_mb": path.stat().st_size / 2**20,
            "input_float64_mb": n * 150 * 8 / 2**20, **{k: result[k] for k in ("seconds", "peak_rss_mb")}}


def _markdown(rows: list[dict], baseline: str | None) -> str:
    lines = ["# `xmodal predict --input` on many series: peak memory and time", "",
             f"GunPoint run (pitch+slope tones, BC-ResNet, layers head), {platform.processor() or platform.machine()}, "
             f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '1')}; each predict in a fresh process, peak RSS "
             "(ru_maxrss) of that process. Inputs repeat GunPoint's 200 real series.", "",
             "| xmodal | format | series | file MB | input as float64 MB | peak RSS MB | seconds |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['tree']} | {row['format']} | {row['n']:,} | {row['file_mb']:.1f} | "
                     f"{row['input_float64_mb']:.1f} | {row['peak_rss_mb']:.0f} | {row['seconds']:.1f} |")
    lines += ["", f"{REFERENCE} series: the fixed cost (Python, torch, the source model, one scored batch)."]
    if baseline:
        lines.append(f"`before`: {baseline}, which read the whole input, then scored it.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="numbers of series, comma-separated")
    parser.add_argument("--formats", default="tsv,npy", help="input formats: tsv, npy")
    parser.add_argument("--baseline-tree", help="another checkout's tree to measure beside this one")
    parser.add_argument("--baseline-label", help="what the results call that tree (default: its path)")
    args = parser.parse_args()
    sizes = [REFERENCE] + [int(size) for size in args.sizes.split(",")]
    trees = [("this", REPO)] + ([("before", Path(args.baseline_tree).resolve())] if args.baseline_tree else [])
    lines, values = _real_series()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_predict_stream_") as temporary:
        folder = Path(temporary)
        runs = {name: folder / f"run_{name}" for name, _ in trees}  # each tree reads the runs it writes
        for name, tree in trees:
            _xmodal(tree, "fit", "series", "--dataset", str(GUNPOINT), "--epochs", "0", "--out", str(runs[name]),
                    "--quiet")
        for kind in args.formats.split(","):
            for n in sizes:
                path = _input_file(folder, n, kind, lines, values)
                for name, tree in trees:
                    row = {"tree": name, **_measure(tree, runs[name], path, n, folder / "predictions.csv")}
                    print(json.dumps(row), flush=True)
                    rows.append(row)
                path.unlink()
    baseline = args.baseline_label or args.baseline_tree
    write_results("predict_stream", {"rows": rows, "baseline": baseline, "machine": platform.platform()},
                  _markdown(rows, baseline))


if __name__ == "__main__":
    main()
