"""Superposition through an active-learning lens: train a baseline and an active-learning model,
then measure how entangled their representations are (clustering, cosine similarity, unit
selectivity). Run from a config with `unifiedviz superposition run CONFIG`.

Names are imported on first use, so that building the `unifiedviz` command line (which
imports `superposition.cli`) does not pay for Lightning, matplotlib and friends.
"""
from importlib import import_module

_EXPORTS = {
    "ExperimentConfig": "config",
    "load_config": "config",
    "SuperpositionData": "data",
    "build_model": "models",
    "Features": "features",
    "extract": "features",
    "accuracy": "metrics",
    "silhouette": "metrics",
    "davies_bouldin": "metrics",
    "cosine_histogram": "metrics",
    "class_means": "metrics",
    "unit_selectivity": "metrics",
    "embed_2d": "metrics",
    "least_confidence": "strategies",
    "margin": "strategies",
    "entropy": "strategies",
    "bald": "strategies",
    "k_center_greedy": "strategies",
    "query": "strategies",
    "STRATEGIES": "strategies",
    "METRICS": "metrics",
    "EMBEDDINGS": "metrics",
    "run_active": "active",
    "measure": "measure",
    "run_experiment": "experiment",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'superposition' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
