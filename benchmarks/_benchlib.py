"""Helpers shared by the benchmark scripts (stdlib and numpy only: the peer environments
with csdid or ModernDiD 0.4.1 import it too, through the scripts' child processes)."""

from __future__ import annotations

import hashlib
import os
import platform
import resource
import subprocess
from pathlib import Path


def maxrss_bytes() -> int:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (BLAS included)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def proc_status_bytes(pid: int | str, field: str) -> int | None:
    """A kB field of /proc/<pid>/status (e.g. VmRSS, VmHWM) in bytes; None if unreadable."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def tolist(x) -> list[float] | None:
    """A flat list of floats (JSON-ready), None kept."""
    import numpy as np

    if x is None:
        return None
    return np.asarray(x, dtype=float).ravel().tolist()


def max_abs_diff(a, b) -> float:
    """Largest |a - b| (NaN in both counts as equal; NaN if the shapes differ)."""
    import numpy as np

    a = np.asarray(a if a is not None else [], dtype=float)
    b = np.asarray(b if b is not None else [], dtype=float)
    if a.shape != b.shape:
        return float("nan")
    if a.size == 0:
        return 0.0
    d = np.abs(a - b)
    d[np.isnan(a) & np.isnan(b)] = 0.0
    return float(np.max(d))


def peer_python(env_var: str, default: Path) -> str | None:
    """Interpreter of a peer environment: ``$env_var`` if it exists, else ``default``."""
    env = os.environ.get(env_var)
    if env and Path(env).exists():
        return env
    return str(default) if default.exists() else None


def source_hash(root: Path) -> str:
    """sha256 (first 12 hex digits) of the package's .py files, names included."""
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        if "__pycache__" not in f.parts:
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def machine_info(repo: Path) -> dict:
    """CPU, memory, platform, BLAS thread settings and the git state of ``python/``."""
    info: dict = {"nproc": str(os.cpu_count())}
    try:
        info["nproc"] = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    try:
        with open("/proc/cpuinfo") as fh:
            info["cpu"] = next(
                (ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "?"
            )
        with open("/proc/meminfo") as fh:
            info["mem_total"] = fh.readline().split(":", 1)[1].strip()
    except OSError:
        pass
    info["platform"] = platform.platform()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var):
            info[var] = os.environ[var]
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "python"],
            cwd=repo, capture_output=True, text=True,
        ).stdout.split("\n")
        dirty = [ln[3:] for ln in dirty if ln.strip()]
        info["git HEAD at start"] = rev + (
            f" + uncommitted changes in {', '.join(dirty)}" if dirty else " (python/ clean)"
        )
    except OSError:
        pass
    return info


def mb(x) -> str:
    """Bytes as MiB with thousands separators; '–' for None."""
    return "–" if x is None else f"{x / 2**20:,.0f}"
