"""The options layer: one number parser and one precedence for YAML, flags and --set, on every command."""
from __future__ import annotations

import dataclasses

import pytest

from unifiedviz.cli import COMMANDS, build_parser, main
from unifiedviz.errors import UnifiedVizError
from unifiedviz.options import CommandOptions, number, option, resolve


@pytest.mark.parametrize("text, value", [("8/255", 8 / 255), ("1/20", 0.05), ("1e-3", 0.001), ("0.05", 0.05),
                                         (3, 3.0), (0.5, 0.5), (" 2/4 ", 0.5)])
def test_number_reads_fractions_and_exponents(text, value):
    assert number(text) == pytest.approx(value, abs=0)


@pytest.mark.parametrize("bad", ["abc", "1/0", "", True, "8//255"])
def test_number_refuses_non_numbers(bad):
    with pytest.raises(ValueError):
        number(bad)


def _opts(argv):
    """Parse argv with the real parser and resolve its command's options (no work is run)."""
    args = build_parser().parse_args(argv)
    return resolve(args._command.options, args)


# One float option per command family, read from YAML, a flag and --set: the same value everywhere.
CASES = [
    (["visualize", "builtin:digits-cnn", "class=1"], "lr", "1/20", 0.05),
    (["attack", "builtin:digits-cnn", "digits"], "eps", "8/255", 8 / 255),
    (["visualize", "builtin:digits-cnn", "class=1"], "diversity", "8/255", 8 / 255),
    (["attack", "builtin:digits-cnn", "digits"], "alpha", "1/20", 0.05),
]


@pytest.mark.parametrize("argv, key, text, value", CASES)
def test_fractions_read_the_same_from_yaml_flags_and_set(argv, key, text, value, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"{key}: {text}\n")
    from_yaml = _opts(argv + ["--config", str(config)])
    from_flag = _opts(argv + [f"--{key}", text])
    from_set = _opts(argv + ["--set", f"{key}={text}"])
    assert getattr(from_yaml, key) == getattr(from_flag, key) == getattr(from_set, key) == pytest.approx(value)


def test_superposition_reads_fractions_from_yaml_and_set(tmp_path):
    from superposition.config import load_config

    config = tmp_path / "s.yaml"
    config.write_text("train:\n  lr: 1/20\n")
    assert load_config(config).train.lr == load_config(None, ["train.lr=1/20"]).train.lr == 0.05
    assert load_config(None, ["train.lr=1e-3"]).train.lr == 0.001


def test_precedence_defaults_config_set_flags(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("model: builtin:digits-cnn\nunits: [class=1]\nsteps: 10\nseed: 3\nlr: 0.1\n")
    opts = _opts(["visualize", "--config", str(config), "--set", "steps=20", "--set", "lr=1/5", "--lr", "0.3"])
    assert (opts.steps, opts.seed, opts.lr, opts.batch_size) == (20, 3, 0.3, 32)


def test_config_units_with_a_bare_unit_argument_is_not_read_as_the_model(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("model: builtin:digits-cnn\nunits: [class=1]\n")
    opts = _opts(["visualize", "--config", str(config), "conv1:channel=0"])
    assert opts.model == "builtin:digits-cnn" and opts.units == ["conv1:channel=0"]
    opts = _opts(["visualize", "--config", str(config), "builtin:digits-vit", "blocks.1:channel=0"])
    assert opts.model == "builtin:digits-vit" and opts.units == ["blocks.1:channel=0"]
    config.write_text("model: builtin:digits-cnn\nmethod: fgsm\n")
    opts = _opts(["attack", "--config", str(config), "digits"])
    assert opts.model == "builtin:digits-cnn" and opts.images == "digits"


@pytest.mark.parametrize("argv, message", [
    (["visualize", "builtin:digits-cnn", "class=1", "--lr", "fast"], "--lr must be a number"),
    (["visualize", "builtin:digits-cnn", "class=1", "--set", "stepz=3"], "did you mean 'steps'"),
    (["visualize", "builtin:digits-cnn", "class=1", "--set", "steps=1/2"], "steps (--set steps) must be an integer"),
    (["attack", "builtin:digits-cnn", "digits", "--set", "eps=big"], "eps (--set eps) must be"),
    (["visualize", "builtin:digits-cnn", "class=1", "--threads", "0"], "threads must be at least 1"),
    (["visualize", "builtin:digits-cnn", "class=1", "--param", "pixels"], "invalid choice: 'pixels'"),
    (["attack", "builtin:digits-cnn", "digits", "--layer", "conv2"], "--layer is for --method feature-match"),
    (["attack", "builtin:digits-cnn", "digits", "--set", "method=pgdd"], "unknown attack method 'pgdd'"),
    (["superposition", "run", "--set", "active.strategy=least_confidance"], "least_confidence"),
])
def test_bad_options_are_one_line_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err, err
    assert "\n" not in err and "Traceback" not in err


def test_every_command_takes_config_set_and_threads():
    parser = build_parser()
    names = COMMANDS.names()
    assert {"layers", "visualize", "attack", "superposition run"} <= set(names)
    for name in names:
        sub = parser
        for word in name.split():
            sub = next(a for a in sub._actions if a.__class__.__name__ == "_SubParsersAction").choices[word]
        flags = {s for a in sub._actions for s in a.option_strings}
        assert {"--config", "--set", "--threads", "--quiet"} <= flags, name


def test_threads_sets_torch_threads():
    import torch

    before = torch.get_num_threads()
    try:
        assert main(["layers", "builtin:digits-cnn", "--threads", "1", "--filter", "conv1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_new_command_options_class_yields_flags_yaml_and_set(tmp_path):
    """The contract of the options layer on a throwaway options class."""
    import argparse

    from unifiedviz.options import add_arguments

    @dataclasses.dataclass
    class Demo(CommandOptions):
        things: list[str] = option([], "things", positional=True)
        rate: float = option(0.5, "a rate")
        flag: bool = option(True, "on by default")

    parser = argparse.ArgumentParser()
    add_arguments(parser, Demo)
    assert "(default 0.5)" in parser.format_help()
    config = tmp_path / "d.yaml"
    config.write_text("rate: 1/4\nflag: false\n")
    opts = resolve(Demo, parser.parse_args(["a", "b", "--config", str(config)]))
    assert (opts.things, opts.rate, opts.flag) == (["a", "b"], 0.25, False)
    assert resolve(Demo, parser.parse_args(["--flag", "--set", "rate=2"])).flag is True
    with pytest.raises(UnifiedVizError, match="unknown key 'rat'"):
        resolve(Demo, parser.parse_args(["--set", "rat=2"]))
