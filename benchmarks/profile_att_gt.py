#!/usr/bin/env python
"""cProfile of moderndid's in-memory ``att_gt`` fit on the benchmark data.

Reads the Parquet file written by ``bench_att_gt.py`` (generating it if missing), imports
everything first, then profiles one call of

    att_gt(df, "y", "time", "id", "group", xformla="~ cov1 + ... + cov5", est_method="dr")

(and, separately, the four ``aggte`` calls), and writes the top ``--top`` functions by
cumulative time, plus the top by own (total) time, to
``benchmarks/results/profile_att_gt_<date>.txt`` (also printed).

Usage (from the repository root)::

    .venv/bin/python benchmarks/profile_att_gt.py --n 200000
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as _dt
import io
import platform
import pstats
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_att_gt as bench  # noqa: E402


def _stats_text(prof: cProfile.Profile, sort: str, top: int) -> str:
    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf)
    st.sort_stats(sort).print_stats(top)
    text = buf.getvalue()
    # Shorten absolute paths to the repository / site-packages for readability.
    text = text.replace(str(bench.REPO) + "/", "")
    for prefix in sorted({p for p in sys.path if p and "site-packages" in p}, key=len,
                         reverse=True):
        text = text.replace(prefix + "/", "site-packages/")
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    import numpy as np
    import pandas as pd

    import moderndid

    data_path = bench.ensure_data(args.n)
    df = pd.read_parquet(data_path)

    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    res = moderndid.att_gt(df, "y", "time", "id", "group", xformla=bench.MD_XFORMLA,
                           est_method="dr")
    prof.disable()
    t_fit = time.perf_counter() - t0

    prof_agg = cProfile.Profile()
    t0 = time.perf_counter()
    prof_agg.enable()
    for ty in bench.AGG_TYPES:
        moderndid.aggte(res, type=ty)
    prof_agg.disable()
    t_agg = time.perf_counter() - t0

    info = bench.machine_info()
    command = shlex.join([sys.executable, *(sys.argv if argv is None else
                                            ["profile_att_gt.py", *argv])])
    command = command.replace(str(bench.REPO) + "/", "")
    head = [
        f"cProfile of moderndid.att_gt (in memory), {_dt.date.today().isoformat()}",
        f"command: {command}",
        f"data: {data_path.relative_to(bench.REPO)} ({len(df):,} rows, "
        f"{df.memory_usage(deep=True).sum() / 2**20:,.1f} MiB in memory)",
        "call: att_gt(df, 'y', 'time', 'id', 'group', "
        f"xformla='{bench.MD_XFORMLA}', est_method='dr')",
        f"moderndid {moderndid.__version__}, python {platform.python_version()}, "
        f"numpy {np.__version__}, pandas {pd.__version__}",
        "machine: " + ", ".join(f"{k}={v}" for k, v in info.items()),
        f"moderndid imported from {Path(moderndid.__file__).parent}, source sha256 "
        f"{bench.source_hash(Path(moderndid.__file__).parent)}",
        f"wall time under the profiler: att_gt {t_fit:.2f} s, 4 x aggte {t_agg:.3f} s "
        "(profiling overhead included)",
        "",
    ]
    sections = [
        f"=== att_gt: top {args.top} by cumulative time ===",
        _stats_text(prof, "cumulative", args.top),
        f"=== att_gt: top {args.top} by own (tottime) time ===",
        _stats_text(prof, "tottime", args.top),
        "=== aggte (simple, dynamic, group, calendar): top 10 by cumulative time ===",
        _stats_text(prof_agg, "cumulative", 10),
    ]
    report = "\n".join(head + sections)
    out = (Path(args.out) if args.out else
           bench.RESULTS_DIR / f"profile_att_gt_{_dt.date.today().isoformat()}.txt")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    print(report)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
