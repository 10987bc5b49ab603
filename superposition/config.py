"""Experiment configs: a typed schema, YAML loading, `--set key=value` overrides, strict validation.

Every key has a default here, so a config file only states what differs. Unknown or mistyped
keys and wrongly typed values fail at once, naming the key and where it came from.
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from unifiedviz.errors import UnifiedVizError
from unifiedviz.options import build, parse_set, read_yaml, set_key

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
class DictionaryConfig:
    """A sparse autoencoder on `layer` of each final model (docs/dictionaries.md): reconstruction,
    sparsity and classes per latent vs per neuron, side by side in report.md. Off by default."""

    enabled: bool = False
    layer: str = "layer4"  # conv, token, sequence or vector layer whose activations to decompose
    kind: Literal["topk", "relu"] = "topk"
    expansion: float = 4.0  # latents per layer feature
    k: int = 8  # topk: latents firing per row
    l1: float = 1e-2  # relu: L1 weight
    steps: int = 500  # training batches (rows from the training images, streamed)
    batch_size: int = 1024  # rows per training batch
    buffer_rows: int = 32768  # rows held in memory at most
    lr: float = 1e-3
    resample_every: int = 250  # steps between dead-latent resampling (0: never)


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
    dictionary: DictionaryConfig = field(default_factory=DictionaryConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML config (or start from defaults), apply `key=value` overrides, validate.

    Typing, `--set` and error messages are the shared options layer's (unifiedviz.options), so
    `lr: 1/20`, `--set train.lr=1e-3` and a mistyped key read as in every other command.
    """
    source = "defaults" if path is None else str(path)
    cfg = build(ExperimentConfig, read_yaml(path), source) if path is not None else ExperimentConfig()
    for item in overrides or []:
        key, value = parse_set(item)
        set_key(cfg, key, value)
    check(cfg, source)
    return cfg


def from_dict(data: dict[str, Any], source: str = "dict") -> ExperimentConfig:
    """Validate a plain dict (e.g. a run folder's saved config) into a config."""
    cfg = build(ExperimentConfig, data, source)
    check(cfg, source)
    return cfg


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
    if cfg.dictionary.enabled:
        d = cfg.dictionary
        if d.steps < 1 or d.batch_size < 1 or d.k < 1 or d.expansion <= 0 or d.lr <= 0 or d.l1 < 0:
            raise UnifiedVizError(f"dictionary in {source}: steps, batch_size, k must be at least 1 and "
                                  "expansion, lr > 0, l1 >= 0")
        if d.buffer_rows < 2 * d.batch_size:
            raise UnifiedVizError(f"config key 'dictionary.buffer_rows' in {source} must hold at least two batches "
                                  f"({2 * d.batch_size} rows), got {d.buffer_rows}")
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
