"""CAM methods against pytorch-grad-cam (optional reference), ViT token layers, and the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from unifiedviz.adapters import as_adapter
from unifiedviz.cli import main
from unifiedviz.errors import UnifiedVizError
from unifiedviz.explain import explain
from unifiedviz.explain.base import unit_scorer
from unifiedviz.explain.cam import _finish, attention_layers, default_cam_layer, to_grid
from unifiedviz.inputs import load_inputs
from unifiedviz.models import load_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cnn():
    return load_model("builtin:digits-cnn")


@pytest.mark.parametrize("layer", ["conv3", "relu2", "pool3"])
@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_cam_equals_pytorch_grad_cam(cnn, layer, method):
    cam_mod = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    x = load_inputs("digits", cnn.spec, limit=6).images
    targets = [3, 1, 4, 1, 5, 9]
    cls = cam_mod.GradCAM if method == "gradcam" else cam_mod.GradCAMPlusPlus
    with cls(model=cnn, target_layers=[getattr(cnn.net, layer)]) as ref_cam:
        ref = ref_cam(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in targets])
    ours = explain(cnn, x, [f"class={t}" for t in targets], method, layer=layer)  # one unit per image
    one = explain(cnn, x[2:3], "class=4", method, layer=layer)
    assert torch.allclose(one[0], ours[2], atol=1e-5 if method == "gradcam" else 1e-4)  # batching noise
    # Grad-CAM to 1e-5; Grad-CAM++ cubes the gradients, so float32 order of operations shows (1.4e-5 measured)
    assert np.abs(ours.numpy() - ref).max() < (1e-5 if method == "gradcam" else 1e-4)


def test_cam_targets_any_unit_and_picks_a_layer_before_it(cnn):
    x = load_inputs("digits", cnn.spec, limit=2).images
    adapter = as_adapter(cnn)
    assert default_cam_layer(adapter) == "pool3"
    assert default_cam_layer(adapter, "conv2:channel=4") == "conv2"
    ch = int(adapter.capture(x, "relu3")["relu3"].mean((0, 2, 3)).argmax())  # a live channel
    m = explain(cnn, x, f"relu3:channel={ch}", "gradcam")
    assert m.shape == (2, 32, 32) and float(m.max()) == pytest.approx(1.0, abs=1e-6)


def test_vit_token_layer_drops_the_cls_token():
    vit = load_model("builtin:digits-vit")
    adapter = as_adapter(vit)
    assert default_cam_layer(adapter) == "blocks.3.norm1"
    t = torch.arange(2 * 65 * 3, dtype=torch.float32).view(2, 65, 3)
    g = to_grid(adapter, "blocks.3.norm1", t)
    assert g.shape == (2, 3, 8, 8)
    assert torch.equal(g[:, :, 0, 1], t[:, 2])  # token 0 is CLS: patch (0, 1) is token 2
    x = load_inputs("digits", vit.spec, limit=2).images
    for method in ("gradcam", "gradcam++", "scorecam"):
        m = explain(vit, x, "class=3", method)
        assert m.shape == (2, 32, 32) and torch.isfinite(m).all() and m.max() > 0.99


def test_vit_gradcam_is_the_gradient_weighted_attention_rollout():
    vit = load_model("builtin:digits-vit")
    adapter = as_adapter(vit)
    x = load_inputs("digits", vit.spec, limit=3).images
    units = ["class=3", "class=1", "class=4"]
    blocks = [f"blocks.{k}.attn.attn_drop" for k in range(4)]
    assert attention_layers(adapter) == blocks
    assert attention_layers(adapter, "blocks.1:channel=0") == blocks[:2]
    # Chefer et al. eqs. 5-6 step by step on the captured attention and its gradients
    with unit_scorer(adapter, units, extra=tuple(blocks), live=True) as score, torch.enable_grad():
        values, acts = score(x.requires_grad_(True))
        grads = torch.autograd.grad(values.sum(), [acts[b] for b in blocks])
    r = torch.eye(65).repeat(3, 1, 1)
    for b, g in zip(blocks, grads):
        r = r + torch.einsum("bqk,bkt->bqt", (g * acts[b]).clamp(min=0).mean(1), r)
    cls_row = r[:, 0, 1:].reshape(3, 8, 8)  # CLS query, patch keys, row-major grid
    ours = explain(vit, x.detach(), units, "gradrollout")
    assert torch.equal(explain(vit, x.detach(), units, "gradcam"), ours)  # the ViT default of Grad-CAM
    assert torch.allclose(ours, _finish(cls_row, adapter), atol=1e-5)  # Grad-CAM's post-processing
    assert not torch.equal(explain(vit, x.detach(), units, "gradcam", layer="blocks.3.norm1"), ours)
    inner = explain(vit, x.detach(), "blocks.1:channel=3", "gradrollout")  # two blocks, mean of patch rows
    assert inner.shape == (3, 32, 32) and torch.isfinite(inner).all() and not torch.allclose(inner, ours)
    with pytest.raises(UnifiedVizError, match="attention layers"):
        explain(load_model("builtin:digits-cnn"), x.detach(), "class=3", "gradrollout")


def test_cam_refuses_a_vector_layer(cnn):
    x = load_inputs("digits", cnn.spec, limit=1).images
    with pytest.raises(UnifiedVizError, match="not a conv or token layer"):
        explain(cnn, x, "class=3", "gradcam", layer="flatten")


def test_cli_explain_writes_panels_and_summary(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["explain", "builtin:digits-cnn", "digits", "--method", "gradcam,saliency,occlusion,sobol",
            "--limit", "3", "--unit", "class=3", "--sobol-samples", "8", "--patch", "8", "--am-steps", "4",
            "--steps", "8", "--out", str(out), "--threads", "1"]
    assert main(argv) == 0
    files = sorted(p.name for p in out.iterdir())
    assert ".unifiedviz-run.json" in files and "summary.json" in files
    assert len([f for f in files if f.endswith(".png")]) == 3
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["mean"]) == {"gradcam", "saliency", "occlusion", "sobol", "random"}
    assert all(r["unit"] == "class=3" for r in summary["per_image"])
    assert 0 <= summary["mean"]["gradcam"]["deletion"] <= 1
    from PIL import Image

    png = next(out.glob("*.png"))
    assert Image.open(png).size[0] > 6 * 128  # original, 4 maps, AM image
    # the run-folder policy: a visualize folder is refused before any work
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("mine")
    assert main(["explain", "builtin:digits-cnn", "digits", "--out", str(tmp_path / "other")]) == 2
    assert (tmp_path / "other" / "x.txt").read_text() == "mine"
    assert "unifiedviz: error:" in capsys.readouterr().err
    assert main(["explain", "builtin:digits-cnn", "digits", "--method", "gradcamm", "--out", str(out)]) == 2
    assert "unknown explainer 'gradcamm': did you mean 'gradcam'" in capsys.readouterr().err
