"""Concept probes (CAVs) at any layer through the Adapter, and concept-alignment metrics.

    from unifiedviz.probes import activations, fit_probe, spurious_probe, cured_direction
    pos = activations(adapter, "relu3", concept_images)      # canonical [N, ...] + layout
    neg = activations(adapter, "relu3", negative_images)
    cav = fit_probe("logistic", pos, neg)                    # a Probe; cav.save("cav.npy")

Probe kinds live in the `PROBES` registry (unifiedviz/probes/cav.py): logistic, svm, pattern,
segmentation, ti-max, ti-mean. Metrics: unifiedviz/probes/metrics.py; localisation maps:
localisation.py; TCAV and its significance test: tcav.py; the planted-concept benchmark data:
planted.py. See docs/probes.md.
"""
from .cav import (
    PROBES,
    Acts,
    Probe,
    activations,
    cured_direction,
    fit_probe,
    spurious_probe,
)
from .localisation import localisation_maps
from .metrics import (
    accuracy,
    augmentation_robustness,
    cosine,
    hard_accuracy,
    iou,
    pointing_game,
    segmentation_score,
)
from .tcav import TCAVResult, directional_derivatives, tcav, tcav_score

__all__ = [
    "PROBES",
    "Acts",
    "Probe",
    "TCAVResult",
    "accuracy",
    "activations",
    "augmentation_robustness",
    "cosine",
    "cured_direction",
    "directional_derivatives",
    "fit_probe",
    "hard_accuracy",
    "iou",
    "localisation_maps",
    "pointing_game",
    "segmentation_score",
    "spurious_probe",
    "tcav",
    "tcav_score",
]
