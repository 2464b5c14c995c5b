"""The one decorator every cached read of the dashboard goes through.

Streamlit keeps a function's results keyed by its arguments. The dashboard's reads also depend
on which registry they read (database, schema, artifact and data folders), which is not an
argument: two registries in one process (tests, benchmarks) would otherwise share entries.
:func:`cached` adds :func:`registry_key` to every key, and binds the arguments to the
function's signature first, so ``f(a)``, ``f(a, b=default)`` and ``f(b=default, a=a)`` are
one entry (the warm-up fills what the pages later ask for, however they spell the call).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar

import streamlit as st

from core.config import get_settings

P = ParamSpec("P")
R = TypeVar("R")

REGISTRY_TTL = 15  # seconds: registry reads, also cleared after every write
RESULT_TTL = 3600  # results of immutable inputs (a version number, a dataset version)


def registry_key() -> str:
    """The locations that make one registry: part of every cached entry's key."""
    s = get_settings()
    return f"{s.resolved_database_url()}|{s.database_schema or ''}|{s.artifacts_root}|{s.data_root}"


class Cached(Generic[P, R]):
    """A function whose results Streamlit keeps; called like the function, and cleared with
    :meth:`clear` after a write the cached results do not show yet."""

    def __init__(self, fn: Callable[P, R], store: Any, *, per_registry: bool) -> None:
        functools.update_wrapper(self, fn)
        self._signature = inspect.signature(fn)
        self._store = store
        self._per_registry = per_registry

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        key = registry_key() if self._per_registry else ""
        result: R = self._store(key, *bound.args, **bound.kwargs)
        return result

    def clear(self) -> None:
        """Forget every kept result of this function (of all registries)."""
        self._store.clear()


def cached(
    *,
    ttl: float | None = None,
    max_entries: int | None = None,
    spinner: bool | str = False,
    resource: bool = False,
    per_registry: bool = True,
) -> Callable[[Callable[P, R]], Cached[P, R]]:
    """Keep a function's results, keyed by the registry and the function's arguments.

    ``resource=True`` keeps one shared object (``st.cache_resource``: loaded data, start-up
    work, never mutated by callers); otherwise each caller gets its own copy of a query result
    (``st.cache_data``). ``per_registry=False`` is for what does not depend on the registry
    (the shipped catalogue). ``spinner`` is the text shown while a value is computed.
    """

    def decorate(fn: Callable[P, R]) -> Cached[P, R]:
        def compute(registry_key: str, *args: Any, **kwargs: Any) -> R:
            return fn(*args, **kwargs)

        # Streamlit names a function's cache after its module and qualified name: each
        # decorated function gets its own, not one shared by every ``compute``.
        compute.__module__ = fn.__module__
        compute.__qualname__ = fn.__qualname__
        compute.__name__ = fn.__name__
        if resource:
            store = st.cache_resource(ttl=ttl, max_entries=max_entries, show_spinner=spinner)
        else:
            store = st.cache_data(ttl=ttl, max_entries=max_entries, show_spinner=spinner)
        return Cached(fn, store(compute), per_registry=per_registry)

    return decorate
