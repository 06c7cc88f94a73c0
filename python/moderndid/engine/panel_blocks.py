"""One pass over a panel's long rows on the executors: checks, statistics and the unit table.

Pure numpy / pyarrow (no pyspark import), so everything here is tested without a JVM.

The engines shuffle the selected input columns by unit id and call :func:`build_blocks` on
each partition. It returns *block rows* (``BLOCK_SCHEMA``): up to ``BLOCK_UNITS`` unit-table
rows (:mod:`moderndid.engine.unit_table`) serialised as one Arrow IPC stream, next to the
statistics the driver validates the data and plans the fit from. Spark caches a few large
binary values per partition instead of millions of rows of array columns, which it would
convert element by element on every pass, and the input is read once.

Outcomes are laid out over the *partition's* periods; cohort recoding needs every
partition's periods and groups, so :func:`partition_from_blocks` applies it, with a
:class:`PanelLayout` from the driver, each time a pass reads the blocks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa

from moderndid.core.design import CovariateDesign, missing_count
from moderndid.engine.unit_table import (
    UNIT_SCHEMA,
    list_values,
    partition_from_arrays,
    units_from_rows,
)

BLOCK_UNITS = 131_072  # unit rows per block: a few MB, well under Arrow's 2 GB binary limit

BLOCK_SCHEMA = pa.schema([
    ("rows", pa.int64()),
    ("missing", pa.list_(pa.int64())),
    ("wmin", pa.float64()),
    ("wmax", pa.float64()),
    ("fractional", pa.list_(pa.int64())),
    ("max_abs", pa.list_(pa.float64())),
    ("xx", pa.list_(pa.float64())),
    ("periods", pa.list_(pa.float64())),
    ("histogram", pa.list_(pa.float64())),
    ("units", pa.int64()),
    ("flags", pa.int32()),
    ("xtv", pa.bool_()),
    ("payload", pa.binary()),
])


@dataclass(frozen=True)
class RowColumns:
    """The columns an engine selects from the input, by their internal names: ``checked``
    those whose missing values are counted, in the order of the user's columns (so the
    error names the same column on every engine); ``fractional`` the identifier columns of
    floating-point type, checked for non-integer values."""

    checked: tuple[str, ...]
    covariates: tuple[str, ...]
    clustered: bool
    fractional: tuple[str, ...]
    # a formula other than a plain sum: evaluated from the columns f0, f1, ... into x0, ...
    design: CovariateDesign | None = None


def with_terms(table: pa.Table, design: CovariateDesign, columns: list[str],
               names: list[str]) -> pa.Table:
    """``table`` with the covariates of ``design``, evaluated from its ``columns`` (the
    design's columns, in order), appended as the columns ``names``."""
    x = design.evaluate(table.select(columns).rename_columns(list(design.columns)))
    for j, name in enumerate(names):
        table = table.append_column(name, pa.array(x[:, j]))
    return table


def max_abs(values: np.ndarray) -> float:
    """The largest finite absolute value (0 when there is none)."""
    values = np.abs(values)
    values = values[np.isfinite(values)]
    return float(values.max()) if values.size else 0.0


def cross_products(x: np.ndarray) -> np.ndarray:
    """``X'X`` of the covariates ``x`` (rows) with an intercept first; non-finite values
    count as 0 (rows with them fail the missing-value check)."""
    x = np.column_stack([np.ones(x.shape[0]), np.where(np.isfinite(x), x, 0.0)])
    with np.errstate(over="ignore", invalid="ignore"):  # huge values: refused from max_abs
        return x.T @ x


def row_statistics(table: pa.Table, cols: RowColumns) -> dict[str, Any]:
    """Statistics of a partition's long rows (see :data:`BLOCK_SCHEMA`), whose formula
    covariates are evaluated."""
    def column(name: str) -> np.ndarray:
        return table.column(name).to_numpy(zero_copy_only=False)

    # 0 for columns other than floats: the magnitude check reads outcomes, weights and
    # covariates, which arrive as doubles
    largest = [max_abs(column(name)) if pa.types.is_floating(table.column(name).type) else 0.0
               for name in cols.checked]
    fractional = [int(np.sum(np.isfinite(v) & (v != np.floor(v))))
                  for v in map(column, cols.fractional)]
    xx: list[float] = []
    if cols.covariates:
        cross = cross_products(np.column_stack([column(name) for name in cols.covariates]))
        xx = cross[np.triu_indices(cross.shape[0])].tolist()
    w = column("w")
    w = w[np.isfinite(w)]
    return {
        "rows": table.num_rows,
        "missing": [missing_count(table.column(name)) for name in cols.checked],
        "wmin": float(w.min()) if w.size else np.inf,
        "wmax": float(w.max()) if w.size else -np.inf,
        "fractional": fractional,
        "max_abs": largest,
        "xx": xx,
    }


def _counted(keys: np.ndarray) -> list[float]:
    """Distinct rows of ``keys`` with their counts: flat (key..., count) tuples."""
    values, counts = np.unique(keys, axis=0, return_counts=True)
    return np.column_stack([values, counts]).ravel().tolist()


def build_blocks(table: pa.Table, cols: RowColumns,
                 block_units: int = BLOCK_UNITS) -> pa.RecordBatch:
    """Block rows of one partition holding every row of each of its units; with missing
    values or non-integer float identifiers (the driver raises from the statistics), a
    single row of statistics with an empty payload."""
    if cols.design is not None:  # a formula other than a plain sum: f0, f1, ... -> x0, ...
        table = with_terms(table, cols.design, [f"f{i}" for i in range(len(cols.design.columns))],
                           list(cols.covariates))
    stats = row_statistics(table, cols)
    if any(stats["missing"]) or any(stats["fractional"]):
        return pa.RecordBatch.from_pylist([{**stats, "periods": [], "histogram": [], "units": 0,
                                            "flags": 0, "xtv": False, "payload": b""}],
                                          schema=BLOCK_SCHEMA)
    empty_stats = row_statistics(table.slice(0, 0), cols)  # of the later blocks
    periods = np.unique(table.column("t").to_numpy(zero_copy_only=False).astype(np.float64))
    units = units_from_rows(table, periods, list(cols.covariates), cols.clustered)
    rows = []
    for start in range(0, units.num_rows, block_units):
        block = units.slice(start, block_units)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, UNIT_SCHEMA) as writer:
            writer.write_batch(block)
        # units by (raw group, eligibility, periods observed)
        histogram = _counted(np.column_stack([
            block.column("G").to_numpy(), block.column("Q").to_numpy(),
            block.column("nobs").to_numpy().astype(np.float64)]))
        rows.append({**(stats if start == 0 else empty_stats), "periods": periods.tolist(),
                     "histogram": histogram, "units": block.num_rows,
                     "flags": int(np.bitwise_or.reduce(block.column("flags").to_numpy())),
                     "xtv": bool(block.column("xtv").to_numpy(zero_copy_only=False).any()),
                     "payload": sink.getvalue().to_pybytes()})
    return pa.RecordBatch.from_pylist(rows, schema=BLOCK_SCHEMA)


@dataclass(frozen=True)
class PanelLayout:
    """What every pass needs to turn block rows into kernel partitions.

    ``recode`` maps each raw group value to the cohort the estimator uses (``inf`` = never
    treated); units whose raw group is absent are dropped (cohorts treated in the first
    period). ``periods`` are the periods kept; observations in other periods are dropped.
    ``complete_only`` keeps only units observed in every kept period (balancing)."""

    periods: np.ndarray
    recode: dict[float, float]
    complete_only: bool
    kind: str
    n_covariates: int
    clustered: bool


def _unit_arrays(units: pa.Table | pa.RecordBatch, local: np.ndarray, layout: PanelLayout
                 ) -> dict[str, np.ndarray]:
    """One block's units over the layout's periods, recoded and filtered."""
    n = units.num_rows
    T_local, T, k = local.size, layout.periods.size, layout.n_covariates
    y_local = list_values(units.column("y"))[1].reshape(n, T_local)
    y, positions = y_local, None
    if not np.array_equal(local, layout.periods):
        pos = np.searchsorted(layout.periods, local)
        kept = (pos < T) & (layout.periods[np.minimum(pos, T - 1)] == local)
        positions = (np.flatnonzero(kept), pos[kept])
        y = np.full((n, T), np.nan)
        y[:, positions[1]] = y_local[:, positions[0]]
    x_offsets, x_values = list_values(units.column("x"))
    lengths = np.diff(x_offsets)
    if (lengths == k).all():
        x = x_values.reshape(n, 1, k)
    else:
        x = np.zeros((n, T, k))
        for i in range(n):
            values = x_values[x_offsets[i]: x_offsets[i + 1]]
            if values.size == k:
                x[i] = values[None, :]
            elif positions is None:
                x[i] = values.reshape(T_local, k)
            else:
                x[i, positions[1]] = values.reshape(T_local, k)[positions[0]]
    raw = units.column("G").to_numpy()
    distinct, inverse = np.unique(raw, return_inverse=True)
    G = np.array([layout.recode.get(float(g), np.nan) for g in distinct])[inverse]
    nobs = (~np.isnan(y)).sum(axis=1)
    keep = ~np.isnan(G) & (nobs > 0)
    if layout.complete_only:
        keep &= nobs == T
    arrays = {
        "G": G,
        "w": units.column("w").to_numpy(),
        "key": units.column("key").to_numpy().view(np.uint64),
        "cluster": units.column("cluster").to_numpy().view(np.uint64),
        "Q": units.column("Q").to_numpy(),
        "y": y,
        "x": x,
    }
    if keep.all():
        return arrays
    return {name: value[keep] for name, value in arrays.items()}


def _unit_batches(blocks: pa.Table) -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
    """The unit-table batches of block rows, each with its partition's periods."""
    for payload, periods in zip(blocks.column("payload").chunks,
                                blocks.column("periods").chunks, strict=True):
        for value, local in zip(payload, periods, strict=True):
            buffer = value.as_buffer()
            if buffer is None or buffer.size == 0:
                continue
            local_periods = np.asarray(local.values.to_numpy(), dtype=np.float64)
            for batch in pa.ipc.open_stream(buffer):
                yield batch, local_periods


def partition_from_blocks(blocks: pa.Table, layout: PanelLayout) -> dict[str, np.ndarray]:
    """Kernel partition (see :mod:`moderndid.did.preprocess`) from a partition's blocks."""
    parts = [_unit_arrays(batch, local, layout) for batch, local in _unit_batches(blocks)]
    T, k = layout.periods.size, layout.n_covariates
    if not parts:
        arrays = {"G": np.empty(0), "w": np.empty(0), "key": np.empty(0, dtype=np.uint64),
                  "cluster": np.empty(0, dtype=np.uint64), "Q": np.empty(0),
                  "y": np.empty((0, T)), "x": np.empty((0, 1, k))}
    elif len(parts) == 1:
        arrays = parts[0]
    else:
        # time-varying covariates in one block and not in another: broadcast to (n, T, k)
        if len({p["x"].shape[1] for p in parts}) > 1:
            for p in parts:
                p["x"] = np.broadcast_to(p["x"], (p["x"].shape[0], T, k))
        arrays = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    return partition_from_arrays(arrays, layout.kind, layout.clustered)


def unit_histogram(blocks: pa.Table, layout: PanelLayout) -> list[float]:
    """Units by (cohort, eligibility, periods observed) after recoding and cutting periods:
    flat (G, q, nobs, count) tuples. Only needed when periods are cut off (no never-treated
    units), where the block histograms of raw groups do not give the complete units."""
    parts: list[np.ndarray] = []
    unbalanced = replace(layout, complete_only=False, kind="unbalanced")
    for batch, local in _unit_batches(blocks):
        a = _unit_arrays(batch, local, unbalanced)
        nobs = (~np.isnan(a["y"])).sum(axis=1).astype(np.float64)
        parts.append(np.column_stack([a["G"], a["Q"], nobs]))
    return _counted(np.vstack(parts)) if parts else []
