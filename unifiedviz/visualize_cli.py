"""`unifiedviz visualize MODEL UNITS... [options]` or `unifiedviz visualize --config FILE.yaml`."""
from __future__ import annotations

import argparse

from .cli_args import MODEL_HELP, command_args, model_from_args, number

DEFAULTS = {
    "model": None,
    "units": None,
    "weights": None,
    "pretrained": False,
    "steps": 256,
    "param": "fourier",
    "lr": 0.05,
    "optimizer": "adam",
    "seed": 0,
    "batch_size": 32,
    "per_unit": 1,
    "diversity": 0.0,
    "tv": 0.0,
    "class_score": "logit",
    "transforms": "standard",
    "reference": None,
    "snapshots": [],
    "out": "runs/visualize",
}


def add_subcommand(sub) -> None:
    p = sub.add_parser(
        "visualize",
        help="render images that maximise units (activation maximisation)",
        description="Render one image per unit. UNITS are addresses such as layer3:channel=0:8, "
        "blocks.6.mlp.fc1:neuron=5, blocks.4.attn:head=2, class=3. Options may come from --config.",
    )
    p.add_argument("model", nargs="?", help=MODEL_HELP)
    p.add_argument("units", nargs="*", help="unit addresses (ranges like channel=0:16 expand to many units)")
    p.add_argument("--config", metavar="YAML", help="read options from a YAML file (keys = option names)")
    p.add_argument("--weights", metavar="PATH", help="checkpoint to load (.safetensors or a weights-only torch file)")
    p.add_argument("--pretrained", action="store_true", default=None, help="published timm/torchvision weights")
    p.add_argument("--steps", type=int, help="optimisation steps (default 256)")
    p.add_argument("--param", choices=["pixel", "fourier", "maco"], help="image parameterisation (default fourier)")
    p.add_argument("--lr", type=number, help="learning rate (default 0.05)")
    p.add_argument("--optimizer", choices=["adam", "adam-cosine", "random-search"], help="default adam")
    p.add_argument("--seed", type=int, help="random seed (default 0); same seed, same images")
    p.add_argument("--batch-size", type=int, help="units rendered together (default 32)")
    p.add_argument("--per-unit", type=int, help="images per unit (default 1)")
    p.add_argument("--diversity", type=number, help="weight of the diversity term (needs --per-unit >= 2)")
    p.add_argument("--tv", type=number, help="weight of the total-variation penalty (default 0)")
    p.add_argument("--class-score", choices=["logit", "logprob"], help="what class units maximise (default logit)")
    p.add_argument("--transforms", choices=["standard", "none"], help="robustness transforms (default standard)")
    p.add_argument("--reference", metavar="IMAGES",
                   help="images (folder, file or 'digits') to report each unit's max activation over")
    p.add_argument("--snapshots", type=int, nargs="+", metavar="STEP", help="also save grids at these steps")
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/visualize)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .inputs import load_inputs
    from .objectives import total_variation
    from .visualize import visualize

    args = command_args(args, DEFAULTS, "units")
    units = [args.units] if isinstance(args.units, str) else list(args.units)
    model = model_from_args(args)
    reference = load_inputs(args.reference, model.spec).images if args.reference else None
    result = visualize(
        model,
        units,
        steps=args.steps,
        param=args.param,
        lr=float(args.lr),
        optimizer=args.optimizer,
        transforms=args.transforms,
        seed=args.seed,
        batch_size=args.batch_size,
        per_unit=args.per_unit,
        diversity=float(args.diversity),
        class_score=args.class_score,
        regularizer=float(args.tv) * total_variation() if args.tv else None,
        reference=reference,
        snapshot_steps=args.snapshots or (),
        progress=not args.quiet,
    )
    out = result.save(args.out)
    for name, value in zip(result.names, result.activations.tolist()):
        print(f"{name}\t{value:.4g}")
    print(f"wrote {len(result.names)} images, grid.png and summary.json to {out}")
    return 0
