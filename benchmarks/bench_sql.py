#!/usr/bin/env python
"""A Spark SQL call against the Python API on the same panel and session.

What it does
------------
Writes ``moderndid.gen_did_scalable(n=N, n_periods=10, n_cohorts=6, n_covariates=5,
random_state=42)["data"]`` to Parquet under ``benchmarks/_data/`` (gitignored) once, reads it
as a temporary view in one ``local[2]`` session, warms up both paths on a small panel, then
times, interleaved, ``--repeats`` times each:

``python``  ``moderndid.att_gt(spark.table("panel"), "y", "time", "id", "group",
            xformla="~ cov1 + ... + cov5", est_method="dr")`` and ``to_spark`` of the result,
            collected (the result as Spark rows, what a SQL caller gets)
``sql``     ``spark.sql("SELECT * FROM moderndid_att_gt(TABLE(panel), ...)").collect()``

and reports the medians, their ratio, and the largest difference between the two results.

Usage: ``.venv/bin/python benchmarks/bench_sql.py --n 200000 --repeats 3 --out FILE.md``
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from _benchlib import machine_info, source_hash  # noqa: E402

CALL = dict(yname="y", tname="time", idname="id", gname="group",
            xformla="~ cov1 + cov2 + cov3 + cov4 + cov5", est_method="dr")
SQL = ("SELECT * FROM moderndid_att_gt(TABLE(panel), yname => 'y', tname => 'time', "
       "idname => 'id', gname => 'group', xformla => '~ cov1 + cov2 + cov3 + cov4 + cov5', "
       "est_method => 'dr')")


def panel(n: int) -> pathlib.Path:
    import moderndid

    path = ROOT / "benchmarks" / "_data" / f"did_scalable_n{n}_seed42.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        moderndid.gen_did_scalable(n=n, n_periods=10, n_cohorts=6, n_covariates=5,
                                   random_state=42)["data"].to_parquet(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=pathlib.Path)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    import moderndid
    import moderndid.spark

    spark = moderndid.spark.configure(
        SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
    ).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    moderndid.spark.register(spark)
    spark.read.parquet(str(panel(2000))).createOrReplaceTempView("panel")
    moderndid.att_gt(spark.table("panel"), **CALL).to_spark(spark).collect()
    spark.sql(SQL).collect()
    spark.read.parquet(str(panel(args.n))).createOrReplaceTempView("panel")

    times: dict[str, list[float]] = {"python": [], "sql": []}
    results: dict[str, list] = {}
    for _ in range(args.repeats):
        start = time.perf_counter()
        rows = moderndid.att_gt(spark.table("panel"), **CALL).to_spark(spark).collect()
        times["python"].append(time.perf_counter() - start)
        results["python"] = [r["att"] for r in rows]
        start = time.perf_counter()
        rows = spark.sql(SQL).collect()
        times["sql"].append(time.perf_counter() - start)
        results["sql"] = [r["att"] for r in rows]
    medians = {k: statistics.median(v) for k, v in times.items()}
    diff = float(np.max(np.abs(np.array(results["python"]) - np.array(results["sql"]))))
    lines = [
        f"# Spark SQL call vs Python API, n = {args.n:,} units x 10 periods",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_sql.py --n {args.n} --repeats "
        f"{args.repeats}`; source hash {source_hash(ROOT)}; {machine_info(ROOT)}",
        "",
        "| variant | runs (s) | median (s) |",
        "|---|---|---|",
        *(f"| {k} | {', '.join(f'{t:.2f}' for t in v)} | {medians[k]:.2f} |"
          for k, v in times.items()),
        "",
        f"SQL / Python (medians): **{medians['sql'] / medians['python']:.3f}**; largest "
        f"difference of ATT(g,t) between the two: {diff:.1e}",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    spark.stop()


if __name__ == "__main__":
    main()
