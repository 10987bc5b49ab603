"""The attack template: a bounded `PerturbationParam` + an objective, run by the engine's `render`.

Subclasses (one file each in this package) override `objective`, `prepare`, `param`, `finish`,
and register themselves in `ATTACKS`; `from_options` builds one from the CLI's options.
"""
from __future__ import annotations

import time
from typing import Any, ClassVar, Sequence

import torch
from torch import nn

from unifiedviz.adapters import LOGITS, Adapter, as_adapter
from unifiedviz.engine import StepInfo, render
from unifiedviz.errors import UnifiedVizError
from unifiedviz.models.spec import device_of
from unifiedviz.objectives import Context, Objective
from unifiedviz.optimizers import NormalizedGradient, SignGradient
from unifiedviz.params import PerturbationParam
from unifiedviz.registry import Registry

from ..metrics import AttackResult, concat, measure, predict
from ..objectives import ClassLoss, WithLogits

#: Attack methods by name (`--method`); every file in this package registers its own.
ATTACKS: Registry = Registry("attack method", modules=["adversarial.attacks"])
#: Perturbation balls by name (`--norm`) -> the steepest-ascent step for that norm.
NORMS: Registry = Registry("norm")
NORMS.register("linf", SignGradient, help="L-inf ball: sign-gradient steps (FGSM/PGD)")
NORMS.register("l2", NormalizedGradient, help="L2 ball: normalised-gradient steps")
TARGET_RULES = ("next", "random", "least-likely")


class Attack:
    """Base of every attack: one `PerturbationParam` + `objective()` + `render`.

    eps:           radius of the ball (L-inf: per pixel in [0, 1] units; L2: per image)
    norm:          "linf" (sign-gradient steps) or "l2" (normalised-gradient steps)
    steps, alpha:  number and size of steps; alpha defaults to 2.5 * eps / steps
                   (2/255 for eps 8/255 and 10 steps, as torchattacks)
    random_start:  start from a uniform draw in the ball (PGD) or from the clean image
    loss:          "ce" (cross-entropy) or "cw" (logit margin) for class terms
    kappa:         cap on the class score: images past it stop moving (e.g. 0 with "cw")
    stop_on_success: end the run once every image of the batch succeeds
    batch_size:    images per engine run (None: all at once; universal attacks share a
                   perturbation per batch)
    """

    method = "attack"
    default_steps = 10
    universal = False
    #: `attack` command options that only this method reads; setting them for another is an error.
    cli_options: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_options(cls, model, opts: Any, common: dict) -> "Attack":
        """Build from the `attack` command's options; `common` holds the shared settings (eps, steps, ...)."""
        return cls(model, **common)

    def __init__(
        self,
        model: str | nn.Module | Adapter,
        *,
        eps: float = 8 / 255,
        norm: str = "linf",
        steps: int | None = None,
        alpha: float | None = None,
        random_start: bool = True,
        loss: str = "ce",
        kappa: float | None = None,
        seed: int = 0,
        stop_on_success: bool = False,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> None:
        if norm not in NORMS:
            raise UnifiedVizError(NORMS.unknown_message(norm))
        if not (isinstance(eps, (int, float)) and eps > 0):
            raise UnifiedVizError(f"eps must be a number > 0, got {eps!r}")
        if norm == "linf" and eps >= 1:
            raise UnifiedVizError(f"an L-inf eps of {eps} allows any image: use a value below 1 (e.g. 8/255)")
        steps = self.default_steps if steps is None else steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise UnifiedVizError(f"steps must be a positive integer, got {steps!r}")
        if alpha is not None and not alpha > 0:
            raise UnifiedVizError(f"alpha (step size) must be > 0, got {alpha!r}")
        if batch_size is not None and batch_size < 1:
            raise UnifiedVizError(f"batch_size must be at least 1, got {batch_size}")
        self.adapter = as_adapter(model)
        self.model = self.adapter.model
        self.eps = float(eps)
        self.norm = norm
        self.steps = steps
        self.alpha = float(alpha) if alpha is not None else self.default_alpha()
        self.random_start = random_start
        self.loss = loss
        self.kappa = kappa
        self.seed = seed
        self.stop_on_success = stop_on_success
        self.batch_size = batch_size
        self.progress = progress
        ClassLoss([0], loss=loss)  # validate `loss` now, not at the first call

    def default_alpha(self) -> float:
        return 2.5 * self.eps / self.steps

    # ------------------------------------------------------------------ what subclasses define
    def objective(self, images: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None,
                  context: dict) -> Objective:
        """The objective for one batch (labels/targets per image). Default: the class loss."""
        return self.class_term(labels, targets)

    def class_term(self, labels: torch.Tensor, targets: torch.Tensor | None) -> ClassLoss:
        if targets is not None:
            return ClassLoss(targets, targeted=True, loss=self.loss, kappa=self.kappa)
        return ClassLoss(labels, targeted=False, loss=self.loss, kappa=self.kappa)

    def prepare(self, images: torch.Tensor, labels: torch.Tensor, target, clean_probs: torch.Tensor,
                context: dict) -> torch.Tensor | None:
        """Turn the call's `target` into per-image target classes (None: untargeted)."""
        return resolve_targets(target, labels, clean_probs, seed=self.seed)

    def param(self, images: torch.Tensor, k: int) -> PerturbationParam:
        """The bounded parameterisation around `images` (batch `k` seeds its random start)."""
        return PerturbationParam(images, eps=self.eps, norm=self.norm, random_start=self.random_start,
                                 seed=self.seed + k)

    def describe(self) -> dict:
        return {"alpha": self.alpha, "random_start": self.random_start, "loss": self.loss, "kappa": self.kappa,
                "seed": self.seed}

    def finish(self, result: AttackResult, context: dict) -> AttackResult:
        """Add attack-specific measures to the result (e.g. unit values)."""
        return result

    # ------------------------------------------------------------------ the call
    def __call__(self, images: torch.Tensor, labels: torch.Tensor | Sequence[int] | None = None,
                 target=None, *, names: Sequence[str] | None = None) -> AttackResult:
        """Attack `images` ([N, C, H, W] in [0, 1]); `target` makes it targeted (see module doc)."""
        started = time.perf_counter()
        images = check_images(images, self.model)
        clean_probs = predict(self.model, images)
        labels_from = "model" if labels is None else "given"
        labels = clean_probs.argmax(1) if labels is None else check_labels(labels, images.shape[0], clean_probs.shape[1])
        context: dict = {}
        targets = self.prepare(images, labels, target, clean_probs, context)
        if targets is not None:
            targets = check_labels(targets, images.shape[0], clean_probs.shape[1], what="target")
        size = self.batch_size or images.shape[0]
        parts = []
        for k, start in enumerate(range(0, images.shape[0], size)):
            sl = slice(start, start + size)
            parts.append(self._run(images[sl], labels[sl], None if targets is None else targets[sl],
                                   clean_probs[sl], context, sl, k))
        result = concat(parts)
        if len(parts) == 1:
            result.perturbation = parts[0].perturbation
        result.names = list(names) if names is not None else None
        result.labels_from = labels_from
        result.seconds = time.perf_counter() - started
        return self.finish(result, context)

    def _run(self, images, labels, targets, clean_probs, context, sl: slice, k: int) -> AttackResult:
        device = device_of(self.model)
        context["slice"] = sl
        objective = self.objective(images, labels, targets, context)
        if self.stop_on_success:
            objective = WithLogits(objective)
        param = self.param(images.to(device), k)
        optimizer = NORMS.get(self.norm)(self.alpha)
        tracker = _SuccessTracker(labels, targets, self.stop_on_success) if LOGITS in objective.layers else None
        run = render(self.adapter, objective, param, steps=self.steps, optimizer=optimizer, lr=self.alpha,
                     transforms=None, seed=self.seed + k, callback=tracker, progress=self.progress)
        steps_run = int(run.metadata["steps"])
        steps_used = tracker.steps_used(steps_run) if tracker is not None else None
        logits = run.final_acts.get(LOGITS)  # the engine's last pass, on exactly these images
        adv_probs = None if logits is None else torch.softmax(logits.float(), 1)
        adversarial = run.images.clamp(0.0, 1.0)  # the straight-through clamp may round 1 to 1 + 1e-7
        return measure(
            self.model, images, adversarial, labels, eps=self.eps, norm=self.norm, targets=targets,
            clean_probs=clean_probs, adv_probs=adv_probs, steps_used=steps_used, steps_run=steps_run,
            method=self.method,
            objective=objective.name, extra={"settings": self.describe()},
            perturbation=param.delta.detach().cpu()[0] if self.universal else None,
        )


class _SuccessTracker:
    """Engine callback: records the step at which each image first succeeds; can stop the run.

    The engine's callback at step s sees the images that step s evaluated, i.e. after s - 1
    updates, so an image first seen succeeding there used s - 1 steps.
    """

    def __init__(self, labels: torch.Tensor, targets: torch.Tensor | None, stop: bool) -> None:
        self.reference = targets if targets is not None else labels
        self.targeted = targets is not None
        self.stop = stop
        self.first = torch.full(labels.shape, -1, dtype=torch.long)

    def __call__(self, info: StepInfo) -> bool:
        pred = info.acts[LOGITS].detach().argmax(1).cpu()
        ok = pred == self.reference if self.targeted else pred != self.reference
        new = ok & (self.first < 0)
        self.first[new] = info.step - 1
        return bool(self.stop and ok.all())

    def steps_used(self, steps_run: int) -> torch.Tensor:
        return torch.where(self.first >= 0, self.first, torch.full_like(self.first, steps_run))



# ---------------------------------------------------------------------- helpers
def resolve_targets(target, labels: torch.Tensor, clean_probs: torch.Tensor, *, seed: int = 0) -> torch.Tensor | None:
    """Per-image targets from an int, a sequence/tensor, or a rule: "next" (label + 1),
    "random" (a random other class, seeded), "least-likely" (the clean image's least likely class)."""
    n, classes = clean_probs.shape
    if target is None:
        return None
    if isinstance(target, str):
        if target.lstrip("-").isdigit():
            target = int(target)
        elif target == "next":
            return (labels + 1) % classes
        elif target == "random":
            gen = torch.Generator().manual_seed(seed)
            shift = torch.randint(1, classes, (n,), generator=gen)
            return (labels + shift) % classes
        elif target == "least-likely":
            return clean_probs.argmin(1)
        else:
            raise UnifiedVizError(f"unknown target {target!r}: give a class index or one of {', '.join(TARGET_RULES)}")
    if isinstance(target, bool):
        raise UnifiedVizError(f"target must be a class index, a list of them, or a rule, not {target!r}")
    if isinstance(target, int):
        return torch.full((n,), target, dtype=torch.long)
    return torch.as_tensor(target).long().flatten()


def check_images(images, model, *, what: str = "images") -> torch.Tensor:
    """A float `[N, C, H, W]` CPU tensor in [0, 1] that fits the model, or a clear error."""
    if not isinstance(images, torch.Tensor):
        try:
            images = torch.as_tensor(images)
        except (TypeError, ValueError, RuntimeError):
            raise UnifiedVizError(f"{what} must be a tensor [N, C, H, W] in [0, 1], got {type(images).__name__}") from None
    if images.dtype == torch.uint8:
        raise UnifiedVizError(f"{what} are uint8: divide by 255 to get floats in [0, 1]")
    images = images.detach().float().cpu()
    if images.dim() == 3:
        raise UnifiedVizError(f"{what} must be batched [N, C, H, W]; add a batch dimension (images[None])")
    model.spec.check(images)
    if tuple(images.shape[1:]) != tuple(model.spec.shape):
        raise UnifiedVizError(f"{what} are {list(images.shape[1:])} but the model takes {list(model.spec.shape)}: "
                              "resize them (unifiedviz.inputs.fit_to_spec)")
    if images.numel() == 0:
        raise UnifiedVizError(f"no {what} to attack")
    if not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        raise UnifiedVizError(f"{what} must be in [0, 1] (range [{images.min():.3g}, {images.max():.3g}]): pass "
                              "un-normalised images; the model wrapper normalises them itself")
    return images


def check_labels(labels, n: int, classes: int, *, what: str = "label") -> torch.Tensor:
    labels = torch.as_tensor(labels).long().flatten().cpu()
    if labels.shape[0] != n:
        raise UnifiedVizError(f"got {labels.shape[0]} {what}s for {n} images: give one per image")
    if labels.numel() and (labels.min() < 0 or labels.max() >= classes):
        raise UnifiedVizError(f"{what} out of range: the model has classes 0..{classes - 1}, "
                              f"got {int(labels.min())}..{int(labels.max())}")
    return labels


@torch.no_grad()
def unit_value(adapter: Adapter, unit: Objective, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The objective (e.g. a unit) on images without transforms, `[N]` on CPU."""
    device = device_of(adapter.model)
    out = []
    for i in range(0, images.shape[0], batch_size):
        x = images[i:i + batch_size].to(device)
        out.append(unit(Context(adapter.capture(x, unit.layers), x)).cpu())
    return torch.cat(out)


__all__ = ["ATTACKS", "NORMS", "TARGET_RULES", "Attack", "resolve_targets", "check_images", "check_labels",
           "unit_value"]