"""DaskExecutor: runs the core's partition kernels on Dask workers, reduces in a tree."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from moderndid.engine.executor import BootstrapRequest
from moderndid.engine.partial import Partial

logger = logging.getLogger("moderndid")

TREE_FANIN = 8  # partials combined per task of the reduction tree


def _apply(blocks: Any, to_partition: Callable[[Any], dict], kernel: Any, state: Any) -> Partial:
    if blocks.num_rows == 0:
        return Partial()
    return kernel(to_partition(blocks), state)


def _combine(*partials: Partial) -> Partial:
    result = Partial()
    for part in partials:
        result = result.combine(part)
    return result


class DaskExecutor:
    """Executor over persisted Dask blocks (one ``pyarrow.RecordBatch`` per partition).

    Parameters
    ----------
    blocks : list of dask.delayed
        The persisted blocks of the unit table.
    to_partition : callable
        ``pyarrow.RecordBatch -> dict of numpy arrays``, run on the workers.
    """

    def __init__(self, blocks: list[Any], to_partition: Callable[[Any], dict]):
        self.blocks = blocks
        self.to_partition = to_partition
        self.n_partitions = len(blocks)
        self.capabilities: frozenset[str] = frozenset()

    def run(self, kernel: Any, state: Any, description: str, *, keyed: bool = True,
            bootstrap: BootstrapRequest | None = None) -> Partial:
        """Run ``kernel`` on every block on the workers; combine the partials in a tree of
        tasks so the client receives one Partial. ``keyed`` changes nothing here."""
        import dask

        if bootstrap is not None:
            raise ValueError("internal error: the Dask executor has no native bootstrap")
        start = time.perf_counter()
        apply = dask.delayed(_apply, pure=False)
        level = [apply(b, self.to_partition, kernel, state) for b in self.blocks]
        combine = dask.delayed(_combine, pure=False)
        while len(level) > 1:
            level = [combine(*level[i: i + TREE_FANIN]) for i in range(0, len(level),
                                                                       TREE_FANIN)]
        result = level[0].compute() if level else Partial()
        logger.debug("%s: %.2f s on Dask", description, time.perf_counter() - start)
        return result
