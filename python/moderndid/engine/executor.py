"""The in-process executor and the interface every executor implements."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from moderndid.engine.partial import Partial, combine_all

logger = logging.getLogger("moderndid")

PartitionArrays = Mapping[str, Any]
Kernel = Callable[[PartitionArrays, Any], Partial]


# Capability of an executor that reduces ``Partial.bootstrap_blocks`` itself (the Scala
# multiplier-bootstrap aggregator on Spark), answering a :class:`BootstrapRequest`.
NATIVE_BOOTSTRAP = "native_bootstrap"


@dataclass(frozen=True)
class BootstrapRequest:
    """Ask an executor with :data:`NATIVE_BOOTSTRAP` to turn the pass's bootstrap blocks
    into the sums ``sum_i v_ib z_i`` for ``b < draws`` (Mammen multipliers keyed by
    ``(seed, unit key, draw)``; docs/multipliers.md), returned as the sum ``boot``."""

    seed: int
    draws: int


class Executor(Protocol):
    """Runs a kernel over every partition of a prepared table and combines the partials."""

    capabilities: frozenset[str]  # e.g. {NATIVE_BOOTSTRAP}

    def run(self, kernel: Kernel, state: Any, description: str, *, keyed: bool = True,
            bootstrap: BootstrapRequest | None = None) -> Partial:
        """Apply ``kernel(partition, state)`` to each partition and combine the results.

        ``keyed=False`` promises that the kernel returns no keyed sums and the same names and
        shapes from every partition, which lets distributed executors reduce everything in
        one flat aggregation. ``bootstrap`` goes only to executors with NATIVE_BOOTSTRAP."""


@dataclass(eq=False)
class LocalExecutor:
    """Executor over in-memory partitions (dicts of numpy arrays whose first axis indexes
    the partition's units or observations), one after another."""

    partitions: Sequence[PartitionArrays]
    capabilities: frozenset[str] = frozenset()

    def run(self, kernel: Kernel, state: Any, description: str, *, keyed: bool = True,
            bootstrap: BootstrapRequest | None = None) -> Partial:
        """Apply ``kernel`` to each partition in turn and combine the partials (``keyed``
        changes nothing here)."""
        start = time.perf_counter()
        result = combine_all([kernel(part, state) for part in self.partitions])
        logger.debug("%s: %.3f s over %d partitions", description, time.perf_counter() - start,
                     len(self.partitions))
        return result
