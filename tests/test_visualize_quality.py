"""Quality of feature visualisations on the shipped digits models (real weights, real data).

- Every class visualisation is classified as its class with probability > 0.9.
- Rendered images drive intermediate units above their maximum over the whole digits set.
"""
from __future__ import annotations

import pytest
import torch

import unifiedviz as uv
from unifiedviz.datasets import load_digits_images

MODELS = ["builtin:digits-cnn", "builtin:digits-vit"]
# Sampled intermediate units: conv channels and spatial neurons; ViT residual stream, MLP neurons, heads.
INTERMEDIATE = {
    "builtin:digits-cnn": ["conv2:channel=0:32:4", "conv3:channel=1:64:8", "conv3:neuron=3:64:8"],
    "builtin:digits-vit": ["blocks.1:channel=0:64:8", "blocks.2.mlp.fc1:neuron=5:128:16", "blocks.3.attn:head=0:4"],
}


@pytest.fixture(scope="module")
def digits():
    return load_digits_images("all")


@pytest.mark.parametrize("source", MODELS)
def test_class_visualisations_are_classified_as_their_class(source):
    model = uv.load_model(source)
    result = uv.visualize(model, "class=0:10", steps=128, progress=False)
    with torch.no_grad():
        probs = torch.softmax(model(result.images), 1)
    own = probs[torch.arange(10), torch.arange(10)]
    assert (own > 0.9).all(), own


@pytest.mark.parametrize("source", MODELS)
def test_intermediate_units_beat_their_maximum_over_the_data_set(source, digits):
    images, _ = digits
    model = uv.load_model(source)
    result = uv.visualize(model, INTERMEDIATE[source], steps=128, reference=images, progress=False)
    above = result.activations > result.reference_max
    assert above.float().mean() >= 0.9, [(n, float(a), float(m)) for n, a, m in
                                         zip(result.names, result.activations, result.reference_max)]
