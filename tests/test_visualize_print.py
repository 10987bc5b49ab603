"""`unifiedviz visualize` prints what was optimised: with class-score logprob, the log-probability
(and its probability), equal to the optimised objective, not the logit."""
from __future__ import annotations

import json
import math
import re

import pytest
import torch

from unifiedviz.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def test_printed_value_is_the_optimised_log_probability(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["visualize", "builtin:digits-cnn", "class=3", "relu3:channel=2", "--class-score", "logprob",
                 "--steps", "8", "--out", str(out), "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    units = json.loads((out / "summary.json").read_text())["units"]
    cls = next(line for line in lines if line.startswith("class=3\t"))
    m = re.search(r"objective (\S+); log-prob (\S+) \(probability (\S+)\); logit (\S+)", cls)
    assert m, cls
    objective, logp, prob, logit = map(float, m.groups())
    final = units[0]["final_objective"]  # what the engine optimised, on the final image
    assert objective == pytest.approx(final, rel=1e-5, abs=1e-6)
    assert logp == pytest.approx(final, rel=1e-5, abs=1e-6)
    assert prob == pytest.approx(math.exp(final), rel=1e-3)
    assert logit == pytest.approx(units[0]["activation"], rel=1e-5) and logit != pytest.approx(logp)
    chan = next(line for line in lines if line.startswith("relu3:channel=2\t"))
    assert f"activation {units[1]['activation']:.6g}" in chan and "log-prob" not in chan


def test_log_probability_is_recomputed_from_the_image():
    from unifiedviz import load_model
    from unifiedviz.cli.visualize import _unit_lines
    from unifiedviz.visualize import visualize

    model = load_model("builtin:digits-cnn")
    result = visualize(model, ["class=7"], steps=5, class_score="logprob", progress=False)
    with torch.no_grad():
        expected = float(torch.log_softmax(model(result.images), 1)[0, 7])
    logp = float(re.search(r"log-prob (\S+)", _unit_lines(model, result, "logprob")[0]).group(1))
    assert logp == pytest.approx(expected, rel=1e-4, abs=1e-5)
