#!/usr/bin/env python
"""What a formula costs over a plain sum of columns, in memory and on Spark.

What it does
------------
Builds ``moderndid.gen_did_scalable(n=N, n_periods=5, n_cohorts=3, n_covariates=4,
random_state=7)["data"]`` and adds a text column ``region`` (8 levels, constant per unit)
and its dummies ``r_1 .. r_7`` (reference level ``r_0``), then times, interleaved,
``--repeats`` times each, the same design written two ways:

``plain``    ``xformla="~ cov1 + cov2 + r_1 + ... + r_7 + cov1_sq"`` (precomputed columns:
             the fast path, no formulaic)
``formula``  ``xformla="~ cov1 + cov2 + C(region) + I(cov1 ** 2)"`` (evaluated by formulaic
             on each partition; on Spark one more job gathers the levels of ``region``)

for in memory and for a Spark DataFrame in one ``local[2]`` session, and reports the
medians, the formula / plain ratio per engine, and the largest difference between the two
results (the designs are the same, so ATT(g,t) must agree to rounding).

Usage: ``.venv/bin/python benchmarks/bench_formula.py --n 100000 --repeats 3 --out FILE.md``
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from _benchlib import machine_info, source_hash  # noqa: E402

ROLES = dict(yname="y", tname="time", idname="id", gname="group", est_method="dr")
PLAIN = "~ cov1 + cov2 + " + " + ".join(f"r_{k}" for k in range(1, 8)) + " + cov1_sq"
FORMULA = "~ cov1 + cov2 + C(region) + I(cov1 ** 2)"


def panel(n: int):
    import moderndid as did

    df = did.gen_did_scalable(n=n, n_periods=5, n_cohorts=3, n_covariates=4,
                              random_state=7)["data"]
    level = (df["id"].to_numpy() * 2654435761) % 8  # a fixed level per unit
    df["region"] = np.array([f"region_{k}" for k in range(8)])[level]
    for k in range(1, 8):
        df[f"r_{k}"] = (level == k).astype(float)
    df["cov1_sq"] = df["cov1"] ** 2
    return df


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=pathlib.Path)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    from pyspark.sql import SparkSession

    import moderndid as did
    from moderndid.spark import configure

    pdf = panel(args.n)
    spark = configure(SparkSession.builder.master("local[2]")
                      .config("spark.ui.enabled", "false")).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    sdf = spark.createDataFrame(pdf).persist()
    sdf.count()
    frames = {"memory": pdf, "spark": sdf}
    did.att_gt(spark.createDataFrame(panel(2000)), **ROLES, xformla=FORMULA)  # warm up

    times: dict[tuple[str, str], list[float]] = {}
    results = {}
    for _ in range(args.repeats):
        for engine, data in frames.items():
            for name, formula in (("plain", PLAIN), ("formula", FORMULA)):
                start = time.perf_counter()
                res = did.att_gt(data, **ROLES, xformla=formula)
                times.setdefault((engine, name), []).append(time.perf_counter() - start)
                results[(engine, name)] = res
    ref = results[("memory", "plain")]
    lines = [f"# Formula vs plain covariates, n={args.n} units x 5 periods",
             "", f"source {source_hash(ROOT / 'python' / 'moderndid')}; "
             f"machine {machine_info(ROOT)}", "",
             "| engine | plain (s) | formula (s) | formula / plain | max abs diff ATT vs memory plain |",
             "|---|---|---|---|---|"]
    for engine in frames:
        plain = statistics.median(times[(engine, "plain")])
        formula = statistics.median(times[(engine, "formula")])
        diff = max(float(np.nanmax(np.abs(results[(engine, k)].att_gt - ref.att_gt)))
                   for k in ("plain", "formula"))
        lines.append(f"| {engine} | {plain:.2f} | {formula:.2f} | {formula / plain:.2f} | "
                     f"{diff:.1e} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    spark.stop()


if __name__ == "__main__":
    main()
