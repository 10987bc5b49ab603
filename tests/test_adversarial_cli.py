"""`unifiedviz attack`: outputs, configs, errors, atomic output folder (digits models, offline)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from unifiedviz.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "adversarial"


pytestmark = pytest.mark.usefixtures("one_thread")


def read_png(path: Path) -> torch.Tensor:
    arr = np.asarray(Image.open(path), dtype=np.float32) / 255
    return torch.from_numpy(arr)


def test_pgd_writes_summary_pngs_and_panels(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["attack", "builtin:digits-cnn", "digits", "--limit", "12", "--method", "pgd", "--eps", "0.1",
                 "--transfer", "builtin:digits-vit", "--out", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "pgd: success" in printed and "transfer to builtin:digits-vit" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "pgd" and summary["images"] == 12 and summary["eps"] == 0.1
    assert summary["linf_max"] <= 0.1 + 1e-6 and summary["quantized"] is True
    assert 0 <= summary["success_rate"] <= 1 and "builtin:digits-vit" in summary["transfer"]
    rows = summary["per_image"]
    assert len(rows) == 12 and sorted(p.name for p in (out / "adversarial").iterdir()) == \
        sorted(Path(r["adversarial_png"]).name for r in rows)
    assert len(list((out / "panels").glob("*.png"))) == 12
    # The PNGs hold exactly the measured images: re-run the model on them.
    from unifiedviz import load_model
    from unifiedviz.datasets import load_digits_images

    model = load_model("builtin:digits-cnn")
    x, y = load_digits_images("test")
    x = torch.round(x[:12] * 255) / 255  # the CLI attacks the 8-bit inputs it can store
    adv = torch.stack([read_png(out / r["adversarial_png"])[None] for r in rows])
    assert float((adv - x).abs().max()) <= 0.1 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        pred = model(adv).argmax(1)
    assert [r["adv_pred"] for r in rows] == pred.tolist()
    assert summary["success_rate"] == pytest.approx(float((pred != y[:12]).float().mean()), abs=1e-6)
    panel = Image.open(out / rows[0]["panel_png"])
    assert panel.size[0] > 3 * 128 and panel.size[1] >= 128


def test_config_file_and_cli_override(tmp_path):
    cfg = tmp_path / "attack.yaml"
    cfg.write_text("model: builtin:digits-cnn\nimages: digits\nlimit: 6\nmethod: fgsm\neps: 8/255\n"
                   f"out: {tmp_path / 'from_config'}\npanels: false\n")
    assert main(["attack", "--config", str(cfg), "--eps", "0.05", "--quiet"]) == 0
    summary = json.loads((tmp_path / "from_config" / "summary.json").read_text())
    assert summary["method"] == "fgsm" and summary["eps"] == 0.05 and summary["steps_run"] == 1
    assert not (tmp_path / "from_config" / "panels").exists()


def test_shipped_configs_name_only_known_options():
    from adversarial.cli import AttackOptions
    from unifiedviz.options import build, read_yaml

    files = sorted(CONFIGS.glob("*.yaml"))
    assert len(files) >= 5
    for f in files:
        opts = build(AttackOptions, read_yaml(f), str(f))  # raises on an unknown key or a wrong type
        opts.model, opts.images = opts.model or "builtin:cifar_resnet20", opts.images or "PHOTOS/"  # CLI-given
        opts.check()  # and on options that do not fit the method


def test_unit_attack_universal_and_targeted_from_the_cli(tmp_path):
    out = tmp_path / "am"
    assert main(["attack", "builtin:digits-cnn", "digits", "--limit", "8", "--method", "am", "--unit",
                 "auto:relu3", "--target", "3", "--eps", "0.1", "--steps", "5", "--out", str(out), "--quiet",
                 "--no-panels"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["unit"].startswith("relu3:channel=") and s["mean_unit_raised"] == 1.0 and s["targeted"]
    out = tmp_path / "uni"
    assert main(["attack", "builtin:digits-cnn", "digits", "--limit", "8", "--method", "universal", "--eps", "0.2",
                 "--steps", "5", "--out", str(out), "--quiet", "--max-panels", "2"]) == 0
    assert (out / "perturbation.png").is_file() and len(list((out / "panels").iterdir())) == 2


@pytest.mark.parametrize("argv, message", [
    (["--method", "am"], "needs --unit"),
    (["--method", "feature-match"], "needs --layer"),
    (["--method", "fgsm", "--steps", "3"], "exactly one step"),
    (["--target", "furthest"], "unknown target"),
    (["--unit", "relu3:channel=0"], "--unit is for --method am"),
    (["--method", "am", "--unit", "relu9:channel=0"], "unknown layer 'relu9'"),
])
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, argv, message):
    code = main(["attack", "builtin:digits-cnn", "digits", "--limit", "2", "--out", str(tmp_path / "x"), "--quiet",
                 *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_output_folder_is_replaced_whole_or_left_alone(tmp_path, monkeypatch):
    out = tmp_path / "run"
    base = ["attack", "builtin:digits-cnn", "digits", "--limit", "3", "--steps", "2", "--out", str(out), "--quiet"]
    assert main(base) == 0
    first = (out / "summary.json").read_text()

    import adversarial.panels as panels

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(panels, "save_panel", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        main(base + ["--seed", "1"])
    assert (out / "summary.json").read_text() == first  # the old run is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temporary leftovers
    monkeypatch.undo()
    assert main(base + ["--seed", "1"]) == 0
    assert (out / "summary.json").read_text() != first
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep me")
    assert main(base[:-3] + ["--out", str(other), "--quiet"]) == 2
    assert (other / "mine.txt").read_text() == "keep me"


def test_folder_and_single_file_without_labels(tmp_path):
    from unifiedviz.datasets import load_digits_images
    from unifiedviz.report import save_png

    x, _ = load_digits_images("test")
    folder = tmp_path / "imgs"
    for i in range(3):
        save_png(x[i], folder / f"digit{i}.png")
    out = tmp_path / "folder_run"
    assert main(["attack", "builtin:digits-cnn", str(folder), "--eps", "0.2", "--out", str(out), "--quiet"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["labels_from"] == "model" and s["clean_accuracy"] == 1.0  # labels = own predictions
    assert [r["name"] for r in s["per_image"]] == ["digit0", "digit1", "digit2"]
    assert s["success_rate"] == 1.0 and s["float_success_rate"] == 1.0
    single = tmp_path / "single_run"
    assert main(["attack", "builtin:digits-cnn", str(folder / "digit1.png"), "--method", "fgsm", "--eps", "0.2",
                 "--out", str(single), "--quiet"]) == 0
    s = json.loads((single / "summary.json").read_text())
    assert s["images"] == 1 and (single / "adversarial" / "0000_digit1.png").is_file()
