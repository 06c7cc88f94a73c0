"""Spark SQL: the table functions against the Python API (1e-10), their laziness, their
errors, the per-key function, and the SQL examples of ``sql/``.

Shares the session-scoped ``spark`` fixture of ``conftest.py``; one test starts its own
session in a subprocess (a static setting, ``spark.sql.extensions``, needs a new JVM).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed")

import moderndid as did
import moderndid.spark.sql as sql_module
from moderndid.errors import UnsupportedInputError
from moderndid.spark import register, register_by

pytestmark = [pytest.mark.spark,
              pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")]

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
MPDTA = dict(yname="lemp", tname="year", idname="countyreal", gname="first.treat")
CALL = "yname => 'lemp', tname => 'year', idname => 'countyreal', gname => 'first.treat'"
TOL = 1e-10


@pytest.fixture(scope="module")
def session(spark):
    from moderndid.spark.session import jar_path

    if jar_path() is None:
        pytest.skip("the moderndid jar is not built (python scripts/build_jar.py)")
    register(spark)
    register_by(spark)
    mp = did.load_mpdta()
    spark.createDataFrame(mp).createOrReplaceTempView("mpdta")
    regions = mp.assign(region=np.where(mp["countyreal"] % 3 == 0, "north", "south"))
    spark.createDataFrame(regions).createOrReplaceTempView("mpdta_regions")
    counties = pd.DataFrame({"cohort": [2004.0, 2006.0, 2007.0],
                             "label": ["early", "middle", "late"]})
    spark.createDataFrame(counties).createOrReplaceTempView("cohort_labels")
    ddd_pdf = pd.read_csv(DATA / "triplediff_readme_multperiods_seed1234.csv")
    spark.createDataFrame(ddd_pdf).createOrReplaceTempView("ddd_panel")
    return spark


@pytest.fixture
def runs(monkeypatch):
    """How many estimations the SQL functions ran (the bridge's run_call)."""
    calls: list[str] = []
    original = sql_module.run_call

    def counting(function, data, arguments):
        calls.append(function.name)
        return original(function, data, arguments)

    monkeypatch.setattr(sql_module, "run_call", counting)
    return calls


def _rows(session, query: str) -> pd.DataFrame:
    return session.sql(query).toPandas()


def _close(actual, expected) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float),
                               rtol=TOL, atol=TOL)


def test_att_gt_by_name_equals_the_python_api(session):
    out = _rows(session, f"SELECT * FROM moderndid_att_gt(TABLE(mpdta), {CALL}, "
                         "xformla => '~ lpop', control_group => 'notyettreated', boot => true, "
                         "biters => 199, random_state => 5, clustervars => 'countyreal')")
    res = did.att_gt(did.load_mpdta(), **MPDTA, xformla="~ lpop",
                     control_group="notyettreated", boot=True, biters=199, random_state=5,
                     clustervars="countyreal")
    _close(out["group"], res.groups)
    _close(out["time"], res.times)
    _close(out["att"], res.att_gt)
    _close(out["se"], res.se_gt)
    _close(out["critical_value"], np.full(len(out), res.critical_value))
    assert set(out["inference"]) == {"bootstrap, uniform band"}
    assert set(out["est_method"]) == {"dr"} and set(out["control_group"]) == {"notyettreated"}
    assert list(out["post"]) == [bool(t >= g) for g, t in zip(res.groups, res.times,
                                                               strict=True)]


def test_formula_language_as_in_python(session):
    formula = "~ I(lpop ** 2) + C(countyreal % 3)"
    out = _rows(session, f"SELECT * FROM moderndid_att_gt(TABLE(mpdta), {CALL}, "
                         f"xformla => '{formula}')")
    res = did.att_gt(did.load_mpdta(), **MPDTA, xformla=formula)
    _close(out["att"], res.att_gt)
    _close(out["se"], res.se_gt)


def test_positional_arguments_and_table_subquery(session):
    out = _rows(session, "SELECT * FROM moderndid_att_gt(TABLE(SELECT * FROM mpdta WHERE "
                         "countyreal < 40000), 'lemp', 'year', 'countyreal', 'first.treat', "
                         "'~ lpop', NULL, 0.1)")
    mp = did.load_mpdta()
    res = did.att_gt(mp[mp["countyreal"] < 40000], **MPDTA, xformla="~ lpop", alpha=0.1)
    _close(out["att"], res.att_gt)
    _close(out["ci_lower"], res.att_gt - res.critical_value * res.se_gt)


@pytest.mark.parametrize("kind", ["dynamic", "group", "calendar", "simple"])
def test_aggte_in_one_call(session, kind):
    out = _rows(session, f"SELECT * FROM moderndid_aggte(TABLE(mpdta), {CALL}, "
                         f"type => '{kind}', est_method => 'reg')")
    agg = did.aggte(did.att_gt(did.load_mpdta(), **MPDTA, est_method="reg"), type=kind)
    overall = out[out["level"] == "overall"].iloc[0]
    assert overall["att"] == pytest.approx(agg.overall_att, abs=TOL)
    assert overall["se"] == pytest.approx(agg.overall_se, abs=TOL)
    rows = out[out["level"] != "overall"]
    if kind == "simple":
        assert rows.empty
    else:
        table = agg.to_arrow()
        _close(rows["value"], table.column(rows["level"].iloc[0]).to_numpy())
        _close(rows["att"], table.column("att").to_numpy())
        _close(rows["se"], table.column("se").to_numpy())
    assert set(out["aggregation"]) == {kind}


def test_ddd_and_agg_ddd(session):
    args = ("yname => 'y', tname => 'time', idname => 'id', gname => 'state', "
            "pname => 'partition', control_group => 'notyettreated'")
    out = _rows(session, f"SELECT * FROM moderndid_ddd(TABLE(ddd_panel), {args})")
    pdf = pd.read_csv(DATA / "triplediff_readme_multperiods_seed1234.csv")
    res = did.ddd(pdf, "y", "time", "id", "state", "partition", control_group="notyettreated")
    _close(out["att"], res.att)
    _close(out["se"], res.se)
    agg_out = _rows(session, f"SELECT * FROM moderndid_agg_ddd(TABLE(ddd_panel), {args}, "
                             "type => 'eventstudy')")
    agg = did.agg_ddd(res, type="eventstudy")
    assert agg_out.loc[agg_out["level"] == "overall", "att"].iloc[0] == pytest.approx(
        agg.overall_att, abs=TOL)
    _close(agg_out.loc[agg_out["level"] == "event_time", "att"], agg.att_by_event)


def test_lazy_explain_join_and_a_view_queried_twice(session, runs):
    query = f"SELECT * FROM moderndid_att_gt(TABLE(mpdta), {CALL})"
    tracker = session.sparkContext.statusTracker()
    jobs = len(tracker.getJobIdsForGroup(None))
    plan = session.sql("EXPLAIN " + query).collect()[0][0]
    assert "ModerndidTableFunction moderndid_att_gt" in plan
    assert runs == [] and len(tracker.getJobIdsForGroup(None)) == jobs  # EXPLAIN ran nothing
    view = session.sql(query)
    view.createOrReplaceTempView("att_gt_result")
    assert runs == []  # analysis ran nothing either
    joined = _rows(session, "SELECT r.`group`, l.label, r.att FROM att_gt_result r "
                            "JOIN cohort_labels l ON r.`group` = l.cohort")
    assert set(joined["label"]) == {"early", "middle", "late"}
    assert len(runs) == 1
    twice = _rows(session, "SELECT a.att - b.att AS d FROM att_gt_result a JOIN att_gt_result b "
                           "ON a.`group` = b.`group` AND a.time = b.time")
    assert len(twice) == 12 and np.all(twice["d"] == 0)
    assert len(runs) <= 3  # once per execution of the view (a self-join may run it twice)


def test_bad_calls_name_the_problem(session):
    from pyspark.errors import AnalysisException, IllegalArgumentException

    cases = [
        (f"moderndid_att_gt(TABLE(mpdta), {CALL}, estmethod => 'dr')",
         "unknown argument 'estmethod'"),
        (f"moderndid_att_gt(TABLE(mpdta), {CALL}, alpha => rand())",
         "argument 'alpha' must be a constant"),
        ("moderndid_att_gt(TABLE(mpdta), yname => 'lempx', tname => 'year', "
         "idname => 'countyreal', gname => 'first.treat')",
         # the Python API's class and message (the planner's check_columns)
         "ColumnNotFoundError: outcome (yname) column 'lempx' is not in the data. "
         "Did you mean 'lemp'?"),
        (f"moderndid_att_gt(TABLE(mpdta), {CALL}, est_method => 'foo')",
         "est_method must be 'dr', 'ipw' or 'reg', got 'foo'"),
        (f"moderndid_aggte(TABLE(mpdta), {CALL}, type => 'weekly')", "type must be one of"),
        ("moderndid_att_gt(yname => 'lemp')", "the first argument must be TABLE"),
        ("moderndid_att_gt(TABLE(mpdta), yname => 'lemp')", "missing argument(s): tname"),
        (f"moderndid_att_gt_by(TABLE(mpdta_regions), {CALL})",
         "moderndid_att_gt_by needs the key columns: write moderndid_att_gt_by(TABLE(panel), "
         "by => 'region'"),
    ]
    for call, message in cases:
        with pytest.raises((AnalysisException, IllegalArgumentException)) as caught:
            session.sql(f"SELECT * FROM {call}").collect()
        assert message in str(caught.value), (call, str(caught.value)[:400])
    # errors found while estimating (execution) come back as the estimator's message
    with pytest.raises(IllegalArgumentException, match="DataStructureError: group column 'lpop'"):
        session.sql("SELECT * FROM moderndid_att_gt(TABLE(mpdta), yname => 'lemp', "
                    "tname => 'year', idname => 'countyreal', gname => 'lpop')").collect()


def test_new_sessions_know_the_functions(session):
    """Sessions made with moderndid.spark.configure carry moderndid.Extensions, so their
    newSession() knows the functions and, with this driver registered, runs them. (A
    session before any register: the extensions test below.)"""
    fresh = session.newSession()
    fresh.createDataFrame(did.load_mpdta()).createOrReplaceTempView("mpdta")
    assert len(fresh.sql(f"SELECT * FROM moderndid_att_gt(TABLE(mpdta), {CALL})").collect()) == 12


def test_connect_sessions_are_told_to_use_the_per_key_function():
    connect = type("SparkSession", (), {"__module__": "pyspark.sql.connect.session"})()
    with pytest.raises(UnsupportedInputError, match="moderndid_att_gt_by"):
        register(connect)


def test_describe_and_show_functions(session):
    described = "\n".join(r[0] for r in session.sql(
        "DESCRIBE FUNCTION EXTENDED moderndid_aggte").collect())
    assert "type => 'dynamic'" in described and "TABLE(name) or TABLE(query)" in described
    shown = {r[0] for r in session.sql("SHOW USER FUNCTIONS LIKE 'moderndid*'").collect()}
    assert {"moderndid_att_gt", "moderndid_aggte", "moderndid_ddd",
            "moderndid_agg_ddd"} <= {name.split(".")[-1] for name in shown}


def test_registering_again_warns_nothing(session, capfd):
    register(session)
    register(session)
    did.att_gt(session.table("mpdta"), **MPDTA)
    assert "replaced a previously registered function" not in capfd.readouterr().err


def test_per_key_function_equals_per_key_python_fits(session):
    out = _rows(session, f"SELECT * FROM moderndid_att_gt_by(TABLE(mpdta_regions), "
                         f"by => 'region', {CALL}, xformla => '~ lpop') ORDER BY region, "
                         "`group`, time")
    mp = did.load_mpdta()
    for region, mask in (("north", mp["countyreal"] % 3 == 0), ("south", mp["countyreal"] % 3 != 0)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = did.att_gt(mp[mask], **MPDTA, xformla="~ lpop")
        part = out[out["region"] == region]
        _close(part["att"], res.att_gt)
        _close(part["se"], res.se_gt)
    assert list(out.columns[:2]) == ["region", "group"]
    dynamic = _rows(session, f"SELECT * FROM moderndid_att_gt_by(TABLE(mpdta_regions), "
                             f"by => 'region', {CALL}, type => 'dynamic')")
    assert set(dynamic["level"]) == {"overall", "event_time"}


def test_extensions_session_knows_the_functions_and_asks_for_register(tmp_path):
    """A session created with the extensions setting (and its newSession()) lists the
    functions; calling one before register names the fix; after register it runs."""
    from moderndid.spark.session import jar_path

    jar = jar_path()
    if jar is None:
        pytest.skip("the moderndid jar is not built")
    script = textwrap.dedent(f"""
        import json, os, sys, warnings
        warnings.simplefilter("ignore")
        os.environ["PYSPARK_PYTHON"] = sys.executable
        from pyspark.sql import SparkSession
        import moderndid, moderndid.spark
        spark = (moderndid.spark.configure(SparkSession.builder.master("local[1]"))
                 .config("spark.sql.extensions", "moderndid.Extensions")
                 .config("spark.ui.enabled", "false").getOrCreate())
        spark.sparkContext.setLogLevel("OFF")
        other = spark.newSession()
        names = [r[0] for r in other.sql("SHOW FUNCTIONS LIKE 'moderndid*'").collect()]
        other.createDataFrame(moderndid.load_mpdta()).createOrReplaceTempView("mpdta")
        query = "SELECT * FROM moderndid_att_gt(TABLE(mpdta), {CALL})"
        try:
            other.sql(query).collect()
            before = ""
        except Exception as exc:
            before = str(exc)
        moderndid.spark.register(spark)
        rows = other.sql(query).collect()
        print(json.dumps({{"names": names, "before": before, "rows": len(rows)}}))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "python")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert any(name.endswith("moderndid_att_gt") for name in result["names"])
    assert "call moderndid.spark.register(spark)" in result["before"]
    assert result["rows"] == 12


def test_dataframe_transforms_and_to_spark(session, tmp_path):
    from moderndid.spark import (
        agg_ddd_transform,
        aggte_transform,
        att_gt_transform,
        ddd_transform,
    )

    panel = session.table("mpdta")
    mem = did.att_gt(did.load_mpdta(), **MPDTA, xformla="~ lpop")
    rows = panel.transform(att_gt_transform(*MPDTA.values(), xformla="~ lpop")).toPandas()
    _close(rows["att"], mem.att_gt)
    dynamic = panel.transform(aggte_transform(*MPDTA.values(), type="dynamic",
                                              xformla="~ lpop")).toPandas()
    _close(dynamic["att"], did.aggte(mem, type="dynamic").att_by_event)
    pdf = pd.read_csv(DATA / "triplediff_readme_multperiods_seed1234.csv")
    args = ("y", "time", "id", "state", "partition")
    res = did.ddd(pdf, *args)
    ddd_rows = session.table("ddd_panel").transform(ddd_transform(*args)).toPandas()
    _close(ddd_rows["att"], res.att)
    agg_rows = session.table("ddd_panel").transform(agg_ddd_transform(*args)).toPandas()
    _close(agg_rows["att"], did.agg_ddd(res).att_by_event)
    # every result class converts to a Spark DataFrame that can be saved as a table
    for result in (mem, did.aggte(mem, type="group"), res, did.agg_ddd(res)):
        frame = result.to_spark(session)
        assert frame.toPandas().equals(result.to_df())
    mem.to_spark(session).write.mode("overwrite").parquet(str(tmp_path / "att_gt"))
    assert session.read.parquet(str(tmp_path / "att_gt")).count() == len(mem.att_gt)


@pytest.mark.parametrize("path", sorted((ROOT / "sql").glob("*.sql")), ids=lambda p: p.name)
def test_sql_examples_run(session, path):
    """Every example of sql/ runs as written; its last query returns rows."""
    statements = [s.strip() for s in _without_comments(path.read_text()).split(";")
                  if s.strip()]
    assert statements
    # a table left by an interrupted earlier run would make CREATE TABLE refuse the location
    warehouse = session.conf.get("spark.sql.warehouse.dir").removeprefix("file:")
    shutil.rmtree(pathlib.Path(warehouse) / "moderndid_example_att_gt", ignore_errors=True)
    for statement in statements[:-1]:
        session.sql(statement).collect()
    rows = session.sql(statements[-1]).collect() if not statements[-1].upper().startswith(
        "DROP") else None
    if rows is not None:
        assert rows
    if path.name == "01_att_gt.sql":
        res = did.att_gt(did.load_mpdta(), **MPDTA, xformla="~ lpop")
        _close([r["att"] for r in rows], res.att_gt)


def _without_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
