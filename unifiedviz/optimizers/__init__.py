"""Optimisers behind one interface, gradient-based and gradient-free.

`step(evaluate)` calls `evaluate()` (scores `[N]`, higher is better), updates the parameters
and returns the scores it saw. The engine does not care how the update is made, so a model
whose gradient is unavailable can still be optimised (`RandomSearch`). A `SearchOptimizer`
(`Protes`, `UniformSearch`, `NevergradPortfolio`) instead searches a param's discrete space,
scoring k candidates per image per step in one batched forward (docs/gradient_free.md).

`OPTIMIZERS` maps a name to a factory `lr -> Optimizer`; one file per optimiser in this
package registers itself (every module here is imported on the first look-up).
"""
from .base import OPTIMIZERS, Evaluate, Optimizer, Score, SearchOptimizer, make_optimizer
from .adam import Adam
from .sign_gradient import SignGradient
from .normalized_gradient import NormalizedGradient
from .random_search import RandomSearch
from .protes import Protes
from .uniform_search import UniformSearch
from .nevergrad_portfolio import NevergradPortfolio

__all__ = ["Optimizer", "Evaluate", "OPTIMIZERS", "make_optimizer", "Adam", "SignGradient", "NormalizedGradient",
           "RandomSearch", "SearchOptimizer", "Score", "Protes", "UniformSearch", "NevergradPortfolio"]
