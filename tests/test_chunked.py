"""The engine's chunked forward/backward: the same gradients as the whole batch, for any objective."""
from __future__ import annotations

import torch
from torch import nn

import unifiedviz as uv
from unifiedviz import objectives as obj
from unifiedviz.adapters import Adapter
from unifiedviz.chunked import chunked
from unifiedviz.models import InputSpec, VizModel
from unifiedviz.objectives import Context
from unifiedviz.params import make_param


def bn_cnn(seed: int = 0) -> VizModel:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                        nn.Conv2d(6, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    with torch.no_grad():  # eval-mode statistics that are not the identity
        net[1].running_mean.uniform_(-0.5, 0.5)
        net[1].running_var.uniform_(0.5, 2.0)
    return VizModel(net.eval(), InputSpec(size=(12, 12), channels=3))


def gradient(adapter: Adapter, x: torch.Tensor, objective, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    with adapter.session(objective.layers) as run:
        x = x.clone().requires_grad_()
        score = objective(Context(chunked(run, chunk)(x), x))
        score.sum().backward()
    return score.detach(), x.grad


def test_chunks_give_the_whole_batch_s_scores_and_gradients_even_for_a_batch_objective():
    adapter = Adapter(bn_cnn())
    x = torch.rand(7, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    # per-image unit terms plus Lucid's diversity, which couples every image of the batch
    objective = obj.unit(adapter, "3:channel=1") + 0.5 * obj.diversity("0")
    whole_score, whole = gradient(adapter, x, objective, chunk=0)
    for chunk in (1, 3, 7):  # 3: chunks of 3, 3 and 1
        score, grad = gradient(adapter, x, objective, chunk)
        assert torch.allclose(score, whole_score, atol=1e-6)
        assert torch.allclose(grad, whole, atol=1e-6), (chunk, (grad - whole).abs().max())
    assert whole.abs().amin(dim=(1, 2, 3)).lt(whole.abs().amax()).all() and whole[-1].abs().sum() > 0


def test_a_render_in_chunks_matches_the_whole_batch():
    adapter = Adapter(bn_cnn())
    units = ["3:channel=0", "3:channel=1", "3:channel=2", "3:channel=3", "3:channel=0"]
    objective = obj.OnePerImage([obj.unit(adapter, u, batch=i) for i, u in enumerate(units)])
    seeds = [11, 12, 13, 14, 15]
    runs = [uv.render(adapter, objective, make_param("fourier", 5, adapter.model.spec, seed=seeds), steps=12,
                      seed=seeds, chunk=chunk, progress=False) for chunk in (0, 2)]
    assert torch.allclose(runs[0].images, runs[1].images, atol=1e-4)
    assert torch.allclose(runs[0].history, runs[1].history, rtol=1e-4, atol=1e-5)
    assert (runs[0].history[-1] > runs[0].history[0]).all()  # it did optimise


def test_a_capture_that_is_not_batch_first_runs_whole():
    seen = []

    def run(x):
        seen.append(len(x))
        return {"folded": x.flatten(0, 1)}  # batch and channels folded together: cannot be split by image

    x = torch.rand(4, 3, 2, 2, requires_grad=True)
    run_in_chunks = chunked(run, 2)
    out = run_in_chunks(x)["folded"]
    assert out.shape[0] == 12 and seen == [2, 4]  # one chunk tried, then the whole batch
    run_in_chunks(x)
    assert seen == [2, 4, 4]  # later steps go straight to the whole batch
