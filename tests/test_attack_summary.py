"""Attack summaries: targeted success leaves out images already of the target class, every
number printed and in summary.json is named and defined (issue 17, item 1)."""
from __future__ import annotations

import json
import re

import pytest
import torch

from adversarial.metrics import SUMMARY_FIELDS, measure
from unifiedviz.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cnn_digits():
    from unifiedviz import load_model
    from unifiedviz.datasets import load_digits_images

    x, y = load_digits_images("test")
    return load_model("builtin:digits-cnn"), x[:40], y[:40]


def test_targeted_success_excludes_images_already_of_the_target(cnn_digits):
    model, x, y = cnn_digits
    targets = torch.full_like(y, 3)
    # The "attack" leaves the images unchanged: the digits that are 3 already stay 3. The old
    # rule counted them as successes; they must be left out of the rate and its denominator.
    r = measure(model, x, x.clone(), y, eps=0.1, norm="linf", targets=targets, method="none")
    with torch.no_grad():
        pred = model(x).argmax(1)
    already = y == 3
    assert int(already.sum()) >= 3 and int((pred[already] == 3).sum()) >= 3  # the case the issue is about
    s = r.summary()
    assert s["images"] == 40 and s["images_already_target"] == int(already.sum())
    assert s["success_denominator"] == int((~already).sum())
    assert s["successes"] == int(((pred == 3) & ~already).sum())
    assert s["success_rate"] == pytest.approx(s["successes"] / s["success_denominator"], abs=1e-6)
    assert s["success_rate"] < float((pred == 3).float().mean())  # what the old rule reported
    correct = (pred == y) & ~already
    assert s["success_on_correct_denominator"] == int(correct.sum())
    assert s["successes_on_correct"] == int(((pred == 3) & correct).sum())
    assert r.success_rate() == pytest.approx(s["success_rate"], abs=1e-6)
    assert s["clean_correct"] == int((pred == y).sum())


def test_untargeted_denominator_is_every_image(cnn_digits):
    model, x, y = cnn_digits
    r = measure(model, x, x.clone(), y, eps=0.1, norm="linf", method="none")
    s = r.summary()
    with torch.no_grad():
        pred = model(x).argmax(1)
    assert s["success_denominator"] == 40 and s["successes"] == int((pred != y).sum())
    assert s["success_on_correct_denominator"] == int((pred == y).sum()) and s["successes_on_correct"] == 0
    assert "images_already_target" not in s
    assert set(s) <= set(SUMMARY_FIELDS)


def test_cli_targeted_line_and_summary_name_every_number(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["attack", "builtin:digits-cnn", "digits", "--method", "pgd", "--target", "3", "--limit", "16",
                 "--eps", "0.05", "--steps", "3", "--no-panels", "--out", str(out), "--quiet"])
    assert code == 0
    line = capsys.readouterr().out.splitlines()[0]
    s = json.loads((out / "summary.json").read_text())
    # The first 16 test digits hold four 3s: the denominator is the other 12.
    assert s["images_already_target"] == 4 and s["success_denominator"] == 12
    assert f"= {s['successes']}/12 images not already of the target class (4 of 16 were, left out)" in line
    assert f"targeted success (adversarial prediction = target) {s['success_rate']:.3f}" in line
    assert f"= {s['successes_on_correct']}/{s['success_on_correct_denominator']} of them classified correctly" in line
    assert f"clean_accuracy {s['clean_accuracy']:.3f} = {s['clean_correct']}/16" in line
    # Every number on the line is one of the summary's named numbers (or eps / the norm bound).
    named = {f"{v:.3f}" for v in s.values() if isinstance(v, float)} | {str(v) for v in s.values() if isinstance(v, int)}
    for number in re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", line):
        assert number in named or number in {"3", "0.05"} or float(number) <= 0.05 + 1e-6, number
    # summary.json defines every key it holds, and the rows mark the left-out images.
    assert set(s["definitions"]) == set(s) - {"definitions"}
    assert sum(row["already_target"] for row in s["per_image"]) == 4
