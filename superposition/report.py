"""The side-by-side Markdown report of a run: baseline vs active learning."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from unifiedviz.report import write_text


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        text = "nan" if value != value else f"{value:.4f}"
        return "0.0000" if text == "-0.0000" else text
    return str(value)


def _rows(results: dict, layers: list[str], cosine_layers: list[str], embeddings: list[str]):
    """(label, getter) for every metric in the table, in reading order."""
    rows: list[tuple[str, Callable[[dict], object]]] = [
        ("training images", lambda m: m["train_size"]),
        ("test accuracy", lambda m: m["accuracy"]),
    ]
    for layer in layers:
        rows += [
            (f"silhouette, raw `{layer}` (higher: classes better separated)",
             lambda m, l=layer: m["layers"][l]["raw"]["silhouette"]),
            (f"Davies-Bouldin, raw `{layer}` (lower: better separated)",
             lambda m, l=layer: m["layers"][l]["raw"]["davies_bouldin"]),
        ]
        for method in embeddings:
            rows += [
                (f"silhouette, {method} 2-D of `{layer}`", lambda m, l=layer, e=method: m["layers"][l][e]["silhouette"]),
                (f"Davies-Bouldin, {method} 2-D of `{layer}`",
                 lambda m, l=layer, e=method: m["layers"][l][e]["davies_bouldin"]),
            ]
        rows += [
            (f"class selectivity, mean over units of `{layer}`",
             lambda m, l=layer: m["layers"][l]["units"]["selectivity_mean"]),
            (f"classes per unit, mean (`{layer}`)", lambda m, l=layer: m["layers"][l]["units"]["classes_per_unit_mean"]),
            (f"polysemantic units (respond to >1 class), fraction (`{layer}`)",
             lambda m, l=layer: m["layers"][l]["units"]["polysemantic_fraction"]),
            (f"dead units (`{layer}`)", lambda m, l=layer: m["layers"][l]["units"]["dead"]),
        ]
    dictionary = next((r["dictionary"] for r in results.values() if "dictionary" in r), None)
    if dictionary is not None:  # the config's dictionary section: an SAE on each final model's layer
        d, n = f"`{dictionary['layer']}`", dictionary["config"]["n_latents"]

        def dic(*keys):
            def get(m):
                v = m.get("dictionary")
                for k in keys:
                    v = None if v is None else v[k]
                return v
            return get

        rows += [
            (f"dictionary explained variance ({n}-latent {dictionary['config']['kind']} SAE on {d})",
             dic("reconstruction", "explained_variance")),
            (f"dictionary L0, latents firing per row ({d})", dic("reconstruction", "l0")),
            (f"dictionary dead latents, of {n} ({d})", dic("reconstruction", "dead")),
            (f"classes per neuron, mean ({d}, per image)", dic("selectivity", "neurons", "classes_per_unit_mean")),
            (f"classes per latent, mean ({d}, per image)", dic("selectivity", "latents", "classes_per_unit_mean")),
            (f"class selectivity per neuron, mean ({d})", dic("selectivity", "neurons", "selectivity_mean")),
            (f"class selectivity per latent, mean ({d})", dic("selectivity", "latents", "selectivity_mean")),
        ]
    for layer in cosine_layers:
        for kind, text in (("images", "per-image features"), ("class_means", "class-mean features"),
                           ("weights", "per-neuron weight vectors")):
            rows.append((f"mean cosine, {text} `{layer}`",
                         lambda m, l=layer, k=kind: m["cosine"][l][k]["mean"] if k in m["cosine"][l] else None))
    return rows


def write_report(path: Path, summary: dict, results: dict, figures: list[Path], rounds: list[dict] | None,
                 config: dict) -> str:
    """Markdown text of the report (also written to `path`); figures are linked relative to it."""
    runs = list(results)
    m = config["metrics"]
    lines = [f"# Superposition: {summary['name']}", ""]
    lines += [f"- **{k}**: {v}" for k, v in summary.items() if k != "name"]
    lines += ["", "## " + " vs ".join(runs), ""]
    header = ["metric", *runs] + (["active − baseline"] if runs == ["baseline", "active"] else [])
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, get in _rows(results, m["layers"], m["cosine_layers"], m["embeddings"]):
        values = [get(results[r]) for r in runs]
        cells = [label, *map(_fmt, values)]
        if len(header) > len(runs) + 1:
            a, b = values
            numeric = isinstance(a, (int, float)) and isinstance(b, (int, float))
            cells.append(_fmt(b - a) if numeric else "–")
        lines.append("| " + " | ".join(cells) + " |")
    if rounds:
        layer = m["layers"][0] if m["layers"] else None
        cos = m["cosine_layers"][0] if m["cosine_layers"] else None
        lines += ["", "## Active-learning rounds", ""]
        head = ["round", "labelled", "added", "accuracy"]
        head += [f"silhouette `{layer}`", f"Davies-Bouldin `{layer}`"] if layer else []
        head += [f"mean cosine `{cos}`"] if cos else []
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in rounds:
            cells = [r["round"], r["labeled"], r["added"], r.get("accuracy")]
            if layer:
                raw = r["layers"][layer]["raw"] if "layers" in r else {}
                cells += [raw.get("silhouette"), raw.get("davies_bouldin")]
            if cos:
                cells.append(r["cosine"][cos]["images"]["mean"] if "cosine" in r else None)
            lines.append("| " + " | ".join(map(_fmt, cells)) + " |")
    if figures:
        lines += ["", "## Figures", ""]
        for fig in figures:
            rel = fig.relative_to(path.parent).as_posix()
            lines += [f"![{fig.stem}]({rel})", ""]
    text = "\n".join(lines).rstrip() + "\n"
    write_text(path, text)
    return text
