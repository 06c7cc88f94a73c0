#!/usr/bin/env python
"""moderndid on a classic Spark session against the same fit through Spark Connect.

What it does
------------
1. Writes the inputs to Parquet under ``benchmarks/_data/`` (gitignored), once:

   ``mpdta``    ``load_mpdta()`` (2,500 rows), fit with ``xformla="~ lpop"``;
   ``n20000``   ``gen_did_scalable(n=20_000, n_periods=6, n_cohorts=4, n_covariates=4,
                random_state=42)["data"]`` (120,000 rows), ``xformla="~ cov1"`` (the
                generator's minimum is 4 covariates; the fit uses one);
   ``n200000``  the same with ``n=200_000, n_periods=10, n_cohorts=6`` (2,000,000 rows).

   Every fit is ``att_gt(spark.read.parquet(path), ..., est_method="dr")``, the issue's
   "dr, one covariate" specification.
2. Runs each session kind in a fresh process, one after another (``classic`` first):
   ``SparkSession.builder.master("local[2]")`` or ``SparkSession.builder.remote("local[2]")``
   (a local Spark Connect server in the same process, started by pyspark), both through
   ``moderndid.spark.configure`` (jar, Python workers, Arrow batch size) with the same
   settings, ``spark.sql.shuffle.partitions`` left at Spark's default (200), as a notebook
   user would have it. One warm-up fit on mpdta, then per input one untimed fit and
   ``--repeats`` timed fits.
3. Records per fit: wall time; Spark jobs, stages and tasks (from the status tracker of
   the JVM that runs the work: the classic session's, or the Connect server's, which lives
   in the same process); the tasks of each job; under Connect the gRPC round trips by kind
   (``analyze`` by method, ``execute``, ``config``), counted by wrapping the client's
   methods. Writes ``results/connect_<date>.md`` and ``.json`` (also printed).

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_connect.py --inputs mpdta,n20000 --repeats 3
    .venv/bin/python benchmarks/bench_connect.py --inputs n200000 --repeats 3 --tag n200000
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "python"))  # this checkout's moderndid, also in the children

from _benchlib import machine_info  # noqa: E402

DATA_DIR = HERE / "_data"
RESULTS_DIR = HERE / "results"

INPUTS = {
    # name -> (generator arguments or None for mpdta, columns, xformla)
    "mpdta": (None, ("lemp", "year", "countyreal", "first.treat"), "~ lpop"),
    "n20000": (dict(n=20_000, n_periods=6, n_cohorts=4, n_covariates=4),
               ("y", "time", "id", "group"), "~ cov1"),
    "n200000": (dict(n=200_000, n_periods=10, n_cohorts=6, n_covariates=4),
                ("y", "time", "id", "group"), "~ cov1"),
}


def data_path(name: str) -> Path:
    """The input's Parquet file, written on first use."""
    path = DATA_DIR / f"connect_{name}.parquet"
    if not path.exists():
        import moderndid

        DATA_DIR.mkdir(exist_ok=True)
        args = INPUTS[name][0]
        frame = (moderndid.load_mpdta() if args is None
                 else moderndid.gen_did_scalable(**args, random_state=42)["data"])
        frame.to_parquet(path)
    return path


# --------------------------------------------------------------------------------------
# child: one session kind
# --------------------------------------------------------------------------------------

class RoundTrips:
    """Counts the Connect client's gRPC calls (analyze by method, execute, config)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def install(self) -> None:
        from pyspark.sql.connect.client.core import SparkConnectClient

        def wrap(name: str, label) -> None:
            original = getattr(SparkConnectClient, name)

            def wrapped(client, *args, **kwargs):
                key = label(args, kwargs)
                self.counts[key] = self.counts.get(key, 0) + 1
                return original(client, *args, **kwargs)

            setattr(SparkConnectClient, name, wrapped)

        wrap("_analyze", lambda a, k: f"analyze:{a[0] if a else k.get('method')}")
        wrap("_execute_and_fetch_as_iterator", lambda a, k: "execute")
        wrap("_execute", lambda a, k: "execute")
        wrap("config", lambda a, k: "config")

    def take(self) -> dict[str, int]:
        out, self.counts = self.counts, {}
        return out


class Jobs:
    """Jobs, stages and tasks run by the in-process JVM since the last call."""

    def __init__(self, sc) -> None:
        self.sc = sc
        self.next_job = 0
        self.take()

    def take(self) -> list[dict]:
        jsc = self.sc._jsc.sc()
        try:
            jsc.listenerBus().waitUntilEmpty()
        except Exception:  # older Spark: give the listener bus a moment
            time.sleep(1.0)
        tracker = self.sc.statusTracker()
        jobs = []
        misses = 0
        while misses < 50:  # job ids are consecutive; a few may be evicted or pending
            info = tracker.getJobInfo(self.next_job)
            if info is None:
                misses += 1
                self.next_job += 1
                continue
            misses = 0
            tasks = []
            for sid in info.stageIds:
                stage = tracker.getStageInfo(sid)
                if stage is not None and stage.numCompletedTasks + stage.numFailedTasks:
                    tasks.append(stage.numCompletedTasks + stage.numFailedTasks)
            jobs.append({"job": self.next_job, "stages": len(tasks), "tasks": tasks})
            self.next_job += 1
        # back up to the first id not seen, so the next call starts there
        self.next_job -= misses
        return jobs


def child(kind: str, inputs: list[str], repeats: int, shuffle_partitions: str | None) -> None:
    import logging
    import warnings

    warnings.simplefilter("ignore")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["SPARK_TESTING"] = "1"  # Connect: ephemeral server port, found by the client
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    import moderndid
    import moderndid.spark

    # the engine's own timings (unit table, each pass), kept per fit in the JSON
    timings: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: timings.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("moderndid").addHandler(handler)
    logging.getLogger("moderndid").setLevel(logging.DEBUG)
    builder = (SparkSession.builder.remote("local[2]") if kind == "connect"
               else SparkSession.builder.master("local[2]"))
    builder = moderndid.spark.configure(builder).config("spark.ui.enabled", "false")
    if shuffle_partitions is not None:
        builder = builder.config("spark.sql.shuffle.partitions", shuffle_partitions)
    start = time.perf_counter()
    spark = builder.getOrCreate()
    startup = time.perf_counter() - start
    sc = SparkContext._active_spark_context  # the classic session's, or the Connect server's
    sc.setLogLevel("ERROR")
    trips = RoundTrips()
    if kind == "connect":
        trips.install()
    jobs = Jobs(sc)

    def fit(name: str) -> dict:
        _, (y, t, i, g), xformla = INPUTS[name]
        jobs.take()
        trips.take()
        del timings[:]
        start = time.perf_counter()
        sdf = spark.read.parquet(str(data_path(name)))
        res = moderndid.att_gt(sdf, y, t, i, g, xformla=xformla, est_method="dr")
        wall = time.perf_counter() - start
        ran = jobs.take()
        return {"wall": wall, "jobs": len(ran), "stages": sum(j["stages"] for j in ran),
                "tasks": sum(sum(j["tasks"]) for j in ran),
                "tasks_per_job": [sum(j["tasks"]) for j in ran],
                "round_trips": trips.take(), "log": list(timings), "att": res.att_gt.tolist(),
                "se": res.se_gt.tolist()}

    for name in inputs:
        data_path(name)
    warm = fit("mpdta")
    out = {"kind": kind, "session": type(spark).__module__, "startup": startup,
           "warmup": warm, "fits": {}, "input_warmup": {}}
    for name in inputs:
        # one untimed fit per input first: the first read of a file (and of its footers)
        # and the first plan of that shape are not what a repeated fit costs
        out["input_warmup"][name] = fit(name)["wall"]
        out["fits"][name] = [fit(name) for _ in range(repeats)]
    print("RESULT " + json.dumps(out), flush=True)
    spark.stop()


# --------------------------------------------------------------------------------------
# parent
# --------------------------------------------------------------------------------------

def run_child(kind: str, args: argparse.Namespace) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "python"), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("SPARK_REMOTE", None)
    cmd = [sys.executable, __file__, "--child", kind, "--inputs", args.inputs,
           "--repeats", str(args.repeats)]
    if args.shuffle_partitions is not None:
        cmd += ["--shuffle-partitions", args.shuffle_partitions]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"{kind} run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")


def report(results: dict[str, dict], args: argparse.Namespace) -> str:
    lines = [f"# Spark Connect vs classic ({_dt.date.today()})", "",
             f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`", ""]
    info = machine_info(REPO)
    lines += [f"Machine: {json.dumps(info)}", "",
              f"1-min load average: {args.load_start:.2f} at the start, "
              f"{os.getloadavg()[0]:.2f} at the end (other processes share the machine)", ""]
    lines += ["| input | session | fit median (s) | fits (s) | jobs | stages | tasks | "
              "tasks per job | Connect round trips |", "|---|---|---|---|---|---|---|---|---|"]
    for name in args.inputs.split(","):
        medians = {}
        for kind, res in results.items():
            fits = res["fits"][name]
            medians[kind] = statistics.median(f["wall"] for f in fits)
            walls = ", ".join(f"{f['wall']:.2f}" for f in fits)
            last = fits[-1]
            trips = ", ".join(f"{k} {v}" for k, v in sorted(last["round_trips"].items()))
            lines.append(
                f"| {name} | {kind} | {medians[kind]:.2f} | "
                f"{walls} | {last['jobs']} | "
                f"{last['stages']} | {last['tasks']} | {last['tasks_per_job']} | "
                f"{trips or '-'} |")
        if len(medians) == 2:
            lines.append(f"| {name} | **connect / classic** | "
                         f"**{medians['connect'] / medians['classic']:.2f}** | | | | | | |")
    lines.append("")
    for name in args.inputs.split(","):
        fits = [f for res in results.values() for f in res["fits"][name]]
        diff = max(max(abs(a - b) for a, b in zip(f[k], fits[0][k], strict=True))
                   for f in fits for k in ("att", "se"))
        lines.append(f"- {name}: largest difference of ATT(g,t) / SE between any two fits: "
                     f"{diff:.1e}")
    for kind, res in results.items():
        warm = ", ".join(f"{k} {v:.2f} s" for k, v in res.get("input_warmup", {}).items())
        lines.append(f"- {kind}: session start-up {res['startup']:.1f} s, warm-up fit "
                     f"(mpdta) {res['warmup']['wall']:.2f} s, untimed first fit per input: "
                     f"{warm}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", default="mpdta,n20000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kinds", default="classic,connect")
    parser.add_argument("--shuffle-partitions", default=None,
                        help="spark.sql.shuffle.partitions (default: Spark's, 200)")
    parser.add_argument("--tag", default="")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.inputs.split(","), args.repeats, args.shuffle_partitions)
        return
    for name in args.inputs.split(","):
        data_path(name)
    args.load_start = os.getloadavg()[0]
    results = {kind: run_child(kind, args) for kind in args.kinds.split(",")}
    text = report(results, args)
    print(text)
    RESULTS_DIR.mkdir(exist_ok=True)
    stem = f"connect_{_dt.date.today()}{'_' + args.tag if args.tag else ''}"
    (RESULTS_DIR / f"{stem}.md").write_text(text)
    (RESULTS_DIR / f"{stem}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
