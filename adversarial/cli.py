"""`unifiedviz attack MODEL IMAGES [options]` or `unifiedviz attack --config FILE.yaml`.

Writes, into `--out DIR` (replaced whole, never half-written):
  summary.json        settings, aggregate measures, transfer rates, one record per image
  adversarial/*.png   the adversarial images (lossless 8-bit PNG; the measures are of these)
  panels/*.png        original | amplified perturbation | adversarial | top predictions
  perturbation.png    the shared perturbation (universal attacks only, amplified)
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from unifiedviz.cli_args import MODEL_HELP, command_args, model_from_args, number
from unifiedviz.errors import UnifiedVizError

METHODS = ("pgd", "fgsm", "am", "feature-match", "universal")
DEFAULTS = {
    "model": None,
    "images": None,
    "weights": None,
    "pretrained": False,
    "method": "pgd",
    "norm": "linf",
    "eps": None,  # 8/255 for linf, 0.5 for l2
    "steps": None,  # the method's default
    "alpha": None,  # 2.5 * eps / steps
    "random_start": None,  # the method's default (on for pgd)
    "loss": None,  # the method's default (ce; cw for universal)
    "kappa": None,
    "target": None,
    "unit": None,
    "direction": "up",
    "unit_weight": 1.0,
    "class_weight": 0.0,
    "layer": None,
    "guide": None,
    "guide_index": 0,
    "transfer": [],
    "limit": None,
    "batch_size": None,  # 128; universal: all images share one perturbation
    "seed": 0,
    "stop_on_success": False,
    "panels": True,
    "max_panels": None,
    "quantize": True,
    "out": "runs/attack",
}


def add_subcommand(sub) -> None:
    p = sub.add_parser(
        "attack",
        help="craft adversarial inputs (FGSM, PGD, unit-driven, feature matching, universal)",
        description="Attack MODEL on IMAGES (a folder, an image file, or a data set name such as 'digits') "
        "with a bounded perturbation optimised by the AM engine. Images are [0, 1]; the model normalises "
        "them itself. Options may come from --config (keys = long option names).",
    )
    p.add_argument("model", nargs="?", help=MODEL_HELP)
    p.add_argument("images", nargs="?", help="image folder, image file, or data set (digits, digits-train, ...)")
    p.add_argument("--config", metavar="YAML", help="read options from a YAML file (keys = option names)")
    p.add_argument("--weights", metavar="PATH", help="checkpoint to load (.safetensors or a weights-only torch file)")
    p.add_argument("--pretrained", action="store_true", default=None, help="published timm/torchvision weights")
    p.add_argument("--method", choices=METHODS,
                   help="pgd (default), fgsm, am (push --unit), feature-match (match --guide at --layer), "
                        "universal (one perturbation per batch)")
    p.add_argument("--norm", choices=["linf", "l2"], help="perturbation ball (default linf)")
    p.add_argument("--eps", type=number, help="ball radius, e.g. 8/255 (default 8/255 for linf, 0.5 for l2)")
    p.add_argument("--steps", type=int, help="optimisation steps (default: pgd 10, fgsm 1, am 20, "
                                             "feature-match 50, universal 40)")
    p.add_argument("--alpha", type=number, help="step size (default 2.5*eps/steps; fgsm: eps)")
    p.add_argument("--random-start", action=argparse.BooleanOptionalAction, default=None,
                   help="start from a random point in the ball (default: on for pgd only)")
    p.add_argument("--loss", choices=["ce", "cw"], help="class loss: cross-entropy or CW logit margin")
    p.add_argument("--kappa", type=number, help="cap on the class score (images past it stop moving)")
    p.add_argument("--target", metavar="K",
                   help="targeted attack: a class index, or next | random | least-likely (per image)")
    p.add_argument("--unit", metavar="ADDR", help="unit to push with --method am, e.g. conv3:channel=5, or "
                                              "auto:LAYER (the unit of LAYER that most drives --target K)")
    p.add_argument("--direction", choices=["up", "down"], help="push the unit up (default) or down")
    p.add_argument("--unit-weight", type=number, help="weight of the unit term (default 1)")
    p.add_argument("--class-weight", type=number,
                   help="weight of a class term added to am / feature-match (default 0: unit/features only)")
    p.add_argument("--layer", help="layer whose features --method feature-match matches")
    p.add_argument("--guide", metavar="IMAGES", help="guide image(s) for feature-match (file, folder or data set)")
    p.add_argument("--guide-index", type=int, help="which image of --guide to use (default 0)")
    p.add_argument("--transfer", nargs="+", metavar="MODEL[=WEIGHTS]",
                   help="also measure how often the adversarial images fool these models")
    p.add_argument("--limit", type=int, help="attack only the first N images")
    p.add_argument("--batch-size", type=int,
                   help="images per engine run (default 128; universal: all images, one perturbation per batch)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--stop-on-success", action="store_true", default=None,
                   help="end a batch's run once all its images succeed")
    p.add_argument("--panels", action=argparse.BooleanOptionalAction, default=None,
                   help="write one panel per image (default on)")
    p.add_argument("--max-panels", type=int, help="write panels for the first N images only")
    p.add_argument("--quantize", action=argparse.BooleanOptionalAction, default=None,
                   help="round inputs and results to 8 bits so the PNGs hold exactly what was measured (default on)")
    p.add_argument("--out", metavar="DIR", help="output folder, replaced whole (default runs/attack)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from unifiedviz.inputs import load_inputs

    from .metrics import quantize

    args = command_args(args, DEFAULTS, "images")
    eps = _eps(args.eps, args.norm)
    model = model_from_args(args)
    inputs = load_inputs(args.images, model.spec, limit=args.limit)
    images = inputs.images
    if args.quantize:  # the saved originals and adversarial PNGs then hold exactly the measured pixels
        images = torch.round(images * 255) / 255
    attack = build_attack(args, model, eps)
    target = _target(args, model)
    names = [Path(n).stem for n in inputs.names]
    result = attack(images, inputs.labels, target=target, names=names)
    float_success = result.success_rate()
    if args.quantize:
        result = quantize(result, model)
    transfer = result.transfer(_list(args.transfer)) if args.transfer else {}
    out = Path(args.out)
    summary = {
        "command": {k: v for k, v in vars(args).items() if k in DEFAULTS},
        "images_source": str(args.images),
        **result.summary(),
        "float_success_rate": float_success,
        "transfer": transfer,
        "per_image": result.per_image(),
    }
    with _atomic_dir(out) as tmp:
        _write(tmp, result, summary, args)
    s = result.summary()
    norm_max = s["linf_max"] if result.norm == "linf" else s["l2_max"]
    print(f"{s['method']}: success {s['success_rate']:.3f} on {s['images']} images "
          f"({result.success_rate(among_correct=True):.3f} of the {s['originally_correct']} originally correct); "
          f"{result.norm} max {norm_max:.4g} <= eps {eps:.4g}")
    for name, t in transfer.items():
        print(f"transfer to {name}: {t['rate']:.3f} of the source's successes" if t["rate"] is not None
              else f"transfer to {name}: no source successes to transfer")
    print(f"wrote summary.json, {len(result)} adversarial PNGs and panels to {out}")
    return 0


def build_attack(args: argparse.Namespace, model, eps: float):
    """The attack object the CLI options describe."""
    from .attacks import FGSM, PGD, FeatureMatch, UnitAttack, UniversalPerturbation

    batch_size = args.batch_size or (None if args.method == "universal" else 128)
    common = dict(eps=eps, norm=args.norm, steps=args.steps, alpha=_num(args.alpha, "alpha"), seed=args.seed,
                  batch_size=batch_size, stop_on_success=bool(args.stop_on_success), progress=not args.quiet)
    if args.loss is not None:
        common["loss"] = args.loss
    if args.kappa is not None:
        common["kappa"] = _num(args.kappa, "kappa")
    if args.random_start is not None:
        common["random_start"] = bool(args.random_start)
    method = args.method
    if method not in METHODS:
        raise UnifiedVizError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    if method != "am" and args.unit:
        raise UnifiedVizError("--unit is for --method am")
    if method == "fgsm":
        if args.steps not in (None, 1):
            raise UnifiedVizError("fgsm takes exactly one step: use --method pgd for more")
        common.pop("steps")
        return FGSM(model, **common)
    if method == "pgd":
        return PGD(model, **common)
    if method == "universal":
        return UniversalPerturbation(model, **common)
    if method == "am":
        if not args.unit:
            raise UnifiedVizError("--method am needs --unit ADDR (e.g. conv3:channel=5); list layers with "
                                  "`unifiedviz layers MODEL`")
        unit = args.unit
        if str(unit).startswith("auto:"):
            unit = _auto_unit(args, model, str(unit)[5:])
        return UnitAttack(model, unit, direction=args.direction,
                          unit_weight=_num(args.unit_weight, "unit-weight"),
                          class_weight=_num(args.class_weight, "class-weight"), **common)
    # feature-match
    if not args.layer or not args.guide:
        raise UnifiedVizError("--method feature-match needs --layer LAYER and --guide IMAGES")
    from unifiedviz.inputs import load_inputs

    guide = load_inputs(args.guide, model.spec).images
    if not 0 <= args.guide_index < guide.shape[0]:
        raise UnifiedVizError(f"--guide-index {args.guide_index} is out of range: {args.guide!r} holds "
                              f"{guide.shape[0]} image(s)")
    guide = guide[args.guide_index:args.guide_index + 1]
    if args.quantize:
        import torch

        guide = torch.round(guide * 255) / 255
    return FeatureMatch(model, args.layer, guide=guide,
                        class_weight=_num(args.class_weight, "class-weight"), **common)


def _auto_unit(args, model, layer: str) -> str:
    """`--unit auto:LAYER`: the unit of LAYER that carries most of the target class's logit
    (gradient x activation), ranked on the input images of that class if there are any."""
    from unifiedviz.inputs import load_inputs

    from .units import units_for_class

    try:
        k = int(str(args.target))
    except ValueError:
        raise UnifiedVizError("--unit auto:LAYER needs --target K (a class index) to pick the unit for") from None
    ref = load_inputs(args.images, model.spec, limit=args.limit)
    images = ref.images
    if ref.labels is not None and (ref.labels == k).any():
        images = images[ref.labels == k]
    ranked = units_for_class(model, layer, k, images, top=1)
    if not ranked:
        raise UnifiedVizError(f"no unit of {layer!r} raises class {k} on these images: name one with --unit")
    return ranked[0][0]


def _eps(value, norm: str) -> float:
    return (8 / 255 if norm == "linf" else 0.5) if value is None else _num(value, "eps")


def _num(value, what: str) -> float | None:
    """A number from the command line (already parsed) or a config ("8/255" or 0.03)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return number(value)
        except argparse.ArgumentTypeError as exc:
            raise UnifiedVizError(f"{what}: {exc}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UnifiedVizError(f"{what} must be a number, got {value!r}")
    return float(value)


def _target(args, model):
    if args.target is None:
        return None
    if args.method == "feature-match":
        raise UnifiedVizError("--target does not apply to feature-match: the guide image's class is the target")
    text = str(args.target)
    try:
        return int(text)
    except ValueError:
        return text  # a rule; validated by the attack


def _list(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _write(folder: Path, result, summary: dict, args) -> None:
    from unifiedviz.report import save_png, write_json

    from .panels import amplified, save_panel

    (folder / "adversarial").mkdir()
    files = []
    for i in range(len(result)):
        name = f"{i:04d}_{_safe(result.names[i]) if result.names else 'image'}.png"
        save_png(result.adversarial[i], folder / "adversarial" / name)
        files.append(name)
    panels = []
    if args.panels:
        (folder / "panels").mkdir()
        count = len(result) if args.max_panels is None else min(len(result), args.max_panels)
        for i in range(count):
            save_panel(result, i, folder / "panels" / files[i])
            panels.append(files[i])
    if result.perturbation is not None:
        pert, k = amplified(result.perturbation)
        save_png(pert, folder / "perturbation.png")
        summary["perturbation_png_gain"] = k
    for row, name in zip(summary["per_image"], files):
        row["adversarial_png"] = f"adversarial/{name}"
        if name in panels:
            row["panel_png"] = f"panels/{name}"
    write_json(folder / "summary.json", summary)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]


@contextlib.contextmanager
def _atomic_dir(out: Path) -> Iterator[Path]:
    """Build the output in a hidden sibling folder, then swap it in; a failure leaves `out` as it was."""
    if out.exists() and not out.is_dir():
        raise UnifiedVizError(f"--out {str(out)!r} is a file: give a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "summary.json").is_file():
        raise UnifiedVizError(f"--out {str(out)!r} holds other files: give a new or an earlier attack's folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / "previous")
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


__all__ = ["add_subcommand", "run", "build_attack", "DEFAULTS", "METHODS"]
