#!/usr/bin/env python
"""End-to-end benchmark of ``moderndid.ddd`` + ``agg_ddd`` against ModernDiD 0.4.1.

What it does
------------
1. Generates ``moderndid.gen_ddd_scalable(n=N, n_periods=6, n_cohorts=3, n_covariates=4,
   random_state=42)["data"]`` once (in a subprocess) and writes it to
   ``benchmarks/_data/ddd_scalable_n{N}_seed42.parquet`` (gitignored); a small
   ``ddd_scalable_n2000_seed42.parquet`` is written too, for the Spark warm-up fits.
   Every implementation reads the same file.
2. Runs each variant ``--repeats`` times, each run in a fresh subprocess, the variants
   interleaved (run 1 of every variant, then run 2, ...). Every variant makes the call

       ddd(data, "y", "time", "id", "group", "partition",
           xformla="~ cov1 + cov2 + cov3 + cov4", control_group="nevertreated",
           base_period="universal", est_method="dr")
       agg_ddd(res, type="eventstudy")

   ``moderndid``         this repository's package, ``pd.read_parquet`` data
   ``mdid041``           ModernDiD 0.4.1 (its own interpreter, ``$MDID_PY``), same call and
                         argument names (0.4.1's ``ddd`` has the same signature). Note that
                         0.4.1's ``agg_ddd`` defaults to ``boot=True, biters=1000,
                         cband=True`` (moderndid's follows the fit: analytic SEs), so the
                         child also times ``agg_ddd(res, type="eventstudy", boot=False,
                         cband=False)`` separately (``t_agg_analytic``, not in *estimate*)
                         and compares those analytic SEs.
   ``moderndid_spark``   moderndid on Spark ``local[2]``: session from
                         ``moderndid.spark.configure(SparkSession.builder.master("local[2]"))``,
                         one warm-up fit on the small file, then
                         ``ddd(spark.read.parquet(path), ...)``
   ``mdid041_spark``     ModernDiD 0.4.1's ``ddd`` on the same Spark DataFrame (plain
                         session, warm-up fit first). 0.4.1's ``ddd`` converts its input with
                         ``to_polars`` (Arrow PyCapsule), i.e. it collects the data to the
                         driver and fits in memory.

3. In each child it records: read time, ``ddd`` time and ``agg_ddd`` time (imports and,
   for Spark, session start and warm-up excluded), CPU time (user + system of the child;
   for Spark also of the JVM and Python workers, sampled from /proc), ``ru_maxrss`` after
   imports, after read, at the end, and for Spark the sampled peak RSS of the JVM and of
   the whole process tree.
4. Compares ATT(g, t) (cells matched by (group, time)), SEs and the event-study effects of
   every variant with the first ``moderndid`` run and writes
   ``benchmarks/results/ddd_<date>.md`` (+ ``.json`` with the raw per-run numbers).

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_ddd.py --n 200000 --repeats 2
    .venv/bin/python benchmarks/bench_ddd.py --n 200000 --repeats 2 --spark-repeats 1 \
        --variants moderndid,mdid041,moderndid_spark,mdid041_spark

Only the standard library is needed at import time, so the same file serves as the child
under ModernDiD 0.4.1's interpreter.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
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
RESULTS_DIR = HERE / "results"

SEED = 42
N_PERIODS = 6
N_COHORTS = 3
N_COVARIATES = 4
WARM_N = 2000
XFORMLA = "~ " + " + ".join(f"cov{k}" for k in range(1, N_COVARIATES + 1))
ALL_VARIANTS = ("moderndid", "mdid041", "moderndid_spark", "mdid041_spark")
DEFAULT_VARIANTS = ("moderndid", "mdid041")
MDID_DEFAULT_PY = Path.home() / ".cache" / "moderndid-peers" / "mdid" / "bin" / "python"


# --------------------------------------------------------------------------------------
# child side
# --------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/task/{p}/children") as fh:
                kids = [int(x) for x in fh.read().split()]
        except OSError:
            kids = []
        out += kids
        todo += kids
    return out


def _proc_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            f = fh.read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class Sampler(threading.Thread):
    """Samples RSS of the child's descendants (JVM, Python workers)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.peak_java = self.peak_tree = 0
        self.cpu_desc: dict[int, float] = {}

    def sample(self):
        me = os.getpid()
        own = proc_status_bytes(me, "VmRSS") or 0
        java = other = 0
        for pid in _children(me):
            rss = proc_status_bytes(pid, "VmRSS") or 0
            self.cpu_desc[pid] = max(self.cpu_desc.get(pid, 0.0), _proc_cpu(pid))
            try:
                with open(f"/proc/{pid}/comm") as fh:
                    comm = fh.read().strip()
            except OSError:
                comm = ""
            if comm == "java":
                java += rss
            else:
                other += rss
        self.peak_java = max(self.peak_java, java)
        self.peak_tree = max(self.peak_tree, own + java + other)

    def desc_cpu(self) -> float:
        return sum(self.cpu_desc.values())

    def run(self):
        while not self.stop.wait(0.25):
            try:
                self.sample()
            except Exception:
                pass



def _fit(md, data):
    t0 = time.perf_counter()
    res = md.ddd(data, "y", "time", "id", "group", "partition", xformla=XFORMLA,
                 control_group="nevertreated", base_period="universal", est_method="dr")
    t_fit = time.perf_counter() - t0
    agg = md.agg_ddd(res, type="eventstudy")
    return res, agg, t_fit, time.perf_counter() - t0


def _child(variant: str, data_path: str, warm_path: str, result_path: str,
           driver_memory: str) -> None:
    rss_start = maxrss_bytes()
    load_start = os.getloadavg()[0]
    sampler = Sampler()
    sampler.start()
    import numpy as np
    import pandas as pd

    import moderndid as md

    spark_engine = variant.endswith("_spark")
    if spark_engine:
        import pyspark
        from pyspark.sql import SparkSession
    rss_imports = maxrss_bytes()
    out: dict = {"variant": variant, "lib_version": getattr(md, "__version__", "?"),
                 "lib_file": md.__file__, "python": platform.python_version(),
                 "numpy": np.__version__, "pandas": pd.__version__}
    spark = None
    if spark_engine:
        out["pyspark"] = pyspark.__version__
        t0 = time.perf_counter()
        builder = (SparkSession.builder.master("local[2]").appName(f"bench {variant}")
                   .config("spark.driver.memory", driver_memory)
                   .config("spark.ui.showConsoleProgress", "false"))
        if variant.startswith("moderndid"):
            from moderndid.spark import configure

            builder = configure(builder)
        else:
            os.environ["PYSPARK_PYTHON"] = sys.executable
            builder = builder.config("spark.pyspark.python", sys.executable)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        out["t_session"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        _fit(md, spark.read.parquet(warm_path))
        out["t_warmup"] = time.perf_counter() - t0
        sampler.sample()
        cd0 = sampler.desc_cpu()
        c0 = cpu_seconds()
        t0 = time.perf_counter()
        data = spark.read.parquet(data_path)
        out["t_read"] = time.perf_counter() - t0
        out["frame_bytes"] = None
    else:
        cd0 = 0.0
        t0 = time.perf_counter()
        data = pd.read_parquet(data_path)
        out["t_read"] = time.perf_counter() - t0
        out["frame_bytes"] = int(data.memory_usage(deep=True).sum())
        out["n_rows"] = len(data)
        c0 = cpu_seconds()
    out["rss_after_read"] = maxrss_bytes()
    out["load_fit_start"] = os.getloadavg()[0]
    res, agg, t_fit, t_est = _fit(md, data)
    out["cpu_estimate"] = cpu_seconds() - c0
    sampler.sample()
    out["cpu_desc_estimate"] = sampler.desc_cpu() - cd0
    out["t_fit"], out["t_agg"], out["t_estimate"] = t_fit, t_est - t_fit, t_est
    out["cells"] = {"group": tolist(res.groups), "time": tolist(res.times),
                    "att": tolist(res.att), "se": tolist(res.se)}
    out["agg"] = {"overall_att": float(agg.overall_att), "overall_se": float(agg.overall_se),
                  "event": tolist(agg.egt), "att": tolist(agg.att_egt),
                  "se": tolist(agg.se_egt)}
    if variant.startswith("mdid041"):
        t0 = time.perf_counter()
        agg2 = md.agg_ddd(res, type="eventstudy", boot=False, cband=False)
        out["t_agg_analytic"] = time.perf_counter() - t0
        out["agg_analytic"] = {"overall_att": float(agg2.overall_att),
                               "overall_se": float(agg2.overall_se),
                               "event": tolist(agg2.egt), "att": tolist(agg2.att_egt),
                               "se": tolist(agg2.se_egt)}
    sampler.stop.set()
    out.update(rss_start=rss_start, rss_imports=rss_imports, rss_peak=maxrss_bytes(),
               vmhwm_peak=proc_status_bytes("self", "VmHWM"), peak_java=sampler.peak_java,
               peak_tree=sampler.peak_tree, load_start=load_start,
               load_end=os.getloadavg()[0])
    with open(result_path, "w") as fh:
        json.dump(out, fh)
    if spark is not None:
        spark.stop()


# --------------------------------------------------------------------------------------
# parent side
# --------------------------------------------------------------------------------------

def _data_path(n: int) -> Path:
    return DATA_DIR / f"ddd_scalable_n{n}_seed{SEED}.parquet"


def ensure_data(n: int, env: dict | None = None) -> Path:
    path = _data_path(n)
    if path.exists():
        return path
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    code = (
        "import moderndid, sys, os\n"
        f"d = moderndid.gen_ddd_scalable(n={n}, n_periods={N_PERIODS}, n_cohorts={N_COHORTS},"
        f" n_covariates={N_COVARIATES}, random_state={SEED})['data']\n"
        "tmp = sys.argv[1] + '.tmp'\n"
        "d.to_parquet(tmp, index=False)\n"
        "os.replace(tmp, sys.argv[1])\n"
    )
    print(f"generating {path} ...", flush=True)
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, env=env)
    return path



def run_child(python: str, variant: str, data: Path, warm: Path, timeout: float,
              driver_memory: str, env: dict | None) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        result_path = fh.name
    try:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [python, str(Path(__file__).resolve()), "--child", variant, "--data", str(data),
             "--warm", str(warm), "--result", result_path, "--driver-memory", driver_memory],
            capture_output=True, text=True, timeout=timeout, cwd=str(REPO), env=env,
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0 or os.path.getsize(result_path) == 0:
            raise RuntimeError(f"{variant} failed (rc={proc.returncode}):\n{proc.stderr[-3000:]}")
        with open(result_path) as fh:
            out = json.load(fh)
        out["t_process"] = wall
        out["stderr_tail"] = proc.stderr[-1500:]
        return out
    finally:
        try:
            os.unlink(result_path)
        except OSError:
            pass



def compare(ref: dict, other: dict, agg_key: str = "agg") -> dict:
    rc, oc = ref["cells"], other["cells"]
    rkey = {(g, t): i for i, (g, t) in enumerate(zip(rc["group"], rc["time"], strict=True))}
    okey = {(g, t): i for i, (g, t) in enumerate(zip(oc["group"], oc["time"], strict=True))}
    common = [k for k in rkey if k in okey]
    ri, oi = [rkey[k] for k in common], [okey[k] for k in common]
    ra, oa = ref["agg"], other.get(agg_key) or other["agg"]
    same_e = ra["event"] == oa["event"]
    return {
        "cells": f"{len(rkey)}/{len(okey)}/{len(common)}",
        "att": max_abs_diff([rc["att"][i] for i in ri], [oc["att"][i] for i in oi]),
        "se": max_abs_diff([rc["se"][i] for i in ri], [oc["se"][i] for i in oi]),
        "es_att": max(max_abs_diff([ra["overall_att"]], [oa["overall_att"]]),
                      max_abs_diff(ra["att"], oa["att"]) if same_e else float("nan")),
        "es_se": max(max_abs_diff([ra["overall_se"]], [oa["overall_se"]]),
                     max_abs_diff(ra["se"], oa["se"]) if same_e else float("nan")),
        "att_scale": max(abs(x) for x in rc["att"] if x == x) if rc["att"] else float("nan"),
    }


def machine_info() -> dict:
    info = base_machine_info(REPO)
    info["python"] = platform.python_version()
    info["moderndid source sha256"] = source_hash(REPO / "python" / "moderndid")
    info["load average at start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return info



def _fd(x: float) -> str:
    return "nan" if x != x else f"{x:.1e}"


def render(args, command, info, data_path, runs, comps, errors) -> str:
    today = _dt.date.today().isoformat()
    L = [f"# ddd + agg_ddd benchmark, {today}", ""]
    first = next((rs[0] for rs in runs.values() if rs and rs[0].get("frame_bytes")), None)
    L.append(f"Command: `{command}`  ")
    L.append(f"Data: `gen_ddd_scalable(n={args.n}, n_periods={N_PERIODS}, n_cohorts={N_COHORTS}, "
             f"n_covariates={N_COVARIATES}, random_state={SEED})` → "
             f"`{data_path.relative_to(REPO)}`" +
             (f", {first['n_rows']:,} rows, {first['frame_bytes'] / 2**20:,.1f} MiB in memory"
              if first else ""))
    L.append("")
    L.append("Call: `ddd(df, \"y\", \"time\", \"id\", \"group\", \"partition\", "
             f"xformla=\"{XFORMLA}\", control_group=\"nevertreated\", base_period=\"universal\", "
             "est_method=\"dr\")` then `agg_ddd(res, type=\"eventstudy\")` (library defaults: "
             "moderndid's agg_ddd gives analytic SEs; ModernDiD 0.4.1's defaults to "
             "`boot=True, biters=1000, cband=True`).")
    L.append("")
    L.append("Machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    L.append("")
    libs = {v: f"{rs[0]['lib_version']} (py {rs[0]['python']}, numpy {rs[0]['numpy']}, pandas "
               f"{rs[0]['pandas']}" + (f", pyspark {rs[0]['pyspark']}" if "pyspark" in rs[0] else "")
               + ")" for v, rs in runs.items() if rs}
    L.append("Libraries: " + "; ".join(f"{v}: {s}" for v, s in libs.items()))
    L.append("")
    L.append(f"Each variant ran up to {args.repeats} times, each in a fresh process, variants "
             "interleaved. *estimate* = wall time of `ddd` + `agg_ddd` (imports, Spark session "
             "start and warm-up excluded); *CPU* = user + system CPU of the child process "
             "(for Spark, + sampled CPU of the JVM and Python workers); *read* = "
             "`pd.read_parquet` (Spark: the lazy `spark.read.parquet`). Peak RSS = "
             "`ru_maxrss` of the child at the end; for Spark, the sampled peak RSS of the JVM "
             "and of the whole process tree are given too. Times in s, memory in MiB.")
    L.append("")
    hdr = ("| variant | runs | estimate best | estimate median | ddd median | agg_ddd median "
           "| CPU median | read median | process median | peak RSS | RSS after read "
           "| increment | peak / frame | JVM peak | tree peak | load (1-min) at start |")
    L.append(hdr)
    L.append("|" + "---|" * (hdr.count("|") - 1))
    frame = first["frame_bytes"] if first else None
    for v, rs in runs.items():
        if not rs:
            continue
        def med(k, rs=rs):
            return statistics.median(r[k] for r in rs)

        peak = max(r["rss_peak"] for r in rs)
        aft = max(r["rss_after_read"] for r in rs)
        cpu = statistics.median(r["cpu_estimate"] + r.get("cpu_desc_estimate", 0) for r in rs)
        L.append(
            f"| {v} | {len(rs)} | {min(r['t_estimate'] for r in rs):.2f} "
            f"| {med('t_estimate'):.2f} | {med('t_fit'):.2f} | {med('t_agg'):.2f} | {cpu:.2f} "
            f"| {med('t_read'):.2f} | {med('t_process'):.2f} | {mb(peak)} | {mb(aft)} "
            f"| {mb(max(r['rss_peak'] - r['rss_after_read'] for r in rs))} "
            f"| {peak / frame:.2f} | {mb(max(r.get('peak_java', 0) for r in rs))} "
            f"| {mb(max(r.get('peak_tree', 0) for r in rs))} "
            f"| {', '.join(format(r['load_start'], '.1f') for r in rs)} |" if frame else "")
    L.append("")
    L.append("Per run, estimate wall / CPU s (ddd + agg_ddd) [1-min load at fit start]:")
    L.append("")
    for v, rs in runs.items():
        if rs:
            L.append(f"- {v}: " + ", ".join(
                f"{r['t_fit']:.2f} + {r['t_agg']:.2f} / "
                f"{r['cpu_estimate'] + r.get('cpu_desc_estimate', 0):.2f} "
                f"[{r['load_fit_start']:.1f}]" for r in rs))
            extra = [f"{r['t_agg_analytic']:.2f}" for r in rs if "t_agg_analytic" in r]
            if extra:
                L.append(f"  - analytic `agg_ddd(..., boot=False, cband=False)`, not in "
                         f"*estimate*: {', '.join(extra)} s")
            sp = [f"session {r['t_session']:.1f} s, warm-up {r['t_warmup']:.1f} s"
                  for r in rs if "t_session" in r]
            if sp:
                L.append("  - Spark: " + "; ".join(sp))
    L.append("")
    md, ref = runs.get("moderndid"), runs.get("mdid041")
    if md and ref:
        a = min(r["t_estimate"] for r in md)
        b = min(r["t_estimate"] for r in ref)
        am = statistics.median(r["t_estimate"] for r in md)
        bm = statistics.median(r["t_estimate"] for r in ref)
        fa = min(r["t_fit"] for r in md)
        fb = min(r["t_fit"] for r in ref)
        L += ["## moderndid / ModernDiD 0.4.1 (in memory)", "",
              "| metric | moderndid | 0.4.1 | ratio |", "|---|---|---|---|",
              f"| estimate best (s) | {a:.2f} | {b:.2f} | {a / b:.2f} |",
              f"| estimate median (s) | {am:.2f} | {bm:.2f} | {am / bm:.2f} |",
              f"| ddd only, best (s) | {fa:.2f} | {fb:.2f} | {fa / fb:.2f} |",
              f"| peak RSS (MiB) | {mb(max(r['rss_peak'] for r in md))} "
              f"| {mb(max(r['rss_peak'] for r in ref))} "
              f"| {max(r['rss_peak'] for r in md) / max(r['rss_peak'] for r in ref):.2f} |", ""]
    if comps:
        L += ["## Agreement with moderndid (its first in-memory run)", "",
              "Max |difference| over ATT(g, t) cells matched by (group, time), their SEs, and "
              "the event-study effects (overall + by event time) and SEs.", "",
              "| variant | cells (ref/other/common) | ATT(g,t) | SE(g,t) | event-study ATT "
              "| event-study SE |", "|---|---|---|---|---|---|"]
        for v, c in comps.items():
            L.append(f"| {v} | {c['cells']} | {_fd(c['att'])} | {_fd(c['se'])} "
                     f"| {_fd(c['es_att'])} | {_fd(c['es_se'])} |")
        L += ["", f"(Largest |ATT(g, t)| is {next(iter(comps.values()))['att_scale']:.3g}.)", ""]
    if errors:
        L += ["## Problems", ""] + ["- " + e.replace("\n", " ")[:1500] for e in errors] + [""]
    return "\n".join(L)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                   help=f"comma-separated subset of {','.join(ALL_VARIANTS)}")
    p.add_argument("--spark-repeats", type=int, default=None,
                   help="runs per Spark variant (default: --repeats)")
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--driver-memory", default="6g")
    p.add_argument("--out", default=None)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--warm", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(args.child, args.data, args.warm, args.result, args.driver_memory)
        return 0

    command = shlex.join([sys.executable, *(sys.argv if argv is None else ["bench_ddd.py", *argv])])
    command = command.replace(str(REPO) + "/", "")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in ALL_VARIANTS]
    if bad:
        p.error(f"unknown variants {bad}")
    info = machine_info()
    data_path = ensure_data(args.n)
    warm_path = ensure_data(WARM_N)
    mdid_py = peer_python("MDID_PY", MDID_DEFAULT_PY)
    pythons, errors = {}, []
    for v in variants:
        if v.startswith("mdid041"):
            if mdid_py is None:
                errors.append(f"{v}: ModernDiD 0.4.1 interpreter not found (set MDID_PY)")
                continue
            pythons[v] = mdid_py
        else:
            pythons[v] = sys.executable
    runs: dict[str, list[dict]] = {v: [] for v in pythons}
    failed: set[str] = set()
    for rep in range(args.repeats):
        for v, py in pythons.items():
            if v in failed:
                continue
            if v.endswith("_spark") and args.spark_repeats is not None \
                    and rep >= args.spark_repeats:
                continue
            print(f"[{rep + 1}/{args.repeats}] {v} (load {os.getloadavg()[0]:.1f}) ...",
                  end=" ", flush=True)
            try:
                r = run_child(py, v, data_path, warm_path, args.timeout, args.driver_memory,
                              None)
            except subprocess.TimeoutExpired:
                errors.append(f"{v}: run {rep + 1} timed out after {args.timeout:.0f}s")
                failed.add(v)
                print("timeout", flush=True)
                continue
            except RuntimeError as e:
                errors.append(str(e))
                failed.add(v)
                print("FAILED", flush=True)
                continue
            runs[v].append(r)
            print(f"read {r['t_read']:.2f}s, ddd {r['t_fit']:.2f}s, agg_ddd {r['t_agg']:.2f}s, "
                  f"peak RSS {mb(r['rss_peak'])} MiB", flush=True)
    comps = {}
    if runs.get("moderndid"):
        ref = runs["moderndid"][0]
        for v, rs in runs.items():
            if rs and v != "moderndid":
                comps[v] = compare(ref, rs[0])
                if "agg_analytic" in rs[0]:
                    comps[f"{v} (analytic agg_ddd)"] = compare(ref, rs[0], "agg_analytic")
        if len(runs["moderndid"]) > 1:
            comps["moderndid (run 2 vs run 1)"] = compare(ref, runs["moderndid"][1])
    info["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    report = render(args, command, info, data_path, runs, comps, errors)
    out = Path(args.out) if args.out else RESULTS_DIR / f"ddd_{_dt.date.today().isoformat()}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report + "\n")
    out.with_suffix(".json").write_text(json.dumps(
        {v: [{k: x for k, x in r.items() if k not in ("stderr_tail",)} for r in rs]
         for v, rs in runs.items()}, indent=1))
    print()
    print(report)
    print(f"\nwritten to {out}")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
