"""One typed options layer for every command: a dataclass per command yields its flags, its YAML
keys, `--set key=value`, its defaults and its help.

    @dataclass
    class VisualizeOptions(CommandOptions):
        steps: int = option(256, "optimisation steps")
        lr: float = option(0.05, "learning rate")

Values are read the same way wherever they come from: `8/255`, `1e-3` and `0.05` are numbers in
a YAML file, on the command line and in `--set`; booleans, lists, `Literal` choices and nested
sections (the superposition experiment) are checked against the field's type, and a wrong key or
value fails at once with one line that names the key, where it came from and what is allowed.
Precedence: defaults < `--config FILE` < `--set key=value` < flags.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Literal, Sequence, Union

import yaml

from .errors import UnifiedVizError

_MISSING = dataclasses.MISSING


def option(
    default: Any = None,
    help: str = "",
    *,
    flag: str | None = None,
    short: str | None = None,
    positional: bool = False,
    accepts: Callable[[str], bool] | None = None,
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None,
    metavar: str | None = None,
    minimum: float | None = None,
    cli: bool = True,
) -> Any:
    """A field of a command's options: its default and help, and how it appears on the command line.

    `positional` fields take the command's bare arguments in order (a list field takes the rest);
    `accepts` says which bare values may fill it (others go to the next positional field).
    `choices` may be a callable (a registry's `names`), read when the parser is built.
    `minimum` is the smallest value allowed (checked by `CommandOptions.check`, whatever the source).
    `cli=False` keeps a key out of the flags (config/`--set` only).
    """
    meta = {"help": help, "flag": flag, "short": short, "positional": positional, "accepts": accepts,
            "choices": choices, "metavar": metavar, "minimum": minimum, "cli": cli}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class CommandOptions:
    """Options every command shares."""

    threads: int | None = option(None, "torch CPU threads (default: torch's choice; 1 is often fastest on a "
                                       "busy or small machine)", metavar="N", minimum=1)
    quiet: bool = option(False, "no progress bars")

    def check(self) -> None:
        """Rules that involve values, not only types (override and call super): here each field's `minimum`."""
        for f in dataclasses.fields(self):
            low, value = f.metadata.get("minimum"), getattr(self, f.name)
            if low is not None and value is not None and value < low:
                raise UnifiedVizError(f"{f.name.replace('_', '-')} must be at least {low:g}, got {value}")


@dataclass
class ResumeOptions(CommandOptions):
    """Options of commands that fill their run folder step by step (superposition run, dictionary
    train, invert): continue a stopped run, or start over in one's own folder."""

    resume: bool = option(False, "continue the run in --out from its last finished step")
    force: bool = option(False, "replace an earlier run of this command in --out and start over")

    def check(self) -> None:
        super().check()
        if self.resume and self.force:
            raise UnifiedVizError("--resume and --force contradict each other: pass one")


# ---------------------------------------------------------------------- numbers and values
def number(value: Any) -> float:
    """0.03, '0.03', '8/255' or '1e-3' -> float; anything else is a one-line error."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    try:
        return float(Fraction(text)) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{value!r} is not a number: write e.g. 0.03, 1e-3 or 8/255") from None


def coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    """`value` as the type `hint` says, or a one-line error naming `key` and `source`."""
    ok, out = _match(value, hint)
    if not ok:
        raise UnifiedVizError(f"{_key(key, source)} must be {describe(hint)}, got {value!r}")
    return out


def _match(value: Any, hint: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return True, None
        for opt in options:
            ok, out = _match(value, opt)
            if ok:
                return True, out
        return False, None
    if origin is Literal:
        return value in typing.get_args(hint), value
    if origin is list:
        (item,) = typing.get_args(hint)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]  # one value where a list is expected
        if not isinstance(value, list):
            return False, None
        results = [_match(v, item) for v in value]
        return all(ok for ok, _ in results), [out for _, out in results]
    if hint is type(None):
        return value is None, None
    if hint is Any:
        return True, value
    if hint is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
            return True, value.lower() in ("true", "yes", "on")
        return isinstance(value, bool), value
    if hint is int:
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return True, int(value)
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        try:
            return True, number(value)
        except ValueError:
            return False, None
    if hint is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, str(value)  # e.g. a target class written as a bare number
        return isinstance(value, str), value
    raise TypeError(f"no option rule for type {hint!r}")


def describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(h) for h in typing.get_args(hint))
    if origin is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(hint))
    if origin is list:
        return f"a list of ({describe(typing.get_args(hint)[0])})"
    if hint is type(None):
        return "null"
    return {bool: "true or false", int: "an integer", float: "a number (e.g. 0.05, 1e-3, 8/255)",
            str: "a string", Any: "a value"}[hint]


def _key(key: str, source: str) -> str:
    if key == source:  # a flag names itself
        return key
    return f"{key} ({source})" if source.startswith("--") else f"key '{key}' in {source}"


# ---------------------------------------------------------------------- nested mappings
def build(cls: type, raw: Any, source: str, prefix: str = "") -> Any:
    """An instance of dataclass `cls` from a mapping; unknown keys and wrong types fail, named."""
    if not isinstance(raw, dict):
        where = f"'{prefix.rstrip('.')}' in {source}" if prefix else source
        raise UnifiedVizError(f"{where} must be a mapping of keys, not {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name not in names:
            raise UnifiedVizError(unknown_key(f"{prefix}{key}", names, prefix, source))
        hint = hints[name]
        kwargs[name] = (build(hint, value, source, f"{prefix}{name}.") if dataclasses.is_dataclass(hint)
                        else coerce(value, hint, f"{prefix}{name}", source))
    return cls(**kwargs)


def set_key(obj: Any, key: str, value: Any, source: str | None = None) -> None:
    """Set `a.b.c` on nested dataclasses, coercing to the field's type."""
    source = source or f"--set {key}"
    node = obj
    parts = key.replace("-", "_").split(".")
    for i, part in enumerate(parts):
        names = [f.name for f in dataclasses.fields(node)]
        prefix = ".".join(parts[:i]) + "." if i else ""
        if part not in names:
            raise UnifiedVizError(unknown_key(key, names, prefix, source))
        hint = typing.get_type_hints(type(node))[part]
        if i == len(parts) - 1:
            value = (build(hint, value, source, f"{key}.") if dataclasses.is_dataclass(hint)
                     else coerce(value, hint, key, source))
            setattr(node, part, value)
        else:
            node = getattr(node, part)
            if not dataclasses.is_dataclass(node):
                raise UnifiedVizError(f"--set {key}: '{'.'.join(parts[: i + 1])}' is a value, not a section")


def unknown_key(key: str, names: list[str], prefix: str, source: str) -> str:
    leaf = key.rsplit(".", 1)[-1].replace("-", "_")
    close = difflib.get_close_matches(leaf, names, n=1, cutoff=0.6)
    hint = f"did you mean '{prefix}{close[0]}'?" if close else f"valid keys here: {', '.join(names)}"
    return f"unknown key '{key}' in {source}; {hint}"


def parse_set(item: str) -> tuple[str, Any]:
    """`key=value` with a YAML value (`--set train.epochs=2`, `--set lr=1/20`)."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise UnifiedVizError(f"--set {item!r} must look like key=value (e.g. steps=64)")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        raise UnifiedVizError(f"--set {item!r}: cannot read the value {text!r}; quote it or use YAML syntax") from None
    return key.strip(), value


def read_yaml(path: str | Path) -> dict:
    """A YAML file holding a mapping (or nothing), with one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise UnifiedVizError(f"config file {str(path)!r} not found: check the path")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise UnifiedVizError(f"config {str(path)!r} is not valid YAML{line}: fix the syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UnifiedVizError(f"config {str(path)!r} must hold a mapping of option: value, "
                              f"not a {type(data).__name__}")
    return data


# ---------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser, cls: type, *, config: bool = True) -> None:
    """Flags (and positionals) for every field of `cls`, plus --config and --set."""
    hints = typing.get_type_hints(cls)
    positional = [f for f in dataclasses.fields(cls) if f.metadata.get("positional")]
    if positional:
        names = " ".join(f.name.upper() for f in positional)
        helps = "; ".join(f"{f.name.upper()}: {f.metadata['help']}" for f in positional)
        parser.add_argument("_positionals", nargs="*", metavar=names, help=helps)
    if config:
        parser.add_argument("--config", metavar="YAML", default=None,
                            help="read options from a YAML file (keys = option names; flags win)")
        parser.add_argument("--set", dest="_set", metavar="KEY=VALUE", action="append", default=[],
                            help="set one option, e.g. --set lr=1/20 (repeatable; YAML values)")
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if meta.get("positional") or not meta.get("cli", True):
            continue
        hint = hints[f.name]
        flags = [meta.get("flag") or "--" + f.name.replace("_", "-")]
        if meta.get("short"):
            flags.insert(0, meta["short"])
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": _help(f, hint)}
        if _base(hint) is bool:
            kwargs["action"] = "store_true" if f.default is False else argparse.BooleanOptionalAction
        else:
            if _is_list(hint):
                kwargs["nargs"] = "+"
            choices = meta.get("choices")
            if callable(choices):
                choices = choices()
            if choices:
                kwargs["choices"] = list(choices)
            kwargs["metavar"] = meta.get("metavar") or (None if choices else f.name.upper())
        parser.add_argument(*flags, **kwargs)


def resolve(cls: type, args: argparse.Namespace, *, source: str = "the command line") -> Any:
    """Defaults < --config < --set < flags, typed and checked: an instance of `cls`."""
    raw: dict[str, Any] = {}
    config = getattr(args, "config", None)
    if config:
        raw.update({str(k).replace("-", "_"): v for k, v in read_yaml(config).items()})
        opts = build(cls, raw, f"{config!r}")
    else:
        opts = cls()
    for item in getattr(args, "_set", []) or []:
        key, value = parse_set(item)
        set_key(opts, key, value)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in vars(args):
            value = getattr(args, f.name)
            flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
            setattr(opts, f.name, coerce(value, hints[f.name], flag, flag))
    _fill_positionals(opts, cls, list(getattr(args, "_positionals", []) or []))
    opts.check()
    return opts


def _fill_positionals(opts: Any, cls: type, values: list[str]) -> None:
    """Bare arguments fill the positional fields in order; a field that the config already set and
    whose `accepts` rejects the value keeps the config's (`--config FILE conv1:channel=0` gives
    units, not a model); an unset field takes the value, so its own check explains a bad one."""
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.metadata.get("positional")]
    for f in fields:
        if not values:
            break
        hint = hints[f.name]
        accepts = f.metadata.get("accepts")
        if _is_list(hint):
            setattr(opts, f.name, coerce(values, hint, f.name.upper(), "the command line"))
            values = []
        elif accepts is None or accepts(values[0]) or getattr(opts, f.name) in (None, "", []):
            setattr(opts, f.name, coerce(values.pop(0), hint, f.name.upper(), "the command line"))
    if values:
        raise UnifiedVizError(f"unexpected argument(s) {' '.join(values)!r}: see --help for the command's arguments")


def _help(f: dataclasses.Field, hint: Any) -> str:
    text = f.metadata.get("help", "")
    default = f.default if f.default is not _MISSING else (f.default_factory() if f.default_factory is not _MISSING
                                                           else None)
    if default not in (None, False, [], "") and "default" not in text:
        shown = " ".join(map(str, default)) if isinstance(default, list) else default
        text = f"{text} (default {shown})" if text else f"default {shown}"
    return text.replace("%", "%%")


def _base(hint: Any) -> Any:
    """The type without Optional: `int | None` -> int."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint


def _is_list(hint: Any) -> bool:
    return typing.get_origin(_base(hint)) is list


__all__ = ["option", "CommandOptions", "ResumeOptions", "number", "coerce", "describe", "build", "set_key",
           "parse_set", "read_yaml", "unknown_key", "add_arguments", "resolve"]
