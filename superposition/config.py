"""Experiment configs: a typed schema, YAML loading, `--set key=value` overrides, strict validation.

Every key has a default here, so a config file only states what differs. Unknown or mistyped
keys and wrongly typed values fail at once, naming the key and where it came from.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from unifiedviz.errors import UnifiedVizError

RUNS = ("baseline", "active")


@dataclass
class SyntheticConfig:
    """Class-conditional noise images for tests: each class is a smooth random pattern plus noise."""

    num_train: int = 512
    num_test: int = 256
    num_classes: int = 4
    image_size: int = 16
    noise: float = 0.3


@dataclass
class DataConfig:
    name: Literal["cifar10", "tinyimagenet", "digits", "synthetic"] = "synthetic"
    root: str | None = None  # folder holding cifar-10-batches-py/ or tiny-imagenet-200/
    download: bool = False
    image_size: int | None = None  # resize to this square size; null keeps the native size
    batch_size: int = 128
    eval_batch_size: int = 256
    num_workers: int = 0
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class ModelConfig:
    name: str = "resnet18"  # resnet18 | torchvision:NAME | timm:NAME
    pretrained: bool = False
    cifar_stem: bool = False  # resnet18 only: 3x3 stride-1 first conv, no max-pool
    dropout: float = 0.0  # before the classification head; BALD needs it > 0


@dataclass
class TrainConfig:
    epochs: int = 20
    lr: float = 1e-3
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0
    precision: str = "32-true"  # any Lightning precision: 16-mixed, bf16-mixed, 32-true, ...
    accelerator: str = "auto"
    devices: Union[int, str, list[int]] = "auto"
    strategy: str = "auto"  # e.g. ddp for several GPUs or nodes
    num_nodes: int = 1
    deterministic: Union[bool, Literal["warn"]] = "warn"
    progress_bar: bool = True


@dataclass
class ActiveConfig:
    strategy: str = "least_confidence"  # a name in superposition.strategies.STRATEGIES (checked in check())
    initial_size: int = 5000  # random labelled images that round 0 trains on
    query_size: int = 5000  # images added before each later round
    rounds: int = 10  # training rounds, round 0 included
    warm_start: bool = True  # continue from the previous round's weights (else re-initialise)
    mc_samples: int = 10  # bald: stochastic forward passes
    feature_layer: str = "avgpool"  # coreset: layer whose output is the embedding


@dataclass
class MetricsConfig:
    layers: list[str] = field(default_factory=lambda: ["layer4"])  # embeddings, clustering, units
    cosine_layers: list[str] = field(default_factory=lambda: ["layer4.1.conv2"])
    embeddings: list[Literal["tsne", "umap"]] = field(default_factory=lambda: ["tsne", "umap"])
    tsne_backend: Literal["sklearn", "opentsne"] = "sklearn"  # openTSNE: same method, ~1.3-1.5x faster here
    perplexity: float = 30.0
    umap_neighbors: int = 15
    cosine_bins: int = 50
    max_samples: int | None = None  # measure on this many test images (seeded choice); null = all
    respond_fraction: float = 0.5  # a unit responds to a class whose mean is >= this x its top class mean
    per_round: bool = True  # accuracy, clustering and mean cosine after every active-learning round


@dataclass
class ExperimentConfig:
    name: str = "superposition"
    seed: int = 0
    runs: list[Literal["baseline", "active"]] = field(default_factory=lambda: list(RUNS))
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    active: ActiveConfig = field(default_factory=ActiveConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML config (or start from defaults), apply `key=value` overrides, validate."""
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise UnifiedVizError(f"config file {source!r} not found: check the path")
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            line = f" at line {where.line + 1}" if where is not None else ""
            raise UnifiedVizError(f"{source} is not valid YAML{line}: fix the syntax") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise UnifiedVizError(f"{source} must hold a mapping of keys (data:, model:, ...), not a {type(loaded).__name__}")
        raw = loaded
    cfg = _build(ExperimentConfig, raw, "", source)
    for item in overrides or []:
        key, value = _parse_override(item)
        _set(cfg, key, value)
    check(cfg, source)
    return cfg


def from_dict(data: dict[str, Any], source: str = "dict") -> ExperimentConfig:
    """Validate a plain dict (e.g. a run folder's saved config) into a config."""
    cfg = _build(ExperimentConfig, data, "", source)
    check(cfg, source)
    return cfg


def _build(cls: type, raw: Any, prefix: str, source: str):
    if not isinstance(raw, dict):
        raise UnifiedVizError(f"'{prefix.rstrip('.')}' in {source} must be a mapping of keys, not {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            raise UnifiedVizError(_unknown_key(f"{prefix}{key}", names, prefix, source))
    kwargs = {}
    for name in names:
        if name not in raw:
            continue
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, raw[name], f"{prefix}{name}.", source)
        else:
            kwargs[name] = _coerce(raw[name], hint, f"{prefix}{name}", source)
    return cls(**kwargs)


def _unknown_key(key: str, names: list[str], prefix: str, source: str) -> str:
    leaf = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(leaf, names, n=1, cutoff=0.6)
    hint = f"did you mean '{prefix}{close[0]}'?" if close else f"valid keys here: {', '.join(names)}"
    return f"unknown config key '{key}' in {source}; {hint}"


def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise UnifiedVizError(f"--set {item!r} must look like key=value (e.g. train.epochs=2)")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        raise UnifiedVizError(f"--set {item!r}: cannot read the value {text!r}; quote it or use YAML syntax") from None
    return key.strip(), value


def _set(cfg: ExperimentConfig, key: str, value: Any) -> None:
    source = f"--set {key}"
    node: Any = cfg
    parts = key.split(".")
    for i, part in enumerate(parts):
        names = [f.name for f in dataclasses.fields(node)]
        prefix = ".".join(parts[:i]) + "." if i else ""
        if part not in names:
            raise UnifiedVizError(_unknown_key(key, names, prefix, source))
        hint = typing.get_type_hints(type(node))[part]
        if i == len(parts) - 1:
            if dataclasses.is_dataclass(hint):
                value = _build(hint, value, f"{key}.", source)
            else:
                value = _coerce(value, hint, key, source)
            setattr(node, part, value)
        else:
            node = getattr(node, part)
            if not dataclasses.is_dataclass(node):
                raise UnifiedVizError(f"--set {key}: '{'.'.join(parts[: i + 1])}' is a value, not a section")


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    ok, out = _match(value, hint)
    if not ok:
        raise UnifiedVizError(f"config key '{key}' in {source} must be {_describe(hint)}, got {value!r}")
    return out


def _match(value: Any, hint: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        for option in typing.get_args(hint):
            ok, out = _match(value, option)
            if ok:
                return True, out
        return False, None
    if origin is Literal:
        return value in typing.get_args(hint), value
    if origin is list:
        if not isinstance(value, list):
            return False, None
        (item,) = typing.get_args(hint)
        results = [_match(v, item) for v in value]
        return all(ok for ok, _ in results), [out for _, out in results]
    if hint is type(None):
        return value is None, None
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        if isinstance(value, bool):
            return False, None
        if isinstance(value, (int, float)):
            return True, float(value)
        try:  # YAML 1.1 reads 1e-3 as a string (it wants 1.0e-3)
            return isinstance(value, str), float(value)
        except ValueError:
            return False, None
    if hint is str:
        return isinstance(value, str), value
    raise TypeError(f"no config rule for type {hint!r}")


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if origin is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(hint))
    if origin is list:
        return f"a list of ({_describe(typing.get_args(hint)[0])})"
    if hint is type(None):
        return "null"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[hint]


def check(cfg: ExperimentConfig, source: str) -> None:
    """Rules that involve values, not just types."""
    positive = {
        "data.batch_size": cfg.data.batch_size,
        "data.eval_batch_size": cfg.data.eval_batch_size,
        "train.epochs": cfg.train.epochs,
        "active.initial_size": cfg.active.initial_size,
        "active.query_size": cfg.active.query_size,
        "active.rounds": cfg.active.rounds,
        "active.mc_samples": cfg.active.mc_samples,
        "metrics.cosine_bins": cfg.metrics.cosine_bins,
        "data.synthetic.num_train": cfg.data.synthetic.num_train,
        "data.synthetic.num_test": cfg.data.synthetic.num_test,
        "data.synthetic.image_size": cfg.data.synthetic.image_size,
    }
    for key, value in positive.items():
        if value < 1:
            raise UnifiedVizError(f"config key '{key}' in {source} must be at least 1, got {value}")
    if cfg.data.synthetic.num_classes < 2:
        raise UnifiedVizError(f"config key 'data.synthetic.num_classes' in {source} must be at least 2")
    if cfg.data.image_size is not None and cfg.data.image_size < 8:
        raise UnifiedVizError(f"config key 'data.image_size' in {source} must be at least 8 (or null)")
    if cfg.metrics.max_samples is not None and cfg.metrics.max_samples < 2:
        raise UnifiedVizError(f"config key 'metrics.max_samples' in {source} must be at least 2 (or null)")
    if not 0.0 <= cfg.model.dropout < 1.0:
        raise UnifiedVizError(f"config key 'model.dropout' in {source} must be in [0, 1), got {cfg.model.dropout}")
    if not 0.0 < cfg.metrics.respond_fraction <= 1.0:
        raise UnifiedVizError(f"config key 'metrics.respond_fraction' in {source} must be in (0, 1]")
    if not cfg.runs or len(set(cfg.runs)) != len(cfg.runs):
        raise UnifiedVizError(f"config key 'runs' in {source} must list baseline and/or active once each")
    _check_strategy(cfg, source)
    if not cfg.metrics.layers and not cfg.metrics.cosine_layers:
        raise UnifiedVizError(f"{source} measures nothing: list layers in metrics.layers or metrics.cosine_layers")


def _check_strategy(cfg: ExperimentConfig, source: str) -> None:
    """`active.strategy` must be registered; the strategy's own `check(cfg)` says what else it needs."""
    from .strategies import STRATEGIES  # imported here: the strategies bring torch along

    name = cfg.active.strategy
    if name not in STRATEGIES:
        close = difflib.get_close_matches(name, STRATEGIES.names(), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnifiedVizError(f"config key 'active.strategy' in {source} must be one of "
                              f"{', '.join(STRATEGIES.names())}, got {name!r}{hint}")
    needs = getattr(STRATEGIES.get(name), "check", None)
    problem = needs(cfg) if needs is not None and "active" in cfg.runs else None
    if problem:
        raise UnifiedVizError(f"active.strategy {name!r} in {source} {problem}")
