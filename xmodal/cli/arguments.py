"""Command-line flags generated from the settings definitions (xmodal.settings).

A setting `foo_bar` becomes `--foo-bar`: a bool one `--foo-bar / --no-foo-bar`, a str one
with choices, an int or float one checked by the setting itself (a value it refuses is an
argparse error, exit 2). Every flag defaults to None, "the preset's value", and its help
shows that value in the default preset. Torch-free.
"""

from __future__ import annotations

import argparse
from typing import ClassVar

from xmodal.errors import DataError
from xmodal.presets import DEFAULT_PRESET, get_preset, preset_names
from xmodal.settings import DEVICE, SETTINGS, Setting


def shown(value) -> str:
    """A setting value as a user types it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _escape(text: str) -> str:
    return text.replace("%", "%%")  # argparse %-formats help strings


def _converter(setting: Setting):
    def convert(text: str):
        try:
            value = setting.kind(text)
        except ValueError:
            kind = "a whole number" if setting.kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        try:
            return setting.check(value)
        except DataError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = setting.kind.__name__  # argparse names the type in its messages
    return convert


def add_setting_flags(parser: argparse.ArgumentParser, task: str) -> None:
    """`--preset` and one flag per setting of `task`, in the settings' order."""
    defaults = get_preset(task, DEFAULT_PRESET).settings
    parser.add_argument("--preset", choices=preset_names(task), default=DEFAULT_PRESET,
                        help=f"named settings to start from (default {DEFAULT_PRESET}; `xmodal presets --task {task}` "
                             "lists them); the flags below override single settings")
    group = parser.add_argument_group(f"{task} settings (each defaults to the preset's value)")
    for setting in SETTINGS[task].values():
        help_text = _escape(f"{setting.help} (default: {shown(defaults[setting.name])} in preset {DEFAULT_PRESET})")
        if setting.kind is bool:
            group.add_argument(setting.flag, dest=setting.name, action=argparse.BooleanOptionalAction, default=None,
                               help=help_text)
        elif setting.kind is str:
            group.add_argument(setting.flag, dest=setting.name, choices=setting.choices, default=None,
                               metavar=None if setting.choices else "TEXT", help=help_text)
        else:
            group.add_argument(setting.flag, dest=setting.name, type=_converter(setting), default=None,
                               metavar="N" if setting.kind is int else "X", help=help_text)


def add_device_flag(parser: argparse.ArgumentParser) -> None:
    """--device of evaluate / predict / align, from the fit setting's definition: where a saved
    run is loaded and predicts, whatever device it was trained on."""
    parser.add_argument(DEVICE.flag, dest=DEVICE.name, choices=DEVICE.choices, default=None,
                        help=_escape(f"{DEVICE.help}; a saved run loads on any (default: auto)"))


def setting_overrides(task: str, args: argparse.Namespace) -> dict:
    """The settings given on the command line (None: not given, the preset's value)."""
    return {name: getattr(args, name) for name in SETTINGS[task] if getattr(args, name, None) is not None}


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose subcommands refuse unknown arguments themselves, so the
    message names the command (`xmodal fit sequence: error: unrecognized arguments:
    --query-budget 5`) and says which command takes a flag meant for another."""

    flag_owners: ClassVar[dict[str, list[str]]] = {}  # flag -> the commands that take it (set on the fit parsers)

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}{self._hint(extras)}")
        return namespace, extras

    def _hint(self, extras: list[str]) -> str:
        hints = []
        for flag in (extra.split("=", 1)[0] for extra in extras if extra.startswith("--")):
            owners = [owner for owner in self.flag_owners.get(flag, []) if owner != self.prog]
            if flag == "--task" and self.prog == "xmodal fit":
                hints.append("the task is a word: xmodal fit series|sequence|table")
            elif owners:
                hints.append(f"{flag} is a flag of {' and '.join(owners)}")
        return f" ({'; '.join(hints)})" if hints else ""
