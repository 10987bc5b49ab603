"""The `unifiedviz` command line: one subcommand per registered `Command`.

User errors print one line and exit with code 2; no traceback. Every command reads its options
through `unifiedviz.options` (flags, `--config`, `--set`, `--threads`), so they all parse numbers,
lists and choices the same way.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from ..errors import UnifiedVizError
from .command import COMMANDS, Command, ModelOptions, load_model_from, model_source

__all__ = ["main", "build_parser", "COMMANDS", "Command", "ModelOptions", "load_model_from",
           "model_source"]


class _Parser(argparse.ArgumentParser):
    """argparse's own usage errors (unknown flag, bad choice) also exit 2 on one line."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    command: Command | None = getattr(args, "_command", None)
    if command is None:
        (getattr(args, "_parser", None) or parser).print_help()
        return 2
    try:
        return int(command.invoke(args) or 0)
    except UnifiedVizError as exc:
        print(f"unifiedviz: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("unifiedviz: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="unifiedviz",
        description="Feature visualisation, adversarial inputs and superposition metrics for CNNs and ViTs.",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)
    groups: dict[str, argparse._SubParsersAction] = {}
    for entry in COMMANDS.entries():
        command: Command = entry.obj
        target = sub
        if command.group:  # e.g. `superposition run`
            if command.group not in groups:
                gp = sub.add_parser(command.group, help=command.group_help, description=command.group_help)
                gp.set_defaults(_parser=gp)
                groups[command.group] = gp.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)
            target = groups[command.group]
        command.add_to(target)
    return parser


if __name__ == "__main__":
    sys.exit(main())
