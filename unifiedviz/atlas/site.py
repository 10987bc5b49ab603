"""Write the atlas into a claimed run folder, unit batch by unit batch, resumably.

    index.html, index-2.html ...   the units, `per_page` a page, sortable and filterable
    units/<slug>.html              a page per unit
    units/<slug>/am-0.png ...      its AM images (gen.png: the learned prior's), top-0.png ...,
                                   bottom-0.png ... (exemplars with heatmaps), histogram.png
    units/<slug>/unit.json         its record (written last: the unit is finished)
    atlas.json                     settings and every unit's row, for scripts
    settings.json                  the settings the cached units were made with (see cache.py)

The folder is the output policy's incremental kind (`claim(..., incremental=True)`): `begin`
marks it incomplete, each file is written atomically in place, `finish` lists the files. Units
are rendered in fixed batches of the unit list (`render.render_units`), so a resumed run renders
the same batches as an uninterrupted one and ends with the same files.
"""
from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field

import torch

from ..adapters import Adapter
from ..distributed import Ranks, render_batches
from ..inputs import Inputs
from ..report.files import write_json, write_text
from ..report.run_folder import Claim
from ..unit_kinds import UNIT_KINDS
from .cache import UnitCache, slugs
from .data import AtlasUnit, Dictionary, exemplars, unit_maps, unit_values
from .figures import class_label, save_am, save_exemplar, save_histogram
from .metrics import unit_class_means, unit_rows
from .pages import index_name, index_page, unit_page
from .render import RenderSettings, render_units


@dataclass(frozen=True)
class SiteSettings:
    """What the atlas shows besides the AM images: exemplars, paging, the class-response rule."""

    render: RenderSettings = field(default_factory=RenderSettings)
    top_k: int = 6
    per_page: int = 64
    respond_fraction: float = 0.5


def _cache(folder: Claim, units: list[AtlasUnit], settings: SiteSettings, source: dict) -> UnitCache:
    return UnitCache(folder.out, {**source, **asdict(settings), "units": [u.address for u in units]})


def prepare_atlas(folder: Claim, units: list[AtlasUnit], settings: SiteSettings, *, source: dict,
                  resume: bool = False) -> None:
    """Before any rendering, once (in the parent when several processes render): refuse a resume
    with other settings, mark the folder incomplete and record the settings. `source` describes the
    run (model, layer, data, ...)."""
    cache = _cache(folder, units, settings, source)
    cache.check(resume=resume)
    folder.begin(fresh=not resume)
    cache.open()


def write_atlas(folder: Claim, adapter: Adapter, units: list[AtlasUnit], inputs: Inputs, settings: SiteSettings,
                *, source: dict, dictionary: Dictionary | None = None, ranks: Ranks | None = None,
                progress: bool = True) -> dict | None:
    """Fill `folder` (after `prepare_atlas`) with the atlas of `units` over `inputs`; return atlas.json's
    content. With several processes (`ranks`), each renders its share of the pending batches, a round
    of one batch per process at a time; rank 0 alone writes (and returns), the others return None.
    """
    from tqdm.auto import tqdm

    ranks = ranks or Ranks()
    cache = _cache(folder, units, settings, source)
    names = slugs([u.address for u in units])
    size = settings.render.batch_size
    # Fixed batches of the whole unit list, whatever is cached, so a resumed run renders the same batches.
    batches = [todo for start in range(0, len(units), size)
               if (todo := [i for i in range(start, min(start + size, len(units))) if not cache.done(names[i])])]
    if ranks.main:
        images, labels = inputs.images, inputs.labels
        values = unit_values(adapter, units, images, dictionary)
        rows = unit_rows(values, labels, respond_fraction=settings.respond_fraction)
        meta = (f"{html.escape(str(source['model']))} \u00b7 layer <code>{html.escape(source['layer'])}</code> "
                f"\u00b7 {len(images)} images from {html.escape(source['data'])}"
                + (" \u00b7 classes: the model's predictions" if source.get("classes") == "predicted" else ""))
    bar = tqdm(total=len(units), initial=len(units) - sum(map(len, batches)), desc="atlas", unit="unit", leave=False,
               disable=not (progress and ranks.main))
    for first in range(0, len(batches), ranks.world):
        round_ = batches[first : first + ranks.world]
        rendered = render_batches(round_, 1, lambda b: render_units(adapter, [units[i].address for i in b.items[0]],
                                                                    settings.render), ranks=ranks)
        if rendered is None:  # another rank's process: rank 0 writes
            continue
        for todo, images_of in zip(round_, rendered):
            for i in todo:
                record = _write_unit(folder, adapter, units[i], names[i], images_of[units[i].address], values[:, i],
                                     rows[i], inputs, settings, dictionary, source.get("class_names"))
                nav = {"prev_href": f"{names[i - 1]}.html" if i else None,
                       "next_href": f"{names[i + 1]}.html" if i + 1 < len(units) else None}
                write_text(folder.out / "units" / f"{names[i]}.html",
                           unit_page(record, index_href=f"../{index_name(i // settings.per_page)}",
                                     meta=meta, **nav))
                cache.store(names[i], record)
                bar.update(1)
    bar.close()
    if not ranks.main:
        return None
    records = [cache.load(s) for s in names]
    pages = max(1, -(-len(units) // settings.per_page))
    title = f"Unit atlas: {source['layer']}"
    for p in range(pages):
        chunk = range(p * settings.per_page, min((p + 1) * settings.per_page, len(units)))
        entries = [{"address": records[i]["address"], "href": f"units/{names[i]}.html",
                    "thumb": f"units/{records[i]['files']['am'][0]}", "row": records[i]["row"]} for i in chunk]
        write_text(folder.out / index_name(p), index_page(entries, page=p, pages=pages, title=title, meta=meta,
                                                          labelled=labels is not None))
    summary = {**source, "settings": asdict(settings), "images": len(images), "labelled": labels is not None,
               "units": [{"address": r["address"], "page": f"units/{n}.html", **r["row"]}
                         for r, n in zip(records, names)]}
    write_json(folder.out / "atlas.json", summary)
    folder.finish()
    return summary


def _write_unit(folder: Claim, adapter: Adapter, unit: AtlasUnit, slug: str, rendered, column: torch.Tensor,
                row: dict, inputs: Inputs, settings: SiteSettings, dictionary: Dictionary | None,
                class_names: list[str] | None) -> dict:
    """Every file of one unit but its page and record; return the record (paths relative to `units/`,
    where the unit's page is)."""
    base = folder.out / "units" / slug
    files: dict = {"am": [], "top": [], "bottom": []}
    for c, image in enumerate(rendered.am):
        save_am(image, base / f"am-{c}.png")
        files["am"].append(f"{slug}/am-{c}.png")
    am_images = rendered.am if rendered.generated is None else torch.cat([rendered.am, rendered.generated[None]])
    am_values = unit_values(adapter, [unit], am_images, dictionary)[:, 0].tolist()
    record: dict = {"address": unit.address, "kind": unit.resolved.unit.kind, "row": row,
                    "reads": _reads(unit), "am_values": am_values[: len(rendered.am)]}
    if rendered.generated is not None:
        save_am(rendered.generated, base / "gen.png")
        files["generated"] = f"{slug}/gen.png"
        record.update(generator=settings.render.generator, generated_value=am_values[-1])
    top, bottom = exemplars(column, settings.top_k)
    chosen = top + bottom
    maps = unit_maps(adapter, unit, inputs.images[chosen], dictionary)
    vmax = float(maps.clamp_min(0).max()) if maps is not None else 0.0
    record["has_map"] = maps is not None
    for kind, idx, offset in (("top", top, 0), ("bottom", bottom, len(top))):
        record[kind] = []
        for j, i in enumerate(idx):
            save_exemplar(inputs.images[i], None if maps is None else maps[offset + j], vmax, base / f"{kind}-{j}.png")
            files[kind].append(f"{slug}/{kind}-{j}.png")
            entry = {"name": inputs.names[i], "value": float(column[i])}
            if inputs.labels is not None:
                entry["label"] = int(inputs.labels[i])
                entry["class"] = class_label(entry["label"], class_names)
            record[kind].append(entry)
    save_histogram(column, inputs.labels, am_values, base / "histogram.png", unit.address, class_names)
    files["histogram"] = f"{slug}/histogram.png"
    if inputs.labels is not None:
        record["class_means"] = {class_label(int(k), class_names): v
                                 for k, v in unit_class_means(column, inputs.labels).items()}
    record["files"] = files
    return record


def _reads(unit: AtlasUnit) -> str:
    kind = unit.resolved.unit.kind
    text = f"{kind}: {UNIT_KINDS.entry(kind).help}."
    if unit.latent:
        text += (" The table's values are how much the latent fires (the dictionary's code, averaged over an "
                 "image's positions); its AM images maximise the pre-activation.")
    return text


__all__ = ["SiteSettings", "write_atlas"]
