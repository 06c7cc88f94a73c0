#!/usr/bin/env python
"""moderndid's Spark engine against its in-memory engine and ModernDiD 0.4.1's Spark engine.

What it does
------------
1. Writes ``moderndid.gen_did_scalable(n=N, n_periods=10, n_cohorts=6, n_covariates=5,
   random_state=42)["data"]`` to Parquet under ``benchmarks/_data/`` (gitignored), once;
   every engine reads the same files:

   * N <= 1 000 000: one file ``did_scalable_n{N}_seed42.parquet`` (the file that
     ``bench_att_gt.py`` uses at the same N);
   * 1 000 000 < N <= ``--whole-max`` (default 2 000 000): generated in one call (the
     exact ``random_state=42`` data) and written as several files under the folder
     ``did_scalable_n{N}_seed42/`` (``--file-units`` units per file);
   * N > ``--whole-max``: generated in chunks of ``--chunk-units`` units straight to
     Parquet (the whole frame is never in memory), chunk k with ``random_state=42 + k``
     and ids shifted by ``k * chunk_units`` (ids unique, every chunk a balanced panel),
     under ``did_scalable_n{N}_seed42_chunks{C}/``.

   A small file (``gen_did_scalable(n=2000, ..., random_state=42)``) serves the warm-up
   fits.
2. Runs each variant ``--repeats`` times, each run in a fresh process, variants
   interleaved. Every fit is ``att_gt(data, "y", "time", "id", "group",
   xformla="~ cov1 + cov2 + cov3 + cov4 + cov5", est_method="dr")`` followed by ``aggte``
   of type simple, dynamic, group and calendar:

   ``inmem``          moderndid in memory: ``pd.read_parquet`` then the fit
   ``inmem_boot``     the same with ``boot=True, biters=999, random_state=0``
   ``spark``          moderndid on Spark: ``spark.read.parquet`` then the fit, after a
                      warm-up fit on the small file in the same session
   ``spark_boot``     the same with ``boot=True, biters=999, random_state=0``
   ``spark_cold``     ``spark`` without the warm-up fit (the fit is the session's first job)
   ``spark_boot_py``  ``spark_boot`` with ``spark.moderndid.jvmBootstrap=false``: the
                      bootstrap draws made in the Python workers instead of the JVM
   ``mdid041``        ModernDiD 0.4.1 on Spark (its own interpreter, ``$MDID_PY``), same
                      call through its ``moderndid.att_gt`` (which dispatches a Spark
                      DataFrame to ``moderndid.spark.att_gt.spark_att_gt``), with warm-up
   ``mdid041_boot``   the same with ``boot=True, biters=999, random_state=0``
   ``mdid041_cold``   ``mdid041`` without the warm-up fit

   Spark sessions: ``SparkSession.builder.master("local[2]")`` with
   ``spark.driver.memory`` (``--driver-memory``, default 6g),
   ``spark.sql.shuffle.partitions`` (``--shuffle-partitions``, default 8) and
   ``spark.ui.showConsoleProgress=false``; moderndid's session goes through
   ``moderndid.spark.configure(builder)`` (its jar, its Python workers, Arrow batches of
   100 000 rows); ModernDiD 0.4.1's gets ``spark.pyspark.python`` set to its interpreter
   (it has no jar).
3. Records per run: session start-up (``getOrCreate``), the warm-up fit, the read
   (``pd.read_parquet``; for Spark the lazy ``spark.read.parquet``, which only reads the
   schema), the fit and the four ``aggte`` calls (wall time); the CPU time of the driver
   and of the whole process tree (driver + JVM + Python workers, from ``/proc``); the
   Python driver's peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``, also ``VmHWM``); the
   JVM's peak RSS (``VmHWM`` of the ``java`` child, read before the session stops) and,
   sampled every 0.25 s, the peak RSS of the Python workers together and of the whole
   tree; the 1-min load average at start and end.
4. Compares ATT(g, t), SEs and aggregated effects with the first run of the reference
   variant (``inmem``, else ``spark``) and writes ``results/spark_<date>_n<N>.md`` (also
   printed) and ``.json``.

Usage (from the repository root)::

    eval "$(../shared/tools/peer-envs.sh)"                  # sets MDID_PY
    .venv/bin/python benchmarks/bench_spark.py --n 200000 --repeats 3
    .venv/bin/python benchmarks/bench_spark.py --n 10000000 --repeats 1 --variants spark_cold

Only the standard library is needed at import time, so the same file serves as the child
process under ModernDiD 0.4.1's interpreter.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _benchlib import (
    cpu_seconds,
    max_abs_diff,
    maxrss_bytes,
    mb,
    peer_python,
    proc_status_bytes,
    source_hash,
    tolist,
)
from _benchlib import (
    machine_info as base_machine_info,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA_DIR = HERE / "_data"
LOG_DIR = DATA_DIR / "logs"
RESULTS_DIR = HERE / "results"

SEED = 42
N_PERIODS = 10
N_COHORTS = 6
N_COVARIATES = 5
WARM_N = 2000
COVARIATES = [f"cov{k}" for k in range(1, N_COVARIATES + 1)]
XFORMLA = "~ " + " + ".join(COVARIATES)
AGG_TYPES = ("simple", "dynamic", "group", "calendar")
BITERS = 999

# variant -> (implementation, engine, bootstrap, warm-up)
VARIANTS = {
    "inmem": ("moderndid", "inmem", False, False),
    "inmem_boot": ("moderndid", "inmem", True, False),
    "spark": ("moderndid", "spark", False, True),
    "spark_boot": ("moderndid", "spark", True, True),
    "spark_cold": ("moderndid", "spark", False, False),
    "spark_boot_py": ("moderndid", "spark", True, True),
    "mdid041": ("mdid041", "spark", False, True),
    "mdid041_boot": ("mdid041", "spark", True, True),
    "mdid041_cold": ("mdid041", "spark", False, False),
}
# Spark settings of one variant on top of the common ones
VARIANT_CONF = {"spark_boot_py": {"spark.moderndid.jvmBootstrap": "false"}}
DEFAULT_VARIANTS = (
    "inmem",
    "inmem_boot",
    "spark",
    "spark_boot",
    "spark_cold",
    "mdid041",
    "mdid041_boot",
)
MDID_DEFAULT_PY = Path.home() / ".cache" / "moderndid-peers" / "mdid" / "bin" / "python"
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# --------------------------------------------------------------------------------------
# process accounting (stdlib only)
# --------------------------------------------------------------------------------------



def _stat(pid: int | str) -> tuple[int, float] | None:
    """(ppid, CPU seconds incl. waited-for children) of a process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            text = fh.read()
    except OSError:
        return None
    rest = text[text.rfind(")") + 2 :].split()
    try:
        ppid = int(rest[1])
        ticks = int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])
    except (IndexError, ValueError):
        return None
    return ppid, ticks / CLK_TCK


def _comm(pid: int | str) -> str:
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return fh.read().strip()
    except OSError:
        return "?"


def descendants(root: int) -> dict[int, float]:
    """Descendant pids of ``root`` with their CPU seconds (own + waited-for children)."""
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = _stat(entry)
        if st is not None:
            parent[int(entry)], cpu[int(entry)] = st
    out: dict[int, float] = {}
    frontier = [root]
    while frontier:
        p = frontier.pop()
        for child, pp in parent.items():
            if pp == p and child not in out:
                out[child] = cpu[child]
                frontier.append(child)
    return out


def tree_cpu() -> float:
    """CPU seconds of this process and all its live descendants (with their reaped children)."""
    return sum(tree_cpu_split().values())


def tree_cpu_split() -> dict[str, float]:
    """CPU seconds of the driver, the JVM(s) and the other descendants (Python workers)."""
    out = {"driver": cpu_seconds(), "jvm": 0.0, "workers": 0.0}
    for pid, cpu in descendants(os.getpid()).items():
        out["jvm" if _comm(pid) == "java" else "workers"] += cpu
    return out


class TreeSampler(threading.Thread):
    """Samples the RSS of the driver's descendants (JVM, Python workers) every ``interval``.

    Writes the current peaks and stage to ``progress_path`` every few seconds, so that a
    run that is killed still leaves them behind.
    """

    def __init__(self, progress_path: str | None, interval: float = 0.25):
        super().__init__(daemon=True)
        self.interval = interval
        self.progress_path = progress_path
        self.stop_event = threading.Event()
        self.stage = "start"
        self.stages: list[tuple[str, float]] = []
        self.t0 = time.perf_counter()
        self.java_pid: int | None = None
        self.peak_java = 0
        self.peak_workers = 0
        self.peak_tree = 0
        self.max_workers = 0
        self.extra: dict = {}

    def set_stage(self, stage: str) -> None:
        self.stage = stage
        self.stages.append((stage, round(time.perf_counter() - self.t0, 2)))
        self.write_progress()

    def sample(self) -> None:
        me = os.getpid()
        own = proc_status_bytes(me, "VmRSS") or 0
        java = workers = 0
        n_workers = 0
        biggest_java = 0
        for pid in descendants(me):
            rss = proc_status_bytes(pid, "VmRSS") or 0
            if _comm(pid) == "java":
                # spark-submit first runs a short-lived launcher JVM; keep the largest one
                if rss > biggest_java:
                    biggest_java, self.java_pid = rss, pid
                java += rss
            elif rss:
                workers += rss
                n_workers += 1
        self.peak_java = max(self.peak_java, java)
        self.peak_workers = max(self.peak_workers, workers)
        self.peak_tree = max(self.peak_tree, own + java + workers)
        self.max_workers = max(self.max_workers, n_workers)

    def snapshot(self) -> dict:
        return {
            "stage": self.stage,
            "stages": self.stages,
            "elapsed": time.perf_counter() - self.t0,
            "java_pid": self.java_pid,
            "java_vmhwm": proc_status_bytes(self.java_pid, "VmHWM") if self.java_pid else None,
            "peak_java_sampled": self.peak_java,
            "peak_workers_sampled": self.peak_workers,
            "peak_tree_sampled": self.peak_tree,
            "max_worker_processes": self.max_workers,
            "driver_maxrss": maxrss_bytes(),
            "load": os.getloadavg()[0],
            **self.extra,
        }

    def write_progress(self) -> None:
        if not self.progress_path:
            return
        try:
            tmp = self.progress_path + ".tmp"
            with open(tmp, "w") as fh:
                json.dump(self.snapshot(), fh)
            os.replace(tmp, self.progress_path)
        except OSError:
            pass

    def run(self) -> None:
        last_write = 0.0
        while not self.stop_event.wait(self.interval):
            try:
                self.sample()
            except Exception:  # never let the sampler kill the run
                pass
            if time.perf_counter() - last_write > 5:
                self.write_progress()
                last_write = time.perf_counter()


# --------------------------------------------------------------------------------------
# child side
# --------------------------------------------------------------------------------------



def _fit(moderndid, data, boot: bool):
    kwargs = dict(boot=True, biters=BITERS, random_state=0) if boot else {}
    t0 = time.perf_counter()
    res = moderndid.att_gt(
        data, "y", "time", "id", "group", xformla=XFORMLA, est_method="dr", **kwargs
    )
    t_fit = time.perf_counter() - t0
    aggs = {ty: moderndid.aggte(res, type=ty) for ty in AGG_TYPES}
    return res, aggs, t_fit, time.perf_counter() - t0


def _numbers(res, aggs) -> tuple[dict, dict]:
    cells = {
        "group": tolist(res.groups),
        "time": tolist(res.times),
        "att": tolist(res.att_gt),
        "se": tolist(res.se_gt),
    }
    out = {}
    for ty, a in aggs.items():
        out[ty] = {
            "overall_att": float(a.overall_att),
            "overall_se": float(a.overall_se),
            "event": tolist(a.event_times),
            "att": tolist(a.att_by_event),
            "se": tolist(a.se_by_event),
        }
    return cells, out


def _child(
    variant: str, data_path: str, warm_path: str, result_path: str, conf: dict[str, str]
) -> None:
    impl, engine, boot, warm = VARIANTS[variant]
    rss_start = maxrss_bytes()
    load_start = os.getloadavg()[0]
    sampler = TreeSampler(result_path + ".progress")
    sampler.start()
    sampler.set_stage("imports")

    import logging

    import numpy as np
    import pandas as pd

    import moderndid

    logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("moderndid").setLevel(logging.INFO)  # pass timings, for progress
    if engine == "spark":
        import pyspark
        from pyspark.sql import SparkSession
    lib_version = getattr(moderndid, "__version__", "?")
    rss_imports = maxrss_bytes()
    out: dict = {
        "variant": variant,
        "impl": impl,
        "engine": engine,
        "boot": boot,
        "warmup": warm,
        "lib_version": lib_version,
        "lib_file": moderndid.__file__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "pid": os.getpid(),
    }
    spark = None
    if engine == "spark":
        out["pyspark"] = pyspark.__version__
        sampler.set_stage("session start")
        t0 = time.perf_counter()
        builder = SparkSession.builder.master(conf.pop("master")).appName(f"bench {variant}")
        for k, v in {**conf, **VARIANT_CONF.get(variant, {})}.items():
            builder = builder.config(k, v)
        if impl == "moderndid":
            from moderndid.spark import configure

            builder = configure(builder)
        else:
            os.environ["PYSPARK_PYTHON"] = sys.executable
            builder = builder.config("spark.pyspark.python", sys.executable)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("WARN")
        out["t_session"] = time.perf_counter() - t0
        out["spark_conf"] = {
            k: v
            for k, v in sorted(spark.sparkContext.getConf().getAll())
            if k.startswith(
                (
                    "spark.master",
                    "spark.driver.memory",
                    "spark.sql.shuffle",
                    "spark.jars",
                    "spark.pyspark",
                    "spark.sql.execution.arrow",
                    "spark.default.parallelism",
                )
            )
        }
        out["default_parallelism"] = spark.sparkContext.defaultParallelism
        out["rss_after_session"] = maxrss_bytes()
        if warm:
            sampler.set_stage("warm-up fit")
            small = spark.read.parquet(warm_path)
            _, _, t_wfit, t_west = _fit(moderndid, small, boot)
            out["t_warmup_fit"], out["t_warmup"] = t_wfit, t_west
        sampler.set_stage("read")
        c0, tc0 = cpu_seconds(), tree_cpu()
        t0 = time.perf_counter()
        data = spark.read.parquet(data_path)
        out["t_read"] = time.perf_counter() - t0
        out["frame_bytes"] = None
    else:
        sampler.set_stage("read")
        c0, tc0 = cpu_seconds(), tree_cpu()
        t0 = time.perf_counter()
        data = pd.read_parquet(data_path)
        out["t_read"] = time.perf_counter() - t0
        out["frame_bytes"] = int(data.memory_usage(deep=True).sum())
        out["n_rows"] = len(data)
    out["rss_after_read"] = maxrss_bytes()
    out["load_fit_start"] = os.getloadavg()[0]

    sampler.set_stage("att_gt + aggte")
    passes: list[str] = []

    pass_cpu: list[dict] = []

    class _Keep(logging.Handler):
        def emit(self, record):
            passes.append(record.getMessage())
            # CPU by process at the end of every pass (a /proc scan, ~10 ms)
            pass_cpu.append({"t": time.perf_counter(), **tree_cpu_split()})

    keep = _Keep(level=logging.INFO)
    logging.getLogger("moderndid").addHandler(keep)
    c1, tc1, split1 = cpu_seconds(), tree_cpu(), tree_cpu_split()
    t_start = time.perf_counter()
    res, aggs, t_fit, t_est = _fit(moderndid, data, boot)
    split2 = tree_cpu_split()
    out["cpu_split_estimate"] = {k: split2[k] - split1[k] for k in split1}
    if pass_cpu:
        # up to the end of the first pass (preparation + cell summaries) and after it
        first = pass_cpu[0]
        out["cpu_split_prep"] = {
            "wall": first["t"] - t_start,
            **{k: first[k] - split1[k] for k in split1},
        }
        out["cpu_split_passes"] = {
            "wall": pass_cpu[-1]["t"] - first["t"],
            **{k: pass_cpu[-1][k] - first[k] for k in split1},
        }
    logging.getLogger("moderndid").removeHandler(keep)
    out["pass_log"] = passes
    out["cpu_driver_estimate"] = cpu_seconds() - c1
    out["cpu_tree_estimate"] = tree_cpu() - tc1
    out["cpu_tree_read_estimate"] = tree_cpu() - tc0
    out["cpu_driver_read_estimate"] = cpu_seconds() - c0
    out["t_fit"], out["t_aggte"], out["t_estimate"] = t_fit, t_est - t_fit, t_est
    params = dict(getattr(res, "estimation_params", {}) or {})
    out["engine_param"] = params.get("engine")
    out["n_units"] = params.get("n_units")
    out["n_obs"] = params.get("n_obs")
    out["cells"], out["aggs"] = _numbers(res, aggs)
    sampler.set_stage("done")
    sampler.sample()
    out.update(sampler.snapshot())
    if engine != "spark":
        out.setdefault("n_rows", out["n_obs"])
    out.update(
        rss_start=rss_start,
        rss_imports=rss_imports,
        rss_peak=maxrss_bytes(),
        vmhwm_peak=proc_status_bytes("self", "VmHWM"),
        load_start=load_start,
        load_end=os.getloadavg()[0],
    )
    sampler.stop_event.set()
    with open(result_path, "w") as fh:
        json.dump(out, fh)
    if spark is not None:
        spark.stop()


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------


def data_path(n: int, whole_max: int, chunk_units: int) -> Path:
    if n <= 1_000_000:
        return DATA_DIR / f"did_scalable_n{n}_seed{SEED}.parquet"
    if n <= whole_max:
        return DATA_DIR / f"did_scalable_n{n}_seed{SEED}"
    return DATA_DIR / f"did_scalable_n{n}_seed{SEED}_chunks{chunk_units}"


_GEN_CODE = r"""
import json, os, sys, time
import moderndid
n, kind, path, per = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
T, C, K, SEED = (int(x) for x in sys.argv[5:9])
kw = dict(n_periods=T, n_cohorts=C, n_covariates=K)
t0 = time.perf_counter()
if kind == "single":
    d = moderndid.gen_did_scalable(n, random_state=SEED, **kw)["data"]
    d.to_parquet(path + ".tmp", index=False)
    os.replace(path + ".tmp", path)
    files = 1
elif kind == "whole":
    tmp = path + ".tmp"
    os.makedirs(tmp, exist_ok=True)
    d = moderndid.gen_did_scalable(n, random_state=SEED, **kw)["data"]
    rows = per * T
    files = 0
    for k, start in enumerate(range(0, len(d), rows)):
        d.iloc[start:start + rows].to_parquet(f"{tmp}/part-{k:05d}.parquet", index=False)
        files += 1
    os.replace(tmp, path)
else:  # chunks, never the whole frame in memory
    tmp = path + ".tmp"
    os.makedirs(tmp, exist_ok=True)
    files = 0
    for k, start in enumerate(range(0, n, per)):
        f = f"{tmp}/part-{k:05d}.parquet"
        if not os.path.exists(f):  # resumable
            m = min(per, n - start)
            d = moderndid.gen_did_scalable(m, random_state=SEED + k, **kw)["data"]
            d["id"] += start
            d.to_parquet(f + ".part", index=False)
            os.replace(f + ".part", f)
            del d
            print(f"chunk {k}: ids {start + 1}..{start + m}", flush=True)
        files += 1
    os.replace(tmp, path)
meta = dict(n=n, kind=kind, units_per_file=per, files=files, seconds=time.perf_counter() - t0,
            n_periods=T, n_cohorts=C, n_covariates=K, seed=SEED,
            seeds=(f"{SEED} + k for chunk k" if kind == "chunks" else SEED))
with open(path.rstrip("/") + ".meta.json", "w") as fh:
    json.dump(meta, fh)
"""


def ensure_data(
    n: int, whole_max: int, chunk_units: int, file_units: int, env: dict | None
) -> Path:
    path = data_path(n, whole_max, chunk_units)
    if path.exists():
        return path
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    if n <= 1_000_000:
        kind, per = "single", n
    elif n <= whole_max:
        kind, per = "whole", file_units
    else:
        kind, per = "chunks", chunk_units
    print(f"generating {path} ({kind}) ...", flush=True)
    subprocess.run(
        [
            sys.executable,
            "-c",
            _GEN_CODE,
            str(n),
            kind,
            str(path),
            str(per),
            str(N_PERIODS),
            str(N_COHORTS),
            str(N_COVARIATES),
            str(SEED),
        ],
        check=True,
        env=env,
    )
    return path


def disk_usage(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# --------------------------------------------------------------------------------------
# parent side
# --------------------------------------------------------------------------------------



def run_child(
    python: str,
    variant: str,
    data: Path,
    warm: Path,
    timeout: float,
    conf: dict,
    env: dict | None,
    tag: str,
) -> dict:
    """Run one child in its own process group; on timeout kill that group (JVM included)."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{tag}.log"
    fd, result_path = tempfile.mkstemp(suffix=".json", prefix="bench_spark_")
    os.close(fd)
    os.unlink(result_path)
    cmd = [
        python,
        str(Path(__file__).resolve()),
        "--child",
        variant,
        "--data",
        str(data),
        "--warm-data",
        str(warm),
        "--result",
        result_path,
        "--conf",
        json.dumps(conf),
    ]
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(REPO),
            env=env,
            start_new_session=True,
        )
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the group this call created
            except ProcessLookupError:
                pass
            proc.wait()
    wall = time.perf_counter() - t0
    tail = log_path.read_text(errors="replace")[-6000:]
    progress = None
    try:
        with open(result_path + ".progress") as fh:
            progress = json.load(fh)
    except (OSError, ValueError):
        pass
    try:
        if rc is None or rc != 0 or not os.path.exists(result_path):
            how = f"timed out after {timeout:.0f} s" if rc is None else f"rc={rc}"
            err = RuntimeError(f"{variant} failed ({how}); log {log_path.relative_to(REPO)}")
            err.tail = tail  # type: ignore[attr-defined]
            err.progress = progress  # type: ignore[attr-defined]
            err.wall = wall  # type: ignore[attr-defined]
            raise err
        with open(result_path) as fh:
            out = json.load(fh)
    finally:
        for p in (result_path, result_path + ".progress"):
            try:
                os.unlink(p)
            except OSError:
                pass
    out["t_process"] = wall
    out["log"] = str(log_path.relative_to(REPO))
    out["log_tail"] = tail[-3000:]
    return out



def compare(ref: dict, other: dict) -> dict:
    rc, oc = ref["cells"], other["cells"]
    rkey = {(g, t): i for i, (g, t) in enumerate(zip(rc["group"], rc["time"], strict=True))}
    okey = {(g, t): i for i, (g, t) in enumerate(zip(oc["group"], oc["time"], strict=True))}
    common = [k for k in rkey if k in okey]
    ri, oi = [rkey[k] for k in common], [okey[k] for k in common]
    out = {
        "n_ref": len(rkey),
        "n_other": len(okey),
        "n_common": len(common),
        "att": max_abs_diff([rc["att"][i] for i in ri], [oc["att"][i] for i in oi]),
        "se": max_abs_diff([rc["se"][i] for i in ri], [oc["se"][i] for i in oi]),
    }
    agg_att = agg_se = 0.0
    for ty in AGG_TYPES:
        ra, oa = ref["aggs"][ty], other["aggs"][ty]
        agg_att = max(agg_att, max_abs_diff([ra["overall_att"]], [oa["overall_att"]]))
        agg_se = max(agg_se, max_abs_diff([ra["overall_se"]], [oa["overall_se"]]))
        if ra["event"] != oa["event"]:
            agg_att = float("nan")
            continue
        if ra["event"] is not None:
            agg_att = max(agg_att, max_abs_diff(ra["att"], oa["att"]))
            agg_se = max(agg_se, max_abs_diff(ra["se"], oa["se"]))
    out["agg_att"], out["agg_se"] = agg_att, agg_se
    out["att_scale"] = max(abs(x) for x in rc["att"]) if rc["att"] else float("nan")
    return out


def machine_info() -> dict:
    info = base_machine_info(REPO)
    try:
        jv = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
        info["java"] = jv.splitlines()[0] if jv else "?"
    except OSError:
        info["java"] = "?"
    du = shutil.disk_usage(str(HERE))
    info["disk free at start"] = f"{du.free / 2**30:.0f} GiB"
    return info



def _s(x) -> str:
    return "–" if x is None else f"{x:.2f}"


def _fmt_diff(x: float) -> str:
    return "nan" if x != x else f"{x:.1e}"


def _med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _min(xs):
    xs = [x for x in xs if x is not None]
    return min(xs) if xs else None


def _max(xs):
    xs = [x for x in xs if x is not None]
    return max(xs) if xs else None


def _pass_summary(r: dict) -> tuple[int, float] | None:
    """(number of Spark passes, their total seconds) from moderndid's INFO log of the fit."""
    import re

    secs = [
        float(m.group(1))
        for line in r.get("pass_log") or []
        if (m := re.search(r"att_gt: .+: ([0-9.]+) s$", line))
    ]
    return (len(secs), sum(secs)) if secs else None


def summarise(runs: dict[str, list[dict]]) -> dict[str, dict]:
    summ = {}
    for v, rs in runs.items():
        if not rs:
            continue
        re = [r["t_read"] + r["t_estimate"] for r in rs]
        summ[v] = {
            "n": len(rs),
            "session_best": _min(r.get("t_session") for r in rs),
            "session_med": _med(r.get("t_session") for r in rs),
            "warmup_med": _med(r.get("t_warmup") for r in rs),
            "read_med": _med(r["t_read"] for r in rs),
            "est_best": min(r["t_estimate"] for r in rs),
            "est_med": _med(r["t_estimate"] for r in rs),
            "fit_med": _med(r["t_fit"] for r in rs),
            "aggte_med": _med(r["t_aggte"] for r in rs),
            "re_best": min(re),
            "re_med": _med(re),
            "cpu_tree_best": min(r["cpu_tree_estimate"] for r in rs),
            "cpu_tree_med": _med(r["cpu_tree_estimate"] for r in rs),
            "cpu_driver_med": _med(r["cpu_driver_estimate"] for r in rs),
            "cpu_split": {
                k: _med(r["cpu_split_estimate"][k] for r in rs)
                for k in ("driver", "jvm", "workers")
            }
            if all(r.get("cpu_split_estimate") for r in rs)
            else None,
            "proc_med": _med(r["t_process"] for r in rs),
            "rss_peak": max(r["rss_peak"] for r in rs),
            "rss_imports": max(r["rss_imports"] for r in rs),
            "rss_after_session": _max(r.get("rss_after_session") for r in rs),
            "vmhwm_peak": _max(r.get("vmhwm_peak") for r in rs),
            "java_vmhwm": _max(r.get("java_vmhwm") for r in rs),
            "workers_peak": _max(r.get("peak_workers_sampled") for r in rs) or None,
            "tree_peak": _max(r.get("peak_tree_sampled") for r in rs),
            "passes": _pass_summary(rs[0]),
            "frame_bytes": rs[0].get("frame_bytes"),
            "n_rows": rs[0].get("n_obs") or rs[0].get("n_rows"),
            "per_run": [
                (
                    r["t_read"],
                    r["t_estimate"],
                    r["cpu_tree_estimate"],
                    r.get("t_session"),
                    r.get("t_warmup"),
                    r["load_start"],
                    r["load_end"],
                )
                for r in rs
            ],
            "lib": (
                f"{r0['impl']} {r0['lib_version']} (py {r0['python']}, numpy "
                f"{r0['numpy']}, pandas {r0['pandas']}"
                + (f", pyspark {r0['pyspark']}" if r0.get("pyspark") else "")
                + ")"
            )
            if (r0 := rs[0])
            else "",
        }
    return summ


LABELS = {
    "inmem": "moderndid in memory",
    "inmem_boot": "moderndid in memory, boot",
    "spark": "moderndid Spark (warm)",
    "spark_boot": "moderndid Spark, boot (warm)",
    "spark_cold": "moderndid Spark, cold (no warm-up)",
    "spark_boot_py": "moderndid Spark, boot drawn in Python (warm)",
    "mdid041": "ModernDiD 0.4.1 Spark (warm)",
    "mdid041_boot": "ModernDiD 0.4.1 Spark, boot (warm)",
    "mdid041_cold": "ModernDiD 0.4.1 Spark, cold",
}


def _ratio(a, b) -> str:
    return "–" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def render(
    args,
    command: str,
    info: dict,
    path: Path,
    conf: dict,
    runs,
    summ,
    comps,
    ref_name: str | None,
    errors: list[dict],
    data_meta: dict,
) -> str:
    L: list[str] = []
    today = _dt.date.today().isoformat()
    L.append(f"# Spark benchmark, n = {args.n:,} units, {today}")
    L.append("")
    L.append(f"Command: `{command}`  ")
    rows = next((s["n_rows"] for s in summ.values() if s.get("n_rows")), None)
    L.append(
        f"Data: `gen_did_scalable(n={args.n}, n_periods={N_PERIODS}, n_cohorts={N_COHORTS}, "
        f'n_covariates={N_COVARIATES}, random_state={SEED})["data"]` → '
        f"`{path.relative_to(REPO)}` ({data_meta.get('desc', '')}; "
        f"{disk_usage(path) / 2**20:,.0f} MiB on disk" + (f"; {rows:,} rows" if rows else "") + ")"
    )
    fb = next((s["frame_bytes"] for s in summ.values() if s.get("frame_bytes")), None)
    if fb:
        L.append(f"; in memory (pandas) {fb / 2**20:,.1f} MiB.")
    L.append("")
    L.append(
        f"Warm-up data: `gen_did_scalable(n={WARM_N}, ..., random_state={SEED})` "
        f"(`{data_path(WARM_N, 0, 0).relative_to(REPO)}`)."
    )
    L.append("")
    L.append("Machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    L.append("")
    L.append(
        "Spark session settings (all Spark variants): "
        + ", ".join(f"`{k}={v}`" for k, v in conf.items())
        + "; moderndid's builder also goes through "
        "`moderndid.spark.configure` (jar, `spark.pyspark.python`, "
        "`spark.sql.execution.arrow.maxRecordsPerBatch=100000`); ModernDiD 0.4.1 gets "
        "`spark.pyspark.python` = its interpreter."
    )
    L.append("")
    libs: dict[str, list[str]] = {}
    for v, s in summ.items():
        libs.setdefault(s["lib"], []).append(v)
    L.append("Libraries: " + "; ".join(f"{k} [{', '.join(vs)}]" for k, vs in libs.items()))
    L.append("")
    L.append(
        f"Each variant ran up to {args.repeats} time(s), each in a fresh process, variants "
        'interleaved. Call: `att_gt(data, "y", "time", "id", "group", xformla="'
        f'{XFORMLA}", est_method="dr")` (boot variants: `boot=True, biters={BITERS}, '
        "random_state=0`), then `aggte` simple, dynamic, group, calendar. *session* = "
        "`builder.getOrCreate()`; *warm-up* = the same fit + aggte on the small file in the same "
        "session (the session's first fit, i.e. its cold cost on tiny data); *read* = "
        "`pd.read_parquet` (in memory) or `spark.read.parquet` (Spark: lazy, schema only; the "
        "scan happens in the fit); *estimate* = att_gt + the four aggte calls; *read + est.* "
        "their sum; *tree CPU* = user + system CPU seconds of the estimate in the driver, the "
        "JVM and the Python workers together (from /proc). *driver peak* = "
        "`ru_maxrss` of the Python driver; *JVM peak* = VmHWM of the `java` child; *workers* = "
        "peak of the sum of the Python workers' RSS (sampled every 0.25 s); *tree* = peak of "
        "driver + JVM + workers (sampled). Times in s, memory in MiB."
    )
    L.append("")
    hdr = (
        "| variant | runs | session | warm-up | read | estimate best | estimate median "
        "| att_gt median | aggte median | read + est. best | read + est. median "
        "| tree CPU median | driver peak RSS | driver RSS after imports | JVM peak | workers peak "
        "| tree peak |"
    )
    L.append(hdr)
    L.append("|" + "---|" * (hdr.count("|") - 1))
    for v, s in summ.items():
        L.append(
            f"| {LABELS.get(v, v)} | {s['n']} | {_s(s['session_med'])} | {_s(s['warmup_med'])} "
            f"| {_s(s['read_med'])} | {_s(s['est_best'])} | {_s(s['est_med'])} "
            f"| {_s(s['fit_med'])} | {_s(s['aggte_med'])} | {_s(s['re_best'])} "
            f"| {_s(s['re_med'])} | {_s(s['cpu_tree_med'])} | {mb(s['rss_peak'])} "
            f"| {mb(s['rss_imports'])} | {mb(s['java_vmhwm'])} | {mb(s['workers_peak'])} "
            f"| {mb(s['tree_peak'])} |"
        )
    L.append("")
    L.append(
        "Per run: read + estimate s / estimate s / tree CPU s [session s, warm-up s] "
        "{1-min load average at child start → end}:"
    )
    L.append("")
    for v, s in summ.items():
        L.append(
            f"- {v}: "
            + ", ".join(
                f"{r + e:.2f} / {e:.2f} / {c:.1f}"
                + (f" [{ss:.1f}, {_s(w)}]" if ss is not None else "")
                + f" {{{l0:.1f} → {l1:.1f}}}"
                for r, e, c, ss, w, l0, l1 in s["per_run"]
            )
        )
    L.append("")

    cs = [
        (v, s["cpu_split"])
        for v, s in summ.items()
        if s.get("cpu_split") and VARIANTS[v][1] == "spark"
    ]
    if cs:
        L.append(
            "Tree CPU of the estimate split by process (median s): "
            + "; ".join(
                f"{v}: driver {c['driver']:.1f}, JVM {c['jvm']:.1f}, Python workers {c['workers']:.1f}"
                for v, c in cs
            )
            + "."
        )
        L.append("")
    ph = [
        (v, runs[v][0])
        for v in summ
        if runs[v][0].get("cpu_split_prep") and VARIANTS[v][1] == "spark"
    ]
    if ph:
        L.append(
            "CPU by phase (first run, s): *up to the end of the first pass* = preparation "
            "+ the cell-summaries pass; *later passes* = the logit, estimator and moments "
            "passes:"
        )
        L.append("")
        for v, r in ph:
            a, b = r["cpu_split_prep"], r["cpu_split_passes"]
            L.append(
                f"- {v}: up to the end of the first pass {a['wall']:.1f} s wall, CPU driver "
                f"{a['driver']:.1f} / JVM {a['jvm']:.1f} / workers {a['workers']:.1f}; later "
                f"passes {b['wall']:.1f} s wall, CPU driver {b['driver']:.1f} / JVM "
                f"{b['jvm']:.1f} / workers {b['workers']:.1f}"
            )
        L.append("")
    split = [(v, s["passes"]) for v, s in summ.items() if s.get("passes")]
    if split:
        L.append(
            "Where moderndid's fit goes (first run; from its `moderndid` INFO log, one line "
            "per pass over the units: cell summaries, logit iterations, estimator sums, "
            "moments; on Spark each pass is a Spark job over the persisted unit table). "
            "*rest* = att_gt time outside the passes: preparation (on Spark: column "
            "statistics, the shuffle into the unit table and its persist) and driver work:"
        )
        L.append("")
        for v, (k, t) in split:
            r0 = runs[v][0]
            lines = [ln.split("att_gt: ", 1)[-1] for ln in r0.get("pass_log") or []]
            L.append(
                f"- {v}: {k} passes, {t:.1f} s in passes, rest {r0['t_fit'] - t:.1f} s "
                f"(att_gt {r0['t_fit']:.1f} s); passes: " + ", ".join(lines)
            )
        L.append("")

    # ratios and goals
    base = summ.get("inmem")
    sp = summ.get("spark")
    pe = summ.get("mdid041")
    rows_lines = []
    if base and sp:
        rows_lines.append(
            ("Spark / in-memory, estimate, best", sp["est_best"], base["est_best"], "≤ 3")
        )
        rows_lines.append(
            ("Spark / in-memory, estimate, median", sp["est_med"], base["est_med"], "≤ 3")
        )
        rows_lines.append(
            ("Spark / in-memory, read + estimate, best", sp["re_best"], base["re_best"], "≤ 3")
        )
        rows_lines.append(
            ("Spark / in-memory, read + estimate, median", sp["re_med"], base["re_med"], "≤ 3")
        )
        rows_lines.append(
            ("Spark / in-memory, tree CPU, median", sp["cpu_tree_med"], base["cpu_tree_med"], "")
        )
    if "spark_boot" in summ and "inmem_boot" in summ:
        rows_lines.append(
            (
                "Spark boot / in-memory boot, estimate, median",
                summ["spark_boot"]["est_med"],
                summ["inmem_boot"]["est_med"],
                "",
            )
        )
    if "spark_boot" in summ and "spark_boot_py" in summ:
        rows_lines.append(
            (
                "Spark boot, JVM / Python bootstrap, estimate, median",
                summ["spark_boot"]["est_med"],
                summ["spark_boot_py"]["est_med"],
                "",
            )
        )
    if base and "spark_cold" in summ:
        rows_lines.append(
            (
                "Spark cold / in-memory, read + estimate, median",
                summ["spark_cold"]["re_med"],
                base["re_med"],
                "",
            )
        )
    if sp and pe:
        rows_lines.append(
            (
                "ModernDiD 0.4.1 / moderndid, Spark estimate, best",
                pe["est_best"],
                sp["est_best"],
                "≥ 3",
            )
        )
        rows_lines.append(
            (
                "ModernDiD 0.4.1 / moderndid, Spark estimate, median",
                pe["est_med"],
                sp["est_med"],
                "≥ 3",
            )
        )
        rows_lines.append(
            (
                "ModernDiD 0.4.1 / moderndid, Spark tree CPU, median",
                pe["cpu_tree_med"],
                sp["cpu_tree_med"],
                "",
            )
        )
    if "spark_boot" in summ and "mdid041_boot" in summ:
        rows_lines.append(
            (
                "ModernDiD 0.4.1 / moderndid, Spark boot estimate, median",
                summ["mdid041_boot"]["est_med"],
                summ["spark_boot"]["est_med"],
                "≥ 3",
            )
        )
    if "spark_cold" in summ and "mdid041_cold" in summ:
        rows_lines.append(
            (
                "ModernDiD 0.4.1 / moderndid, Spark cold estimate, median",
                summ["mdid041_cold"]["est_med"],
                summ["spark_cold"]["est_med"],
                "",
            )
        )
    if rows_lines:
        L.append("## Ratios (same run)")
        L.append("")
        L.append("| ratio | numerator (s) | denominator (s) | ratio | goal |")
        L.append("|---|---|---|---|---|")
        for name, a, b, goal in rows_lines:
            L.append(f"| {name} | {_s(a)} | {_s(b)} | **{_ratio(a, b)}** | {goal} |")
        L.append("")
    mem = [(v, s) for v, s in summ.items() if VARIANTS[v][1] == "spark"]
    if mem:
        L.append(
            "Python driver peak RSS (goal: under 1 GB = 954 MiB at 2M units): "
            + ", ".join(f"{v} {mb(s['rss_peak'])} MiB" for v, s in mem)
            + "."
        )
        L.append("")
    if comps:
        L.append(f"## Agreement with `{ref_name}` (first run)")
        L.append("")
        L.append(
            "Max |difference| over the ATT(g, t) cells matched by (group, time), their SEs, "
            "and all aggregated effects (overall and by event / group / period) and SEs. "
            "A bootstrap variant's SEs are bootstrap SEs: against an analytic reference the "
            "SE difference is bootstrap noise; against another bootstrap run with "
            "`random_state=0` it shows whether the multipliers are the same."
        )
        L.append("")
        L.append(
            "| variant | vs | cells (ref/other/common) | ATT(g,t) | SE(g,t) | aggregated ATT "
            "| aggregated SE |"
        )
        L.append("|---|---|---|---|---|---|---|")
        scale = None
        for (v, r), c in comps.items():
            scale = c["att_scale"]
            L.append(
                f"| {v} | {r} | {c['n_ref']}/{c['n_other']}/{c['n_common']} "
                f"| {_fmt_diff(c['att'])} | {_fmt_diff(c['se'])} | {_fmt_diff(c['agg_att'])} "
                f"| {_fmt_diff(c['agg_se'])} |"
            )
        L.append("")
        if scale is not None:
            L.append(f"(Largest |ATT(g, t)| is {scale:.3g}.)")
            L.append("")
    checks = []
    for v, rs in runs.items():
        for r in rs[:1]:
            checks.append(
                f"{v}: engine={r.get('engine_param')}, n_units={r.get('n_units')}, "
                f"n_obs={r.get('n_obs')}, ru_maxrss at child start "
                f"{mb(r['rss_start'])} MiB, driver VmHWM {mb(r.get('vmhwm_peak'))} MiB"
                + (
                    f", default parallelism {r.get('default_parallelism')}"
                    if r.get("default_parallelism")
                    else ""
                )
            )
    if checks:
        L.append("Checks (first run of each): " + "; ".join(checks) + ".")
        L.append("")
    if errors:
        L.append("## Problems")
        L.append("")
        for e in errors:
            L.append(f"- **{e['variant']}** (run {e['run']}): {e['message']}")
            if e.get("progress"):
                p = e["progress"]
                L.append(
                    f"  - how far it got: stage `{p.get('stage')}` after "
                    f"{p.get('elapsed', 0):.0f} s (stages: {p.get('stages')}); driver "
                    f"ru_maxrss {mb(p.get('driver_maxrss'))} MiB, JVM VmHWM "
                    f"{mb(p.get('java_vmhwm'))} MiB, workers peak "
                    f"{mb(p.get('peak_workers_sampled'))} MiB, load {p.get('load')}"
                )
            if e.get("tail"):
                L.append("  - last lines of the log:")
                L.append("")
                L.append("    ```")
                for ln in e["tail"].strip().splitlines()[-25:]:
                    L.append("    " + ln[:400])
                L.append("    ```")
        L.append("")
    return "\n".join(L)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=200_000, help="units (default 200000)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma-separated subset of {','.join(VARIANTS)}",
    )
    p.add_argument("--timeout", type=float, default=3600, help="per run, seconds")
    p.add_argument("--master", default="local[2]")
    p.add_argument("--driver-memory", default="6g")
    p.add_argument("--shuffle-partitions", default="8")
    p.add_argument(
        "--whole-max",
        type=int,
        default=2_000_000,
        help="largest n generated in one call (larger n: in chunks)",
    )
    p.add_argument("--chunk-units", type=int, default=1_000_000)
    p.add_argument(
        "--file-units",
        type=int,
        default=250_000,
        help="units per Parquet file for 1M < n <= whole-max",
    )
    p.add_argument("--out", default=None)
    p.add_argument(
        "--no-snapshot",
        action="store_true",
        help="import moderndid from the working tree instead of a copy taken at start",
    )
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--warm-data", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--conf", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        _child(args.child, args.data, args.warm_data, args.result, json.loads(args.conf))
        return 0

    command = shlex.join(
        [sys.executable, *(sys.argv if argv is None else ["benchmarks/bench_spark.py", *argv])]
    )
    command = command.replace(str(REPO) + "/", "")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        p.error(f"unknown variants {bad}")
    conf = {
        "master": args.master,
        "spark.driver.memory": args.driver_memory,
        "spark.sql.shuffle.partitions": args.shuffle_partitions,
        "spark.ui.showConsoleProgress": "false",
    }

    info = machine_info()
    md_env = dict(os.environ)
    snap_dir = None
    if args.no_snapshot:
        src_note = f"working tree, sha256 at start {source_hash(REPO / 'python' / 'moderndid')}"
    else:
        # Others edit python/ while this runs: children (and, through PYTHONPATH, their Spark
        # workers) import a frozen copy (with the jar, which lives inside the package).
        snap_dir = Path(tempfile.mkdtemp(prefix="moderndid-bench-src-"))
        shutil.copytree(
            REPO / "python" / "moderndid",
            snap_dir / "moderndid",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        md_env["PYTHONPATH"] = os.pathsep.join(
            [str(snap_dir), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        src_note = (
            f"copy of python/moderndid taken at start, sha256 {source_hash(snap_dir / 'moderndid')}"
        )
    peer_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYSPARK_PYTHON")}

    path = ensure_data(args.n, args.whole_max, args.chunk_units, args.file_units, md_env)
    warm = ensure_data(WARM_N, 0, 0, 0, md_env)
    meta_file = Path(str(path).rstrip("/") + ".meta.json")
    data_meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    if data_meta.get("kind") == "chunks":
        data_meta["desc"] = (
            f"{data_meta['files']} files of {data_meta['units_per_file']:,} "
            f"units, chunk k generated with random_state={SEED}+k, ids shifted"
        )
    elif data_meta.get("kind") == "whole":
        data_meta["desc"] = (
            f"one gen_did_scalable call, {data_meta['files']} files of "
            f"{data_meta['units_per_file']:,} units"
        )
    else:
        data_meta["desc"] = "one file"

    errors: list[dict] = []
    mdid_py = peer_python("MDID_PY", MDID_DEFAULT_PY)
    pythons = {}
    for v in variants:
        if VARIANTS[v][0] == "mdid041":
            if mdid_py is None:
                errors.append(
                    {
                        "variant": v,
                        "run": 0,
                        "message": "ModernDiD 0.4.1 interpreter not found (set MDID_PY)",
                    }
                )
                continue
            pythons[v] = mdid_py
        else:
            pythons[v] = sys.executable

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    runs: dict[str, list[dict]] = {v: [] for v in pythons}
    failed: set[str] = set()
    for rep in range(args.repeats):
        for v in pythons:
            if v in failed:
                continue
            print(
                f"[{rep + 1}/{args.repeats}] {v} (load {os.getloadavg()[0]:.1f}) ...",
                end=" ",
                flush=True,
            )
            env = peer_env if VARIANTS[v][0] == "mdid041" else md_env
            try:
                r = run_child(
                    pythons[v],
                    v,
                    path,
                    warm,
                    args.timeout,
                    dict(conf),
                    env,
                    f"spark_{stamp}_n{args.n}_{v}_{rep + 1}",
                )
            except RuntimeError as e:
                errors.append(
                    {
                        "variant": v,
                        "run": rep + 1,
                        "message": str(e),
                        "tail": getattr(e, "tail", ""),
                        "progress": getattr(e, "progress", None),
                    }
                )
                failed.add(v)
                print("FAILED: " + str(e), flush=True)
                continue
            runs[v].append(r)
            print(
                f"session {_s(r.get('t_session'))}s, warm-up {_s(r.get('t_warmup'))}s, read "
                f"{r['t_read']:.2f}s, att_gt {r['t_fit']:.2f}s, aggte {r['t_aggte']:.2f}s, "
                f"driver peak {mb(r['rss_peak'])} MiB, JVM peak {mb(r.get('java_vmhwm'))} MiB",
                flush=True,
            )

    if snap_dir is not None:
        md_files = {
            r["lib_file"] for v, rs in runs.items() if VARIANTS[v][0] == "moderndid" for r in rs
        }
        if any(not f.startswith(str(snap_dir)) for f in md_files):
            errors.append(
                {
                    "variant": "all",
                    "run": 0,
                    "message": f"moderndid not imported from the snapshot: {md_files}",
                }
            )
        shutil.rmtree(snap_dir, ignore_errors=True)
    summ = summarise(runs)
    comps = {}
    ref_name = (
        "inmem"
        if runs.get("inmem")
        else ("spark" if runs.get("spark") else next((v for v, rs in runs.items() if rs), None))
    )
    if ref_name:
        ref = runs[ref_name][0]
        for v, rs in runs.items():
            if rs and v != ref_name:
                comps[(v, ref_name)] = compare(ref, rs[0])
        if len(runs[ref_name]) > 1:
            comps[(f"{ref_name} run 2", ref_name)] = compare(ref, runs[ref_name][1])
        boot_ref = "inmem_boot" if runs.get("inmem_boot") else None
        if boot_ref:
            for v in ("spark_boot", "mdid041_boot"):
                if runs.get(v):
                    comps[(v, boot_ref)] = compare(runs[boot_ref][0], runs[v][0])
        if runs.get("spark") and runs.get("mdid041") and ref_name != "spark":
            comps[("mdid041", "spark")] = compare(runs["spark"][0], runs["mdid041"][0])
    info["moderndid source"] = src_note
    info["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    report = render(args, command, info, path, conf, runs, summ, comps, ref_name, errors, data_meta)
    out = (
        Path(args.out)
        if args.out
        else (RESULTS_DIR / f"spark_{_dt.date.today().isoformat()}_n{args.n}.md")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report + "\n")
    raw = out.with_suffix(".json")
    raw.write_text(
        json.dumps(
            {
                "command": command,
                "machine": info,
                "spark_conf": conf,
                "data": str(path.relative_to(REPO)),
                "data_meta": data_meta,
                "runs": {
                    v: [
                        {k: x for k, x in r.items() if k not in ("cells", "aggs", "log_tail")}
                        for r in rs
                    ]
                    for v, rs in runs.items()
                },
                "estimates": {
                    v: {"cells": rs[0]["cells"], "aggs": rs[0]["aggs"]}
                    for v, rs in runs.items()
                    if rs
                },
                "agreement": {f"{a} vs {b}": c for (a, b), c in comps.items()},
                "errors": errors,
            },
            indent=1,
        )
    )
    print()
    print(report)
    print(f"\nwritten to {out} (raw: {raw})")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
