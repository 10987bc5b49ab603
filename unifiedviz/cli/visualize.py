"""`unifiedviz visualize MODEL UNITS... [options]` or `unifiedviz visualize --config FILE.yaml`."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..errors import UnifiedVizError
from ..optimizers import OPTIMIZERS
from ..options import option
from ..generators import GENERATORS
from ..params import PARAMS
from ..transforms import TRANSFORMS
from .command import Command, ModelOptions, ProcessOptions, load_model_from, register

if TYPE_CHECKING:
    from ..distributed import Ranks


@dataclass
class VisualizeOptions(ModelOptions, ProcessOptions):
    units: list[str] = option([], "unit addresses, e.g. layer3:channel=0:8 (ranges expand to many units)",
                              positional=True)
    steps: int = option(256, "optimisation steps", minimum=1)
    param: str = option("fourier", "image parameterisation", choices=lambda: PARAMS.names())
    generator: str | None = option(None, "image generator for --param generator (DGN-AM), e.g. builtin:digits-gen",
                                   choices=lambda: GENERATORS.names(), metavar="NAME")
    lr: float = option(0.05, "learning rate, e.g. 0.05 or 1/20")
    optimizer: str = option("adam", "optimiser", choices=lambda: OPTIMIZERS.names())
    budget: int | None = option(None, "model queries (images evaluated) per image; the run stops there and --steps "
                                "is ignored (e.g. --optimizer protes --budget 10000)", minimum=1, metavar="QUERIES")
    seed: int = option(0, "random seed; a unit gets the same image alone or in any batch")
    batch_size: int = option(32, "units rendered together", minimum=1)
    per_unit: int = option(1, "images per unit", minimum=1)
    diversity: float = option(0.0, "weight of the diversity term (needs --per-unit >= 2)")
    tv: float = option(0.0, "weight of the total-variation penalty")
    class_score: Literal["logit", "logprob"] = option("logit", "what class units maximise",
                                                      choices=["logit", "logprob"])
    transforms: str = option("standard", "robustness transforms", choices=lambda: TRANSFORMS.names())
    reference: str | None = option(None, "images (folder, file or 'digits') to report each unit's max activation over",
                                   metavar="IMAGES")
    snapshots: list[int] = option([], "also save grids at these steps", metavar="STEP")
    dictionary: str | None = option(None, "dictionary file that LAYER:latent=K units read ('unifiedviz dictionary "
                                    "train' writes it; default $UNIFIEDVIZ_DICTIONARY)", metavar="FILE")
    out: str = option("runs/visualize", "output folder: new, or an earlier visualize run's (replaced whole)",
                      metavar="DIR")

    def check(self) -> None:
        super().check()
        if not self.units:
            raise UnifiedVizError("give MODEL and UNITS (or a --config with 'model' and 'units')")
        if self.param in ("generator", "latent-grid") and self.generator is None:
            raise UnifiedVizError(f"--param {self.param} needs --generator NAME (e.g. builtin:digits-gen)")
        if self.generator is not None and self.param not in ("generator", "latent-grid", "codes"):
            raise UnifiedVizError("--generator NAME goes with --param generator, latent-grid or codes")
        if self.lr <= 0:
            raise UnifiedVizError(f"lr must be > 0, got {self.lr}")


@register("visualize")
class Visualize(Command):
    help = "render images that maximise units (activation maximisation)"
    description = ("Render one image per unit. UNITS are addresses such as layer3:channel=0:8, "
                   "blocks.6.mlp.fc1:neuron=5, blocks.4.attn:head=2, class=3. Options may come from --config.")
    options = VisualizeOptions

    def run(self, opts: VisualizeOptions) -> int:
        from ..unit_kinds.latent import dictionary_in_use

        with dictionary_in_use(opts.dictionary):  # latent= units read --dictionary during this run only
            return self._run(opts)

    def _run(self, opts: VisualizeOptions) -> int:
        from ..distributed import run_in_processes
        from ..report.run_folder import claim
        from ..report.visualization import write_visualization

        folder = claim(opts.out, "visualize")  # before any work: a foreign folder is refused now
        opts.share_cores()
        # Rank 0 is this process: it gets every image back and alone writes.
        model, result = run_in_processes(opts.processes, _render, opts, device=opts.device)
        with folder.writing() as tmp:
            write_visualization(result, tmp)
        for name, line in zip(result.names, _unit_lines(model, result, opts.class_score)):
            print(f"{name}\t{line}")
        print(f"wrote {len(result.names)} images, grid.png and summary.json to {opts.out}")
        return 0


def _render(ranks: Ranks, opts: VisualizeOptions):
    """In every process: load the model onto this rank's device and render this rank's batches;
    (model, the whole result) on rank 0, (model, None) elsewhere."""
    from ..inputs import load_inputs
    from ..objectives import total_variation
    from ..unit_kinds.latent import dictionary_in_use
    from ..visualize import visualize

    model = load_model_from(opts).to(ranks.device)
    reference = load_inputs(opts.reference, model.spec).images if opts.reference and ranks.main else None
    with dictionary_in_use(opts.dictionary):  # spawned processes did not pass through Visualize.run
        result = visualize(
            model, opts.units, steps=opts.steps, param=opts.param, lr=opts.lr, optimizer=opts.optimizer,
            transforms=opts.transforms, seed=opts.seed, batch_size=opts.batch_size, per_unit=opts.per_unit,
            diversity=opts.diversity, class_score=opts.class_score,
            regularizer=opts.tv * total_variation() if opts.tv else None, reference=reference,
            snapshot_steps=opts.snapshots, progress=not opts.quiet, ranks=ranks, budget=opts.budget,
            param_options={"generator": opts.generator} if opts.generator else None,
        )
    return model, result


def _unit_lines(model, result, class_score: str) -> list[str]:
    """Per image: the optimised objective on the final image and the unit's own value. With
    `class_score: logprob` a class unit's optimised term is its log-probability: printed with
    the probability and the logit; otherwise the unit's activation."""
    import torch.nn.functional as F

    from ..adapters import as_adapter
    from ..objectives import read_unit
    from ..unit_kinds import UNIT_KINDS

    adapter = as_adapter(model)
    lines = []
    for i, (name, final, act) in enumerate(zip(result.names, result.final.tolist(), result.activations.tolist())):
        resolved = adapter.resolve(name)
        line = f"objective {final:.6g}"
        if class_score == "logprob" and UNIT_KINDS.get(resolved.unit.kind).logit:
            logp = float(read_unit(resolved, F.log_softmax(result.final_acts[resolved.target][i:i + 1].float(), -1)))
            line += f"; log-prob {logp:.6g} (probability {math.exp(logp):.4g}); logit {act:.6g}"
        else:
            line += f"; activation {act:.6g}"
        lines.append(line)
    return lines
