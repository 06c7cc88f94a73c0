"""Validate a Dask DataFrame for `att_gt` / `ddd` and build its unit-table blocks on the
workers, with the partition kernel the Spark engine uses.

Panels: one shuffle by unit id; each shuffled partition becomes blocks of units
(:func:`moderndid.engine.panel_blocks.build_blocks`), persisted on the workers. Repeated
cross sections: no shuffle; one statistics task per input partition, then the kept rows
persisted as Arrow tables. Only statistics reach the client, never unit rows.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from typing import Any

import dask
import numpy as np
import pandas as pd
import pyarrow as pa

from moderndid.core.design import MAX_LEVELS, CovariateDesign, missing_count
from moderndid.core.frames import pandas_type_label
from moderndid.dask.executor import DaskExecutor, DaskScheduler
from moderndid.engine.panel_blocks import (
    BLOCK_SCHEMA,
    PanelLayout,
    RowColumns,
    build_blocks,
    cross_products,
    max_abs,
    partition_from_blocks,
    unit_histogram,
)
from moderndid.engine.panel_plan import (
    add_histogram,
    flag_checks,
    keeps_type,
    partition_count,
    plan_covariates,
    plan_rc,
    rc_metadata,
    row_columns,
    source_columns,
)
from moderndid.engine.protocol import CohortPlan, Planner, Prepared
from moderndid.engine.spec import NUMERIC_ROLES, DidSpec
from moderndid.engine.unit_table import FLAG_DUPLICATE

logger = logging.getLogger("moderndid")


def prepare_dask(ddf: Any, spec: DidSpec, n_partitions: int | None, planner: Planner,
                 scheduler: DaskScheduler) -> Prepared:
    """Validate ``ddf`` and build the persisted unit-table blocks (panels) or row tables
    (repeated cross sections), every computation on ``scheduler``."""
    columns = list(ddf.columns)
    dtypes = ddf.dtypes
    design, roles = plan_covariates(
        spec, _arrow_schema(ddf),
        lambda roles: planner.check_columns(roles, columns,
                                            lambda c: pandas_type_label(dtypes[c])),
        lambda categorical: _distinct_rows(ddf, categorical, scheduler))
    sources = source_columns(spec, design)
    needed = list(dict.fromkeys(c for c in sources.values() if c is not None))
    if not spec.panel:
        return _prepare_rc(ddf, spec, n_partitions, planner, scheduler, design, roles,
                           sources, needed)
    assert spec.idname is not None
    float_columns = {c for c in columns if pd.api.types.is_float_dtype(dtypes[c])}
    cols, ordered = row_columns(spec, design, roles, float_columns)

    n_parts = partition_count(n_partitions, lambda: int(scheduler.compute(ddf.shape[0])[0]),
                              ddf.npartitions)

    start = time.perf_counter()
    shuffled = ddf[needed].shuffle(on=spec.idname, npartitions=n_parts)
    build = dask.delayed(_build, pure=True)
    blocks = scheduler.persist([build(part, sources, cols) for part in shuffled.to_delayed()])
    infos = scheduler.compute(*[dask.delayed(_info)(b) for b in blocks])
    info = [row for rows in infos for row in rows]
    logger.info("att_gt: unit table: %.2f s", time.perf_counter() - start)

    def count_units(layout: PanelLayout) -> dict[tuple[float, float, int], int]:
        return add_histogram({}, *scheduler.compute(
            *[dask.delayed(unit_histogram)(b, layout) for b in blocks]))

    plan = planner.plan_panel(info, spec, design.covariates, ordered, cols, count_units,
                              lambda flags: _raise_flag(flags, ddf, spec, scheduler, planner))
    executor = DaskExecutor(blocks, functools.partial(partition_from_blocks,
                                                      layout=plan.layout), scheduler)
    return Prepared(plan.meta, executor, executor.release, plan.two_period, plan.subgroups)


def _prepare_rc(ddf: Any, spec: DidSpec, n_partitions: int | None, planner: Planner,
                scheduler: DaskScheduler, design: CovariateDesign,
                roles: list[tuple[str, str]], sources: dict[str, str | None],
                needed: list[str]) -> Prepared:
    """Repeated cross sections: one statistics task per input partition (no shuffle), the
    planner's decisions, then the kept rows persisted as Arrow tables. Without ``idname``
    the multiplier key is the row's position among the kept rows in the input's order, as
    in memory, so the bootstrap does not depend on the partitioning."""
    covariates = design.covariates
    start = time.perf_counter()
    stats = scheduler.compute(*[dask.delayed(_rc_statistics)(p, spec, design, roles)
                                for p in ddf[needed].to_delayed()])
    if design.spec is not None:  # the evaluated terms are checked after the columns
        roles = roles + [(term, "covariate (xformla) term") for term in covariates]
    float_ids = [c for c in ([spec.idname] if spec.idname else []) + spec.clustervars
                 if pd.api.types.is_float_dtype(ddf.dtypes[c])]
    rows = sum(s["rows"] for s in stats)
    weights = [s for s in stats if s["rows"]]
    planner.check_statistics(
        spec, roles, rows, np.sum([s["missing"] for s in stats], axis=0).tolist(),
        min((s["wmin"] for s in weights), default=1.0),
        max((s["wmax"] for s in weights), default=1.0),
        {c: sum(s["fractional"].get(c, 0) for s in stats) for c in float_ids},
        np.sum([s["xx"] for s in stats], axis=0),
        covariates, np.max([s["max_abs"] for s in stats], axis=0).tolist())
    all_periods = np.unique(np.concatenate([s["periods"] for s in stats]))
    two_period, group_map, plan, labels, periods = plan_rc(
        planner, spec, all_periods, np.unique(np.concatenate([s["cohorts"] for s in stats])),
        set(np.concatenate([s["partition"] for s in stats]).tolist()))

    n_parts = partition_count(n_partitions, lambda: rows, ddf.npartitions)
    kept = ddf[needed]  # in n_parts partitions, in the input's row order (no shuffle)
    if n_parts != kept.npartitions:
        kept = kept.repartition(npartitions=n_parts)
    row_rows = dask.delayed(_rc_rows, pure=True)
    tables = scheduler.persist([
        row_rows(p, sources, group_map, float(all_periods[-1]), plan, spec.anticipation,
                 design) for p in kept.to_delayed()])
    summaries = scheduler.compute(*[dask.delayed(_rc_summary)(t, labels) for t in tables])
    if spec.idname is None:
        # Each table's first key is the number of kept rows before it (input order).
        offsets = np.concatenate([[0], np.cumsum([s["rows"] for s in summaries])[:-1]])
        tables = scheduler.persist([dask.delayed(_with_rowkey, pure=True)(t, int(o))
                                    for t, o in zip(tables, offsets, strict=True)])
    logger.info("att_gt: row tables: %.2f s", time.perf_counter() - start)

    counts: Counter[float] = Counter()
    subgroups = Counter({(g, q): 0 for g in labels for q in (0.0, 1.0)} if spec.pname else {})
    for summary in summaries:
        counts.update(summary["counts"])
        subgroups.update(summary["subgroups"])
    meta, to_partition = rc_metadata(planner, spec, periods, plan, labels, counts, covariates)
    executor = DaskExecutor(tables, to_partition, scheduler)
    return Prepared(meta, executor, executor.release, two_period, dict(subgroups))


def _missing(values: pd.Series) -> int:
    """Missing values of a column; in numeric columns infinities count as missing."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(
            values.dtype):
        return int((~np.isfinite(_floats(values))).sum())
    return int(values.isna().sum())


def _floats(values: pd.Series) -> np.ndarray:
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _rc_statistics(pdf: pd.DataFrame, spec: DidSpec, design: CovariateDesign,
                   roles: list[tuple[str, str]]) -> dict[str, Any]:
    """The column statistics of one input partition (what Spark's aggregation gathers)."""
    x = _covariates(pdf, design)
    terms = [missing_count(pa.array(x[:, j])) for j in range(x.shape[1])] if design.spec else []
    out: dict[str, Any] = {
        "rows": len(pdf),
        "missing": [_missing(pdf[c]) for c, _ in roles] + terms,
        "wmin": 1.0, "wmax": 1.0, "fractional": {},
        "periods": np.unique(_floats(pdf[spec.tname])),
        "cohorts": np.unique(_floats(pdf[spec.gname])),
        "partition": np.unique(_floats(pdf[spec.pname])) if spec.pname else np.empty(0),
        "xx": cross_products(x),  # read only with covariates
        # numeric roles only (the planner reads outcome, weights and covariates)
        "max_abs": [max_abs(_floats(pdf[c])) if role in NUMERIC_ROLES else 0.0
                    for c, role in roles] + [max_abs(x[:, j]) for j in range(len(terms))],
    }
    if spec.weightsname and len(pdf):
        w = _floats(pdf[spec.weightsname])
        out["wmin"], out["wmax"] = float(np.min(w)), float(np.max(w))
    for c in ([spec.idname] if spec.idname else []) + spec.clustervars:
        if pd.api.types.is_float_dtype(pdf[c].dtype):
            v = _floats(pdf[c])
            out["fractional"][c] = int((v != np.floor(v)).sum())
    return out


def _covariates(pdf: pd.DataFrame, design: CovariateDesign) -> np.ndarray:
    """The design's covariates (intercept left out) of a partition's rows."""
    return design.evaluate(pa.Table.from_pandas(pdf[list(design.columns)],
                                                preserve_index=False))


def _rc_rows(pdf: pd.DataFrame, sources: dict[str, str | None], group_map: dict[float, float],
             last_period: float, plan: CohortPlan, anticipation: float,
             design: CovariateDesign) -> pa.Table:
    """One input partition -> the kept rows in internal columns, cohorts recoded as the
    in-memory path does (``inf`` = never treated; ``last_period`` is that of every row)."""
    t = _floats(pdf[sources["t"]])
    g = _floats(pdf[sources["G"]])
    for raw, first_treated in group_map.items():
        g = np.where(g == raw, first_treated, g)
    never = (g == 0) | (g > last_period + anticipation) | np.isin(g, plan.to_never)
    g = np.where(never, np.inf, g)
    keep = ~np.isin(g, plan.dropped)
    if plan.period_cutoff is not None:
        keep &= t < plan.period_cutoff
    arrays: dict[str, pa.Array] = {"t": pa.array(t[keep]), "G": pa.array(g[keep])}
    if design.spec is not None:
        x = _covariates(pdf, design)[keep]
        arrays.update({f"x{j}": pa.array(x[:, j]) for j in range(x.shape[1])})
    rest = {name: column for name, column in sources.items()  # f<i>: evaluated into x<j>
            if name not in ("t", "G") and not name.startswith("f")}
    return pa.table({**arrays, **_arrays(pdf[keep], rest)})


def _rc_summary(table: pa.Table, labels: list[float]) -> dict[str, Any]:
    """Rows per cohort and per (cohort, eligibility) of one row table."""
    G = table.column("G").to_numpy()
    Q = table.column("Q").to_numpy() if "Q" in table.column_names else None
    return {
        "rows": table.num_rows,
        "counts": {g: int((G == g).sum()) for g in labels},
        "subgroups": {} if Q is None else {(g, q): int(((G == g) & (Q == q)).sum())
                                           for g in labels for q in (0.0, 1.0)},
    }


def _with_rowkey(table: pa.Table, offset: int) -> pa.Table:
    return table.append_column("rowkey", pa.array(
        np.arange(offset, offset + table.num_rows, dtype=np.int64)))


def _build(pdf: pd.DataFrame, sources: dict[str, str | None], cols: RowColumns) -> pa.Table:
    """One shuffled partition -> block rows (none for an empty partition)."""
    if len(pdf) == 0:
        return BLOCK_SCHEMA.empty_table()
    return pa.Table.from_batches([build_blocks(pa.table(_arrays(pdf, sources)), cols)])


def _arrays(pdf: pd.DataFrame, sources: dict[str, str | None]) -> dict[str, pa.Array]:
    """The internal columns of a partition's rows (ones for a column that is None)."""
    return {name: pa.array(np.ones(len(pdf))) if column is None
            else pa.array(pdf[column], from_pandas=True) if keeps_type(name)
            else pa.array(_floats(pdf[column])) for name, column in sources.items()}


def _info(blocks: pa.Table) -> list[dict[str, Any]]:
    return blocks.drop_columns(["payload"]).to_pylist()


def _arrow_schema(ddf: Any) -> pa.Schema:
    """The Arrow schema a partition of ``ddf`` converts to: the schema the in-memory path
    sees for the same pandas frame (Dask's non-empty sample of its metadata)."""
    return pa.Schema.from_pandas(ddf._meta_nonempty, preserve_index=False).remove_metadata()


def _distinct_rows(ddf: Any, columns: list[str], scheduler: DaskScheduler) -> pa.Table:
    """The distinct rows, without missing values, of a formula's categorical columns."""
    rows = scheduler.compute(ddf[columns].dropna().drop_duplicates())[0]
    table = pa.Table.from_pandas(rows.head(MAX_LEVELS + 1), preserve_index=False)
    return table.cast(_arrow_schema(ddf[columns]))


def _raise_flag(flags: int, ddf: Any, spec: DidSpec, scheduler: DaskScheduler,
                planner: Planner) -> None:
    """Turn a problem flag into the planner's typed error naming the smallest offending
    unit (an error path only)."""
    assert spec.idname is not None
    if flags & FLAG_DUPLICATE:
        sizes = scheduler.compute(ddf.groupby([spec.idname, spec.tname]).size())[0]
        unit, period = sizes[sizes > 1].sort_index().index[0]
        raise planner.duplicate_row_error(unit, period, spec)
    for bit, column, what in flag_checks(spec):
        if flags & bit and column is not None:
            distinct = scheduler.compute(ddf.groupby(spec.idname)[column].nunique())[0]
            raise planner.varying_error(what, column,
                                        distinct[distinct > 1].sort_index().index[0])
