"""`xmodal presets [--task T]`: every named preset with its description, the figure that
justifies it and its complete settings. Torch-free."""

from __future__ import annotations

import argparse
import textwrap

from xmodal.cli.arguments import shown
from xmodal.settings import TASKS


def add_parser(commands) -> None:
    presets = commands.add_parser("presets", help="the named settings of each task, with the figures behind them")
    presets.add_argument("--task", choices=TASKS, help="only this task's presets")
    presets.set_defaults(run=run_presets)


def run_presets(args: argparse.Namespace) -> None:
    from xmodal.presets import DEFAULT_PRESET, PRESETS

    wrap = textwrap.TextWrapper(width=100, initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False)
    first = True
    for (task, name), preset in PRESETS.items():
        if args.task and task != args.task:
            continue
        if not first:
            print()
        first = False
        default = " (default)" if name == DEFAULT_PRESET else ""
        print(f"{task} {name}{default}: `xmodal fit {task} --preset {name}`")
        print(wrap.fill(preset.description))
        print(wrap.fill(f"figure: {preset.figure}"))
        values = ", ".join(f"{key}={shown(value)}" for key, value in preset.settings.items())
        print(wrap.fill(f"settings: {values}"))
