"""What an attack did, measured: success, confidence, perturbation norms, steps, transfer.

`measure()` builds an `AttackResult` from clean and adversarial images and checks, on every
result, that the perturbation stays inside the eps-ball and the images inside [0, 1]
(`ConstraintViolation` otherwise: that would be a bug, not a user error).

Success (every rate is reported with its numerator and denominator, see `SUMMARY_FIELDS`):
  untargeted: the adversarial prediction differs from the label, over all images (images the
              model already misclassifies count as successes, the torchattacks convention);
              `success_rate_on_correct` is the rate over the images the model classified
              correctly before the attack.
  targeted:   the adversarial prediction equals the target, over the images whose label is
              not already the target (those are counted in `images_already_target` and left
              out of every success number); `success_rate_on_correct` is over those of them the
              model classified correctly before the attack.
Without labels, the labels are the model's own clean predictions (untargeted = flip them).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import torch
from torch import nn

from unifiedviz.errors import UnifiedVizError
from unifiedviz.models import VizModel, load_model
from unifiedviz.models.spec import as_viz_model, device_of

#: Slack for float rounding in the ball/box checks.
TOLERANCE = 1e-5


class ConstraintViolation(RuntimeError):
    """An adversarial image left the eps-ball or the [0, 1] box (a bug in the attack)."""


@dataclass
class AttackResult:
    """Per-image tensors (on CPU) plus the attack's settings; `summary()` gives the JSON view."""

    images: torch.Tensor  # [N, C, H, W] clean, [0, 1]
    adversarial: torch.Tensor  # [N, C, H, W] adversarial, [0, 1]
    labels: torch.Tensor  # [N] the labels untargeted success is judged against
    targets: torch.Tensor | None  # [N] targets (targeted attacks) or None
    clean_pred: torch.Tensor
    clean_conf: torch.Tensor  # softmax probability of the clean prediction
    adv_pred: torch.Tensor
    adv_conf: torch.Tensor  # softmax probability of the adversarial prediction
    adv_prob_label: torch.Tensor  # probability the adversarial image keeps for the label
    adv_prob_target: torch.Tensor | None  # probability of the target (targeted)
    success: torch.Tensor  # [N] bool
    linf: torch.Tensor  # [N] L-inf norm of the perturbation
    l2: torch.Tensor  # [N] L2 norm of the perturbation
    steps_used: torch.Tensor  # [N] updates applied when the image first succeeded (steps_run if never;
    #                             -1 when not tracked: attacks whose objective does not read the logits)
    steps_run: int
    eps: float
    norm: str
    method: str
    model: str
    labels_from: str = "given"  # "given" or "model" (the clean predictions)
    objective: str = ""
    seconds: float = 0.0
    class_names: list[str] | None = None
    names: list[str] | None = None
    extra: dict = field(default_factory=dict)  # e.g. unit values before/after a unit attack
    perturbation: torch.Tensor | None = None  # the shared delta of a universal attack
    clean_probs: torch.Tensor | None = None  # [N, classes] softmax on the clean images
    adv_probs: torch.Tensor | None = None  # [N, classes] softmax on the adversarial images

    @property
    def targeted(self) -> bool:
        return self.targets is not None

    @property
    def clean_correct(self) -> torch.Tensor:
        return self.clean_pred == self.labels

    @property
    def eligible(self) -> torch.Tensor:
        """Images the attack has something to do on: all (untargeted), or those whose label is
        not already the target (targeted)."""
        return self.labels != self.targets if self.targeted else torch.ones_like(self.success)

    def __len__(self) -> int:
        return self.images.shape[0]

    def success_rate(self, *, among_correct: bool = False) -> float:
        """Successes over the eligible images (targeted: label not already the target); with
        `among_correct`, over those the model also classified correctly before the attack."""
        mask = self.eligible & self.clean_correct if among_correct else self.eligible
        rate = _rate(self.success[mask])
        return float("nan") if rate is None else rate

    def _repr_png_(self) -> bytes:
        """Jupyter shows the panels of the first 8 images (`panels.overview`)."""
        from unifiedviz.report.images import png_bytes

        from .panels import overview

        return png_bytes(overview(self))

    def _repr_html_(self) -> str:
        """Jupyter shows the success line and the first 8 panels."""
        from .panels import html

        return html(self)

    def success_line(self) -> str:
        """The one-line success report the command prints: every number named, with its
        numerator and denominator (see `SUMMARY_FIELDS`)."""
        s = self.summary()
        succ = f"{s['successes']}/{s['success_denominator']}"
        on = f"{s['successes_on_correct']}/{s['success_on_correct_denominator']}"
        if self.targeted:
            what = "targeted success (adversarial prediction = target)"
            pool = f"images not already of the target class ({s['images_already_target']} of {s['images']} were, left out)"
        else:
            what = "success (adversarial prediction != label)"
            pool = "images"
        return (f"{s['method']}: {what} {_fmt(s['success_rate'])} = {succ} {pool}; "
                f"success_rate_on_correct {_fmt(s['success_rate_on_correct'])} = {on} of them classified correctly "
                f"before the attack; clean_accuracy {_fmt(s['clean_accuracy'])} = {s['clean_correct']}/{s['images']}")

    def summary(self) -> dict:
        """Aggregate numbers (JSON-ready)."""
        succ = self.success & self.eligible
        on_correct = self.eligible & self.clean_correct
        out = {
            "method": self.method,
            "model": self.model,
            "objective": self.objective,
            "targeted": self.targeted,
            "norm": self.norm,
            "eps": self.eps,
            "images": len(self),
            "labels_from": self.labels_from,
            "clean_accuracy": _rate(self.clean_correct),
            "clean_correct": int(self.clean_correct.sum()),
            "success_rate": _rate(self.success[self.eligible]),
            "successes": int(succ.sum()),
            "success_denominator": int(self.eligible.sum()),
            "success_rate_on_correct": _rate(self.success[on_correct]),
            "successes_on_correct": int(succ[on_correct].sum()),
            "success_on_correct_denominator": int(on_correct.sum()),
            "adversarial_accuracy": _rate(self.adv_pred == self.labels),
            "mean_adv_confidence": _mean(self.adv_conf),
            "mean_adv_confidence_success": _mean(self.adv_conf[succ]),
            "mean_clean_confidence": _mean(self.clean_conf),
            "mean_prob_label_after": _mean(self.adv_prob_label),
            "linf_max": float(self.linf.max()) if len(self) else 0.0,
            "linf_mean": _mean(self.linf),
            "l2_max": float(self.l2.max()) if len(self) else 0.0,
            "l2_mean": _mean(self.l2),
            "steps_run": self.steps_run,
            "mean_steps_to_success": _mean(self.steps_used[succ & (self.steps_used >= 0)].float()),
            "seconds": round(self.seconds, 3),
        }
        if self.targeted:
            out["mean_prob_target_after"] = _mean(self.adv_prob_target)
            out["images_already_target"] = int((~self.eligible).sum())
        for key, value in self.extra.items():
            if isinstance(value, torch.Tensor):
                out[f"mean_{key}"] = _mean(value.float())
            else:
                out[key] = value
        return {k: _round(v) for k, v in out.items()}

    def per_image(self) -> list[dict]:
        """One JSON-ready record per image."""
        rows = []
        for i in range(len(self)):
            row = {
                "name": self.names[i] if self.names else f"image_{i:04d}",
                "label": self._cls(self.labels[i]),
                "clean_pred": self._cls(self.clean_pred[i]),
                "clean_conf": round(float(self.clean_conf[i]), 5),
                "adv_pred": self._cls(self.adv_pred[i]),
                "adv_conf": round(float(self.adv_conf[i]), 5),
                "success": bool(self.success[i]),
                "linf": round(float(self.linf[i]), 6),
                "l2": round(float(self.l2[i]), 6),
                "steps_used": int(self.steps_used[i]) if self.steps_used[i] >= 0 else None,
            }
            if self.targeted:
                row["target"] = self._cls(self.targets[i])
                row["already_target"] = not bool(self.eligible[i])
                row["adv_prob_target"] = round(float(self.adv_prob_target[i]), 5)
            for key, value in self.extra.items():
                if isinstance(value, torch.Tensor) and value.dim() == 1 and len(value) == len(self):
                    row[key] = round(float(value[i]), 6)
            rows.append(row)
        return rows

    def _cls(self, index: torch.Tensor) -> int | str:
        i = int(index)
        return f"{i} ({self.class_names[i]})" if self.class_names and self.class_names[i] != str(i) else i

    def transfer(self, models: Sequence[str | nn.Module], *, batch_size: int = 256) -> dict[str, dict]:
        """`transfer_rate` against each model, keyed by its source name."""
        out = {}
        for m in models:
            model = _model(m)
            out[_name(model, out)] = transfer_rate(self, model, batch_size=batch_size)
        return out


#: What each key of `AttackResult.summary()` (and the command's `summary.json`) holds. Keys
#: `mean_X` made from a per-image measure `X` in `extra` read "mean over all images of X".
SUMMARY_FIELDS: dict[str, str] = {
    "method": "the attack's registered name",
    "model": "the attacked model's source",
    "objective": "the objective the attack optimised",
    "targeted": "true when the attack aims at target classes",
    "norm": "the perturbation norm: linf or l2",
    "eps": "the radius of the perturbation ball",
    "images": "number of images attacked",
    "labels_from": "'given' labels, or 'model': the model's clean predictions serve as labels",
    "clean_accuracy": "clean_correct / images: share the model classified correctly before the attack",
    "clean_correct": "images the model classified correctly before the attack",
    "success_rate": "successes / success_denominator",
    "successes": "eligible images that succeed: adversarial prediction != label (untargeted) or "
                 "= target (targeted)",
    "success_denominator": "eligible images: all images (untargeted), those whose label is not already "
                           "the target (targeted)",
    "success_rate_on_correct": "successes_on_correct / success_on_correct_denominator",
    "successes_on_correct": "successes among the eligible images the model classified correctly before the attack",
    "success_on_correct_denominator": "eligible images the model classified correctly before the attack",
    "adversarial_accuracy": "share of all images whose adversarial prediction equals the label",
    "mean_adv_confidence": "mean over all images of the adversarial prediction's softmax probability",
    "mean_adv_confidence_success": "mean of the adversarial prediction's softmax probability over the successes",
    "mean_clean_confidence": "mean over all images of the clean prediction's softmax probability",
    "mean_prob_label_after": "mean over all images of the label's softmax probability on the adversarial image",
    "mean_prob_target_after": "targeted: mean over all images of the target's softmax probability on the "
                              "adversarial image",
    "images_already_target": "targeted: images whose label already is the target (not in any success number)",
    "linf_max": "largest L-inf norm of a perturbation",
    "linf_mean": "mean L-inf norm of the perturbations",
    "l2_max": "largest L2 norm of a perturbation",
    "l2_mean": "mean L2 norm of the perturbations",
    "steps_run": "optimisation steps run (the longest batch)",
    "mean_steps_to_success": "mean over the successes of the updates applied when each first succeeded "
                             "(null when not tracked)",
    "seconds": "wall time of the attack",
    "settings": "the attack's settings",
    "layer": "feature matching: the layer whose features are matched",
    "mean_feature_distance_before": "feature matching: mean relative feature distance to the guide before",
    "mean_feature_distance_after": "feature matching: mean relative feature distance to the guide after",
    "mean_unit_before": "unit attack: mean value of the unit on the clean images",
    "mean_unit_after": "unit attack: mean value of the unit on the adversarial images",
    "mean_unit_raised": "unit attack: share of images whose unit moved in the asked direction",
    "unit": "unit attack: the unit's address",
    "direction": "unit attack: up or down",
    "quantized": "true when the images were rounded to 8 bits and every number re-measured on them",
    "float_success_rate": "success_rate before rounding to 8 bits",
    # keys the `attack` command adds to summary.json
    "command": "the command's options",
    "images_source": "where the images came from",
    "transfer": "per other model: rate = share of the source's successes that also succeed on it, rate_all "
                "over all images, rate_on_correct over source successes it classified correctly before",
    "per_image": "one record per image (already_target: targeted, the label already is the target)",
    "perturbation_png_gain": "universal attack: the gain k of perturbation.png (0.5 + k * delta)",
}


def definitions(summary: dict) -> dict[str, str]:
    """The definition of every key of `summary` (a key without one is a bug: `KeyError`)."""
    return {key: SUMMARY_FIELDS[key] for key in summary}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def concat(results: Sequence[AttackResult]) -> AttackResult:
    """Join the results of several batches of one attack."""
    if len(results) == 1:
        return results[0]
    first = results[0]
    fields = {}
    for key in ("images", "adversarial", "labels", "clean_pred", "clean_conf", "adv_pred", "adv_conf",
                "adv_prob_label", "success", "linf", "l2", "steps_used", "clean_probs", "adv_probs"):
        fields[key] = torch.cat([getattr(r, key) for r in results])
    for key in ("targets", "adv_prob_target"):
        fields[key] = None if getattr(first, key) is None else torch.cat([getattr(r, key) for r in results])
    extra = {}
    for key, value in first.extra.items():
        extra[key] = torch.cat([r.extra[key] for r in results]) if isinstance(value, torch.Tensor) else value
    names = sum((r.names or [] for r in results), []) or None
    return replace(first, **fields, extra=extra, names=names, steps_run=max(r.steps_run for r in results),
                   seconds=sum(r.seconds for r in results), perturbation=None)


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Softmax probabilities `[N, classes]` (CPU) of a model that takes [0, 1] images."""
    model = as_viz_model(model)
    device = device_of(model)
    was_training = model.training
    model.eval()
    try:
        probs = [torch.softmax(model(images[i:i + batch_size].to(device)).float(), 1).cpu()
                 for i in range(0, images.shape[0], batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(probs)


def check_constraints(images: torch.Tensor, adversarial: torch.Tensor, eps: float, norm: str,
                      tol: float = TOLERANCE) -> tuple[torch.Tensor, torch.Tensor]:
    """Raise `ConstraintViolation` unless every image is in [0, 1] and within the eps-ball.

    Returns the per-image (linf, l2) norms of the perturbation.
    """
    if adversarial.shape != images.shape:
        raise ConstraintViolation(f"adversarial shape {tuple(adversarial.shape)} != clean {tuple(images.shape)}")
    if not torch.isfinite(adversarial).all():
        raise ConstraintViolation("adversarial images contain NaN/inf")
    lo, hi = float(adversarial.min()), float(adversarial.max())
    if lo < -tol or hi > 1 + tol:
        raise ConstraintViolation(f"adversarial images leave the [0, 1] box: range [{lo:.6g}, {hi:.6g}]")
    delta = (adversarial - images).flatten(1)
    linf = delta.abs().amax(1)
    l2 = delta.norm(dim=1)
    worst = linf if norm == "linf" else l2
    if (worst > eps * (1 + tol) + tol).any():
        i = int(worst.argmax())
        raise ConstraintViolation(f"image {i} leaves the {norm} ball: norm {float(worst[i]):.6g} > eps {eps:.6g}")
    return linf, l2


def measure(
    model: nn.Module,
    images: torch.Tensor,
    adversarial: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    norm: str,
    targets: torch.Tensor | None = None,
    clean_probs: torch.Tensor | None = None,
    adv_probs: torch.Tensor | None = None,
    steps_used: torch.Tensor | None = None,
    steps_run: int = 0,
    method: str = "",
    labels_from: str = "given",
    **info,
) -> AttackResult:
    """Check the constraints and compute every per-image measure of an attack's output.

    `clean_probs` / `adv_probs` (softmax, `[N, classes]`) skip a forward pass when known.
    """
    images, adversarial = images.detach().float().cpu(), adversarial.detach().float().cpu()
    linf, l2 = check_constraints(images, adversarial, eps, norm)
    viz = as_viz_model(model)
    clean = clean_probs if clean_probs is not None else predict(viz, images)
    adv = adv_probs if adv_probs is not None else predict(viz, adversarial)
    labels = labels.cpu()
    clean_conf, clean_pred = clean.max(1)
    adv_conf, adv_pred = adv.max(1)
    if targets is not None:
        targets = targets.cpu()
        success = adv_pred == targets
        prob_target = adv.gather(1, targets[:, None]).squeeze(1)
    else:
        success = adv_pred != labels
        prob_target = None
    n = images.shape[0]
    return AttackResult(
        images=images, adversarial=adversarial, labels=labels, targets=targets,
        clean_pred=clean_pred, clean_conf=clean_conf, adv_pred=adv_pred, adv_conf=adv_conf,
        adv_prob_label=adv.gather(1, labels[:, None]).squeeze(1), adv_prob_target=prob_target,
        success=success, linf=linf, l2=l2,
        steps_used=steps_used.cpu() if steps_used is not None else torch.full((n,), -1),
        steps_run=steps_run, eps=float(eps), norm=norm, method=method,
        model=getattr(viz, "source", type(model).__name__), labels_from=labels_from,
        class_names=getattr(viz, "class_names", None), clean_probs=clean, adv_probs=adv, **info,
    )


def transfer_rate(result: AttackResult, model: str | nn.Module, *, batch_size: int = 256) -> dict:
    """How well `result`'s adversarial images fool another model that takes the same inputs.

    The other model is judged by the same rule (untargeted: prediction != label; targeted:
    prediction == target). Without given labels, "label" means each model's own clean
    prediction. `rate` is over the images that fooled the source model (the usual transfer
    rate; targeted: leaving out images whose label already is the target); `rate_all` over all
    images; `rate_on_correct` over source successes the other model
    classified correctly before the attack (so its own mistakes do not count as transfers).
    """
    other = _model(model)
    if tuple(other.spec.shape) != tuple(result.images.shape[1:]):
        raise UnifiedVizError(
            f"cannot transfer to {other.source!r}: it takes inputs {list(other.spec.shape)} but the adversarial "
            f"images are {list(result.images.shape[1:])}; attack a model with the same input size"
        )
    clean = predict(other, result.images, batch_size).argmax(1)
    adv = predict(other, result.adversarial, batch_size).argmax(1)
    labels = result.labels if result.labels_from == "given" else clean
    fooled = adv == result.targets if result.targeted else adv != labels
    correct = clean == labels
    src = result.success & (labels != result.targets if result.targeted else True)
    return _round({
        "model": other.source,
        "rate": _rate(fooled[src]),
        "rate_all": _rate(fooled),
        "rate_on_correct": _rate(fooled[src & correct]),
        "source_successes": int(src.sum()),
        "clean_accuracy": _rate(correct),
        "adversarial_accuracy": _rate(adv == labels),
    })


def quantize(result: AttackResult, model: nn.Module) -> AttackResult:
    """The result for the adversarial images rounded to 8 bits (what a PNG holds), re-measured.

    Each pixel of the perturbation is rounded to the nearest 1/255 step when the clean image is
    on the 8-bit grid (images read from PNG/JPEG are), else it is the adversarial value rounded;
    a rounded pixel that would leave the ball or the box is truncated towards the clean value
    instead, and an L2 image whose rounded norm exceeds eps falls back to truncating every
    pixel. The result still satisfies the constraints, and success is re-judged on it.
    """
    x, adv = result.images, result.adversarial
    delta = (adv - x) * 255
    rounded = torch.round(delta)
    trunc = torch.trunc(delta + 1e-4 * torch.sign(delta))  # 7.9999995 -> 8, not 7
    on_grid = bool(((x * 255 - (x * 255).round()).abs() < 1e-3).all())
    if not on_grid:
        # The clean image itself cannot be stored exactly; keep the float result.
        return replace(result, extra={**result.extra, "quantized": False})
    eps255 = result.eps * 255 * (1 + TOLERANCE)
    q = rounded
    bad = ((x * 255 + q) < -1e-3) | ((x * 255 + q) > 255 + 1e-3)
    if result.norm == "linf":
        bad |= q.abs() > eps255 + 1e-3
    q = torch.where(bad, trunc, q)
    if result.norm == "l2":
        over = q.flatten(1).norm(dim=1) > eps255
        q = torch.where(over.view(-1, *(1,) * (q.dim() - 1)), trunc, q)
    new = ((x * 255).round() + q).clamp(0, 255) / 255
    fresh = measure(
        model, x, new, result.labels, eps=result.eps, norm=result.norm, targets=result.targets,
        clean_probs=result.clean_probs, steps_used=result.steps_used, steps_run=result.steps_run, method=result.method,
        labels_from=result.labels_from, objective=result.objective, seconds=result.seconds, names=result.names,
        extra={**result.extra, "quantized": True, "float_success_rate": result.success_rate()},
        perturbation=result.perturbation,
    )
    return fresh


def _model(m: str | nn.Module) -> VizModel:
    if isinstance(m, str):
        source, _, weights = m.partition("=")
        return load_model(source, weights=weights or None)
    return as_viz_model(m)


def _name(model: VizModel, taken: dict) -> str:
    name = getattr(model, "source", "model")
    k = 2
    while name in taken:
        name = f"{model.source}#{k}"
        k += 1
    return name


def _round(value):
    """Floats to 6 significant digits (float32 noise such as 0.925000011920929 says nothing)."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return value


def _rate(mask: torch.Tensor) -> float | None:
    """Fraction of True; None (JSON null) for an empty selection."""
    return float(mask.float().mean()) if mask.numel() else None


def _mean(values: torch.Tensor | None) -> float | None:
    return float(values.float().mean()) if values is not None and values.numel() else None


__all__ = ["AttackResult", "ConstraintViolation", "SUMMARY_FIELDS", "definitions", "measure", "check_constraints", "transfer_rate", "predict",
           "quantize", "concat", "TOLERANCE"]
