"""Build a parameterisation by name from a model's `InputSpec` (for the CLI and configs)."""
from __future__ import annotations

import inspect

from ..errors import UnifiedVizError
from .base import Param
from .fourier import FourierParam
from .maco import MacoParam
from .pixel import PixelParam
from .sequence import SequenceParam

PARAMS: dict[str, type[Param]] = {
    "pixel": PixelParam,
    "fourier": FourierParam,
    "maco": MacoParam,
    "sequence": SequenceParam,
}


def make_param(name: str, n: int, spec, **kwargs) -> Param:
    """`n` inputs shaped like `spec` (an `InputSpec`) from the parameterisation called `name`.

    `kwargs` go to the class (e.g. `decay_power=1.5`). Generator and perturbation
    parameterisations need a generator or images: build `GeneratorParam` /
    `PerturbationParam` directly.
    """
    cls = PARAMS.get(name)
    if cls is None:
        raise UnifiedVizError(
            f"unknown parameterisation {name!r}; choose one of {', '.join(PARAMS)} "
            "(build GeneratorParam or PerturbationParam directly)"
        )
    options = [p for p in inspect.signature(cls).parameters.values() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(kwargs) - {p.name for p in options})
    if unknown:
        raise UnifiedVizError(
            f"unknown option(s) {', '.join(unknown)} for the {name!r} parameterisation; "
            f"valid options: {', '.join(p.name for p in options)}"
        )
    size = tuple(spec.size)
    if cls is SequenceParam:
        if len(size) != 1:
            raise UnifiedVizError(
                f"'sequence' needs a 1-D input (size (L,)), but this model takes size {size}; "
                "use 'pixel', 'fourier' or 'maco' for images"
            )
        return SequenceParam(n, spec.channels, size[0], **kwargs)
    return cls(n, spec.channels, size, **kwargs)
