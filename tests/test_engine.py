"""The AM engine on small models: units rise, many units per batch, determinism, guards."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import unifiedviz as uv
from unifiedviz import objectives as obj
from unifiedviz.models import InputSpec, VizModel
from unifiedviz.optimizers import RandomSearch
from unifiedviz.params import GeneratorParam, PixelParam, SequenceParam
from unifiedviz.report.run_folder import MANIFEST

pytestmark = pytest.mark.usefixtures("one_thread")


def small_cnn(seed: int = 0) -> VizModel:
    torch.manual_seed(seed)
    net = nn.Sequential()
    net.add_module("conv1", nn.Conv2d(3, 8, 3, padding=1))
    net.add_module("relu1", nn.ReLU())
    net.add_module("conv2", nn.Conv2d(8, 16, 3, padding=1, stride=2))
    net.add_module("relu2", nn.ReLU())
    net.add_module("pool", nn.AdaptiveAvgPool2d(1))
    net.add_module("flat", nn.Flatten())
    net.add_module("fc", nn.Linear(16, 5))
    return VizModel(net, InputSpec((24, 24), 3, (0.5,) * 3, (0.25,) * 3)).eval()


def small_1d_cnn(seed: int = 0) -> VizModel:
    torch.manual_seed(seed)
    net = nn.Sequential()
    net.add_module("conv1", nn.Conv1d(2, 6, 5, padding=2))
    net.add_module("relu1", nn.ReLU())
    net.add_module("conv2", nn.Conv1d(6, 8, 5, padding=2))
    net.add_module("pool", nn.AdaptiveAvgPool1d(1))
    net.add_module("flat", nn.Flatten())
    net.add_module("fc", nn.Linear(8, 3))
    return VizModel(net, InputSpec((64,), 2)).eval()


def test_visualize_raises_every_unit_of_a_batch_above_its_random_start():
    model = small_cnn()
    units = "conv2:channel=0:8"
    start = uv.visualize(model, units, steps=1, lr=1e-9, progress=False, transforms="none")
    plain = uv.visualize(model, units, steps=60, progress=False, transforms="none")
    assert plain.images.shape == (8, 3, 24, 24)
    assert 0 <= plain.images.min() and plain.images.max() <= 1
    assert plain.history.shape == (60, 8)
    assert (plain.activations > start.activations + 0.1).all(), (start.activations, plain.activations)
    # Robustness transforms cost activation on the untransformed image, but every unit still rises.
    robust = uv.visualize(model, units, steps=60, progress=False)
    assert (robust.activations > start.activations).all()
    assert (robust.activations - start.activations).mean() > 0.1


def test_each_image_serves_its_own_unit():
    # Image i maximises channel i: it must drive channel i harder than the image made for channel j.
    model = small_cnn()
    result = uv.visualize(model, "conv2:channel=0:6", steps=60, transforms="none", progress=False)
    adapter = uv.Adapter(model)
    acts = adapter.capture(result.images, ["conv2"])["conv2"].mean((2, 3))[:, :6]  # [image, channel]
    assert (acts.argmax(0) == torch.arange(6)).float().mean() >= 5 / 6


def test_same_seed_same_images_bitwise_and_other_seed_differs():
    model = small_cnn()
    a = uv.visualize(model, "conv2:channel=1,3", steps=8, seed=3, progress=False)
    b = uv.visualize(model, "conv2:channel=1,3", steps=8, seed=3, progress=False)
    c = uv.visualize(model, "conv2:channel=1,3", steps=8, seed=4, progress=False)
    assert torch.equal(a.images, b.images) and torch.equal(a.history, b.history)
    assert not torch.equal(a.images, c.images)


def test_batches_split_but_results_line_up_with_units():
    model = small_cnn()
    result = uv.visualize(model, "conv2:channel=0:5", steps=3, batch_size=2, progress=False)
    assert result.metadata["batches"] == 3
    assert result.names == [f"conv2:channel={i}" for i in range(5)]
    assert result.images.shape[0] == result.activations.shape[0] == result.history.shape[1] == 5
    # Activations come from the engine's last pass; a fresh pass over the images agrees.
    adapter = uv.Adapter(model)
    fresh = uv.unit_values(adapter, [adapter.resolve(n) for n in result.names], result.images)
    assert torch.allclose(result.activations, fresh, atol=1e-6)


def test_diversity_lowers_similarity_of_one_units_images():
    model = small_cnn()

    def mean_similarity(images: torch.Tensor) -> float:
        acts = uv.Adapter(model).capture(images, ["conv1"])["conv1"]
        return float(-obj.Diversity("conv1")(obj.Context({"conv1": acts}, images)).mean())

    kwargs = dict(per_unit=4, steps=40, param="pixel", progress=False)
    plain = uv.visualize(model, "conv2:channel=2", **kwargs)
    diverse = uv.visualize(model, "conv2:channel=2", diversity=5.0, **kwargs)
    assert mean_similarity(diverse.images) < mean_similarity(plain.images) - 0.01


def test_objective_arithmetic_and_names():
    model = small_cnn()
    adapter = uv.Adapter(model)
    a = obj.unit(adapter, "conv2:channel=1")
    b = obj.unit(adapter, "conv2:channel=2")
    combo = a - 0.5 * b + 2 * obj.total_variation()
    assert combo.name == "conv2:channel=1 - 0.5*conv2:channel=2 + 2*total_variation"
    x = torch.rand(3, 3, 24, 24)
    ctx = obj.Context(adapter.capture(x, combo.layers), x)
    expected = a(ctx) - 0.5 * b(ctx) + 2 * obj.total_variation()(ctx)
    assert torch.allclose(combo(ctx), expected)
    assert torch.allclose((-a)(ctx), -a(ctx))


def test_unit_reductions_match_hand_computation():
    model = small_cnn()
    adapter = uv.Adapter(model)
    x = torch.rand(2, 3, 24, 24)
    acts = adapter.capture(x, ["conv2", uv.LOGITS])
    ctx = obj.Context(acts, x)
    conv2 = acts["conv2"]
    assert torch.allclose(obj.unit(adapter, "conv2:channel=3")(ctx), conv2[:, 3].mean((1, 2)))
    assert torch.allclose(obj.unit(adapter, "conv2:neuron=3")(ctx), conv2[:, 3, 6, 6])
    assert torch.allclose(obj.unit(adapter, "conv2:neuron=3:y=1:x=4")(ctx), conv2[:, 3, 1, 4])
    assert torch.allclose(obj.unit(adapter, "class=4")(ctx), model(x)[:, 4])
    logprob = obj.unit(adapter, "class=4", score="logprob")(ctx)
    assert torch.allclose(logprob, torch.log_softmax(model(x), 1)[:, 4])


def test_direction_unit_projects_onto_the_vector(tmp_path):
    import numpy as np

    model = small_cnn()
    adapter = uv.Adapter(model)
    v = np.linspace(-1, 1, 16).astype(np.float32)
    np.save(tmp_path / "cav.npy", v)
    x = torch.rand(2, 3, 24, 24)
    ctx = obj.Context(adapter.capture(x, ["conv2"]), x)
    value = obj.unit(adapter, f"conv2:direction={tmp_path / 'cav.npy'}")(ctx)
    expected = torch.einsum("bchw,c->b", ctx.acts["conv2"], torch.from_numpy(v)) / (12 * 12)
    assert torch.allclose(value, expected, atol=1e-6)
    np.save(tmp_path / "bad.npy", v[:5])
    with pytest.raises(uv.UnifiedVizError, match="length 16"):
        obj.unit(adapter, f"conv2:direction={tmp_path / 'bad.npy'}")


def test_regularisers_are_penalties_that_shrink_when_subtracted():
    model = small_cnn()
    kwargs = dict(steps=40, param="pixel", transforms="none", progress=False, lr=0.05)
    plain = uv.visualize(model, "conv2:channel=1", **kwargs)
    smooth = uv.visualize(model, "conv2:channel=1", regularizer=5.0 * obj.total_variation(), **kwargs)
    tv = obj.total_variation()
    ctx = lambda r: obj.Context({}, r.images)  # noqa: E731
    assert tv(ctx(smooth)) < 0.8 * tv(ctx(plain))
    const = torch.full((1, 3, 8, 8), 0.5)
    for term in (obj.l1(), obj.l2(), obj.total_variation(), obj.blur()):
        assert float(term(obj.Context({}, const))) == pytest.approx(0.0, abs=1e-7)


def test_sequence_model_renders_with_smoothing():
    model = small_1d_cnn()
    adapter = uv.Adapter(model)
    assert adapter.layer("conv2").layout.kind == "sequence"
    objective = obj.OnePerImage([obj.unit(adapter, f"conv2:channel={i}", batch=i) for i in range(3)])
    param = SequenceParam(3, 2, 64, smoothing=0.5, seed=0)
    result = uv.render(adapter, objective, param, steps=40, lr=0.2, progress=False)
    assert result.images.shape == (3, 2, 64)
    # Better than the best of 512 random sequences, for every unit.
    random_best = uv.reference_max(adapter, [o.resolved for o in objective.objectives], torch.rand(512, 2, 64))
    assert (result.final > random_best).all(), (result.final, random_best)


def test_generator_param_and_gradient_free_optimiser_raise_a_unit():
    model = small_cnn()
    adapter = uv.Adapter(model)
    torch.manual_seed(1)
    generator = nn.Sequential(nn.Linear(8, 3 * 24 * 24), nn.Tanh(), nn.Unflatten(1, (3, 24, 24)))
    objective = obj.unit(adapter, "conv2:channel=5")
    for optimizer in ("adam", RandomSearch(sigma=0.5)):
        param = GeneratorParam(generator, 2, 8, clip=3.0, seed=0)
        start = objective(obj.Context(adapter.capture(param().detach(), objective.layers), param().detach()))
        result = uv.render(adapter, objective, param, steps=30, optimizer=optimizer, lr=0.1, transforms="none",
                           progress=False)
        assert (result.final > start).all(), optimizer
        assert param.z.abs().max() <= 3.0 + 1e-6


def test_nan_objective_stops_with_a_clear_error():
    model = small_cnn()
    adapter = uv.Adapter(model)
    nan = obj.ImageTerm("nan", lambda x: x.sum((1, 2, 3)) * float("nan"))
    with pytest.raises(uv.UnifiedVizError, match="NaN/inf at step 1"):
        uv.render(adapter, nan + obj.unit(adapter, "conv2:channel=0"), PixelParam(1, 3, 24), steps=3, progress=False)


def test_callback_stops_early_and_snapshots_are_kept():
    model = small_cnn()
    adapter = uv.Adapter(model)
    result = uv.render(adapter, obj.unit(adapter, "conv2:channel=0"), PixelParam(1, 3, 24), steps=50,
                       snapshot_steps=(2,), callback=lambda info: info.step == 4, progress=False)
    assert result.history.shape[0] == 4 and result.metadata["steps"] == 4
    assert set(result.snapshots) == {2}


def test_weights_are_restored_after_rendering():
    model = small_cnn()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    uv.visualize(model, "conv2:channel=0", steps=3, progress=False)
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_save_writes_grid_pngs_and_summary(tmp_path):
    model = small_cnn()
    reference = torch.rand(16, 3, 24, 24)
    result = uv.visualize(model, "conv2:channel=0:3", steps=20, reference=reference, snapshot_steps=(0, 5),
                          progress=False)
    out = result.save(tmp_path / "run")
    assert out == tmp_path / "run"
    summary = json.loads((out / "summary.json").read_text())
    assert [u["address"] for u in summary["units"]] == ["conv2:channel=0", "conv2:channel=1", "conv2:channel=2"]
    acts = uv.Adapter(model).capture(reference, ["conv2"])["conv2"].mean((2, 3))[:, :3].max(0).values
    assert [u["reference_max"] for u in summary["units"]] == pytest.approx(acts.tolist(), rel=1e-5)
    names = {p.name for p in out.iterdir()}
    assert {"grid.png", "unit_000.png", "unit_002.png", "grid_step00000.png", "grid_step00005.png"} <= names
    assert [n for n in names if n.startswith(".")] == [MANIFEST]  # no temp files left behind
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # nor hidden sibling folders


def test_save_again_replaces_the_folder_and_refuses_foreign_ones(tmp_path):
    model = small_cnn()
    kwargs = dict(steps=2, progress=False)
    uv.visualize(model, "conv2:channel=0:3", **kwargs).save(tmp_path / "run")
    uv.visualize(model, "conv2:channel=5", **kwargs).save(tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").glob("unit_*.png")) == ["unit_000.png"]  # none stale
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["units"][0]["address"] == "conv2:channel=5"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(uv.UnifiedVizError, match="did not write"):
        uv.visualize(model, "conv2:channel=0", **kwargs).save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_engine_writes_nothing_and_imports_no_writer():
    import ast
    import inspect

    import unifiedviz.engine as engine

    tree = ast.parse(inspect.getsource(engine))
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if "report" in m], imported
    assert not hasattr(uv.Result, "save")


def test_visualize_concatenates_final_acts_and_reports_batches_to_the_callback():
    model = small_cnn()
    seen = []

    def callback(info):
        seen.append((info.batch, info.step, list(info.names), info.images.shape[0]))
        return info.batch == 1 and info.step == 2  # stop the second batch early

    result = uv.visualize(model, "conv2:channel=0:3 conv1:channel=0:2", steps=4, batch_size=3, callback=callback,
                          snapshot_steps=(0, 3), progress=False)
    assert [s[:2] for s in seen] == [(0, 1), (0, 2), (0, 3), (0, 4), (1, 1), (1, 2)]
    assert seen[0][2] == [f"conv2:channel={i}" for i in range(3)] and seen[-1][3] == 2
    assert result.metadata["steps_per_batch"] == [4, 2] and result.history.shape == (2, 5)
    assert set(result.snapshots) == {0}  # step 3 was not reached by the second batch
    assert result.final_acts["conv2"].shape[0] == result.final_acts["conv1"].shape[0] == 5
    # Each batch captured only its own layer: the other batch's rows are NaN, the rest is real.
    assert torch.isnan(result.final_acts["conv1"][:3]).all() and torch.isnan(result.final_acts["conv2"][3:]).all()
    fresh = uv.Adapter(model).capture(result.images, ["conv1", "conv2"])
    assert torch.allclose(result.final_acts["conv2"][:3], fresh["conv2"][:3], atol=1e-6)
    assert torch.allclose(result.final_acts["conv1"][3:], fresh["conv1"][3:], atol=1e-6)
