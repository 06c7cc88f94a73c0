"""Arrow layout of the unit table of the distributed engines (one row per unit, built on
the executors / workers from the long rows of a partition hash-partitioned by unit id), and
conversions to kernel partitions.

Pure numpy / pyarrow (no pyspark import), so the conversions are tested without a JVM.
Spark and Dask persist this table in blocks of Arrow IPC streams
(:mod:`moderndid.engine.panel_blocks`), read back by ``partition_from_arrays``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from moderndid.core.multipliers import keys_from_values

FLAG_DUPLICATE = 1
FLAG_GROUP_VARIES = 2
FLAG_WEIGHT_VARIES = 4
FLAG_CLUSTER_VARIES = 8
FLAG_PARTITION_VARIES = 16

UNIT_SCHEMA = pa.schema([
    ("key", pa.int64()),  # bits of the uint64 multiplier key of the unit
    ("G", pa.float64()),  # group column as given (recoded when the blocks are read)
    ("w", pa.float64()),  # sampling weight
    ("cluster", pa.int64()),  # bits of the cluster key (0 without clustering)
    ("Q", pa.float64()),  # eligibility of triple differences (0 when not used)
    ("nobs", pa.int32()),  # periods observed
    ("flags", pa.int32()),  # data problems found (FLAG_* bits)
    ("xtv", pa.bool_()),  # whether a covariate varies over time for this unit
    ("y", pa.list_(pa.float64())),  # outcome per period (NaN = not observed)
    ("x", pa.list_(pa.float64())),  # covariates: k values (time-invariant) or T * k
])


def units_from_rows(table: pa.Table, periods: np.ndarray, covariates: list[str],
                    has_cluster: bool) -> pa.RecordBatch:
    """Collapse the long rows of complete units into unit-table rows: ``table`` has columns
    ``id, t, y, G, w, cluster (optional), Q (optional), <covariates>``, and holds every row
    of each unit it contains."""
    n_rows = table.num_rows
    T, k = periods.size, len(covariates)
    if n_rows == 0:
        return pa.RecordBatch.from_pylist([], schema=UNIT_SCHEMA)
    ids = table.column("id").to_numpy(zero_copy_only=False)
    uid, unit = np.unique(ids, return_inverse=True)
    n = uid.size
    tpos = np.searchsorted(periods, _floats(table, "t"))
    col = {name: _floats(table, name) for name in ("y", "G", "w")}
    cluster = (keys_from_values(table.column("cluster").to_numpy(zero_copy_only=False))
               .view(np.int64) if has_cluster else np.zeros(n_rows, dtype=np.int64))
    Q = _floats(table, "Q") if "Q" in table.column_names else np.zeros(n_rows)
    x = np.empty((n_rows, k))
    for j, name in enumerate(covariates):
        x[:, j] = table.column(name).to_numpy(zero_copy_only=False)

    # One sort by (unit, period) cell; a balanced panel without duplicates then fills the
    # (units, periods) arrays in sorted order, with no scatter (measured on 1M rows: 0.9 s
    # -> 0.4 s for this function).
    cell = unit.astype(np.int64) * T + tpos
    order = np.argsort(cell)
    cell_s = cell[order]
    unit_s = unit[order]
    counts = np.bincount(unit, minlength=n)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    flags = np.zeros(n, dtype=np.int32)
    dup = np.zeros(n_rows, dtype=bool)
    dup[1:] = cell_s[1:] == cell_s[:-1]
    flags[np.unique(unit_s[dup])] |= FLAG_DUPLICATE
    for values, bit in ((col["G"], FLAG_GROUP_VARIES), (col["w"], FLAG_WEIGHT_VARIES),
                        (cluster, FLAG_CLUSTER_VARIES), (Q, FLAG_PARTITION_VARIES)):
        sorted_values = values[order]
        differs = sorted_values != sorted_values[starts][unit_s]
        flags[np.unique(unit_s[differs])] |= bit

    x_sorted = x[order]
    xfirst = x_sorted[starts]
    if n_rows == n * T and not dup.any():  # every cell exactly once, in cell order
        y = col["y"][order].reshape(n, T)
        xs = x_sorted.reshape(n, T, k)
        observed = np.ones((n, T), dtype=bool)
    else:
        y_flat, x_flat, seen = np.full(n * T, np.nan), np.zeros((n * T, k)), np.zeros(n * T, bool)
        y_flat[cell_s], x_flat[cell_s], seen[cell_s] = col["y"][order], x_sorted, True
        y, xs, observed = y_flat.reshape(n, T), x_flat.reshape(n, T, k), seen.reshape(n, T)
    varies = ((xs != xfirst[:, None, :]) & observed[:, :, None]).any(axis=(1, 2))
    if varies.any():
        x_array = pa.array([xs[i].ravel() if varies[i] else xfirst[i] for i in range(n)],
                           type=pa.list_(pa.float64()))
    else:
        x_array = pa.ListArray.from_arrays(np.arange(n + 1, dtype=np.int32) * k,
                                           pa.array(xfirst.ravel()))
    return pa.RecordBatch.from_arrays([
        pa.array(keys_from_values(uid).view(np.int64)),
        pa.array(col["G"][order][starts]),
        pa.array(col["w"][order][starts]),
        pa.array(cluster[order][starts]),
        pa.array(Q[order][starts]),
        pa.array(counts.astype(np.int32)),
        pa.array(flags),
        pa.array(varies),
        pa.ListArray.from_arrays(np.arange(n + 1, dtype=np.int32) * T, pa.array(y.ravel())),
        x_array,
    ], schema=UNIT_SCHEMA)


def list_values(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Zero-based offsets and the values of a list column (slices respected)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    offsets = column.offsets.to_numpy()
    values = column.values.to_numpy(zero_copy_only=False)
    return offsets - offsets[0], values[offsets[0]: offsets[-1]]


def partition_from_arrays(arrays: dict[str, np.ndarray], kind: str,
                          clustered: bool) -> dict[str, np.ndarray]:
    """Kernel partition from per-unit arrays ``G, w, key, cluster, Q`` (n,), ``y`` (n, T)
    and ``x`` (n, 1 or T, k) without the intercept column, which is added here."""
    G, w, key, cluster, Q, y = (arrays[name] for name in ("G", "w", "key", "cluster", "Q", "y"))
    x = arrays["x"]
    x = np.concatenate([np.ones((*x.shape[:2], 1)), x], axis=2)  # intercept first
    if kind == "panel":
        order = np.argsort(G, kind="stable")
        part = {"y": y, "G": G, "w": w, "x": x, "key": key, "Q": Q}
        if clustered:
            part["cluster"] = cluster
        return {name: values[order] for name, values in part.items()}
    # Unbalanced panel: observations are the observed (unit, period) entries.
    unit, tidx = np.nonzero(~np.isnan(y))
    order = np.argsort(G[unit], kind="stable")
    part = {"y": y[unit, tidx], "tidx": tidx.astype(np.int64), "G": G[unit], "w": w[unit],
            "x": x[unit, tidx if x.shape[1] > 1 else 0][:, None, :], "unit": unit, "Q": Q[unit]}
    part = {name: values[order] for name, values in part.items()}
    part.update(unit_G=G, unit_w=w, unit_key=key)
    if clustered:
        part["unit_cluster"] = cluster
    return part


def partition_from_rows(table: pa.Table, periods: np.ndarray, covariates: list[str],
                        clustered: bool, has_id: bool) -> dict[str, np.ndarray]:
    """Kernel partition of repeated cross sections from raw rows (no unit table needed)."""
    G = _floats(table, "G")
    x = np.ones((table.num_rows, 1, len(covariates) + 1))
    for j, name in enumerate(covariates):
        x[:, 0, j + 1] = table.column(name).to_numpy(zero_copy_only=False)
    if has_id:
        key = keys_from_values(table.column("id").to_numpy(zero_copy_only=False))
    else:
        key = table.column("rowkey").to_numpy().view(np.uint64)
    order = np.argsort(G, kind="stable")
    tidx = np.searchsorted(periods, _floats(table, "t")).astype(np.int64)
    part = {"y": _floats(table, "y"), "tidx": tidx,
            "G": G, "w": _floats(table, "w"), "x": x, "key": key}
    if clustered:
        part["cluster"] = keys_from_values(table.column("cluster").to_numpy(zero_copy_only=False))
    if "Q" in table.column_names:
        part["Q"] = _floats(table, "Q")
    return {name: values[order] for name, values in part.items()}


def _floats(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
