"""Superposition figures choose their range and bins from the data and say how many pairs each
curve holds; small sets are drawn as a sorted similarity matrix; progress names the stage."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from superposition.measure import cosine_pairs
from superposition.plots import cosine_figure, histogram_edges
from superposition.train import Progress

pytestmark = pytest.mark.usefixtures("one_thread")


def _hist(d):
    return {"mean": float(np.mean(d["values"])), "pairs": d["pairs"]}


def test_histogram_range_and_bins_follow_the_data():
    g = torch.Generator().manual_seed(0)
    narrow = cosine_pairs(torch.randn(300, 512, generator=g))  # near-orthogonal: cosines within ~±0.2
    assert narrow["pairs"] == 300 * 299 // 2 == len(narrow["values"]) and not narrow["sampled"]
    edges = histogram_edges([narrow["values"]])
    lo, hi = float(narrow["values"].min()), float(narrow["values"].max())
    assert edges[0] <= lo and edges[-1] >= hi and edges[-1] - edges[0] < 1.2 * (hi - lo)  # not [-1, 1]
    counts, _ = np.histogram(narrow["values"], edges)
    assert 10 <= len(counts) <= 80 and (counts > 0).sum() >= 10  # mass spread over many bins
    fig = cosine_figure({"baseline": _hist(narrow)}, "t", {"baseline": narrow})
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[0].startswith("baseline: 44,850 pairs of 300 vectors")
    assert fig.axes[0].get_xlim() == (edges[0], edges[-1])


def test_large_sets_are_sampled_and_say_so():
    d = cosine_pairs(torch.randn(50, 8), max_pairs=300)
    assert d["pairs"] == 1225 and d["sampled"] and len(d["values"]) == 300
    fig = cosine_figure({"active": _hist(d)}, "t", {"active": d})
    assert "300-pair sample" in fig.axes[0].get_legend().get_texts()[0].get_text()


def test_small_sets_are_a_sorted_similarity_matrix():
    x = torch.tensor([[1.0, 0, 0], [0.9, 0.1, 0], [0, 1.0, 0], [0, 0.95, 0.1], [0, 0, 1.0]])
    d = cosine_pairs(x)
    assert d["matrix"].shape == (5, 5) and d["pairs"] == 10
    assert np.allclose(np.sort(d["values"]), np.sort(d["matrix"][np.triu_indices(5, 1)]), atol=1e-6)
    names = ["a", "b", "c", "d", "e"]
    fig = cosine_figure({"baseline": _hist(d), "active": _hist(d)}, "class means", {"baseline": d, "active": d},
                        names=names)
    image_axes = [ax for ax in fig.axes if ax.get_images()]
    assert len(image_axes) == 2 and image_axes[0].get_title().startswith("baseline: 10 pairs of 5")
    order = [t.get_text() for t in image_axes[0].get_xticklabels()]
    # clustered order: similar vectors sit next to each other
    assert abs(order.index("a") - order.index("b")) == 1 and abs(order.index("c") - order.index("d")) == 1


def test_progress_names_the_stage_and_estimates_from_earlier_ones():
    out = io.StringIO()
    p = Progress(stream=out)
    with p.stage("baseline: training on all 1000 images, 2 epochs", kind="training", work=2000):
        pass
    p.rates["training"] = 0.01  # 10 ms per image-epoch, as if timed
    with p.stage("active round 2 of 5: training on 400 labelled images, 2 epochs", kind="training", work=800):
        pass
    lines = out.getvalue().splitlines()
    assert "baseline: training on all 1000 images" in lines[0] and "no estimate yet (first training" in lines[0]
    assert "active round 2 of 5" in lines[2] and "estimate 8s from this run's earlier training" in lines[2]
    assert lines[3].endswith("done in 0s")
    quiet = io.StringIO()
    with Progress(enabled=False, stream=quiet).stage("x", kind="t-SNE", work=1):
        pass
    assert quiet.getvalue() == ""
