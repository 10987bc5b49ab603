"""One output policy: foreign folders refused and untouched, own folders replaced whole, files refused."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import superposition.experiment  # noqa: F401  (bound to the real loaders before any test patches them)
from unifiedviz.cli import main
from unifiedviz.errors import UnifiedVizError
from unifiedviz.report.run_folder import MANIFEST, claim

SMOKE = Path(__file__).resolve().parents[1] / "configs" / "superposition" / "digits_smoke.yaml"


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` with a hash of its bytes."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def write_run(out: Path, files: dict[str, str], command: str = "demo") -> None:
    with claim(out, command).writing() as tmp:
        for name, text in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(text)


# ---------------------------------------------------------------------- the policy itself
def test_replaces_its_own_folder_with_no_stale_file(tmp_path):
    out = tmp_path / "run"
    write_run(out, {"a.txt": "1", "sub/b.txt": "2", "c.txt": "3"})
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["command"] == "demo" and manifest["files"] == ["a.txt", "c.txt", "sub/b.txt"]
    write_run(out, {"a.txt": "new"})
    assert snapshot(out).keys() == {"a.txt", MANIFEST} and (out / "a.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temporary folders left


@pytest.mark.parametrize("setup, message", [
    (lambda out: (out.mkdir(), (out / "notes.txt").write_text("mine")), "did not write"),
    (lambda out: (write_run(out, {"x.png": "1"}, "other")), "holds a 'other' run"),
    (lambda out: (write_run(out, {"x.png": "1"}), (out / "notes.txt").write_text("mine")), "notes.txt"),
])
def test_foreign_folders_are_refused_and_left_intact(tmp_path, setup, message):
    out = tmp_path / "run"
    setup(out)
    before = snapshot(out)
    with pytest.raises(UnifiedVizError, match=message):
        write_run(out, {"y.txt": "2"})
    assert snapshot(out) == before


def test_an_exception_while_writing_leaves_the_previous_folder(tmp_path):
    out = tmp_path / "run"
    write_run(out, {"a.txt": "1"})
    before = snapshot(out)
    with pytest.raises(RuntimeError):
        with claim(out, "demo").writing() as tmp:
            (tmp / "a.txt").write_text("half")
            raise RuntimeError("disk full")
    assert snapshot(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_files_added_after_the_claim_are_never_deleted(tmp_path):
    out = tmp_path / "run"
    write_run(out, {"a.txt": "1"})
    folder = claim(out, "demo")
    (out / "late.txt").write_text("user wrote this meanwhile")
    with pytest.raises(UnifiedVizError, match="late.txt"):
        with folder.writing() as tmp:
            (tmp / "a.txt").write_text("2")
    assert (out / "late.txt").read_text() == "user wrote this meanwhile" and (out / "a.txt").read_text() == "1"


def test_an_out_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "file.txt"
    path.write_text("x")
    with pytest.raises(UnifiedVizError, match="is a file"):
        claim(path, "demo")


# ---------------------------------------------------------------------- every command that writes
VISUALIZE = ["visualize", "builtin:digits-cnn", "conv2:channel=0:3", "--steps", "2", "--quiet"]
ATTACK = ["attack", "builtin:digits-cnn", "digits", "--limit", "2", "--steps", "1", "--quiet"]
SUPERPOSITION = ["superposition", "run", str(SMOKE), "--quiet", "--threads", "1"] + [
    a for item in ["train.epochs=1", "runs=[baseline]", "metrics.embeddings=[]", "data.name=synthetic",
                   "data.image_size=null", "data.synthetic.num_train=64", "data.synthetic.num_test=32"]
    for a in ("--set", item)]
EXPLAIN = ["explain", "builtin:digits-cnn", "digits", "--limit", "1", "--method", "saliency", "--am-steps", "0",
           "--quiet"]
COMMANDS = {"visualize": VISUALIZE, "attack": ATTACK, "superposition": SUPERPOSITION, "explain": EXPLAIN}


def _fail_if_called(*args, **kwargs):
    raise AssertionError("work started before the output folder was checked")


def _no_work(monkeypatch):
    """Any model load or data set-up now fails the test: refusals must come first."""
    import unifiedviz.models

    monkeypatch.setattr(unifiedviz.models, "load_model", _fail_if_called)
    monkeypatch.setattr(superposition.experiment, "SuperpositionData", _fail_if_called)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_commands_refuse_a_foreign_folder_before_work(command, tmp_path, capsys, monkeypatch):
    _no_work(monkeypatch)
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep me")
    write_run(tmp_path / "other", {"summary.json": "{}"}, "some other command")
    for out in (foreign, tmp_path / "other"):
        before = snapshot(out)
        assert main(COMMANDS[command] + ["--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert "nothing there was changed" in err and len(err.splitlines()) == 1 and "Traceback" not in err
        assert snapshot(out) == before


@pytest.mark.parametrize("command", list(COMMANDS))
def test_commands_refuse_an_out_that_is_a_file_before_work(command, tmp_path, capsys, monkeypatch):
    _no_work(monkeypatch)
    path = tmp_path / "out.txt"
    path.write_text("x")
    assert main(COMMANDS[command] + ["--out", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is a file" in err and len(err.splitlines()) == 1
    assert path.read_text() == "x"


def test_visualize_rerun_with_fewer_units_leaves_no_stale_file(tmp_path):
    out = tmp_path / "run"
    assert main(VISUALIZE + ["--out", str(out)]) == 0
    assert {"unit_002.png", "grid.png", "summary.json"} <= set(snapshot(out))
    assert main(["visualize", "builtin:digits-cnn", "conv2:channel=0", "--steps", "2", "--quiet", "--out", str(out)]) == 0
    assert set(snapshot(out)) == {"unit_000.png", "grid.png", "summary.json", MANIFEST}


def test_visualize_exception_while_writing_keeps_the_previous_run(tmp_path, monkeypatch):
    import unifiedviz.report.visualization as writer

    out = tmp_path / "run"
    assert main(VISUALIZE + ["--out", str(out)]) == 0
    before = snapshot(out)
    real = writer.save_png

    def half(image, path):  # write one file, then fail like a full disk
        real(image, path)
        raise OSError("disk full")

    monkeypatch.setattr(writer, "save_png", half)
    with pytest.raises(OSError, match="disk full"):
        main(VISUALIZE + ["--out", str(out), "--seed", "5"])
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_superposition_rerun_replaces_its_own_folder_and_keeps_it_on_failure(tmp_path, monkeypatch):
    import superposition.experiment as experiment

    out = tmp_path / "run"
    assert main(SUPERPOSITION + ["--out", str(out)]) == 0
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["command"] == "superposition run" and manifest["complete"] and "metrics.json" in manifest["files"]
    before = snapshot(out)
    assert main(SUPERPOSITION + ["--out", str(out)]) == 2  # an earlier run: --resume or --force
    assert snapshot(out) == before

    def boom(*args, **kwargs):
        raise RuntimeError("killed while measuring")

    monkeypatch.setattr(experiment, "write_report", boom)
    with pytest.raises(RuntimeError):
        main(SUPERPOSITION + ["--out", str(out), "--resume"])
    after = snapshot(out)  # nothing the earlier run wrote is lost; the run is marked unfinished
    assert set(before) <= set(after)
    assert after["baseline/model.safetensors"] == before["baseline/model.safetensors"]
    assert after["report.md"] == before["report.md"]
    assert json.loads((out / MANIFEST).read_text())["complete"] is False
    monkeypatch.undo()
    (out / "plots" / "extra.png").write_bytes(b"left by the killed run")
    assert main(SUPERPOSITION + ["--out", str(out), "--force"]) == 0  # its own unfinished folder: replaced
    assert not (out / "plots" / "extra.png").exists() and (out / "report.md").is_file()
