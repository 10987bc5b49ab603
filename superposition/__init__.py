"""Superposition through an active-learning lens: train a baseline and an active-learning model,
then measure how entangled their representations are (clustering, cosine similarity, unit
selectivity). Run from a config with `unifiedviz superposition run CONFIG`."""
from .active import run_active
from .config import ExperimentConfig, load_config
from .data import SuperpositionData
from .experiment import run_experiment
from .features import Features, extract
from .measure import measure
from .metrics import (
    accuracy,
    class_means,
    cosine_histogram,
    davies_bouldin,
    embed_2d,
    silhouette,
    unit_selectivity,
)
from .models import build_model
from .strategies import bald, entropy, k_center_greedy, least_confidence, margin, query

__all__ = [
    "ExperimentConfig",
    "Features",
    "SuperpositionData",
    "accuracy",
    "bald",
    "build_model",
    "class_means",
    "cosine_histogram",
    "davies_bouldin",
    "embed_2d",
    "entropy",
    "extract",
    "k_center_greedy",
    "least_confidence",
    "load_config",
    "margin",
    "measure",
    "query",
    "run_active",
    "run_experiment",
    "silhouette",
    "unit_selectivity",
]
