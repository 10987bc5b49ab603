"""`unifiedviz attack MODEL IMAGES [options]` or `unifiedviz attack --config FILE.yaml`.

Writes, into `--out DIR` (a new folder, or an earlier attack run's, replaced whole; see
unifiedviz.report.run_folder):
  summary.json        settings, aggregate measures, transfer rates, one record per image
  adversarial/*.png   the adversarial images (lossless 8-bit PNG; the measures are of these)
  panels/*.png        original | amplified perturbation | adversarial | top predictions
  perturbation.png    the shared perturbation (universal attacks only, amplified)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from unifiedviz.cli.command import Command, ModelOptions, load_model_from, register
from unifiedviz.errors import UnifiedVizError
from unifiedviz.options import option

from .attacks import ATTACKS, NORMS


@dataclass
class AttackOptions(ModelOptions):
    images: str | None = option(None, "image folder, image file, or data set (digits, digits-train, ...)",
                                positional=True)
    method: str = option("pgd", "attack method", choices=lambda: ATTACKS.names())
    norm: str = option("linf", "perturbation ball", choices=lambda: NORMS.names())
    eps: float | None = option(None, "ball radius, e.g. 8/255 (default 8/255 for linf, 0.5 for l2)")
    steps: int | None = option(None, "optimisation steps (default: the method's: pgd 10, fgsm 1, am 20, "
                                     "feature-match 50, universal 40)", minimum=1)
    alpha: float | None = option(None, "step size (default 2.5*eps/steps; fgsm: eps)")
    random_start: bool | None = option(None, "start from a random point in the ball (default: on for pgd only)")
    loss: Literal["ce", "cw"] | None = option(None, "class loss: cross-entropy or CW logit margin",
                                              choices=["ce", "cw"])
    kappa: float | None = option(None, "cap on the class score (images past it stop moving)")
    target: str | None = option(None, "targeted attack: a class index, or next | random | least-likely (per image)",
                                metavar="K")
    unit: str | None = option(None, "unit to push with --method am, e.g. conv3:channel=5, or auto:LAYER (the unit "
                                    "of LAYER that most drives --target K)", metavar="ADDR")
    direction: Literal["up", "down"] = option("up", "push the unit up or down", choices=["up", "down"])
    unit_weight: float = option(1.0, "weight of the unit term")
    class_weight: float = option(0.0, "weight of a class term added to am / feature-match (0: unit/features only)")
    layer: str | None = option(None, "layer whose features --method feature-match matches")
    guide: str | None = option(None, "guide image(s) for feature-match (file, folder or data set)", metavar="IMAGES")
    guide_index: int = option(0, "which image of --guide to use")
    transfer: list[str] = option([], "also measure how often the adversarial images fool these models",
                                 metavar="MODEL")
    limit: int | None = option(None, "attack only the first N images", metavar="N", minimum=1)
    batch_size: int | None = option(None, "images per engine run (default 128; universal: all images, one "
                                          "perturbation per batch)", minimum=1)
    seed: int = option(0, "random seed")
    stop_on_success: bool = option(False, "end a batch's run once all its images succeed")
    panels: bool = option(True, "write one panel per image")
    max_panels: int | None = option(None, "write panels for the first N images only", metavar="N", minimum=1)
    quantize: bool = option(True, "round inputs and results to 8 bits so the PNGs hold exactly what was measured")
    out: str = option("runs/attack", "output folder: new, or an earlier attack run's (replaced whole)",
                      metavar="DIR")

    def check(self) -> None:
        super().check()
        if not self.images:
            raise UnifiedVizError("give MODEL and IMAGES (or a --config with 'model' and 'images')")
        if self.method not in ATTACKS:
            raise UnifiedVizError(ATTACKS.unknown_message(self.method))
        if self.norm not in NORMS:
            raise UnifiedVizError(NORMS.unknown_message(self.norm))
        # Options that belong to one method are an error with another (no silent ignoring).
        own = set(ATTACKS.get(self.method).cli_options)
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for entry in ATTACKS.entries():
            for name in set(entry.obj.cli_options) - own:
                if getattr(self, name) != defaults[name]:
                    raise UnifiedVizError(f"--{name.replace('_', '-')} is for --method {entry.name}, "
                                          f"not {self.method}")

    @property
    def radius(self) -> float:
        return (8 / 255 if self.norm == "linf" else 0.5) if self.eps is None else self.eps


@register("attack")
class AttackCommand(Command):
    help = "craft adversarial inputs (FGSM, PGD, unit-driven, feature matching, universal)"
    description = ("Attack MODEL on IMAGES (a folder, an image file, or a data set name such as 'digits') with a "
                   "bounded perturbation optimised by the AM engine. Images are [0, 1]; the model normalises them "
                   "itself. Options may come from --config (keys = option names) and --set KEY=VALUE.")
    options = AttackOptions

    def run(self, opts: AttackOptions) -> int:
        return run(opts)


def run(opts: AttackOptions) -> int:
    import torch

    from unifiedviz.inputs import load_inputs
    from unifiedviz.report.run_folder import claim

    from .metrics import quantize

    folder = claim(opts.out, "attack")  # before any work: a foreign folder or a file is refused now
    eps = opts.radius
    model = load_model_from(opts)
    inputs = load_inputs(opts.images, model.spec, limit=opts.limit)
    images = inputs.images
    if opts.quantize:  # the saved originals and adversarial PNGs then hold exactly the measured pixels
        images = torch.round(images * 255) / 255
    attack = build_attack(opts, model, eps)
    target = None if opts.target is None else (int(opts.target) if opts.target.lstrip("-").isdigit() else opts.target)
    names = [Path(n).stem for n in inputs.names]
    result = attack(images, inputs.labels, target=target, names=names)
    float_success = result.success_rate()
    if opts.quantize:
        result = quantize(result, model)
    transfer = result.transfer(opts.transfer) if opts.transfer else {}
    summary = {
        "command": dataclasses.asdict(opts),
        "images_source": str(opts.images),
        **result.summary(),
        "float_success_rate": float_success,
        "transfer": transfer,
        "per_image": result.per_image(),
    }
    with folder.writing() as tmp:
        _write(tmp, result, summary, opts)
    s = result.summary()
    norm_max = s["linf_max"] if result.norm == "linf" else s["l2_max"]
    print(f"{result.success_line()}; {result.norm}_max {norm_max:.4g} <= eps {eps:.4g}")
    for name, t in transfer.items():
        print(f"transfer to {name}: {t['rate']:.3f} of the source's successes" if t["rate"] is not None
              else f"transfer to {name}: no source successes to transfer")
    print(f"wrote summary.json, {len(result)} adversarial PNGs{' and panels' if opts.panels else ''} to {opts.out}")
    return 0


def build_attack(opts: AttackOptions, model, eps: float):
    """The attack object the command's options describe (the method's own `from_options`)."""
    batch_size = opts.batch_size or (None if opts.method == "universal" else 128)
    common = dict(eps=eps, norm=opts.norm, steps=opts.steps, alpha=opts.alpha, seed=opts.seed,
                  batch_size=batch_size, stop_on_success=opts.stop_on_success, progress=not opts.quiet)
    for name in ("loss", "kappa", "random_start"):  # unset: the method's own default
        if getattr(opts, name) is not None:
            common[name] = getattr(opts, name)
    return ATTACKS.get(opts.method).from_options(model, opts, common)


def _write(folder: Path, result, summary: dict, opts: AttackOptions) -> None:
    from unifiedviz.report import save_png, write_json

    from .metrics import definitions
    from .panels import amplified, save_panel

    (folder / "adversarial").mkdir()
    files = []
    for i in range(len(result)):
        name = f"{i:04d}_{_safe(result.names[i]) if result.names else 'image'}.png"
        save_png(result.adversarial[i], folder / "adversarial" / name)
        files.append(name)
    panels = []
    if opts.panels:
        (folder / "panels").mkdir()
        count = len(result) if opts.max_panels is None else min(len(result), opts.max_panels)
        for i in range(count):
            save_panel(result, i, folder / "panels" / files[i])
            panels.append(files[i])
    if result.perturbation is not None:
        pert, k = amplified(result.perturbation)
        save_png(pert, folder / "perturbation.png")
        summary["perturbation_png_gain"] = k
    summary["definitions"] = definitions(summary)
    for row, name in zip(summary["per_image"], files):
        row["adversarial_png"] = f"adversarial/{name}"
        if name in panels:
            row["panel_png"] = f"panels/{name}"
    write_json(folder / "summary.json", summary)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]


__all__ = ["AttackOptions", "run", "build_attack"]
