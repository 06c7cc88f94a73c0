"""Spark SQL table functions: ``SELECT * FROM moderndid_att_gt(TABLE(panel), ...)``.

The functions are Scala table functions (``org.apache.spark.sql.moderndid.SqlFunctions`` in
the moderndid jar) whose plans call back into this Python driver through py4j when the
query executes: analysis only checks the call and declares the output schema (``EXPLAIN``
runs nothing), and execution runs the distributed estimator of :mod:`moderndid.spark` on
the table argument, then returns the small result table cast to the declared schema.

They need a classic session whose Python driver called :func:`register` (the callbacks
come here); under Spark Connect, use :func:`register_by` (``moderndid_att_gt_by``), which
runs one in-memory estimation per key on the executors.
"""

from __future__ import annotations

import inspect
import logging
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, ClassVar, cast

import pyarrow as pa

from moderndid.ddd.agg_ddd import agg_ddd
from moderndid.ddd.estimator import ddd
from moderndid.did.aggte import aggte
from moderndid.did.att_gt import att_gt
from moderndid.errors import (
    InvalidOptionError,
    ModernDiDError,
    SparkEnvironmentError,
    UnsupportedInputError,
)
from moderndid.spark.session import is_connect, register_aggregators, resolve_session

logger = logging.getLogger("moderndid")

GROUP_TIME_DDL = ("group DOUBLE, time DOUBLE, event_time DOUBLE, att DOUBLE, se DOUBLE, "
                  "ci_lower DOUBLE, ci_upper DOUBLE, critical_value DOUBLE, post BOOLEAN, "
                  "est_method STRING, control_group STRING, inference STRING")
AGGREGATE_DDL = ("aggregation STRING, level STRING, value DOUBLE, att DOUBLE, se DOUBLE, "
                 "ci_lower DOUBLE, ci_upper DOUBLE, critical_value DOUBLE, post BOOLEAN, "
                 "est_method STRING, control_group STRING, inference STRING")

# Engine settings are the SQL session's, not arguments of a SQL call.
_NOT_SQL = {"data", "spark", "client", "n_jobs", "backend", "max_cohorts"}
# Arguments of the aggregation step that the estimation step does not have.
_AGGREGATION_ONLY = ("type", "balance_e", "min_e", "max_e", "na_rm")
# Arguments that take several column names: an array or a comma-separated string.
_NAME_LISTS = {"clustervars"}


@dataclass(frozen=True)
class SqlFunction:
    """One SQL table function: the Python calls it makes and its output."""

    name: str
    estimate: Callable[..., Any]
    aggregate: Callable[..., Any] | None
    ddl: str

    @property
    def parameters(self) -> list[str]:
        """Arguments in positional order: the estimator's, then the aggregation's own."""
        names = _parameters(self.estimate)
        if self.aggregate is not None:
            names += [p for p in _AGGREGATION_ONLY if p in _parameters(self.aggregate)]
        return names


def _parameters(function: Callable[..., Any]) -> list[str]:
    return [name for name, p in inspect.signature(function).parameters.items()
            if p.kind is not p.VAR_KEYWORD and name not in _NOT_SQL
            and name not in ("MP", "ddd_result", "ddd_obj")]


FUNCTIONS = {f.name: f for f in (
    SqlFunction("moderndid_att_gt", att_gt, None, GROUP_TIME_DDL),
    SqlFunction("moderndid_aggte", att_gt, aggte, AGGREGATE_DDL),
    SqlFunction("moderndid_ddd", ddd, None, GROUP_TIME_DDL),
    SqlFunction("moderndid_agg_ddd", ddd, agg_ddd, AGGREGATE_DDL),
)}

_SCALA = "org.apache.spark.sql.moderndid.SqlFunctions"
_lock = threading.Lock()
_bridges: dict[int, Any] = {}  # id of the py4j gateway -> its bridge (one per JVM)


def register(spark: Any = None) -> None:
    """Register the SQL table functions in a classic Spark session.

    After this, ``spark.sql("SELECT * FROM moderndid_att_gt(TABLE(panel), yname => 'y',
    tname => 'time', idname => 'id', gname => 'group')")`` runs the distributed estimator;
    ``moderndid_aggte``, ``moderndid_ddd`` and ``moderndid_agg_ddd`` likewise. Calling it
    again (or for another session of the same application) is harmless. Sessions created
    with ``spark.sql.extensions=org.apache.spark.sql.moderndid.SqlExtensions`` know the
    functions already, but they still run here: call this once per Python driver.

    Parameters
    ----------
    spark : SparkSession, optional
        A classic session with the moderndid jar (default: the active one, else a new
        local session).

    Raises
    ------
    UnsupportedInputError
        Under Spark Connect (no Python driver runs next to the JVM there): use
        :func:`register_by` and ``moderndid_att_gt_by``.
    SparkEnvironmentError
        When the moderndid jar is not on the session's classpath.
    """
    from pyspark.java_gateway import ensure_callback_server_started

    session = resolve_session(spark)
    if is_connect(session):
        raise UnsupportedInputError(
            "moderndid's distributed SQL functions need a classic Spark session (their "
            "estimation runs in the Python driver); under Spark Connect use "
            "moderndid.spark.register_by(spark) and moderndid_att_gt_by, or the Python API")
    if not register_aggregators(session):
        raise SparkEnvironmentError(
            "the moderndid jar is not on this session's classpath; create the session with "
            "moderndid.spark.configure(SparkSession.builder) or add the jar to spark.jars")
    gateway = session.sparkContext._gateway
    scala = session._jvm.org.apache.spark.sql.moderndid.SqlFunctions
    with _lock:
        if id(gateway) not in _bridges:
            ensure_callback_server_started(gateway)
            for function in FUNCTIONS.values():
                parameters = session._jvm.java.util.ArrayList()
                for name in function.parameters:
                    parameters.add(name)
                scala.declare(function.name, function.ddl, parameters, function.name)
            bridge = SqlBridge(session.sparkContext)
            scala.setBridge(bridge)
            _bridges[id(gateway)] = bridge
    scala.register(session._jsparkSession)


class SqlBridge:
    """The py4j callback the Scala functions call (``org.apache.spark.sql.moderndid.SqlBridge``)."""

    def __init__(self, spark_context: Any):
        self._sc = spark_context

    def _frame(self, jdf: Any) -> Any:
        from pyspark.sql import DataFrame, SparkSession

        return DataFrame(jdf, SparkSession(self._sc, jdf.sparkSession()))

    def check(self, function: str, jdf: Any, arguments: Any) -> str | None:
        """The problem with a call, or None: options and columns, no Spark job."""
        try:
            check_call(FUNCTIONS[function], self._frame(jdf), dict(arguments))
        except ModernDiDError as exc:
            return f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a bug here must not look like the user's mistake
            logger.exception("moderndid: checking %s failed", function)
            return f"internal error while checking the call: {exc!r}"
        return None

    def run(self, function: str, jdf: Any, arguments: Any) -> Any:
        """Estimate, and return the result as a DataFrame of the declared schema."""
        try:
            data = self._frame(jdf)
            table = run_call(FUNCTIONS[function], data, dict(arguments))
            return _to_spark(data.sparkSession, table, FUNCTIONS[function].ddl)._jdf
        except ModernDiDError as exc:
            # the Scala side reports this line as the query's error
            raise RuntimeError(f"moderndid-sql-error: {type(exc).__name__}: {exc}") from None

    class Java:
        implements: ClassVar[list[str]] = ["org.apache.spark.sql.moderndid.SqlBridge"]


def _keyword_arguments(function: SqlFunction, arguments: Mapping[str, Any]
                       ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The SQL arguments as keyword arguments of the estimation and the aggregation."""
    estimate: dict[str, Any] = {}
    aggregate: dict[str, Any] = {}
    for name, value in arguments.items():
        value = _python_value(value)
        if name in _NAME_LISTS and isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if function.aggregate is not None and name in _AGGREGATION_ONLY:
            aggregate[name] = value
        else:
            estimate[name] = value
    return estimate, aggregate


def _python_value(value: Any) -> Any:
    """py4j hands over Java lists as JavaList proxies: make them Python lists."""
    if value is not None and type(value).__name__ in ("JavaList", "JavaArray"):
        return [_python_value(v) for v in value]
    return value


def check_call(function: SqlFunction, data: Any, arguments: Mapping[str, Any]) -> None:
    """Check a SQL call's arguments against the data's columns, without running a job."""
    from moderndid.did.att_gt import validate_options

    estimate, aggregate = _keyword_arguments(function, arguments)
    signature = inspect.signature(function.estimate)
    missing = [name for name, p in signature.parameters.items()
               if p.default is inspect.Parameter.empty and name != "data"
               and name not in estimate]
    if missing:
        raise InvalidOptionError(f"missing argument(s): {', '.join(missing)}")
    bound = {**{name: p.default for name, p in signature.parameters.items()
                if p.default is not inspect.Parameter.empty}, **estimate}
    validate_options(
        alpha=bound["alpha"], cband=bound["cband"], boot=bound["boot"],
        biters=bound.get("biters", 1000), est_method=bound["est_method"],
        control_group=bound["control_group"] or "nevertreated",
        anticipation=bound.get("anticipation", 0),
        base_period=bound["base_period"] or "varying", random_state=bound["random_state"],
        backend=None, collect_influence=False)
    if "type" in aggregate:
        allowed = inspect.signature(function.aggregate).parameters["type"]  # type: ignore[arg-type]
        _check_aggregation_type(function, aggregate["type"], allowed.default)
    columns = set(data.columns)
    for name in ("yname", "tname", "idname", "gname", "pname", "weightsname", "cluster"):
        column = bound.get(name)
        if column is not None and column not in columns:
            raise InvalidOptionError(
                f"{name} names column {column!r}, which is not in the table; columns: "
                f"{', '.join(sorted(columns))}")
    for column in bound.get("clustervars") or []:
        if column not in columns:
            raise InvalidOptionError(
                f"clustervars names column {column!r}, which is not in the table")


def _check_aggregation_type(function: SqlFunction, value: Any, default: str) -> None:
    from moderndid.core.report import AGGREGATION_TYPES, EVENT_STUDY_TYPES

    if value not in (*AGGREGATION_TYPES, *EVENT_STUDY_TYPES):
        raise InvalidOptionError(
            f"type must be one of 'simple', {default!r}, 'group', 'calendar', got {value!r}")


def run_call(function: SqlFunction, data: Any, arguments: Mapping[str, Any]) -> pa.Table:
    """Run a SQL call's estimation (and aggregation) on Spark: its result rows."""
    estimate, aggregate = _keyword_arguments(function, arguments)
    result = function.estimate(data, spark=data.sparkSession, **estimate)
    if function.aggregate is None:
        return group_time_rows(result)
    first = "MP" if function.aggregate is aggte else "ddd_result"
    return aggregate_rows(function.aggregate(**{first: result}, **aggregate), result)


def _settings(result: Any) -> tuple[str, str, str]:
    params = getattr(result, "estimation_params", None) or getattr(result, "args", {}) or {}
    boot = bool(params.get("boot") or params.get("bootstrap"))
    uniform = boot and bool(params.get("cband"))
    inference = "bootstrap, uniform band" if uniform else "bootstrap" if boot else "analytic"
    return (str(params.get("est_method", "")), str(params.get("control_group", "")), inference)


def group_time_rows(result: Any) -> pa.Table:
    """ATT(g,t) rows of an ``att_gt`` or ``ddd`` result (see :data:`GROUP_TIME_DDL`)."""
    table = result.to_arrow()
    n = table.num_rows
    est_method, control_group, inference = _settings(result)

    def column(name: str) -> list[Any]:
        if name in table.column_names:
            return table.column(name).to_pylist()
        return [None] * n

    status = column("treatment_status")
    critical = float(getattr(result, "critical_value", math.nan))
    return pa.table({
        "group": column("group"), "time": column("time"), "event_time": column("event_time"),
        "att": column("att"), "se": column("se"), "ci_lower": column("ci_lower"),
        "ci_upper": column("ci_upper"), "critical_value": [critical] * n,
        "post": [None if s is None else s == "Post" for s in status],
        "est_method": [est_method] * n, "control_group": [control_group] * n,
        "inference": [inference] * n,
    })


def aggregate_rows(agg: Any, fit: Any) -> pa.Table:
    """The overall row and the per-level rows of an aggregation (:data:`AGGREGATE_DDL`)."""
    from moderndid.core.report import AGGREGATION_LABELS, EVENT_STUDY_TYPES

    kind = "dynamic" if agg.aggregation_type in EVENT_STUDY_TYPES else agg.aggregation_type
    level = AGGREGATION_LABELS[kind].column
    table = agg.to_arrow()
    est_method, control_group, inference = _settings(fit)
    z = NormalDist().inv_cdf(1 - float(agg.alpha) / 2)
    overall_se = float(agg.overall_se)
    rows = [{
        "aggregation": agg.aggregation_type, "level": "overall", "value": None,
        "att": float(agg.overall_att), "se": overall_se,
        "ci_lower": float(agg.overall_att) - z * overall_se,
        "ci_upper": float(agg.overall_att) + z * overall_se, "critical_value": z,
        "post": None,
    }]
    if level and level in table.column_names:
        critical = getattr(agg, "critical_values", None)
        for i, row in enumerate(table.to_pylist()):
            value = row[level]
            rows.append({
                "aggregation": agg.aggregation_type, "level": level, "value": value,
                "att": row["att"], "se": row["se"], "ci_lower": row["ci_lower"],
                "ci_upper": row["ci_upper"],
                "critical_value": None if critical is None else float(critical[i]),
                "post": (value >= 0) if level == "event_time" else True,
            })
    for row in rows:
        row.update(est_method=est_method, control_group=control_group, inference=inference)
    return pa.Table.from_pylist(rows)


def _to_spark(session: Any, table: pa.Table, ddl: str) -> Any:
    """The rows as a Spark DataFrame of exactly the declared schema (cast on the driver:
    an uncast value in the wrong type reaches SQL as garbage)."""
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import StructType

    schema = cast(StructType, StructType.fromDDL(ddl))
    arrow_schema = to_arrow_schema(schema)
    columns = [table.column(f.name).cast(f.type) if f.name in table.column_names
               else pa.nulls(table.num_rows, f.type) for f in arrow_schema]
    return session.createDataFrame(pa.Table.from_arrays(columns, schema=arrow_schema),
                                   schema=schema)
