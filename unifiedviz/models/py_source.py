"""`py:PATH.py[:FACTORY]`: a model built by the user's own Python code.

`py:nets/resnet.py:resnet56` imports `nets/resnet.py` and calls `resnet56()`; without
`:FACTORY` the function called is `build_model`. The factory takes no arguments and returns an
`nn.Module` or a `VizModel`. This runs the named file's code, by design: name only files you
trust, as with `python FILE`. The file's folder is on `sys.path` while it is imported and its
factory runs, so it can import modules beside it.
"""
from __future__ import annotations

import importlib.util
import inspect
import itertools
import re
import sys
from pathlib import Path
from types import ModuleType

from torch import nn

from ..errors import UnifiedVizError

DEFAULT_FACTORY = "build_model"
_COUNTER = itertools.count()


def parse_py_source(name: str) -> tuple[Path, str]:
    """`PATH.py:FACTORY` or `PATH.py` -> (path, factory name)."""
    head, sep, tail = name.rpartition(":")
    if sep and head and tail.isidentifier():
        return Path(head), tail
    return Path(name), DEFAULT_FACTORY


def build_from_file(name: str) -> tuple[nn.Module, str]:
    """Import the file `name` points at and call its factory; returns (module, canonical source)."""
    path, factory = parse_py_source(name)
    source = f"py:{path}:{factory}"
    if path.suffix != ".py":
        raise UnifiedVizError(
            f"py:{name}: not a .py file; write py:PATH.py:FACTORY (FACTORY defaults to {DEFAULT_FACTORY})"
        )
    if not path.is_file():
        raise UnifiedVizError(f"py:{name}: no such file {str(path)!r}; check the path (relative to {Path.cwd()})")
    folder = str(path.resolve().parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        module = _import(path, source)
        fn = getattr(module, factory, None)
        if fn is None or not callable(fn):
            found = _callables(module)
            listed = f"callables found: {', '.join(found)}" if found else "it defines no functions or classes"
            what = "has no" if fn is None else "has a non-callable"
            raise UnifiedVizError(
                f"{path} {what} {factory!r}; {listed}; name one with py:{path}:NAME"
            )
        _check_no_arguments(fn, source)
        try:
            net = fn()
        except Exception as exc:
            raise UnifiedVizError(f"{source}: {factory}() raised {_one_line(exc)}; fix the factory") from None
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)
    if not isinstance(net, nn.Module):
        raise UnifiedVizError(
            f"{source}: {factory}() returned {type(net).__name__}, not a model: return a torch.nn.Module or a VizModel"
        )
    return net, source


def _import(path: Path, source: str) -> ModuleType:
    stem = re.sub(r"\W", "_", path.stem)
    module_name = f"unifiedviz_py_source_{next(_COUNTER)}_{stem}"  # unique: two files may share a stem
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UnifiedVizError(f"{source}: Python cannot import {str(path)!r}; is it a Python source file?")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses, pickling and typing look the module up here
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[module_name]
        if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: not ours to swallow
            raise
        raise UnifiedVizError(f"{source}: importing {path} raised {_one_line(exc)}; fix the file") from None
    return module


def _check_no_arguments(fn, source: str) -> None:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins have no signature: just call them
        return
    required = [
        p.name for p in signature.parameters.values()
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if required:
        raise UnifiedVizError(
            f"{source}: the factory needs arguments ({', '.join(required)}) but is called with none: "
            "give them defaults or wrap it in a zero-argument function"
        )


def _callables(module: ModuleType) -> list[str]:
    """Public functions and classes, those the file defines first."""
    public = [(n, v) for n, v in vars(module).items() if not n.startswith("_") and callable(v)
              and (inspect.isfunction(v) or inspect.isclass(v))]
    own = [n for n, v in public if getattr(v, "__module__", None) == module.__name__]
    names = own or [n for n, _ in public]
    return names[:12] + (["..."] if len(names) > 12 else [])


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__
