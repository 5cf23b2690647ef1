"""Time and peak memory of the W1 estimators (xmodal.alignment) on this machine.

    python benchmarks/bench_alignment.py [--sizes 1000,5000,20000,100000] [--dims 35,384]

Writes benchmarks/results/alignment.json and alignment.md. Each case runs in a
fresh child process, so its peak RSS (ru_maxrss) is its own; the table gives
the peak above the RSS right after the imports (POT imports torch when it is
installed, about 600 MB), so it counts the two input arrays and the work.
Data: n source points from N(0, I) and n target points from N(m, 1.5^2 I),
|m| = 1, in dimension d. Target (issue 4): auto answers within 10 s for
100k x 384.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from results_io import write_results

REPO = Path(__file__).resolve().parents[1]
METHODS = ("exact", "sinkhorn", "sliced", "auto")

CHILD = """
import json, resource, sys, time
import numpy as np
from xmodal.alignment import wasserstein1
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
n, d, method = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
source = rng.normal(size=(n, d))
target = rng.normal(size=(n, d)) * 1.5 + 1 / np.sqrt(d)
result = wasserstein1(source, target, method)
print(json.dumps({"n": n, "d": d, "method": method, "used": result.method, "value": result.value,
                  "interval": result.interval, "seconds": result.seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "baseline_rss_mb": baseline,
                  "inputs_mb": 2 * n * d * 8 / 2**20}))
"""


def run_case(n: int, d: int, method: str, timeout: float) -> dict:
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, str(n), str(d), method], capture_output=True,
                              text=True, cwd=REPO, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"n": n, "d": d, "method": method, "error": f"did not finish in {timeout:.0f} s"}
    if done.returncode != 0:
        return {"n": n, "d": d, "method": method, "error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout) | {"wall_seconds": time.perf_counter() - start}


def markdown(rows: list[dict]) -> str:
    lines = ["| n | d | method | used | W1 | seconds | peak RSS above imports (MB) |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['n']} | {row['d']} | {row['method']} | failed: {row['error']} | | | |")
            continue
        interval = "" if row["interval"] is None else f" [{row['interval'][0]:.3f}, {row['interval'][1]:.3f}]"
        lines.append(f"| {row['n']} | {row['d']} | {row['method']} | {row['used']} | {row['value']:.3f}{interval} "
                     f"| {row['seconds']:.2f} | {row['peak_rss_mb'] - row['baseline_rss_mb']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000,20000,100000")
    parser.add_argument("--dims", default="35,384")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed per case")
    args = parser.parse_args()
    rows = []
    for d in map(int, args.dims.split(",")):
        for n in map(int, args.sizes.split(",")):
            for method in args.methods.split(","):
                row = run_case(n, d, method, args.timeout)
                rows.append(row)
                print(json.dumps(row), flush=True)
    write_results("alignment", rows, markdown(rows))


if __name__ == "__main__":
    main()
