"""`unifiedviz superposition run CONFIG [--set key=value ...] [--out DIR] [--resume | --force]`.

The experiment's keys are the nested config of superposition/config.py (`--set train.epochs=2`);
the command's own flags (`--out`, `--resume`, `--force`, `--threads`, `--quiet`) come from the
shared options layer like every other command's.
"""
from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass

from unifiedviz.cli.command import Command, register
from unifiedviz.errors import UnifiedVizError
from unifiedviz.options import ResumeOptions, add_arguments, option, resolve


@dataclass
class RunOptions(ResumeOptions):
    config: str | None = option(None, "YAML experiment config, e.g. configs/superposition/digits_smoke.yaml",
                                positional=True)
    out: str | None = option(None, "run folder (default runs/superposition/<name>): new, or this command's own",
                             metavar="DIR")


@register("run")
class SuperpositionRun(Command):
    group = "superposition"
    group_help = "train baseline vs active-learning models and measure their superposition"
    help = "run (or resume) an experiment from a config"
    description = ("Train the baseline and the active-learning model, measure both, write metrics.json, plots/ and "
                   "report.md into the run folder. Experiment keys: the config file, then --set KEY=VALUE "
                   "(e.g. --set train.epochs=2); values are YAML (numbers such as 1/20 and 1e-3 read as numbers).")
    options = RunOptions

    def add_to(self, sub) -> argparse.ArgumentParser:
        parser = sub.add_parser(self.name, help=self.help, description=self.description)
        add_arguments(parser, RunOptions, config=False)
        parser.add_argument("--config", dest="_config_flag", metavar="YAML", default=None,
                            help="the experiment config (same as CONFIG)")
        parser.add_argument("--set", dest="_set", metavar="KEY=VALUE", action="append", default=[],
                            help="override an experiment key, e.g. --set train.epochs=2 (repeatable)")
        parser.set_defaults(_command=self)
        return parser

    def invoke(self, args: argparse.Namespace) -> int:
        overrides = args._set
        args._set = []  # experiment keys, not this command's options
        opts = resolve(RunOptions, args)
        if args._config_flag:
            if opts.config and opts.config != args._config_flag:
                raise UnifiedVizError("give the experiment config once: CONFIG or --config, not both")
            opts.config = args._config_flag
        if opts.threads is not None:
            import torch

            torch.set_num_threads(opts.threads)
        return self.run(opts, overrides)

    def run(self, opts: RunOptions, overrides: list[str]) -> int:
        from .config import load_config
        from .experiment import default_out_dir, run_experiment

        cfg = load_config(opts.config, overrides)
        if opts.quiet:
            cfg.train.progress_bar = False
        # Lightning announces the accelerator on every fit (once per round): keep warnings only.
        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
        out = opts.out or default_out_dir(cfg)
        metrics = run_experiment(cfg, out, resume=opts.resume, force=opts.force, progress=not opts.quiet)
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
