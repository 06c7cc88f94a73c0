"""The Spark engine against the in-memory engine: same numbers (1e-10) for every option.

Every test here shares the session-scoped ``spark`` fixture of ``conftest.py`` (one local
JVM for the whole run). Each Spark ``att_gt`` takes one to a few seconds on two cores, so
the specifications below combine options: together they cover every estimator, control
group, base period, anticipation, weights, clustering (analytic and bootstrap), the
bootstrap, balanced / unbalanced panels, repeated cross sections and covariates (time
invariant and time varying), with about fifteen Spark fits.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import shutil
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed")
if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
    pytest.skip("no Java runtime (java / JAVA_HOME) for a local Spark session",
                allow_module_level=True)

import moderndid
from moderndid import MPResult, aggte, att_gt
from moderndid.engine.executor import BootstrapRequest
from moderndid.errors import (
    ColumnNotFoundError,
    ColumnTypeError,
    DataStructureError,
    InvalidOptionError,
    MissingValuesError,
)

pytestmark = [
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]

TOL = 1e-10
AGG_TYPES = ("simple", "dynamic", "group", "calendar")
MPDTA = dict(yname="lemp", tname="year", idname="countyreal", gname="first.treat")
GEN = dict(yname="y", tname="time", idname="id", gname="group")


# --------------------------------------------------------------------------- data


def _mpdta() -> pd.DataFrame:
    """mpdta plus a weight and a state cluster (both constant within county) and a
    time-varying covariate."""
    pdf = moderndid.load_mpdta()
    pdf["w"] = 1.0 + (pdf["countyreal"] % 4) * 0.5
    pdf["cluster"] = pdf["countyreal"] // 1000  # state FIPS code: 29 clusters
    rng = np.random.default_rng(20)
    pdf["xtv"] = rng.normal(size=len(pdf))
    return pdf


def _unbalanced(pdf: pd.DataFrame) -> pd.DataFrame:
    """mpdta without 150 random (county, year) rows."""
    rng = np.random.default_rng(5)
    drop = rng.choice(len(pdf), size=150, replace=False)
    return pdf.drop(index=pdf.index[drop]).reset_index(drop=True)


def _gen() -> pd.DataFrame:
    """Generated panel with string copies of the unit id and the cluster."""
    pdf = moderndid.gen_did_scalable(n=400, n_periods=5, n_cohorts=2, n_covariates=4,
                                     random_state=3)["data"]
    pdf["sid"] = "unit-" + pdf["id"].astype(str)
    pdf["scluster"] = "c" + pdf["cluster"].astype(str)
    return pdf


@pytest.fixture(scope="module")
def frames(spark) -> dict[str, tuple[pd.DataFrame, Any]]:
    """name -> (pandas frame, the same data as a Spark DataFrame)."""
    mpdta = _mpdta()
    out = {}
    for name, pdf in (("mpdta", mpdta), ("unbalanced", _unbalanced(mpdta)), ("gen", _gen())):
        out[name] = (pdf, spark.createDataFrame(pdf))
    return out


# --------------------------------------------------------------------------- helpers


def close(actual: Any, expected: Any, what: str) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64),
                               np.asarray(expected, dtype=np.float64),
                               rtol=TOL, atol=TOL, err_msg=what)


def assert_same(spark_res: MPResult, mem_res: MPResult) -> None:
    """Spark and in-memory results agree: cells, inference and every aggregation."""
    assert isinstance(spark_res, MPResult)
    assert spark_res.estimation_params["engine"] == "spark"
    assert mem_res.estimation_params["engine"] == "in-memory"
    np.testing.assert_array_equal(spark_res.groups, mem_res.groups)
    np.testing.assert_array_equal(spark_res.times, mem_res.times)
    assert np.isfinite(spark_res.att_gt).any()
    close(spark_res.att_gt, mem_res.att_gt, "att_gt")
    close(spark_res.se_gt, mem_res.se_gt, "se_gt")
    close(spark_res.vcov_analytical, mem_res.vcov_analytical, "vcov_analytical")
    close(spark_res.critical_value, mem_res.critical_value, "critical_value")
    if mem_res.estimation_params["boot"]:  # a bootstrap sup-t band, not the normal quantile
        assert spark_res.estimation_params["cband"] is True
        assert abs(spark_res.critical_value - 1.959963984540054) > 1e-3
    for name in ("wald_stat", "wald_pvalue"):
        a, b = getattr(spark_res, name), getattr(mem_res, name)
        assert (a is None) == (b is None), name
        if a is not None:
            close(a, b, name)
    assert spark_res.n_units == mem_res.n_units
    close(spark_res.moments.gram, mem_res.moments.gram, "moments.gram")
    if mem_res.moments.boot is not None:
        close(spark_res.moments.boot, mem_res.moments.boot, "moments.boot")
    skip = {"engine"}
    sp = {k: v for k, v in spark_res.estimation_params.items() if k not in skip}
    mp = {k: v for k, v in mem_res.estimation_params.items() if k not in skip}
    assert sp == mp

    na_rm = not np.isfinite(mem_res.att_gt).all()
    for kind in AGG_TYPES:
        a = aggte(spark_res, type=kind, na_rm=na_rm, random_state=0)
        b = aggte(mem_res, type=kind, na_rm=na_rm, random_state=0)
        assert math.isfinite(b.overall_att)
        close(a.overall_att, b.overall_att, f"{kind} overall_att")
        close(a.overall_se, b.overall_se, f"{kind} overall_se")
        if kind == "simple":
            continue
        np.testing.assert_array_equal(a.event_times, b.event_times)
        close(a.att_by_event, b.att_by_event, f"{kind} att_by_event")
        close(a.se_by_event, b.se_by_event, f"{kind} se_by_event")
        close(a.critical_values, b.critical_values, f"{kind} critical_values")


def fit_both_warnings(frames: dict, data: str, columns: dict, **kwargs: Any
                      ) -> tuple[MPResult, MPResult, list[str]]:
    """Fit on Spark and in memory; both engines must warn alike (same messages), which
    are returned."""
    pdf, sdf = frames[data]
    kwargs.setdefault("random_state", 1)  # seeds nothing without bootstrap
    results, messages = [], []
    for frame in (sdf, pdf):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results.append(att_gt(frame, **columns, **kwargs))
        messages.append(sorted(str(w.message) for w in caught
                               if issubclass(w.category, UserWarning)))
        # every warning points at the caller's line, not at moderndid's internals
        misplaced = [(w.filename, str(w.message)) for w in caught
                     if issubclass(w.category, UserWarning) and w.filename != __file__]
        assert misplaced == []
    assert messages[0] == messages[1], "the engines warn differently"
    return results[0], results[1], messages[1]


def fit_both(frames: dict, data: str, columns: dict, **kwargs: Any
             ) -> tuple[MPResult, MPResult]:
    spark_res, mem_res, _ = fit_both_warnings(frames, data, columns, **kwargs)
    return spark_res, mem_res


# --------------------------------------------------------------------------- parity

CLUSTERS = ["countyreal", "cluster"]
SPECS = {
    # est_method x control group x base period x anticipation x weights x clustering,
    # each option in at least one specification.
    "dr-never-lpop": ("mpdta", MPDTA, dict(xformla="~ lpop")),
    "ipw-notyet-anticipation-lpop": (
        "mpdta", MPDTA,
        dict(est_method="ipw", control_group="notyettreated", anticipation=1, xformla="~ lpop")),
    "reg-universal-weights-cluster": (
        "mpdta", MPDTA,
        dict(est_method="reg", base_period="universal", weightsname="w", clustervars=CLUSTERS,
             xformla="~ lpop", n_partitions=3)),
    "dr-boot-weights-notyet": (
        "mpdta", MPDTA,
        dict(boot=True, biters=299, random_state=11, weightsname="w",
             control_group="notyettreated")),
    "dr-boot-cluster-universal": (
        "mpdta", MPDTA,
        dict(boot=True, biters=299, random_state=12, clustervars=CLUSTERS,
             base_period="universal")),
    "dr-timevarying-covariate": ("mpdta", MPDTA, dict(xformla="~ lpop + xtv")),
    "rc-dr-boot-lpop": (
        "mpdta", MPDTA,
        dict(panel=False, xformla="~ lpop", boot=True, biters=199, random_state=5)),
    "rc-reg-weights-cluster-notyet": (
        "mpdta", MPDTA,
        dict(panel=False, est_method="reg", weightsname="w", clustervars=CLUSTERS,
             control_group="notyettreated")),
    "gen-dr-covariates": ("gen", GEN, dict(xformla="~ cov1 + cov2")),
    "rc-ipw-no-idname": (
        "mpdta", dict(MPDTA, idname=None), dict(panel=False, est_method="ipw")),
    # String unit ids and clusters: the bootstrap multipliers are keyed by their hashes.
    "gen-reg-notyet-string-ids-cluster-boot": (
        "gen", dict(GEN, idname="sid"),
        dict(xformla="~ cov1 + cov2", est_method="reg", control_group="notyettreated",
             clustervars=["sid", "scluster"], boot=True, biters=199, random_state=4)),
}


@pytest.mark.parametrize("name", list(SPECS))
def test_parity(frames, name):
    data, columns, kwargs = SPECS[name]
    assert_same(*fit_both(frames, data, columns, **kwargs))


@pytest.mark.parametrize("kwargs", [
    dict(allow_unbalanced_panel=True, xformla="~ lpop"),
    dict(allow_unbalanced_panel=True, est_method="ipw", clustervars=CLUSTERS, boot=True,
         biters=199, random_state=8, control_group="notyettreated"),
], ids=["dr-lpop", "ipw-cluster-boot-notyet"])
def test_parity_unbalanced_panel(frames, kwargs):
    spark_res, mem_res = fit_both(frames, "unbalanced", MPDTA, **kwargs)
    assert spark_res.estimation_params["data_kind"] == "unbalanced"
    assert_same(spark_res, mem_res)


def test_unbalanced_panel_is_balanced_with_a_warning(frames):
    spark_res, mem_res, messages = fit_both_warnings(frames, "unbalanced", MPDTA,
                                                     est_method="reg")
    assert any(re.match(r"Dropped \d+ of 500 units not observed in all 5 periods", m)
               for m in messages)
    assert spark_res.estimation_params["data_kind"] == "panel"
    assert spark_res.n_units < 500
    assert_same(spark_res, mem_res)


@pytest.mark.parametrize("control_group", ["nevertreated", "notyettreated"])
def test_no_never_treated_units(frames, control_group):
    """Without never-treated units the last cohort is the comparison group (R `did`)."""
    pdf, sdf = frames["mpdta"]
    treated = {"mpdta": (pdf[pdf["first.treat"] > 0], sdf.filter("`first.treat` > 0"))}
    spark_res, mem_res, messages = fit_both_warnings(treated, "mpdta", MPDTA,
                                                     control_group=control_group)
    assert any(m.startswith("No never-treated units: cohort 2007") for m in messages)
    if control_group == "notyettreated":  # cohort 2006 has no comparison after 2005
        assert any("set to NA for 4 cell(s)" in m for m in messages)
    assert spark_res.times.max() == 2006
    assert_same(spark_res, mem_res)


def test_unbalanced_panel_group_sizes_are_units(spark, frames):
    """The small-group check counts units (not units / periods) for unbalanced panels, as
    in memory: no 'Small groups' warning for mpdta's 20-unit 2004 cohort (prepare only)."""
    from moderndid.did import plan as PLANNER
    from moderndid.did.preprocess import DidSpec, prepare_did
    from moderndid.spark.prepare import prepare_spark

    pdf, sdf = frames["unbalanced"]
    spec = DidSpec(yname="lemp", tname="year", idname="countyreal", gname="first.treat",
                   xformla="~ lpop", weightsname=None, clustervars=[], panel=True,
                   allow_unbalanced_panel=True, anticipation=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        mem = prepare_did(pdf, spec)  # no warning in memory
        prepared = prepare_spark(sdf, spec, spark, 2, PLANNER)
    prepared.table.unpersist()
    assert prepared.meta.kind == mem.kind == "unbalanced"
    assert prepared.meta.n_units == mem.n_units
    assert prepared.meta.n_obs == mem.n_obs
    assert prepared.meta.cohort_counts == mem.cohort_counts


def test_spark_att_gt_with_explicit_session(spark, frames):
    from moderndid.spark import spark_att_gt

    pdf, sdf = frames["mpdta"]
    spark_res = spark_att_gt(sdf, **MPDTA, est_method="ipw", random_state=1, spark=spark)
    assert type(spark_res) is MPResult
    assert spark_res.estimation_params["engine"] == "spark"
    assert_same(spark_res, att_gt(pdf, **MPDTA, est_method="ipw", random_state=1))


# --------------------------------------------------------------------------- reductions


def test_the_jar_is_on_the_test_session_classpath(spark):
    from moderndid.spark.session import jar_path, register_aggregators

    if jar_path() is None:
        pytest.skip("the moderndid jar is not built (python scripts/build_jar.py)")
    assert register_aggregators(spark) is True


def test_an_executor_running_another_version_fails_clearly(frames, monkeypatch):
    """The workers compare their moderndid version with the driver's (here the driver
    pretends to run another one): a typed error naming both, not a Python traceback."""
    import moderndid.spark.executor as executor_module
    from moderndid.errors import SparkVersionError

    monkeypatch.setattr(executor_module, "__version__", "0.0.0.driver")
    _, sdf = frames["mpdta"]
    with pytest.raises(SparkVersionError, match=r"driver runs 0\.0\.0\.driver") as caught:
        att_gt(sdf, **MPDTA)
    assert moderndid.__version__ in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_jvm_bootstrap_setting_is_checked(spark, frames):
    _, sdf = frames["mpdta"]
    spark.conf.set("spark.moderndid.jvmBootstrap", "maybe")
    try:
        with pytest.raises(InvalidOptionError, match=r"spark\.moderndid\.jvmBootstrap"):
            att_gt(sdf, **MPDTA, boot=True, biters=49, random_state=1)
    finally:
        spark.conf.unset("spark.moderndid.jvmBootstrap")


def _require_jar(spark) -> None:
    from moderndid.spark.session import jar_path, register_aggregators

    if jar_path() is None or not register_aggregators(spark):
        pytest.skip("the moderndid jar is not built (python scripts/build_jar.py)")


def test_jvm_multipliers_are_the_numpy_multipliers_bit_for_bit(spark):
    """The Scala generator (SQL function moderndid_mammen_multiplier) against NumPy on the
    golden keys of docs/multipliers.md and random keys, including a seed above 2^63."""
    from moderndid.core.multipliers import mammen_multipliers

    _require_jar(spark)
    keys = np.array([1, 2, 3, 2**40, 0xAF63DC4C8601EC8C, 0, 2**64 - 1], dtype=np.uint64)
    keys = np.concatenate([keys, np.random.default_rng(7).integers(
        0, 2**64 - 1, size=25, dtype=np.uint64, endpoint=True)])
    draws = 40
    for seed in (42, 2**64 - 5):
        expected = mammen_multipliers(seed, keys, 0, draws)  # (keys, draws)
        signed_seed = seed - 2**64 if seed >= 2**63 else seed
        key_list = ",".join(f"CAST({int(k)} AS BIGINT)" for k in keys.view(np.int64))
        rows = spark.sql(
            f"SELECT k, b, moderndid_mammen_multiplier(CAST({signed_seed} AS BIGINT), k, b) AS m"
            f" FROM (SELECT posexplode(array({key_list})) AS (i, k))"
            f" CROSS JOIN (SELECT explode(sequence(CAST(0 AS BIGINT), {draws - 1})) AS b)"
        ).collect()
        assert len(rows) == keys.size * draws
        got = np.empty_like(expected)
        position = {int(k): i for i, k in enumerate(keys.view(np.int64))}
        for r in rows:
            got[position[r["k"]], r["b"]] = r["m"]
        np.testing.assert_array_equal(got, expected)


def test_jvm_bootstrap_reduction_matches_numpy(spark):
    """The Scala MammenBootstrap aggregator over blocks spread across partitions gives the
    NumPy two-point bootstrap sums (same multipliers; sums to rounding)."""
    from pyspark.sql import functions as F

    from moderndid.did.kernels import bootstrap_sums

    _require_jar(spark)
    rng = np.random.default_rng(3)
    n, width, draws, seed = 900, 7, 257, 2**63 + 11
    keys = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True)
    z = rng.normal(size=(n, width))
    cuts = [0, 1, 300, 301, 700, n]  # blocks of 1 to 400 units, and an empty-z row
    rows = [(keys[a:b].view(np.int64).tolist(), z[a:b].ravel().tolist())
            for a, b in itertools.pairwise(cuts)] + [(None, None)]
    blocks = spark.createDataFrame(rows, "bkeys array<long>, bz array<double>").repartition(3)
    signed_seed = seed - 2**64
    out = blocks.withColumn("part", F.spark_partition_id()).agg(F.expr(
        f"moderndid_mammen_bootstrap(CAST({signed_seed} AS BIGINT), {draws}, part, bkeys, bz)"
    ).alias("boot")).collect()[0]["boot"]
    expected = bootstrap_sums(seed, keys, z, draws)
    np.testing.assert_allclose(np.asarray(out).reshape(draws, width), expected,
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("mode", ["jvm", "jar-python", "no-jar"])
def test_unclustered_bootstrap_on_spark_matches_memory(spark, frames, monkeypatch, mode):
    """With the jar the bootstrap draws are made and summed in the JVM (the moments pass
    hands its (key, z) blocks to the Scala aggregator) unless spark.moderndid.jvmBootstrap
    is false; without the jar, in the Python workers. Either way the sums, SEs and bands
    equal the in-memory ones."""
    import moderndid.spark.executor as executor_module
    import moderndid.spark.session as session_module

    jar = mode == "jvm"
    if mode != "no-jar":
        _require_jar(spark)
    if mode == "no-jar":
        monkeypatch.setattr(session_module, "register_aggregators", lambda spark: False)
    if mode == "jar-python":
        spark.conf.set("spark.moderndid.jvmBootstrap", "false")
    calls: list[Any] = []
    original = executor_module.SparkExecutor._reduce_flat

    def spy(self, mapped, bootstrap):
        calls.append(bootstrap)
        return original(self, mapped, bootstrap)

    monkeypatch.setattr(executor_module.SparkExecutor, "_reduce_flat", spy)
    try:
        spark_res, mem_res = fit_both(frames, "gen", GEN, xformla="~ cov1 + cov3", boot=True,
                                      biters=301, random_state=2**64 - 3)
    finally:
        spark.conf.unset("spark.moderndid.jvmBootstrap")
    assert any(c is not None for c in calls) == jar
    assert sum(c is not None for c in calls) == int(jar)  # the moments pass only
    if jar:
        assert BootstrapRequest(2**64 - 3, 301) in calls
    assert_same(spark_res, mem_res)


def test_jarless_reductions_give_the_same_numbers(frames, monkeypatch):
    """Without the Scala aggregators, partial sums (plain, keyed by cluster, maxima) are
    reduced by Spark SQL: the numbers do not change."""
    import moderndid.spark.executor as executor_module
    import moderndid.spark.session as session_module

    seen: list[bool] = []
    original = executor_module.SparkExecutor.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        seen.append(self.jvm_aggregators)

    monkeypatch.setattr(session_module, "register_aggregators", lambda spark: False)
    monkeypatch.setattr(executor_module.SparkExecutor, "__init__", spy)
    spark_res, mem_res = fit_both(
        frames, "mpdta", MPDTA, xformla="~ lpop", clustervars=CLUSTERS, boot=True, biters=99,
        random_state=3)
    assert seen == [False]
    assert_same(spark_res, mem_res)


def test_jarless_executor_with_fit_att_gt(spark, frames):
    """SparkExecutor(jvm_aggregators=False) driven by fit_att_gt directly."""
    from moderndid.did import plan as PLANNER
    from moderndid.did.att_gt import build_mp_result, validate_options
    from moderndid.did.fit import fit_att_gt
    from moderndid.did.preprocess import DidSpec
    from moderndid.spark.executor import SparkExecutor
    from moderndid.spark.prepare import prepare_spark

    pdf, sdf = frames["gen"]
    opts = validate_options(alpha=0.05, cband=True, boot=False, biters=1000, est_method="reg",
                            control_group="notyettreated", anticipation=0,
                            base_period="varying", random_state=1, backend=None,
                            collect_influence=False)
    spec = DidSpec(yname="y", tname="time", idname="id", gname="group",
                   xformla="~ cov1 + cov2", weightsname=None, clustervars=[], panel=True,
                   allow_unbalanced_panel=False, anticipation=0.0,
                   control_group="notyettreated")
    prepared = prepare_spark(sdf, spec, spark, 2, PLANNER)
    try:
        executor = SparkExecutor(spark, prepared.table, prepared.to_partition, False,
                                 prepared.n_partitions)
        out = fit_att_gt(prepared.meta, executor, opts)
    finally:
        prepared.table.unpersist()
    spark_res = build_mp_result(out, prepared.meta, spec, opts, engine="spark")
    mem_res = att_gt(pdf, **GEN, xformla="~ cov1 + cov2", est_method="reg",
                     control_group="notyettreated", random_state=1)
    assert_same(spark_res, mem_res)


# --------------------------------------------------------------------------- errors


def test_missing_column(frames):
    _, sdf = frames["mpdta"]
    with pytest.raises(ColumnNotFoundError, match="lemp2"):
        att_gt(sdf, "lemp2", "year", "countyreal", "first.treat")
    with pytest.raises(ColumnNotFoundError, match="nope"):
        att_gt(sdf, **MPDTA, xformla="~ lpop + nope")


def test_string_outcome(frames):
    from pyspark.sql import functions as F

    _, sdf = frames["mpdta"]
    with pytest.raises(ColumnTypeError, match="lemp_s"):
        att_gt(sdf.withColumn("lemp_s", F.col("lemp").cast("string")),
               "lemp_s", "year", "countyreal", "first.treat")


@pytest.mark.parametrize("bad", ["nan", "null"])
def test_missing_outcome(frames, bad):
    from pyspark.sql import functions as F

    _, sdf = frames["mpdta"]
    value = F.lit(float("nan")) if bad == "nan" else F.lit(None).cast("double")
    holed = sdf.withColumn(
        "lemp", F.when((F.col("countyreal") == 8001) & (F.col("year") == 2005), value)
        .otherwise(F.col("lemp")))
    with pytest.raises(MissingValuesError, match="lemp"):
        att_gt(holed, **MPDTA)


def test_duplicated_unit_period_rows(frames):
    from pyspark.sql import functions as F

    _, sdf = frames["mpdta"]
    extra = sdf.filter((F.col("countyreal") == 8019) & (F.col("year") == 2004))
    with pytest.raises(DataStructureError, match=r"unit 8019 has more than one row"):
        att_gt(sdf.unionByName(extra), **MPDTA)


def test_group_varying_within_unit(frames):
    from pyspark.sql import functions as F

    _, sdf = frames["mpdta"]
    bad = sdf.withColumn(
        "first.treat",
        F.when((F.col("countyreal") == 8001) & (F.col("year") == 2003), F.lit(2004))
        .otherwise(F.col("`first.treat`")))
    with pytest.raises(DataStructureError, match=r"group column 'first.treat' varies .* 8001"):
        att_gt(bad, **MPDTA)


def test_whole_column_transform_refused(frames):
    """Transforms are evaluated per partition (tests/test_formula_engines.py); those that
    need the whole column are refused, as in memory."""
    _, sdf = frames["mpdta"]
    with pytest.raises(InvalidOptionError, match="need the whole column at once"):
        att_gt(sdf, **MPDTA, xformla="~ center(lpop)")


def test_zero_weights_everywhere(frames):
    """Refused as in memory (every estimator would divide by a zero total weight)."""
    from pyspark.sql import functions as F

    _, sdf = frames["mpdta"]
    with pytest.raises(DataStructureError, match="zero everywhere"):
        att_gt(sdf.withColumn("w0", F.lit(0.0)), **MPDTA, weightsname="w0")


def test_non_integer_float_ids(frames):
    """Refused on the driver with the in-memory engine's error type (not from a worker)."""
    from pyspark.sql import functions as F

    _, sdf = frames["mpdta"]
    with pytest.raises(ColumnTypeError, match="fid"):
        att_gt(sdf.withColumn("fid", F.col("countyreal") + 0.5), **dict(MPDTA, idname="fid"))


# --------------------------------------------------------------------------- driver memory

COLLECTING = ("collect", "toPandas", "toArrow", "toLocalIterator", "take", "head", "first",
              "tail", "_collect_as_arrow")


def _count_rows(name: str, value: Any) -> int:
    if value is None:
        return 0
    if name in ("head", "first") and not isinstance(value, list):
        return 1  # a single Row
    if hasattr(value, "num_rows"):  # pyarrow.Table
        return int(value.num_rows)
    try:
        return len(value)
    except TypeError:
        return -1  # unknown: the assertions below name the method instead


def test_no_unit_level_rows_reach_the_driver(spark, monkeypatch):
    """Only column statistics and reduced partial sums are collected: a few rows per job,
    never one per unit."""
    from pyspark.rdd import RDD
    from pyspark.sql.classic.dataframe import DataFrame as ClassicDataFrame

    n_units = 3000
    pdf = moderndid.gen_did_scalable(n=n_units, n_periods=4, n_cohorts=2, n_covariates=4,
                                     random_state=1)["data"]
    sdf = spark.createDataFrame(pdf)
    assert isinstance(sdf, ClassicDataFrame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ddd_pdf = moderndid.gen_ddd_mult_periods(n_units, random_state=3)["data"]
    ddd_sdf = spark.createDataFrame(ddd_pdf)
    calls: list[tuple[str, int]] = []

    def wrap(name: str, method: Any) -> Any:
        def wrapper(self, *args, **kwargs):
            value = method(self, *args, **kwargs)
            if name.endswith("toLocalIterator"):
                rows = list(value)
                calls.append((name, len(rows)))
                return iter(rows)
            calls.append((name, _count_rows(name, value)))
            return value
        return wrapper

    for name in COLLECTING:
        method = getattr(ClassicDataFrame, name, None)
        if method is not None:
            monkeypatch.setattr(ClassicDataFrame, name, wrap(name, method))
    for name in ("collect", "toLocalIterator", "take"):
        monkeypatch.setattr(RDD, name, wrap(f"RDD.{name}", getattr(RDD, name)))
    res = att_gt(sdf, **GEN, xformla="~ cov1 + cov2", clustervars=["id", "cluster"],
                 boot=True, biters=99, random_state=2)
    # triple differences go through the same preparation and executor
    res_ddd = moderndid.ddd(ddd_sdf, "y", "time", "id", "group", "partition",
                            xformla="~ cov1 + cov2", control_group="notyettreated")
    monkeypatch.undo()
    assert res_ddd.estimation_params["engine"] == "spark"

    assert res.estimation_params["engine"] == "spark"
    assert res.n_units == n_units
    names = [name for name, _ in calls]
    assert "collect" in names
    for forbidden in ("toPandas", "toArrow", "toLocalIterator", "_collect_as_arrow",
                      "RDD.collect", "RDD.toLocalIterator", "RDD.take"):
        assert forbidden not in names, calls
    assert max(rows for _, rows in calls) < 200, calls
    assert sum(rows for _, rows in calls) < 500, calls


def _kill_own_worker(part, state):
    """A kernel whose Python worker dies (SIGKILL), as an out-of-memory kill would."""
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def test_a_task_spark_gives_up_on_is_a_typed_error(spark, frames, monkeypatch):
    """When Spark aborts the job (a task failed spark.task.maxFailures times: 1 in local
    mode), the user gets SparkTaskLostError saying what was lost, not a Py4J trace."""
    import sys

    from pyspark import cloudpickle

    import moderndid.did.fit as fit_module
    from moderndid.errors import SparkTaskLostError

    # ship the killing kernel by value: the workers cannot import this test module
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        monkeypatch.setattr(fit_module, "moments_pass", _kill_own_worker)
        _, sdf = frames["mpdta"]
        with pytest.raises(SparkTaskLostError, match=r"Spark gave up on a task of this fit"):
            att_gt(sdf, **MPDTA, n_partitions=2)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
