"""DaskExecutor: runs the core's partition kernels on Dask workers, reduces in a tree.

Every Dask computation of a fit (preparation, passes, error lookups) goes through one
:class:`DaskScheduler`, so a fit given ``client=`` runs on that client only.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from moderndid.engine.executor import BootstrapRequest
from moderndid.engine.partial import Partial, combine_all
from moderndid.errors import DaskWorkerLostError

logger = logging.getLogger("moderndid")

TREE_FANIN = 8  # partials combined per task of the reduction tree


def current_client() -> Any:
    """The active ``distributed.Client``, or None (without distributed imported no client
    can exist, and importing it would cost a second for nothing)."""
    if "distributed" not in sys.modules:
        return None
    from distributed import Client

    try:
        return Client.current()
    except ValueError:  # no client was created (or all were closed)
        return None


class DaskScheduler:
    """Where a fit's Dask computations run: ``client`` when given, else Dask's default
    scheduler. Persisting through the client itself keeps the blocks on its workers:
    ``dask.persist`` would hand them to whichever client is the default one."""

    def __init__(self, client: Any = None):
        self.client = client

    def compute(self, *objects: Any) -> tuple[Any, ...]:
        """The values of Dask collections or delayed objects."""
        import dask

        with lost_workers():
            if self.client is None:
                return tuple(dask.compute(*objects))
            return tuple(self.client.gather(self.client.compute(list(objects))))

    def persist(self, objects: list[Any]) -> list[Any]:
        """``objects`` computed and kept in memory (on the client's workers)."""
        import dask

        with lost_workers():
            if self.client is None:
                return list(dask.persist(*objects))
            return list(self.client.persist(objects))


@contextlib.contextmanager
def lost_workers() -> Iterator[None]:
    """Raise :class:`DaskWorkerLostError` naming the worker when the scheduler gives up on
    a task whose workers kept dying (``distributed.scheduler.allowed-failures``)."""
    try:
        yield
    except Exception as exc:
        if type(exc).__name__ != "KilledWorker" or len(exc.args) < 2:
            raise
        task, worker = exc.args[0], exc.args[1]
        address = getattr(worker, "address", worker)
        raise DaskWorkerLostError(
            f"Dask worker {address} died while running task {task!r}, and so did the "
            "workers of every earlier attempt (distributed.scheduler.allowed-failures); "
            "check the worker logs (memory limits, crashes) and run the fit again"
        ) from exc


def _apply(blocks: Any, to_partition: Callable[[Any], dict], kernel: Any, state: Any) -> Partial:
    if blocks.num_rows == 0:
        return Partial()
    return kernel(to_partition(blocks), state)


@dataclass(eq=False)
class DaskExecutor:
    """Executor over persisted Dask blocks (one Arrow table per partition, converted by
    ``to_partition`` on the workers). The reduction tree is fixed by the order of the
    blocks, so a pass gives the same digits however its tasks are scheduled or retried."""

    blocks: list[Any]
    to_partition: Callable[[Any], dict]
    scheduler: DaskScheduler
    capabilities: frozenset[str] = frozenset()

    def release(self) -> None:
        """Drop the persisted blocks (the workers free them once no one holds them)."""
        self.blocks = []

    def run(self, kernel: Any, state: Any, description: str, *, keyed: bool = True,
            bootstrap: BootstrapRequest | None = None) -> Partial:
        """Run ``kernel`` on every block on the workers; combine the partials in a tree of
        tasks so the client receives one Partial. ``keyed`` changes nothing here."""
        import dask

        start = time.perf_counter()
        apply = dask.delayed(_apply, pure=False)
        level = [apply(b, self.to_partition, kernel, state) for b in self.blocks]
        combine = dask.delayed(combine_all, pure=False)
        while len(level) > 1:
            level = [combine(level[i: i + TREE_FANIN]) for i in range(0, len(level), TREE_FANIN)]
        result = self.scheduler.compute(level[0])[0] if level else Partial()
        logger.debug("%s: %.2f s on Dask", description, time.perf_counter() - start)
        return result
