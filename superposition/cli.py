"""`unifiedviz superposition run CONFIG [--set key=value ...] [--out DIR] [--resume | --force]`."""
from __future__ import annotations

import argparse
import json
import logging


def add_subcommand(subparsers) -> None:
    """Add the `superposition` command (with its `run` subcommand) to the main CLI's subparsers."""
    p = subparsers.add_parser(
        "superposition",
        help="train baseline vs active-learning models and measure their superposition",
        description="Superposition experiments from YAML configs (see configs/superposition/).",
    )
    sub = p.add_subparsers(title="commands", metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="run (or resume) an experiment from a config",
        description="Train the baseline and the active-learning model, measure both, write metrics.json, "
                    "plots/ and report.md into the run folder.",
    )
    run.add_argument("config", metavar="CONFIG", help="YAML config, e.g. configs/superposition/digits_smoke.yaml")
    run.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                     help="override a config key, e.g. --set train.epochs=2 (repeatable; values are YAML)")
    run.add_argument("--out", metavar="DIR", help="run folder (default: runs/superposition/<name>)")
    run.add_argument("--resume", action="store_true",
                     help="continue the run in the folder from its last finished round")
    run.add_argument("--force", action="store_true", help="delete an existing run folder and start over")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.set_defaults(func=_run)

    def usage(args: argparse.Namespace) -> int:  # `unifiedviz superposition` alone
        p.print_help()
        return 2

    p.set_defaults(func=usage)


def _run(args: argparse.Namespace) -> int:
    from .config import load_config
    from .experiment import default_out_dir, run_experiment

    cfg = load_config(args.config, args.overrides)
    if args.quiet:
        cfg.train.progress_bar = False
    # Lightning announces the accelerator on every fit (once per round): keep warnings only.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    out = args.out or default_out_dir(cfg)
    metrics = run_experiment(cfg, out, resume=args.resume, force=args.force, progress=not args.quiet)
    if metrics:
        print(f"wrote {out}/report.md and {out}/metrics.json")
        print(json.dumps(_headline(metrics), indent=2))
    return 0


def _headline(metrics: dict) -> dict:
    """Accuracy and the first layer's clustering numbers per run, for the terminal."""
    out = {}
    for run in ("baseline", "active"):
        if run in metrics:
            m = metrics[run]
            layer = next(iter(m["layers"].values()), {})
            out[run] = {"accuracy": m["accuracy"], "silhouette_raw": layer.get("raw", {}).get("silhouette"),
                        "davies_bouldin_raw": layer.get("raw", {}).get("davies_bouldin")}
    return out
