"""Black boxes: a scoring function as a model, optimised without gradients; gradient optimisers refused."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch

from unifiedviz.adapters import Adapter
from unifiedviz.cli import main
from unifiedviz.errors import UnifiedVizError
from unifiedviz.models import BlackBox, load_model
from unifiedviz.visualize import visualize

TARGET = torch.linspace(0, 1, 3 * 8 * 8).view(1, 3, 8, 8)


def closeness(x):
    """Scores through NumPy (no autograd possible): 0 for the target image, lower further away; two outputs."""
    d = ((x.numpy() - TARGET.numpy()) ** 2).reshape(len(x), -1).mean(1)
    return np.stack([-d, d], 1)


@pytest.fixture
def box(one_thread) -> BlackBox:
    return BlackBox(closeness, input_size=8, class_names=["near", "far"])


def test_gradient_free_am_raises_a_black_box_score(box):
    result = visualize(box, "class=0", steps=150, param="pixel", optimizer="random-search", lr=0.5,
                       transforms=None, progress=False)
    scores = result.history[:, 0]
    assert bool((scores[1:] >= scores[:-1]).all())  # (1+1)-ES keeps its best
    assert -result.activations[0] < 0.85 * -scores[0]  # the distance to the target shrank by over 15%


def test_gradient_optimisers_are_refused_in_one_line(box):
    with pytest.raises(UnifiedVizError) as err:
        visualize(box, "class=0", steps=2, optimizer="adam", progress=False)
    assert str(err.value) == "this model has no gradient; use --optimizer random-search or protes"


def test_the_cli_takes_a_black_box_from_a_py_factory_and_refuses_adam_and_saliency(tmp_path, capsys, one_thread):
    src = tmp_path / "scorer.py"
    src.write_text(textwrap.dedent("""
        import torch
        from unifiedviz.models import BlackBox

        def build():
            return BlackBox(lambda x: x.mean((1, 2, 3)), input_size=8)   # one score: brightness
    """))
    code = main(["visualize", f"py:{src}:build", "class=0", "--optimizer", "adam", "--steps", "2",
                 "--out", str(tmp_path / "out"), "--threads", "1", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["unifiedviz: error: this model has no gradient; use --optimizer random-search or protes"]
    code = main(["visualize", f"py:{src}:build", "class=0", "--optimizer", "random-search", "--param", "pixel",
                 "--steps", "30", "--lr", "0.5", "--transforms", "none", "--out", str(tmp_path / "out"),
                 "--threads", "1", "--quiet"])
    assert code == 0
    brightness = float(capsys.readouterr().out.split("activation ")[1].split()[0])
    assert brightness > 0.5  # the pixel param starts grey (0.5): the search made it brighter
    from PIL import Image

    Image.new("RGB", (8, 8), (90, 120, 200)).save(tmp_path / "photo.png")
    code = main(["explain", f"py:{src}:build", str(tmp_path / "photo.png"), "--method", "saliency",
                 "--out", str(tmp_path / "maps"), "--threads", "1", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["unifiedviz: error: saliency needs the model's gradient and this model has none: "
                                 "use --method occlusion or sobol"]


def test_scores_are_the_logits_and_bad_outputs_are_named(box):
    model = load_model(box)
    assert model is box and Adapter(box).layer("<logits>").shape == (2,)
    with pytest.raises(UnifiedVizError, match=r"class 2 is out of range for the model output: valid classes are 0\.\.1"):
        Adapter(box).resolve("class=2")
    bad = BlackBox(lambda x: torch.zeros(len(x) + 1), input_size=8)
    with pytest.raises(UnifiedVizError, match=r"returned scores of shape \(3,\) for 2 images: return shape \[2\]"):
        bad(torch.rand(2, 3, 8, 8))
    with pytest.raises(UnifiedVizError, match="returned a str: return one score per image"):
        BlackBox(lambda x: "high", input_size=8)(torch.rand(2, 3, 8, 8))


def test_any_module_can_say_it_has_no_gradient(one_thread):
    class Recording(torch.nn.Module):
        has_gradient = False

        def forward(self, x):
            return x.flatten(1)[:, :2]

    model = load_model(Recording(), input_size=8)
    with pytest.raises(UnifiedVizError, match="this model has no gradient"):
        visualize(model, "class=0", steps=2, optimizer="sign-gradient", progress=False)
    result = visualize(model, "class=0", steps=3, optimizer="random-search", param="pixel", progress=False)
    assert result.history.shape == (3, 1)


def test_explain_refuses_gradient_methods_on_a_black_box_and_runs_occlusion(box, tmp_path, capsys):
    from unifiedviz.explain import explain

    x = TARGET.clone()
    x[..., :4, :] = 0.0  # the top half far from the target: occluding there cannot lower the score further
    with pytest.raises(UnifiedVizError) as err:
        explain(box, x, "class=0", "saliency")
    assert str(err.value) == "saliency needs the model's gradient and this model has none: use --method occlusion or sobol"
    heat = explain(box, x, "class=0", "occlusion", window=2, stride=2)
    assert heat.shape == (1, 8, 8)
    assert heat[0, 4:].mean() > heat[0, :4].abs().mean()  # blanking the matching half costs closeness, the other not
