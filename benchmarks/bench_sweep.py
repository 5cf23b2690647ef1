"""The one-seed UCR run on an embedded local Ray (`xmodal sweep`) against the process pool that
benchmarks/ucr.py had before it moved to Ray: wall time, peak memory, and the same numbers.

    OMP_NUM_THREADS=1 python benchmarks/bench_sweep.py [--methods tones,minirocket] [--workers 2]
        [--pool-commit 152c7d4]

Both run the same work items (every UCR set in ../shared/data/ucr x the methods x seed 0) with
the same number of one-thread workers, one after the other on this machine. The pool is the
ucr.py of --pool-commit (its own tree, extracted with `git archive`: its xmodal, its
ProcessPoolExecutor); the sweep is today's `xmodal sweep` on a TOML config of the same
methods. Peak memory is the largest sum of the resident memory of the command's process tree
(the driver, Ray's own processes and the workers, or the pool's workers), sampled every
0.2 s from /proc (pages shared between processes are counted once per process). Both write
only into a temporary folder. Writes benchmarks/results/sweep.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from results_io import write_results  # noqa: E402

SHARED = Path(os.environ.get("XMODAL_SHARED", REPO.parent / "shared"))
UCR = SHARED / "data" / "ucr"
POOL_COMMIT = "152c7d4"  # the last ucr.py with its own ProcessPoolExecutor


def _tree_rss_mb(root: int) -> float:
    """Resident memory of `root` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            rss[int(entry.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue  # a process that ended while being read
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total / 2**20


def measure(command: list[str], cwd: Path, env: dict) -> dict:
    """Wall time and peak process-tree memory of one command; its output kept for the record."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0.0]

    def sample() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], _tree_rss_mb(process.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = process.communicate()[0]
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{output[-3000:]}")
    return {"command": " ".join(command), "wall_seconds": round(time.perf_counter() - start, 1),
            "peak_tree_rss_mb": round(peak[0], 1)}


def _accuracies(path: Path) -> dict:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["dataset"], r["method"], r["seed"]): r["accuracy"] for r in records}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="tones,minirocket", help="ucr.py methods (default tones,minirocket)")
    parser.add_argument("--workers", type=int, default=2, help="one-thread workers of each (default 2)")
    parser.add_argument("--pool-commit", default=POOL_COMMIT, help=f"the pool's ucr.py (default {POOL_COMMIT})")
    args = parser.parse_args(argv)
    methods = args.methods.split(",")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "XMODAL_WEIGHTS_DIR": os.environ.get("XMODAL_WEIGHTS_DIR", str(SHARED / "models"))}
    from ucr import METHOD_SETTINGS

    with tempfile.TemporaryDirectory(prefix="xmodal-bench-sweep-") as temporary:
        work = Path(temporary)
        tree = work / "pool"
        tree.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.pool_commit], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
        pool = measure([sys.executable, str(tree / "benchmarks" / "ucr.py"), "--name", "bench", "--seeds", "1",
                        "--workers", str(args.workers), "--methods", args.methods, str(UCR)], tree, env)
        config = work / "bench.toml"
        lines = ['name = "bench"', 'task = "series"', f'datasets = ["{UCR}"]', "seeds = 1"]
        for method in methods:
            settings = ", ".join(f"{k} = {json.dumps(v)}" for k, v in METHOD_SETTINGS["full"][method].items())
            lines.append(f'methods.{method} = {{ {settings} }}')
        config.write_text("\n".join(lines) + "\n")
        xmodal = str(Path(sys.executable).parent / "xmodal")
        ray = measure([xmodal, "sweep", str(config), "--out", str(work / "sweep"), "--workers", str(args.workers),
                       "--quiet"], work, env)
        old, new = _accuracies(tree / "benchmarks" / "results" / "bench_runs.jsonl"), \
            _accuracies(work / "sweep" / "results.jsonl")
    same = sorted(set(old) & set(new))
    differences = [abs(old[key] - new[key]) for key in same]
    result = {"methods": methods, "workers": args.workers, "pool_commit": args.pool_commit, "items": len(new),
              "pool": pool, "ray": ray, "items_compared": len(same),
              "items_with_different_accuracy": sum(d > 1e-12 for d in differences),
              "max_accuracy_difference": max(differences, default=None),
              "wall_ratio_ray_over_pool": round(ray["wall_seconds"] / pool["wall_seconds"], 3),
              "memory_ratio_ray_over_pool": round(ray["peak_tree_rss_mb"] / pool["peak_tree_rss_mb"], 3)}
    markdown = "\n".join([
        "# The one-seed UCR run: local Ray (`xmodal sweep`) against the old process pool", "",
        f"{len(new)} work items ({', '.join(methods)} on the {len(new) // len(methods)} UCR sets of ../shared, "
        "seed 0), "
        f"{args.workers} one-thread workers each, one after the other on this machine (`python "
        "benchmarks/bench_sweep.py`). Peak memory: the largest sum of resident memory over the command's process "
        "tree, sampled every 0.2 s.", "",
        "| runner | wall time (s) | peak memory, process tree (MB) |", "|---|---|---|",
        f"| process pool (ucr.py at {args.pool_commit}) | {pool['wall_seconds']} | {pool['peak_tree_rss_mb']} |",
        f"| local Ray (`xmodal sweep`) | {ray['wall_seconds']} | {ray['peak_tree_rss_mb']} |",
        f"| ratio Ray / pool | {result['wall_ratio_ray_over_pool']} | {result['memory_ratio_ray_over_pool']} |", "",
        f"Same numbers: {len(same)} items in both, {result['items_with_different_accuracy']} with a different test "
        f"accuracy (largest difference {result['max_accuracy_difference']}).", ""])
    write_results("sweep", result, markdown)


if __name__ == "__main__":
    main()
