"""digits_smoke.yaml end to end through the subcommand, shortened with --set (fewer epochs and rounds)."""
import json
import re
from pathlib import Path

from unifiedviz.cli import main
from unifiedviz.datasets import load_digits_images

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "superposition" / "digits_smoke.yaml"
SHORTER = ["train.epochs=1", "active.rounds=2", "active.initial_size=100", "active.query_size=100",
           "train.progress_bar=false"]


def test_digits_smoke_report_shows_both_models_side_by_side(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["superposition", "run", str(CONFIG), "--out", str(out), "--quiet"]
    for item in SHORTER:
        argv += ["--set", item]
    assert main(argv) == 0
    assert "report.md" in capsys.readouterr().out

    metrics = json.loads((out / "metrics.json").read_text())
    n_train, n_test = (len(load_digits_images(s)[1]) for s in ("train", "test"))
    assert metrics["baseline"]["train_size"] == n_train and metrics["active"]["train_size"] == 200
    for run in ("baseline", "active"):
        m = metrics[run]
        assert m["images"] == n_test
        assert m["accuracy"] > 0.3  # ten classes: well above chance after one epoch
        layer = m["layers"]["layer4"]
        assert {"raw", "tsne", "umap", "units"} <= set(layer)
        assert -1 <= layer["tsne"]["silhouette"] <= 1 and layer["tsne"]["davies_bouldin"] > 0
        cos = m["cosine"]["layer4.1.conv2"]
        assert sum(cos["images"]["counts"]) == n_test * (n_test - 1) // 2 and len(cos["images"]["counts"]) == 50
        assert sum(cos["class_means"]["counts"]) == 45 and sum(cos["weights"]["counts"]) == 512 * 511 // 2
    assert [r["labeled"] for r in metrics["active"]["rounds"]] == [100, 200]

    report = (out / "report.md").read_text()
    assert "| metric | baseline | active | active − baseline |" in report
    row = next(line for line in report.splitlines() if line.startswith("| test accuracy |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert float(cells[1]) == round(metrics["baseline"]["accuracy"], 4)
    assert float(cells[2]) == round(metrics["active"]["accuracy"], 4)
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report):
        assert (out / image).stat().st_size > 1000
    expected = {"tsne_layer4.png", "umap_layer4.png", "cosine_images_layer4.1.conv2.png",
                "cosine_class_means_layer4.1.conv2.png", "cosine_weights_layer4.1.conv2.png", "active_rounds.png"}
    assert {p.name for p in (out / "plots").iterdir()} == expected
    assert (out / "config.yaml").read_text().count("epochs: 1") == 1  # the resolved config, overrides applied
