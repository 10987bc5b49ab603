"""unifiedviz: see what any unit of a CNN or ViT responds to, attack it, measure superposition.

    import unifiedviz as uv
    model = uv.load_model("builtin:digits-cnn")
    result = uv.visualize(model, "conv2:channel=0:8", steps=128)
    result.save("runs/digits")
"""
from .adapters import LOGITS, Adapter, LayerInfo, ResolvedUnit, as_adapter
from .engine import Result, StepInfo, render
from .errors import UnifiedVizError
from .inputs import load_inputs
from .models import InputSpec, VizModel, load_model
from .units import Unit, parse_units
from .visualize import Visualization, image_seeds, reference_max, unit_values, visualize

__version__ = "0.1.0"

__all__ = [
    "Adapter", "as_adapter", "LayerInfo", "ResolvedUnit", "LOGITS",
    "render", "Result", "StepInfo",
    "UnifiedVizError",
    "load_inputs",
    "InputSpec", "VizModel", "load_model",
    "Unit", "parse_units",
    "visualize", "Visualization", "image_seeds", "unit_values", "reference_max",
]
