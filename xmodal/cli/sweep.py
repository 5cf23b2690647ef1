"""`xmodal sweep CONFIG`: every (dataset, method, seed) of a TOML / YAML file, run on Ray.

    xmodal sweep demo.toml                                  # embedded local Ray, one CPU per item
    xmodal sweep demo.toml --address 10.0.0.5:6379 --gpus-per-item 1
    xmodal sweep demo.toml --report-only                    # rebuild the tables, fit nothing

Writes OUT (default runs/sweeps/<name>): items/<item>/ (each a run folder of `xmodal fit`,
with metrics.json), logs/, results.jsonl (one line per finished item: run again to resume),
failures.jsonl, and <name>.md / .csv / .json / .png. The config format is in
xmodal/sweep/config.py and docs/sweeps.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """config (TOML; YAML takes the same keys):
  name = "demo"
  task = "series"
  datasets = ["GunPoint", "Coffee"]     # names, files, dataset folders or folders of UCR datasets
  data_dir = "../shared/data/ucr"       # relative paths are read from the config's folder
  seeds = 2
  presets = ["best", "v2s"]
  baselines = ["minirocket"]
  [settings]
  epochs = 20
  [grid]
  lr = [0.01, 0.001]
"""


def add_parser(commands) -> None:
    sweep = commands.add_parser("sweep", help="run datasets x presets x seeds of a TOML/YAML config on Ray; resumable",
                                description="Run every (dataset, method, seed) of a sweep config as a Ray task: an "
                                            "embedded local Ray by default, or an existing cluster.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sweep.add_argument("config", help="the sweep file (.toml, .yaml or .yml)")
    sweep.add_argument("--out", metavar="FOLDER", help="where items, results and tables go "
                                                       "(default runs/sweeps/<name>); a second run resumes there")
    sweep.add_argument("--address", metavar="ADDRESS",
                       help="a running Ray cluster: auto, HOST:PORT or ray://HOST:PORT (default: start a local Ray)")
    sweep.add_argument("--workers", type=int, metavar="N",
                       help="CPUs of the local Ray (default: all of this machine's); not with --address")
    sweep.add_argument("--cpus-per-item", type=float, default=1, metavar="N",
                       help="CPUs per item (default 1); an item's torch threads follow OMP_NUM_THREADS, which Ray "
                            "sets to this when the environment does not")
    sweep.add_argument("--gpus-per-item", type=float, default=0, metavar="N",
                       help="GPUs per item, on a cluster that has them (default 0)")
    sweep.add_argument("--reference", metavar="METHOD",
                       help="the method the others are compared with (default: minirocket, logistic or composition "
                            "when the sweep has it)")
    sweep.add_argument("--report-only", action="store_true", help="rebuild the tables from results.jsonl; fit nothing")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.set_defaults(run=run_sweep_command, command_name="sweep")


# The classical baseline of each task that the tables compare with, when the sweep runs it.
REFERENCES = ("minirocket", "logistic", "composition")


def run_sweep_command(args: argparse.Namespace) -> None:
    from xmodal.errors import DataError
    from xmodal.sweep import load_config, read_results, run_sweep, write_report
    from xmodal.sweep.item import result_key

    if args.workers is not None and (args.address or args.workers < 1):
        raise DataError("--workers sets the size of a local Ray: give a whole number >= 1, and no --address")
    if args.cpus_per_item <= 0 or args.gpus_per_item < 0:
        raise DataError("--cpus-per-item must be > 0 and --gpus-per-item >= 0")
    config = load_config(args.config)
    out = Path(args.out or Path("runs") / "sweeps" / config.name)
    reference = args.reference or next((m for m in REFERENCES if m in config.methods), None)
    if reference is not None and reference not in config.methods:
        raise DataError(f"--reference {reference} is not a method of this sweep ({', '.join(config.methods)})")
    items = config.items()
    print(f"sweep {config.name}: {len(config.datasets)} datasets x {len(config.methods)} methods x "
          f"{len(config.seeds)} seeds = {len(items)} items; results in {out}", flush=True)
    if not args.report_only:
        outcome = run_sweep(config, out, address=args.address, workers=args.workers,
                            cpus_per_item=args.cpus_per_item, gpus_per_item=args.gpus_per_item,
                            progress=not args.quiet)
        print(f"{len(outcome.finished)} items run in {outcome.seconds:.0f} s, {outcome.skipped} already done, "
              f"{len(outcome.failed)} failed" + (f" (see {out / 'failures.jsonl'}; run again to retry)"
                                                 if outcome.failed else ""), flush=True)
    wanted = {item.key for item in items}
    records = [r for r in read_results(out / "results.jsonl") if result_key(r) in wanted]
    if records:
        print(write_report(out, config.name, records, list(config.methods), reference, f"Sweep {config.name}"))
    else:
        print("no finished items to report yet")
    if not args.report_only and outcome.failed:
        raise DataError(f"{len(outcome.failed)} of {len(items)} items failed twice; the first: "
                        f"{outcome.failed[0]['error']}")
