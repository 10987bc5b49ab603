"""One string names a model everywhere: `timm:NAME`, `torchvision:NAME`, `hf:LOCAL_DIR`, `tl:LOCAL_DIR`,
`builtin:NAME`, `py:FILE.py[:FACTORY]`.

Every loader returns a `VizModel` that carries its input contract, so the rest of the toolkit
can feed it [0, 1] images; the contract arguments of `load_model` override it. Weights never
come from pickled code (see checkpoints.py).
"""
from __future__ import annotations

import difflib
import warnings
import json
from pathlib import Path
from typing import Callable, Sequence

from torch import nn

from ..errors import UnifiedVizError
from .bridges import is_bridge
from .checkpoints import load_weights
from .contract import merge_contract, parse_contract
from .spec import InputSpec, VizModel, as_viz_model

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_model(
    source: str | nn.Module,
    *,
    pretrained: bool = False,
    weights: str | Path | None = None,
    num_classes: int | None = None,
    input_size: int | Sequence[int] | None = None,
    channels: int | None = None,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
    class_names: Sequence[str] | None = None,
    spec: InputSpec | None = None,
    time_steps: int | None = None,
) -> VizModel:
    """Build the model `source` names (in eval mode), ready for [0, 1] inputs.

    `source` is a string such as "timm:vit_tiny_patch16_224", "torchvision:resnet18",
    "hf:./my_vit", "tl:./my_vit" (that HF model inside a TransformerLens bridge),
    "builtin:digits-cnn", "py:my_nets.py:resnet56" (calls `resnet56()` from that file, which
    runs its code: see py_source.py), or an `nn.Module` (including TransformerLens bridges).
    `weights` is a checkpoint (.safetensors or a weights-only torch file) loaded into the
    architecture; `pretrained` asks timm/torchvision for their published weights.

    The input contract (what the model expects of its [0, 1] input) comes from the source;
    these override it, for any source: `input_size` (an int for square images, (H, W), or (L,)
    for 1-D inputs), `channels`, `mean` and `std` (a number for every channel or one per
    channel), or all of it as `spec=InputSpec(...)` (not together with the others);
    `class_names` names the outputs. A plain module carries no contract: without these it is
    guessed as 3x224x224 without normalisation, with a warning. `time_steps` sets the steps a
    time-stepped model (one with a `num_steps`, e.g. the spiking `builtin:cifar10-snn`) runs.
    """
    contract = parse_contract(input_size=input_size, channels=channels, mean=mean, std=std, spec=spec)
    names = _class_names(class_names)
    if isinstance(source, nn.Module):
        model = wrap_module(source)
        label = f"this {type(source).__name__}"
    elif isinstance(source, str):
        scheme, sep, name = source.partition(":")
        if not sep or not name or scheme not in _LOADERS:
            raise UnifiedVizError(
                f"cannot read model source {source!r}: write SCHEME:NAME with SCHEME one of "
                f"{', '.join(_LOADERS)} (e.g. 'timm:resnet18', 'builtin:digits-cnn', 'py:my_net.py:build_model')"
            )
        model = _LOADERS[scheme](name, pretrained=pretrained, num_classes=num_classes).eval()
        label = model.source
    else:
        raise UnifiedVizError(f"model source must be a string or an nn.Module, not {type(source).__name__}")
    if contract is not None or names is not None:
        new_spec = model.spec if contract is None else merge_contract(model.spec, contract)
        guessed = model.spec_guessed and contract is None
        model = _with_contract(model, new_spec, names)
        model.spec_guessed = guessed
    if model.spec_guessed and not isinstance(source, VizModel):  # a VizModel's contract was chosen
        warnings.warn(
            f"{label} carries no input contract, so it is guessed as 3x224x224 without normalisation: "
            "pass it, e.g. load_model(net, input_size=(32, 32), mean=(...), std=(...)) "
            "(and channels=C if not 3), or spec=InputSpec(...)",
            UserWarning, stacklevel=2,
        )
    if time_steps is not None:
        _set_time_steps(model, label, time_steps)
    if weights is not None:
        load_weights(model.net, weights)
    elif isinstance(source, str) and source.startswith("builtin:") and not _ships_weights(source[8:]):
        warnings.warn(f"{source} ships no weights, so it is randomly initialised: pass weights=PATH (--weights)",
                      stacklevel=2)
    return model


def _set_time_steps(model: VizModel, label: str, steps: int) -> None:
    if not hasattr(model.net, "num_steps"):
        raise UnifiedVizError(f"{label} is not time-stepped (it has no num_steps): time_steps / --time-steps is for "
                              "spiking models such as builtin:cifar10-snn")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise UnifiedVizError(f"time_steps must be a whole number of at least 1, got {steps!r}")
    model.net.num_steps = steps


def _with_contract(model: VizModel, spec: InputSpec, class_names: list[str] | None) -> VizModel:
    """A new VizModel around the same net with `spec` (and `class_names`, if given)."""
    out = VizModel(model.net, spec, source=model.source, num_prefix_tokens=model.num_prefix_tokens,
                   class_names=model.class_names if class_names is None else class_names)
    return out.train(model.training)


def _class_names(names) -> list[str] | None:
    if names is None:
        return None
    if isinstance(names, (str, bytes)) or not isinstance(names, Sequence) or not names \
            or not all(isinstance(n, str) for n in names):
        raise UnifiedVizError(
            f"class_names must be a non-empty list of strings, one per output, not {names!r}: "
            "e.g. class_names=['cat', 'dog']"
        )
    return list(names)


def _ships_weights(name: str) -> bool:
    from .builtin import weights_path

    return weights_path(name).is_file()


def _timm(name: str, *, pretrained: bool, num_classes: int | None) -> VizModel:
    import timm

    if not timm.is_model(name):  # not list_models(name): that accepts wildcards such as 'resnet*'
        _unknown("timm", name, timm.list_models())
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    net = _fetch(lambda: timm.create_model(name, pretrained=pretrained, **kwargs), "timm", name, pretrained)
    cfg = net.pretrained_cfg or {}
    spec = _timm_spec(cfg)
    classes = cfg.get("label_names") if pretrained else None
    return VizModel(net, spec, source=f"timm:{name}", num_prefix_tokens=int(getattr(net, "num_prefix_tokens", 0)),
                    class_names=classes)


def _torchvision(name: str, *, pretrained: bool, num_classes: int | None) -> VizModel:
    import torchvision

    names = torchvision.models.list_models()
    if name not in names:
        _unknown("torchvision", name, names)
    default = torchvision.models.get_model_weights(name).DEFAULT
    kwargs: dict = {"weights": default if pretrained else None}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    net = _fetch(lambda: torchvision.models.get_model(name, **kwargs), "torchvision", name, pretrained)
    # The weights' preprocessing gives the input contract without downloading anything.
    preprocess = default.transforms()
    size = int(getattr(preprocess, "crop_size", [224])[0])
    spec = InputSpec((size, size), 3, tuple(getattr(preprocess, "mean", IMAGENET_MEAN)),
                     tuple(getattr(preprocess, "std", IMAGENET_STD)))
    classes = default.meta.get("categories") if pretrained else None
    return VizModel(net, spec, source=f"torchvision:{name}", class_names=classes)


def _hf(name: str, *, pretrained: bool, num_classes: int | None) -> VizModel:
    return hf_viz_model(_hf_net(name, "hf"), Path(name), source=f"hf:{name}")


def _tl(name: str, *, pretrained: bool, num_classes: int | None) -> VizModel:
    from .bridges import boot_bridge

    bridge = boot_bridge(_hf_net(name, "tl"), name)
    return _bridge_viz_model(bridge, folder=Path(name), source=f"tl:{name}")


def _hf_net(name: str, scheme: str) -> nn.Module:
    folder = Path(name)
    if not (folder / "config.json").is_file():
        raise UnifiedVizError(
            f"{scheme}:{name}: no config.json there; save a Hugging Face image classifier with "
            f"model.save_pretrained(DIR) and pass {scheme}:DIR"
        )
    from transformers import AutoModelForImageClassification

    try:
        net = AutoModelForImageClassification.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:  # not an image classifier, or files missing
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnifiedVizError(
            f"{scheme}:{name} is not a loadable Hugging Face image classifier ({first[:160]}); "
            "save one with model.save_pretrained(DIR)"
        ) from None
    net.config.return_dict = True
    return net


def hf_viz_model(net: nn.Module, folder: Path | None = None, *, source: str = "hf") -> VizModel:
    """Wrap a Hugging Face image classifier, reading its preprocessing if saved beside it."""
    cfg = net.config
    size = getattr(cfg, "image_size", 224)
    size = (size, size) if isinstance(size, int) else tuple(size)
    mean, std = (0.5,) * 3, (0.5,) * 3
    pre = folder / "preprocessor_config.json" if folder else None
    if pre is not None and pre.is_file():
        data = json.loads(pre.read_text())
        mean, std = tuple(data.get("image_mean", mean)), tuple(data.get("image_std", std))
    channels = getattr(cfg, "num_channels", 3)
    labels = getattr(cfg, "id2label", None) or {}
    classes = [labels[i] for i in sorted(labels)] if labels else None
    # ViT has a CLS token; DeiT's distilled variant adds a distillation token.
    prefix = 2 if "Teacher" in type(net).__name__ else (1 if cfg.model_type in ("vit", "deit") else 0)
    return VizModel(net, InputSpec(size, channels, mean[:channels], std[:channels]), source=source,
                    num_prefix_tokens=prefix, class_names=classes)


def _builtin(name: str, *, pretrained: bool, num_classes: int | None) -> VizModel:
    from .builtin import build_builtin

    if num_classes is not None:
        raise UnifiedVizError("built-in models have a fixed number of classes: drop num_classes")
    return build_builtin(name)


def _py(name: str, *, pretrained: bool, num_classes: int | None) -> VizModel:
    from .py_source import build_from_file

    if pretrained or num_classes is not None:
        raise UnifiedVizError(
            f"py:{name}: the factory is called without arguments, so --pretrained/num_classes do not apply: "
            "build the model you want in the factory (load published weights there, or pass weights=PATH)"
        )
    net, source = build_from_file(name)
    model = wrap_module(net)
    if model.source == "module":
        model.source = source
    return model


def wrap_module(module: nn.Module) -> VizModel:
    """A VizModel for a module, with the input contract it carries (HF config, TL bridge, timm cfg).

    A module with none gets the 3x224x224 guess, flagged `spec_guessed` (load_model warns).
    """
    if isinstance(module, VizModel):
        return module
    if is_bridge(module):
        return _bridge_viz_model(module, source=f"tl:{type(module).__name__}")
    if hasattr(module, "config") and hasattr(getattr(module, "config"), "model_type"):
        return hf_viz_model(module, source=f"hf:{type(module).__name__}")
    cfg = getattr(module, "pretrained_cfg", None)
    if isinstance(cfg, dict) and "input_size" in cfg:  # a timm model: its cfg has size and mean/std
        return as_viz_model(module, _timm_spec(cfg))
    return as_viz_model(module)


def _timm_spec(cfg: dict) -> InputSpec:
    c, h, w = cfg.get("input_size", (3, 224, 224))
    return InputSpec((h, w), c, tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD)))


def _bridge_viz_model(bridge: nn.Module, *, folder: Path | None = None, source: str) -> VizModel:
    """The bridge's input contract is that of the HF model it wraps; the bridge returns logits."""
    from .bridges import original_model

    hf = hf_viz_model(original_model(bridge), folder)
    return VizModel(bridge, hf.spec, source=source, num_prefix_tokens=hf.num_prefix_tokens,
                    class_names=hf.class_names)


def _fetch(build: Callable[[], nn.Module], library: str, name: str, pretrained: bool) -> nn.Module:
    try:
        return build()
    except Exception as exc:
        if not pretrained:
            raise
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnifiedVizError(
            f"could not download pretrained weights for {library}:{name} ({reason[:160]}); "
            "check the network, or drop --pretrained and pass --weights PATH to a local checkpoint"
        ) from None


def _unknown(library: str, name: str, names: list[str]) -> None:
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.6)
    hint = f"closest: {', '.join(close)}" if close else f"see {library}'s model list"
    raise UnifiedVizError(f"unknown {library} model {name!r}; {hint}")


_LOADERS: dict[str, Callable[..., VizModel]] = {
    "timm": _timm,
    "torchvision": _torchvision,
    "hf": _hf,
    "tl": _tl,
    "builtin": _builtin,
    "py": _py,
}
