#!/usr/bin/env python
"""moderndid's Dask and Spark engines on a large panel under per-worker memory limits.

Issue 12, item 4: a Dask ``LocalCluster`` with ``memory_limit="2GB"`` per worker and a
Spark standalone worker with 2 GB complete a 2M-unit x 10-period fit (20M rows) without
spilling to death; this script records wall time and the peak memory of every worker.

What it does
------------
1. Writes a balanced panel of ``--n`` units x 10 periods to Parquet under
   ``benchmarks/_data/memlim_n{N}_seed42/`` (gitignored), once, in chunks of
   ``--file-units`` units (one file each, never the whole panel in memory): chunk k is
   ``moderndid.gen_did_scalable(file_units, n_periods=10, n_cohorts=6, n_covariates=4,
   random_state=42 + k)["data"]`` with ids shifted by ``k * file_units``. Columns ``id,
   group, time, y, cov1..cov4, cluster`` (all 8-byte numbers).
2. Runs each engine in a fresh child process (the driver), which starts its cluster as
   child processes, reads the Parquet files and fits::

       att_gt(data, yname="y", tname="time", idname="id", gname="group",
              xformla="~ cov1", est_method="dr")      # analytic SEs, no bootstrap

   (``--boot`` adds ``boot=True, biters=999, random_state=0``), then ``aggte(type="dynamic")``.

   * ``dask``: ``distributed.LocalCluster(n_workers=2, threads_per_worker=1,
     processes=True, memory_limit="2GB", dashboard_address=None)`` (Dask's default
     memory thresholds: spill at 60-70 %, pause at 80 %, restart at 95 % of 2 GB), a
     ``Client`` passed as ``client=``, ``dd.read_parquet(folder)``.
   * ``spark``: a standalone master and ONE worker (``spark-class ...Worker --cores 2
     --memory 2g``) started from the pyspark installation; the session
     (``moderndid.spark.configure``: jar on ``spark.jars``) asks for one executor with
     ``spark.executor.memory`` (``--executor-memory``, default 1g: the JVM heap, the
     only memory the standalone worker counts against its 2g) and
     ``spark.executor.cores=2``; ``--pyspark-memory`` (default unset) sets
     ``spark.executor.pyspark.memory`` (an address-space limit on each Python worker).
     ``spark.executor.processTreeMetrics.enabled=true`` so Spark's own executor metrics
     (JVM heap, process-tree RSS of the JVM and of its Python workers) are recorded too,
     and the stages' spill totals are read from the driver's REST API.
3. A sampler thread reads the RSS of every process under the driver every 0.2 s
   (psutil); at the end it also reads ``VmHWM`` (the kernel's exact peak RSS) of the
   processes still alive. Reported: per Dask worker process / for the Spark executor JVM,
   its Python workers and their sum; the driver's peak (``ru_maxrss``); the Dask workers'
   spill counters (``SpillBuffer.cumulative_metrics``) and memory warnings in their logs
   (spilling, pausing, restarts); the Spark stages' ``memoryBytesSpilled`` /
   ``diskBytesSpilled``.
4. Compares ATT(g, t) and their SEs between the engines (target: 1e-8) and writes
   ``results/memory_limits_<date>[_tag].md`` (printed) and ``.json``.

Usage (from the repository root; PYTHONPATH pointing at ``python/`` for a checkout)::

    PYTHONPATH=python .venv/bin/python benchmarks/bench_memory_limits.py --n 2000000

Options: ``--engines dask,spark``, ``--n``, ``--boot``, ``--timeout`` (per engine),
``--tag``, ``--executor-memory``, ``--pyspark-memory``, ``--n-partitions`` (default: the
engines' own choice).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _benchlib import machine_info, max_abs_diff, maxrss_bytes, mb, proc_status_bytes

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA_DIR = HERE / "_data"
RESULTS_DIR = HERE / "results"
SEED = 42
N_PERIODS, N_COHORTS, N_COVARIATES = 10, 6, 4
MEMORY_LIMIT = "2GB"
FIT = dict(yname="y", tname="time", idname="id", gname="group", xformla="~ cov1",
           est_method="dr")
BITERS = 999
# what distributed logs when a worker's memory is under pressure
MEMORY_WARNING = re.compile(r"Unmanaged memory|Pausing|Resuming|spilling|restart|exceed|"
                            r"killed|memory usage", re.I)


# --------------------------------------------------------------------------------- data

def data_path(n: int, file_units: int) -> Path:
    return DATA_DIR / f"memlim_n{n}_f{file_units}_seed{SEED}"


def ensure_data(n: int, file_units: int) -> Path:
    """The panel as one Parquet file per ``file_units`` units (resumable)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import moderndid

    path = data_path(n, file_units)
    if (path / "_done.json").exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for k, start in enumerate(range(0, n, file_units)):
        f = path / f"part-{k:05d}.parquet"
        if f.exists():
            continue
        m = min(file_units, n - start)
        d = moderndid.gen_did_scalable(m, n_periods=N_PERIODS, n_cohorts=N_COHORTS,
                                       n_covariates=N_COVARIATES,
                                       random_state=SEED + k)["data"]
        d["id"] += start
        tmp = f.with_suffix(".tmp")
        pq.write_table(pa.Table.from_pandas(d, preserve_index=False), tmp,
                       row_group_size=1 << 20)
        os.replace(tmp, f)
        del d
    meta = dict(n=n, rows=n * N_PERIODS, files=-(-n // file_units), file_units=file_units,
                n_periods=N_PERIODS, n_cohorts=N_COHORTS, n_covariates=N_COVARIATES,
                seeds=f"{SEED} + k for file k", seconds=round(time.perf_counter() - t0, 1),
                bytes=sum(p.stat().st_size for p in path.glob("*.parquet")))
    (path / "_done.json").write_text(json.dumps(meta))
    return path


# ------------------------------------------------------------------------------ sampler

class Sampler(threading.Thread):
    """RSS of every descendant of this process every ``interval`` s, classified by
    ``classify(proc) -> role`` (None: ignored). Keeps per-pid peaks, the peak of the sum
    per role, and the peak of the sum of the roles in ``group``."""

    def __init__(self, classify, group: tuple[str, ...] = (), interval: float = 0.2,
                 progress: str | None = None):
        super().__init__(daemon=True)
        import psutil

        self.psutil = psutil
        self.me = psutil.Process()
        self.classify = classify
        self.group = group
        self.interval = interval
        self.progress = progress
        self.stop_event = threading.Event()
        self.roles: dict[int, str] = {}
        self.peak: dict[int, int] = {}
        self.role_sum_peak: dict[str, int] = {}
        self.group_peak = 0
        self.samples = 0
        self.stage = "start"
        self.t0 = time.perf_counter()
        self.timeline: list[tuple[float, str, dict[str, int]]] = []

    def sample(self) -> None:
        sums: dict[str, int] = {}
        for proc in self.me.children(recursive=True):
            try:
                # classified at every sample: a process forked by a JVM or a launcher
                # script shows its parent's command line until it execs
                role = self.classify(proc)
                if role is None:
                    continue
                self.roles[proc.pid] = role
                rss = proc.memory_info().rss
            except (self.psutil.NoSuchProcess, self.psutil.AccessDenied, self.psutil.ZombieProcess):
                continue
            self.peak[proc.pid] = max(self.peak.get(proc.pid, 0), rss)
            sums[role] = sums.get(role, 0) + rss
        for role, s in sums.items():
            self.role_sum_peak[role] = max(self.role_sum_peak.get(role, 0), s)
        self.group_peak = max(self.group_peak, sum(v for r, v in sums.items() if r in self.group))
        self.samples += 1
        if self.samples % 25 == 0:  # every 5 s: a coarse timeline
            self.timeline.append((round(time.perf_counter() - self.t0, 1), self.stage,
                                  {r: v >> 20 for r, v in sums.items()}))
            self.write_progress()

    def hwm(self) -> dict[int, int]:
        """VmHWM (exact peak RSS) of the processes still alive."""
        out = {}
        for pid in self.roles:
            v = proc_status_bytes(pid, "VmHWM")
            if v is not None:
                out[pid] = v
        return out

    def snapshot(self) -> dict:
        hwm = self.hwm()
        procs = []
        for pid, role in self.roles.items():
            procs.append(dict(pid=pid, role=role, peak_sampled=self.peak.get(pid, 0),
                              vmhwm=hwm.get(pid)))
        return dict(stage=self.stage, elapsed=round(time.perf_counter() - self.t0, 1),
                    samples=self.samples, processes=procs,
                    role_sum_peak_sampled=self.role_sum_peak,
                    group=list(self.group), group_peak_sampled=self.group_peak,
                    driver_maxrss=maxrss_bytes(), timeline_mib=self.timeline)

    def write_progress(self) -> None:
        if self.progress:
            tmp = self.progress + ".tmp"
            with open(tmp, "w") as fh:
                json.dump(self.snapshot(), fh)
            os.replace(tmp, self.progress)

    def run(self) -> None:
        while not self.stop_event.wait(self.interval):
            try:
                self.sample()
            except Exception:  # never let the sampler kill the run
                pass


def _cmd(proc) -> str:
    try:
        return " ".join(proc.cmdline())
    except Exception:
        return ""


# ---------------------------------------------------------------------------- children

def _numbers(res, agg) -> dict:
    import numpy as np

    return dict(groups=np.asarray(res.groups, float).tolist(),
                times=np.asarray(res.times, float).tolist(),
                att_gt=np.asarray(res.att_gt, float).tolist(),
                se_gt=np.asarray(res.se_gt, float).tolist(),
                dynamic_att=np.asarray(agg.att_by_event, float).tolist(),
                dynamic_se=np.asarray(agg.se_by_event, float).tolist(),
                overall_att=float(agg.overall_att), overall_se=float(agg.overall_se))


def _fit_kwargs(boot: bool) -> dict:
    kw = dict(FIT)
    if boot:
        kw.update(boot=True, biters=BITERS, random_state=0)
    return kw


def child_dask(args, out: dict, sampler: Sampler) -> None:
    import dask
    import dask.dataframe as dd
    import distributed

    import moderndid as did

    sampler.stage = "cluster start"
    t = time.perf_counter()
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       memory_limit=MEMORY_LIMIT, dashboard_address=None)
    client = distributed.Client(cluster)
    out["cluster_start_s"] = time.perf_counter() - t
    out["dask_config"] = {k: dask.config.get(f"distributed.worker.memory.{k}")
                          for k in ("target", "spill", "pause", "terminate")}
    out["worker_memory_limit"] = {a: w["memory_limit"] for a, w in
                                  client.scheduler_info()["workers"].items()}
    out["worker_pids_start"] = client.run(os.getpid)
    try:
        sampler.stage = "fit"
        t = time.perf_counter()
        ddf = dd.read_parquet(str(args.data))
        out["input_partitions"] = ddf.npartitions
        kw = _fit_kwargs(args.boot)
        if args.n_partitions:
            kw["n_partitions"] = args.n_partitions
        res = did.att_gt(ddf, **kw, client=client)
        out["fit_s"] = time.perf_counter() - t
        agg = did.aggte(res, type="dynamic")
        out["numbers"] = _numbers(res, agg)
        out["engine"] = res.estimation_params.get("engine")
        sampler.stage = "done"
        sampler.sample()
        out["worker_pids_end"] = client.run(os.getpid)

        def spill(dask_worker):
            data = dask_worker.data
            m = getattr(data, "cumulative_metrics", None)
            return {f"{a}/{b}": v for (a, b), v in (m or {}).items()}
        out["worker_spill_metrics"] = client.run(spill)
        logs = client.get_worker_logs()
        out["worker_memory_log_lines"] = {
            a: [msg for _lvl, msg in lines if MEMORY_WARNING.search(msg)]
            for a, lines in logs.items()}
        try:
            nanny_logs = client.get_worker_logs(nanny=True)
            out["nanny_memory_log_lines"] = {
                a: [msg for _lvl, msg in lines
                    if re.search(r"memory|restart|terminat|exceed", msg, re.I)]
                for a, lines in nanny_logs.items()}
        except Exception as exc:
            out["nanny_memory_log_lines"] = repr(exc)
    finally:
        out["sampler"] = sampler.snapshot()
        client.close()
        cluster.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(pred, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.5)
    raise TimeoutError(f"standalone cluster did not start: {what}")


def _spark_rest(ui: str, path: str):
    import urllib.request

    with urllib.request.urlopen(ui.rstrip("/") + "/api/v1" + path, timeout=30) as r:
        return json.loads(r.read())


def child_spark(args, out: dict, sampler: Sampler) -> None:
    import psutil
    import pyspark
    from pyspark.sql import SparkSession

    import moderndid as did
    import moderndid.spark

    home = Path(pyspark.__file__).parent
    tmp = Path(tempfile.mkdtemp(prefix="memlim_spark_"))
    port = _free_port()
    env = dict(os.environ, SPARK_HOME=str(home), SPARK_LOCAL_IP="127.0.0.1",
               SPARK_LOG_DIR=str(tmp), SPARK_WORKER_DIR=str(tmp / "work"),
               SPARK_NO_DAEMONIZE="1", SPARK_LOCAL_DIRS=str(tmp / "local"))
    spark_class = [str(home / "bin" / "spark-class")]
    procs: list[subprocess.Popen] = []

    def start(name: str, *a: str) -> Path:
        log = tmp / f"{name}.log"
        with open(log, "wb") as fh:
            procs.append(subprocess.Popen(spark_class + list(a), env=env, stdout=fh,
                                          stderr=subprocess.STDOUT, cwd=tmp))
        return log

    url = f"spark://127.0.0.1:{port}"
    sampler.stage = "cluster start"
    t = time.perf_counter()
    spark = None
    try:
        mlog = start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                     "--port", str(port), "--webui-port", "0")
        _wait_for(lambda: "I have been elected leader" in mlog.read_text(errors="replace"),
                  120, "master")
        start("worker", "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
              "--cores", "2", "--memory", "2g", "--webui-port", "0", "--work-dir",
              str(tmp / "work"), url)
        _wait_for(lambda: "Registering worker" in mlog.read_text(errors="replace"), 120,
                  "worker")
        os.environ["PYSPARK_PYTHON"] = sys.executable
        conf = {
            "spark.executor.memory": args.executor_memory,
            "spark.executor.cores": "2",
            "spark.cores.max": "2",
            "spark.driver.memory": "1g",
            "spark.pyspark.python": sys.executable,
            "spark.executorEnv.PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            "spark.executor.processTreeMetrics.enabled": "true",
            "spark.executor.metrics.pollingInterval": "200ms",
            "spark.ui.showConsoleProgress": "false",
            "spark.local.dir": str(tmp / "local"),
        }
        if args.pyspark_memory:
            conf["spark.executor.pyspark.memory"] = args.pyspark_memory
        builder = SparkSession.builder.master(url).appName("moderndid-memory-limits")
        for k, v in conf.items():
            builder = builder.config(k, v)
        spark = moderndid.spark.configure(builder).getOrCreate()
        out["spark_conf"] = {k: v for k, v in spark.sparkContext.getConf().getAll()
                             if k.startswith(("spark.executor", "spark.driver.memory",
                                              "spark.jars", "spark.cores", "spark.pyspark",
                                              "spark.sql.extensions"))}
        # the executor starts with the application; wait for it
        _wait_for(lambda: any("CoarseGrainedExecutorBackend" in _cmd(p)
                              for p in psutil.Process().children(recursive=True)), 120,
                  "executor")
        out["cluster_start_s"] = time.perf_counter() - t

        sampler.stage = "fit"
        t = time.perf_counter()
        sdf = spark.read.parquet(str(args.data))
        kw = _fit_kwargs(args.boot)
        if args.n_partitions:
            kw["n_partitions"] = args.n_partitions
        res = did.att_gt(sdf, **kw)
        out["fit_s"] = time.perf_counter() - t
        agg = did.aggte(res, type="dynamic")
        out["numbers"] = _numbers(res, agg)
        out["engine"] = res.estimation_params.get("engine")
        sampler.stage = "done"
        sampler.sample()
        out["sampler"] = sampler.snapshot()
        ui = spark.sparkContext.uiWebUrl
        try:
            app = _spark_rest(ui, "/applications")[0]["id"]
            time.sleep(1.0)  # let the last heartbeat's metrics arrive
            execs = _spark_rest(ui, f"/applications/{app}/allexecutors")
            out["spark_executors"] = [
                dict(id=e["id"], maxMemory=e.get("maxMemory"),
                     peakMemoryMetrics=e.get("peakMemoryMetrics"),
                     failedTasks=e.get("failedTasks"), totalTasks=e.get("totalTasks"))
                for e in execs]
            stages = _spark_rest(ui, f"/applications/{app}/stages")
            out["spark_stages"] = [
                dict(id=s["stageId"], name=s.get("description") or s.get("name"),
                     status=s["status"], tasks=s.get("numTasks"),
                     memoryBytesSpilled=s.get("memoryBytesSpilled"),
                     diskBytesSpilled=s.get("diskBytesSpilled"),
                     shuffleWriteBytes=s.get("shuffleWriteBytes"),
                     seconds=_stage_seconds(s))
                for s in stages]
            out["spark_spill"] = dict(
                memoryBytesSpilled=sum(s.get("memoryBytesSpilled") or 0 for s in stages),
                diskBytesSpilled=sum(s.get("diskBytesSpilled") or 0 for s in stages),
                failed_tasks=sum(s.get("numFailedTasks") or 0 for s in stages))
        except Exception as exc:
            out["spark_rest_error"] = repr(exc)
    finally:
        if "sampler" not in out:
            out["sampler"] = sampler.snapshot()
        if spark is not None:
            spark.stop()
        _stop_cluster(procs)
        for name in ("master", "worker"):
            log = tmp / f"{name}.log"
            if log.exists():
                text = log.read_text(errors="replace")
                out[f"{name}_log_tail"] = [ln for ln in text.splitlines()
                                           if re.search(r"WARN|ERROR|memory|kill|exit", ln,
                                                        re.I)][-30:]
        shutil.rmtree(tmp, ignore_errors=True)


def _stage_seconds(s: dict) -> float | None:
    try:
        a = _dt.datetime.strptime(s["submissionTime"][:23], "%Y-%m-%dT%H:%M:%S.%f")
        b = _dt.datetime.strptime(s["completionTime"][:23], "%Y-%m-%dT%H:%M:%S.%f")
        return round((b - a).total_seconds(), 2)
    except Exception:
        return None


def _stop_cluster(processes: list[subprocess.Popen]) -> None:
    """Stop the processes this child started, by PID (workers' executors first)."""
    import psutil

    children = []
    for proc in processes:
        try:
            children += psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            pass
    for proc in reversed(processes):
        if proc.poll() is None:
            proc.terminate()
    for proc in reversed(processes):
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


def classify_dask(proc) -> str | None:
    cmd = _cmd(proc)
    if "spawn_main" in cmd or "forkserver" in cmd:
        return "worker"
    if "resource_tracker" in cmd:
        return None
    return "other"


def classify_spark(proc) -> str | None:
    cmd = _cmd(proc)
    if "CoarseGrainedExecutorBackend" in cmd:
        return "executor_jvm"
    if "deploy.worker.Worker" in cmd:
        return "worker_daemon_jvm"
    if "deploy.master.Master" in cmd:
        return "master_jvm"
    if "SparkSubmit" in cmd:
        return "driver_jvm"
    try:
        name = proc.name()
    except Exception:
        name = ""
    if "python" in name or "pyspark" in cmd:
        # Python workers: descendants of the executor JVM
        p = proc.parent()
        while p is not None:
            if "CoarseGrainedExecutorBackend" in _cmd(p):
                return "python_workers"
            p = p.parent()
        return "other_python"
    return "other"


def child_main(args) -> int:
    out: dict = dict(engine_arg=args.child, data=str(args.data), boot=args.boot,
                     started=_dt.datetime.now().isoformat(timespec="seconds"),
                     load_start=os.getloadavg()[0])
    t0 = time.perf_counter()
    if args.child == "dask":
        sampler = Sampler(classify_dask, group=("worker",), progress=args.result + ".progress")
    else:
        sampler = Sampler(classify_spark, group=("executor_jvm", "python_workers"),
                          progress=args.result + ".progress")
    sampler.start()
    try:
        (child_dask if args.child == "dask" else child_spark)(args, out, sampler)
        out["ok"] = True
    except BaseException as exc:
        import traceback

        out["ok"] = False
        out["error"] = "".join(traceback.format_exception(exc))[-4000:]
    finally:
        sampler.stop_event.set()
        out["driver_maxrss"] = maxrss_bytes()
        out["total_s"] = time.perf_counter() - t0
        out["load_end"] = os.getloadavg()[0]
        with open(args.result, "w") as fh:
            json.dump(out, fh, indent=1, default=str)
    return 0 if out["ok"] else 1


# ------------------------------------------------------------------------------- parent

def run_child(engine: str, args, data: Path, tag: str) -> dict:
    fd, result = tempfile.mkstemp(prefix=f"memlim_{engine}_", suffix=".json")
    os.close(fd)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", engine, "--data",
           str(data), "--result", result, "--executor-memory", args.executor_memory]
    if args.pyspark_memory:
        cmd += ["--pyspark-memory", args.pyspark_memory]
    if args.boot:
        cmd.append("--boot")
    if args.n_partitions:
        cmd += ["--n-partitions", str(args.n_partitions)]
    log = DATA_DIR / f"memlim_{engine}_{tag}.log"
    print(f"[{_dt.datetime.now():%H:%M:%S}] {engine}: {' '.join(cmd)} (log {log})", flush=True)
    t = time.perf_counter()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
    try:
        with open(result) as fh:
            out = json.load(fh)
    except (OSError, ValueError):
        out = dict(ok=False, error=f"timed out after {args.timeout} s or crashed (rc "
                                   f"{proc.returncode}); see {log}")
        try:
            with open(result + ".progress") as fh:
                out["sampler"] = json.load(fh)
        except (OSError, ValueError):
            pass
    out["child_wall_s"] = time.perf_counter() - t
    out["returncode"] = proc.returncode
    for f in (result, result + ".progress"):
        try:
            os.remove(f)
        except OSError:
            pass
    print(f"  -> ok={out.get('ok')} fit {out.get('fit_s')} s", flush=True)
    if not out.get("ok"):
        print(out.get("error", "")[-2000:], flush=True)
    return out


def _peaks(r: dict, role: str) -> list[dict]:
    ps = [p for p in r.get("sampler", {}).get("processes", []) if p["role"] == role]
    return sorted(ps, key=lambda p: p["pid"])


def _best(p: dict) -> int:
    return max(p.get("vmhwm") or 0, p.get("peak_sampled") or 0)


def summarise(runs: dict[str, dict]) -> list[dict]:
    rows = []
    for engine, r in runs.items():
        s = r.get("sampler", {})
        row = dict(engine=engine, ok=r.get("ok"), fit_s=r.get("fit_s"),
                   driver_peak=r.get("driver_maxrss"), load=(r.get("load_start"),
                                                             r.get("load_end")))
        if engine == "dask":
            ws = _peaks(r, "worker")
            row["workers"] = [dict(pid=p["pid"], peak=_best(p), vmhwm=p.get("vmhwm"),
                                   sampled=p["peak_sampled"]) for p in ws]
            row["worker_processes_seen"] = len(ws)
            row["workers_sum_peak"] = s.get("group_peak_sampled")
            spills = r.get("worker_spill_metrics") or {}
            row["spilled"] = {a: {k: v for k, v in m.items() if "disk-write" in k}
                              for a, m in spills.items()}
            row["memory_log_lines"] = sum(
                sum(1 for msg in v if MEMORY_WARNING.search(msg))
                for v in (r.get("worker_memory_log_lines") or {}).values())
        else:
            ex = _peaks(r, "executor_jvm")
            py = _peaks(r, "python_workers")
            row["executor_jvm"] = [dict(pid=p["pid"], peak=_best(p)) for p in ex]
            row["python_workers"] = [dict(pid=p["pid"], peak=_best(p)) for p in py]
            row["python_workers_sum_peak"] = s.get("role_sum_peak_sampled", {}).get(
                "python_workers")
            row["executor_tree_peak"] = s.get("group_peak_sampled")
            row["driver_jvm"] = [_best(p) for p in _peaks(r, "driver_jvm")]
            row["worker_daemon_jvm"] = [_best(p) for p in _peaks(r, "worker_daemon_jvm")]
            row["spill"] = r.get("spark_spill")
            em = [e for e in (r.get("spark_executors") or []) if e["id"] != "driver"]
            row["spark_metrics"] = em[0].get("peakMemoryMetrics") if em else None
        rows.append(row)
    return rows


def render(meta: dict, runs: dict[str, dict], rows: list[dict], cmp: dict) -> str:
    lines = [f"# moderndid under per-worker memory limits ({meta['date']})", "",
             f"Data: {meta['data']['n']:,} units x {N_PERIODS} periods = "
             f"{meta['data']['rows']:,} rows, {meta['data']['files']} Parquet files "
             f"({meta['data']['bytes'] / 2**20:,.0f} MiB on disk), columns id, group, time, y, "
             "cov1..cov4, cluster.", "",
             "Fit: `att_gt(data, yname='y', tname='time', idname='id', gname='group', "
             "xformla='~ cov1', est_method='dr'"
             + (", boot=True, biters=999, random_state=0" if meta["boot"] else "")
             + ")` + `aggte(type='dynamic')`.", "",
             f"Command: `{meta['command']}`", "",
             "Machine: " + ", ".join(f"{k} {v}" for k, v in meta["machine"].items()), ""]
    lines += ["| engine | limits | fit wall (s) | peak RSS per worker process (MiB) | "
              "sum over workers (MiB) | driver peak (MiB) | spilled / paused | load 1-min |",
              "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        r = runs[row["engine"]]
        if row["engine"] == "dask":
            limits = ("LocalCluster 2 workers x 1 thread, memory_limit=2GB; "
                      f"{r.get('input_partitions')} input partitions")
            per = ", ".join(mb(w["peak"]) for w in row.get("workers", []))
            total = mb(row.get("workers_sum_peak"))
            spilled = sum(v for m in row.get("spilled", {}).values() for k, v in m.items()
                          if k.endswith("/count"))
            sp = f"{spilled:.0f} keys spilled; {row.get('memory_log_lines', 0)} memory log lines"
            if row.get("worker_processes_seen", 2) > 2:
                sp += f"; {row['worker_processes_seen']} worker processes (restarts)"
        else:
            conf = r.get("spark_conf", {})
            limits = (f"1 worker --memory 2g --cores 2; executor.memory "
                      f"{conf.get('spark.executor.memory')}"
                      + (f", pyspark.memory {conf['spark.executor.pyspark.memory']}"
                         if conf.get("spark.executor.pyspark.memory") else ""))
            tasks = [st.get("tasks") for st in r.get("spark_stages") or []
                     if st.get("name") == "moderndid att_gt: moments"]
            if tasks:
                limits += f"; {tasks[0]} partitions"
            ex = ", ".join(mb(e["peak"]) for e in row.get("executor_jvm", []))
            py = ", ".join(mb(e["peak"]) for e in row.get("python_workers", []))
            per = f"executor JVM {ex}; Python workers {py}"
            total = (f"{mb(row.get('executor_tree_peak'))} (JVM + Python, sampled; Python "
                     f"together {mb(row.get('python_workers_sum_peak'))})")
            s = row.get("spill") or {}
            sp = (f"memory spilled {mb(s.get('memoryBytesSpilled'))} MiB, disk "
                  f"{mb(s.get('diskBytesSpilled'))} MiB, failed tasks {s.get('failed_tasks')}")
        fit = "FAILED" if not row["ok"] else f"{row['fit_s']:.1f}"
        load = "–".join(f"{x:.1f}" for x in row["load"] if x is not None)
        driver = mb(row["driver_peak"])
        if row.get("driver_jvm"):
            driver += f" (+ driver JVM {', '.join(mb(x) for x in row['driver_jvm'] if x > 2**26)})"
        name = row["engine"] + (f" ({r['label']})" if r.get("label") else "")
        lines.append(f"| {name} | {limits} | {fit} | {per} | {total} | "
                     f"{driver} | {sp} | {load} |")
    lines.append("")
    if cmp:
        lines.append("Agreement Dask vs Spark (max |difference|): " + ", ".join(
            f"{k} {v:.2e}" for k, v in cmp.items()))
        lines.append("")
    for row in rows:
        if row["engine"] == "spark" and row.get("spark_metrics"):
            m = row["spark_metrics"]
            keys = ("JVMHeapMemory", "JVMOffHeapMemory", "ProcessTreeJVMRSSMemory",
                    "ProcessTreePythonRSSMemory", "OnHeapExecutionMemory",
                    "OnHeapStorageMemory")
            lines.append("Spark's own executor peak metrics (MiB): " + ", ".join(
                f"{k} {mb(m.get(k))}" for k in keys))
            lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2_000_000)
    ap.add_argument("--file-units", type=int, default=100_000)
    ap.add_argument("--engines", default="dask,spark")
    ap.add_argument("--boot", action="store_true")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--tag", default="")
    ap.add_argument("--executor-memory", default="1g")
    ap.add_argument("--pyspark-memory", default="")
    ap.add_argument("--n-partitions", type=int, default=0)
    ap.add_argument("--from-json", help="re-render the runs saved in this results file")
    ap.add_argument("--child", choices=("dask", "spark"))
    ap.add_argument("--data", type=Path)
    ap.add_argument("--result")
    args = ap.parse_args(argv)
    if args.child:
        return child_main(args)

    data = ensure_data(args.n, args.file_units)
    data_meta = json.loads((data / "_done.json").read_text())
    date = _dt.date.today().isoformat()
    tag = f"n{args.n}" + (f"_{args.tag}" if args.tag else "")
    RESULTS_DIR.mkdir(exist_ok=True)
    stem = RESULTS_DIR / f"memory_limits_{date}_{tag}"
    runs = {}
    saved_command = None
    if args.from_json:  # re-render a saved run
        saved = json.loads(Path(args.from_json).read_text())
        runs = saved["runs"]
        saved_command = saved.get("meta", {}).get("command")
    for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
        if engine not in runs:
            runs[engine] = run_child(engine, args, data, tag)
            with open(stem.with_suffix(".json"), "w") as fh:  # keep what ran so far
                json.dump(dict(runs=runs), fh, indent=1, default=str)
    cmp = {}
    if all(e in runs and runs[e].get("numbers") for e in ("dask", "spark")):
        a, b = runs["dask"]["numbers"], runs["spark"]["numbers"]
        for k in ("att_gt", "se_gt", "dynamic_att", "dynamic_se", "overall_att", "overall_se"):
            cmp[k] = max_abs_diff(a[k] if isinstance(a[k], list) else [a[k]],
                                  b[k] if isinstance(b[k], list) else [b[k]])
    rows = summarise(runs)
    meta = dict(date=date, data=data_meta, boot=args.boot,
                command=saved_command or " ".join([Path(sys.executable).name, *sys.argv]),
                machine=machine_info(REPO))
    text = render(meta, runs, rows, cmp)
    stem.with_suffix(".md").write_text(text + "\n")
    with open(stem.with_suffix(".json"), "w") as fh:
        json.dump(dict(meta=meta, summary=rows, agreement=cmp, runs=runs), fh, indent=1,
                  default=str)
    print(text)
    ok = all(r.get("ok") for r in runs.values())
    if cmp and max(cmp.values()) > 1e-8:
        print(f"DISAGREEMENT above 1e-8: {cmp}")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
