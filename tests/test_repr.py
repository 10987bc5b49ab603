"""Results show themselves in Jupyter: `_repr_png_` is a valid PNG of the labelled picture, `_repr_html_` holds it."""
from __future__ import annotations

import base64
import io
import re

import pytest
import torch
from PIL import Image

from unifiedviz.report.images import read_legend

pytestmark = pytest.mark.usefixtures("one_thread")


def _png(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    assert img.format == "PNG"
    return img


def _inline_pngs(html: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]


@pytest.fixture(scope="module")
def vis():
    from unifiedviz import visualize

    return visualize("builtin:digits-cnn", ["class=2,0"], steps=2, progress=False)


def test_visualization_repr_png_is_the_labelled_grid_file(vis, tmp_path):
    img = _png(vis._repr_png_())
    assert img.text["unifiedviz:legend"] and read_legend(io.BytesIO(vis._repr_png_()))["tiles"] == \
        ["class=2 (2)", "class=0 (0)"]
    vis.save(tmp_path / "run")
    with Image.open(tmp_path / "run" / "grid.png") as written:
        assert written.size == img.size  # two 128 px tiles side by side, captions under them
        assert written.convert("RGB").tobytes() == img.convert("RGB").tobytes()
    assert img.size[0] == 4 + 2 * (128 + 4)


def test_visualization_repr_html_holds_the_grid_and_a_row_per_unit(vis):
    html = vis._repr_html_()
    assert _inline_pngs(html) == [vis._repr_png_()]
    assert html.count("<tr>") == 1 + 2 and "class=2 (2)" in html and "class=0 (0)" in html
    assert f"{float(vis.activations[0]):.4g}" in html


def test_sequence_visualization_repr_png_is_the_titled_plot():
    from unifiedviz import visualize

    seq = visualize("builtin:gunpoint-cnn", "class=0", steps=2, progress=False)
    img = _png(seq._repr_png_())
    assert img.size == (600, 160)  # one 6 x 1.6 inch panel at 100 dpi
    assert read_legend(io.BytesIO(seq._repr_png_()))["tiles"] == ["class=0 (Gun-Draw)"]


@pytest.fixture(scope="module")
def attack():
    import adversarial as adv
    from unifiedviz.datasets import load_digits_images
    from unifiedviz.models import load_model

    x, y = load_digits_images("test")
    return adv.PGD(load_model("builtin:digits-cnn"), eps=0.1, steps=2)(x[:3], y[:3])


def test_attack_result_repr_png_stacks_each_images_panel(attack):
    from adversarial.panels import panel

    img = _png(attack._repr_png_())
    panels = [panel(attack, i) for i in range(3)]
    assert img.size == (panels[0].width, sum(p.height for p in panels))
    tiles = read_legend(io.BytesIO(attack._repr_png_()))["tiles"]
    assert len(tiles) == 9 and [t.split()[0] for t in tiles[::3]] == ["original"] * 3
    assert [f"pred {int(p)} " in t for p, t in zip(attack.adv_pred, tiles[2::3])] == [True] * 3


def test_attack_result_repr_html_says_the_success_rate_and_shows_the_panels(attack):
    html = attack._repr_html_()
    assert attack.success_line().split(";")[0] in html
    assert _inline_pngs(html) == [attack._repr_png_()]


def test_explain_panel_is_a_picture_jupyter_shows():
    from unifiedviz.explain.panels import panel

    image = torch.rand(1, 16, 16)
    img = panel(image, {"saliency": torch.rand(16, 16)}, {"saliency": "del 0.1"}, None, "class=1")
    shown = _png(img._repr_png_())  # PIL images display themselves
    assert shown.size == img.size and img.width == 4 + 2 * (128 + 4)
