"""`unifiedviz layers MODEL [--filter PATTERN]`: what can be addressed in a model."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import UnifiedVizError
from ..options import option
from .command import Command, ModelOptions, load_model_from, register


@dataclass
class LayersOptions(ModelOptions):
    filter: str | None = option(None, "only layers whose name matches (substring or glob)", metavar="PATTERN")
    collapse_calls: bool = option(False, "list a module that runs several times per forward pass once, as NAME#* "
                                         "(its calls summed), not once per call")
    each_call: bool = option(False, "list every call of a time-stepped module (spiking, recurrent) too, not only "
                                    "NAME#* (its calls summed)")


@register("layers")
class Layers(Command):
    help = "list a model's layers with canonical output shape and layout"
    options = LayersOptions

    def run(self, opts: LayersOptions) -> int:
        from ..adapters import Adapter

        each_call = False if opts.collapse_calls else (True if opts.each_call else None)
        infos = Adapter(load_model_from(opts)).layers(opts.filter, each_call=each_call)
        if not infos:
            raise UnifiedVizError(f"no layer matches {opts.filter!r}: try a shorter pattern or no --filter")
        rows = [(i.name, i.module_type, "x".join(map(str, i.shape)), i.describe()) for i in infos]
        header = ("layer", "type", "shape", "layout")
        widths = [max(len(r[c]) for r in rows + [header]) for c in range(4)]
        for row in [header, *rows]:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        return 0
