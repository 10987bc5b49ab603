"""Model sources (`timm:`, `torchvision:`, `hf:`, `tl:`, `builtin:`, `py:`, any nn.Module) and their input contract."""
from .blackbox import BlackBox
from .checkpoints import load_weights, read_state_dict
from .sources import load_model
from .spec import InputSpec, VizModel, as_viz_model

__all__ = ["BlackBox", "load_model", "load_weights", "read_state_dict", "InputSpec", "VizModel", "as_viz_model"]
