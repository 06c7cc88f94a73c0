"""Validate a Dask DataFrame for `att_gt` / `ddd` and build its unit-table blocks on the
workers, with the partition kernel the Spark engine uses.

One shuffle by unit id (``DataFrame.shuffle``); each shuffled partition becomes blocks of
units (:func:`moderndid.engine.panel_blocks.build_blocks`), persisted on the workers. What
reaches the client: one row of statistics per block, never unit rows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from moderndid.engine.panel_blocks import (
    BLOCK_SCHEMA,
    PanelLayout,
    RowColumns,
    build_blocks,
    partition_from_blocks,
    unit_histogram,
)
from moderndid.engine.panel_plan import (
    add_histogram,
    flag_checks,
    formula_covariates,
    partition_count,
    row_columns,
)
from moderndid.engine.protocol import Planner
from moderndid.engine.spec import DidData, DidSpec, column_roles
from moderndid.engine.unit_table import (
    FLAG_DUPLICATE,
)
from moderndid.errors import (
    DataStructureError,
    UnsupportedInputError,
)

logger = logging.getLogger("moderndid")


@dataclass
class DaskDidData:
    """A prepared Dask input: metadata for the client, persisted blocks for the passes."""

    meta: DidData
    blocks: list[Any]  # persisted dask.delayed objects, one pyarrow.RecordBatch each
    layout: PanelLayout
    two_period: bool = False
    subgroups: dict[tuple[float, float], int] = field(default_factory=dict)

    def to_partition(self, blocks: pa.RecordBatch) -> dict:
        """Kernel partition of one persisted block batch."""
        return partition_from_blocks(pa.Table.from_batches([blocks]), self.layout)


def prepare_dask(ddf: Any, spec: DidSpec, n_partitions: int | None,
                 planner: Planner) -> DaskDidData:
    """Validate ``ddf`` and build the persisted unit-table blocks (panels only)."""
    import dask

    if not spec.panel:
        raise UnsupportedInputError(
            "repeated cross sections (panel=False) are not supported on Dask yet; use the "
            "in-memory or Spark engine"
        )
    assert spec.idname is not None
    covariates = formula_covariates(spec.xformla, "Dask")
    roles = column_roles(spec, covariates)
    columns = list(ddf.columns)
    dtypes = ddf.dtypes
    planner.check_columns(roles, columns, lambda c: (
        pd.api.types.is_numeric_dtype(dtypes[c]) or pd.api.types.is_bool_dtype(dtypes[c]),
        str(dtypes[c])))
    float_columns = {c for c in columns if pd.api.types.is_float_dtype(dtypes[c])}
    cols, ordered = row_columns(spec, covariates, roles, float_columns)
    sources = _sources(spec, covariates)
    needed = list(dict.fromkeys(c for c in sources.values() if c is not None))

    n_parts = partition_count(n_partitions, lambda: int(ddf.shape[0].compute()),
                              ddf.npartitions)

    start = time.perf_counter()
    shuffled = ddf[needed].shuffle(on=spec.idname, npartitions=n_parts)
    build = dask.delayed(_build, pure=True)
    blocks = list(dask.persist(*[build(part, sources, cols) for part in shuffled.to_delayed()]))
    infos = dask.compute(*[dask.delayed(_info)(b) for b in blocks])
    info = [row for rows in infos for row in rows]
    logger.info("att_gt: unit table: %.2f s", time.perf_counter() - start)

    def count_units(layout: PanelLayout) -> dict[tuple[float, float, int], int]:
        flat = dask.compute(*[dask.delayed(_histogram)(b, layout) for b in blocks])
        out: dict[tuple[float, float, int], int] = {}
        for values in flat:
            add_histogram(out, values)
        return out

    plan = planner.plan_panel(info, spec, covariates, ordered, cols, count_units,
                      lambda flags: _raise_flag(flags, ddf, spec))
    return DaskDidData(plan.meta, blocks, plan.layout, plan.two_period, plan.subgroups)


def _sources(spec: DidSpec, covariates: list[str]) -> dict[str, str | None]:
    """Internal column -> user column (``w`` is None without weights)."""
    sources: dict[str, str | None] = {
        "id": spec.idname, "t": spec.tname, "y": spec.yname, "G": spec.gname,
        "w": spec.weightsname,
    }
    sources.update({f"x{j}": c for j, c in enumerate(covariates)})
    if spec.clustervars:
        sources["cluster"] = spec.clustervars[0]
    if spec.pname:
        sources["Q"] = spec.pname
    return sources


def _as_float(values: pd.Series) -> pa.Array:
    return pa.array(values.to_numpy(dtype=np.float64, na_value=np.nan))


def _build(pdf: pd.DataFrame, sources: dict[str, str | None],
           cols: RowColumns) -> pa.RecordBatch:
    """One shuffled partition -> block rows (an empty batch for an empty partition)."""
    if len(pdf) == 0:
        return pa.RecordBatch.from_pylist([], schema=BLOCK_SCHEMA)
    arrays: dict[str, pa.Array] = {}
    for name, column in sources.items():
        if column is None:
            arrays[name] = pa.array(np.ones(len(pdf)))
        elif name in ("id", "cluster"):
            arrays[name] = pa.array(pdf[column], from_pandas=True)
        else:
            arrays[name] = _as_float(pdf[column])
    return build_blocks(pa.table(arrays), cols)


def _info(blocks: pa.RecordBatch) -> list[dict[str, Any]]:
    return blocks.drop_columns(["payload"]).to_pylist()


def _histogram(blocks: pa.RecordBatch, layout: PanelLayout) -> list[float]:
    return unit_histogram(pa.Table.from_batches([blocks]), layout)


def _raise_flag(flags: int, ddf: Any, spec: DidSpec) -> None:
    """Turn a problem flag into a typed error naming an offending unit (an error path only)."""
    assert spec.idname is not None
    if flags & FLAG_DUPLICATE:
        sizes = ddf.groupby([spec.idname, spec.tname]).size().compute()
        unit, period = sizes[sizes > 1].index[0]
        raise DataStructureError(
            f"unit {_show(unit)} has more than one row in period {period}: panel data need one "
            f"row per unit and period (columns {spec.idname!r}, {spec.tname!r})"
        )
    for bit, column, what in flag_checks(spec):
        if flags & bit and column is not None:
            distinct = ddf.groupby(spec.idname)[column].nunique().compute()
            unit = distinct[distinct > 1].index[0]
            raise DataStructureError(
                f"{what} column {column!r} varies over time within unit {_show(unit)}; it must "
                "be constant for each unit in panel data"
            )


def _show(value: Any) -> str:
    """A value for a message: ``8001``, not numpy's ``np.int64(8001)`` (as every engine)."""
    return repr(value.item() if isinstance(value, np.generic) else value)
