"""`xmodal datasets`: the UCR datasets known by name (bundled with sktime, or in --data-dir)."""

from __future__ import annotations

import argparse
from pathlib import Path

from xmodal.errors import XmodalError


def add_parser(commands) -> None:
    datasets = commands.add_parser("datasets", help="UCR datasets known by name (for `xmodal fit series --dataset`)")
    datasets.add_argument("--data-dir", help="also list the UCR-layout datasets in this folder")
    datasets.set_defaults(run=run_datasets)


def run_datasets(args: argparse.Namespace) -> None:
    from xmodal.data.ucr import bundled_names, folder_names

    print("bundled with sktime: " + ", ".join(bundled_names()))
    if args.data_dir:
        if not Path(args.data_dir).is_dir():
            raise XmodalError(f"--data-dir {args.data_dir} is not a folder")
        print(f"in {args.data_dir}: " + ", ".join(folder_names(args.data_dir)))
