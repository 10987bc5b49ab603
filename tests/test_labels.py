"""Every grid PNG a command writes names its tiles: drawn under each tile and, exactly, in its
`unifiedviz:legend` (report.images.read_legend), in reading order. One test per command's grids."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from unifiedviz.cli import main
from unifiedviz.errors import UnifiedVizError
from unifiedviz.report.images import GAP, LEGEND_KEY, LINE, font, labelled_grid, read_legend, save_labelled_grid

pytestmark = pytest.mark.usefixtures("one_thread")


def _caption(img: Image.Image, i: int, *, ncols: int, tile: int, lines: int = 1) -> np.ndarray:
    """The caption band under tile i of a square-tiled, untitled grid."""
    cap_h = LINE * lines + GAP
    r, c = divmod(i, ncols)
    x0, y0 = GAP + c * (tile + GAP), GAP + r * (tile + cap_h + GAP)
    return np.asarray(img.crop((x0, y0 + tile, x0 + tile, y0 + tile + cap_h)))


def _drawn(label: str, *, tile: int, lines: int = 1) -> np.ndarray:
    """`label` drawn alone as the grid draws a one-line caption."""
    band = Image.new("RGB", (tile, LINE * lines + GAP), "white")
    ImageDraw.Draw(band).text((0, 2), label, fill=(0, 0, 0), font=font())
    return np.asarray(band)


def test_labelled_grid_draws_each_label_under_its_own_tile_and_stores_the_legend(tmp_path):
    labels = ["conv1:channel=0", "b", "class=3 (cat)", "x", "head=2"]
    images = torch.rand(5, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    path = save_labelled_grid(images, labels, tmp_path / "g.png", ncols=3, tile=96)
    assert read_legend(path) == {"columns": 3, "rows": 2, "tiles": labels}
    with Image.open(path) as img:
        img = img.convert("RGB")
        assert img.size == (GAP + 3 * (96 + GAP), GAP + 2 * (96 + LINE + GAP + GAP))
        for i, label in enumerate(labels):
            assert np.array_equal(_caption(img, i, ncols=3, tile=96), _drawn(label, tile=96)), label
        # and each tile holds its own image, enlarged 12x
        first = np.asarray(img.crop((GAP, GAP, GAP + 96, GAP + 96)))
        assert np.array_equal(first[::12, ::12], (images[0].permute(1, 2, 0) * 255).round().byte().numpy())


def test_a_long_label_wraps_inside_its_tile_and_the_legend_keeps_it_whole():
    long = "blocks.10.mlp.fc1:neuron=1234"
    img = labelled_grid(torch.rand(2, 1, 8, 8), [long, "b"], ncols=2, tile=64)
    assert json.loads(img.info[LEGEND_KEY])["tiles"] == [long, "b"]
    band = np.asarray(img.convert("L"))[GAP + 64:, :]
    rows_with_ink = np.nonzero((band[:, GAP:GAP + 64] < 128).any(1))[0]
    assert rows_with_ink.max() - rows_with_ink.min() > LINE  # more than one line of text
    gutter = band[:, GAP + 64:GAP + 64 + GAP]
    assert (gutter > 250).all()  # no text spills into the gap beside the tile


def test_a_png_without_legend_is_refused_in_one_line(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "plain.png")
    with pytest.raises(UnifiedVizError, match="no unifiedviz:legend") as err:
        read_legend(tmp_path / "plain.png")
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- each command's grids
def test_visualize_grid_and_snapshots_name_the_units_in_order(tmp_path):
    out = tmp_path / "vis"
    assert main(["visualize", "builtin:digits-cnn", "class=3,1", "conv2:channel=4", "--steps", "2",
                 "--snapshots", "1", "--out", str(out), "--quiet"]) == 0
    units = json.loads((out / "summary.json").read_text())["units"]
    assert [u["address"] for u in units] == ["class=3", "class=1", "conv2:channel=4"]
    expected = ["class=3 (3)", "class=1 (1)", "conv2:channel=4"]
    assert read_legend(out / "grid.png")["tiles"] == expected
    assert read_legend(out / "grid_step00001.png")["tiles"] == expected
    # the tile named "class=3 (3)" holds unit_000.png, the image of class 3
    with Image.open(out / "grid.png") as grid, Image.open(out / units[0]["image"]) as first:
        tile = np.asarray(grid.convert("L"))[GAP:GAP + 128:4, GAP:GAP + 128:4]
        assert np.array_equal(tile, np.asarray(first.convert("L")))


def test_visualize_sequence_grid_names_the_units(tmp_path):
    out = tmp_path / "seq"
    assert main(["visualize", "builtin:gunpoint-cnn", "class=1,0", "--steps", "2", "--out", str(out),
                 "--quiet"]) == 0
    assert read_legend(out / "grid.png")["tiles"] == ["class=1 (Point)", "class=0 (Gun-Draw)"]
    assert read_legend(out / "sequences.png")["tiles"] == ["class=1 (Point)", "class=0 (Gun-Draw)"]


def test_attack_panels_name_their_tiles_and_belong_to_their_image(tmp_path):
    out = tmp_path / "att"
    assert main(["attack", "builtin:digits-cnn", "digits", "--limit", "3", "--method", "pgd", "--eps", "0.1",
                 "--steps", "3", "--panels", "--out", str(out), "--quiet"]) == 0
    rows = json.loads((out / "summary.json").read_text())["per_image"]
    for row in rows:
        legend = read_legend(out / row["panel_png"])
        assert legend["columns"] == 3 and len(legend["tiles"]) == 3
        original, perturbation, adversarial = legend["tiles"]
        assert original.startswith("original") and f"pred {row['clean_pred']} " in original
        assert perturbation.startswith("perturbation x") and f"linf {row['linf']:.4f}" in perturbation
        assert adversarial.startswith("adversarial") and f"pred {row['adv_pred']} " in adversarial


def test_explain_panels_name_the_methods_in_the_order_asked(tmp_path):
    out = tmp_path / "exp"
    assert main(["explain", "builtin:digits-cnn", "digits", "--method", "gradcam,saliency", "--limit", "2",
                 "--am-steps", "2", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    for i, row in enumerate(summary["per_image"]):
        tiles = read_legend(out / f"{i:04d}_{row['name']}.png")["tiles"]
        assert [t.split("\n")[0] for t in tiles] == ["original", "gradcam", "saliency", "AM image of the unit"]
        assert tiles[1].endswith(f"del {row['gradcam']['deletion']:.3f} ins {row['gradcam']['insertion']:.3f}")


def test_probe_overlays_name_the_probes(tmp_path):
    from unifiedviz.probes.planted import planted_images

    concept, masks, _, _ = planted_images(12, concept=True, spurious=False, seed=1)
    negatives, _, _, _ = planted_images(12, concept=False, spurious=False, seed=2)
    for folder, images in (("concept", concept), ("negatives", negatives)):
        (tmp_path / folder).mkdir()
        for i, img in enumerate(images):
            Image.fromarray((img[0].numpy() * 255).round().astype(np.uint8)).save(tmp_path / folder / f"{i:03d}.png")
    (tmp_path / "masks").mkdir()
    for i, mask in enumerate(masks):
        Image.fromarray((mask.numpy() * 255).astype(np.uint8)).save(tmp_path / "masks" / f"{i:03d}.png")
    out = tmp_path / "probe"
    assert main(["probe", "builtin:digits-cnn", "conv2", "--concept", str(tmp_path / "concept"), "--negatives",
                 str(tmp_path / "negatives"), "--masks", str(tmp_path / "masks"), "--kinds", "svm,logistic",
                 "--limit", "1", "--am-steps", "2", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    (overlay,) = out.glob("overlay_000_*.png")
    tiles = read_legend(overlay)["tiles"]
    assert [t.split("\n")[0] for t in tiles] == ["original", "svm", "logistic", "segmentation", "AM image of the unit"]
    assert tiles[1] == f"svm\niou {metrics['probes']['svm']['segmentation']['iou']:.2f}"


def test_invert_class_grids_name_what_the_model_reads_each_sample_as(tmp_path):
    from safetensors.torch import load_file

    from unifiedviz.models import load_model

    out = tmp_path / "inv"
    assert main(["invert", "builtin:digits-cnn", "--steps", "2", "--set", "batch_size=10", "--set",
                 "samples_per_class=4", "--quiet", "--out", str(out)]) == 0
    saved = load_file(str(out / "samples.safetensors"))
    model = load_model("builtin:digits-cnn")
    with torch.no_grad():
        preds = model(saved["images"]).argmax(1)
    for k in (0, 7):
        legend = read_legend(out / "samples" / f"class_{k}.png")
        assert legend["tiles"] == [f"read as {int(p)}" for p in preds[saved["labels"] == k]]
