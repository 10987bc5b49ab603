"""docs/adapters.md's table of unit-kind reductions is what bench/unit_kinds_table.py generates."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("unit_kinds_table", ROOT / "bench" / "unit_kinds_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_table_matches_the_registry(gen, one_thread):
    text = (ROOT / "docs" / "adapters.md").read_text()
    start, end = text.index(gen.BEGIN) + len(gen.BEGIN) + 1, text.index(gen.END)
    assert text[start:end] == gen.table(), "regenerate: python bench/unit_kinds_table.py --write"


def test_every_registered_kind_has_a_row(gen):
    from unifiedviz.unit_kinds import UNIT_KINDS

    rows = gen.table().splitlines()
    for name in UNIT_KINDS.names():
        assert any(row.startswith(f"| `{name}` |") for row in rows), name


def test_probe_reads_the_known_reductions(gen):
    # conv channel: spatial mean; tokens channel: mean over patch tokens (CLS excluded);
    # attention head: mean over patch queries of sum over keys of p^2
    assert gen.describe("channel", "conv") == "mean over C 1, H: all 4, W: all 4"
    assert gen.describe("channel", "tokens") == "mean over T 1..4 (4 of 5, prefix 0 excluded), D 1"
    assert gen.describe("head", "attention").startswith("1/4 x sum of squares over head 1, query 1..4")
    assert gen.describe("head", "conv").startswith("refused")
