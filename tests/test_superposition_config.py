"""Config loading: shipped configs, overrides, and errors that name the key and the file."""
from pathlib import Path

import pytest
import yaml

from superposition.config import from_dict, load_config
from superposition.experiment import check_run_dir
from unifiedviz.cli import main
from unifiedviz.errors import UnifiedVizError
from unifiedviz.report.run_folder import write_manifest

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "superposition"


def write(tmp_path, text, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["cifar10_resnet18.yaml", "tinyimagenet_resnet18.yaml", "digits_smoke.yaml"])
def test_shipped_configs_load(name):
    cfg = load_config(CONFIGS / name)
    assert cfg.name == Path(name).stem
    assert cfg.runs == ["baseline", "active"]


def test_paper_settings_in_the_cifar_config():
    cfg = load_config(CONFIGS / "cifar10_resnet18.yaml")
    assert (cfg.model.name, cfg.model.pretrained, cfg.train.lr, cfg.data.batch_size, cfg.train.epochs) == (
        "resnet18", True, 1e-3, 128, 20)
    assert (cfg.active.strategy, cfg.active.initial_size, cfg.active.query_size) == ("least_confidence", 5000, 5000)
    assert cfg.metrics.layers == ["layer4"] and cfg.metrics.cosine_layers == ["layer4.1.conv2"]
    assert cfg.metrics.cosine_bins == 50
    tiny = load_config(CONFIGS / "tinyimagenet_resnet18.yaml")
    assert (tiny.data.image_size, tiny.active.query_size) == (224, 10000)


def test_unknown_top_level_key_names_key_and_file(tmp_path):
    path = write(tmp_path, "name: x\nsed: 3\n")
    with pytest.raises(UnifiedVizError) as err:
        load_config(path)
    msg = str(err.value)
    assert "'sed'" in msg and str(path) in msg and "'seed'" in msg  # suggests the close match


def test_mistyped_nested_key_suggests_the_right_one(tmp_path):
    path = write(tmp_path, "train:\n  epoch: 3\n")
    with pytest.raises(UnifiedVizError, match=r"unknown key 'train\.epoch' in .*exp\.yaml; did you mean 'train\.epochs'"):
        load_config(path)


def test_wrong_types_and_values_are_refused(tmp_path):
    with pytest.raises(UnifiedVizError, match=r"'train\.epochs' .* must be an integer, got 'ten'"):
        load_config(write(tmp_path, "train:\n  epochs: ten\n"))
    with pytest.raises(UnifiedVizError, match=r"'active\.strategy' .* must be one of"):
        load_config(write(tmp_path, "active:\n  strategy: least_confident\n"))
    with pytest.raises(UnifiedVizError, match=r"'data' .* must be a mapping"):
        load_config(write(tmp_path, "data: cifar10\n"))
    with pytest.raises(UnifiedVizError, match="at least 1"):
        load_config(write(tmp_path, "active:\n  query_size: 0\n"))
    with pytest.raises(UnifiedVizError, match="bald.*model.dropout"):
        load_config(write(tmp_path, "active:\n  strategy: bald\n"))
    with pytest.raises(UnifiedVizError, match="not valid YAML at line 2"):
        load_config(write(tmp_path, "a: 1\n b: [\n"))


def test_overrides_are_typed_and_checked(tmp_path):
    cfg = load_config(CONFIGS / "digits_smoke.yaml",
                      ["train.epochs=2", "metrics.embeddings=[tsne]", "metrics.max_samples=null", "train.lr=1e-2"])
    assert cfg.train.epochs == 2 and cfg.metrics.embeddings == ["tsne"] and cfg.metrics.max_samples is None
    assert cfg.train.lr == 0.01
    with pytest.raises(UnifiedVizError, match=r"unknown key 'train\.epoch' in --set train\.epoch; did you mean"):
        load_config(CONFIGS / "digits_smoke.yaml", ["train.epoch=2"])
    with pytest.raises(UnifiedVizError, match="key=value"):
        load_config(None, ["train.epochs"])
    with pytest.raises(UnifiedVizError, match="is a value, not a section"):
        load_config(None, ["seed.x=1"])


def test_cli_reports_config_errors_before_touching_the_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["superposition", "run", str(CONFIGS / "digits_smoke.yaml"), "--set", "trian.epochs=1",
                 "--out", str(out)]) == 2
    assert "trian" in capsys.readouterr().err
    assert not out.exists()


def test_existing_run_folder_needs_resume_or_force(tmp_path):
    cfg = load_config(CONFIGS / "digits_smoke.yaml")
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text(cfg.to_yaml())
    write_manifest(out, "superposition run", files=["config.yaml"], complete=True)  # as a finished run leaves it
    with pytest.raises(UnifiedVizError, match="already exists: pass --resume .* or --force"):
        check_run_dir(out, cfg, resume=False, force=False)
    check_run_dir(out, cfg, resume=True, force=False)  # same config: fine
    check_run_dir(out, cfg, resume=False, force=True)
    changed = load_config(CONFIGS / "digits_smoke.yaml", ["train.epochs=1", "data.num_workers=2"])
    with pytest.raises(UnifiedVizError, match=r"differs from the run's in train\.epochs;"):
        check_run_dir(out, changed, resume=True, force=False)
    with pytest.raises(UnifiedVizError, match="contradict"):
        check_run_dir(out, cfg, resume=True, force=True)


def test_force_never_deletes_a_folder_that_is_not_a_run(tmp_path):
    cfg = load_config(CONFIGS / "digits_smoke.yaml")
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(UnifiedVizError, match="did not write"):
        check_run_dir(tmp_path, cfg, resume=False, force=True)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_resolved_config_round_trips_through_yaml():
    cfg = load_config(CONFIGS / "cifar10_resnet18.yaml", ["active.rounds=3"])
    assert from_dict(yaml.safe_load(cfg.to_yaml())) == cfg
