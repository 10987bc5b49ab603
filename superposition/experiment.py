"""Run a configured experiment end to end: baseline and/or active learning, metrics, plots, report.

Run folder:
    config.yaml          the resolved config (checked again on --resume)
    baseline/            model.safetensors
    active/round_XX/     labeled.npy, round.json, model.safetensors (newest round only)
    metrics.json         every number, per run (and per active-learning round)
    plots/*.png          embeddings by class, cosine histograms, active-learning curves
    report.md            baseline vs active learning side by side

Under DDP every process runs this same code (training is the collective part); only rank 0
writes files and measures, and every rank takes rank 0's active-learning queries (`active.py`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from lightning.pytorch.utilities import rank_zero_only
from torch import nn

from unifiedviz.adapters import Adapter
from unifiedviz.errors import UnifiedVizError
from unifiedviz.report import write_json, write_text
from unifiedviz.report.run_folder import Claim, claim

from .active import check_budget, new_model, run_active, stage_seed
from .config import ExperimentConfig, from_dict
from .data import SuperpositionData
from .io import load_weights, save_weights
from .measure import measure
from .plots import cosine_plot, embedding_plot, rounds_plot
from .report import write_report
from .strategies import strategy_layers
from .train import Progress, fit, inference_device

#: The command name recorded in the run folder's manifest.
COMMAND = "superposition run"
# Keys that may differ on --resume: they change where data lives or how it is shown, not results.
_RESUMABLE_CHANGES = {"data.root", "data.download", "data.num_workers", "train.progress_bar"}
_COSINE_KINDS = {"images": "per-image features", "class_means": "class-mean features",
                 "weights": "per-neuron weight vectors"}


def default_out_dir(cfg: ExperimentConfig) -> Path:
    return Path("runs") / "superposition" / cfg.name


def run_experiment(
    cfg: ExperimentConfig,
    out_dir: str | Path | None = None,
    *,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
) -> dict:
    """Train, measure and report; returns what metrics.json holds (empty on non-zero DDP ranks)."""
    out = Path(out_dir) if out_dir is not None else default_out_dir(cfg)
    rank0 = rank_zero_only.rank == 0
    folder = check_run_dir(out, cfg, resume=resume, force=force) if rank0 else None
    data = SuperpositionData(cfg.data, cfg.seed)
    data.setup()
    if "active" in cfg.runs:
        check_budget(cfg, len(data.train_set))
    check_layers(cfg, data)
    if folder is not None:  # only now, so that a config error leaves no folder behind
        folder.begin(fresh=not resume)
        write_text(out / "config.yaml", cfg.to_yaml())
    device = inference_device(cfg.train)
    measured = _measured_indices(cfg, len(data.test_set))
    test_loader = data.loader(data.test_set, measured)
    seed = stage_seed(cfg.seed, "measure")
    stages = Progress(enabled=progress and rank0)

    models: dict[str, tuple[nn.Module, int]] = {}
    rounds = None
    if "baseline" in cfg.runs:
        models["baseline"] = (train_baseline(cfg, data, out / "baseline", write=rank0, stages=stages),
                              len(data.train_set))
    if "active" in cfg.runs:
        def measure_round(model: nn.Module, name: str = "") -> dict:
            return measure(model, test_loader, cfg.metrics, device=device, seed=seed, full=False,
                           stages=stages, run_name=name)[0]

        model, rounds = run_active(cfg, data, out / "active", device=device,
                                   measure_round=measure_round if cfg.metrics.per_round and rank0 else None,
                                   write=rank0, progress=progress and rank0, stages=stages)
        models["active"] = (model, rounds[-1]["labeled"])
    if not rank0:
        return {}

    results, embeddings = {}, {}
    for run, (model, train_size) in models.items():
        results[run], embeddings[run] = measure(model, test_loader, cfg.metrics, device=device, seed=seed,
                                                progress=progress, stages=stages, run_name=f"final {run} model")
        results[run]["train_size"] = train_size
        if cfg.dictionary.enabled:  # an SAE on this final model's layer (superposition/dictionaries)
            from .dictionaries.experiment import dictionary_metrics

            with stages.stage(f"dictionary: a {cfg.dictionary.kind} SAE on {cfg.dictionary.layer} of the final "
                              f"{run} model, {cfg.dictionary.steps} steps", kind="dictionary", work=cfg.dictionary.steps):
                results[run]["dictionary"] = dictionary_metrics(
                    model, data.loader(data.train_set), test_loader, cfg.dictionary, seed=cfg.seed,
                    device=device, respond_fraction=cfg.metrics.respond_fraction)
    if rounds is not None:
        results["active"]["rounds"] = rounds
    labels = data.test_set.labels.numpy()
    if measured is not None:
        labels = labels[measured]
    figures = make_figures(out / "plots", cfg, results, embeddings, labels, data.class_names)
    summary = _summary(cfg, len(labels))
    metrics = {"summary": summary, **results}
    write_json(out / "metrics.json", metrics)
    write_report(out / "report.md", summary, results, figures, rounds, cfg.to_dict())
    folder.finish()
    return metrics


def check_run_dir(out: Path, cfg: ExperimentConfig, *, resume: bool, force: bool) -> Claim:
    """Claim `out` for this command (a foreign folder is refused); refuse to overwrite an earlier run
    unless told; on resume, insist on the same config."""
    if resume and force:
        raise UnifiedVizError("--resume and --force contradict each other: pass one")
    folder = claim(out, COMMAND, incremental=True)
    if folder.previous is None or force:
        return folder
    if not resume:
        raise UnifiedVizError(f"run folder {out} already exists: pass --resume to continue it or --force to start over")
    saved = out / "config.yaml"
    if not saved.is_file():
        raise UnifiedVizError(f"cannot resume {out}: it has no config.yaml; pick the run's folder with --out")
    before = _flatten(from_dict(yaml.safe_load(saved.read_text()), str(saved)).to_dict())
    now = _flatten(cfg.to_dict())
    changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k) and k not in _RESUMABLE_CHANGES)
    if changed:
        raise UnifiedVizError(f"cannot resume {out}: the config differs from the run's in {', '.join(changed)}; "
                              "use the same config, or pass --force to start over")
    return folder


def _flatten(d: dict, prefix: str = "") -> dict:
    flat = {}
    for k, v in d.items():
        if isinstance(v, dict):
            flat.update(_flatten(v, f"{prefix}{k}."))
        else:
            flat[f"{prefix}{k}"] = v
    return flat


def check_layers(cfg: ExperimentConfig, data: SuperpositionData) -> None:
    """Fail before training if a configured layer does not exist in the model."""
    adapter = Adapter(new_model(cfg, data))
    keys = [("metrics.layers", n) for n in cfg.metrics.layers] + [("metrics.cosine_layers", n) for n in cfg.metrics.cosine_layers]
    if cfg.dictionary.enabled:
        keys.append(("dictionary.layer", cfg.dictionary.layer))
    if "active" in cfg.runs:  # layers the strategy itself reads (core-set's feature layer)
        keys.extend(strategy_layers(cfg.active).items())
    for key, name in keys:
        try:
            adapter.layer(name)
        except UnifiedVizError as exc:
            raise UnifiedVizError(f"{key}: {exc}") from None


def train_baseline(cfg: ExperimentConfig, data: SuperpositionData, folder: Path, *, write: bool,
                   stages: Progress | None = None) -> nn.Module:
    """The model trained on the whole training set (reloaded if an earlier run finished it)."""
    model = new_model(cfg, data)  # same initial weights as active learning's round 0
    weights = folder / "model.safetensors"
    if weights.is_file():
        load_weights(model, weights)
        if stages:
            stages.say(f"baseline: reloaded the finished model from {weights}")
        return model
    data.use(None, shuffle_seed=stage_seed(cfg.seed, "baseline_shuffle"))
    n = len(data.train_set)
    stages = stages or Progress(enabled=False)
    with stages.stage(f"baseline: training on all {n} images, {cfg.train.epochs} epochs", kind="training",
                      work=n * cfg.train.epochs):
        fit(model, data, cfg.train, seed=stage_seed(cfg.seed, "baseline_fit"))
    if write:
        save_weights(model, weights)
    return model


def _measured_indices(cfg: ExperimentConfig, n_test: int) -> np.ndarray | None:
    k = cfg.metrics.max_samples
    if k is None or k >= n_test:
        return None
    return np.sort(np.random.default_rng(stage_seed(cfg.seed, "measure")).choice(n_test, size=k, replace=False))


def make_figures(folder: Path, cfg: ExperimentConfig, results: dict, embeddings: dict, labels: np.ndarray,
                 class_names: list[str]) -> list[Path]:
    figures = []
    for layer in cfg.metrics.layers:
        for method in cfg.metrics.embeddings:
            points = {run: embeddings[run][(layer, method)] for run in results}
            figures.append(embedding_plot(points, labels, class_names, f"{method} of {layer}",
                                          folder / f"{method}_{_safe(layer)}.png"))
    for layer in cfg.metrics.cosine_layers:
        for kind, text in _COSINE_KINDS.items():
            hists = {run: r["cosine"][layer][kind] for run, r in results.items() if kind in r["cosine"][layer]}
            pairs = {run: embeddings[run][("cosine", layer, kind)] for run in hists
                     if ("cosine", layer, kind) in embeddings.get(run, {})}
            if hists:
                figures.append(cosine_plot(hists, f"pairwise cosine, {text}, {layer}",
                                           folder / f"cosine_{kind}_{_safe(layer)}.png",
                                           pairs=pairs if len(pairs) == len(hists) else None, names=class_names))
    rounds = results.get("active", {}).get("rounds")
    if rounds and cfg.metrics.per_round:
        figures.append(rounds_plot(rounds, results.get("baseline"), (cfg.metrics.layers or [None])[0],
                                   (cfg.metrics.cosine_layers or [None])[0], folder / "active_rounds.png"))
    return figures


def _safe(layer: str) -> str:
    return layer.replace("#", "_")


def _summary(cfg: ExperimentConfig, measured: int) -> dict:
    a = cfg.active
    summary = {
        "name": cfg.name,
        "dataset": cfg.data.name,
        "model": cfg.model.name + (" (ImageNet-pretrained)" if cfg.model.pretrained else ""),
        "training": f"{cfg.train.epochs} epochs per fit, {cfg.train.optimizer} lr {cfg.train.lr}, "
                    f"batch {cfg.data.batch_size}, precision {cfg.train.precision}",
        "measured test images": measured,
        "seed": cfg.seed,
    }
    if "active" in cfg.runs:
        summary["active learning"] = (
            f"{a.strategy}, {a.initial_size} random then {a.rounds - 1} queries of {a.query_size}, "
            + ("warm start" if a.warm_start else "retrained each round")
        )
    return summary
