"""The diabetes MLP built-in: [B, F] models first-class (layers, units, explainers), its Sobol indices."""
from __future__ import annotations

import pytest
import torch

from unifiedviz.adapters import as_adapter
from unifiedviz.cli import main
from unifiedviz.errors import UnifiedVizError
from unifiedviz.explain import explain
from unifiedviz.explain.sobol import tabular_sobol
from unifiedviz.models import load_model
from unifiedviz.models.builtin import builtin_metadata
from unifiedviz.models.builtin.diabetes_mlp import (
    FEATURES,
    load_diabetes_data,
    r2_score,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def mlp():
    return load_model("builtin:diabetes-mlp")


def test_shipped_weights_score_what_their_metadata_says(mlp):
    x, y = load_diabetes_data("test")
    assert mlp.spec.shape == (10,)
    with torch.no_grad():
        r2 = r2_score(mlp(x)[:, 0], y)
    assert r2 > 0.2 and abs(r2 - float(builtin_metadata("diabetes-mlp")["test_r2"])) < 1e-4


def test_layers_lists_vector_layers(capsys):
    assert main(["layers", "builtin:diabetes-mlp"]) == 0
    out = capsys.readouterr().out
    for row in ("fc1", "relu2", "out"):
        assert row in out
    assert "vector" in out and "8" in out


def test_units_and_local_methods_on_vectors(mlp):
    x, _ = load_diabetes_data("test")
    adapter = as_adapter(mlp)
    assert adapter.resolve("fc2:neuron=3").info.shape == (8,)
    with pytest.raises(UnifiedVizError):
        adapter.resolve("fc2:neuron=8")
    for method in ("saliency", "grad_x_input", "smoothgrad", "integrated", "occlusion"):
        m = explain(mlp, x[:4], "class=0", method)
        assert m.shape == (4, 10) and torch.isfinite(m).all(), method
    ig = explain(mlp, x[:4], "class=0", "integrated", steps=64)
    with torch.no_grad():
        gap = mlp(x[:4])[:, 0] - mlp(torch.zeros_like(x[:4]))[:, 0]
    assert torch.allclose(ig.sum(1), gap, atol=0.02)
    with pytest.raises(UnifiedVizError, match="image model"):
        explain(mlp, x[:1], "class=0", "gradcam")


def test_sobol_ranks_bmi_and_s5_first(mlp):
    res = tabular_sobol(mlp, "class=0", names=FEATURES, samples=512)
    assert set(res.ranking()[:2]) == {"bmi", "s5"}
    assert res.ST[FEATURES.index("sex")] < 0.05
    grouped = tabular_sobol(mlp, "class=0", groups=["lab" if f.startswith("s") and f != "sex" else "body"
                                                    for f in FEATURES], samples=512)
    assert grouped.names == ["body", "lab"]


def test_explain_command_refuses_vector_models(tmp_path, capsys):
    assert main(["explain", "builtin:diabetes-mlp", "digits", "--out", str(tmp_path / "r")]) == 2
    assert "tabular_sobol" in capsys.readouterr().err
