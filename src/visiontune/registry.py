"""One small registry class for every extension point (data sources, job kinds, serving runtimes,
tuning strategies, executors...): a decorator to register, ``get`` / ``names`` to use, an error on a
duplicate name, and the valid names in the error for an unknown one."""

from __future__ import annotations

import threading
from typing import Callable, Generic, Iterator, TypeVar

from visiontune.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, what: str, load_builtins: Callable[[], None] | None = None):
        self.what = what  # "data source", "job kind"... for messages
        self._items: dict[str, T] = {}
        self._load_builtins = load_builtins
        self._loaded = load_builtins is None
        self._loading = False
        self._lock = threading.RLock()

    def register(self, item: T, name: str | None = None) -> T:
        """``@registry.register`` on a class with a ``name`` attribute, or ``register(obj, name)``.  The
        built-ins are loaded first, so a name taken by one is refused here, not when they load."""
        key = name or getattr(item, "name", None)
        if not key:
            raise ConfigError(f"a {self.what} needs a name to be registered")
        with self._lock:
            self._ensure()
            if key in self._items:
                raise ConfigError(f"a {self.what} named {key!r} is already registered")
            self._items[key] = item
        return item

    def _ensure(self) -> None:
        """Load the built-ins once; marked loaded only when that succeeded (a failed load leaves nothing of
        it behind and is tried again at the next use).  Their own ``register`` calls pass straight through."""
        if self._loaded:
            return
        with self._lock:  # another thread loading them: wait for it (the loading thread re-enters)
            if self._loaded or self._loading:
                return
            before = set(self._items)
            self._loading = True
            try:
                self._load_builtins()
            except BaseException:
                for key in set(self._items) - before:
                    del self._items[key]
                raise
            finally:
                self._loading = False
            self._loaded = True

    def get(self, name: str) -> T:
        self._ensure()
        if name not in self._items:
            import difflib

            by_lower = {k.lower(): k for k in self._items}
            close = difflib.get_close_matches(str(name).lower(), list(by_lower), n=1, cutoff=0.75)
            hint = f"did you mean {by_lower[close[0]]!r}? " if close else ""
            raise ConfigError(f"{self.what} {name!r}: {hint}choose one of {', '.join(self._items)}")
        return self._items[name]

    def names(self) -> list[str]:
        self._ensure()
        return list(self._items)

    def __contains__(self, name: str) -> bool:
        self._ensure()
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        self._ensure()
        return iter(list(self._items.values()))
