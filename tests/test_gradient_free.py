"""Gradient-free AM (issue 10): PROTES, search spaces, the query budget, NaN ranking, the CLI."""
from __future__ import annotations

import itertools
import json
import sys
from types import SimpleNamespace

import pytest
import torch
from torch import nn

import unifiedviz as uv
from unifiedviz import objectives as obj
from unifiedviz.adapters import Adapter
from unifiedviz.cli import main
from unifiedviz.errors import UnifiedVizError
from unifiedviz.models import InputSpec, VizModel
from unifiedviz.objectives import OnePerImage, UnitObjective
from unifiedviz.optimizers import NevergradPortfolio, Protes, UniformSearch
from unifiedviz.params import GeneratorParam, LowResParam, PixelParam
from unifiedviz.params.seeding import RowGenerators
from unifiedviz.transforms import rand
from unifiedviz.visualize import visualize

pytestmark = pytest.mark.usefixtures("one_thread")


def space(n: int, dims: int, levels: int):
    return SimpleNamespace(n=n, dims=dims, levels=levels, indices=torch.zeros(n, dims, dtype=torch.long))


def search(opt, n, dims, levels, f, budget, seeds):
    """Run `opt` on `f(indices [N, k, d]) -> [N, k]` until `budget` queries per image (as the engine does)."""
    opt.setup_space(space(n, dims, levels), RowGenerators(seeds), budget)
    used = 0
    while used + opt.queries_per_step() <= budget:
        opt.step(f)
        used += opt.queries_per_step()
    return opt.best_indices


def test_protes_samples_follow_its_tensor_train():
    # p(i) = |1^T G1[i1] G2[i2] G3[i3] 1| / sum: checked against a hand contraction, and the sampler against p.
    opt = Protes(rank=2, qtt=False)
    opt.setup_space(space(1, 3, 4), torch.Generator().manual_seed(0), 100)
    cores = opt.cores.detach()[0]
    every = torch.tensor(list(itertools.product(range(4), repeat=3)))
    by_hand = torch.stack([(torch.ones(2) @ cores[0][:, i] @ cores[1][:, j] @ cores[2][:, k]).sum().abs()
                           for i, j, k in every.tolist()])
    by_hand = by_hand / by_hand.sum()
    _, logp = opt._walk(opt.cores.detach(), every.unsqueeze(0), None)
    assert torch.allclose(logp.exp()[0], by_hand, atol=1e-6)
    drawn, _ = opt._walk(opt.cores.detach(), None, rand((1, 8000, 3), opt.generator))
    freq = torch.bincount((drawn[0] * torch.tensor([16, 4, 1])).sum(1), minlength=64).float() / 8000
    assert (freq - by_hand).abs().max() < 0.015  # ~3 standard errors at the largest p


def test_protes_in_qtt_form_searches_binary_digits():
    # 2 positions x 8 values are a train of 6 binary dims (least significant digit first, as teneva)
    opt = Protes(rank=2)
    opt.setup_space(space(1, 2, 8), torch.Generator().manual_seed(0), 100)
    assert (opt.tt_dims, opt.tt_levels) == (6, 2) and opt.cores.shape == (1, 6, 2, 2, 2)
    every = torch.tensor(list(itertools.product(range(8), repeat=2)))
    assert opt._to_train(torch.tensor([[6, 1]])).tolist() == [[0, 1, 1, 1, 0, 0]]
    assert torch.equal(opt._from_train(opt._to_train(every)), every)
    _, logp = opt._walk(opt.cores.detach(), opt._to_train(every).unsqueeze(0), None)
    assert torch.allclose(logp.exp().sum(), torch.tensor(1.0), atol=1e-5)  # a distribution over all 64
    proposed = opt.propose()
    assert proposed.shape == (1, 10, 2) and 0 <= proposed.min() and proposed.max() < 8
    assert Protes(qtt=False).qtt is False and Protes().qtt is True
    opt = Protes()
    opt.setup_space(space(1, 2, 6), torch.Generator().manual_seed(0), 100)  # 6 is not a power of two: plain
    assert (opt.tt_dims, opt.tt_levels) == (2, 6)


def test_protes_mutants_change_one_coordinate_of_each_image_s_best():
    # `mutations` of the k candidates are the image's best so far with one coordinate set to another value
    opt = Protes(candidates=20, mutations=12)
    opt.setup_space(space(2, 5, 4), RowGenerators([1, 2]), 100)
    opt.best_indices = torch.tensor([[0, 1, 2, 3, 0], [3, 3, 3, 3, 3]])
    proposed = opt.propose()
    assert proposed.shape == (2, 20, 5)
    changed = proposed[:, :12] != opt.best_indices.unsqueeze(1)
    assert changed.sum(-1).eq(1).all(), proposed[:, :12]  # exactly one coordinate, and always a new value
    assert 0 <= proposed.min() and proposed.max() < 4
    with pytest.raises(UnifiedVizError, match="0 <= mutations < candidates"):
        Protes(mutations=10)


@pytest.mark.parametrize("d, n, budget", [(6, 16, 3000), (64, 2, 2000)])
def test_protes_finds_the_argmax_where_random_search_does_not(d, n, budget):
    # A sum of per-position scores with a unique optimum: 6 positions x 16 values (16.8M multi-indices),
    # 64 positions x 2 values (1.8e19). All five searches find it by 890 / 1160 queries (measured by
    # bench/gradient_free.py --synthetic 6 16 3000 and --synthetic 64 2 2000, --seeds 1 2 3 4 5);
    # 64 x 512 is in docs/gradient_free.md.
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, n, (d,), generator=g)
    table = torch.rand(d, n, generator=g) * 0.5
    table[torch.arange(d), target] = 1.0
    def f(idx):
        return table[torch.arange(d), idx].sum(-1)

    seeds = [1, 2, 3, 4, 5]  # five independent searches side by side
    found = search(Protes(), 5, d, n, f, budget, seeds)
    assert (found == target).all(1).all(), found
    baseline = search(UniformSearch(), 5, d, n, f, budget, seeds)
    assert not (baseline == target).all(1).any()


class Brightness(nn.Module):
    """Class 0's logit is the image's mean brightness (NaN above 0.6); counts the NaNs it returns."""

    def __init__(self) -> None:
        super().__init__()
        self.nans = 0

    def forward(self, x):
        s = x.mean((1, 2, 3))
        out = torch.where(s > 0.6, torch.full_like(s, float("nan")), s)
        self.nans += int(torch.isnan(out).sum())
        return torch.stack([out, -out], 1)


def test_nan_candidates_rank_last_and_are_counted():
    net = Brightness()
    model = VizModel(net, InputSpec((8, 8), 1)).eval()
    result = visualize(model, "class=0", param="lowres", param_options={"low": 2, "levels": 8},
                       optimizer="uniform-search", budget=200, transforms="none", progress=False)
    assert net.nans > 0 and result.metadata["nan_candidates"] == net.nans  # the final image scores no NaN
    assert 0.5 < float(result.activations[0]) <= 0.6  # the best finite candidate won, never a NaN one


def tiny_cnn() -> VizModel:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 2))
    return VizModel(net, InputSpec((8, 8), 3)).eval()


def test_budget_counts_queries_and_stops():
    adapter = uv.Adapter(tiny_cnn())
    objective = obj.unit(adapter, "0:channel=1")
    param = LowResParam(2, 3, 8, low=4, seed=[1, 2])
    result = uv.render(adapter, objective, param, optimizer="protes", budget=95, transforms="none", seed=[1, 2],
                       progress=False)
    assert result.metadata["queries"] == 90 and result.metadata["queries_total"] == 180  # 9 steps of k = 10
    assert result.queries.tolist() == list(range(10, 91, 10))
    assert (result.history.diff(dim=0) >= 0).all()  # best so far never falls


def test_search_is_seeded_and_does_not_depend_on_the_batch():
    adapter = uv.Adapter(tiny_cnn())
    seeds = [7, 8, 9]

    def run(rows):
        objective = obj.OnePerImage([obj.unit(adapter, f"0:channel={i}", batch=k) for k, i in enumerate(rows)])
        param = LowResParam(len(rows), 3, 8, low=4, seed=[seeds[i] for i in rows])
        return uv.render(adapter, objective, param, optimizer="protes", budget=60, transforms="standard",
                         seed=[seeds[i] for i in rows], progress=False).images

    alone, batch = run([1]), run([0, 1, 2])
    assert torch.equal(alone[0], batch[1]) or (alone[0] - batch[1]).abs().max() < 1e-6
    assert torch.equal(run([0, 1, 2]), batch)
    assert not torch.equal(alone[0], batch[2])


def test_refusals_are_one_line():
    adapter = uv.Adapter(tiny_cnn())
    objective = obj.unit(adapter, "0:channel=1")
    with pytest.raises(UnifiedVizError, match="budget 5 is smaller than one step's queries.*--budget 10"):
        uv.render(adapter, objective, LowResParam(1, 3, 8), optimizer="protes", budget=5, progress=False)
    with pytest.raises(UnifiedVizError, match="no discrete search space"):
        uv.render(adapter, objective, PixelParam(1, 3, 8), optimizer="protes", progress=False)
    with pytest.raises(UnifiedVizError, match="searched, not differentiated"):
        uv.render(adapter, objective, LowResParam(1, 3, 8), optimizer="adam", progress=False)


def test_nevergrad_missing_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "nevergrad", None)  # import nevergrad now raises ImportError
    adapter = uv.Adapter(tiny_cnn())
    with pytest.raises(UnifiedVizError, match="pip install nevergrad"):
        uv.render(adapter, obj.unit(adapter, "0:channel=1"), LowResParam(1, 3, 8), optimizer=NevergradPortfolio(),
                  budget=20, progress=False)


def test_protes_through_the_digits_generator_classifies_as_its_class():
    # Must-show (b) at a smaller budget: --param generator searched on a grid of its latent.
    result = visualize("builtin:digits-cnn", "class=0:10", optimizer="protes", budget=100, param="generator",
                       param_options={"generator": "builtin:digits-gen"}, transforms="none", progress=False)
    logits = next(iter(result.final_acts.values()))
    assert int((logits.argmax(1) == torch.arange(10)).sum()) >= 8
    assert result.metadata["queries"] == 100


def test_cli_budget_writes_curve_and_queries(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["visualize", "builtin:digits-cnn", "class=0:2", "--optimizer", "protes", "--budget", "40",
                 "--param", "lowres", "--transforms", "none", "--out", str(out), "--quiet", "--threads", "1"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metadata"]["queries"] == 40 and summary["metadata"]["queries_total"] == 80
    assert summary["metadata"]["nan_candidates"] == 0
    assert (out / "best_so_far.png").stat().st_size > 1000
    capsys.readouterr()
    code = main(["visualize", "builtin:digits-cnn", "class=0", "--optimizer", "protes", "--budget", "3",
                 "--param", "lowres", "--out", str(tmp_path / "refused"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "budget 3 is smaller" in err and len(err.splitlines()) == 1


def test_the_es_keeps_a_generator_code_as_it_scored_it_despite_the_recipe_s_decay():
    # The generator's L2 decay shapes gradient steps; after an ES step it would shrink the code the ES
    # just accepted, so the image shown would not be the one scored (with decay: final << history).
    torch.manual_seed(0)
    gen = nn.Sequential(nn.Linear(4, 3 * 8 * 8), nn.Tanh(), nn.Unflatten(1, (3, 8, 8)))
    model = VizModel(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2)), InputSpec(size=(8, 8), channels=3))
    adapter = Adapter(model)
    objective = OnePerImage([UnitObjective(adapter.resolve(f"class={c}"), batch=c) for c in (0, 1)])
    param = GeneratorParam(gen, 2, 4, decay=0.2, seed=[1, 2])
    result = uv.render(adapter, objective, param, optimizer="random-search", lr=0.5, steps=40, transforms=None,
                       seed=[1, 2], progress=False)
    assert torch.allclose(result.final, result.history[-1], atol=1e-5), (result.final, result.history[-1])
    assert (result.history[-1] > result.history[0]).all()
