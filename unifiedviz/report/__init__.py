"""Outputs: atomic file writes, PNG images and labelled grids, run folders, and each command's writer."""
from .files import atomic_path, write_json, write_text
from .images import (labelled_grid, png_bytes, read_legend, save_labelled_grid, save_png,
                     save_sequence_plot, to_uint8, upscale_factor, write_image)
from .run_folder import claim
from .visualization import write_visualization

__all__ = ["atomic_path", "write_json", "write_text", "labelled_grid", "save_labelled_grid",
           "read_legend", "write_image", "png_bytes", "save_png", "save_sequence_plot", "to_uint8",
           "upscale_factor", "claim", "write_visualization"]
