"""`unifiedviz` command line: layers, visualize, attack, superposition.

User errors print one line and exit with code 2; no traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from .cli_args import add_model_arguments, model_from_args
from .errors import UnifiedVizError


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
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
    parser = argparse.ArgumentParser(
        prog="unifiedviz",
        description="Feature visualisation, adversarial inputs and superposition metrics for CNNs and ViTs.",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_layers(sub)
    for module in _subcommand_modules():
        module.add_subcommand(sub)
    return parser


def _subcommand_modules():
    """The packages that contribute subcommands (imported here so `--help` lists them all)."""
    from importlib import import_module

    found = []
    for name in ("unifiedviz.visualize_cli", "adversarial.cli", "superposition.cli"):
        try:
            found.append(import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a missing dependency inside the module is a real error
                raise
    return found


def _add_layers(sub) -> None:
    p = sub.add_parser("layers", help="list a model's layers with canonical output shape and layout")
    add_model_arguments(p)
    p.add_argument("--filter", metavar="PATTERN", help="only layers whose name matches (substring or glob)")
    p.set_defaults(func=_run_layers)


def _run_layers(args: argparse.Namespace) -> int:
    from .adapters import Adapter

    adapter = Adapter(model_from_args(args))
    infos = adapter.layers(args.filter)
    if not infos:
        raise UnifiedVizError(f"no layer matches {args.filter!r}: try a shorter pattern or no --filter")
    rows = [(i.name, i.module_type, "x".join(map(str, i.shape)), i.describe()) for i in infos]
    header = ("layer", "type", "shape", "layout")
    widths = [max(len(r[c]) for r in rows + [header]) for c in range(4)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
