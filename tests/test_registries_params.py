"""Registries of params, optimisers and transform presets: names, look-ups, and a contract row for each.

Adding an optimiser is one file in `unifiedviz/optimizers/` with `@OPTIMIZERS.register(...)`
plus one row in `OPTIMIZER_CASES` below; `test_every_optimiser_has_a_contract_row` fails
without the row.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import unifiedviz as uv
from unifiedviz import objectives as obj
from unifiedviz.models import InputSpec, VizModel
from unifiedviz.optimizers import OPTIMIZERS, Adam, Optimizer, RandomSearch, SearchOptimizer, make_optimizer
from unifiedviz.params import PARAMS, LowResParam, PixelParam, RowGenerators
from unifiedviz.transforms import TRANSFORMS, Compose

pytestmark = pytest.mark.usefixtures("one_thread")

# name -> (lr, steps): each must raise a unit of a tiny CNN within these steps.
OPTIMIZER_CASES = {
    "adam": (0.05, 10),
    "adam-cosine": (0.05, 10),
    "sign-gradient": (0.02, 10),
    "normalized-gradient": (0.5, 10),
    "random-search": (0.3, 30),
    # search optimisers run on a discrete param (LowResParam) instead of pixels; lr: PROTES's step size
    "protes": (0.05, 20),
    "uniform-search": (0.0, 20),
    "nevergrad": (0.0, 20),  # skipped where nevergrad is not installed (an optional extra)
}


def tiny_cnn() -> VizModel:
    torch.manual_seed(0)
    net = nn.Sequential()
    net.add_module("conv", nn.Conv2d(3, 4, 3, padding=1))
    net.add_module("relu", nn.ReLU())
    net.add_module("pool", nn.AdaptiveAvgPool2d(1))
    net.add_module("flat", nn.Flatten())
    net.add_module("fc", nn.Linear(4, 2))
    return VizModel(net, InputSpec((8, 8), 3)).eval()


def test_every_optimiser_has_a_contract_row():
    assert sorted(OPTIMIZER_CASES) == sorted(OPTIMIZERS.names())


@pytest.mark.parametrize("name", OPTIMIZER_CASES)
def test_contract_each_optimiser_raises_a_unit(name):
    lr, steps = OPTIMIZER_CASES[name]
    if name == "nevergrad":
        pytest.importorskip("nevergrad")
    adapter = uv.Adapter(tiny_cnn())
    objective = obj.unit(adapter, "conv:channel=1")
    searching = isinstance(make_optimizer(name, lr), SearchOptimizer)
    param = LowResParam(3, 3, 8, low=4, seed=[1, 2, 3]) if searching else PixelParam(3, 3, 8, seed=[1, 2, 3])
    with torch.no_grad():
        start = objective(obj.Context(adapter.capture(param(), objective.layers), param()))
    result = uv.render(adapter, objective, param, steps=steps, optimizer=name, lr=lr, transforms="none",
                       seed=[1, 2, 3], progress=False)
    assert isinstance(make_optimizer(name, lr), Optimizer)
    assert result.metadata["optimizer"] == name
    assert (result.final > start + 1e-3).all(), (name, start, result.final)


def test_random_search_draws_each_images_proposals_from_its_own_stream():
    adapter = uv.Adapter(tiny_cnn())
    seeds = [7, 8, 9]

    def run(rows):
        objective = obj.OnePerImage([obj.unit(adapter, f"conv:channel={i}", batch=k) for k, i in enumerate(rows)])
        param = PixelParam(len(rows), 3, 8, seed=[seeds[i] for i in rows])
        return uv.render(adapter, objective, param, steps=15, optimizer="random-search", lr=0.3, transforms="none",
                         seed=[seeds[i] for i in rows], progress=False).images

    alone, batch = run([1]), run([0, 1, 2])
    assert (alone[0] - batch[1]).abs().max() < 1e-5
    assert not torch.allclose(alone[0], run([2])[0])


def test_row_generators_draw_rows_independently():
    rows = RowGenerators([3, 4, 5])
    solo = RowGenerators([4])
    assert torch.equal(rows.randn((3, 2, 5))[1], solo.randn((1, 2, 5))[0])
    assert torch.equal(rows.rand((3, 4))[1], solo.rand((1, 4))[0])
    assert torch.equal(rows.randint(0, 9, (3, 6))[1], solo.randint(0, 9, (1, 6))[0])
    with pytest.raises(uv.UnifiedVizError, match="one seed per image"):
        rows.rand((2, 4))
    with pytest.raises(uv.UnifiedVizError, match="must be an int"):
        RowGenerators([1, "2"])


def test_transform_presets():
    assert TRANSFORMS.names() == ["standard", "none"]
    image, sequence = InputSpec((16, 16), 3), InputSpec((32,), 2)
    assert isinstance(TRANSFORMS.get("standard")(image), Compose)
    assert isinstance(TRANSFORMS.get("standard")(sequence), Compose)
    assert TRANSFORMS.get("none")(image) is None


def test_unknown_names_fail_with_the_valid_choices():
    adapter = uv.Adapter(tiny_cnn())
    objective = obj.unit(adapter, "conv:channel=0")
    with pytest.raises(uv.UnifiedVizError, match="unknown optimiser 'adamw'.*did you mean 'adam'"):
        uv.render(adapter, objective, PixelParam(1, 3, 8), steps=1, optimizer="adamw", progress=False)
    with pytest.raises(uv.UnifiedVizError, match="unknown transforms preset 'standrad'.*'standard'"):
        uv.render(adapter, objective, PixelParam(1, 3, 8), steps=1, transforms="standrad", progress=False)
    with pytest.raises(uv.UnifiedVizError, match="unknown parameterisation"):
        uv.visualize(tiny_cnn(), "conv:channel=0", param="pixels", steps=1, progress=False)


def test_registry_entries_have_help_and_build_what_they_say():
    for registry in (PARAMS, OPTIMIZERS, TRANSFORMS):
        assert all(entry.help for entry in registry.entries()), registry
    assert make_optimizer("adam-cosine", 0.1).schedule == "cosine"
    assert isinstance(make_optimizer("random-search", 0.2), RandomSearch)
    assert make_optimizer("random-search", 0.2).sigma0 == 0.2
    mine = Adam(0.3)
    assert make_optimizer(mine, 0.1) is mine
