"""Hook-based access to the intermediate units of any `nn.Module`.

An `Adapter` lists a model's layers (with canonical shapes), captures their activations with
forward hooks, and stops the forward pass as soon as every requested layer has fired, so an
early layer never pays for the whole network. Hooks, train/eval flags, `requires_grad` and
fused-attention switches are always restored, also when the forward pass raises.

A module called several times per forward (torchvision ResNets reuse one `relu` per block)
gets one layer per call: `layer1.0.relu` is the first call, `layer1.0.relu#1` the second.
"""
from __future__ import annotations

import contextlib
import difflib
import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
from torch import nn

from ..errors import UnifiedVizError
from ..models.sources import wrap_module
from ..models.spec import InputSpec, VizModel, as_viz_model, device_of
from ..units import Unit, parse_units
from .families import head_output_target, unfused_attention
from .layouts import Layout, first_tensor, infer_layout
from .transformer_lens import bridge_layers, is_bridge

#: Capture key of the model's output logits (units such as `class=3` with no layer).
LOGITS = "<logits>"


@dataclass(frozen=True)
class LayerInfo:
    """A hookable layer: `shape` is canonical and excludes the batch dimension."""

    name: str
    module_type: str
    shape: tuple[int, ...]
    layout: Layout

    def describe(self) -> str:
        extra = ", channels-last" if self.layout.channels_last else ""
        extra += f", {self.layout.prefix} prefix" if self.layout.prefix else ""
        return f"{self.layout.kind}{extra}"


@dataclass(frozen=True)
class ResolvedUnit:
    """A validated unit and where to read it: the captured layer, and heads to split D into."""

    unit: Unit
    target: str
    info: LayerInfo
    heads: int = 0
    direction: torch.Tensor | None = None


class _StopForward(Exception):
    """Raised from a hook once every requested layer has fired."""


class Adapter:
    """Wrap a model (any `nn.Module`, a TransformerLens bridge, or a `VizModel` from `load_model`)."""

    def __init__(self, model: nn.Module, spec: InputSpec | None = None) -> None:
        # HF and TransformerLens modules carry their own input contract; `spec` overrides it.
        self.model: VizModel = as_viz_model(model, spec) if spec is not None else wrap_module(model)
        net = self.model.net
        self.modules: dict[str, nn.Module] = (
            bridge_layers(net) if is_bridge(net) else {n: m for n, m in net.named_modules() if n}
        )
        self._layers: dict[str, LayerInfo] | None = None

    # ------------------------------------------------------------------ listing
    def layers(self, pattern: str | None = None) -> list[LayerInfo]:
        """Every layer that fires in a forward pass, in execution order; `pattern` is a glob."""
        infos = list(self._probe().values())
        if pattern:
            glob = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
            infos = [i for i in infos if fnmatch.fnmatchcase(i.name, glob)]
        return infos

    def layer(self, name: str) -> LayerInfo:
        layers = self._probe()
        if name in layers:
            return layers[name]
        if name in self.modules:
            raise UnifiedVizError(f"layer {name!r} exists but never runs in a forward pass of this model: pick another")
        close = difflib.get_close_matches(name, list(layers), n=5, cutoff=0.5)
        hint = f"closest: {', '.join(close)}" if close else "run `unifiedviz layers MODEL` to list them"
        raise UnifiedVizError(f"unknown layer {name!r}; {hint}")

    def _probe(self) -> dict[str, LayerInfo]:
        if self._layers is None:
            self._layers = self._run_probe()
        return self._layers

    def _run_probe(self) -> dict[str, LayerInfo]:
        seen: dict[str, LayerInfo] = {}
        calls: dict[str, int] = {}
        spec = self.model.spec

        def make_hook(name: str) -> Callable:
            def hook(module, inputs, output):
                k = calls.get(name, 0)
                calls[name] = k + 1
                t = first_tensor(output)
                if t is None or t.dim() < 2:
                    return
                key = name if k == 0 else f"{name}#{k}"
                if t.shape[0] != probe_batch:  # e.g. Swin's windows folded into the batch
                    layout = Layout("other")
                else:
                    layout = infer_layout(
                        name,
                        module,
                        t,
                        spatial_dims=len(spec.size),
                        square_input=len(set(spec.size)) == 1,
                        prefix_tokens=self.model.num_prefix_tokens,
                    )
                shape = tuple(layout.canonical(t).shape[1:])
                seen[key] = LayerInfo(key, type(module).__name__, shape, layout)

            return hook

        probe_batch = 2  # not 1, so layers that fold other things into the batch stand out
        x = torch.zeros((probe_batch, *spec.shape), device=device_of(self.model))
        with self._prepared(freeze=True), unfused_attention(self.modules), torch.no_grad():
            handles = [m.register_forward_hook(make_hook(n)) for n, m in self.modules.items()]
            try:
                logits = self.model(x)
            finally:
                for h in handles:
                    h.remove()
        seen[LOGITS] = LayerInfo(LOGITS, "output", tuple(logits.shape[1:]), Layout("vector"))
        return seen

    # ------------------------------------------------------------------ units
    def resolve(self, unit: Unit | str) -> ResolvedUnit:
        """Check a unit against the model (layer exists, index in range) and say where to read it."""
        if isinstance(unit, str):
            parsed = parse_units(unit)
            if len(parsed) != 1:
                raise UnifiedVizError(f"{unit!r} names {len(parsed)} units; resolve them one at a time")
            unit = parsed[0]
        heads = 0
        target = unit.layer if unit.layer is not None else LOGITS
        if unit.kind == "head":
            target, heads = self._head_target(unit)
        info = self.layer(target)
        direction = _load_direction(unit, info) if unit.kind == "direction" else None
        _check_ranges(unit, info, heads)
        return ResolvedUnit(unit, target, info, heads, direction)

    def _head_target(self, unit: Unit) -> tuple[str, int]:
        assert unit.layer is not None
        info = self.layer(unit.layer)
        if info.layout.kind in ("attention", "heads"):
            return unit.layer, 0
        module = self.modules[unit.layer.split("#")[0]]
        found = head_output_target(unit.layer, module, self.modules)
        if found is None:
            # HF attention computes probabilities in a function and merges heads only inside o_proj.
            hint = ("its heads never leave it as a module output: load a Hugging Face ViT as tl:DIR and address "
                    "'blocks.N.attn:head=H'") if hasattr(module, "o_proj") else (
                    "address the attention module itself (e.g. 'blocks.4.attn:head=2') or its probabilities "
                    "('blocks.4.attn.attn_drop')")
            raise UnifiedVizError(f"layer {unit.layer!r} is not an attention module with per-head outputs: {hint}")
        target, heads = found
        # Already split per head (e.g. HookedTransformer's [B,T,heads,d] hook_z): nothing to reshape.
        return target, 0 if self.layer(target).layout.kind == "heads" else heads

    # ------------------------------------------------------------------ capture
    def capture(
        self,
        x: torch.Tensor,
        targets: Iterable[str | Unit] | str,
        *,
        stop_early: bool = True,
        freeze: bool = True,
    ) -> dict[str, torch.Tensor]:
        """Activations of `targets` (layer names, units or addresses) for inputs `x` in [0, 1].

        Keys are layer names (`LOGITS` for the model output). Gradients flow back to `x`.
        """
        with self.session(targets, stop_early=stop_early, freeze=freeze) as run:
            return run(x)

    @contextlib.contextmanager
    def session(
        self, targets: Iterable[str | Unit] | str, *, stop_early: bool = True, freeze: bool = True
    ) -> Iterator[Callable[[torch.Tensor], dict[str, torch.Tensor]]]:
        """Set up hooks once and yield `run(x) -> activations`, for loops such as the AM engine."""
        names = self._target_names(targets)
        wanted = [n for n in names if n != LOGITS]
        need_logits = LOGITS in names
        by_module: dict[str, list[str]] = {}
        for n in wanted:
            by_module.setdefault(n.split("#")[0], []).append(n)
        store: dict[str, torch.Tensor] = {}
        calls: dict[str, int] = {}
        stop_when_done = stop_early and not need_logits
        # Hooks act only inside this session's own run(): other forward passes of the model
        # (a bare call, another open session) must not be captured or stopped.
        running = False

        def make_hook(module_name: str) -> Callable:
            def hook(module, inputs, output):
                if not running:
                    return
                k = calls.get(module_name, 0)
                calls[module_name] = k + 1
                key = module_name if k == 0 else f"{module_name}#{k}"
                if key not in wanted_set:
                    return
                t = first_tensor(output)
                done = stop_when_done and len(store) + 1 == len(wanted_set)
                # Clone unless we stop right here: later in-place ops (ReLU(inplace), x += y)
                # would otherwise rewrite what we captured.
                store[key] = layouts[key].canonical(t if done else t.clone())
                if done:
                    raise _StopForward

            return hook

        wanted_set = set(wanted)
        layouts = {n: self.layer(n).layout for n in wanted}
        probs = [n for n in wanted if n.endswith("attn_drop")]
        with self._prepared(freeze=freeze), unfused_attention(self.modules, probs) if probs else _nothing():
            handles = [self.modules[m].register_forward_hook(make_hook(m)) for m in by_module]
            try:

                def run(x: torch.Tensor) -> dict[str, torch.Tensor]:
                    nonlocal running
                    self.model.spec.check(x)
                    store.clear()
                    calls.clear()
                    running = True
                    try:
                        logits = self.model(x)
                    except _StopForward:
                        logits = None
                    finally:
                        running = False
                    out = dict(store)
                    if need_logits:
                        out[LOGITS] = logits
                    missing = wanted_set - set(out)
                    if missing:
                        raise RuntimeError(f"layers {sorted(missing)} did not fire in this forward pass")
                    return out

                yield run
            finally:
                for h in handles:
                    h.remove()

    def _target_names(self, targets: Iterable[str | Unit] | str) -> list[str]:
        if isinstance(targets, (str, Unit)):
            targets = [targets]
        names: list[str] = []
        for t in targets:
            if isinstance(t, Unit):
                name = self.resolve(t).target
            elif ":" in t or "=" in t:
                name = self.resolve(t).target
            else:
                name = t if t == LOGITS else self.layer(t).name
            if name not in names:
                names.append(name)
        if not names:
            raise UnifiedVizError("nothing to capture: name at least one layer or unit")
        return names

    @contextlib.contextmanager
    def _prepared(self, *, freeze: bool) -> Iterator[None]:
        """eval mode and (optionally) frozen weights, restored exactly afterwards."""
        modes = [(m, m.training) for m in self.model.modules()]
        grads = [(p, p.requires_grad) for p in self.model.parameters()] if freeze else []
        self.model.eval()
        for p, _ in grads:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for m, training in modes:
                m.training = training
            for p, flag in grads:
                p.requires_grad_(flag)


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


def _check_ranges(unit: Unit, info: LayerInfo, heads: int) -> None:
    kind, shape = info.layout.kind, info.shape
    where = f"layer {info.name!r} ({info.describe()} {list(shape)})" if info.name != LOGITS else "the model output"

    def check(what: str, value: int | None, size: int) -> None:
        if value is not None and not 0 <= value < size:
            plural = "classes" if what == "class" else f"{what}s"
            raise UnifiedVizError(f"{what} {value} is out of range for {where}: valid {plural} are 0..{size - 1}")

    if kind == "other":
        raise UnifiedVizError(
            f"no unit reads {where}: its layout is not a conv map, token sequence or vector; "
            "capture it raw with Adapter.capture or pick a neighbouring layer"
        )
    if unit.kind in ("channel", "neuron", "class"):
        size = {"conv": 0, "sequence": 0, "tokens": -1, "vector": -1, "heads": -1}.get(kind)
        if size is None:
            raise UnifiedVizError(f"{unit.kind}= does not apply to {where}: use head= for attention layers")
        check(unit.kind, unit.index, shape[size])
    if unit.kind == "head":
        check("head", unit.index, heads or (shape[0] if kind == "attention" else shape[1]))
    if unit.token is not None:
        if kind not in ("tokens", "heads", "attention"):
            raise UnifiedVizError(f"token= needs a token layer, but {where} is not one: drop token= or pick a ViT layer")
        tokens = shape[1] if kind == "attention" else shape[0]
        if unit.token == "cls":
            if not info.layout.prefix:
                raise UnifiedVizError(f"token=cls: {where} has no CLS/prefix token; give a token index instead")
        else:
            check("token", int(unit.token), tokens)
    if unit.y is not None or unit.x is not None:
        if kind not in ("conv", "sequence"):
            raise UnifiedVizError(f"y=/x= positions need a conv layer, but {where} is {kind}; use token= for ViTs")
        if kind == "conv":
            check("y", unit.y, shape[1])
            check("x", unit.x, shape[2])
        else:
            check("x", unit.x, shape[1])


def _load_direction(unit: Unit, info: LayerInfo) -> torch.Tensor:
    path = Path(unit.direction or "")
    if not path.is_file():
        raise UnifiedVizError(f"direction file {str(path)!r} not found: save a 1-D vector with numpy.save")
    try:
        vec = np.load(path, allow_pickle=False)  # never unpickle a user file
    except ValueError as exc:
        raise UnifiedVizError(f"cannot read direction file {str(path)!r} ({exc}): save it with numpy.save") from None
    kind, shape = info.layout.kind, info.shape
    width = shape[0] if kind in ("conv", "sequence") else shape[-1]
    if vec.ndim != 1 or vec.shape[0] != width:
        raise UnifiedVizError(
            f"direction in {str(path)!r} has shape {list(vec.shape)} but layer {info.name!r} has {width} "
            f"features: save a 1-D vector of length {width}"
        )
    return torch.as_tensor(vec, dtype=torch.float32)
