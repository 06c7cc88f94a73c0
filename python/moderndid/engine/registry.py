"""Which engine runs a given input: a registry keyed by the input's type.

Engines are found by the module and class name of the data object, so choosing one imports
neither pyspark nor dask; the engine's own package is imported only when its data arrives.
Adding an engine is one package implementing :class:`~moderndid.engine.protocol.Engine`
plus one line in :data:`ENGINES`.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from moderndid.engine.protocol import Engine
from moderndid.errors import UnsupportedInputError


@dataclass(frozen=True)
class EngineEntry:
    """An engine and the inputs it takes."""

    name: str
    module_prefix: str  # the data's class is defined in a module under this prefix
    class_name: str  # ... and has this name
    target: str  # "package.module:attribute" of the Engine instance

    def accepts(self, data: Any) -> bool:
        cls = type(data)
        return cls.__name__ == self.class_name and cls.__module__.startswith(self.module_prefix)


ENGINES: tuple[EngineEntry, ...] = (
    # classic and Spark Connect DataFrames
    EngineEntry("spark", "pyspark.sql", "DataFrame", "moderndid.spark.engine:ENGINE"),
    EngineEntry("dask", "dask", "DataFrame", "moderndid.dask.engine:ENGINE"),
)


def engine_for(data: Any) -> Engine | None:
    """The distributed engine for ``data``, or None for in-memory data."""
    for entry in ENGINES:
        if entry.accepts(data):
            module, attribute = entry.target.split(":")
            return getattr(importlib.import_module(module), attribute)
    return None


P = ParamSpec("P")
R = TypeVar("R")


def engine_entry(estimator: Callable[P, R], engine: str, name: str) -> Callable[P, R]:
    """``estimator`` restricted to the inputs of one engine (``spark_att_gt``, ``dask_ddd``,
    ...), with its signature: other inputs are refused with :class:`UnsupportedInputError`
    instead of being run in memory, so a call that names an engine runs on it."""
    entry_for = next(e for e in ENGINES if e.name == engine)

    @functools.wraps(estimator)
    def entry(*args: P.args, **kwargs: P.kwargs) -> R:
        data = args[0] if args else kwargs.get("data")
        if not entry_for.accepts(data):
            raise UnsupportedInputError(
                f"{name} needs a {engine.capitalize()} DataFrame, got "
                f"{type(data).__module__}.{type(data).__name__}; use "
                f"moderndid.{estimator.__name__} for in-memory data"
            )
        return estimator(*args, **kwargs)

    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = (
        f"`{estimator.__name__}` on a {engine.capitalize()} DataFrame, run distributed.\n\n"
        f"Same arguments and result as :func:`moderndid.{estimator.__name__}` (engine "
        "settings included); refuses any other input.\n"
    )
    return entry
