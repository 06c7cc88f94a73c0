"""Spark on a standalone cluster (a master and two workers, each a JVM of its own, on
127.0.0.1), as users run it: executors in separate JVMs, the jar shipped through
``spark.jars``, Python workers started by the executors, failed tasks retried
(``spark.task.maxFailures`` at its default, 4; ``local[2]`` never retries).

The fixture starts the master and the workers from the pyspark installation
(``bin/spark-class``), one core and 1 GB each, and stops every process it started (by
PID, with the executors the workers launched). The driver runs in a process of its own
(``spark_standalone_job.py``: one process holds one SparkContext, and the run's ``local[2]``
session holds this one's), fits every specification, then fits again with a fault
injected: a Python worker killed in the middle of the unit-table, logit and moments passes,
and an executor JVM killed in the moments pass. Every number of a disturbed fit must equal
the undisturbed fit digit for digit; a deliberately non-deterministic kernel shows that
this check can fail.
"""

from __future__ import annotations

import os
import pathlib
import pickle
import socket
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest

from conftest import require_spark

require_spark()

import moderndid as did  # noqa: E402

pytestmark = [pytest.mark.spark, pytest.mark.slow]

HERE = pathlib.Path(__file__).resolve().parent
JOB_TIMEOUT = 420  # seconds; the job takes about 1-2 minutes on 2 cores
sys.path.insert(0, str(HERE))
import spark_standalone_job as job  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(predicate: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise TimeoutError(f"the standalone cluster did not start: {what}")


def _stop(processes: list[subprocess.Popen]) -> None:
    """Stop what the fixture started, by PID: the workers (and the executors they
    launched, found as their children before the workers go), then the master."""
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


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    """``spark://127.0.0.1:PORT`` of a running master with two registered workers."""
    import pyspark

    home = pathlib.Path(pyspark.__file__).parent
    tmp = tmp_path_factory.mktemp("standalone")
    port = _free_port()
    env = dict(os.environ, SPARK_HOME=str(home), SPARK_LOCAL_IP="127.0.0.1",
               SPARK_LOG_DIR=str(tmp), SPARK_WORKER_DIR=str(tmp / "work"),
               SPARK_NO_DAEMONIZE="1")
    spark_class = [str(home / "bin" / "spark-class")]
    processes: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> pathlib.Path:
        log = tmp / f"{name}.log"
        with open(log, "wb") as out:
            processes.append(subprocess.Popen(spark_class + list(args), env=env, stdout=out,
                                              stderr=subprocess.STDOUT, cwd=tmp))
        return log

    url = f"spark://127.0.0.1:{port}"
    started = time.perf_counter()
    try:
        master_log = start("master", "org.apache.spark.deploy.master.Master", "--host",
                           "127.0.0.1", "--port", str(port), "--webui-port", "0")
        _wait_for(lambda: "I have been elected leader" in master_log.read_text(errors="replace"),
                  90, "master")
        for i in range(2):
            start(f"worker{i}", "org.apache.spark.deploy.worker.Worker", "--host",
                  "127.0.0.1", "--cores", "1", "--memory", "1g", "--webui-port", "0",
                  "--work-dir", str(tmp / f"work{i}"), url)
        _wait_for(lambda: master_log.read_text(errors="replace").count("Registering worker")
                  >= 2, 90, "two workers")
        print(f"standalone cluster up: {time.perf_counter() - started:.1f} s")
        yield url, tmp
    finally:
        _stop(processes)


@pytest.fixture(scope="module")
def results(standalone) -> dict[str, Any]:
    url, tmp = standalone
    out_dir = tmp / "job"
    out_dir.mkdir()
    log = tmp / "driver.log"
    with open(log, "wb") as out:
        proc = subprocess.run([sys.executable, str(HERE / "spark_standalone_job.py"), url,
                               str(out_dir)], stdout=out, stderr=subprocess.STDOUT,
                              timeout=JOB_TIMEOUT, env=dict(os.environ), check=False)
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, f"the driver failed:\n{text[-6000:]}"
    with open(out_dir / "results.pkl", "rb") as f:
        return dict(pickle.load(f))


def test_the_cluster_runs_executors_in_other_processes_with_the_drivers_python(results):
    import moderndid

    conf = results["conf"]
    assert conf["spark.master"].startswith("spark://127.0.0.1:")
    assert any(j.endswith(".jar") and "moderndid" in j for j in conf["spark.jars"].split(","))
    executables, files, pids = zip(*results["executors"], strict=True)
    assert set(executables) == {sys.executable}
    assert set(files) == {moderndid.__file__}
    assert os.getpid() not in pids


def _close(a: Any, b: Any, what: str) -> None:
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                               rtol=1e-10, atol=1e-10, err_msg=what, equal_nan=True)


@pytest.mark.parametrize("name", list(job.ATT_GT))
def test_att_gt_on_the_cluster_equals_memory(results, name):
    res, mem = results[name], did.att_gt(job.mpdta(), **job.ATT_GT[name])
    assert res.estimation_params["engine"] == "spark"
    for field in ("att_gt", "se_gt", "vcov_analytical", "critical_value"):
        _close(getattr(res, field), getattr(mem, field), field)
    if mem.moments.boot is not None:
        _close(res.moments.boot, mem.moments.boot, "bootstrap sums")
    for kind in ("simple", "dynamic", "group", "calendar"):
        a, b = did.aggte(res, type=kind, na_rm=True), did.aggte(mem, type=kind, na_rm=True)
        _close(a.overall_att, b.overall_att, f"{kind} overall")
        _close(a.overall_se, b.overall_se, f"{kind} overall se")


@pytest.mark.parametrize("name", list(job.DDD))
def test_ddd_on_the_cluster_equals_memory(results, name):
    file, kwargs = job.DDD[name]
    res = results[name]
    mem = did.ddd(pd.read_csv(HERE / "data" / file), *job.DDD_ARGS, **kwargs)
    assert res.estimation_params["engine"] == "spark"
    for field in ("att", "se"):
        _close(np.atleast_1d(getattr(res, field)), np.atleast_1d(getattr(mem, field)), field)


def identical(a: Any, b: Any) -> None:
    """Digit for digit: every number of the fit, the bootstrap included."""
    for field in ("att_gt", "se_gt", "vcov_analytical", "critical_value"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    np.testing.assert_array_equal(a.moments.gram, b.moments.gram, err_msg="gram")
    np.testing.assert_array_equal(a.moments.boot, b.moments.boot, err_msg="bootstrap")


@pytest.mark.parametrize("name,spec", [(name, spec) for name, spec, _, what in job.FAULTS
                                       if what != "perturb"])
def test_a_killed_worker_or_executor_gives_the_undisturbed_digits(results, name, spec):
    assert results[f"{name}:fired"], "the fault was not injected"
    identical(results[name], results[spec])


def test_the_check_fails_on_a_non_deterministic_kernel(results):
    assert results["nondeterministic-moments:fired"]
    with pytest.raises(AssertionError):
        identical(results["nondeterministic-moments"], results["dr-lpop-boot"])
