"""Adversarial inputs from the AM engine: a bounded perturbation plus an objective.

    import adversarial
    attack = adversarial.PGD(model, eps=8/255, steps=10)
    result = attack(images, labels)              # images in [0, 1]; target=K for targeted
    print(result.summary())
    result.transfer(["builtin:digits-vit"])      # transfer rates to other models
"""
from .attacks import (
    ATTACKS,
    FGSM,
    NORMS,
    PGD,
    TARGET_RULES,
    Attack,
    FeatureMatch,
    UnitAttack,
    UniversalPerturbation,
    resolve_targets,
    unit_value,
)
from .metrics import (
    AttackResult,
    ConstraintViolation,
    check_constraints,
    measure,
    predict,
    quantize,
    transfer_rate,
)
from .objectives import ClassLoss, FeatureMatch as FeatureMatchObjective, class_loss, feature_match
from .panels import panel, save_panel
from .units import units_for_class

__all__ = [
    "ATTACKS", "Attack", "FGSM", "PGD", "UnitAttack", "FeatureMatch", "UniversalPerturbation",
    "AttackResult", "ConstraintViolation", "check_constraints", "measure", "predict", "quantize", "transfer_rate",
    "ClassLoss", "FeatureMatchObjective", "class_loss", "feature_match",
    "resolve_targets", "unit_value", "units_for_class", "panel", "save_panel",
    "NORMS", "TARGET_RULES",
]
