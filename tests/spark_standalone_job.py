"""Driver of the standalone-cluster tests (run by ``test_spark_standalone.py`` in a process
of its own: one process holds one SparkContext, and the test run's ``local[2]`` session
already holds it).

Usage: ``python spark_standalone_job.py MASTER_URL OUT_DIR``. Fits every specification on
the cluster, then again with a fault injected, and pickles the results to
``OUT_DIR/results.pkl``. The kernel wrappers are defined here, in ``__main__``, so
pyspark's cloudpickle ships them to the executors by value.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

import moderndid as did

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
MPDTA = dict(yname="lemp", tname="year", idname="countyreal", gname="first.treat")
DDD_ARGS = ("y", "time", "id", "state", "partition")
DDD_COVS = "~ cov1 + cov2 + cov3 + cov4"
# Few partitions keep the job short on two cores. The reductions add the partitions'
# partial sums in partition order whatever order their tasks end in (see
# test_spark_determinism.py, 8 partitions), so a retried fit must give the same digits.
N_PARTITIONS = 2


def mpdta() -> pd.DataFrame:
    pdf = did.load_mpdta()
    pdf["w"] = 1.0 + (pdf["countyreal"] % 4) * 0.5
    pdf["cluster"] = pdf["countyreal"] // 1000
    return pdf


ATT_GT = {
    "dr-lpop-boot": dict(MPDTA, xformla="~ lpop", boot=True, biters=99, random_state=3),
    "dr-lpop-cluster-boot-weights": dict(MPDTA, xformla="~ lpop", weightsname="w",
                                         clustervars=["countyreal", "cluster"], boot=True,
                                         biters=99, random_state=7),
    "ipw-notyet-analytic": dict(MPDTA, est_method="ipw", control_group="notyettreated",
                                xformla="~ lpop"),
}
DDD = {
    "ddd-2periods": ("triplediff_readme_2periods_seed1234.csv", dict(xformla=DDD_COVS)),
    "ddd-gmm-boot": ("triplediff_readme_multperiods_seed1234.csv",
                     dict(xformla=DDD_COVS, control_group="notyettreated", boot=True,
                          biters=99, random_state=8)),
}
# (name, specification, pass word, what dies)
FAULTS = [
    ("python-unit-table", "dr-lpop-boot", "unit table", "python"),
    ("python-logit", "dr-lpop-boot", "logit", "python"),
    ("python-moments", "dr-lpop-boot", "moments", "python"),
    ("python-moments-keyed", "dr-lpop-cluster-boot-weights", "moments", "python"),
    ("executor-moments", "dr-lpop-boot", "moments", "executor"),
    ("nondeterministic-moments", "dr-lpop-boot", "moments", "perturb"),
]


class KillOnce:
    """The first call anywhere (an ``O_EXCL`` marker file) kills its Python worker, or
    its executor JVM (the Python worker's daemon's parent), then every call runs
    ``function``; ``perturb`` makes the kernel non-deterministic (partial sums scaled by a
    random factor within 1e-12 of 1 on every call)."""

    def __init__(self, function: Any, marker: str, what: str):
        self.function, self.marker, self.what = function, marker, what

    def __call__(self, *args: Any) -> Any:
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            first = True
        except FileExistsError:
            first = False
        if first and self.what == "executor":
            import psutil

            jvm = psutil.Process().parent()
            while jvm is not None and "java" not in jvm.name():
                jvm = jvm.parent()
            assert jvm is not None, "no executor JVM above the Python worker"
            os.kill(jvm.pid, signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
        elif first:
            os.kill(os.getpid(), signal.SIGKILL)
        out = self.function(*args)
        if self.what == "perturb":
            rng = np.random.default_rng()
            for name, value in out.sums.items():
                out.sums[name] = value * (1.0 + 1e-12 * rng.uniform(-1.0, 1.0))
        return out


def inject(word: str, marker: str, what: str) -> Any:
    """Wrap the kernel of the passes whose description holds ``word``; returns an undo."""
    import moderndid.spark.prepare as prepare
    from moderndid.spark.executor import SparkExecutor

    if word == "unit table":
        original_build = prepare.build_blocks
        prepare.build_blocks = KillOnce(original_build, marker, what)

        def undo_build() -> None:
            prepare.build_blocks = original_build
        return undo_build
    run = SparkExecutor.run

    def wrapped(self: Any, kernel: Any, state: Any, description: str, **kwargs: Any) -> Any:
        if word in description:
            kernel = KillOnce(kernel, marker, what)
        return run(self, kernel, state, description, **kwargs)

    SparkExecutor.run = wrapped  # type: ignore[method-assign]

    def undo_run() -> None:
        SparkExecutor.run = run  # type: ignore[method-assign]
    return undo_run


def main(master: str, out_dir: str) -> None:
    from pyspark.sql import SparkSession

    import moderndid.spark

    python_path = os.environ.get("PYTHONPATH", "")
    # pyspark takes the executors' Python from PYSPARK_PYTHON when the driver is a plain
    # Python process (spark.pyspark.python is read by spark-submit only): the driver's.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    start = time.perf_counter()
    builder = (SparkSession.builder.master(master).appName("moderndid-standalone-tests")
               .config("spark.executor.memory", "512m")
               .config("spark.executor.cores", "1")
               .config("spark.cores.max", "2")
               # the executors' Python is the driver's, with the driver's moderndid
               .config("spark.pyspark.python", sys.executable)
               .config("spark.executorEnv.PYTHONPATH", python_path)
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false"))
    spark = moderndid.spark.configure(builder).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    out: dict[str, Any] = {"conf": dict(spark.sparkContext.getConf().getAll())}

    def where(_: Any) -> Any:
        import moderndid

        return [(sys.executable, moderndid.__file__, os.getpid())]

    print(f"session: {time.perf_counter() - start:.1f} s", flush=True)
    out["executors"] = spark.sparkContext.parallelize(range(4), 4).flatMap(where).collect()
    pdf = mpdta()
    sdf = spark.createDataFrame(pdf).persist()
    for name, kwargs in ATT_GT.items():
        out[name] = did.att_gt(sdf, **kwargs, n_partitions=N_PARTITIONS)
        print(f"{name}: {time.perf_counter() - start:.1f} s", flush=True)
    for name, (file, kwargs) in DDD.items():
        ddf = spark.createDataFrame(pd.read_csv(os.path.join(DATA, file)))
        out[name] = did.ddd(ddf, *DDD_ARGS, **kwargs, n_partitions=N_PARTITIONS)
        print(f"{name}: {time.perf_counter() - start:.1f} s", flush=True)
    for name, spec, word, what in FAULTS:
        marker = os.path.join(out_dir, f"marker-{name}")
        undo = inject(word, marker, what)
        try:
            out[name] = did.att_gt(sdf, **ATT_GT[spec], n_partitions=N_PARTITIONS)
        finally:
            undo()
        out[f"{name}:fired"] = os.path.exists(marker)
        print(f"{name}: {time.perf_counter() - start:.1f} s", flush=True)
    spark.stop()
    with open(os.path.join(out_dir, "results.pkl"), "wb") as f:
        pickle.dump(out, f)


if __name__ == "__main__":
    warnings.filterwarnings("ignore", category=FutureWarning)
    main(sys.argv[1], sys.argv[2])
