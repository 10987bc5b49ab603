"""`unifiedviz probe MODEL LAYER --concept DIR --negatives DIR [--masks DIR] --out DIR`: concept probes (CAVs)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import UnifiedVizError
from ..options import option
from .command import Command, ModelOptions, load_model_from, register

if TYPE_CHECKING:
    import torch

MIN_IMAGES = 10


@dataclass
class ProbeOptions(ModelOptions):
    layer: str | None = option(None, "layer to probe (see `unifiedviz layers MODEL`)", positional=True)
    concept: str | None = option(None, "folder of concept images (PNG/JPEG)", metavar="DIR")
    negatives: str | None = option(None, "folder of negative (random) images", metavar="DIR")
    masks: str | None = option(None, "folder of concept masks, same file names as the concept images", metavar="DIR")
    spurious: str | None = option(None, "folder of false positives (spurious feature, no concept): adds the "
                                        "spurious CAV and the cured direction", metavar="DIR")
    kinds: list[str] = option(["logistic", "pattern", "ti-max"], "probe kinds, comma-separated (logistic, svm, "
                              "pattern, segmentation, ti-max, ti-mean); segmentation is added when --masks is given",
                              metavar="NAME")
    target: int | None = option(None, "class for TCAV (default: none, no TCAV)", metavar="K")
    runs: int = option(10, "TCAV runs (concept and random CAVs) for the significance test")
    held_out: float = option(0.3, "fraction of each set held out for probe accuracy")
    threshold: float = option(0.5, "IoU threshold on min-max normalised localisation maps")
    limit: int = option(8, "localisation overlays for the first N concept images")
    am_steps: int = option(64, "optimisation steps of each CAV's AM image beside the overlays (0: none)")
    seed: int = option(0, "random seed (splits, probes, augmentations, AM)")
    out: str = option("runs/probe", "output folder: new, or an earlier probe run's (replaced whole)", metavar="DIR")

    def check(self) -> None:
        super().check()
        if not self.layer:
            raise UnifiedVizError("give MODEL and LAYER, e.g. unifiedviz probe builtin:digits-cnn relu2 --concept DIR")
        if not self.concept or not self.negatives:
            raise UnifiedVizError("give --concept DIR and --negatives DIR (folders of images)")
        from ..probes import PROBES

        flat = PROBES.pick(self.kinds)
        if self.masks and "segmentation" not in flat:
            flat.append("segmentation")
        if "segmentation" in flat and not self.masks:
            raise UnifiedVizError("the segmentation probe needs --masks DIR (same-named mask files)")
        if not flat:
            raise UnifiedVizError(f"give at least one --kinds: {', '.join(PROBES.names())}")
        self.kinds = flat
        if not 0 < self.held_out < 1:
            raise UnifiedVizError(f"held-out must be between 0 and 1, got {self.held_out}")
        if self.runs < 2:
            raise UnifiedVizError(f"runs must be at least 2 for the significance test, got {self.runs}")


def _load_set(path: str, spec, what: str):
    from pathlib import Path

    from ..inputs import load_inputs

    if not Path(path).is_dir():
        raise UnifiedVizError(f"--{what} {path!r} is not a folder: give a folder of PNG/JPEG images")
    inputs = load_inputs(path, spec)
    if len(inputs.images) < MIN_IMAGES:
        raise UnifiedVizError(f"--{what} {path!r} has {len(inputs.images)} image(s): give at least {MIN_IMAGES}")
    return inputs


def _load_masks(folder: str, concept_dir: str, names: list[str], size) -> "torch.Tensor":
    from pathlib import Path

    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image

    out = []
    for name in names:
        mp, ip = Path(folder) / name, Path(concept_dir) / name
        if not mp.is_file():
            hits = sorted(Path(folder).glob(Path(name).stem + ".*"))
            if not hits:
                raise UnifiedVizError(f"no mask for concept image {name!r} in {folder!r}: give a same-named mask file")
            mp = hits[0]
        with Image.open(mp) as m, Image.open(ip) as im:
            if m.size != im.size:
                raise UnifiedVizError(f"mask {mp.name!r} is {m.size[0]}x{m.size[1]} but its image is "
                                      f"{im.size[0]}x{im.size[1]}: give masks the size of their images")
            arr = np.asarray(m.convert("L"), dtype=np.float32) / 255.0
        t = torch.from_numpy(arr.copy())[None, None]
        out.append(F.interpolate(t, size=tuple(size), mode="nearest")[0, 0] > 0.5)
    return torch.stack(out).float()


def _split(n: int, held_out: float, seed: int):
    import numpy as np

    perm = np.random.default_rng(seed).permutation(n)
    k = max(1, int(round(n * held_out)))
    return perm[k:], perm[:k]


@register("probe")
class ProbeCommand(Command):
    help = "concept probes (CAVs) at a layer, with accuracy, alignment metrics, localisation overlays and TCAV"
    description = ("Writes one CAV per probe kind (KIND.npy, and cav.npy: the first kind) that "
                   "`unifiedviz visualize MODEL LAYER:direction=OUT/cav.npy` renders, metrics.json, and overlays.")
    options = ProbeOptions

    def run(self, opts: ProbeOptions) -> int:
        import numpy as np
        import torch

        from ..adapters import as_adapter
        from ..explain.panels import save_panel
        from ..probes import (accuracy, activations, augmentation_robustness, cosine, cured_direction, fit_probe,
                              localisation_maps, segmentation_score, spurious_probe, tcav)
        from ..report.files import write_json
        from ..report.run_folder import claim

        folder = claim(opts.out, "probe")  # before any work
        model = load_model_from(opts)
        adapter = as_adapter(model)
        info = adapter.layer(opts.layer)
        if "segmentation" in opts.kinds and info.layout.kind not in ("conv", "tokens", "sequence"):
            raise UnifiedVizError(f"a segmentation probe needs spatial positions, but layer {info.name!r} is a "
                                  f"{info.layout.kind} layer: pick a conv or token layer")
        if not model.spec.size or len(model.spec.size) != 2:
            raise UnifiedVizError("probe reads image folders: give an image model")
        concept = _load_set(opts.concept, model.spec, "concept")
        negatives = _load_set(opts.negatives, model.spec, "negatives")
        masks = _load_masks(opts.masks, opts.concept, concept.names, model.spec.size) if opts.masks else None
        pos, neg = activations(adapter, info.name, concept.images), activations(adapter, info.name, negatives.images)
        ptr, pte = _split(len(pos), opts.held_out, opts.seed)
        ntr, nte = _split(len(neg), opts.held_out, opts.seed + 1)
        tr_masks = masks[torch.as_tensor(ptr)] if masks is not None else None
        probes = {k: fit_probe(k, pos.select(torch.as_tensor(ptr)), neg.select(torch.as_tensor(ntr)),
                               masks=tr_masks, seed=opts.seed) for k in opts.kinds}
        if opts.spurious:
            fp = activations(adapter, info.name, _load_set(opts.spurious, model.spec, "spurious").images)
            probes["spurious"] = spurious_probe(fp, neg.select(torch.as_tensor(ntr)), seed=opts.seed)
            probes["cured"] = cured_direction(probes[opts.kinds[0]], probes["spurious"],
                                               pos.select(torch.as_tensor(ptr)), neg.select(torch.as_tensor(ntr)))
        labels = np.r_[np.ones(len(pte)), np.zeros(len(nte))]
        test_pos, test_neg = pos.select(torch.as_tensor(pte)), neg.select(torch.as_tensor(nte))
        size = tuple(model.spec.size)
        metrics: dict = {"model": opts.model, "layer": info.name, "layout": info.layout.kind,
                         "concept_images": len(pos), "negative_images": len(neg), "held_out": opts.held_out,
                         "probes": {}, "cosine": {}}
        maps = {}
        for name, p in probes.items():
            m: dict = {"kind": p.kind, "pool": p.pool, "bias": p.bias, "file": f"{name}.npy",
                       "accuracy": accuracy(np.r_[p.predict(test_pos), p.predict(test_neg)], labels)}

            def predict(x, p=p):
                return p.predict(activations(adapter, info.name, x))

            m["augmentation_robustness"] = augmentation_robustness(predict, concept.images[torch.as_tensor(pte)],
                                                                   seed=opts.seed)
            if pos.has_positions():
                maps[name] = localisation_maps(pos, p, size)
                if masks is not None:
                    m["segmentation"] = segmentation_score(maps[name][torch.as_tensor(pte)],
                                                           masks[torch.as_tensor(pte)], opts.threshold)
            metrics["probes"][name] = m
        names = list(probes)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                metrics["cosine"][f"{a}|{b}"] = cosine(probes[a], probes[b])
        if opts.target is not None:
            metrics["tcav"] = tcav(adapter, info.name, concept.images, opts.target, concept.images,
                                   negatives.images, runs=opts.runs, set_size=max(2, len(neg) // 2),
                                   seed=opts.seed).as_dict()
        am = {}
        with folder.writing() as tmp:
            for name, p in probes.items():
                p.save(tmp / f"{name}.npy")
            probes[names[0]].save(tmp / "cav.npy")
            if opts.am_steps and maps:
                from ..visualize import visualize

                units = [f"{info.name}:direction={tmp / (n + '.npy')}" for n in names]
                vis = visualize(adapter, units, steps=opts.am_steps, seed=opts.seed, progress=False)
                am = dict(zip(names, vis.images))
            for i in range(min(opts.limit, len(pos)) if maps else 0):
                captions = {n: f"iou {metrics['probes'][n]['segmentation']['iou']:.2f}" if masks is not None else ""
                            for n in maps}
                save_panel(tmp / f"overlay_{i:03d}_{concept.names[i]}.png", concept.images[i],
                           {n: maps[n][i] for n in maps}, captions, am.get(names[0]), f"{info.name} CAVs")
            write_json(tmp / "metrics.json", metrics)
        for name, m in metrics["probes"].items():
            seg = f"\tiou {m['segmentation']['iou']:.3f}" if "segmentation" in m else ""
            print(f"{name}\taccuracy {m['accuracy']:.3f}\trobustness {m['augmentation_robustness']['mean']:.3f}{seg}")
        if "tcav" in metrics:
            t = metrics["tcav"]
            print(f"tcav {t['tcav']:.3f} (random {t['random_mean']:.3f}, p={t['p_value']:.3g})")
        print(f"wrote {len(probes)} CAVs, metrics.json to {opts.out}")
        return 0
