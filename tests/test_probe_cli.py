"""`unifiedviz probe` end to end: CAVs, metrics and overlays from image folders; a CAV renders with visualize."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from unifiedviz.cli import main
from unifiedviz.probes.planted import planted_images

pytestmark = pytest.mark.usefixtures("one_thread")


def write_set(folder, images, masks=None, mask_folder=None):
    folder.mkdir()
    for i, img in enumerate(images):
        Image.fromarray((img[0].numpy() * 255).round().astype(np.uint8)).save(folder / f"{i:03d}.png")
        if masks is not None:
            mask_folder.mkdir(exist_ok=True)
            Image.fromarray((masks[i].numpy() * 255).astype(np.uint8)).save(mask_folder / f"{i:03d}.png")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe_sets")
    concept, masks, _, _ = planted_images(24, concept=True, spurious=False, seed=1)
    negatives, _, _, _ = planted_images(24, concept=False, spurious=False, seed=2)
    write_set(root / "concept", concept, masks, root / "masks")
    write_set(root / "negatives", negatives)
    return root


def test_probe_writes_cavs_metrics_and_overlays_and_the_cav_renders(folders, tmp_path):
    out = tmp_path / "probe"
    argv = ["probe", "builtin:digits-cnn", "conv2", "--concept", str(folders / "concept"), "--negatives",
            str(folders / "negatives"), "--masks", str(folders / "masks"), "--limit", "2", "--am-steps", "4",
            "--out", str(out), "--quiet"]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    cav = np.load(out / "cav.npy")
    assert cav.ndim == 1 and abs(np.linalg.norm(cav) - 1) < 1e-5
    assert (out / "segmentation.npy").is_file()
    assert any(p.suffix == ".png" for p in out.rglob("*"))
    assert json.dumps(metrics)  # plain JSON
    # The saved CAV is a direction the unit grammar reads: render it.
    vis = tmp_path / "vis"
    assert main(["visualize", "builtin:digits-cnn", f"conv2:direction={out / 'cav.npy'}", "--steps", "3",
                 "--out", str(vis), "--quiet"]) == 0
    summary = json.loads((vis / "summary.json").read_text())
    assert summary["units"][0]["address"].endswith("cav.npy")


@pytest.mark.parametrize("layer, fix, message", [
    ("conv2", lambda f: ["--concept", str(f / "few")], "give at least 10"),
    ("conv2", lambda f: ["--masks", str(f / "badmasks")], "size"),
    ("fc", lambda f: ["--kinds", "segmentation", "--masks", str(f / "masks")], "spatial"),
])
def test_probe_bad_input_is_one_line(folders, tmp_path, layer, fix, message, capsys):
    few = folders / "few"
    if not few.exists():
        few.mkdir()
        for i in range(3):
            Image.fromarray(np.zeros((32, 32), np.uint8)).save(few / f"{i}.png")
    bad = folders / "badmasks"
    if not bad.exists():
        bad.mkdir()
        for p in (folders / "concept").iterdir():
            Image.fromarray(np.zeros((16, 16), np.uint8)).save(bad / p.name)
    argv = ["probe", "builtin:digits-cnn", layer, "--concept", str(folders / "concept"), "--negatives",
            str(folders / "negatives"), "--out", str(tmp_path / "o"), "--quiet", *fix(folders)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_probe_config_form_with_flag_override(folders, tmp_path):
    """`unifiedviz probe --config FILE.yaml`: model, layer, sets and options from YAML; flags override."""
    import yaml

    config = {"model": "builtin:digits-cnn", "layer": "conv2", "concept": str(folders / "concept"),
              "negatives": str(folders / "negatives"), "kinds": ["logistic", "pattern"], "target": 1, "runs": 3,
              "limit": 1, "am_steps": 0, "out": str(tmp_path / "from_config")}
    path = tmp_path / "probe.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["probe", "--config", str(path), "--runs", "2", "--quiet"]) == 0
    out = tmp_path / "from_config"
    metrics = json.loads((out / "metrics.json").read_text())
    assert (out / "logistic.npy").is_file() and (out / "pattern.npy").is_file()
    assert not (out / "ti-max.npy").exists()  # the config's kinds replace the default list
    assert metrics["tcav"]["runs"] == 2 and len(metrics["tcav"]["scores"]) == 2  # the flag beats the config
    assert np.allclose(np.load(out / "cav.npy"), np.load(out / "logistic.npy"))
