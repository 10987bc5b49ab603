"""Our PGD (through the AM engine) against torchattacks' PGD on the real CIFAR-10 ResNet-20,
and (--digits) the success table of every attack on the shipped digits models.

    .venv/bin/python bench/attacks.py --weights ../shared/models/cifar10_resnet20.th
    .venv/bin/python bench/attacks.py --weights PATH --reps 20 --batch 64 --eps 8/255 --steps 10
    .venv/bin/python bench/attacks.py --digits          # all 359 test digits, CNN and ViT

CIFAR-10 is not available offline, so the batch is built from scikit-image's sample photos:
each photo resized to 32x32 (centre square) plus seeded random crops of them, 64 images in all.
The model's own predictions serve as labels: success = the attack flips the prediction
(untargeted), the same rule for both implementations, on the same images, with the same
eps / alpha / steps / random start.

Timing: the two attacks alternate (ours, theirs, theirs, ours, ...) so each pair is measured
within seconds on this shared VM; we report the median of the per-pair ratios ours/theirs,
on wall-clock time and on process CPU time. "ours" is the full public call
`PGD(model, ...)(images, labels)`, which also measures the result (clean and adversarial
predictions, norms, the ball/box check); "ours (engine only)" times `render` alone.
A third column, "bare", is a hand-written PGD loop with frozen weights: the floor.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from fractions import Fraction
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import adversarial  # noqa: E402
from adversarial.objectives import ClassLoss  # noqa: E402
from unifiedviz.engine import render  # noqa: E402
from unifiedviz.models import load_model  # noqa: E402
from unifiedviz.optimizers import SignGradient  # noqa: E402
from unifiedviz.params import PerturbationParam  # noqa: E402

PHOTOS = ("chelsea", "astronaut", "coffee", "rocket", "stereo_motorcycle", "colorwheel", "hubble_deep_field",
          "immunohistochemistry", "retina", "camera", "coins", "clock", "brick", "grass", "moon", "cell")


def photo_batch(n: int, seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    """`n` 32x32 RGB images in [0, 1]: every photo's centre square, then random square crops."""
    import skimage.data as data

    photos = []
    for name in PHOTOS:
        img = getattr(data, name)()
        img = img[0] if isinstance(img, tuple) else img
        t = torch.tensor(img).float().div(255)
        t = t[..., None].expand(-1, -1, 3) if t.dim() == 2 else t[..., :3]
        photos.append((name, t.permute(2, 0, 1).contiguous()))
    gen = torch.Generator().manual_seed(seed)
    images, names = [], []
    for i in range(n):
        name, img = photos[i % len(photos)]
        h, w = img.shape[-2:]
        if i < len(photos):
            side, top, left = min(h, w), (h - min(h, w)) // 2, (w - min(h, w)) // 2
        else:
            side = int(min(h, w) * (0.35 + 0.65 * torch.rand((), generator=gen)))
            top = int(torch.randint(0, h - side + 1, (), generator=gen))
            left = int(torch.randint(0, w - side + 1, (), generator=gen))
        crop = img[None, :, top:top + side, left:left + side]
        x = F.interpolate(crop, size=(32, 32), mode="bilinear", antialias=True, align_corners=False)
        images.append(x.clamp(0, 1)[0])
        names.append(name if i < len(photos) else f"{name}_crop{i}")
    return torch.stack(images), names


def bare_pgd(model, x, y, eps, alpha, steps, seed):
    """The floor: a hand-written PGD loop on frozen weights."""
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        gen = torch.Generator().manual_seed(seed)
        adv = (x + (torch.rand(x.shape, generator=gen) * 2 - 1) * eps).clamp(0, 1)
        for _ in range(steps):
            adv.requires_grad_(True)
            loss = F.cross_entropy(model(adv), y)
            (g,) = torch.autograd.grad(loss, adv)
            adv = torch.min(torch.max(adv.detach() + alpha * g.sign(), x - eps), x + eps).clamp(0, 1)
        return adv
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", help="the CIFAR-10 ResNet-20 checkpoint (cifar10_resnet20.th)")
    p.add_argument("--digits", action="store_true", help="print the attack table for the digits models")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--eps", type=lambda s: float(Fraction(s)), default=8 / 255)
    p.add_argument("--alpha", type=lambda s: float(Fraction(s)), default=2 / 255)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--also-eps", type=lambda s: float(Fraction(s)), nargs="*", default=[0.25 / 255, 0.5 / 255, 1 / 255],
                   help="smaller eps for the success table (alpha = eps/4)")
    p.add_argument("--reps", type=int, default=12, help="timed pairs (after one warm-up each)")
    p.add_argument("--seeds", type=int, default=5, help="random starts averaged for the success rates")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: on a shared VM, 2 threads spin-wait and timings swing 10x)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.weights and not args.digits:
        p.error("give --weights PATH (CIFAR ResNet-20 vs torchattacks) and/or --digits")
    if args.digits:
        digits_table()
    if args.weights:
        cifar_comparison(args)
    return 0


def digits_table() -> None:
    """Every attack on all 359 test digits, for the CNN and the ViT, with transfer to the other."""
    from unifiedviz.datasets import load_digits_images

    x, y = load_digits_images("test")
    train_x, train_y = load_digits_images("train")
    models = {"cnn": load_model("builtin:digits-cnn"), "vit": load_model("builtin:digits-vit")}
    other = {"cnn": models["vit"], "vit": models["cnn"]}
    unit_layer = {"cnn": "relu3", "vit": "blocks.3"}
    not3 = y != 3
    print(f"digits test split: {len(y)} images; transfer = share of the source's successes that also fool "
          "the other model (targeted: reach the target on it)")
    print(f"{'model':5s} {'attack':44s} {'success':>8s} {'on correct':>10s} {'adv conf':>9s} {'norm max':>9s} "
          f"{'steps':>6s} {'transfer':>9s} {'seconds':>8s}")
    for name, model in models.items():
        unit = adversarial.units_for_class(model, unit_layer[name], 3, train_x[train_y == 3][:100])[0][0]
        guide = x[y == 0][:1]
        runs = [
            ("PGD linf eps 0.1, 10 steps", adversarial.PGD(model, eps=0.1, steps=10), x, y, None),
            ("PGD linf eps 0.1, 20 steps, target random", adversarial.PGD(model, eps=0.1, steps=20), x, y, "random"),
            ("PGD linf eps 0.2, 20 steps, target random", adversarial.PGD(model, eps=0.2, steps=20), x, y, "random"),
            ("FGSM linf eps 0.1", adversarial.FGSM(model, eps=0.1), x, y, None),
            ("PGD l2 eps 2.0, 10 steps", adversarial.PGD(model, eps=2.0, norm="l2", steps=10), x, y, None),
            ("unit up (auto, see below), eps 0.1, target 3", adversarial.UnitAttack(model, unit, eps=0.1, steps=20),
             x[not3], y[not3], 3),
            ("  + class term (weight 1), eps 0.1", adversarial.UnitAttack(model, unit, eps=0.1, steps=20,
                                                                          class_weight=1.0), x[not3], y[not3], 3),
            ("universal linf eps 0.1, 40 steps", adversarial.UniversalPerturbation(model, eps=0.1), x, y, None),
            ("universal linf eps 0.2, 40 steps", adversarial.UniversalPerturbation(model, eps=0.2), x, y, None),
            ("feature match (guide: a 0), eps 0.15", adversarial.FeatureMatch(
                model, unit_layer[name], eps=0.15, steps=30, guide=guide), x[y != 0], y[y != 0], None),
        ]
        for label, attack, xs, ys, target in runs:
            r = attack(xs, ys, target=target)
            s = r.summary()
            t = adversarial.transfer_rate(r, other[name])
            steps = s["mean_steps_to_success"]
            norm = s["linf_max"] if r.norm == "linf" else s["l2_max"]
            print(f"{name:5s} {label:44s} {s['success_rate']:8.3f} {s['success_rate_on_correct']:10.3f} "
                  f"{s['mean_adv_confidence']:9.3f} {norm:9.4f} {'-' if steps is None else f'{steps:.1f}':>6s} "
                  f"{'-' if t['rate'] is None else format(t['rate'], '.3f'):>9s} {s['seconds']:8.1f}")
            if "mean_unit_raised" in s:
                print(f"{'':5s}   {s['unit']}: {s['mean_unit_before']:.3f} -> {s['mean_unit_after']:.3f}, "
                      f"raised on {s['mean_unit_raised']:.3f} of images")
            if "mean_feature_distance_before" in s:
                print(f"{'':5s}   feature distance {s['mean_feature_distance_before']:.3f} -> "
                      f"{s['mean_feature_distance_after']:.3f}")


def cifar_comparison(args) -> None:

    model = load_model("builtin:cifar_resnet20", weights=args.weights)
    x, names = photo_batch(args.batch)
    with torch.no_grad():
        probs = model(x).softmax(1)
    conf, pred = probs.max(1)
    classes = model.class_names
    print(f"model: ResNet-20 ({args.weights}); {args.batch} photo crops at 32x32, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print("model's view of the centre crops: " + ", ".join(
        f"{names[i]}={classes[pred[i]]}({conf[i]:.2f})" for i in range(min(len(PHOTOS), args.batch))))
    print(f"confident predictions (p >= 0.5): {int((conf >= 0.5).sum())}/{args.batch}; "
          f"chelsea (a cat) predicted as {classes[pred[0]]!r}; labels = the model's own predictions")

    try:
        import torchattacks
    except ImportError:
        torchattacks = None
        print("torchattacks is not importable: timing and success of ours only")

    # ---- success rates over several random starts, same images and labels; at the asked eps and
    # at smaller ones (alpha = eps/4, as 2/255 for 8/255), where the attacks do not all reach 100%
    print(f"\nuntargeted L-inf PGD, steps={args.steps}, batch={args.batch}, random start; success over "
          f"{args.seeds} seeds (mean, min-max); labels = the model's clean predictions:")
    summary = {}
    for eps in [args.eps, *args.also_eps]:
        alpha = args.alpha if eps == args.eps else eps / 4
        attack = adversarial.PGD(model, eps=eps, steps=args.steps, alpha=alpha)
        rows = {"ours": [], "torchattacks": [], "bare": []}
        for seed in range(args.seeds):
            attack.seed = seed
            r = attack(x, pred)
            rows["ours"].append(r.success_rate())
            rows["bare"].append(_success(model, x, bare_pgd(model, x, pred, eps, alpha, args.steps, seed), pred, eps))
            if torchattacks is not None:
                torch.manual_seed(seed)
                adv_ta = torchattacks.PGD(model, eps=eps, alpha=alpha, steps=args.steps, random_start=True)(x, pred)
                rows["torchattacks"].append(_success(model, x, adv_ta, pred, eps))
        summary[eps] = rows
        cells = "  ".join(f"{k} {statistics.mean(v):.3f} ({min(v):.3f}-{max(v):.3f})" for k, v in rows.items() if v)
        print(f"  eps {eps * 255:4.2f}/255 alpha {alpha * 255:5.3f}/255: {cells}; ours linf max "
              f"{float(r.linf.max()) * 255:.3f}/255")
    rows = summary[args.eps]

    # ---- interleaved timing
    ours = adversarial.PGD(model, eps=args.eps, steps=args.steps, alpha=args.alpha)

    def run_ours():
        return ours(x, pred)

    def run_engine():
        param = PerturbationParam(x, eps=args.eps, random_start=True, seed=0)
        return render(ours.adapter, ClassLoss(pred), param, steps=args.steps, optimizer=SignGradient(args.alpha),
                      lr=args.alpha, transforms=None, progress=False)

    def run_theirs():
        return torchattacks.PGD(model, eps=args.eps, alpha=args.alpha, steps=args.steps, random_start=True)(x, pred)

    def run_bare():
        return bare_pgd(model, x, pred, args.eps, args.alpha, args.steps, 0)

    cases = {"ours": run_ours, "ours (engine only)": run_engine, "bare": run_bare}
    if torchattacks is not None:
        cases["torchattacks"] = run_theirs
    for fn in cases.values():  # warm-up
        fn()
    wall = {k: [] for k in cases}
    cpu = {k: [] for k in cases}
    order = list(cases)
    for rep in range(args.reps):
        for k in (order if rep % 2 == 0 else order[::-1]):
            _, w, c = timed(cases[k])
            wall[k].append(w)
            cpu[k].append(c)
    ref = "torchattacks" if torchattacks is not None else "bare"
    print(f"\ntime per attack call ({args.reps} interleaved reps, order alternating), "
          f"median per-rep ratio to {ref}:")
    print(f"  {'case':20s} {'wall s (median)':>16s} {'wall ratio':>24s} {'cpu ratio':>24s}")
    for k in cases:
        print(f"  {k:20s} {statistics.median(wall[k]):16.3f} {_describe(_ratios(wall[k], wall[ref])):>24s} "
              f"{_describe(_ratios(cpu[k], cpu[ref])):>24s}")
    if torchattacks is not None:
        rw = statistics.median(_ratios(wall["ours"], wall["torchattacks"]))
        print(f"\nours/torchattacks time ratio {rw:.2f} (target <= 1.1); success ours "
              f"{statistics.mean(rows['ours']):.3f} vs torchattacks {statistics.mean(rows['torchattacks']):.3f}")


def _success(model, x, adv, y, eps) -> float:
    assert float((adv - x).abs().max()) <= eps + 1e-5 and 0 <= float(adv.min()) and float(adv.max()) <= 1
    with torch.no_grad():
        return float((model(adv).argmax(1) != y).float().mean())


def _ratios(a, b):
    return [x / y for x, y in zip(a, b)]


def _describe(r):
    q = statistics.quantiles(r, n=4) if len(r) > 1 else [r[0]] * 3
    return f"{statistics.median(r):.2f}x ({q[0]:.2f}-{q[2]:.2f})"


if __name__ == "__main__":
    sys.exit(main())
