"""The in-process executor and the interface every executor implements."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from moderndid.engine.partial import Partial, combine_all

logger = logging.getLogger("moderndid")

PartitionArrays = Mapping[str, Any]
Kernel = Callable[[PartitionArrays, Any], Partial]


class Executor(Protocol):
    """Runs a kernel over every partition of a prepared table and combines the partials."""

    n_partitions: int
    # True when the executor reduces ``Partial.bootstrap_blocks`` itself (a native
    # multiplier-bootstrap reduction); executors without the attribute do not.
    native_bootstrap: bool

    def run(self, kernel: Kernel, state: Any, description: str, *, keyed: bool = True) -> Partial:
        """Apply ``kernel(partition, state)`` to each partition and combine the results.

        ``keyed=False`` promises that the kernel returns no keyed sums and the same names and
        shapes from every partition, which lets distributed executors reduce everything in
        one flat aggregation.
        """
        ...


class LocalExecutor:
    """Executor over in-memory partitions (dicts of numpy arrays), one after another.

    Parameters
    ----------
    partitions : list of mapping
        The partitions of the prepared table. Each maps array names to arrays whose first
        axis indexes the partition's rows (units or observations).
    xp : module, default numpy
        Array module the kernels compute with (``numpy``, or ``cupy`` for GPUs).
    """

    def __init__(self, partitions: Sequence[PartitionArrays], xp: Any = np):
        self.partitions = partitions
        self.xp = xp
        self.n_partitions = len(partitions)
        self.native_bootstrap = False

    def run(self, kernel: Kernel, state: Any, description: str, *, keyed: bool = True) -> Partial:
        """Apply ``kernel`` to each partition in turn and combine the partials.

        ``keyed`` (see :class:`Executor`) does not change anything here.
        """
        start = time.perf_counter()
        result = combine_all([kernel(part, state) for part in self.partitions])
        logger.debug("%s: %.3f s over %d partitions", description, time.perf_counter() - start,
                     self.n_partitions)
        return result
