"""Sequence Dreaming: activation maximisation for time-series models on real UCR/UEA data.

- `ucr`: `.ts` / `.tsv` loaders (`load_ucr`), aeon's bundled sets offline, download when online.
- `data`: real sequences in a model's [0, 1] input space (`model_sequences`).
- `dream`: centred-class and border AM with named regularisers (`dream`, `border_dream`).
- `measures`: class probability, high-frequency energy, Euclidean / DTW nearest-real distances.
- `plots`: each dreamed sequence over its class's real sequences (mean and band).
"""
from .data import from_unit_range, model_sequences, reference_set, to_unit_range
from .ucr import SequenceData, load_ucr, read_ucr_file

__all__ = [
           "SequenceData",
           "from_unit_range",
           "load_ucr",
           "model_sequences",
           "read_ucr_file",
           "reference_set",
           "to_unit_range",
]
