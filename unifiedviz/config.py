"""Flat YAML configs for CLI commands: the keys are the command's long options."""
from __future__ import annotations

import argparse
import difflib
from pathlib import Path

import yaml

from .errors import UnifiedVizError


def load_flat_config(path: str | Path, allowed: set[str]) -> dict:
    """Read a YAML mapping whose keys must all be in `allowed` (typos fail at once, named)."""
    path = Path(path)
    if not path.is_file():
        raise UnifiedVizError(f"config {str(path)!r} not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UnifiedVizError(f"config {str(path)!r} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UnifiedVizError(f"config {str(path)!r} must be a mapping of option: value")
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; valid keys: {', '.join(sorted(allowed))}"
            raise UnifiedVizError(f"unknown key {key!r} in {str(path)!r}{hint}")
    return {k.replace("-", "_"): v for k, v in data.items()}


def config_keys(defaults: dict) -> set[str]:
    """Keys a config may use: the options' names, spelled with '_' or '-'."""
    return set(defaults) | {k.replace("_", "-") for k in defaults}


def merge_config(args: argparse.Namespace, defaults: dict) -> argparse.Namespace:
    """Options given on the command line win over the config file, which wins over defaults.

    The parser must use `default=None` for every option a config may set.
    """
    config = load_flat_config(args.config, config_keys(defaults)) if args.config else {}
    merged = dict(defaults)
    merged.update({k: v for k, v in config.items()})
    # None (and [] from an empty nargs="*" positional) means "not given on the command line".
    merged.update({k: v for k, v in vars(args).items() if v is not None and v != [] and k in defaults})
    return argparse.Namespace(**{**vars(args), **merged})
