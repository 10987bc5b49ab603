"""AM-driven attacks: push an intermediate unit inside the ball."""
from __future__ import annotations

from unifiedviz.errors import UnifiedVizError
from unifiedviz.objectives import Objective, unit as unit_objective
from unifiedviz.units import Unit

from ..metrics import AttackResult
from .base import ATTACKS, Attack, unit_value


@ATTACKS.register("am", help="push --unit up or down inside the ball (activation maximisation)")
class UnitAttack(Attack):
    """Push an intermediate unit up (or down) inside the ball, optionally with a class term.

    The objective is `sign * unit_weight * unit + class_weight * class_loss`: with
    `class_weight=0` it is pure activation maximisation of `unit` restricted to the ball
    around each input; a class term (targeted if a target is given) steers the prediction too.
    Unit values on the clean and adversarial images are reported (`unit_before`,
    `unit_after`, `unit_raised`, which means "moved in the asked direction").
    """

    method = "am"
    default_steps = 20
    cli_options = ("unit", "direction", "unit_weight", "class_weight")

    def __init__(self, model, unit: str | Unit, *, direction: str = "up", unit_weight: float = 1.0,
                 class_weight: float = 0.0, random_start: bool = False, **kwargs) -> None:
        super().__init__(model, random_start=random_start, **kwargs)
        if direction not in ("up", "down"):
            raise UnifiedVizError(f"direction must be 'up' or 'down', got {direction!r}")
        self.unit = unit_objective(self.adapter, unit)
        self.direction = direction
        self.unit_weight = float(unit_weight)
        self.class_weight = float(class_weight)

    def objective(self, images, labels, targets, context) -> Objective:
        sign = 1.0 if self.direction == "up" else -1.0
        obj: Objective = (sign * self.unit_weight) * self.unit
        if self.class_weight:
            obj = obj + self.class_weight * self.class_term(labels, targets)
        return obj

    def describe(self) -> dict:
        return {**super().describe(), "unit": self.unit.name, "direction": self.direction,
                "unit_weight": self.unit_weight, "class_weight": self.class_weight}

    def finish(self, result: AttackResult, context: dict) -> AttackResult:
        before = unit_value(self.adapter, self.unit, result.images)
        after = unit_value(self.adapter, self.unit, result.adversarial)
        moved = after > before if self.direction == "up" else after < before
        result.extra.update(unit_before=before, unit_after=after, unit_raised=moved.float(),
                            unit=self.unit.name, direction=self.direction)
        return result

    @classmethod
    def from_options(cls, model, opts, common: dict) -> "UnitAttack":
        if not opts.unit:
            raise UnifiedVizError("--method am needs --unit ADDR (e.g. conv3:channel=5); list layers with "
                                  "`unifiedviz layers MODEL`")
        unit = opts.unit
        if unit.startswith("auto:"):
            unit = auto_unit(model, unit[5:], opts.target, opts.images, opts.limit)
        return cls(model, unit, direction=opts.direction, unit_weight=opts.unit_weight,
                   class_weight=opts.class_weight, **common)


def auto_unit(model, layer: str, target, images: str, limit: int | None) -> str:
    """`--unit auto:LAYER`: the unit of LAYER that carries most of the target class's logit
    (gradient x activation), ranked on the input images of that class if there are any."""
    from unifiedviz.inputs import load_inputs

    from ..units import units_for_class

    try:
        k = int(str(target))
    except ValueError:
        raise UnifiedVizError("--unit auto:LAYER needs --target K (a class index) to pick the unit for") from None
    ref = load_inputs(images, model.spec, limit=limit)
    chosen = ref.images
    if ref.labels is not None and (ref.labels == k).any():
        chosen = chosen[ref.labels == k]
    ranked = units_for_class(model, layer, k, chosen, top=1)
    if not ranked:
        raise UnifiedVizError(f"no unit of {layer!r} raises class {k} on these images: name one with --unit")
    return ranked[0][0]

