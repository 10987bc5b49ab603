"""Sobol indices (Ishigami), local methods, faithfulness and the randomisation check."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from unifiedviz.errors import UnifiedVizError
from unifiedviz.explain import (
    EXPLAINERS,
    deletion_insertion,
    explain,
    randomisation_check,
    sobol_indices,
    unit_values,
)
from unifiedviz.explain.faithfulness import edge_map, random_maps
from unifiedviz.explain.sobol import image_sobol
from unifiedviz.inputs import load_inputs
from unifiedviz.models import load_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cnn():
    return load_model("builtin:digits-cnn")


@pytest.fixture(scope="module")
def digits(cnn):
    return load_inputs("digits", cnn.spec, limit=8)


def ishigami(X, a=7.0, b=0.1):
    return np.sin(X[:, 0]) + a * np.sin(X[:, 1]) ** 2 + b * X[:, 2] ** 4 * np.sin(X[:, 0])


def test_ishigami_matches_analytic_values_within_ci():
    r = sobol_indices(ishigami, [[-np.pi, np.pi]] * 3, samples=4096, seed=1, batch_size=1000)
    s1, st = np.array([0.3139, 0.4424, 0.0]), np.array([0.5576, 0.4424, 0.2437])
    assert r.evaluations == 4096 * 5
    assert np.all(np.abs(r.S1 - s1) <= r.S1_conf), (r.S1, r.S1_conf)
    assert np.all(np.abs(r.ST - st) <= r.ST_conf), (r.ST, r.ST_conf)
    assert r.ranking()[0] == "x0"


def test_groups_and_bad_inputs():
    # x0 and x2 grouped: their total index is the share of every term with x0 or x2 (1 - S1[x1]).
    r = sobol_indices(ishigami, [[-np.pi, np.pi]] * 3, groups=["a", "b", "a"], samples=2048, seed=0)
    assert r.names == ["a", "b"]
    assert abs(r.ST[0] - (1 - 0.4424)) <= r.ST_conf[0] + 0.01
    with pytest.raises(UnifiedVizError, match="power of two"):
        sobol_indices(ishigami, [[0, 1]] * 3, samples=100)
    with pytest.raises(UnifiedVizError, match="one group name per variable"):
        sobol_indices(ishigami, [[0, 1]] * 3, groups=["a"])


def test_image_sobol_finds_the_only_patch_that_matters():
    # A model that reads only the top-left 8x8 patch: all of its variance is there.
    class TopLeft(torch.nn.Module):
        def forward(self, x):
            return torch.stack([x[:, :, :8, :8].mean((1, 2, 3)) ** 2, x.mean((1, 2, 3)) * 0], 1)

    from unifiedviz.models.spec import InputSpec, VizModel

    model = VizModel(TopLeft(), InputSpec(size=(32, 32), channels=1))
    x = torch.rand(1, 1, 32, 32) * 0.5 + 0.5
    (r,) = image_sobol(model, x, "class=0", patch=8, samples=64)
    assert r.extra["grid"] == (4, 4) and r.ranking()[0] == "r0c0"
    assert r.ST[0] > 0.9 and np.abs(r.ST[1:]).max() < 0.05


@pytest.mark.parametrize("unit", ["class=3", "conv2:channel=5", "conv3:neuron=7:y=2:x=3"])
def test_every_method_explains_any_unit(cnn, digits, unit):
    x = digits.images[:2]
    for name in EXPLAINERS.names():
        if name == "gradrollout":  # ViTs only (tests/test_explain_cam.py)
            continue
        opts = {"samples": 8, "patch": 8} if name == "sobol" else {"samples": 2} if name == "smoothgrad" else {}
        m = explain(cnn, x, unit, name, **opts)
        assert m.shape == (2, 32, 32), name
        assert torch.isfinite(m).all() and m.abs().sum() > 0, name


def test_integrated_gradients_are_complete(cnn, digits):
    x = digits.images[:3]
    ig = explain(cnn, x, "class=2", "integrated", steps=64)
    gap = unit_values(cnn, "class=2", x) - unit_values(cnn, "class=2", torch.zeros_like(x))
    assert torch.allclose(ig.sum((1, 2)), gap, rtol=0.05, atol=0.05), (ig.sum((1, 2)), gap)


def test_saliency_is_the_autograd_gradient(cnn, digits):
    x = digits.images[:2].clone().requires_grad_(True)
    cnn(x)[:, 4].sum().backward()
    assert torch.allclose(explain(cnn, x.detach(), "class=4", "saliency"), x.grad.abs().amax(1), atol=1e-6)


def test_occlusion_of_a_blank_region_is_zero(cnn):
    x = torch.zeros(1, 1, 32, 32)
    x[..., 8:24, 8:24] = 1.0
    m = explain(cnn, x, "class=1", "occlusion", window=4, stride=4)
    assert m[0, :4, :4].abs().max() < 1e-5  # occluding black with black changes nothing (batching noise)
    assert m[0, 8:24, 8:24].abs().max() > 1e-2


def deletion_aucs(model_name, methods=("gradcam", "saliency", "random"), **options):
    model = load_model(model_name)
    inp = load_inputs("digits", model.spec, limit=16)
    x, y = inp.images, inp.labels
    res = {}
    for method in methods:
        aucs = []
        for c in range(10):  # each image explained for its own label
            idx = (y == c).nonzero().flatten()
            if len(idx) == 0:
                continue
            xs = x[idx]
            mp = random_maps(xs, spatial=(32, 32), seed=c) if method == "random" else \
                explain(model, xs, f"class={c}", method, **options)
            aucs.extend(deletion_insertion(model, xs, mp, f"class={c}", steps=16)["deletion"].tolist())
        res[method] = float(np.mean(aucs))
    return res


@pytest.mark.parametrize("model_name", ["builtin:digits-cnn", "builtin:digits-vit"])
def test_gradcam_and_saliency_delete_faster_than_random_maps(model_name):
    res = deletion_aucs(model_name)
    assert res["gradcam"] < res["random"] and res["saliency"] < res["random"], res


def test_token_grid_gradcam_on_the_vit_deletes_slower_than_random_maps():
    # Why Grad-CAM on a ViT defaults to gradrollout: the classic recipe (channel weights = mean
    # gradient over the patch tokens) at the last block's norm1 prefers the ink-free background.
    res = deletion_aucs("builtin:digits-vit", ("gradcam", "random"), layer="blocks.3.norm1")
    assert res["gradcam"] > res["random"], res


def test_deletion_curve_ends_at_the_baseline(cnn, digits):
    x = digits.images[:2]
    r = deletion_insertion(cnn, x, random_maps(x, spatial=(32, 32)), "class=0", steps=4)
    probs = torch.softmax(cnn(x), -1)[:, 0].detach().double().numpy()
    assert np.allclose(r["deletion_curve"][:, 0], probs, atol=1e-5)
    assert np.allclose(r["insertion_curve"][:, -1], probs, atol=1e-5)
    assert np.allclose(r["deletion_curve"][:, -1], r["insertion_curve"][:, 0], atol=1e-6)
    with pytest.raises(UnifiedVizError, match="do not fit"):
        deletion_insertion(cnn, x, torch.zeros(2, 16, 16), "class=0")


@pytest.mark.parametrize("model_name", ["builtin:digits-cnn", "builtin:digits-vit"])
@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "scorecam", "gradrollout", "saliency", "grad_x_input",
                                    "smoothgrad", "integrated", "occlusion", "sobol"])
def test_randomisation_check_passes(model_name, method):
    if method == "gradrollout" and model_name == "builtin:digits-cnn":
        pytest.skip("gradrollout reads attention: ViTs only")
    model = load_model(model_name)
    x = load_inputs("digits", model.spec, limit=4).images
    opts = {"patch": 8, "samples": 16} if method == "sobol" else {}
    chk = randomisation_check(model, x, "class=3", method, **opts)
    assert chk.passed, (method, chk.correlations)


def test_sobol_towards_black_mostly_shows_the_ink(cnn, digits):
    # On black-background digits, blending patches to black leaves ink-free patches at ST = 0
    # for any weights: the map then fails the randomisation check (why the default is grey).
    chk = randomisation_check(cnn, digits.images[:4], "class=3", "sobol", patch=8, samples=16, baseline=0.0)
    assert not chk.passed


def test_randomisation_check_fails_for_an_edge_detector(cnn, digits):
    chk = randomisation_check(cnn, digits.images[:4], "class=3", edge_map)
    assert not chk.passed and chk.mean > 0.99
