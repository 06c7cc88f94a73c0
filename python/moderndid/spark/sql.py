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
from typing import Any, ClassVar

import pyarrow as pa

from moderndid.core.frames import spark_type_label
from moderndid.core.report import (
    AGGREGATION_LABELS,
    AGGREGATION_TYPES,
    EVENT_STUDY_TYPES,
    normal_quantile,
)
from moderndid.ddd.agg_ddd import agg_ddd
from moderndid.ddd.estimator import ddd
from moderndid.did.aggte import aggte
from moderndid.did.att_gt import att_gt, validate_options
from moderndid.did.plan import check_columns
from moderndid.did.preprocess import normalize_clustervars
from moderndid.engine.spec import DidSpec, column_roles
from moderndid.errors import (
    InvalidOptionError,
    ModernDiDError,
    SparkEnvironmentError,
    UnsupportedInputError,
)
from moderndid.spark.session import is_connect, register_aggregators, resolve_session
from moderndid.spark.session import spark_schema as arrow_spark_schema

logger = logging.getLogger("moderndid")

SETTING_NAMES = ("est_method", "control_group", "inference")
_SETTINGS = [(name, "string") for name in SETTING_NAMES]
GROUP_TIME_COLUMNS = [
    ("group", "double"), ("time", "double"), ("event_time", "double"), ("att", "double"),
    ("se", "double"), ("ci_lower", "double"), ("ci_upper", "double"),
    ("critical_value", "double"), ("post", "boolean"), *_SETTINGS]
AGGREGATE_COLUMNS = [
    ("aggregation", "string"), ("level", "string"), ("value", "double"), ("att", "double"),
    ("se", "double"), ("ci_lower", "double"), ("ci_upper", "double"),
    ("critical_value", "double"), ("post", "boolean"), *_SETTINGS]
_ARROW_TYPES = {"double": pa.float64(), "boolean": pa.bool_(), "string": pa.string()}


def spark_schema(columns: list[tuple[str, str]]) -> Any:
    """The columns as a pyspark StructType (built without a JVM: executors use it too)."""
    return arrow_spark_schema(pa.schema([(name, _ARROW_TYPES[kind]) for name, kind in columns]))


# Engine settings are the SQL session's, not arguments of a SQL call.
_NOT_SQL = {"data", "spark", "client", "n_jobs", "backend", "max_cohorts"}
# Arguments of the aggregation step that the estimation step does not have.
_AGGREGATION_ONLY = ("type", "balance_e", "min_e", "max_e", "na_rm")


@dataclass(frozen=True)
class SqlFunction:
    """One SQL table function: the Python calls it makes and its output."""

    name: str
    estimate: Callable[..., Any]
    aggregate: Callable[..., Any] | None
    columns: list[tuple[str, str]]

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
    SqlFunction("moderndid_att_gt", att_gt, None, GROUP_TIME_COLUMNS),
    SqlFunction("moderndid_aggte", att_gt, aggte, AGGREGATE_COLUMNS),
    SqlFunction("moderndid_ddd", ddd, None, GROUP_TIME_COLUMNS),
    SqlFunction("moderndid_agg_ddd", ddd, agg_ddd, AGGREGATE_COLUMNS),
)}

_lock = threading.Lock()
_bridges: dict[int, Any] = {}  # id of the py4j gateway -> its bridge (one per JVM)


def register(spark: Any = None) -> None:
    """Register the SQL table functions in a classic Spark session.

    After this, ``spark.sql("SELECT * FROM moderndid_att_gt(TABLE(panel), yname => 'y',
    tname => 'time', idname => 'id', gname => 'group')")`` runs the distributed estimator;
    ``moderndid_aggte``, ``moderndid_ddd`` and ``moderndid_agg_ddd`` likewise. Calling it
    again (or for another session of the same application) is harmless. Sessions created
    with ``spark.sql.extensions=moderndid.Extensions`` know the
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
            for function in FUNCTIONS.values():  # py4j's auto_convert: list -> java.util.List
                ddl = ", ".join(f"`{name}` {kind.upper()}" for name, kind in function.columns)
                scala.declare(function.name, ddl, function.parameters, function.name)
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
            columns = FUNCTIONS[function].columns
            table = cast_to_schema(run_call(FUNCTIONS[function], data, dict(arguments)), columns)
            return data.sparkSession.createDataFrame(table, schema=spark_schema(columns))._jdf
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
        if name == "clustervars" and isinstance(value, str):  # or an array
            value = [part.strip() for part in value.split(",") if part.strip()]
        aggregated = function.aggregate is not None and name in _AGGREGATION_ONLY
        (aggregate if aggregated else estimate)[name] = value
    return estimate, aggregate


def _python_value(value: Any) -> Any:
    """py4j hands over Java lists as JavaList proxies: make them Python lists."""
    if value is not None and type(value).__name__ in ("JavaList", "JavaArray"):
        return [_python_value(v) for v in value]
    return value


def check_call(function: SqlFunction, data: Any, arguments: Mapping[str, Any]) -> None:
    """Check a SQL call's arguments against the data's columns, without running a job."""
    estimate, aggregate = _keyword_arguments(function, arguments)
    signature = inspect.signature(function.estimate)
    missing = [name for name, p in signature.parameters.items()
               if p.default is inspect.Parameter.empty and name != "data"
               and p.kind is not p.VAR_KEYWORD and name not in estimate]
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
    kind = aggregate.get("type")
    if function.aggregate is not None and "type" in aggregate and kind not in (
            *AGGREGATION_TYPES, *EVENT_STUDY_TYPES):
        default = inspect.signature(function.aggregate).parameters["type"].default
        raise InvalidOptionError(f"type must be one of 'simple', {default!r}, 'group', "
                                 f"'calendar', got {kind!r}")
    # the columns and their types, checked by the planner as the Python API checks them
    # (same class, same message)
    gname = bound.get("gname")
    if gname is None:
        return  # the estimator refuses the call as the Python API does
    clustervars = bound.get("clustervars") or bound.get("cluster")
    spec = DidSpec(
        yname=bound["yname"], tname=bound["tname"], idname=bound.get("idname"),
        gname=gname, xformla=None, weightsname=bound.get("weightsname"),
        clustervars=normalize_clustervars(clustervars, bound.get("idname")),
        panel=bool(bound.get("panel", True)), allow_unbalanced_panel=False,
        anticipation=0.0, pname=bound.get("pname"))
    types = {f.name: f.dataType for f in data.schema.fields}
    check_columns(column_roles(spec, []), list(types),
                  lambda c: spark_type_label(types[c]))


def run_call(function: SqlFunction, data: Any, arguments: Mapping[str, Any]) -> pa.Table:
    """Run a SQL call's estimation (and aggregation) on Spark: its result rows."""
    estimate, aggregate = _keyword_arguments(function, arguments)
    result = function.estimate(data, spark=data.sparkSession, **estimate)
    if function.aggregate is None:
        return group_time_rows(result)
    return aggregate_rows(function.aggregate(result, **aggregate), result)


def _settings(result: Any) -> tuple[str, str, str]:
    params = getattr(result, "estimation_params", None) or getattr(result, "args", {}) or {}
    boot = bool(params.get("boot") or params.get("bootstrap"))
    uniform = boot and bool(params.get("cband"))
    inference = "bootstrap, uniform band" if uniform else "bootstrap" if boot else "analytic"
    return (str(params.get("est_method", "")), str(params.get("control_group", "")), inference)


def group_time_rows(result: Any) -> pa.Table:
    """ATT(g,t) rows of an ``att_gt`` or ``ddd`` result (:data:`GROUP_TIME_COLUMNS`)."""
    table = result.to_arrow()
    n = table.num_rows
    columns = {name: table.column(name).to_pylist() if name in table.column_names
               else [None] * n for name in ("group", "time", "event_time", "att", "se",
                                            "ci_lower", "ci_upper", "treatment_status")}
    status = columns.pop("treatment_status")
    critical = float(getattr(result, "critical_value", math.nan))
    settings = zip(SETTING_NAMES, _settings(result), strict=True)
    return pa.table({**columns, "critical_value": [critical] * n,
                     "post": [None if s is None else s == "Post" for s in status],
                     **{name: [value] * n for name, value in settings}})


def aggregate_rows(agg: Any, fit: Any) -> pa.Table:
    """The overall row and the per-level rows of an aggregation (:data:`AGGREGATE_COLUMNS`)."""
    kind = "dynamic" if agg.aggregation_type in EVENT_STUDY_TYPES else agg.aggregation_type
    level = AGGREGATION_LABELS[kind].column
    table = agg.to_arrow()
    settings = dict(zip(SETTING_NAMES, _settings(fit), strict=True))
    z = normal_quantile(agg.alpha)
    overall_se = float(agg.overall_se)
    rows = [{
        "aggregation": agg.aggregation_type, "level": "overall", "value": None,
        "att": float(agg.overall_att), "se": overall_se,
        "ci_lower": float(agg.overall_att) - z * overall_se,
        "ci_upper": float(agg.overall_att) + z * overall_se, "critical_value": z,
        "post": None, **settings,
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
                "post": (value >= 0) if level == "event_time" else True, **settings,
            })
    return pa.Table.from_pylist(rows)


def cast_to_schema(table: pa.Table, columns: list[tuple[str, str]]) -> pa.Table:
    """``table`` with exactly the declared columns and types (cast on the driver: a value of
    another type than declared reaches SQL as garbage)."""
    arrays = [table.column(name).cast(_ARROW_TYPES[kind]) if name in table.column_names
              else pa.nulls(table.num_rows, _ARROW_TYPES[kind]) for name, kind in columns]
    return pa.Table.from_arrays(arrays, names=[name for name, _ in columns])


# --- one in-memory estimation per key, on the executors (works under Spark Connect) ----------

BY_FUNCTION = "moderndid_att_gt_by"


class AttGtBy:
    """Python UDTF behind ``moderndid_att_gt_by`` (see :func:`register_by`): ``att_gt``
    (and ``aggte`` with ``type``) in memory for each key of ``by``, on the executors. It
    asks Spark to partition the table by the ``by`` columns itself, so every estimation
    sees all the rows of its key and only those: no call can mix keys."""

    @staticmethod
    def analyze(data: Any, **arguments: Any) -> Any:
        from pyspark.sql.types import StructField, StructType
        from pyspark.sql.udtf import AnalyzeResult, PartitioningColumn

        if not getattr(data, "isTable", False):
            raise InvalidOptionError(f"{BY_FUNCTION}: the first argument must be TABLE(name) "
                                     "or TABLE(query)")
        for name, argument in arguments.items():
            if not getattr(argument, "isConstantExpression", False):
                raise InvalidOptionError(f"{BY_FUNCTION}: argument {name!r} must be a constant")
        values = {name: argument.value for name, argument in arguments.items()}
        keys = _by_columns(values.get("by"))
        columns = {f.name: f for f in data.dataType.fields}
        for key in keys:
            if key not in columns:
                raise InvalidOptionError(f"{BY_FUNCTION}: by names column {key!r}, which is "
                                         "not in the table")
        unknown = set(values) - {"by", *FUNCTIONS["moderndid_aggte"].parameters}
        if unknown:
            raise InvalidOptionError(f"{BY_FUNCTION}: unknown argument(s) "
                                     f"{', '.join(sorted(unknown))}")
        result = spark_schema(AGGREGATE_COLUMNS if "type" in values else GROUP_TIME_COLUMNS)
        schema = StructType([StructField(k, columns[k].dataType, True) for k in keys]
                            + list(result.fields))
        return AnalyzeResult(schema=schema,
                             partitionBy=[PartitioningColumn("`" + k.replace("`", "``") + "`")
                                          for k in keys])

    def __init__(self) -> None:
        self._rows: list[Any] = []
        self._arguments: dict[str, Any] = {}

    def eval(self, row: Any, **arguments: Any) -> None:
        self._rows.append(row)
        self._arguments = arguments

    def terminate(self) -> Any:
        import pandas as pd

        if not self._rows:
            return
        values = {k: _python_value(v) for k, v in self._arguments.items()}
        keys = _by_columns(values.pop("by", None))
        frame = pd.DataFrame([r.asDict() for r in self._rows])
        key_values = tuple(frame[k].iloc[0] for k in keys)
        function = FUNCTIONS["moderndid_aggte" if "type" in values else "moderndid_att_gt"]
        estimate, aggregate = _keyword_arguments(function, values)
        try:
            result = att_gt(frame, **estimate)
            table = (aggregate_rows(aggte(result, **aggregate), result) if "type" in values
                     else group_time_rows(result))
            table = cast_to_schema(table, function.columns)
        except ModernDiDError as exc:
            shown = ", ".join(f"{k}={v!r}" for k, v in zip(keys, key_values, strict=True))
            raise type(exc)(f"{BY_FUNCTION} ({shown}): {exc}") from None
        for row in table.to_pylist():
            yield (*key_values, *row.values())


def _by_columns(by: Any) -> list[str]:
    if by is None:
        raise InvalidOptionError(
            f"{BY_FUNCTION} needs the key columns: write {BY_FUNCTION}(TABLE(panel), "
            "by => 'region', yname => ..., ...) (an array or a comma-separated string for "
            "several); the function partitions the table by them itself")
    keys = [k.strip() for k in by.split(",")] if isinstance(by, str) else list(by)
    if not keys or not all(isinstance(k, str) and k for k in keys):
        raise InvalidOptionError(f"{BY_FUNCTION}: by must name columns, got {by!r}")
    return keys


def register_by(spark: Any = None) -> None:
    """Register ``moderndid_att_gt_by`` (one in-memory ``att_gt`` per key, on the
    executors) in a session, classic or Spark Connect.

    ``SELECT * FROM moderndid_att_gt_by(TABLE(panel), by => 'region', yname => 'y', tname
    => 'time', idname => 'id', gname => 'group')`` returns the key columns followed by the
    columns of ``moderndid_att_gt``; with ``type => 'dynamic'`` (or another aggregation),
    those of ``moderndid_aggte``. Each key's rows must fit in one executor's memory.
    """
    from pyspark.sql.functions import udtf

    resolve_session(spark).udtf.register(BY_FUNCTION, udtf(AttGtBy))
