"""Hook-based access to the intermediate units of any `nn.Module`.

An `Adapter` lists a model's layers (with canonical shapes), captures their activations with
forward hooks, and stops the forward pass as soon as every requested layer has fired, so an
early layer never pays for the whole network. Hooks, train/eval flags, `requires_grad` and
fused-attention switches are always restored, also when the forward pass raises.

A module called several times per forward (torchvision ResNets reuse one `relu` per block, a
recurrent or spiking module fires once per time step) gets one layer per call: `layer1.0.relu`
is the first call, `layer1.0.relu#1` the second; when every call has the same shape, `name#*`
is all of them summed (spike counts) and `name#mean` their mean (rates). A *time-stepped*
module (a spiking neuron, an RNN cell, anything that fires as often as they do or as the
model's `num_steps`) is listed as that one layer, not once per step. Names are read and
written by `layouts.split_call` / `layouts.call_name` / `layouts.aggregate_of` only.

What a unit reads and which addresses are in range is asked of the layout objects
(`layouts.py`) and the unit-kind registry (`unit_kinds/`), never decided here.
"""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import fnmatch
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import nn

from ..errors import UnifiedVizError
from ..models.sources import wrap_module
from ..models.spec import InputSpec, VizModel, as_viz_model, device_of
from ..unit_kinds import UNIT_KINDS
from ..units import Unit, parse_units
from .families import unfused_attention
from .layouts import (
    Layout,
    OtherLayout,
    VectorLayout,
    aggregate_of,
    call_name,
    first_tensor,
    infer_layout,
    replace_first_tensor,
    split_call,
)
from .transformer_lens import bridge_layers, is_bridge

#: Capture key of the model's output logits (units such as `class=3` with no layer).
LOGITS = "<logits>"


@dataclass(frozen=True)
class LayerInfo:
    """A hookable layer: `shape` is canonical and excludes the batch dimension.

    `calls` > 1 marks an aggregate layer: `name#*` the sum of that many calls of the module (a
    spike count), `name#mean` their mean (a rate); `time_stepped` says the module fires once
    per time step (listed as one layer by default).
    """

    name: str
    module_type: str
    shape: tuple[int, ...]
    layout: Layout
    calls: int = 1
    time_stepped: bool = False

    @property
    def reduce(self) -> str | None:
        """How the calls are combined: "sum" (`#*`), "mean" (`#mean`), None for one call."""
        return aggregate_of(self.name)

    @property
    def module(self) -> str:
        """The module's name, without a call suffix."""
        return split_call(self.name)[0]

    @property
    def call(self) -> int | None:
        """Which call of the module this layer is (0 first; None: every call, summed)."""
        return split_call(self.name)[1]

    def describe(self) -> str:
        text = self.layout.describe()
        if self.calls == 1:
            return text
        what = "time steps" if self.time_stepped else "calls"
        return f"{text}, mean of {self.calls} {what}" if self.reduce == "mean" else f"{text}, {self.calls} {what} summed"

    def where(self) -> str:
        """How messages name this layer: `layer 'conv2' (conv [32, 16, 16])` or `the model output`."""
        if self.name == LOGITS:
            return "the model output"
        return f"layer {self.name!r} ({self.describe()} {list(self.shape)})"


@dataclass(frozen=True)
class ResolvedUnit:
    """A validated unit and where to read it: the captured layer, and heads to split D into.

    `direction` (direction units) and `data` (other kinds) hold what the unit kind's `prepare`
    loaded at resolve time.
    """

    unit: Unit
    target: str
    info: LayerInfo
    heads: int = 0
    direction: torch.Tensor | None = None
    data: Any = None


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
    def layers(self, pattern: str | None = None, *, each_call: bool | None = None) -> list[LayerInfo]:
        """Every layer that fires in a forward pass, in execution order; `pattern` is a glob.

        A module that fires several times lists each call (`name`, `name#1`, ...) followed by
        `name#*`, their sum, when the calls agree in shape and layout; a time-stepped module
        (`LayerInfo.time_stepped`) is listed once, as `name#*` (its `calls` says how many).
        `each_call=True` lists every call of every module; `False` lists every repeated module
        once, as `name#*`. (`name#mean`, the mean over calls, is never listed: address it.)
        """
        infos = self._ordered(each_call)
        if pattern:
            glob = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
            infos = [i for i in infos if fnmatch.fnmatchcase(i.name, glob)]
        return infos

    def layer(self, name: str) -> LayerInfo:
        layers = self._probe()
        if name in layers:
            return layers[name]
        module, k = split_call(name)
        total = layers.get(call_name(module, None))
        if k is None and total is not None:  # `name#mean`: the sum's layer, divided by its calls
            return dataclasses.replace(total, name=name)
        if k is None and any(i.module == module for i in layers.values()):
            calls = [i.name for i in layers.values() if i.module == module]
            if len(calls) == 1:
                raise UnifiedVizError(f"layer {module!r} fires once per forward pass: address it as {module!r}")
            raise UnifiedVizError(
                f"the calls of {module!r} differ in shape or layout, so {name!r} cannot sum them: "
                f"pick one call ({', '.join(calls[:4])}{', ...' if len(calls) > 4 else ''})"
            )
        if module != name and module in self.modules:
            calls = [i.name for i in layers.values() if i.module == module and i.calls == 1]
            if calls:
                raise UnifiedVizError(
                    f"{module!r} fires {len(calls)} time(s) per forward pass, so {name!r} is not one of its "
                    f"calls: pick one of {', '.join(calls[:4])}{', ...' if len(calls) > 4 else ''}"
                )
        if name in self.modules or module in self.modules:
            raise UnifiedVizError(f"layer {name!r} exists but never runs in a forward pass of this model: pick another")
        close = difflib.get_close_matches(name, list(layers), n=5, cutoff=0.5)
        hint = f"closest: {', '.join(close)}" if close else "run `unifiedviz layers MODEL` to list them"
        raise UnifiedVizError(f"unknown layer {name!r}; {hint}")

    def _ordered(self, each_call: bool | None) -> list[LayerInfo]:
        layers = self._probe()
        aggregates = {i.module: i for i in layers.values() if i.calls > 1}
        out: list[LayerInfo] = []
        for info in layers.values():
            if info.calls > 1:
                continue  # placed next to its module's calls
            agg = aggregates.get(info.module) if info.name != LOGITS else None
            if agg is None:
                out.append(info)
            elif each_call or (each_call is None and not agg.time_stepped):
                out.append(info)
                if info.call == agg.calls - 1:
                    out.append(agg)
            elif info.call == 0:
                out.append(agg)
        return out

    def _probe(self) -> dict[str, LayerInfo]:
        if self._layers is None:
            self._layers = self._run_probe()
        return self._layers

    def _run_probe(self) -> dict[str, LayerInfo]:
        seen: dict[str, LayerInfo] = {}
        per_module: dict[str, list[LayerInfo | None]] = {}
        spec = self.model.spec

        def make_hook(name: str) -> Callable:
            def hook(module, inputs, output):
                k = len(per_module.setdefault(name, []))
                t = first_tensor(output)
                if t is None or t.dim() < 2:
                    per_module[name].append(None)
                    return
                key = call_name(name, k)
                if t.shape[0] != probe_batch:  # e.g. Swin's windows folded into the batch
                    layout: Layout = OtherLayout()
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
                per_module[name].append(seen[key])

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
        steps = self._time_steps(per_module)
        for name, infos in per_module.items():
            # A module firing several times with one shape and layout (per time step) can be summed.
            if len(infos) > 1 and all(infos) and len({(i.shape, i.layout) for i in infos}) == 1:
                first = infos[0]
                agg = call_name(name, None)
                seen[agg] = LayerInfo(agg, first.module_type, first.shape, first.layout, calls=len(infos),
                                      time_stepped=len(infos) in steps)
        seen[LOGITS] = LayerInfo(LOGITS, "output", tuple(logits.shape[1:]), VectorLayout())
        return seen

    def _time_steps(self, per_module: dict[str, list]) -> set[int]:
        """The call counts that mean "once per time step": those of spiking neurons (snnTorch), RNN
        cells and modules marked `time_stepped = True`, and the model's own `num_steps`. Every module
        firing that often runs inside the time loop (a conv between two spiking layers, too).
        A ResNet's shared `relu` (2-3 calls) is none of these, so it keeps one layer per call."""
        steps = set()
        for name, infos in per_module.items():
            module = self.modules[name]
            marked = getattr(module, "time_stepped", None)
            if marked or (marked is None and (type(module).__module__.startswith("snntorch")
                                              or isinstance(module, nn.RNNCellBase))):
                steps.add(len(infos))
        declared = getattr(self.model.net, "num_steps", None)
        if isinstance(declared, int):
            steps.add(declared)
        steps.discard(1)
        return steps

    # ------------------------------------------------------------------ units
    def resolve(self, unit: Unit | str) -> ResolvedUnit:
        """Check a unit against the model (layer exists, index in range) and say where to read it."""
        if isinstance(unit, str):
            parsed = parse_units(unit)
            if len(parsed) != 1:
                raise UnifiedVizError(f"{unit!r} names {len(parsed)} units; resolve them one at a time")
            unit = parsed[0]
        kind = UNIT_KINDS.get(unit.kind)
        if kind.target is not None:
            target, heads = kind.target(self, unit)
        else:
            target, heads = (unit.layer if unit.layer is not None else LOGITS), 0
        info = self.layer(target)
        info.layout.check_unit(unit, info.shape, index_axis=kind.index_axis, heads=heads, where=info.where())
        extra = kind.prepare(unit, info) if kind.prepare is not None else {}
        return ResolvedUnit(unit, target, info, heads, **extra)

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

    def gradient_x_activation(
        self, x: torch.Tensor, layer: str, score: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """Gradient x activation of `score(logits)` (summed over the batch) at `layer`, canonical `[B, ...]`.

        Per image, the first-order share of the score each activation carries. An aggregate
        layer `name#*` gives the sum of its calls' products. Weights stay frozen.
        """
        name = self.layer(layer).name
        with self.session([name, LOGITS], stop_early=False, live=True) as run, torch.enable_grad():
            acts = run(x.detach().requires_grad_(True))
            live = acts[name] if isinstance(acts[name], list) else [acts[name]]
            grads = torch.autograd.grad(score(acts[LOGITS]).sum(), live, allow_unused=True)
            total = None
            for g, a in zip(grads, live):
                part = (g * a).detach() if g is not None else torch.zeros_like(a).detach()
                total = part if total is None else total + part
        return total

    @contextlib.contextmanager
    def session(
        self,
        targets: Iterable[str | Unit] | str,
        *,
        stop_early: bool = True,
        freeze: bool = True,
        live: bool = False,
    ) -> Iterator[Callable[[torch.Tensor], dict[str, torch.Tensor]]]:
        """Set up hooks once and yield `run(x) -> activations`, for loops such as the AM engine.

        `live=True` returns the tensors the network itself goes on computing with (canonical
        views, not clones), so `torch.autograd.grad(score, acts[layer])` works; an aggregate
        `name#*` or `name#mean` then comes back as the list of its calls' tensors. Later in-place
        ops of the network (`ReLU(inplace=True)`) may rewrite live tensors.
        """
        names = self._target_names(targets)
        wanted = [n for n in names if n != LOGITS]
        need_logits = LOGITS in names
        # Every aggregate of a module (`#*`, `#mean`) accumulates once, as the sum `#*`.
        collect = list(dict.fromkeys(call_name(m, None) if k is None else n for n in wanted
                                     for m, k in [split_call(n)]))
        infos = {n: self.layer(n) for n in collect}
        by_module: dict[str, dict[int | None, str]] = {}  # module -> {call (None: all calls): layer}
        for n in collect:
            module, k = split_call(n)
            by_module.setdefault(module, {})[k] = n
        store: dict[str, Any] = {}
        calls: dict[str, int] = {}
        pending: set[str] = set()
        stop_when_done = stop_early and not need_logits
        # Hooks act only inside this session's own run(): other forward passes of the model
        # (a bare call, another open session) must not be captured or stopped.
        running = False

        def make_hook(module_name: str) -> Callable:
            keys = by_module[module_name]
            aggregate = keys.get(None)

            def hook(module, inputs, output):
                if not running:
                    return None
                k = calls.get(module_name, 0)
                calls[module_name] = k + 1
                key = keys.get(k)
                if key is None and aggregate is None:
                    return None
                t = first_tensor(output)
                layout = infos[key or aggregate].layout
                c = layout.canonical(t)
                replaced = None
                if live and c is not t:  # make the canonical view the one the network computes with
                    replaced = replace_first_tensor(output, layout.restore(c))
                if key is not None:
                    pending.discard(key)
                if aggregate is not None and k + 1 >= infos[aggregate].calls:
                    pending.discard(aggregate)
                done = stop_when_done and not pending
                # Clone unless we stop right here: later in-place ops (ReLU(inplace), x += y)
                # would otherwise rewrite what we captured.
                keep = c if live or done else c.clone()
                if key is not None:
                    store[key] = keep
                if aggregate is not None:
                    if live:
                        store.setdefault(aggregate, []).append(c)
                    else:  # out of place: the sum never aliases a tensor the network rewrites
                        store[aggregate] = store[aggregate] + c if aggregate in store else keep
                if done:
                    raise _StopForward
                return replaced

            return hook

        probs = [n for n in wanted if split_call(n)[0].endswith("attn_drop")]
        with self._prepared(freeze=freeze), unfused_attention(self.modules, probs) if probs else _nothing():
            handles = [self.modules[m].register_forward_hook(make_hook(m)) for m in by_module]
            try:

                def run(x: torch.Tensor) -> dict[str, torch.Tensor]:
                    nonlocal running
                    self.model.spec.check(x)
                    store.clear()
                    calls.clear()
                    pending.clear()
                    pending.update(collect)
                    running = True
                    try:
                        logits = self.model(x)
                    except _StopForward:
                        logits = None
                    finally:
                        running = False
                    missing = set(collect) - set(store)
                    if missing:
                        raise RuntimeError(f"layers {sorted(missing)} did not fire in this forward pass")
                    out = {}
                    for n in wanted:
                        module, k = split_call(n)
                        if k is None and calls[module] != infos[call_name(module, None)].calls:
                            raise UnifiedVizError(
                                f"{module!r} fired {calls[module]} times in this forward pass but "
                                f"{infos[call_name(module, None)].calls} when the Adapter listed the layers "
                                "(was num_steps changed?): build a new Adapter for the changed model")
                        value = store[call_name(module, None) if k is None else n]
                        if aggregate_of(n) == "mean" and not live:  # a rate: the count over the calls
                            value = value / calls[module]
                        out[n] = value
                    if need_logits:
                        out[LOGITS] = logits
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
