"""The planted-concept benchmark reproduces the paper's point (trains a small CNN in ~4 s)."""
from __future__ import annotations

import pytest

from scripts.probes_benchmark import run_benchmark

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def result(one_thread):
    return run_benchmark(seed=0, runs=20)


def test_spurious_probe_accurate_but_not_aligned(result):
    a, s = result["probes"]["logistic"], result["probes"]["spurious"]
    assert result["model_test_accuracy"] >= 0.95
    assert abs(a["accuracy"] - s["accuracy"]) <= 0.10
    assert s["hard_accuracy"] <= a["hard_accuracy"] - 0.20
    assert s["segmentation"]["iou"] < a["segmentation"]["iou"]
    assert result["probes"]["cured"]["hard_accuracy"] > s["hard_accuracy"]


def test_tcav_concept_significant_random_not(result):
    assert result["tcav"]["concept"]["p_value"] < 0.05
    assert result["tcav"]["concept"]["tcav"] > result["tcav"]["concept"]["random_mean"]
    assert result["tcav"]["random_set"]["p_value"] >= 0.05
