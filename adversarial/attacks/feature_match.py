"""Feature-matching attacks: make an input's features at a layer match a guide image's."""
from __future__ import annotations

import torch

from unifiedviz.errors import UnifiedVizError
from unifiedviz.models.spec import device_of
from unifiedviz.objectives import Objective

from ..metrics import AttackResult, predict
from ..objectives import FeatureMatch as FeatureMatchObjective
from .base import ATTACKS, Attack, check_images


@ATTACKS.register("feature-match", help="match --guide's features at --layer inside the ball")
class FeatureMatch(Attack):
    """Make each input's features at `layer` match a guide image's, inside the ball.

    The guide is given at construction (`guide=`) or per call as `target=` (an image tensor
    `[1 or N, C, H, W]` in [0, 1]). Success means the adversarial image takes the guide's
    predicted class (reported as a targeted attack whose targets are the guides' classes).
    """

    method = "feature-match"
    default_steps = 50
    cli_options = ("layer", "guide", "guide_index", "class_weight")

    def __init__(self, model, layer: str, *, guide: torch.Tensor | None = None, class_weight: float = 0.0,
                 random_start: bool = False, **kwargs) -> None:
        super().__init__(model, random_start=random_start, **kwargs)
        self.layer = self.adapter.layer(layer).name
        self.guide = guide
        self.class_weight = float(class_weight)

    def prepare(self, images, labels, target, clean_probs, context):
        if target is not None and not (isinstance(target, torch.Tensor) and target.dim() == 4):
            raise UnifiedVizError("a feature-matching attack's target is a guide image tensor [1 or N, C, H, W], "
                                  f"not {type(target).__name__}: its class becomes the target")
        guide = target if target is not None else self.guide
        if guide is None:
            raise UnifiedVizError("feature matching needs a guide image: FeatureMatch(..., guide=IMAGES) "
                                  "or attack(images, labels, target=IMAGES)")
        guide = check_images(guide, self.model, what="guide images")
        if guide.shape[0] not in (1, images.shape[0]):
            raise UnifiedVizError(f"give 1 guide image or one per input ({images.shape[0]}), not {guide.shape[0]}")
        with torch.no_grad():
            feats = self.adapter.capture(guide.to(device_of(self.model)), [self.layer])[self.layer]
        context["guide_features"] = feats
        context["guide"] = guide
        return predict(self.model, guide).argmax(1).expand(images.shape[0]).clone()

    def objective(self, images, labels, targets, context) -> Objective:
        feats = context["guide_features"]
        if feats.shape[0] > 1:
            feats = feats[context["slice"]]
        obj: Objective = FeatureMatchObjective(self.layer, feats)
        if self.class_weight:
            obj = obj + self.class_weight * self.class_term(labels, targets)
        return obj

    def describe(self) -> dict:
        return {**super().describe(), "layer": self.layer, "class_weight": self.class_weight}

    def finish(self, result: AttackResult, context: dict) -> AttackResult:
        guide = context["guide_features"].cpu()
        dist = {}
        for key, x in (("feature_distance_before", result.images), ("feature_distance_after", result.adversarial)):
            with torch.no_grad():
                f = self.adapter.capture(x.to(device_of(self.model)), [self.layer])[self.layer].cpu()
            dist[key] = (f - guide).flatten(1).pow(2).sum(1) / guide.flatten(1).pow(2).sum(1).clamp(min=1e-12)
        result.extra.update(dist, layer=self.layer)
        return result

    @classmethod
    def from_options(cls, model, opts, common: dict) -> "FeatureMatch":
        from unifiedviz.inputs import load_inputs

        if not opts.layer or not opts.guide:
            raise UnifiedVizError("--method feature-match needs --layer LAYER and --guide IMAGES")
        if opts.target is not None:
            raise UnifiedVizError("--target does not apply to feature-match: the guide image's class is the target")
        guide = load_inputs(opts.guide, model.spec).images
        if not 0 <= opts.guide_index < guide.shape[0]:
            raise UnifiedVizError(f"--guide-index {opts.guide_index} is out of range: {opts.guide!r} holds "
                                  f"{guide.shape[0]} image(s)")
        guide = guide[opts.guide_index:opts.guide_index + 1]
        if opts.quantize:
            guide = torch.round(guide * 255) / 255
        return cls(model, opts.layer, guide=guide, class_weight=opts.class_weight, **common)

