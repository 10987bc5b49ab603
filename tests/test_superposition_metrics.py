"""Metrics against scikit-learn and hand-computed values."""
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import davies_bouldin_score, silhouette_score
from sklearn.metrics.pairwise import cosine_similarity

from superposition.metrics import (
    accuracy,
    class_means,
    cosine_histogram,
    davies_bouldin,
    embed_2d,
    silhouette,
    unit_selectivity,
)
from unifiedviz.errors import UnifiedVizError


def blobs(n=157, d=9, k=5, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    x = rng.normal(size=(n, d)) + 2.0 * rng.normal(size=(k, d))[labels]
    return x, labels


@pytest.mark.parametrize("chunk", [16, 1000])  # several blocks (with a ragged last one) and a single one
def test_silhouette_matches_sklearn(chunk):
    x, labels = blobs()
    expected = silhouette_score(x, labels)
    assert silhouette(x, labels, chunk=chunk, dtype=torch.float64) == pytest.approx(expected, abs=1e-12)
    assert silhouette(x, labels, chunk=chunk) == pytest.approx(expected, abs=1e-5)  # float32 default


def test_silhouette_singleton_class_and_non_contiguous_labels_match_sklearn():
    x, labels = blobs(n=40, k=3, seed=1)
    labels = np.where(labels == 2, 17, labels)  # arbitrary label values
    labels[5] = 99  # a class of one: scikit-learn scores it 0
    expected = silhouette_score(x, labels)
    assert silhouette(x, labels, chunk=7, dtype=torch.float64) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("chunk", [10, 8192])
def test_davies_bouldin_matches_sklearn(chunk):
    x, labels = blobs(seed=2)
    expected = davies_bouldin_score(x, labels)
    assert davies_bouldin(x, labels, chunk=chunk, dtype=torch.float64) == pytest.approx(expected, abs=1e-12)
    assert davies_bouldin(x, labels, chunk=chunk) == pytest.approx(expected, rel=1e-5)


def test_davies_bouldin_by_hand():
    # Two classes on a line: class 0 at {0, 2} (centroid 1, spread 1), class 1 at {10, 14}
    # (centroid 12, spread 2). R = (1 + 2) / 11 for both classes, so DBI = 3 / 11.
    x = np.array([[0.0], [2.0], [10.0], [14.0]])
    assert davies_bouldin(x, [0, 0, 1, 1], dtype=torch.float64) == pytest.approx(3 / 11)


def test_clustering_needs_two_to_n_minus_one_classes():
    x, _ = blobs(n=10)
    with pytest.raises(UnifiedVizError, match="classes"):
        silhouette(x, np.zeros(10, dtype=int))
    with pytest.raises(UnifiedVizError, match="classes"):
        davies_bouldin(x, np.arange(10))


def test_cosine_histogram_by_hand():
    # Angles 0, 60, 90 and 180 degrees in the plane, and a zero vector (similarity 0 to all).
    x = np.array([[1.0, 0.0], [0.5, math.sqrt(3) / 2], [0.0, 1.0], [-1.0, 0.0], [0.0, 0.0]])
    # Pairs i<j: (0,1)=0.5 (0,2)=0 (0,3)=-1 (0,4)=0 (1,2)=sqrt(3)/2 (1,3)=-0.5 (1,4)=0 (2,3)=0 (2,4)=0 (3,4)=0
    sims = [0.5, 0.0, -1.0, 0.0, math.sqrt(3) / 2, -0.5, 0.0, 0.0, 0.0, 0.0]
    # Bins of width 0.5 on [-1, 1]: [-1,-.5) [-.5,0) [0,.5) [.5,1]; -0.5 belongs to the second.
    for chunk in (2, 64):
        h = cosine_histogram(x, bins=4, chunk=chunk)
        assert h["counts"] == [1, 1, 6, 2]
        assert h["pairs"] == 10
        assert h["mean"] == pytest.approx(sum(sims) / 10, abs=1e-7)
        assert h["edges"] == pytest.approx([-1.0, -0.5, 0.0, 0.5, 1.0])


def test_cosine_histogram_matches_sklearn_pairs():
    x, _ = blobs(n=203, d=6, seed=3)
    sims = cosine_similarity(x)[np.triu_indices(len(x), 1)]
    expected, _ = np.histogram(sims, bins=50, range=(-1, 1))
    h = cosine_histogram(x, bins=50, chunk=37)
    # float32 products may move a value sitting on a bin edge into the neighbour bin
    assert np.abs(np.asarray(h["counts"]) - expected).sum() <= 2
    assert sum(h["counts"]) == len(sims)
    assert h["mean"] == pytest.approx(sims.mean(), abs=1e-6)


def test_class_means_and_accuracy():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [10.0, 0.0]])
    assert class_means(x, [5, 5, 2]).tolist() == [[10.0, 0.0], [2.0, 3.0]]  # classes in sorted order
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [5.0, 1.0], [0.0, 1.0]])
    assert accuracy(logits, torch.tensor([0, 1, 1, 1])) == 0.75


def test_unit_selectivity_by_hand():
    labels = np.array([0, 0, 1, 1, 2, 2])
    units = np.zeros((6, 3))
    units[:2, 0] = 4.0  # unit 0: only class 0 -> selectivity 1, responds to 1 class
    units[:, 1] = [2.0, 2.0, 2.0, 2.0, 1.0, 1.0]  # unit 1: means (2, 2, 1) -> (2 - 1.5) / 3.5, responds to 2
    # unit 2 never fires: dead
    out = unit_selectivity(units, labels, respond_fraction=0.6)
    assert out["units"] == 3 and out["dead"] == 1
    assert out["selectivity_mean"] == pytest.approx((1.0 + 0.5 / 3.5) / 2)
    assert out["classes_per_unit_hist"] == [1, 1, 0]
    assert out["classes_per_unit_mean"] == pytest.approx(1.5)
    assert out["polysemantic_fraction"] == pytest.approx(0.5)


@pytest.mark.parametrize("backend", ["sklearn", "opentsne"])
def test_tsne_embedding_is_seeded_and_two_dimensional(backend):
    if backend == "opentsne":
        pytest.importorskip("openTSNE")
    x, labels = blobs(n=60, d=8, k=3, seed=4)
    a = embed_2d(x, "tsne", seed=3, tsne_backend=backend)
    assert a.shape == (60, 2)
    np.testing.assert_array_equal(a, embed_2d(x, "tsne", seed=3, tsne_backend=backend))
    assert silhouette(a, labels) > 0.3  # well separated blobs stay separated in 2-D
