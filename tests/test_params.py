"""Parameterisations: shape/range/gradient/seed contract, plus each one's own promise."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from unifiedviz.errors import UnifiedVizError
from unifiedviz.models.spec import InputSpec
import unifiedviz.params as params_package
from unifiedviz.params import (
    PARAMS,
    FourierParam,
    CodesParam,
    GeneratorParam,
    LatentGridParam,
    LowResParam,
    MacoParam,
    Param,
    PerturbationParam,
    PixelParam,
    SearchSpace,
    SequenceParam,
    make_param,
    magnitude_from_images,
    smoothness_penalty,
)
from unifiedviz.params._spectral import amplitude, radial_frequency

IMAGES = torch.rand((3, 3, 12, 10), generator=torch.Generator().manual_seed(123))


class TinyDecoder(nn.Module):
    """latent [N, 4, 2, 2] -> image [N, 3, 6, 5] in (0, 1): the decoder of a toy VQ-VAE."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(16, 3 * 6 * 5)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc(z.flatten(1))).view(-1, 3, 6, 5)


class TinyGenerator(nn.Module):
    """z [N, 4] -> tanh image [N, 3, 6, 5] in (-1, 1)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(4, 3 * 6 * 5)
        self.bn = nn.BatchNorm1d(3 * 6 * 5)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.bn(self.fc(z))).view(-1, 3, 6, 5)


# name -> (builder taking a seed, expected output shape)
CASES = {
    "pixel": (lambda s: PixelParam(2, 3, (8, 10), seed=s), (2, 3, 8, 10)),
    "pixel-1d": (lambda s: PixelParam(2, 2, (16,), seed=s), (2, 2, 16)),
    "fourier-rgb": (lambda s: FourierParam(2, 3, (8, 9), seed=s), (2, 3, 8, 9)),
    "fourier-grey": (lambda s: FourierParam(2, 1, (9, 8), seed=s), (2, 1, 9, 8)),
    "fourier-1d": (lambda s: FourierParam(2, 2, (15,), seed=s), (2, 2, 15)),
    "maco-rgb": (lambda s: MacoParam(2, 3, (8, 9), seed=s), (2, 3, 8, 9)),
    "maco-grey": (lambda s: MacoParam(2, 1, (10, 10), seed=s), (2, 1, 10, 10)),
    "sequence": (lambda s: SequenceParam(2, 3, 20, smoothing=0.3, seed=s), (2, 3, 20)),
    "generator": (lambda s: GeneratorParam(TinyGenerator(), 2, 4, seed=s), (2, 3, 6, 5)),
    # search spaces (gradient-free): indices decoded to images, checked by decoding instead of a gradient
    "codes": (lambda s: CodesParam(TinyDecoder(), torch.randn(6, 4, generator=torch.Generator().manual_seed(0)), 2,
                                   (2, 2), seed=s), (2, 3, 6, 5)),
    "latent-grid": (lambda s: LatentGridParam(GeneratorParam(TinyGenerator(), 2, 4, seed=s), levels=8), (2, 3, 6, 5)),
    "lowres": (lambda s: LowResParam(2, 3, (8, 10), low=4, seed=s), (2, 3, 8, 10)),
    "perturbation-linf": (
        lambda s: PerturbationParam(IMAGES, eps=0.1, random_start=True, seed=s), (3, 3, 12, 10)),
    "perturbation-l2": (
        lambda s: PerturbationParam(IMAGES, eps=0.5, norm="l2", random_start=True, seed=s), (3, 3, 12, 10)),
    "perturbation-universal": (
        lambda s: PerturbationParam(IMAGES, eps=0.1, random_start=True, universal=True, seed=s), (3, 3, 12, 10)),
}


@pytest.mark.parametrize("name", CASES)
def test_contract_shape_range_gradient(name):
    build, shape = CASES[name]
    param = build(0)
    x = param()
    assert tuple(x.shape) == shape
    assert x.min() >= 0 and x.max() <= 1
    if isinstance(param, SearchSpace):  # searched, not differentiated: any indices decode; assign shows them
        other = (param.indices + 1) % param.levels
        assert not torch.equal(param.images(other), x)
        param.assign(other)
        assert torch.equal(param(), param.images(other))
        return
    (x * torch.linspace(-1, 1, x.numel()).view_as(x)).sum().backward()
    trainable = [p for p in param.parameters() if p.requires_grad]
    assert trainable, "nothing to optimise"
    for p in trainable:
        assert p.grad is not None and p.grad.abs().sum() > 0


@pytest.mark.parametrize("name", CASES)
def test_contract_seeding(name):
    build, _ = CASES[name]
    assert torch.equal(build(0)(), build(0)())
    assert not torch.equal(build(0)(), build(1)())


@pytest.mark.parametrize("name", CASES)
def test_contract_per_image_seeds(name):
    # One seed per image: image 0's start depends on its own seed only, not on the others'.
    build, shape = CASES[name]
    n = shape[0]
    if name == "perturbation-universal":
        with pytest.raises(UnifiedVizError, match="an int for a universal perturbation"):
            build([5, 6, 7])
        return
    a, b = build([5, 6, 7][:n]), build([5, 8, 9][:n])
    for pa, pb in zip(_trainable(a), _trainable(b)):
        assert torch.equal(pa[0], pb[0])
        assert not torch.equal(pa[1:], pb[1:])
    with pytest.raises(UnifiedVizError, match="one seed per image"):
        build([5] * (n + 1))


def _trainable(param: Param) -> list[torch.Tensor]:
    if isinstance(param, SearchSpace):
        return [param.indices]
    return [p.detach() for p in param.parameters() if p.requires_grad]


def test_every_param_has_a_contract_row():
    # Adding a parameterisation = its file + its registration + a row in CASES: this fails without the row.
    built = {type(build(0)) for build, _ in CASES.values()}
    missing = [name for name in PARAMS.names() if PARAMS.get(name) not in built]
    assert not missing, f"registered params without a row in CASES: {missing}"
    classes = {c for c in _subclasses(Param) if c.__module__.startswith(params_package.__name__)}
    assert not sorted(c.__name__ for c in classes - built), "Param classes without a row in CASES"


def _subclasses(cls: type) -> set[type]:
    return {c for sub in cls.__subclasses__() for c in {sub} | _subclasses(sub)}


def test_registered_params_build_from_a_spec():
    assert PARAMS.names() == ["pixel", "fourier", "maco", "sequence", "generator", "codes", "latent-grid", "lowres"]
    assert {name for name, _, _ in FROM_SPEC} == set(PARAMS.names())


def test_seed_accepts_generator():
    a = PixelParam(1, 3, 8, seed=torch.Generator().manual_seed(5))
    assert torch.equal(a(), PixelParam(1, 3, 8, seed=5)())


def test_pixel_init_reproduces_image():
    image = IMAGES[0].clamp(0.01, 0.99)
    param = PixelParam(2, 3, (12, 10), init=image)
    assert torch.allclose(param(), image.expand(2, -1, -1, -1), atol=1e-5)
    with pytest.raises(UnifiedVizError, match="init must be"):
        PixelParam(1, 3, (12, 12), init=image)


def _spectral_slope(x: torch.Tensor) -> float:
    """Least-squares slope of log amplitude vs log frequency over the non-DC bins."""
    size = tuple(x.shape[2:])
    amp = amplitude(x - x.mean((2, 3), keepdim=True), size).mean((0, 1))
    f = radial_frequency(size)
    keep = f > 0
    lx, ly = f[keep].log(), amp[keep].log()
    lx, ly = lx - lx.mean(), ly - ly.mean()
    return float((lx * ly).sum() / (lx * lx).sum())


@pytest.mark.parametrize("decay_power", [1.0, 2.0])
def test_fourier_init_spectrum_falls_as_power_law(decay_power):
    x = FourierParam(4, 1, (64, 64), decay_power=decay_power, seed=0)().detach()
    assert _spectral_slope(x) == pytest.approx(-decay_power, abs=0.2)


def _ascend(param, score, steps: int, lr: float = 0.1) -> None:
    """A few Adam steps that raise `score(param())`, with the param's after_step()."""
    opt = torch.optim.Adam(param.parameters(), lr=lr)
    for _ in range(steps):
        loss = -score(param())
        opt.zero_grad()
        loss.backward()
        opt.step()
        param.after_step()


def test_fourier_optimisation_raises_target_channel():
    param = FourierParam(1, 3, (16, 16), seed=0)
    start = param()[:, 0].mean().item()
    _ascend(param, lambda x: x[:, 0].mean(), steps=20)
    assert param()[:, 0].mean().item() > start + 0.1


def test_fourier_decorrelation_mixes_colours_only_for_rgb():
    grey = FourierParam(1, 1, 8, seed=0)
    assert not grey.decorrelate
    rgb, plain = FourierParam(1, 3, 8, seed=0), FourierParam(1, 3, 8, decorrelate=False, seed=0)
    # Same spectrum, but the decorrelated version couples channels: RGB channels correlate.
    corr = torch.corrcoef(rgb()[0].flatten(1)) - torch.corrcoef(plain()[0].flatten(1))
    assert corr[0, 1] > 0.3


def test_maco_magnitude_fixed_phase_moves():
    photos = torch.rand((4, 3, 16, 14), generator=torch.Generator().manual_seed(0)).cumsum(-1) / 14
    magnitude = magnitude_from_images(photos)
    param = MacoParam(2, 3, (16, 14), magnitude=magnitude, seed=0)
    phase0, image0 = param.phase.detach().clone(), param().detach()
    _ascend(param, lambda x: x[:, 1].mean(), steps=5)
    assert not torch.allclose(param.phase, phase0)
    assert not torch.allclose(param(), image0)
    measured = amplitude(param.spatial(), (16, 14))
    assert torch.allclose(measured, magnitude.expand_as(measured), rtol=1e-4, atol=1e-4 * magnitude.max())


def test_magnitude_from_images_finds_the_frequency():
    # A vertical grating with 3 cycles across the width: all non-DC energy sits in bin (0, 3).
    cols = torch.arange(16, dtype=torch.float32)
    grating = (0.5 + 0.4 * torch.cos(2 * math.pi * 3 * cols / 16)).expand(2, 1, 8, 16)
    magnitude = magnitude_from_images(grating)
    assert magnitude.shape == (1, 8, 9)
    ac = magnitude.clone()
    ac[0, 0, 0] = 0
    assert ac.flatten().argmax().item() == 3
    assert ac.sum() == pytest.approx(ac[0, 0, 3].item(), rel=1e-4)


def test_maco_rejects_wrong_magnitude():
    with pytest.raises(UnifiedVizError, match="magnitude_from_images"):
        MacoParam(1, 3, (16, 16), magnitude=torch.ones(3, 16, 16))


def test_perturbation_stays_in_ball_and_box_linf():
    images = IMAGES.clone()
    images[0, 0] = 1.0  # saturated pixels: delta may only go down there
    param = PerturbationParam(images, eps=0.05, random_start=True, seed=0)
    target = torch.randn(images.shape, generator=torch.Generator().manual_seed(1))
    opt = torch.optim.SGD(param.parameters(), lr=1.0)  # big steps leave the ball every time
    for _ in range(20):
        loss = -(param() * target).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        param.after_step()
        adv = images + param.delta
        assert param.delta.abs().max() <= 0.05 + 1e-6
        assert adv.min() >= 0 and adv.max() <= 1
    # The bound is active, not trivially satisfied by a vanishing delta.
    assert (param.delta.abs() > 0.05 - 1e-6).float().mean() > 0.5
    assert torch.equal(param.adversarial_images(), (images + param.delta).detach())


def test_perturbation_l2_per_sample():
    param = PerturbationParam(IMAGES, eps=0.3, norm="l2", random_start=True, seed=0)
    start = param.delta.flatten(1).norm(dim=1)
    assert (start > 0).all() and (start <= 0.3 + 1e-6).all()
    target = torch.randn(IMAGES.shape, generator=torch.Generator().manual_seed(1))
    opt = torch.optim.SGD(param.parameters(), lr=1.0)
    for _ in range(20):
        loss = -(param() * target).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        param.after_step()
        norms = param.delta.flatten(1).norm(dim=1)
        assert (norms <= 0.3 + 1e-6).all()
        adv = IMAGES + param.delta
        assert adv.min() >= 0 and adv.max() <= 1
    assert norms.min() > 0.25


@pytest.mark.parametrize("norm,eps", [("linf", 0.05), ("l2", 0.3)])
def test_perturbation_projection_keeps_feasible_delta(norm, eps):
    # A projection must not move a point that is already inside both constraints.
    param = PerturbationParam(IMAGES.clamp(0.2, 0.8), eps=eps, norm=norm)
    feasible = torch.rand((3, 3, 12, 10), generator=torch.Generator().manual_seed(2)) * 0.01
    with torch.no_grad():
        param.delta.copy_(feasible)
    param.after_step()
    assert torch.equal(param.delta.detach(), feasible)


def test_perturbation_universal_shares_delta():
    param = PerturbationParam(IMAGES, eps=0.05, universal=True)
    assert param.delta.shape == (1, *IMAGES.shape[1:])
    with torch.no_grad():
        param.delta.fill_(0.2)  # outside the ball and, for bright pixels, outside [0, 1]
    param.after_step()
    assert param.delta.max() <= 0.05 + 1e-6
    # One shared delta, clipped per image: every image stays in [0, 1] and in its own ball.
    assert torch.equal(param(), (IMAGES + param.delta).clamp(0, 1))
    assert (param() - IMAGES).abs().max() <= 0.05 + 1e-6
    bright = IMAGES > 0.96
    assert bright.any() and torch.equal(param()[bright], torch.ones(int(bright.sum())))


def test_perturbation_universal_delta_is_not_frozen_by_other_images():
    # A pixel dark in one image and bright in another still moves (both ways) for a universal delta.
    images = torch.stack([torch.zeros(1, 4, 4), torch.ones(1, 4, 4)])
    param = PerturbationParam(images, eps=0.1, universal=True)
    for value in (0.3, -0.3):
        with torch.no_grad():
            param.delta.fill_(value)
        param.after_step()
        assert torch.allclose(param.delta, torch.full_like(param.delta, 0.1 if value > 0 else -0.1))


def test_perturbation_gradient_reaches_saturated_pixels():
    images = IMAGES.clone()
    images[:, :, :2] = 1.0
    images[:, :, -2:] = 0.0
    param = PerturbationParam(images, eps=0.1)
    param().sum().backward()
    assert torch.equal(param.delta.grad, torch.ones_like(images))


def test_perturbation_errors():
    with pytest.raises(UnifiedVizError, match="unknown norm"):
        PerturbationParam(IMAGES, eps=0.1, norm="l1")
    with pytest.raises(UnifiedVizError, match=r"in \[0, 1\]"):
        PerturbationParam(IMAGES * 255, eps=0.1)


def test_generator_rescales_output_and_stays_frozen():
    gen = TinyGenerator()
    param = GeneratorParam(gen, 3, 4, seed=0)
    with torch.no_grad():
        assert torch.allclose(param(), (gen(param.z) + 1) / 2)
    assert [name for name, p in param.named_parameters() if p.requires_grad] == ["z"]
    param.train()
    assert not gen.training


def test_generator_clip_and_decay():
    param = GeneratorParam(TinyGenerator(), 3, (4,), clip=0.5, seed=0)
    assert param.z.abs().max() <= 0.5  # the initial codes are clipped too
    with torch.no_grad():
        param.z.fill_(3.0)
    param.after_step()
    assert torch.all(param.z == 0.5)

    param = GeneratorParam(TinyGenerator(), 3, 4, clip=(-0.1, 2.0), seed=0)
    assert param.z.min() >= -0.1 and param.z.max() <= 2.0

    param = GeneratorParam(TinyGenerator(), 3, 4, decay=0.1, seed=0)
    before = param.z.detach().clone()
    param.after_step()
    assert torch.allclose(param.z, 0.9 * before)
    with pytest.raises(UnifiedVizError, match="clip"):
        GeneratorParam(TinyGenerator(), 1, 4, clip=-1.0)


def test_sequence_smoothing_is_an_ema():
    alpha = 0.3
    raw = SequenceParam(2, 3, 12, seed=0)
    smooth = SequenceParam(2, 3, 12, smoothing=alpha, seed=0)
    x, y = raw().detach(), smooth().detach()
    expected = [x[..., 0]]
    for t in range(1, 12):
        expected.append(alpha * x[..., t] + (1 - alpha) * expected[-1])
    assert torch.allclose(y, torch.stack(expected, -1), atol=1e-6)
    assert smoothness_penalty(y) < smoothness_penalty(x)
    with pytest.raises(UnifiedVizError, match="smoothing"):
        SequenceParam(1, 1, 5, smoothing=1.5)


def test_smoothness_penalty_values():
    assert smoothness_penalty(torch.full((2, 1, 9), 0.3)) == 0
    assert smoothness_penalty(torch.tensor([[[0.0, 1.0, 0.0]]])).item() == pytest.approx(1.0)


FROM_SPEC = [
    ("pixel", InputSpec(size=(8, 8)), (2, 3, 8, 8)),
    ("fourier", InputSpec(size=(8, 6), channels=1), (2, 1, 8, 6)),
    ("maco", InputSpec(size=(8, 8)), (2, 3, 8, 8)),
    ("sequence", InputSpec(size=(30,), channels=2), (2, 2, 30)),
    ("generator", InputSpec(size=(6, 5)), (2, 3, 6, 5)),
    ("codes", InputSpec(size=(32, 32)), (2, 3, 32, 32)),  # the built-in CIFAR-10 VQ-VAE by default
    ("latent-grid", InputSpec(size=(6, 5)), (2, 3, 6, 5)),
    ("lowres", InputSpec(size=(8, 8)), (2, 3, 8, 8)),
]
# Options a row needs besides the seed (a generator network: any module, or a GENERATORS name).
FROM_SPEC_OPTIONS = {"generator": dict(generator=TinyGenerator(), latent_shape=4, output_range=(-1.0, 1.0)),
                     "latent-grid": dict(generator=TinyGenerator(), latent_shape=4)}


@pytest.mark.parametrize("name,spec,shape", FROM_SPEC)
def test_make_param_builds_from_spec(name, spec, shape):
    assert tuple(make_param(name, 2, spec, seed=3, **FROM_SPEC_OPTIONS.get(name, {}))().shape) == shape


def test_make_param_errors():
    spec = InputSpec(size=(8, 8))
    with pytest.raises(UnifiedVizError, match="pixel, fourier, maco, sequence, generator.*PerturbationParam"):
        make_param("cppn", 1, spec)
    with pytest.raises(UnifiedVizError, match="did you mean 'fourier'"):
        make_param("fourrier", 1, spec)
    with pytest.raises(UnifiedVizError, match="decay_powr.*valid options: decorrelate, decay_power"):
        make_param("fourier", 1, spec, decay_powr=2.0)
    with pytest.raises(UnifiedVizError, match="1-D"):
        make_param("sequence", 1, spec)
    with pytest.raises(UnifiedVizError, match="positive int"):
        make_param("pixel", 0, spec)
