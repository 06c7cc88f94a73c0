"""Reading user data (pandas, polars, pyarrow, anything Arrow-compatible) into numpy columns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from moderndid.errors import (
    ColumnNotFoundError,
    ColumnTypeError,
    MissingValuesError,
    UnsupportedInputError,
)


def to_arrow_table(data: Any) -> pa.Table:
    """Convert a pandas / polars DataFrame, pyarrow Table or Arrow stream to a pyarrow Table.

    Parameters
    ----------
    data : object
        A pandas or polars DataFrame, a pyarrow Table / RecordBatch, or any object exporting
        the Arrow PyCapsule stream interface (``__arrow_c_stream__``).

    Returns
    -------
    pyarrow.Table
    """
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__
    if module.startswith("pandas"):
        return pa.Table.from_pandas(data, preserve_index=False)
    if module.startswith("polars"):
        return data.to_arrow()
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data)
    if module.startswith("pyspark"):
        raise UnsupportedInputError(
            "a Spark DataFrame reached the in-memory engine; pass it to att_gt directly, "
            "which dispatches Spark DataFrames to the Spark engine"
        )
    raise UnsupportedInputError(
        f"data of type {type(data).__name__} is not supported: pass a pandas or polars "
        "DataFrame, a pyarrow Table, or another Arrow-compatible table"
    )


def require_columns(table: pa.Table, columns: Sequence[tuple[str, str]]) -> None:
    """Raise :class:`ColumnNotFoundError` for the first ``(column, role)`` not in the table."""
    names = table.column_names
    for column, role in columns:
        if not isinstance(column, str):
            raise ColumnTypeError(f"{role} must be a column name (str), got {column!r}")
        if column not in names:
            raise ColumnNotFoundError(column, role, names)


def numeric_column(table: pa.Table, column: str, role: str, *, allow_missing: bool = False
                   ) -> np.ndarray:
    """Return a numeric column as float64, with typed errors for text or missing values."""
    arr = table.column(column)
    kind = arr.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)
            or pa.types.is_boolean(kind) or pa.types.is_decimal(kind)):
        raise ColumnTypeError(
            f"{role} column {column!r} must be numeric, but has type {arr.type}"
        )
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(kind)
    values = np.asarray(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False),
                        dtype=np.float64)
    if not allow_missing:
        check_no_missing(values, column, role)
    return values


def check_no_missing(values: np.ndarray, column: str, role: str) -> None:
    """Raise :class:`MissingValuesError` if a float column holds NaN (or infinities)."""
    bad = ~np.isfinite(values)
    if bad.any():
        n_bad = int(bad.sum())
        raise MissingValuesError(
            f"{role} column {column!r} has {n_bad} missing or non-finite value(s) "
            f"(first at row {int(np.flatnonzero(bad)[0])}); drop or impute them first"
        )


def key_column(table: pa.Table, column: str, role: str) -> np.ndarray:
    """Return an identifier column (ids, clusters) as a numpy array, refusing nulls."""
    arr = table.column(column)
    if arr.null_count:
        raise MissingValuesError(f"{role} column {column!r} has {arr.null_count} missing value(s)")
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    values = arr.to_numpy(zero_copy_only=False)
    if values.dtype.kind == "f":
        check_no_missing(values, column, role)
    return np.asarray(values)
