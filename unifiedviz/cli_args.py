"""Command-line pieces every subcommand shares: the model arguments and the error contract."""
from __future__ import annotations

import argparse
from fractions import Fraction

from .config import merge_config
from .errors import UnifiedVizError
from .models import VizModel, load_model

MODEL_HELP = ("model source: timm:NAME, torchvision:NAME, hf:LOCAL_DIR, tl:LOCAL_DIR (TransformerLens) or builtin:NAME "
              "(digits-cnn, digits-vit, cifar_resnet20)")


def add_model_arguments(parser: argparse.ArgumentParser, *, positional: bool = True) -> None:
    if positional:
        parser.add_argument("model", help=MODEL_HELP)
    parser.add_argument("--weights", metavar="PATH", help="checkpoint to load (.safetensors or a weights-only torch file)")
    parser.add_argument("--pretrained", action="store_true", help="ask timm/torchvision for published weights (needs the network)")


def model_from_args(args: argparse.Namespace, source: str | None = None) -> VizModel:
    return load_model(source or args.model, pretrained=bool(args.pretrained), weights=args.weights)


def number(text: str) -> float:
    """Parse '0.03', '8/255' or '1e-3' (argparse type)."""
    try:
        return float(Fraction(text)) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number: write e.g. 0.03 or 8/255") from None


def command_args(args: argparse.Namespace, defaults: dict, inputs: str) -> argparse.Namespace:
    """Merge `--config` into `args` and require MODEL plus the command's `inputs` argument."""
    args = merge_config(args, defaults)
    if not args.model or not getattr(args, inputs):
        raise UnifiedVizError(
            f"give MODEL and {inputs.upper()} (or a --config with 'model' and '{inputs}')"
        )
    return args
