"""`unifiedviz atlas`: the site's files, its columns against the superposition metrics, resuming a
killed run to the same files, the output policy and one-line errors. One thread, few AM steps."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from unifiedviz.cli import main
from unifiedviz.report.run_folder import MANIFEST, read_manifest

pytestmark = pytest.mark.usefixtures("one_thread")

LAYER = "conv2:channel=0:4"
FAST = ["--data", "digits", "--limit", "60", "--steps", "6", "--copies", "2", "--top-k", "2", "--batch-size", "2",
        "--per-page", "3", "--threads", "1", "--quiet"]


def make_dictionary(path: Path, latents: int = 4) -> Path:
    """A small TopK dictionary on digits-cnn's conv2 (32 features), normalised on real rows."""
    from superposition.dictionaries import SparseAutoencoder, rows_of, save_dictionary
    from unifiedviz.adapters import as_adapter
    from unifiedviz.datasets import load_digits_images
    from unifiedviz.models import load_model

    adapter = as_adapter(load_model("builtin:digits-cnn"))
    images, _ = load_digits_images("train")
    with torch.no_grad():
        rows = rows_of(adapter.layer("conv2").layout, adapter.capture(images[:32], "conv2")["conv2"])
    sae = SparseAutoencoder(32, expansion=latents / 32, kind="topk", k=2, seed=0)
    sae.fit_normalisation(rows)
    save_dictionary(sae, path, layer="conv2", model="builtin:digits-cnn")
    return path


@pytest.fixture(scope="module")
def dictionary(tmp_path_factory) -> Path:
    return make_dictionary(tmp_path_factory.mktemp("dictionary") / "dictionary.safetensors")


@pytest.fixture(scope="module")
def atlas(tmp_path_factory, dictionary) -> Path:
    out = tmp_path_factory.mktemp("atlas") / "site"
    assert main(["atlas", "builtin:digits-cnn", LAYER, "--dictionary", str(dictionary), "--out", str(out), *FAST]) == 0
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MANIFEST}


def test_atlas_lists_neurons_and_latents_with_pages(atlas):
    summary = json.loads((atlas / "atlas.json").read_text())
    addresses = [u["address"] for u in summary["units"]]
    assert addresses == [f"conv2:channel={i}" for i in range(4)] + [f"conv2:latent={k}" for k in range(4)]
    for u in summary["units"]:
        page = atlas / u["page"]
        assert page.is_file() and u["address"] in page.read_text()
        record = json.loads((page.parent / page.stem / "unit.json").read_text())
        for key in ("am", "top", "bottom"):
            assert len(record["files"][key]) == 2 and all((page.parent / f).is_file() for f in record["files"][key])
        assert (page.parent / record["files"]["histogram"]).is_file()
        assert [e["value"] for e in record["top"]] == sorted((e["value"] for e in record["top"]), reverse=True)
        assert record["top"][0]["value"] == pytest.approx(u["max_activation"])
    # 8 units, 3 a page: index.html, index-2.html, index-3.html, each row linking its unit page
    pages = [atlas / "index.html", atlas / "index-2.html", atlas / "index-3.html"]
    assert all(p.is_file() for p in pages) and not (atlas / "index-4.html").exists()
    listed = "".join(p.read_text() for p in pages)
    assert all(f'data-address="{a}"' in listed for a in addresses)
    manifest = read_manifest(atlas)
    assert manifest["complete"] and set(manifest["files"]) == set(_files(atlas))


def test_columns_equal_the_superposition_metrics(atlas, dictionary):
    """The table's values are the units' values over the data (recomputed here by hand from the layer),
    and its columns are unit_selectivity's, unit by unit."""
    from superposition.dictionaries import load_dictionary
    from superposition.metrics import unit_selectivity
    from unifiedviz.adapters import as_adapter
    from unifiedviz.inputs import load_inputs
    from unifiedviz.models import load_model

    model = load_model("builtin:digits-cnn")
    data = load_inputs("digits", model.spec, limit=60)
    sae, _ = load_dictionary(dictionary)
    with torch.no_grad():
        t = as_adapter(model).capture(data.images, "conv2")["conv2"]  # [60, 32, 16, 16]
        neurons = t[:, :4].mean((2, 3))
        codes = sae.encode(t.permute(0, 2, 3, 1).reshape(-1, 32)).view(60, 256, -1).mean(1)
    values = torch.cat([neurons, codes], 1).double()
    rows = json.loads((atlas / "atlas.json").read_text())["units"]
    assert [r["max_activation"] for r in rows] == pytest.approx(values.max(0).values.tolist(), rel=1e-5)
    expected = unit_selectivity(values, data.labels)
    live = [r for r in rows if not r["dead"]]
    assert len(rows) - len(live) == expected["dead"]
    assert sum(r["selectivity"] for r in live) / len(live) == pytest.approx(expected["selectivity_mean"], rel=1e-6)
    hist = torch.bincount(torch.tensor([r["classes"] for r in live]), minlength=11)[1:].tolist()
    assert hist == expected["classes_per_unit_hist"]
    assert sum(r["polysemantic"] for r in live) / len(live) == pytest.approx(expected["polysemantic_fraction"])
    for r, column in zip(rows, values.T):  # and unit by unit
        one = unit_selectivity(column[:, None], data.labels)
        assert (r["selectivity"] is None) == (one["dead"] == 1)
        if r["selectivity"] is not None:
            assert r["selectivity"] == pytest.approx(one["selectivity_mean"])
            assert r["classes"] == one["classes_per_unit_mean"]


def test_killed_atlas_resumes_to_the_same_files(atlas, dictionary, tmp_path, monkeypatch, capsys):
    import unifiedviz.atlas.site as site

    real = site.render_units
    rendered: list[str] = []

    def killed_after_four(adapter, addresses, settings):
        if len(rendered) >= 4:
            raise RuntimeError("killed")
        rendered.extend(addresses)
        return real(adapter, addresses, settings)

    out = tmp_path / "site"
    argv = ["atlas", "builtin:digits-cnn", LAYER, "--dictionary", str(dictionary), "--out", str(out), *FAST]
    monkeypatch.setattr(site, "render_units", killed_after_four)
    with pytest.raises(RuntimeError, match="killed"):
        main(argv)
    assert read_manifest(out)["complete"] is False
    assert len(list(out.glob("units/*/unit.json"))) == 4 and not (out / "index.html").exists()

    assert main(argv) == 2  # neither --resume nor --force: refused, nothing changed
    assert "--resume" in capsys.readouterr().err
    assert main([*argv[:-1], "--quiet", "--resume", "--steps", "7"]) == 2  # other settings: refused
    assert "other settings" in capsys.readouterr().err

    rendered.clear()
    monkeypatch.setattr(site, "render_units",
                        lambda a, addresses, s: rendered.extend(addresses) or real(a, addresses, s))
    assert main([*argv, "--resume"]) == 0
    assert rendered == ["conv2:latent=0", "conv2:latent=1", "conv2:latent=2", "conv2:latent=3"]  # only the rest
    assert read_manifest(out)["complete"] is True
    assert _files(out) == _files(atlas)


def test_foreign_folder_is_refused_untouched(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["atlas", "builtin:digits-cnn", LAYER, "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert "did not write" in err and err.count("\n") == 1
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("layer, message", [
    ("conv9", "unknown layer 'conv9'"),
    ("conv2:channel=40", "channel 40 is out of range"),
    ("conv1", "was trained on layer 'conv2'"),  # the dictionary belongs to conv2
])
def test_bad_layer_or_unit_is_one_line(layer, message, dictionary, tmp_path, capsys):
    out = tmp_path / "site"
    assert main(["atlas", "builtin:digits-cnn", layer, "--dictionary", str(dictionary), "--out", str(out),
                 *FAST]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()  # refused before any file was written


def test_attention_head_units_show_where_the_head_attends():
    """A bare attention-probability layer lists its heads; a head's exemplar map is its attention to
    each patch, averaged over queries (checked against the captured probabilities)."""
    from unifiedviz.adapters import as_adapter
    from unifiedviz.atlas.data import atlas_units, unit_maps
    from unifiedviz.inputs import load_inputs
    from unifiedviz.models import load_model

    model = load_model("builtin:digits-vit")
    adapter = as_adapter(model)
    layer = "blocks.0.attn.attn_drop"
    units = atlas_units(adapter, layer)
    assert [u.address for u in units] == [f"{layer}:head={h}" for h in range(4)]
    x = load_inputs("digits", model.spec, limit=3).images
    with torch.no_grad():
        probs = adapter.capture(x, layer)[layer]  # [3, heads, 65, 65], CLS first
    expected = probs[:, 2].mean(1)[:, 1:].reshape(3, 8, 8)
    assert torch.allclose(unit_maps(adapter, units[2], x), expected, atol=1e-6)


def test_unlabelled_data_takes_the_models_predicted_classes(tmp_path, capsys):
    from PIL import Image

    from unifiedviz.atlas import predicted_labels
    from unifiedviz.datasets import load_digits_images
    from unifiedviz.models import load_model

    images, _ = load_digits_images("test")
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(12):
        Image.fromarray((images[i, 0] * 255).round().byte().numpy()).save(folder / f"{i:02d}.png")
    argv = ["atlas", "builtin:digits-cnn", "conv2:channel=0:2", "--data", str(folder), "--steps", "2", "--copies", "1",
            "--top-k", "2", "--threads", "1", "--quiet"]
    assert main([*argv, "--labels", "data", "--out", str(tmp_path / "refused")]) == 2  # a folder has no labels
    assert "--labels predicted" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()
    out = tmp_path / "site"
    assert main([*argv, "--out", str(out)]) == 0  # auto: the model's classes
    summary = json.loads((out / "atlas.json").read_text())
    assert summary["classes"] == "predicted" and "selectivity" in summary["units"][0]
    model = load_model("builtin:digits-cnn")
    from unifiedviz.inputs import load_inputs
    loaded = load_inputs(folder, model.spec)
    with torch.no_grad():
        assert torch.equal(predicted_labels(model, loaded.images), model(loaded.images).argmax(1))
    assert "classes: the model's predictions" in (out / "index.html").read_text()


def test_two_processes_write_the_same_atlas(atlas, dictionary, tmp_path):
    """Each process renders every other batch of units; rank 0 alone writes: the same files as one process."""
    out = tmp_path / "site"
    argv = ["atlas", "builtin:digits-cnn", LAYER, "--dictionary", str(dictionary), "--out", str(out), *FAST]
    assert main([*argv, "--processes", "2"]) == 0
    assert _files(out) == _files(atlas)


def test_photos_atlas_of_the_cifar_resnet_names_the_predicted_classes(tmp_path):
    from unifiedviz.atlas.figures import class_label
    from unifiedviz.models.builtin import CIFAR10_CLASSES

    assert class_label(3, CIFAR10_CLASSES) == "cat" and class_label(3, [str(d) for d in range(10)]) == "class 3"
    out = tmp_path / "site"
    assert main(["atlas", "builtin:cifar_resnet20", "layer3.2:channel=0:1", "--data", "photos", "--limit", "24",
                 "--steps", "2", "--copies", "1", "--top-k", "3", "--out", str(out), "--threads", "1", "--quiet"]) == 0
    record = json.loads((out / "units" / "layer3.2_channel-0" / "unit.json").read_text())
    assert record["top"] and all(e["class"] == CIFAR10_CLASSES[e["label"]] for e in record["top"] + record["bottom"])
    assert set(record["class_means"]) <= set(CIFAR10_CLASSES)
    page = (out / "units" / "layer3.2_channel-0.html").read_text()
    assert f"\u00b7 {record['top'][0]['class']} \u00b7" in page
