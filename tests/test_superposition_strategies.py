"""Query strategies: exact picks on crafted models and hand-computed scores."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from superposition.config import ActiveConfig, DataConfig
from superposition.data import ImageTensors, SuperpositionData
from superposition.strategies import bald, entropy, k_center_greedy, least_confidence, margin, query, top_k
from unifiedviz.models import InputSpec, VizModel

N_POOL = 40


class LookupNet(nn.Module):
    """Returns a fixed logit row per image: image i carries i in its first pixel."""

    def __init__(self, table: torch.Tensor, dropout: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("table", table)
        self.drop = nn.Dropout(dropout)
        self.scale = nn.Parameter(torch.ones(()))  # a parameter, so the model has a device

    def forward(self, x):
        idx = torch.round(x[:, 0, 0, 0] * 255).long()
        return self.drop(self.table[idx]) * self.scale


def crafted(table: torch.Tensor, dropout: float = 0.0):
    n = len(table)
    images = torch.zeros(n, 3, 4, 4, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)  # image i -> pixel value i / 255
    data = SuperpositionData(DataConfig(eval_batch_size=7))  # small batches: several of them
    data.train_set = ImageTensors(images, torch.zeros(n, dtype=torch.long))
    data.class_names = ["a", "b", "c"]
    model = VizModel(LookupNet(table, dropout), InputSpec((4, 4), 3))
    return data, model


def test_least_confidence_picks_exactly_the_least_confident_pool_images():
    g = torch.Generator().manual_seed(0)
    table = torch.randn(N_POOL, 3, generator=g) * 3
    data, model = crafted(table)
    labeled = np.array([0, 3, 5, 11, 20])
    picked = query(model, data, labeled, ActiveConfig(strategy="least_confidence", query_size=6), seed=0,
                   device="cpu")
    # By hand: top softmax probability per image; the 6 lowest among the unlabelled ones.
    top = table.softmax(1).max(1).values.numpy()
    pool = [i for i in range(N_POOL) if i not in labeled]
    expected = sorted(sorted(pool, key=lambda i: top[i])[:6])
    assert picked.tolist() == expected
    assert not set(picked) & set(labeled)


def test_least_confidence_prefers_flat_predictions_over_confident_ones():
    table = torch.zeros(N_POOL, 3)
    table[:, 0] = 10.0  # confident...
    flat = [7, 19, 33]
    table[flat] = 0.0  # ...except three images with uniform logits
    data, model = crafted(table)
    picked = query(model, data, np.array([0]), ActiveConfig(strategy="least_confidence", query_size=3), seed=0,
                   device="cpu")
    assert picked.tolist() == flat


def test_uncertainty_scores_by_hand():
    p = torch.tensor([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2], [1.0, 0.0, 0.0]])
    assert least_confidence(p).tolist() == pytest.approx([0.3, 0.6, 0.0])
    assert margin(p).tolist() == pytest.approx([-0.5, 0.0, -1.0])
    h = [-(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1)),
         -(2 * 0.4 * math.log(0.4) + 0.2 * math.log(0.2)), 0.0]
    assert entropy(p).tolist() == pytest.approx(h)


def test_bald_by_hand():
    # Image 0: two samples disagree completely -> H(mean) = log 2, mean H = 0 -> log 2.
    # Image 1: both samples uniform -> H(mean) = mean H = log 2 -> 0.
    mc = torch.tensor([[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.5, 0.5]]])
    assert bald(mc).tolist() == pytest.approx([math.log(2), 0.0], abs=1e-7)


def test_bald_queries_where_dropout_disagrees():
    table = torch.zeros(N_POOL, 3)
    table[:, 0] = 8.0
    torn = [4, 9]
    table[torn] = torch.tensor([8.0, 8.0, 0.0])  # dropout flips these between class 0 and 1
    data, model = crafted(table, dropout=0.5)
    model.eval()
    picked = query(model, data, np.array([0]), ActiveConfig(strategy="bald", query_size=2, mc_samples=30), seed=0,
                   device="cpu")
    assert picked.tolist() == torn
    assert not any(m.training for m in model.modules())  # dropout switched off again


def test_top_k_breaks_ties_by_lower_position():
    assert top_k(torch.tensor([0.5, 0.9, 0.5, 0.9, 0.1]), 3).tolist() == [1, 3, 0]


def test_k_center_greedy_by_hand():
    labeled = torch.tensor([[0.0]])
    pool = torch.tensor([[1.0], [10.0], [4.0], [6.0], [9.0]])
    # farthest from {0}: 10 (pos 1); then farthest from {0, 10}: 4 and 6 tie at 4 -> lower position (4.0, pos 2)
    assert k_center_greedy(pool, labeled, 2).tolist() == [1, 2]
    assert k_center_greedy(pool, labeled, 3, chunk=1).tolist() == [1, 2, 3]


def test_coreset_and_random_queries_take_only_new_images():
    table = torch.randn(N_POOL, 3, generator=torch.Generator().manual_seed(1))
    data, model = crafted(table)
    labeled = np.arange(0, N_POOL, 4)
    coreset = query(model, data, labeled, ActiveConfig(strategy="coreset", query_size=5, feature_layer="drop"),
                    seed=0, device="cpu")
    # The embedding is the logits row: the first pick is the pool row farthest from every labelled row.
    dist = torch.cdist(table, table[labeled]).min(1).values
    dist[labeled] = -1
    assert int(dist.argmax()) in coreset.tolist()
    a = query(model, data, labeled, ActiveConfig(strategy="random", query_size=5), seed=3, device="cpu")
    b = query(model, data, labeled, ActiveConfig(strategy="random", query_size=5), seed=3, device="cpu")
    for picked in (coreset, a):
        assert len(set(picked.tolist())) == 5 and not set(picked.tolist()) & set(labeled.tolist())
    assert a.tolist() == b.tolist()


def test_query_stops_at_an_empty_pool():
    data, model = crafted(torch.randn(N_POOL, 3))
    picked = query(model, data, np.arange(N_POOL - 2), ActiveConfig(query_size=5), seed=0, device="cpu")
    assert picked.tolist() == [N_POOL - 2, N_POOL - 1]
