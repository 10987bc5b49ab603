"""Attacks as AM runs: a bounded `PerturbationParam` plus an objective, optimised by `render`.

There is no second optimisation loop here. Every attack builds

    PerturbationParam(images, eps, norm, random_start, universal)   the ball around the input
    + an objective (class loss, unit, feature match, or a sum)      what to push
    + the norm's steepest-ascent step (NORMS: sign gradient for L-inf, normalised for L2)

and hands them to `unifiedviz.engine.render` with no transforms. The engine freezes the
weights, so a step costs one forward+backward to the input only.

    attack = PGD(model, eps=8/255, steps=10)
    result = attack(images, labels)                    # untargeted
    result = attack(images, labels, target=3)          # targeted: every image to class 3
    result = attack(images, labels, target="next")     # or "random", "least-likely", a tensor

One file per attack family, each registered in `ATTACKS` (the CLI's `--method` choices):
gradient.py (fgsm, pgd), unit.py (am), feature_match.py (feature-match), universal.py.
"""
from .base import ATTACKS, NORMS, TARGET_RULES, Attack, check_images, check_labels, resolve_targets, unit_value
from .feature_match import FeatureMatch
from .gradient import FGSM, PGD
from .unit import UnitAttack
from .universal import UniversalPerturbation

__all__ = ["ATTACKS", "NORMS", "TARGET_RULES", "Attack", "FGSM", "PGD", "UnitAttack", "FeatureMatch",
           "UniversalPerturbation", "resolve_targets", "check_images", "check_labels", "unit_value"]
