"""`unifiedviz explain MODEL IMAGES --method gradcam,saliency,occlusion,sobol --unit ADDR --out DIR`."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import UnifiedVizError
from ..options import option
from .command import Command, ModelOptions, load_model_from, register


@dataclass
class ExplainOptions(ModelOptions):
    images: str | None = option(None, "images: a folder, an image file, or digits", positional=True)
    method: list[str] = option(["gradcam", "saliency", "occlusion", "sobol"],
                               "attribution methods, comma-separated (gradcam, gradcam++, scorecam, saliency, "
                               "grad_x_input, smoothgrad, integrated, occlusion, sobol)", metavar="NAME")
    unit: str | None = option(None, "unit address to explain (any layer:kind=index, or class=k); "
                                    "default: each image's predicted class", metavar="ADDR")
    layer: str | None = option(None, "CAM layer (default: the last conv layer; on a ViT gradcam is then the "
                                     "gradient-weighted attention rollout, a token layer gives classic Grad-CAM)",
                               metavar="NAME")
    limit: int = option(8, "explain the first N images", minimum=1)
    steps: int = option(32, "deletion/insertion steps", minimum=1)
    sobol_samples: int = option(32, "Sobol N (power of two): N x (patches + 2) model evaluations per image",
                                minimum=1)
    patch: int | None = option(None, "Sobol and occlusion patch size in pixels (default: an 8x8 grid)")
    randomisation: bool = option(False, "also run the model-randomisation sanity check per method")
    am_steps: int = option(128, "optimisation steps of the unit's AM image (0: no AM image)", minimum=0)
    seed: int = option(0, "random seed (SmoothGrad noise, Sobol samples, random baseline maps, AM)")
    out: str = option("runs/explain", "output folder: new, or an earlier explain run's (replaced whole)",
                      metavar="DIR")

    def check(self) -> None:
        super().check()
        if not self.images:
            raise UnifiedVizError("give MODEL and IMAGES (a folder, an image file, or digits)")
        from ..explain import EXPLAINERS

        self.method = EXPLAINERS.pick(self.method)
        if not self.method:
            raise UnifiedVizError(f"give at least one --method: {', '.join(EXPLAINERS.names())}")


def _options(method: str, opts: ExplainOptions) -> dict:
    """The command's settings that this method's function takes, matched by parameter name (and by
    the function's own `cli_options` {parameter: option} for method-specific flags), so a new
    explainer gets them by naming its parameters: no per-method code here."""
    import inspect

    from ..explain import EXPLAINERS

    fn = EXPLAINERS.get(method)
    offered = {"layer": opts.layer, "patch": opts.patch, "window": opts.patch, "seed": opts.seed}
    offered.update({param: getattr(opts, name) for param, name in getattr(fn, "cli_options", {}).items()})
    accepted = inspect.signature(fn).parameters
    return {k: v for k, v in offered.items() if k in accepted}


@register("explain")
class Explain(Command):
    help = "attribution maps (Grad-CAM, saliency, occlusion, Sobol ...) of a unit, with faithfulness numbers"
    description = ("Per image a panel (original, each map overlaid, the unit's AM image) and summary.json with "
                   "deletion/insertion AUC per method and for random maps.")
    options = ExplainOptions

    def run(self, opts: ExplainOptions) -> int:
        import numpy as np
        import torch
        from tqdm.auto import tqdm

        from ..adapters import as_adapter
        from ..explain import deletion_insertion, randomisation_check
        from ..explain.base import explainer, spatial_shape
        from ..explain.faithfulness import random_maps
        from ..explain.panels import save_panel
        from ..inputs import load_inputs
        from ..report.files import write_json
        from ..report.run_folder import claim

        folder = claim(opts.out, "explain")  # before any work
        model = load_model_from(opts)
        adapter = as_adapter(model)
        methods = {m: explainer(m, adapter) for m in opts.method}  # a gradient method on a black box: refused now
        if not model.spec.size:
            raise UnifiedVizError("explain draws image panels: for [B, F] models use unifiedviz.explain.tabular_sobol")
        inputs = load_inputs(opts.images, model.spec, limit=opts.limit)
        x = inputs.images
        with torch.no_grad():
            preds = adapter.capture(x, "<logits>")["<logits>"].argmax(1).tolist()
        units = [opts.unit] * len(x) if opts.unit else [f"class={p}" for p in preds]
        for u in dict.fromkeys(units):
            adapter.resolve(u)  # a bad address fails before any work
        groups: dict[str, list[int]] = {}
        for i, u in enumerate(units):
            groups.setdefault(u, []).append(i)
        maps = {m: torch.zeros(len(x), *spatial_shape(adapter)) for m in opts.method}
        scores: dict[str, dict] = {m: {"deletion": [0.0] * len(x), "insertion": [0.0] * len(x)}
                                   for m in [*opts.method, "random"]}
        sanity: dict[str, dict] = {}
        bar = tqdm(total=len(groups) * len(opts.method), desc="explain", leave=False, disable=opts.quiet)
        for u, idx in groups.items():
            xs = x[idx]
            for m in opts.method:
                bar.set_postfix(unit=u, method=m)
                mp = methods[m](adapter, u, xs, **_options(m, opts))
                maps[m][idx] = mp.detach().cpu()
                bar.update()
            for m in [*opts.method, "random"]:
                mp = maps[m][idx] if m != "random" else random_maps(xs, spatial=spatial_shape(adapter), seed=opts.seed)
                r = deletion_insertion(adapter, xs, mp, u, steps=opts.steps)
                for j, i in enumerate(idx):
                    scores[m]["deletion"][i] = float(r["deletion"][j])
                    scores[m]["insertion"][i] = float(r["insertion"][j])
            if opts.randomisation:
                for m in opts.method:
                    chk = randomisation_check(adapter, xs, u, m, init_seed=opts.seed, **_options(m, opts))
                    sanity.setdefault(m, {"spearman": []})["spearman"].extend(chk.correlations)
        bar.close()
        for m, d in sanity.items():
            d["mean_spearman"] = float(np.mean(d["spearman"]))
            d["threshold"] = 0.5
            d["passed"] = d["mean_spearman"] < 0.5
        am = {}
        if opts.am_steps:
            from ..visualize import visualize

            distinct = list(groups)
            vis = visualize(adapter, distinct, steps=opts.am_steps, seed=opts.seed, progress=False)
            am = dict(zip(distinct, vis.images))
        summary = {
            "model": opts.model, "images": opts.images, "unit": opts.unit or "predicted class",
            "methods": opts.method, "steps": opts.steps,
            "mean": {m: {k: float(np.mean(v)) for k, v in s.items()} for m, s in scores.items()},
            "per_image": [
                {"name": inputs.names[i], "unit": units[i], "pred": preds[i],
                 **({"label": int(inputs.labels[i])} if inputs.labels is not None else {}),
                 **{m: {"deletion": scores[m]["deletion"][i], "insertion": scores[m]["insertion"][i]}
                    for m in scores}}
                for i in range(len(x))
            ],
            "randomisation": sanity,
            "notes": "deletion: lower is better; insertion: higher is better; curves of the class probability "
                     "for class units, else the unit value; pixels set to 0 (black) when deleted",
        }
        with folder.writing() as tmp:
            for i in range(len(x)):
                captions = {m: f"del {scores[m]['deletion'][i]:.3f} ins {scores[m]['insertion'][i]:.3f}"
                            for m in opts.method}
                save_panel(tmp / f"{i:04d}_{inputs.names[i]}.png", x[i], {m: maps[m][i] for m in opts.method},
                           captions, am.get(units[i]), f"{units[i]} (pred {preds[i]})")
            write_json(tmp / "summary.json", summary)
        for m, s in summary["mean"].items():
            print(f"{m}\tdeletion {s['deletion']:.4f}\tinsertion {s['insertion']:.4f}")
        print(f"wrote {len(x)} panels and summary.json to {opts.out}")
        return 0
