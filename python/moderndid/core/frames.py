"""Reading user data (pandas, polars, pyarrow, anything Arrow-compatible) into numpy columns."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from moderndid.errors import (
    ColumnTypeError,
    DataStructureError,
    MissingValuesError,
    UnsupportedInputError,
)


def to_arrow_table(data: Any, needed: Sequence[str] | None = None) -> pa.Table:
    """A pandas / polars DataFrame, pyarrow Table / RecordBatch or any Arrow stream
    exporter as a pyarrow Table. A pandas column that Arrow cannot type (numbers mixed with
    text) is refused only if it is in ``needed`` (the columns the caller reads), else left
    out."""
    if isinstance(data, pa.Table):
        table = data
    elif isinstance(data, pa.RecordBatch):
        table = pa.Table.from_batches([data])
    else:
        table = _convert(data, needed)
    duplicated = sorted(c for c, n in Counter(table.column_names).items() if n > 1)
    if duplicated:
        raise DataStructureError(f"the data has duplicated column names: {duplicated}")
    return table


def _convert(data: Any, needed: Sequence[str] | None) -> pa.Table:
    # Look the frame libraries up rather than import them: polars is optional, and only a
    # library the caller already imported can have produced ``data``.
    pd = sys.modules.get("pandas")
    pl = sys.modules.get("polars")
    kind = type(data).__name__
    if pd is not None and isinstance(data, pd.DataFrame):
        return _from_pandas(data, needed)
    if pl is not None and isinstance(data, pl.DataFrame):
        return data.to_arrow()
    if pl is not None and isinstance(data, pl.LazyFrame):
        raise UnsupportedInputError("a polars LazyFrame must be collected first: pass "
                                    "lazy_frame.collect()")
    if ((pd is not None and isinstance(data, pd.Series))
            or (pl is not None and isinstance(data, pl.Series))):
        raise UnsupportedInputError(f"data is a {kind}, not a table: pass a DataFrame with "
                                    "the outcome, time, id and group columns")
    if hasattr(data, "__arrow_c_stream__"):
        try:
            return pa.table(data)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            # e.g. a ChunkedArray also exports a stream, but of a single column.
            raise UnsupportedInputError(
                f"data of type {kind} exports an Arrow stream that is not a table: {exc}"
            ) from exc
    if type(data).__module__.startswith("pyspark"):
        raise UnsupportedInputError(
            "a Spark DataFrame reached the in-memory engine; pass it to att_gt directly, "
            "which dispatches Spark DataFrames to the Spark engine"
        )
    raise UnsupportedInputError(
        f"data of type {kind} is not supported: pass a pandas or polars "
        "DataFrame, a pyarrow Table, or another Arrow-compatible table"
    )


def _from_pandas(frame: Any, needed: Sequence[str] | None) -> pa.Table:
    duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if duplicated:  # pyarrow would raise a bare ValueError
        raise DataStructureError(f"the data has duplicated column names: {duplicated}")
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        # pyarrow's message buries the column at fault in a tuple: find it.
        failed: dict[Any, Exception] = {}
        for column in frame.columns:
            try:
                pa.Table.from_pandas(frame[[column]], preserve_index=False)
            except (pa.ArrowException, TypeError, ValueError) as col_exc:
                failed[column] = col_exc
        if not failed:
            raise UnsupportedInputError(
                f"cannot read the DataFrame as an Arrow table: {exc}") from exc
        blocking = [c for c in failed if needed is None or str(c) in needed]
        if not blocking:  # only columns the estimator does not read: leave them out
            keep = [c for c in frame.columns if c not in failed]
            return pa.Table.from_pandas(frame[keep], preserve_index=False)
        column = blocking[0]
        reason = failed[column].args[0] if failed[column].args else failed[column]
        raise ColumnTypeError(
            f"column {str(column)!r} cannot be read as a typed column ({reason}); it "
            "probably mixes values of different types (e.g. numbers and text): convert "
            "or drop it"
        ) from exc


def numeric_column(table: pa.Table, column: str, role: str, *, allow_missing: bool = False
                   ) -> np.ndarray:
    """A numeric column (the planner has checked its type) as float64; missing values raise
    :class:`MissingValuesError` unless ``allow_missing``."""
    arr = table.column(column)
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    values = np.asarray(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False),
                        dtype=np.float64)
    if not allow_missing:
        check_no_missing(values, column, role)
    return values


def show_value(value: Any) -> str:
    """A value for a message: ``8001``, not numpy's ``np.int64(8001)`` (every engine)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


NUMERIC_LABELS = frozenset({"integer", "float", "decimal", "boolean"})
"""Column types (as :func:`type_label` names them) that the estimators read as numbers."""

KEY_LABELS = frozenset({"integer", "float", "boolean", "string", "binary"})
"""Column types that identifiers (unit ids, clusters) may have."""


def type_label(kind: Any) -> str:
    """An Arrow column type as messages name it on every engine.

    One vocabulary for all engines (see also :func:`pandas_type_label` and
    :func:`spark_type_label`): ``integer``, ``float``, ``decimal``, ``boolean``,
    ``string``, ``binary``, ``date``, ``timestamp``, ``duration``, ``time``, ``list``,
    ``struct``, ``map``, ``null``; a type outside it keeps Arrow's name.
    """
    t = pa.types
    if t.is_dictionary(kind):  # pandas categoricals: what the categories hold
        return type_label(kind.value_type)
    checks = (
        (t.is_integer, "integer"), (t.is_floating, "float"), (t.is_decimal, "decimal"),
        (t.is_boolean, "boolean"), (t.is_string, "string"), (t.is_large_string, "string"),
        (getattr(t, "is_string_view", lambda _: False), "string"), (t.is_binary, "binary"),
        (t.is_large_binary, "binary"), (t.is_date, "date"), (t.is_timestamp, "timestamp"),
        (t.is_duration, "duration"), (t.is_time, "time"), (t.is_list, "list"),
        (t.is_large_list, "list"), (t.is_struct, "struct"), (t.is_map, "map"),
        (t.is_null, "null"),
    )
    return next((label for check, label in checks if check(kind)), str(kind))


def pandas_type_label(dtype: Any) -> str:
    """A pandas (or Dask) column dtype in the vocabulary of :func:`type_label`."""
    import pandas as pd

    api = pd.api.types
    if isinstance(dtype, pd.CategoricalDtype):
        return pandas_type_label(dtype.categories.dtype)
    if isinstance(getattr(dtype, "pyarrow_dtype", None), pa.DataType):
        return type_label(dtype.pyarrow_dtype)
    checks = ((api.is_bool_dtype, "boolean"), (api.is_integer_dtype, "integer"),
              (api.is_float_dtype, "float"), (api.is_datetime64_any_dtype, "timestamp"),
              (api.is_timedelta64_dtype, "duration"), (api.is_string_dtype, "string"))
    return next((label for check, label in checks if check(dtype)), str(dtype))


_SPARK_LABELS = {
    "ByteType": "integer", "ShortType": "integer", "IntegerType": "integer",
    "LongType": "integer", "FloatType": "float", "DoubleType": "float",
    "DecimalType": "decimal", "BooleanType": "boolean", "StringType": "string",
    "VarcharType": "string", "CharType": "string", "BinaryType": "binary",
    "DateType": "date", "TimestampType": "timestamp", "TimestampNTZType": "timestamp",
    "DayTimeIntervalType": "duration", "ArrayType": "list", "StructType": "struct",
    "MapType": "map", "NullType": "null",
}


def spark_type_label(dtype: Any) -> str:
    """A Spark SQL data type in the vocabulary of :func:`type_label` (by class name, so
    that this module does not import pyspark)."""
    return _SPARK_LABELS.get(type(dtype).__name__) or dtype.simpleString()


def check_no_missing(values: np.ndarray, column: str, role: str) -> None:
    """Raise :class:`MissingValuesError` if a float column holds NaN (or infinities)."""
    if n_bad := int((~np.isfinite(values)).sum()):
        raise MissingValuesError(f"{role} column {column!r} has {n_bad} missing or non-finite "
                                 "value(s); drop or impute them first")


def key_column(table: pa.Table, column: str, role: str) -> np.ndarray:
    """An identifier column (ids, clusters) of a type that
    :func:`moderndid.core.multipliers.keys_from_values` hashes; float ids must be finite
    integers (hashed as int64: 1.5 and 1.0 must not both be ids)."""
    arr = table.column(column)
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    values = arr.to_numpy(zero_copy_only=False)
    if values.dtype.kind == "f":
        check_no_missing(values, column, role)
        if ((values != np.round(values)) | (np.abs(values) >= 2.0**63)).any():
            raise ColumnTypeError(f"{role} column {column!r} holds non-integer numbers: "
                                  "identifiers must be integers or strings")
    return np.asarray(values)
