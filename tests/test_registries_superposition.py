"""Contract tests for the superposition registries: STRATEGIES, METRICS, EMBEDDINGS.

Every registered piece has one row in its table below; a piece without a row (or a row without a
piece) fails `test_every_*_has_a_row`. Adding a strategy or a metric = its file/function, its
registration, and one row here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
import torch
from sklearn.metrics import davies_bouldin_score, silhouette_score
from sklearn.metrics.pairwise import cosine_similarity
from torch import nn

from superposition.config import ActiveConfig, ExperimentConfig, MetricsConfig, load_config
from superposition.measure import measure
from superposition.metrics import EMBEDDINGS, INPUTS, METRICS, Metric, class_means, embed_2d, weight_vectors
from superposition.strategies import STRATEGIES, query, strategy_layers, top_k
from test_superposition_metrics import blobs
from test_superposition_strategies import N_POOL, crafted
from unifiedviz.errors import UnifiedVizError
from unifiedviz.models import InputSpec, VizModel


# ============================================================================ strategies
def _softmax(table: torch.Tensor) -> np.ndarray:
    return table.softmax(1).double().numpy()


def _lowest_first(scores: np.ndarray, pool: np.ndarray, k: int) -> list[int]:
    """The k pool indices with the highest `scores` (ties: lower index), ascending."""
    order = sorted(pool.tolist(), key=lambda i: (-scores[i], i))
    return sorted(order[:k])


def _expect_least_confidence(table, labeled, pool, k, seed):
    return _lowest_first(1 - _softmax(table).max(1), pool, k)


def _expect_margin(table, labeled, pool, k, seed):
    p = np.sort(_softmax(table), axis=1)
    return _lowest_first(p[:, -2] - p[:, -1], pool, k)


def _expect_entropy(table, labeled, pool, k, seed):
    p = _softmax(table)
    return _lowest_first(-(p * np.log(np.where(p > 0, p, 1))).sum(1), pool, k)


def _expect_random(table, labeled, pool, k, seed):
    return sorted(pool[np.random.default_rng(seed).choice(len(pool), size=k, replace=False)].tolist())


def _expect_coreset(table, labeled, pool, k, seed):
    # k-centre greedy by hand on the logits rows (LookupNet's `drop` layer output, dropout off)
    x = table.double().numpy()
    chosen, picks = list(labeled), []
    for _ in range(k):
        far = max(pool.tolist(), key=lambda i: (min(np.linalg.norm(x[i] - x[j]) for j in chosen) if i not in picks
                                                else -1.0, -i))
        picks.append(far)
        chosen.append(far)
    return sorted(picks)


@dataclass
class StrategyRow:
    cfg: dict = field(default_factory=dict)  # ActiveConfig fields the strategy needs here
    dropout: float = 0.0  # LookupNet's dropout (BALD samples it)
    expect: Callable | None = None  # (table, labeled, pool, k, seed) -> expected training indices, by hand


STRATEGY_ROWS: dict[str, StrategyRow] = {
    "random": StrategyRow(expect=_expect_random),
    "least_confidence": StrategyRow(expect=_expect_least_confidence),
    "margin": StrategyRow(expect=_expect_margin),
    "entropy": StrategyRow(expect=_expect_entropy),
    "bald": StrategyRow(cfg={"mc_samples": 4}, dropout=0.5),  # exact picks: test_superposition_strategies.py
    "coreset": StrategyRow(cfg={"feature_layer": "drop"}, expect=_expect_coreset),
}


def test_every_strategy_has_a_row():
    assert sorted(STRATEGY_ROWS) == sorted(STRATEGIES.names())


@pytest.mark.parametrize("name", sorted(STRATEGY_ROWS))
def test_strategy_contract(name):
    row = STRATEGY_ROWS[name]
    table = torch.randn(N_POOL, 3, generator=torch.Generator().manual_seed(5)) * 2
    data, model = crafted(table, dropout=row.dropout)
    labeled = np.array([1, 2, 8, 13, 21, 34])
    pool = np.setdiff1d(np.arange(N_POOL), labeled)
    k = 7
    cfg = ActiveConfig(strategy=name, query_size=k, **row.cfg)

    modes = [m.training for m in model.modules()]
    picked = query(model, data, labeled, cfg, seed=11, device="cpu")
    assert picked.dtype.kind == "i" and len(picked) == k and len(set(picked.tolist())) == k
    assert set(picked.tolist()) <= set(pool.tolist())  # only unlabelled images
    assert picked.tolist() == sorted(picked.tolist())
    assert query(model, data, labeled, cfg, seed=11, device="cpu").tolist() == picked.tolist()  # seeded
    if row.expect is not None:
        assert picked.tolist() == row.expect(table, labeled, pool, k, 11)
    assert [m.training for m in model.modules()] == modes  # train/eval modes left as they were

    # The pool running out: every remaining image, whatever the strategy.
    nearly_all = np.setdiff1d(np.arange(N_POOL), [3, 30])
    assert query(model, data, nearly_all, cfg, seed=0, device="cpu").tolist() == [3, 30]

    # Optional hooks, if declared, are well formed.
    strategy = STRATEGIES.get(name)
    if hasattr(strategy, "check"):
        problem = strategy.check(ExperimentConfig())
        assert problem is None or (isinstance(problem, str) and "\n" not in problem)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in strategy_layers(cfg).items())
    assert STRATEGIES.entry(name).help  # shown next to the name in docs and errors


def test_unknown_strategy_in_a_config_is_one_line_naming_the_valid_ones():
    with pytest.raises(UnifiedVizError) as err:
        load_config(None, ["active.strategy=coreset2"])
    msg = str(err.value)
    assert "\n" not in msg
    assert "'active.strategy'" in msg and "'coreset2'" in msg and "did you mean 'coreset'?" in msg
    assert all(name in msg for name in STRATEGIES.names())


def test_unknown_strategy_never_falls_back_at_query_time():
    data, model = crafted(torch.randn(N_POOL, 3))
    cfg = ActiveConfig()
    cfg.strategy = "corset"  # past the config check
    with pytest.raises(UnifiedVizError) as err:
        query(model, data, np.arange(5), cfg, seed=0, device="cpu")
    msg = str(err.value)
    assert "\n" not in msg and "did you mean 'coreset'?" in msg and all(n in msg for n in STRATEGIES.names())


def test_strategy_checks_come_from_the_strategy():
    with pytest.raises(UnifiedVizError, match=r"active\.strategy 'bald' in defaults needs dropout.*model\.dropout"):
        load_config(None, ["active.strategy=bald"])
    assert load_config(None, ["active.strategy=bald", "runs=[baseline]"]).active.strategy == "bald"  # not used
    assert load_config(None, ["active.strategy=bald", "model.dropout=0.3"]).model.dropout == 0.3
    assert strategy_layers(ActiveConfig(strategy="coreset", feature_layer="f")) == {"active.feature_layer": "f"}
    assert strategy_layers(ActiveConfig(strategy="margin")) == {}


def _scratch(monkeypatch, registry):
    """Let a test register into `registry`; its entries are restored afterwards."""
    registry.names()  # load every module first, so that they register into the kept dict
    monkeypatch.setattr(registry, "_entries", dict(registry._entries))


@pytest.fixture
def scratch_strategy(monkeypatch):
    """Register a throw-away strategy (with a check) for one test, then forget it."""

    def every_other(ctx):
        return np.arange(0, 2 * ctx.k, 2)

    every_other.check = lambda cfg: "needs an even seed" if cfg.seed % 2 else None
    _scratch(monkeypatch, STRATEGIES)
    STRATEGIES.register("every_other", every_other)
    return every_other


def test_a_registered_strategy_is_all_config_and_query_need(scratch_strategy):
    cfg = load_config(None, ["active.strategy=every_other", "active.query_size=3"])
    data, model = crafted(torch.randn(N_POOL, 3))
    assert query(model, data, np.array([0, 1]), cfg.active, seed=0, device="cpu").tolist() == [2, 4, 6]
    with pytest.raises(UnifiedVizError, match="'every_other' in defaults needs an even seed"):
        load_config(None, ["active.strategy=every_other", "seed=1"])


def test_a_strategy_breaking_the_contract_is_caught(monkeypatch):
    _scratch(monkeypatch, STRATEGIES)
    STRATEGIES.register("twice", lambda ctx: np.zeros(ctx.k, dtype=int))
    data, model = crafted(torch.randn(N_POOL, 3))
    with pytest.raises(ValueError, match="must return 3 distinct positions"):
        query(model, data, np.array([0]), ActiveConfig(strategy="twice", query_size=3), seed=0, device="cpu")


def test_top_k_is_the_shared_tie_rule():
    assert top_k(torch.tensor([1.0, 3.0, 3.0, 2.0]), 2).tolist() == [1, 2]


# ============================================================================ metrics
def _close(expected, **tol):
    def check(value, x, labels):
        assert value == pytest.approx(expected(x, labels), **tol)

    return check


def _pairs_histogram(rows: np.ndarray, bins: int):
    sims = cosine_similarity(rows)[np.triu_indices(len(rows), 1)]
    return sims, np.histogram(sims, bins=bins, range=(-1, 1))[0]


def _cosine_of(rows_of: Callable[[Any, Any], np.ndarray]):
    """Check a cosine histogram against scikit-learn's pairwise cosine of `rows_of(x, labels)`."""

    def check(value, x, labels):
        sims, counts = _pairs_histogram(rows_of(x, labels), METRIC_CFG.cosine_bins)
        assert value["pairs"] == len(sims) == sum(value["counts"])
        assert np.abs(np.asarray(value["counts"]) - counts).sum() <= 2  # float32 at a bin edge
        assert value["mean"] == pytest.approx(sims.mean(), abs=1e-6)
        assert len(value["edges"]) == METRIC_CFG.cosine_bins + 1

    return check


def _units_input():
    units = np.zeros((6, 3))
    units[:2, 0] = 4.0  # unit 0: only class 0
    units[:, 1] = [2.0, 2.0, 2.0, 2.0, 1.0, 1.0]  # unit 1: class means (2, 2, 1)
    return torch.tensor(units), torch.tensor([0, 0, 1, 1, 2, 2])  # unit 2: dead


def _expect_units(value, x, labels):
    # respond_fraction 0.6: unit 0 responds to 1 class (selectivity 1), unit 1 to 2 ((2 - 1.5) / 3.5)
    assert value == {"units": 3, "dead": 1, "selectivity_mean": pytest.approx((1.0 + 0.5 / 3.5) / 2),
                     # torch's median of an even count is the lower middle value, not the midpoint
                     "selectivity_median": pytest.approx(0.5 / 3.5), "classes_per_unit_mean": 1.5,
                     "classes_per_unit_hist": [1, 1, 0], "polysemantic_fraction": 0.5}


def _blobs_input(**kw):
    x, labels = blobs(**kw)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(labels)


def _logits_input():
    return torch.tensor([[2.0, 1.0], [0.0, 3.0], [5.0, 1.0], [0.0, 1.0]]), torch.tensor([0, 1, 1, 1])


def _weights_input():
    conv = nn.Conv2d(2, 6, 3)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(6, 2, 3, 3, generator=torch.Generator().manual_seed(2)))
    return weight_vectors(conv.weight), None  # what measure() feeds: one row per output unit


def _class_mean_rows(x, labels):
    x, labels = np.asarray(x, dtype=np.float64), np.asarray(labels)
    return np.stack([x[labels == c].mean(0) for c in np.unique(labels)])


@dataclass
class MetricRow:
    make: Callable[[], tuple[Any, Any]]  # -> (input of the metric's kind, labels)
    check: Callable[[Any, Any, Any], None]  # (value, x, labels): hand-computed or scikit-learn


METRIC_CFG = MetricsConfig(cosine_bins=10, respond_fraction=0.6)

METRIC_ROWS: dict[str, MetricRow] = {
    "accuracy": MetricRow(_logits_input, _close(lambda x, y: 0.75)),
    "silhouette": MetricRow(_blobs_input, _close(silhouette_score, abs=1e-5)),
    "davies_bouldin": MetricRow(lambda: _blobs_input(seed=2), _close(davies_bouldin_score, rel=1e-5)),
    "units": MetricRow(_units_input, _expect_units),
    "images": MetricRow(lambda: _blobs_input(n=61, d=6, seed=3), _cosine_of(lambda x, y: np.asarray(x))),
    "class_means": MetricRow(lambda: _blobs_input(n=80, d=6, k=7, seed=4), _cosine_of(_class_mean_rows)),
    "weights": MetricRow(_weights_input, _cosine_of(lambda w, y: np.asarray(w).reshape(len(w), -1))),
}


def test_every_metric_has_a_row():
    assert sorted(METRIC_ROWS) == sorted(METRICS.names())


@pytest.mark.parametrize("name", list(METRIC_ROWS))
def test_metric_contract(name):
    metric = METRICS.get(name)
    assert isinstance(metric, Metric) and metric.input in INPUTS and METRICS.entry(name).help
    x, labels = METRIC_ROWS[name].make()
    value = metric.fn(x, labels, METRIC_CFG)
    json.dumps(value, allow_nan=True)  # lands in metrics.json as is
    METRIC_ROWS[name].check(value, x, labels)


def test_cosine_class_means_row_is_really_about_class_means():
    x, labels = _blobs_input(n=80, d=6, k=7, seed=4)
    np.testing.assert_allclose(class_means(x, labels).numpy(), _class_mean_rows(x, labels), atol=1e-6)


class TinyConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 3, padding=1)
        self.relu = nn.ReLU()
        self.head = nn.Linear(5, 3)

    def forward(self, x):
        return self.head(self.relu(self.conv(x)).mean((2, 3)))


def _measured(cfg: MetricsConfig, full: bool = True):
    torch.manual_seed(0)
    images = torch.rand(36, 3, 6, 6)
    labels = torch.arange(36) % 3
    loader = torch.utils.data.DataLoader(list(zip(images, labels)), batch_size=10)
    model = VizModel(TinyConv(), InputSpec((6, 6), 3)).eval()
    return measure(model, loader, cfg, device="cpu", seed=0, full=full)


def test_measure_files_every_registered_metric_where_its_input_kind_says():
    cfg = MetricsConfig(layers=["relu"], cosine_layers=["conv"], embeddings=["tsne"], cosine_bins=8)
    out, embeddings = _measured(cfg)
    places = {
        "logits": [out],
        "points": [out["layers"]["relu"]["raw"], out["layers"]["relu"]["tsne"]],
        "units": [out["layers"]["relu"]],
        "features": [out["cosine"]["conv"]],
        "weights": [out["cosine"]["conv"]],
    }
    assert set(places) == set(INPUTS)
    for entry in METRICS.entries():
        assert all(entry.name in where for where in places[entry.obj.input]), entry.name
    assert out["images"] == 36 and out["layers"]["relu"]["dims"] == 5 * 6 * 6
    assert embeddings[("relu", "tsne")].shape == (36, 2)
    # per-round measurement: only the every_round metrics
    cheap, none = _measured(cfg, full=False)
    assert none == {}
    every_round = {e.name for e in METRICS.entries() if e.obj.every_round}
    found = set(cheap) | set(cheap["layers"]["relu"]["raw"]) | set(cheap["layers"]["relu"]) | set(cheap["cosine"]["conv"])
    assert every_round <= found
    assert not ({e.name for e in METRICS.entries()} - every_round) & found


def test_a_registered_metric_is_all_measure_needs(monkeypatch):
    _scratch(monkeypatch, METRICS)
    METRICS.register("rows", Metric(lambda x, labels, cfg: int(len(x)), "points", every_round=True), help="rows")
    out, _ = _measured(MetricsConfig(layers=["relu"], cosine_layers=[], embeddings=[]), full=False)
    assert out["layers"]["relu"]["raw"]["rows"] == 36


# ============================================================================ 2-D embeddings
EMBEDDING_ROWS: dict[str, dict] = {
    "tsne": {"perplexity": 10.0},
    "umap": {"neighbors": 10},  # first UMAP call in a process compiles for ~10-20 s
}


def test_every_embedding_has_a_row():
    assert sorted(EMBEDDING_ROWS) == sorted(EMBEDDINGS.names())


@pytest.mark.parametrize("name", sorted(EMBEDDING_ROWS))
def test_embedding_contract(name):
    x, labels = blobs(n=45, d=8, k=3, seed=4)
    a = embed_2d(x, name, seed=3, **EMBEDDING_ROWS[name])
    assert a.shape == (45, 2) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, embed_2d(x, name, seed=3, **EMBEDDING_ROWS[name]))  # seeded
    assert silhouette_score(a, labels) > 0.3  # well separated blobs stay separated


def test_unknown_embedding_names_the_registered_ones():
    with pytest.raises(UnifiedVizError, match=r"unknown 2-D embedding 'tsen': did you mean 'tsne'\?"):
        embed_2d(np.zeros((4, 2)), "tsen")

