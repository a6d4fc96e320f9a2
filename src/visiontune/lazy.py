"""Packages whose public names load on first use (a module ``__getattr__``), so that ``import visiontune`` and
the CLI's start import no torch until a command needs it: one helper for every such package."""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any, Callable, Mapping


def exports(package: str, names: Mapping[str, str | tuple[str, str]]) -> Callable[[str], Any]:
    """The ``__getattr__`` of ``package``: ``names`` maps a public name to the module that defines it (a
    submodule of the package, or a full ``visiontune...`` path), or to ``(module, attribute)`` where the
    attribute is named otherwise.  A name is imported once, then kept in the package."""

    def __getattr__(name: str) -> Any:
        where = names.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attr = where if isinstance(where, tuple) else (where, name)
        full = module if module.startswith("visiontune") else f"{package}.{module}"
        value = getattr(importlib.import_module(full), attr)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__


def keep_functions(package: str, names: dict) -> None:
    """Public names of ``package`` that are also names of its submodules (``visiontune.train`` the function,
    ``visiontune/train/`` the package) stay the functions when the submodule is imported (which binds it on
    the package)."""

    class Package(types.ModuleType):
        def __setattr__(self, name: str, value: Any) -> None:
            if name in names and isinstance(value, types.ModuleType):
                return
            super().__setattr__(name, value)

    sys.modules[package].__class__ = Package
