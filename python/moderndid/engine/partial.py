"""Associative partial results of a pass over partitions."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Partial:
    """What one partition contributes to a pass.

    ``sums`` are arrays that combine by addition. ``keyed`` are sums grouped by a uint64 key
    (e.g. per-cluster sums of influence functions): ``keyed[name] = (keys, values)`` with
    ``values`` of shape ``(len(keys), m)``; combining concatenates and re-adds rows that share
    a key. ``maxima`` combine by element-wise maximum. All three combine associatively and
    commutatively, so any executor may reduce partials in any order (up to floating-point
    reduction order). ``bootstrap_blocks`` are ``(keys, z)`` blocks of unit rows that an
    executor with a native multiplier bootstrap (Spark's Scala aggregator) turns into the
    sum ``boot``; they never return to the driver."""

    sums: dict[str, np.ndarray] = field(default_factory=dict)
    keyed: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    maxima: dict[str, np.ndarray] = field(default_factory=dict)
    bootstrap_blocks: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    def combine(self, other: Partial) -> Partial:
        """Return the sum of two partials (neither input is modified)."""
        def merge(mine: dict, theirs: dict, add: Callable[[Any, Any], Any]) -> dict:
            return {**mine, **{n: add(mine[n], v) if n in mine else v for n, v in theirs.items()}}

        keyed = merge(self.keyed, other.keyed, lambda a, b: reduce_by_key(
            np.concatenate([a[0], b[0]]), np.vstack([a[1], b[1]])))
        return Partial(merge(self.sums, other.sums, operator.add), keyed,
                       merge(self.maxima, other.maxima, np.maximum),
                       self.bootstrap_blocks + other.bootstrap_blocks)


def reduce_by_key(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Add up the rows of ``values`` that share a key; keys come back sorted."""
    if keys.size == 0:
        return keys, values
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]]))
    return sorted_keys[starts], np.add.reduceat(values[order], starts, axis=0)


def combine_all(partials: list[Partial]) -> Partial:
    """Combine a list of partials (empty list -> empty partial)."""
    return functools.reduce(Partial.combine, partials, Partial())
