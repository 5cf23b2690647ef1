"""The `xmodal` command: one module per command, assembled here.

    xmodal fit series|sequence|table [options]     reprogram, print probe vs model, save the run
    xmodal evaluate RUN                              scores of a saved run (task and data from the run)
    xmodal predict RUN (--input FILE | --split S) --csv OUT.csv
    xmodal align RUN --source-samples PATH          W1 and the risk bound of a saved run
    xmodal sweep CONFIG                             datasets x presets x seeds on Ray (resumable)
    xmodal presets | sources | datasets | predict-source | synthesize-words

Exit status: 0 done; 1 a user error (XmodalError or OSError: one line, no traceback);
2 a command-line error (argparse); 70 an internal error (a bug: one line naming the file
the traceback was written to); 130 interrupted. Torch is imported by the commands that
need it, so `xmodal --help` and `xmodal presets` stay fast.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
import warnings

from xmodal.cli.arguments import Parser
from xmodal.errors import XmodalError

EXIT_USER_ERROR = 1
EXIT_INTERNAL_ERROR = 70  # EX_SOFTWARE of sysexits.h
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    from xmodal.cli import (
        align,
        datasets,
        evaluate,
        fit,
        predict,
        presets,
        serve,
        sources,
        sweep,
        synthesize,
    )

    parser = Parser(prog="xmodal", description="Cross-modal reprogramming of frozen pretrained models: "
                                     "series -> speech model, sequences -> language model, tables -> image model.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fit.add_parser(commands)
    evaluate.add_parser(commands)
    predict.add_parser(commands)
    align.add_parser(commands)
    presets.add_parser(commands)
    sources.add_parsers(commands)
    datasets.add_parser(commands)
    synthesize.add_parser(commands)
    serve.add_parser(commands)
    sweep.add_parser(commands)
    return parser


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _write_traceback(command: str) -> str:
    handle, path = tempfile.mkstemp(prefix=f"xmodal-{command.replace(' ', '-')}-traceback-", suffix=".txt")
    with open(handle, "w") as stream:
        stream.write(f"xmodal {command}: argv {sys.argv!r}\n")
        traceback.print_exc(file=stream)
    return path


def _close_progress_bars() -> None:
    """Close the progress bars a Ctrl-C left open, so that the line after them starts a line."""
    tqdm = sys.modules.get("tqdm")
    if tqdm is not None:
        for bar in list(getattr(tqdm.tqdm, "_instances", ())):
            bar.close()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # --help (0) or a command-line error (2, argparse's message printed)
        return exit.code if isinstance(exit.code, int) else EXIT_USER_ERROR
    command = getattr(args, "command_name", None) or args.command  # "fit series": a subcommand's full name
    try:
        with warnings.catch_warnings():
            # scikit-learn's FutureWarnings speak to library authors, not to a command's user
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"sklearn\.")
            args.run(args)
    except (XmodalError, OSError) as exc:  # bad input, unwritable --out / --csv, a folder where a file is expected
        print(f"xmodal {command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        _close_progress_bars()
        print(f"xmodal {command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001  (anything else is a bug in xmodal: reported, never a traceback)
        try:
            where = _write_traceback(command)
        except OSError as write_error:
            where = f"(not written: {write_error})"
        print(f"xmodal {command}: internal error (a bug in xmodal): {type(exc).__name__}: {_one_line(exc)}; "
              f"the traceback is in {where}", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
    return 0
