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

import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings

import numpy as np
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
OPTIONS = dict(xformla="~ lpop", est_method="reg", control_group="notyettreated", boot=True,
               biters=99, random_state=7)

CHILD = textwrap.dedent("""
    import json
    import os
    import sys
    import warnings

    warnings.simplefilter("ignore")  # pandas 3 notices, Connect config notices
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["SPARK_TESTING"] = "1"  # ephemeral server port, found by the client

    def emit(**fields):
        print("RESULT " + json.dumps(fields), flush=True)

    from pyspark.sql import SparkSession

    import moderndid
    import moderndid.spark
    from moderndid.spark.session import is_connect

    spark = (
        moderndid.spark.configure(SparkSession.builder.remote("local[2]"))
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    emit(stage="session", connect=is_connect(spark), session=type(spark).__module__)
    pdf = moderndid.load_mpdta()
    sdf = spark.createDataFrame(pdf)
    options = json.loads(sys.argv[1])
    res = moderndid.att_gt(sdf, "lemp", "year", "countyreal", "first.treat", **options)
    simple = moderndid.aggte(res, type="simple")
    dynamic = moderndid.aggte(res, type="dynamic")
    emit(
        stage="done",
        dataframe=type(sdf).__module__,
        engine=res.estimation_params["engine"],
        groups=res.groups.tolist(),
        times=res.times.tolist(),
        att=res.att_gt.tolist(),
        se=res.se_gt.tolist(),
        critical_value=res.critical_value,
        simple=[simple.overall_att, simple.overall_se],
        dynamic_att=dynamic.att_by_event.tolist(),
        dynamic_se=dynamic.se_by_event.tolist(),
    )
    spark.stop()
""")


def _connect_dependencies_missing() -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pyspark.sql.connect.utils import check_dependencies

            check_dependencies()
    except Exception as exc:  # PySparkImportError and friends
        return f"Spark Connect client dependencies are missing: {exc}"
    return None


def test_att_gt_through_spark_connect(tmp_path):
    missing = _connect_dependencies_missing()
    if missing:
        pytest.skip(missing)
    script = tmp_path / "connect_child.py"
    script.write_text(CHILD)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable)
    env.pop("SPARK_REMOTE", None)
    env.pop("SPARK_CONNECT_MODE_ENABLED", None)
    try:
        proc = subprocess.run([sys.executable, str(script), json.dumps(OPTIONS)],
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
    assert "done" in results, f"att_gt on Spark Connect failed (exit code {code}):\n{tail}"
    session, out = results["session"], results["done"]
    assert session["connect"] is True
    assert session["session"].startswith("pyspark.sql.connect")
    assert out["dataframe"].startswith("pyspark.sql.connect")
    assert out["engine"] == "spark"

    mem = att_gt(moderndid.load_mpdta(), "lemp", "year", "countyreal", "first.treat", **OPTIONS)
    np.testing.assert_array_equal(out["groups"], mem.groups)
    np.testing.assert_array_equal(out["times"], mem.times)

    def close(actual, expected, what):
        np.testing.assert_allclose(np.asarray(actual, dtype=float), expected, rtol=TOL,
                                   atol=TOL, err_msg=what)

    close(out["att"], mem.att_gt, "att_gt")
    close(out["se"], mem.se_gt, "se_gt (bootstrap)")
    close(out["critical_value"], mem.critical_value, "critical_value")
    simple = aggte(mem, type="simple")
    dynamic = aggte(mem, type="dynamic")
    close(out["simple"], [simple.overall_att, simple.overall_se], "simple aggte")
    close(out["dynamic_att"], dynamic.att_by_event, "dynamic att")
    close(out["dynamic_se"], dynamic.se_by_event, "dynamic se")
