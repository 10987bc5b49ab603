"""Outputs: atomic file writes, PNG images and grids, run folders, and each command's writer."""
from .files import atomic_path, write_json, write_text
from .images import image_grid, save_png, save_sequence_plot, to_uint8, upscale_factor
from .run_folder import claim
from .visualization import write_visualization

__all__ = ["atomic_path", "write_json", "write_text", "image_grid", "save_png", "save_sequence_plot", "to_uint8",
           "upscale_factor", "claim", "write_visualization"]
