"""Kernel wrappers that kill the process running them, for the fault tests.

They live in a module of their own (not in a test module) so that Dask worker processes,
which start with the test process's ``sys.path``, import them by reference. A marker file
makes "once" hold across processes: the first call that creates it (``O_EXCL``) dies.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import numpy as np


def claim(marker: str) -> bool:
    """Whether this call is the first to create ``marker`` (atomic across processes)."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def die() -> None:
    """Kill the current process at once, as an out-of-memory kill or a crash would."""
    os.kill(os.getpid(), signal.SIGKILL)


class KillOnce:
    """Call ``function``; the first call anywhere (``marker``) kills its process first.

    ``every=True`` kills on every call (a task that can never finish). ``perturb=True``
    makes the wrapped kernel non-deterministic: each call scales its partial sums by a
    random factor within 1e-12 of 1 (keyed sums too), as a kernel with unseeded randomness or a reduction
    in arrival order would.
    """

    def __init__(self, function: Any, marker: str, every: bool = False,
                 perturb: bool = False):
        self.function = function
        self.marker = marker
        self.every = every
        self.perturb = perturb

    def __call__(self, *args: Any) -> Any:
        if self.every or claim(self.marker):
            die()
        out = self.function(*args)
        if self.perturb:
            rng = np.random.default_rng()  # fresh OS entropy on every call
            for name, value in out.sums.items():
                out.sums[name] = value * (1.0 + 1e-12 * rng.uniform(-1.0, 1.0))
            for name, (keys, values) in out.keyed.items():
                out.keyed[name] = (keys, values * (1.0 + 1e-12 * rng.uniform(-1.0, 1.0)))
        return out
