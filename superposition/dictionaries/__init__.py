"""Sparse dictionaries (sparse autoencoders) on any layer's activations.

`sae.py` the TopK and ReLU+L1 autoencoders with dead-latent resampling; `buffer.py` the bounded
streaming buffer that reads activations through the Adapter; `train.py` Lightning training
(progress, checkpoints, resume); `metrics.py` reconstruction, sparsity, dictionary geometry,
stability across seeds and the class-selectivity comparison of latents against neurons.
See docs/dictionaries.md.
"""
from .buffer import ActivationBuffer, rows_of
from .sae import SparseAutoencoder, load_dictionary, save_dictionary

__all__ = ["ActivationBuffer", "SparseAutoencoder", "load_dictionary", "rows_of", "save_dictionary"]
