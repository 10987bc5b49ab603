"""Sensitivity analysis and attribution beside activation maximisation.

- `sobol`: global sensitivity (Sobol first-order and total indices with confidence intervals,
  SALib's Saltelli sampling) of any unit to inputs or groups of inputs (image patches).
- `local`: saliency, gradient x input, SmoothGrad, integrated gradients, occlusion.
- `cam`: Grad-CAM, Grad-CAM++ and Score-CAM through the Adapter's hooks (conv and ViT token layers).
- `faithfulness`: deletion / insertion AUC and the model-randomisation sanity check.

Every method is registered in `EXPLAINERS` and called as `explain(model, x, unit, method)`.
"""
from .base import EXPLAINERS, explain, input_gradient, unit_scorer, unit_values
from .faithfulness import deletion_insertion, randomisation_check, randomised_copy
from .sobol import SobolResult, image_sobol, sobol_indices

__all__ = [
           "EXPLAINERS",
           "SobolResult",
           "deletion_insertion",
           "explain",
           "image_sobol",
           "input_gradient",
           "randomisation_check",
           "randomised_copy",
           "sobol_indices",
           "unit_scorer",
           "unit_values",
]
