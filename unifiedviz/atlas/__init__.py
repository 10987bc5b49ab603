"""The unit atlas: a static, self-contained HTML site of a layer's units (`unifiedviz atlas`).

    data.py     which units (LAYER[:selector], dictionary latents), their values over the data,
                exemplars and spatial maps
    metrics.py  the index's columns, by superposition.metrics.unit_selectivity
    render.py   the AM images: `render_units`, the one function a multi-process renderer plugs into
    figures.py  the PNG files (AM images, exemplars with heatmaps, histograms)
    pages.py    the HTML (index with sorting and filtering, a page per unit)
    cache.py    finished units and their settings (resume)
    site.py     `prepare_atlas` (once), then `write_atlas` (every process): all of it into an incremental run folder

See docs/atlas.md.
"""
from .data import AtlasUnit, Dictionary, atlas_units, predicted_labels, unit_values
from .render import RenderSettings, render_units
from .site import SiteSettings, prepare_atlas, write_atlas

__all__ = ["AtlasUnit", "Dictionary", "atlas_units", "predicted_labels", "unit_values", "RenderSettings", "render_units", "SiteSettings",
           "prepare_atlas", "write_atlas"]
