"""`att_gt` through Spark Connect: a local Connect server started by pyspark itself.

The Connect session runs in a subprocess, so its JVM (a local server with the Connect
plugin) does not clash with the classic session that the other Spark tests share. The
child process prints its results as JSON; they must equal the in-memory engine's to 1e-10.

``SparkSession.builder.remote("local[2]")`` starts a regular local Spark session with the
``SparkConnectPlugin`` in the same process and connects to it over gRPC. With
``SPARK_TESTING`` set, pyspark binds the server to an ephemeral port and the client finds
it; without it, the server would take the fixed port 15002, which another process (or a
parallel test run) may hold.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed")
if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
    pytest.skip("no Java runtime (java / JAVA_HOME) for a local Spark session",
                allow_module_level=True)

import moderndid
from moderndid import aggte, att_gt

pytestmark = [pytest.mark.spark]

TOL = 1e-10
TIMEOUT_S = 600
MAX_TASKS_PER_STAGE = 2  # local[2], mpdta: the data fill one partition, the input two
MAX_TASKS_PER_JOB = 4  # a shuffle's map and reduce stages
DDD_ARGS = ("y", "time", "id", "state", "partition")
DDD_DATA = Path(__file__).resolve().parent / "data" / "triplediff_readme_multperiods_seed1234.csv"
# name -> (data, estimator, options); each runs on Connect and in memory, next to the
# classic parity suite's specifications (test_spark.SPECS)
MPDTA = dict(yname="lemp", tname="year", idname="countyreal", gname="first.treat")
FITS = {
    "reg-notyet-boot": ("mpdta", "att_gt", dict(
        MPDTA, xformla="~ lpop", est_method="reg", control_group="notyettreated", boot=True,
        biters=99, random_state=7)),
    "dr-cluster-boot": ("mpdta", "att_gt", dict(
        MPDTA, clustervars=["countyreal", "cluster"], boot=True, biters=99, random_state=3)),
    "rc-dr-lpop-boot": ("mpdta", "att_gt", dict(
        MPDTA, panel=False, xformla="~ lpop", boot=True, biters=99, random_state=5)),
    "ddd-notyet": ("ddd", "ddd", dict(xformla="~ cov1 + cov2", control_group="notyettreated")),
    # a formula evaluated on the executors, with categorical levels gathered first
    "dr-formula": ("mpdta", "att_gt", dict(MPDTA, xformla="~ lpop * C(countyreal % 3)")),
    # the same server session without its aggregators: the Spark SQL reductions
    "jarless-dr-cluster": ("mpdta", "att_gt", dict(
        MPDTA, xformla="~ lpop", clustervars=["countyreal", "cluster"])),
}


def _frames() -> dict[str, pd.DataFrame]:
    """The inputs, as the classic parity suite builds them (plus the ddd README data)."""
    from test_spark import _gen, _mpdta, _unbalanced

    mpdta = _mpdta()
    return {"mpdta": mpdta, "unbalanced": _unbalanced(mpdta), "gen": _gen(),
            "ddd": pd.read_csv(DDD_DATA)}


def _all_fits() -> dict[str, tuple[str, str, dict]]:
    from test_spark import SPECS

    fits = dict(FITS)
    for name, (data, columns, kwargs) in SPECS.items():
        fits[f"classic-suite:{name}"] = (data, "att_gt", dict(columns, **kwargs))
    return fits


def jobs_since(sc, first):
    """(next job id, [tasks of each stage that ran, per job]) for the jobs from ``first``.

    Shared with the child process (through its source): the Connect server lives in the
    child's process, so its SparkContext's status tracker sees every job the Connect
    session runs.
    """
    try:
        sc._jsc.sc().listenerBus().waitUntilEmpty()  # the tracker lags the listener bus
    except Exception:
        import time

        time.sleep(1.0)
    tracker = sc.statusTracker()
    jobs, job = [], first
    while True:
        info = tracker.getJobInfo(job)
        if info is None:
            return job, jobs
        stages = [tracker.getStageInfo(s) for s in info.stageIds]
        jobs.append([st.numCompletedTasks for st in stages
                     if st is not None and st.numCompletedTasks])
        job += 1


CHILD = textwrap.dedent("""
    import json
    import logging
    import os
    import sys
    import warnings

    warnings.simplefilter("ignore")  # pandas 3 notices, Connect config notices
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["SPARK_TESTING"] = "1"  # ephemeral server port, found by the client

    def emit(**fields):
        print("RESULT " + json.dumps(fields), flush=True)

    JOBS_SINCE

    import pandas as pd
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    import moderndid
    import moderndid.spark
    import moderndid.spark.session as session_module
    from moderndid.spark.session import is_connect

    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logging.getLogger("moderndid").addHandler(handler)
    logging.getLogger("moderndid").setLevel(logging.INFO)

    # spark.sql.shuffle.partitions stays at Spark's default (200): no step may inherit it
    spark = (
        moderndid.spark.configure(SparkSession.builder.remote("local[2]"))
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    emit(stage="session", connect=is_connect(spark), session=type(spark).__module__)
    sc = SparkContext._active_spark_context  # the Connect server's, in this process
    with open(sys.argv[1]) as fh:
        fits = json.load(fh)
    frames = {}
    next_job, _ = jobs_since(sc, 0)
    for name, (data, estimator, options) in fits.items():
        if data not in frames:  # Parquet files written by the test
            frames[data] = spark.read.parquet(os.path.join(sys.argv[2], data + ".parquet"))
        sdf = frames[data]
        session_module._CONNECT_VERSIONS.pop(str(spark.session_id), None)
        if name.startswith("jarless"):
            session_module._CONNECT_VERSIONS[str(spark.session_id)] = None
        del messages[:]
        if estimator == "ddd":
            res = moderndid.ddd(sdf, *DDD_ARGS, **options)
            out = dict(att=res.att.tolist(), se=res.se.tolist(), engine=res.estimation_params["engine"])
            agg = moderndid.agg_ddd(res, type="eventstudy")
            out.update(agg_att=agg.att_by_event.tolist(), agg_se=agg.se_by_event.tolist())
        else:
            res = moderndid.att_gt(sdf, **options)
            out = dict(att=res.att_gt.tolist(), se=res.se_gt.tolist(),
                       engine=res.estimation_params["engine"],
                       critical_value=res.critical_value)
            simple = moderndid.aggte(res, type="simple")
            dynamic = moderndid.aggte(res, type="dynamic")
            out.update(simple=[simple.overall_att, simple.overall_se],
                       agg_att=dynamic.att_by_event.tolist(), agg_se=dynamic.se_by_event.tolist())
        next_job, jobs = jobs_since(sc, next_job)
        emit(stage=name, jobs=jobs, log=list(messages), dataframe=type(sdf).__module__, **out)
    emit(stage="done")
    spark.stop()
""").replace("DDD_ARGS", repr(DDD_ARGS)).replace("JOBS_SINCE\n", inspect.getsource(jobs_since))


def _connect_dependencies_missing() -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pyspark.sql.connect.utils import check_dependencies

            check_dependencies()
    except Exception as exc:  # PySparkImportError and friends
        return f"Spark Connect client dependencies are missing: {exc}"
    return None


def assert_tasks_follow_the_data(jobs: list[list[int]], what: str,
                                 n_partitions: int | None = None) -> None:
    """Every stage at most MAX_TASKS_PER_STAGE tasks, every job at most MAX_TASKS_PER_JOB
    (with an explicit ``n_partitions``, that many more): with 200
    (spark.sql.shuffle.partitions) a stage would have inherited the setting."""
    assert jobs, f"{what}: no Spark job was seen"
    per_stage = max(MAX_TASKS_PER_STAGE, n_partitions or 0)
    per_job = MAX_TASKS_PER_JOB + (n_partitions or 0)
    assert max(max(job, default=0) for job in jobs) <= per_stage, (what, jobs)
    assert max(sum(job) for job in jobs) <= per_job, (what, jobs)


def _in_memory(pdf: pd.DataFrame, estimator: str, options: dict) -> dict:
    if estimator == "ddd":
        res = moderndid.ddd(pdf, *DDD_ARGS, **options)
        agg = moderndid.agg_ddd(res, type="eventstudy")
        return dict(att=np.atleast_1d(res.att), se=np.atleast_1d(res.se),
                    agg_att=agg.att_by_event, agg_se=agg.se_by_event)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the classic suite checks the warnings
        res = att_gt(pdf, **options)
    simple, dynamic = aggte(res, type="simple"), aggte(res, type="dynamic")
    return dict(att=res.att_gt, se=res.se_gt, critical_value=res.critical_value,
                simple=[simple.overall_att, simple.overall_se],
                agg_att=dynamic.att_by_event, agg_se=dynamic.se_by_event)


def test_estimators_through_spark_connect(tmp_path):
    """att_gt (bootstrap, clustering, repeated cross-sections, and every specification of
    the classic parity suite), ddd, aggte and agg_ddd on one Connect session equal the
    in-memory results, with the server's JVM aggregators and without them, and no pass
    runs more tasks than the data need."""
    missing = _connect_dependencies_missing()
    if missing:
        pytest.skip(missing)
    script = tmp_path / "connect_child.py"
    script.write_text(CHILD)
    frames, fits = _frames(), _all_fits()
    for data, pdf in frames.items():
        pdf.to_parquet(tmp_path / f"{data}.parquet")
    (tmp_path / "fits.json").write_text(json.dumps(fits))
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable)
    env.pop("SPARK_REMOTE", None)
    env.pop("SPARK_CONNECT_MODE_ENABLED", None)
    try:
        proc = subprocess.run([sys.executable, str(script), str(tmp_path / "fits.json"),
                               str(tmp_path)],
                              capture_output=True, text=True, timeout=TIMEOUT_S, env=env,
                              cwd=tmp_path)
        stdout, stderr, code = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        code = None
    results = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            payload = json.loads(line[len("RESULT "):])
            results[payload["stage"]] = payload
    tail = stderr[-3000:]
    if "session" not in results:
        pytest.skip(f"the local Spark Connect server did not start (exit code {code}): {tail}")
    assert "done" in results, (f"a fit on Spark Connect failed (exit code {code}; done: "
                               f"{sorted(results)}):\n{tail}")
    session = results["session"]
    assert session["connect"] is True
    assert session["session"].startswith("pyspark.sql.connect")

    def close(actual, expected, what):
        np.testing.assert_allclose(np.asarray(actual, dtype=float),
                                   np.asarray(expected, dtype=float), rtol=TOL, atol=TOL,
                                   err_msg=what)

    for name, (data, estimator, options) in fits.items():
        out = results[name]
        assert out["dataframe"].startswith("pyspark.sql.connect")
        assert out["engine"] == "spark"
        mem = _in_memory(frames[data], estimator, options)
        for key, expected in mem.items():
            close(out[key], expected, f"{name}: {key}")
        assert_tasks_follow_the_data(out["jobs"], name, options.get("n_partitions"))
        scala = [m for m in out["log"] if "Scala aggregators" in m]
        sql = [m for m in out["log"] if "reduced with Spark SQL" in m]
        if name.startswith("jarless"):
            assert sql and not scala, out["log"]
        else:
            assert scala and not sql, out["log"]


def _next_job_id(sc) -> int:
    """The id the next job of the shared session gets. Counting from job 0 stops at the
    first id the status tracker has forgotten (it keeps spark.ui.retainedJobs, 1000, and
    the whole suite runs more jobs than that), so start from the newest it holds."""
    jobs_since(sc, 0)  # waits for the listener bus
    tracker = sc.statusTracker()
    ids = list(tracker.getJobIdsForGroup(None))
    job = max(ids) + 1 if ids else 0
    while tracker.getJobInfo(job) is not None:  # jobs of a group are not listed above
        job += 1
    return job


def test_classic_passes_follow_the_data(spark):
    """The same bound on a classic session whose spark.sql.shuffle.partitions is 200:
    clustering (a grouped reduction), the Spark SQL reductions and the bootstrap."""
    from pyspark.sql import functions as F

    from moderndid.spark import spark_att_gt

    pdf = moderndid.load_mpdta()
    pdf["cluster"] = pdf["countyreal"] // 1000
    sdf = spark.createDataFrame(pdf).withColumn("lemp", F.col("lemp") + 0.0)
    sc = spark.sparkContext
    previous = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "200")
    try:
        for options in (dict(clustervars=["countyreal", "cluster"], xformla="~ lpop"),
                        dict(boot=True, biters=49, random_state=2),
                        dict(panel=False, xformla="~ lpop")):
            first = _next_job_id(sc)
            spark_att_gt(sdf, "lemp", "year", "countyreal", "first.treat", spark=spark,
                         **options)
            _, jobs = jobs_since(sc, first)
            assert_tasks_follow_the_data(jobs, str(options))
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", previous)


@pytest.mark.parametrize(("value", "expected"), [
    ("8", 8), (" 16 ", 16), ("0", None), ("auto", None), ("-3", None), ("", None),
    (None, None), ("local", 1), ("local[2]", 2), ("local[4, 3]", 4), ("yarn", None),
    ("spark://host:7077", None), ("local[0]", None),
])
def test_parallelism_settings_are_parsed_robustly(value, expected):
    from moderndid.spark.session import parse_parallelism

    assert parse_parallelism(value) == expected


def test_connect_parallelism_falls_through_unreadable_and_auto_settings():
    """A Connect session that reports "auto", refuses a key or says nothing gets the next
    source, else DEFAULT_PARALLELISM; never spark.sql.shuffle.partitions."""
    from moderndid.spark import session as module

    def fake(settings: dict):
        def get(key, default=None):
            value = settings.get(key, default)
            if isinstance(value, Exception):
                raise value
            return value

        cls = type("SparkSession", (), {"__module__": "pyspark.sql.connect.session"})
        spark = cls()
        spark.session_id = str(uuid.uuid4())  # parallelism is cached per session id
        spark.conf = type("Conf", (), {"get": staticmethod(get)})()
        return spark

    shuffle = {"spark.sql.shuffle.partitions": "200"}
    assert module.session_parallelism(fake({**shuffle, "spark.default.parallelism": "auto",
                                            "spark.master": "local[3]"})) == 3
    assert module.session_parallelism(fake({**shuffle,
                                            "spark.default.parallelism": PermissionError(),
                                            "spark.master": "local[*]"})) >= 1
    assert module.session_parallelism(fake(shuffle)) == module.DEFAULT_PARALLELISM
    assert module.session_parallelism(fake({"spark.default.parallelism": "12"})) == 12


@pytest.mark.parametrize(("rows", "parallelism", "expected"), [
    (2_500, 2, 1), (120_000, 2, 2), (120_000, 8, 3), (2_000_000, 2, 2),
    (2_000_000, 200, 40), (20_000_000, 2, 10), (0, 4, 1),
])
def test_partitions_follow_the_rows(rows, parallelism, expected):
    from moderndid.engine.panel_plan import ROWS_PER_TASK, partition_count

    assert partition_count(None, lambda: rows, parallelism,
                           rows_per_task=ROWS_PER_TASK) == expected
    assert partition_count(5, lambda: 1 / 0, parallelism, rows_per_task=ROWS_PER_TASK) == 5


def test_connect_server_without_the_jar_falls_back_once_per_session(caplog):
    """A server without the extension answers the version probe with an unresolved
    routine: the Spark SQL reductions run, the log says so, and the probe is not repeated
    for the same session."""
    from moderndid.spark import session as module

    calls = []

    class Server:
        session_id = str(uuid.uuid4())

        def sql(self, text):
            calls.append(text)
            raise RuntimeError("[UNRESOLVED_ROUTINE] Cannot resolve routine "
                               "`moderndid_version` on search path")

    Server.__module__ = "pyspark.sql.connect.session"
    spark = Server()
    with caplog.at_level("INFO", logger="moderndid"):
        assert module.register_aggregators(spark) is False
        assert module.register_aggregators(spark) is False
    assert len(calls) == 1
    assert any("reduced with Spark SQL" in r.getMessage() for r in caplog.records)
