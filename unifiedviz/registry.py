"""Named registries: one per kind of piece (params, optimisers, unit kinds, attacks, strategies, metrics).

A piece registers itself where it is defined:

    PARAMS = Registry("parameterisation", modules=["unifiedviz.params"])

    @PARAMS.register("pixel", help="free pixels (sigmoid)")
    class PixelParam(Param): ...

CLI choices, config validation and error messages read the registry, so adding a piece is one
file plus its registration, never an if-chain elsewhere. `modules` are imported on the first
look-up (a package: all its submodules), so a new file inside such a package registers
without an import line anywhere.
"""
from __future__ import annotations

import difflib
import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable, Generic, Iterator, TypeVar

from .errors import UnifiedVizError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    help: str = ""


class Registry(Generic[T]):
    """Name -> object, with unknown names answered by the closest valid ones."""

    def __init__(self, kind: str, *, modules: list[str] | tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._modules = tuple(modules)
        self._entries: dict[str, Entry[T]] = {}
        self._loaded = not self._modules
        self._loading = False

    # ------------------------------------------------------------------ registering
    def register(self, name: str, obj: T | None = None, *, help: str = "") -> Callable[[T], T] | T:
        """`@REG.register("name", help=...)` on a class/function, or `REG.register("name", obj)`."""

        def add(item: T) -> T:
            if name in self._entries and self._entries[name].obj is not item:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = Entry(name, item, help or _first_line(item))
            return item

        return add(obj) if obj is not None else add

    # ------------------------------------------------------------------ looking up
    def get(self, name: str) -> T:
        return self.entry(name).obj

    def entry(self, name: str) -> Entry[T]:
        self._load()
        if not isinstance(name, str) or name not in self._entries:
            raise UnifiedVizError(self.unknown_message(name))
        return self._entries[name]

    def unknown_message(self, name) -> str:
        names = self.names()
        close = difflib.get_close_matches(str(name), names, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown {self.kind} {name!r}: {hint}choose one of {', '.join(names)}"

    def pick(self, values) -> list[str]:
        """Names given on a command line (repeatable, comma-separated), checked, de-duplicated in order."""
        flat = [v.strip() for item in values for v in str(item).split(",") if v.strip()]
        for name in flat:
            if name not in self:
                raise UnifiedVizError(self.unknown_message(name))
        return list(dict.fromkeys(flat))

    def names(self) -> list[str]:
        self._load()
        return list(self._entries)

    def entries(self) -> list[Entry[T]]:
        self._load()
        return list(self._entries.values())

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"

    def _load(self) -> None:
        if self._loaded or self._loading:  # the modules being imported may look names up themselves
            return
        self._loading = True
        try:
            for name in self._modules:
                module = importlib.import_module(name)
                for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
                    importlib.import_module(f"{name}.{info.name}")
            self._loaded = True
        finally:
            self._loading = False


def _first_line(obj) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0].rstrip(".") if doc else ""


__all__ = ["Registry", "Entry"]
