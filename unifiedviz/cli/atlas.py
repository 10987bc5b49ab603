"""`unifiedviz atlas MODEL LAYER[:selector] --data SOURCE --out DIR`: a static HTML atlas of a layer's units."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import UnifiedVizError
from ..generators import GENERATORS
from ..options import ResumeOptions, option
from ..params import PARAMS
from ..transforms import TRANSFORMS
from .command import Command, ModelOptions, ProcessOptions, load_model_from, register

COMMAND = "atlas"


@dataclass
class AtlasOptions(ModelOptions, ResumeOptions, ProcessOptions):
    layer: str | None = option(None, "LAYER (every unit of it) or LAYER:selector, e.g. conv2 or conv2:channel=0:8",
                               positional=True)
    data: str | None = option(None, "images for exemplars and metrics: a folder, an image file, digits, or photos "
                                    "(crops of scikit-image's photos)",
                              metavar="SOURCE")
    limit: int | None = option(None, "use the first N images", minimum=1)
    labels: str = option("auto", "classes for selectivity and histograms: the data's labels, the model's "
                                 "predictions, or none (auto: the data's when it has them, else predicted)",
                         choices=("auto", "data", "predicted", "none"))
    out: str = option("runs/atlas", "output folder: new, or an earlier atlas run's (--resume continues it, "
                                    "--force starts over)", metavar="DIR")
    steps: int = option(128, "AM optimisation steps per image", minimum=1)
    copies: int = option(3, "AM images per unit (different seeds)", minimum=1)
    diversity: float = option(1.0, "weight of the diversity term among a unit's copies (0: seeds only)", minimum=0)
    lr: float = option(0.05, "AM learning rate")
    param: str = option("fourier", "image parameterisation", choices=lambda: PARAMS.names())
    transforms: str = option("standard", "robustness transforms", choices=lambda: TRANSFORMS.names())
    generator: str | None = option(None, "also one image per unit through this learned prior (DGN-AM), "
                                         "e.g. builtin:digits-gen", choices=lambda: GENERATORS.names(), metavar="NAME")
    seed: int = option(0, "random seed; a unit gets the same images alone or in any batch")
    batch_size: int = option(32, "units rendered per batch (the resume step)", minimum=1)
    top_k: int = option(6, "top and bottom exemplars per unit", minimum=1)
    per_page: int = option(64, "units per index page", minimum=1)
    respond_fraction: float = option(0.5, "a unit responds to a class whose mean reaches this fraction of its top "
                                          "class mean (superposition.metrics)", minimum=0)
    dictionary: str | None = option(None, "also list this dictionary's latents (LAYER:latent=K) beside the neurons "
                                          "('unifiedviz dictionary train' writes it)", metavar="FILE")

    def check(self) -> None:
        super().check()
        if not self.layer:
            raise UnifiedVizError("give MODEL and LAYER (e.g. conv2 or conv2:channel=0:8; "
                                  "'unifiedviz layers MODEL' lists layers)")
        if not self.data:
            raise UnifiedVizError("give --data SOURCE: images for exemplars and metrics (a folder, a file, or digits)")
        if self.lr <= 0:
            raise UnifiedVizError(f"lr must be > 0, got {self.lr}")
        if self.param == "generator":
            raise UnifiedVizError("--param generator is what --generator NAME adds beside the AM images: "
                                  "keep --param fourier (or pixel, maco) and pass --generator NAME")


@register(COMMAND)
class Atlas(Command):
    help = "a static HTML atlas of a layer's units: AM images, exemplars, histograms, selectivity"
    description = ("Writes DIR/index.html (units sortable and filterable by max activation, class selectivity, "
                   "classes responded to, polysemanticity) and a page per unit. Opens from disk; no server. "
                   "A stopped atlas continues with --resume.")
    options = AtlasOptions

    def run(self, opts: AtlasOptions) -> int:
        from ..adapters import as_adapter
        from ..atlas import Dictionary, atlas_units, prepare_atlas, write_atlas
        from ..distributed import run_in_processes
        from ..report.run_folder import claim

        folder = claim(opts.out, COMMAND, incremental=True)  # before any work
        if folder.previous is not None and not (opts.resume or opts.force):
            raise UnifiedVizError(f"--out {opts.out!r} holds an earlier atlas: pass --resume to continue it or "
                                  "--force to start over")
        opts.share_cores()
        model = load_model_from(opts)
        if not model.spec.size or len(model.spec.size) != 2:
            raise UnifiedVizError("atlas draws image pages: give an image model (sequence and tabular models "
                                  "are not supported)")
        dictionary = Dictionary.load(opts.dictionary) if opts.dictionary else None
        units = atlas_units(as_adapter(model), opts.layer, dictionary)
        inputs, classes = _inputs(opts, model)
        settings = _settings(opts)
        # File digests, so --resume notices weights or a dictionary retrained in place.
        source = {"model": opts.model, "weights": opts.weights, "layer": opts.layer, "data": opts.data,
                  "limit": opts.limit, "classes": classes, "class_names": model.class_names,
                  "sha256": {p: _sha256(p) for p in (opts.weights, opts.dictionary) if p}}
        prepare_atlas(folder, units, settings, source=source, resume=opts.resume)  # once, before any process starts
        if opts.processes == 1:
            summary = write_atlas(folder, as_adapter(model.to(opts.device)), units, inputs, settings, source=source,
                                  dictionary=dictionary, progress=not opts.quiet)
        else:  # rank 0 is this process: it gets every unit's images back and alone writes
            summary = run_in_processes(opts.processes, _atlas_rank, opts, folder, inputs, settings, source,
                                       device=opts.device)
        pages = -(-len(units) // opts.per_page)
        print(f"wrote an atlas of {len(summary['units'])} units ({pages} index page(s)) to {opts.out}: "
              f"open {opts.out}/index.html")
        return 0


def _inputs(opts: AtlasOptions, model):
    """The data and where its classes come from: 'data', 'predicted' (the model's top class) or 'none'."""
    from ..atlas import predicted_labels
    from ..inputs import Inputs, load_inputs

    inputs = load_inputs(opts.data, model.spec, limit=opts.limit)
    if opts.labels == "data" and inputs.labels is None:
        raise UnifiedVizError(f"--data {opts.data!r} has no labels: pass --labels predicted (the model's "
                              "classes) or --labels none")
    classes = "data" if opts.labels == "auto" and inputs.labels is not None else opts.labels
    if classes in ("auto", "predicted"):
        return Inputs(inputs.images, predicted_labels(model, inputs.images), inputs.names), "predicted"
    if classes == "none":
        return Inputs(inputs.images, None, inputs.names), classes
    return inputs, classes


def _settings(opts: AtlasOptions):
    from ..atlas import RenderSettings, SiteSettings

    render = RenderSettings(steps=opts.steps, copies=opts.copies, diversity=opts.diversity, lr=opts.lr,
                            param=opts.param, transforms=opts.transforms, seed=opts.seed,
                            batch_size=opts.batch_size, generator=opts.generator, dictionary=opts.dictionary)
    return SiteSettings(render=render, top_k=opts.top_k, per_page=opts.per_page,
                        respond_fraction=opts.respond_fraction)


def _atlas_rank(ranks, opts: AtlasOptions, folder, inputs, settings, source):
    """In every process: load the model onto this rank's device and render this rank's share of the
    pending batches; rank 0 writes and returns atlas.json's content, the others None."""
    from ..adapters import as_adapter
    from ..atlas import Dictionary, atlas_units, write_atlas

    adapter = as_adapter(load_model_from(opts).to(ranks.device))
    dictionary = Dictionary.load(opts.dictionary) if opts.dictionary else None
    units = atlas_units(adapter, opts.layer, dictionary)
    return write_atlas(folder, adapter, units, inputs, settings, source=source, dictionary=dictionary, ranks=ranks,
                       progress=not opts.quiet)


def _sha256(path: str) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
