"""What every subcommand is made of: a typed options class, a run function, a registration.

    @COMMANDS.register("layers")
    class Layers(Command):
        options = LayersOptions
        def run(self, opts): ...

A new command is one file in `unifiedviz/cli/` (or a package's `cli.py` listed below) plus its
registration; the parser, `--config`/`--set`/`--threads` and the error contract come with it.
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from .. import options as opt
from ..errors import UnifiedVizError
from ..options import CommandOptions, option
from ..registry import Registry

#: Subcommands; modules imported on first use (packages: every submodule).
COMMANDS: Registry = Registry("command", modules=["unifiedviz.cli", "adversarial.cli", "superposition.cli",
                                               "superposition.dictionary_cli"])

MODEL_HELP = ("model source: timm:NAME, torchvision:NAME, hf:LOCAL_DIR, tl:LOCAL_DIR (TransformerLens), "
              "py:FILE.py:FACTORY (your own code) or builtin:NAME (digits-cnn, digits-vit, cifar_resnet20 ... 110)")


def model_source(text: str) -> bool:
    """SCHEME:NAME with no '=' (unit addresses always have one)."""
    return bool(re.match(r"^[A-Za-z]+:", text)) and "=" not in text


@dataclass
class ModelOptions(CommandOptions):
    """The model a command works on, and its input contract when the model cannot say it."""

    model: str | None = option(None, MODEL_HELP, positional=True, accepts=model_source)
    weights: str | None = option(None, "checkpoint to load (.safetensors or a weights-only torch file)",
                                 metavar="PATH")
    pretrained: bool = option(False, "ask timm/torchvision for published weights (needs the network)")
    input_size: list[int] | None = option(None, "input size H W (or one number for a square) for your own model",
                                          metavar="N")
    mean: list[float] | None = option(None, "per-channel normalisation mean for your own model", metavar="M")
    std: list[float] | None = option(None, "per-channel normalisation std for your own model", metavar="S")
    time_steps: int | None = option(None, "time steps a spiking model runs (builtin:cifar10-snn was trained "
                                          "with 128; fewer are faster and coarser)", minimum=1, metavar="T")

    def check(self) -> None:
        super().check()
        if not self.model:
            raise UnifiedVizError("give MODEL (e.g. builtin:digits-cnn) on the command line or as 'model' in --config")


@dataclass
class ProcessOptions(CommandOptions):
    """Several processes share a rendering job (`unifiedviz.distributed`): CPU cores or one GPU each."""

    processes: int = option(1, "processes that share the units' batches (same images as one process); with "
                            "--device cuda one GPU each; on the CPU each gets cores/N threads unless --threads",
                            minimum=1, metavar="N")
    device: Literal["cpu", "cuda"] = option("cpu", "where the model runs (cuda: process r on cuda:r)",
                                            choices=["cpu", "cuda"])

    def share_cores(self) -> None:
        """On the CPU with no --threads, give each process cores/N threads (oversubscribed threads spin-wait)."""
        if self.processes > 1 and self.device == "cpu" and self.threads is None:
            import os

            import torch

            torch.set_num_threads(max(1, (os.cpu_count() or 1) // self.processes))


def load_model_from(opts: ModelOptions, source: str | None = None):
    """The model `opts` describes (or `source`, e.g. a transfer model, with the same weights rules)."""
    from ..models import load_model

    contract: dict[str, Any] = {}
    if opts.input_size:
        size = opts.input_size
        contract["input_size"] = (size[0], size[0]) if len(size) == 1 else tuple(size)
    if opts.mean:
        contract["mean"] = tuple(opts.mean)
    if opts.std:
        contract["std"] = tuple(opts.std)
    return load_model(source or opts.model, pretrained=bool(opts.pretrained),
                      weights=opts.weights if source is None else None,
                      time_steps=opts.time_steps if source is None else None, **contract)


class Command:
    """Base class: set `options`, `help`, and implement `run(opts) -> exit code`."""

    name: ClassVar[str] = ""
    help: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options: ClassVar[type] = CommandOptions
    group: ClassVar[str | None] = None  # parent command, e.g. "superposition"
    group_help: ClassVar[str] = ""

    def add_to(self, sub) -> argparse.ArgumentParser:
        parser = sub.add_parser(self.name, help=self.help, description=self.description or self.help)
        opt.add_arguments(parser, self.options)
        parser.set_defaults(_command=self)
        return parser

    def invoke(self, args: argparse.Namespace) -> int:
        opts = opt.resolve(self.options, args)
        if opts.threads is not None:
            import torch

            torch.set_num_threads(opts.threads)
        return self.run(opts)

    def run(self, opts) -> int:
        raise NotImplementedError


def register(name: str):
    """Class decorator: register a Command subclass under `name` (instantiated once)."""

    def add(cls: type[Command]) -> type[Command]:
        cls.name = name
        COMMANDS.register(f"{cls.group} {name}" if cls.group else name, cls(), help=cls.help)
        return cls

    return add
