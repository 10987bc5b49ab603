"""Build a parameterisation by name from a model's `InputSpec` (for `visualize`, the CLI and configs)."""
from __future__ import annotations

import inspect

from ..errors import UnifiedVizError
from .base import PARAMS, Param


def make_param(name: str, n: int, spec, **kwargs) -> Param:
    """`n` inputs shaped like `spec` (an `InputSpec`) from the parameterisation registered as `name`.

    `kwargs` go to the class (e.g. `decay_power=1.5`, `seed=[...]` one int per image).
    "generator" takes `generator=` (a `unifiedviz.generators.GENERATORS` name or a module);
    perturbations need images: build `PerturbationParam` directly.
    """
    if name not in PARAMS:
        raise UnifiedVizError(f"{PARAMS.unknown_message(name)} (build PerturbationParam directly)")
    cls = PARAMS.get(name)
    options = [p for p in inspect.signature(cls).parameters.values() if p.kind is p.KEYWORD_ONLY]
    if "from_spec" in vars(cls):  # a class whose from_spec takes options of its own (e.g. generator=)
        options += [p for p in inspect.signature(cls.from_spec).parameters.values() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(kwargs) - {p.name for p in options})
    if unknown:
        raise UnifiedVizError(
            f"unknown option(s) {', '.join(unknown)} for the {name!r} parameterisation; "
            f"valid options: {', '.join(p.name for p in options)}"
        )
    return cls.from_spec(n, spec, **kwargs)
