#!/usr/bin/env python
"""End-to-end benchmark of ``moderndid.att_gt`` + ``aggte`` against csdid 0.4.3.

What it does
------------
1. Generates ``moderndid.gen_did_scalable(n=N, n_periods=10, n_cohorts=6, n_covariates=5,
   random_state=42)["data"]`` once (in a subprocess) and writes it to
   ``benchmarks/_data/did_scalable_n{N}_seed42.parquet`` (gitignored). Every
   implementation reads that same file.
2. Runs each variant ``--repeats`` times, each run in a fresh subprocess, the variants
   interleaved (run 1 of every variant, then run 2, ...) so drift on a shared machine
   hits all variants alike. Variants:

   ``moderndid``        ``att_gt(df, "y", "time", "id", "group", xformla="~ cov1 + ... + cov5",
                        est_method="dr")`` then ``aggte`` simple, dynamic, group, calendar
   ``moderndid_np4``    the same with ``n_partitions=4``
   ``moderndid_boot``   the same with ``boot=True, biters=999, random_state=0``
   ``csdid``            ``ATTgt(..., xformla="y~cov1+...+cov5").fit(est_method="dr",
                        bstrap=False)`` then ``.aggte(typec=...)`` for the four types
                        (analytic standard errors, as moderndid's default ``boot=False``;
                        note csdid's own default is ``bstrap=True``)
   ``csdid_boot``       optional (``--variants``): ``fit(est_method="dr", bstrap=True)``
                        with ``biters=999``

3. In each child it records: time to read the Parquet file, time of ``att_gt`` and of the
   four ``aggte`` calls (``estimate`` = both; interpreter start-up and imports are not
   timed: the libraries are imported before the clock starts), the in-memory size of the
   frame (``df.memory_usage(deep=True).sum()``), and peak memory from
   ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` at three points: after imports, after
   reading the data (the baseline) and at the end. It also records ``VmHWM`` from
   ``/proc/self/status``, which, unlike ``ru_maxrss``, cannot inherit the parent's
   high-water mark across ``exec`` (the parent never loads the data, so both agree).
   CPU time (user + system, all threads) of the estimation and the 1-min load average are
   recorded too, because the machine may be shared.
   moderndid children import a copy of ``python/moderndid`` taken when the script starts
   (through PYTHONPATH), so edits made to the working tree during a run do not mix code
   versions; ``--no-snapshot`` turns that off.
4. Compares the estimates of every variant with the first moderndid run (max |difference|
   of ATT(g, t), of their standard errors, and of the aggregated effects and SEs), and
   writes a Markdown report to ``benchmarks/results/att_gt_<date>.md`` (also printed).

Usage (from the repository root)::

    eval "$(../shared/tools/peer-envs.sh)"          # sets CSDID_PY
    .venv/bin/python benchmarks/bench_att_gt.py --n 200000 --repeats 3

The script only needs the standard library at import time, so the same file serves as
the child process under csdid's interpreter (which does not have moderndid).
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
N_PERIODS = 10
N_COHORTS = 6
N_COVARIATES = 5
COVARIATES = [f"cov{k}" for k in range(1, N_COVARIATES + 1)]
MD_XFORMLA = "~ " + " + ".join(COVARIATES)
CS_XFORMLA = "y~" + "+".join(COVARIATES)
AGG_TYPES = ("simple", "dynamic", "group", "calendar")
BITERS = 999

ALL_VARIANTS = ("moderndid", "moderndid_np4", "moderndid_boot", "csdid", "csdid_boot")
DEFAULT_VARIANTS = ("moderndid", "moderndid_np4", "moderndid_boot", "csdid")
CSDID_DEFAULT_PY = Path.home() / ".cache" / "moderndid-peers" / "csdid" / "bin" / "python"


# --------------------------------------------------------------------------------------
# child side (stdlib + numpy/pandas only at import time)
# --------------------------------------------------------------------------------------


def _child(variant: str, data_path: str, result_path: str) -> None:
    rss_start = maxrss_bytes()
    load_start = os.getloadavg()[0]
    # Import everything the estimation needs before the clock starts.
    import numpy as np
    import pandas as pd

    if variant.startswith("moderndid"):
        import moderndid

        fit_kwargs: dict = {}
        if variant == "moderndid_np4":
            fit_kwargs["n_partitions"] = 4
        elif variant == "moderndid_boot":
            fit_kwargs.update(boot=True, biters=BITERS, random_state=0)
        elif variant != "moderndid":
            raise SystemExit(f"unknown variant {variant}")
        lib_version = moderndid.__version__
        lib_file = moderndid.__file__
    else:
        import contextlib
        import io

        import csdid
        from csdid.att_gt import ATTgt

        boot = variant == "csdid_boot"
        lib_file = csdid.__file__
        lib_version = getattr(csdid, "__version__", "?")
        try:
            from importlib.metadata import version

            lib_version = version("csdid")
        except Exception:
            pass
    rss_imports = maxrss_bytes()

    t0 = time.perf_counter()
    df = pd.read_parquet(data_path)
    t_read = time.perf_counter() - t0
    frame_bytes = int(df.memory_usage(deep=True).sum())
    rss_after_read = maxrss_bytes()
    cur_after_read = proc_status_bytes("self", "VmRSS")

    aggs: dict = {}
    if variant.startswith("moderndid"):
        c0 = cpu_seconds()
        t0 = time.perf_counter()
        res = moderndid.att_gt(df, "y", "time", "id", "group", xformla=MD_XFORMLA,
                               est_method="dr", **fit_kwargs)
        t_fit = time.perf_counter() - t0
        agg_objs = {}
        for ty in AGG_TYPES:
            agg_objs[ty] = moderndid.aggte(res, type=ty)
        t_est = time.perf_counter() - t0
        cpu_est = cpu_seconds() - c0
        cells = {
            "group": tolist(res.groups), "time": tolist(res.times),
            "att": tolist(res.att_gt), "se": tolist(res.se_gt),
        }
        for ty, a in agg_objs.items():
            aggs[ty] = {
                "overall_att": float(a.overall_att), "overall_se": float(a.overall_se),
                "event": tolist(a.event_times), "att": tolist(a.att_by_event),
                "se": tolist(a.se_by_event),
            }
    else:
        sink = io.StringIO()  # csdid prints its aggte summaries
        c0 = cpu_seconds()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(sink):
            obj = ATTgt(yname="y", gname="group", idname="id", tname="time",
                        xformla=CS_XFORMLA, data=df, biters=BITERS)
            obj.fit(est_method="dr", bstrap=boot)
        t_fit = time.perf_counter() - t0
        agg_objs = {}
        with contextlib.redirect_stdout(sink):
            for ty in AGG_TYPES:
                obj.aggte(typec=ty)
                agg_objs[ty] = obj.atte
        t_est = time.perf_counter() - t0
        cpu_est = cpu_seconds() - c0
        r = obj.results
        cells = {
            "group": tolist(r["group"]), "time": tolist(r["year"]),
            "att": tolist(r["att"]), "se": tolist(r["se"]),
        }
        for ty, a in agg_objs.items():
            aggs[ty] = {
                "overall_att": float(np.asarray(a["overall_att"]).ravel()[0]),
                "overall_se": float(np.asarray(a["overall_se"]).ravel()[0]),
                "event": tolist(a.get("egt")), "att": tolist(a.get("att_egt")),
                "se": tolist(a.get("se_egt")),
            }

    out = {
        "variant": variant, "lib_version": lib_version,
        "python": platform.python_version(), "numpy": np.__version__,
        "pandas": pd.__version__,
        "lib_file": lib_file,
        "t_read": t_read, "t_fit": t_fit, "t_aggte": t_est - t_fit, "t_estimate": t_est,
        "cpu_estimate": cpu_est, "load_start": load_start, "load_end": os.getloadavg()[0],
        "frame_bytes": frame_bytes, "n_rows": len(df),
        "rss_start": rss_start, "rss_imports": rss_imports,
        "rss_after_read": rss_after_read, "vmrss_after_read": cur_after_read,
        "rss_peak": maxrss_bytes(), "vmhwm_peak": proc_status_bytes("self", "VmHWM"),
        "cells": cells, "aggs": aggs,
    }
    with open(result_path, "w") as fh:
        json.dump(out, fh)


# --------------------------------------------------------------------------------------
# parent side
# --------------------------------------------------------------------------------------

def _data_path(n: int) -> Path:
    return DATA_DIR / f"did_scalable_n{n}_seed{SEED}.parquet"


def ensure_data(n: int, env: dict | None = None) -> Path:
    """Generate the Parquet file once, in a subprocess (the parent stays small)."""
    path = _data_path(n)
    if path.exists():
        return path
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    code = (
        "import moderndid, sys\n"
        f"d = moderndid.gen_did_scalable(n={n}, n_periods={N_PERIODS}, n_cohorts={N_COHORTS},"
        f" n_covariates={N_COVARIATES}, random_state={SEED})['data']\n"
        "tmp = sys.argv[1] + '.tmp'\n"
        "d.to_parquet(tmp, index=False)\n"
        "import os; os.replace(tmp, sys.argv[1])\n"
    )
    print(f"generating {path} ...", flush=True)
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, env=env)
    return path



def snapshot_source(dest: Path) -> Path:
    """Copy python/moderndid (as it is now) to ``dest``/moderndid.

    Other people edit the package while benchmarks run; children import this frozen copy
    (through PYTHONPATH, which precedes the editable install's path) so every run of every
    variant measures the same code.
    """
    import shutil

    shutil.copytree(REPO / "python" / "moderndid", dest / "moderndid",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def run_child(python: str, variant: str, data: Path, timeout: float,
              env: dict | None = None) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        result_path = fh.name
    try:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [python, str(Path(__file__).resolve()), "--child", variant,
             "--data", str(data), "--result", result_path],
            capture_output=True, text=True, timeout=timeout, cwd=str(REPO), env=env,
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(
                f"{variant} failed (rc={proc.returncode}):\n{proc.stderr[-4000:]}"
            )
        with open(result_path) as fh:
            out = json.load(fh)
        out["t_process"] = wall
        out["stderr_tail"] = proc.stderr[-2000:]
        return out
    finally:
        try:
            os.unlink(result_path)
        except OSError:
            pass



def compare(ref: dict, other: dict) -> dict:
    """Max |differences| of cells (matched by (group, time)) and aggregations."""
    rc, oc = ref["cells"], other["cells"]
    rkey = {(g, t): i for i, (g, t) in enumerate(zip(rc["group"], rc["time"], strict=True))}
    okey = {(g, t): i for i, (g, t) in enumerate(zip(oc["group"], oc["time"], strict=True))}
    common = [k for k in rkey if k in okey]
    ri = [rkey[k] for k in common]
    oi = [okey[k] for k in common]
    out = {
        "n_cells_ref": len(rkey), "n_cells_other": len(okey), "n_cells_common": len(common),
        "att": max_abs_diff([rc["att"][i] for i in ri], [oc["att"][i] for i in oi]),
        "se": max_abs_diff([rc["se"][i] for i in ri], [oc["se"][i] for i in oi]),
    }
    agg_att, agg_se = 0.0, 0.0
    for ty in AGG_TYPES:
        ra, oa = ref["aggs"][ty], other["aggs"][ty]
        agg_att = max(agg_att, max_abs_diff([ra["overall_att"]], [oa["overall_att"]]))
        agg_se = max(agg_se, max_abs_diff([ra["overall_se"]], [oa["overall_se"]]))
        if ra["event"] is not None or oa["event"] is not None:
            if ra["event"] != oa["event"]:
                agg_att = float("nan")
                continue
            agg_att = max(agg_att, max_abs_diff(ra["att"], oa["att"]))
            agg_se = max(agg_se, max_abs_diff(ra["se"], oa["se"]))
    out["agg_att"], out["agg_se"] = agg_att, agg_se
    # Relative scale of the ATTs, to read the absolute differences against.
    out["att_scale"] = max(abs(x) for x in rc["att"]) if rc["att"] else float("nan")
    return out


def machine_info() -> dict:
    return base_machine_info(REPO)



def _fmt_diff(x: float) -> str:
    return "nan" if x != x else f"{x:.1e}"


def summarise(runs: dict[str, list[dict]]) -> dict[str, dict]:
    summ = {}
    for variant, rs in runs.items():
        if not rs:
            continue
        est = [r["t_estimate"] for r in rs]
        s = {
            "n": len(rs),
            "est_best": min(est), "est_median": statistics.median(est),
            "fit_best": min(r["t_fit"] for r in rs),
            "fit_median": statistics.median(r["t_fit"] for r in rs),
            "aggte_median": statistics.median(r["t_aggte"] for r in rs),
            "cpu_best": min(r["cpu_estimate"] for r in rs),
            "cpu_median": statistics.median(r["cpu_estimate"] for r in rs),
            "read_best": min(r["t_read"] for r in rs),
            "read_median": statistics.median(r["t_read"] for r in rs),
            "proc_median": statistics.median(r["t_process"] for r in rs),
            "rss_peak": max(r["rss_peak"] for r in rs),
            "rss_after_read": max(r["rss_after_read"] for r in rs),
            "rss_start": max(r["rss_start"] for r in rs),
            "rss_imports": max(r["rss_imports"] for r in rs),
            "vmhwm_peak": max((r["vmhwm_peak"] or 0) for r in rs),
            "frame_bytes": rs[0]["frame_bytes"],
            "all_est": est,
            "all_cpu": [r["cpu_estimate"] for r in rs],
            "all_load": [r["load_start"] for r in rs],
            "vmrss_after_read": max((r["vmrss_after_read"] or 0) for r in rs),
        }
        s["rss_increment"] = max(r["rss_peak"] - r["rss_after_read"] for r in rs)
        s["lib"] = f"{rs[0]['lib_version']} (py {rs[0]['python']}, numpy {rs[0]['numpy']}, pandas {rs[0]['pandas']})"
        summ[variant] = s
    return summ


def render(args, command: str, info: dict, data_path: Path, runs, summ, comps,
           errors: list[str]) -> str:
    lines = []
    today = _dt.date.today().isoformat()
    lines.append(f"# att_gt + aggte benchmark, {today}")
    lines.append("")
    lines.append(f"Command: `{command}`  ")
    lines.append(f"Data: `gen_did_scalable(n={args.n}, n_periods={N_PERIODS}, "
                 f"n_cohorts={N_COHORTS}, n_covariates={N_COVARIATES}, random_state={SEED})` "
                 f"→ `{data_path.relative_to(REPO)}`"
                 + (f", {next(iter(summ.values()))['frame_bytes'] / 2**20:,.1f} MiB in memory "
                    f"(`df.memory_usage(deep=True).sum()`), "
                    f"{next(iter(runs.values()))[0]['n_rows']:,} rows" if summ else ""))
    lines.append("")
    lines.append("Machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    lines.append("")
    libs: dict[str, list[str]] = {}
    for v, s in summ.items():
        libs.setdefault(("moderndid " if v.startswith("moderndid") else "csdid ") + s["lib"],
                        []).append(v)
    lines.append("Libraries: " + "; ".join(f"{k} [{', '.join(vs)}]" for k, vs in libs.items()))
    lines.append("")
    lines.append(
        f"Each variant ran {args.repeats} times, each in a fresh process, variants "
        "interleaved. *estimate* = wall time of `att_gt` + the four `aggte` calls (simple, "
        "dynamic, group, calendar), imports excluded; *CPU* = user + system CPU time of the "
        "same span (all threads; less sensitive than wall time to other load on a shared "
        "machine); *read* = `pd.read_parquet`; *process* = the child's "
        "whole wall time incl. interpreter start-up and imports. Peak RSS = "
        "`getrusage(RUSAGE_SELF).ru_maxrss` at the end of the child (max over runs); "
        "*after imports* / *after read* = the same before reading the file and right after "
        "it (the baseline); *increment* = peak − after read, the estimation's own memory. "
        "Times in seconds, memory in MiB; *frame* = the input DataFrame's in-memory size."
    )
    lines.append("")
    hdr = ("| variant | estimate best | estimate median | CPU best | CPU median | att_gt median "
           "| aggte median | read median | process median | peak RSS | RSS after imports "
           "| RSS after read | increment | peak / frame | (peak − imports) / frame "
           "| increment / frame |")
    lines.append(hdr)
    lines.append("|" + "---|" * (hdr.count("|") - 1))
    for v, s in summ.items():
        lines.append(
            f"| {v} | {s['est_best']:.2f} | {s['est_median']:.2f} | {s['cpu_best']:.2f} "
            f"| {s['cpu_median']:.2f} | {s['fit_median']:.2f} "
            f"| {s['aggte_median']:.2f} | {s['read_median']:.2f} | {s['proc_median']:.2f} "
            f"| {mb(s['rss_peak'])} | {mb(s['rss_imports'])} | {mb(s['rss_after_read'])} "
            f"| {mb(s['rss_increment'])} | {s['rss_peak'] / s['frame_bytes']:.2f} "
            f"| {(s['rss_peak'] - s['rss_imports']) / s['frame_bytes']:.2f} "
            f"| {s['rss_increment'] / s['frame_bytes']:.2f} |"
        )
    lines.append("")
    lines.append("Per run, estimate wall / CPU seconds [1-min load average at child start]:")
    lines.append("")
    for v, s in summ.items():
        lines.append(f"- {v}: " + ", ".join(
            f"{t:.2f} / {c:.2f} [{ld:.1f}]"
            for t, c, ld in zip(s["all_est"], s["all_cpu"], s["all_load"], strict=True)))
    lines.append("")
    if "moderndid" in summ and "csdid" in summ:
        md, cs = summ["moderndid"], summ["csdid"]
        lines.append("## moderndid / csdid")
        lines.append("")
        lines.append("| metric | moderndid | csdid | ratio | goal |")
        lines.append("|---|---|---|---|---|")
        lines.append(f"| estimate, best (s) | {md['est_best']:.2f} | {cs['est_best']:.2f} "
                     f"| {md['est_best'] / cs['est_best']:.2f} | ≤ 0.5 |")
        lines.append(f"| estimate, median (s) | {md['est_median']:.2f} | {cs['est_median']:.2f} "
                     f"| {md['est_median'] / cs['est_median']:.2f} | ≤ 0.5 |")
        lines.append(f"| estimate CPU, best (s) | {md['cpu_best']:.2f} | {cs['cpu_best']:.2f} "
                     f"| {md['cpu_best'] / cs['cpu_best']:.2f} | |")
        lines.append(f"| peak RSS (MiB) | {mb(md['rss_peak'])} | {mb(cs['rss_peak'])} "
                     f"| {md['rss_peak'] / cs['rss_peak']:.2f} | |")
        lines.append(f"| peak RSS / input frame | {md['rss_peak'] / md['frame_bytes']:.2f} "
                     f"| {cs['rss_peak'] / cs['frame_bytes']:.2f} | | moderndid ≤ 2 |")
        lines.append(f"| (peak RSS − RSS after imports) / input frame | "
                     f"{(md['rss_peak'] - md['rss_imports']) / md['frame_bytes']:.2f} "
                     f"| {(cs['rss_peak'] - cs['rss_imports']) / cs['frame_bytes']:.2f} | | |")
        lines.append(f"| RSS increment / input frame | "
                     f"{md['rss_increment'] / md['frame_bytes']:.2f} "
                     f"| {cs['rss_increment'] / cs['frame_bytes']:.2f} | | |")
        lines.append("")
    if comps:
        lines.append("## Agreement with moderndid (first run of `moderndid`)")
        lines.append("")
        lines.append("Max |difference| over the ATT(g, t) cells matched by (group, time), over "
                     "their standard errors, and over all aggregated effects (overall and "
                     "by event/group/period) and their SEs. Bootstrap variants' SEs are "
                     "bootstrap SEs, so their SE differences are sampling noise, not errors.")
        lines.append("")
        lines.append("| variant | cells (ref/other/common) | ATT(g,t) | SE(g,t) | aggregated ATT "
                     "| aggregated SE |")
        lines.append("|---|---|---|---|---|---|")
        for v, c in comps.items():
            lines.append(
                f"| {v} | {c['n_cells_ref']}/{c['n_cells_other']}/{c['n_cells_common']} "
                f"| {_fmt_diff(c['att'])} | {_fmt_diff(c['se'])} | {_fmt_diff(c['agg_att'])} "
                f"| {_fmt_diff(c['agg_se'])} |"
            )
        scale = next(iter(comps.values()))["att_scale"]
        lines.append("")
        lines.append(f"(Largest |ATT(g, t)| is {scale:.3g}.)")
        lines.append("")
    lines.append("Memory check: ru_maxrss at child start (before imports), max over runs: " +
                 ", ".join(f"{v} {mb(s['rss_start'])} MiB" for v, s in summ.items()) +
                 "; VmHWM at the end: " +
                 ", ".join(f"{v} {mb(s['vmhwm_peak'])} MiB" for v, s in summ.items()) +
                 ". Current RSS (VmRSS) right after reading, max over runs: " +
                 ", ".join(f"{v} {mb(s['vmrss_after_read'])} MiB" for v, s in summ.items()) +
                 " (of which ~230 MiB at n=200000 is memory the Parquet reader freed but Arrow's "
                 "mimalloc pool keeps: `pyarrow.default_memory_pool().release_unused()` drops "
                 "it; the ru_maxrss baseline includes it too).")
    lines.append("")
    if errors:
        lines.append("## Problems")
        lines.append("")
        for e in errors:
            lines.append("- " + e.replace("\n", " ")[:1500])
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=200_000, help="number of units (default 200000)")
    p.add_argument("--repeats", type=int, default=3, help="runs per variant (default 3)")
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                   help=f"comma-separated subset of {','.join(ALL_VARIANTS)}")
    p.add_argument("--timeout", type=float, default=3600, help="per-run timeout (s)")
    p.add_argument("--out", default=None, help="report path (default results/att_gt_<date>.md)")
    p.add_argument("--no-snapshot", action="store_true",
                   help="import moderndid from the working tree in every run instead of a "
                        "copy taken at start (the tree may change during the run)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        _child(args.child, args.data, args.result)
        return 0

    command = shlex.join([sys.executable, *(sys.argv if argv is None else ["bench_att_gt.py", *argv])])
    command = command.replace(str(REPO) + "/", "")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in ALL_VARIANTS]
    if bad:
        p.error(f"unknown variants {bad}")

    info = machine_info()  # git state at the time the snapshot is taken
    md_env = None
    snap_dir = None
    if args.no_snapshot:
        src_note = (f"working tree python/moderndid (not frozen), sha256 at start "
                    f"{source_hash(REPO / 'python' / 'moderndid')}")
    else:
        snap_dir = Path(tempfile.mkdtemp(prefix="moderndid-bench-src-"))
        snapshot_source(snap_dir)
        md_env = dict(os.environ)
        md_env["PYTHONPATH"] = os.pathsep.join(
            [str(snap_dir), *filter(None, [os.environ.get("PYTHONPATH")])])
        src_note = (f"copy of python/moderndid taken at start, sha256 "
                    f"{source_hash(snap_dir / 'moderndid')}")
    data_path = ensure_data(args.n, md_env)
    pythons = {}
    errors: list[str] = []
    cs_py = peer_python("CSDID_PY", CSDID_DEFAULT_PY)
    for v in variants:
        if v.startswith("csdid"):
            if cs_py is None:
                errors.append(f"{v}: csdid interpreter not found (set CSDID_PY); skipped")
                continue
            pythons[v] = cs_py
        else:
            pythons[v] = sys.executable

    runs: dict[str, list[dict]] = {v: [] for v in pythons}
    failed: set[str] = set()
    for rep in range(args.repeats):
        for v in pythons:
            if v in failed:
                continue
            print(f"[{rep + 1}/{args.repeats}] {v} ...", end=" ", flush=True)
            try:
                r = run_child(pythons[v], v, data_path, args.timeout,
                              md_env if v.startswith("moderndid") else None)
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
            print(f"read {r['t_read']:.2f}s, att_gt {r['t_fit']:.2f}s, aggte "
                  f"{r['t_aggte']:.2f}s, peak RSS {mb(r['rss_peak'])} MiB", flush=True)
            if r.get("stderr_tail", "").strip() and rep == 0:
                warn = r["stderr_tail"].strip().splitlines()
                errors.append(f"{v} wrote to stderr (last lines): " + " | ".join(warn[-3:]))

    if snap_dir is not None:
        md_files = {r["lib_file"] for v, rs in runs.items() if v.startswith("moderndid")
                    for r in rs}
        if any(not f.startswith(str(snap_dir)) for f in md_files):
            errors.append(f"moderndid was not imported from the snapshot: {sorted(md_files)}")
        import shutil

        shutil.rmtree(snap_dir, ignore_errors=True)
    summ = summarise(runs)
    comps = {}
    if runs.get("moderndid"):
        ref = runs["moderndid"][0]
        for v, rs in runs.items():
            if rs and v != "moderndid":
                comps[v] = compare(ref, rs[0])
        if len(runs["moderndid"]) > 1:
            comps["moderndid (run 2 vs run 1)"] = compare(ref, runs["moderndid"][1])

    info["moderndid source"] = src_note
    report = render(args, command, info, data_path, runs, summ, comps, errors)
    out = Path(args.out) if args.out else RESULTS_DIR / f"att_gt_{_dt.date.today().isoformat()}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report + "\n")
    raw = out.with_suffix(".json")
    raw.write_text(json.dumps({v: [{k: x for k, x in r.items() if k not in ("cells", "aggs")}
                                   for r in rs] for v, rs in runs.items()}, indent=1))
    print()
    print(report)
    print(f"\nwritten to {out} (raw timings: {raw})")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
