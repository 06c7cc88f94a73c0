"""Partition kernels of `att_gt`: pure functions ``(partition arrays, state) -> Partial``.

A fit runs these passes, each over every partition:

1. ``summary_pass``: per cell, group counts and the outcome regressions' normal equations;
2. ``logit_pass`` (repeated): the propensity-score Newton step sums of every unfinished
   logit at once;
3. ``cell_sums_pass``: the ratio-term sums, their derivatives and the logit Hessians;
4. ``moments_pass``: each unit's influence-function row ``z_i`` (one entry per cell, the
   cohort-weight terms, and 1), reduced to its Gram matrix, per-cluster sums and
   multiplier-bootstrap sums, so no unit-level data leave the partition.

Kernels import neither pyspark nor dask; the array module is numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from moderndid.core.multipliers import MAMMEN_HIGH, MAMMEN_LOW, mammen_high_mask
from moderndid.did.cells import Cell
from moderndid.did.estimators import (
    TRIM_LEVEL,
    CellData,
    local_logit,
    logit_loglik,
    nuisances,
    ols_models,
    pscore,
    terms,
)
from moderndid.engine.partial import Partial, reduce_by_key

BOOTSTRAP_BLOCK = 128  # draws generated at once, bounds the (rows x draws) mask in memory
LOCAL_LOGIT_MIN_PER_CLASS = 10  # units of each class per coefficient for a local fit
MOMENT_BLOCK_ROWS = 65_536  # at most this many rows' influence functions are held at once
# ... and at most this many values of their rows z (32 MiB), so the memory of a moments
# block does not grow with the number of cells (cohorts x periods)
MOMENT_BLOCK_VALUES = 1 << 22


@dataclass
class FitState:
    """What the driver sends to the kernels (small and picklable)."""

    kind: str  # "panel", "rc", "unbalanced"
    est_method: str
    cells: list[Cell]
    cohorts: np.ndarray
    logit_keys: list[Any] = field(default_factory=list)  # one per cell (None: no logit)
    gammas: dict[Any, np.ndarray] = field(default_factory=dict)  # logit key -> coefficients
    betas: list[dict[str, np.ndarray]] = field(default_factory=list)  # per cell, OLS coefs
    active_logits: list[Any] = field(default_factory=list)
    finals: list[Any] = field(default_factory=list)  # per cell: CellFinal or None (NA/base)
    clustered: bool = False
    boot: bool = False
    biters: int = 0
    seed: int = 0
    collect_influence: bool = False
    trim_level: float = TRIM_LEVEL
    # The executor reduces the bootstrap itself (Scala on Spark): the moments pass hands it
    # the units' (key, z) blocks instead of computing the draws in Python. Set by the driver
    # for the moments pass only.
    native_bootstrap: bool = False

    def for_pass(self) -> FitState:
        """The state one pass sends to the kernels: a copy whose containers the driver no
        longer changes, so a lazy executor (Dask builds its graph before running it) or a
        retried task sees the coefficients of its own pass, never later ones."""
        return replace(
            self,
            cells=list(self.cells),
            logit_keys=list(self.logit_keys),
            gammas={key: np.array(value) for key, value in self.gammas.items()},
            betas=[{name: np.array(v) for name, v in b.items()} for b in self.betas],
            active_logits=list(self.active_logits),
            finals=list(self.finals),
        )

    def params(self, c: int) -> dict[str, np.ndarray]:
        """Nuisance parameters of cell ``c``."""
        out = dict(self.betas[c])
        key = self.logit_keys[c]
        if key is not None and key in self.gammas:
            out["ps"] = self.gammas[key]
        return out


@dataclass
class CellFinal:
    """Per-cell constants of the influence function, computed by the driver."""

    signs: np.ndarray
    ratios: np.ndarray  # R_k
    denominators: np.ndarray  # B_k
    projections: dict[str, np.ndarray]  # nuisance -> H^{-1} g
    params: dict[str, np.ndarray]


def logit_key(kind: str, cell: Cell, time_varying_x: bool) -> tuple:
    """Cells whose logits are fitted on the same rows and covariates share one fit."""
    subgroups = (cell.group, cell.controls, cell.treat_q, cell.control_q)
    if kind == "panel":
        return (*subgroups, cell.x_idx if time_varying_x else 0)
    return (*subgroups, min(cell.t_idx, cell.b_idx), max(cell.t_idx, cell.b_idx))


def _gather(values: np.ndarray, ranges: list[tuple[int, int]]) -> np.ndarray:
    """Concatenate row ranges (slices, so no index arrays are built)."""
    if len(ranges) == 1:
        return values[ranges[0][0]:ranges[0][1]]
    return np.concatenate([values[lo:hi] for lo, hi in ranges] or [values[:0]])


def cell_data(part: dict[str, np.ndarray], cell: Cell) -> tuple[np.ndarray, CellData]:
    """Gather one cell's arrays from a partition (indices of its rows, and the arrays)."""
    x, G = part["x"], part["G"]
    # row ranges of the cell's cohorts (rows are sorted by G)
    bounds = [(int(np.searchsorted(G, cohort, side="left")),
               int(np.searchsorted(G, cohort, side="right")))
              for cohort in dict.fromkeys((cell.group, *cell.controls))]
    ranges = [(lo, hi) for lo, hi in bounds if hi > lo]
    idx = (np.concatenate([np.arange(lo, hi) for lo, hi in ranges]) if ranges
           else np.empty(0, dtype=np.int64))
    g = G[idx]
    treated = g == cell.group
    keep = None  # rows of the gathered cohorts in the cell's periods and subgroups
    if "tidx" in part:
        tidx = part["tidx"][idx]
        keep = (tidx == cell.t_idx) | (tidx == cell.b_idx)
    if cell.treat_q is not None:
        q = part["Q"][idx]
        treated &= q == cell.treat_q
        ok = treated | (np.isin(g, cell.controls) & (q == cell.control_q))
        keep = ok if keep is None else keep & ok
    D = treated.astype(np.float64)
    if "tidx" in part:
        assert keep is not None
        idx = idx[keep]
        return idx, CellData(y=part["y"][idx], D=D[keep], w=part["w"][idx], x=x[idx, 0, :],
                             post=(part["tidx"][idx] == cell.t_idx).astype(np.float64))
    # Balanced panels: cohorts are contiguous row ranges, gathered by slicing.
    xi = cell.x_idx if x.shape[1] > 1 else 0
    y = part["y"]
    data = CellData(
        y=_gather(y[:, cell.t_idx], ranges) - _gather(y[:, cell.b_idx], ranges),
        D=D,
        w=_gather(part["w"], ranges),
        x=_gather(x[:, xi, :], ranges),
    )
    if keep is not None:
        idx = idx[keep]
        data = CellData(y=data.y[keep], D=data.D[keep], w=data.w[keep], x=data.x[keep])
    return idx, data


def summary_pass(part: dict[str, np.ndarray], state: FitState) -> Partial:
    """Group counts per cell and normal equations of every outcome regression."""
    sums: dict[str, np.ndarray] = {}
    models = ols_models(state.est_method, state.kind == "panel")
    local_fits: set = set()
    for c, cell in enumerate(state.cells):
        if cell.is_base:
            continue
        _, data = cell_data(part, cell)
        groups = [data.D == 1, data.D == 0]  # treated, comparison (and periods t, base)
        if data.post is not None:
            groups = [d & (data.post == p) for d in groups for p in (1, 0)]
        sums[f"n/{c}"] = np.array([np.sum(m) for m in groups], dtype=np.float64)
        sums[f"wd/{c}"] = np.array([np.sum(data.w * data.D), np.sum(data.w)])
        key = state.logit_keys[c]
        if key is not None and key not in local_fits:
            local_fits.add(key)
            # This partition's own logit fit: its information-weighted average over
            # partitions starts the global Newton iterations a few steps from the end.
            k = data.x.shape[1]
            n_treated = int(np.sum(data.D == 1))
            # a partition with few units of either class gives a noisy, near-separated fit
            enough = min(n_treated, data.D.size - n_treated) >= LOCAL_LOGIT_MIN_PER_CLASS * k
            fit = local_logit(data.x, data.D, data.w) if enough else None
            gamma, hess = fit if fit is not None else (np.zeros(k), np.zeros((k, k)))
            sums[f"lH/{key!r}"] = hess
            sums[f"lHg/{key!r}"] = hess @ gamma
            sums[f"lok/{key!r}"] = np.array([1.0 if fit is not None else 0.0])
            sums[f"lparts/{key!r}"] = np.array([1.0 if data.D.size else 0.0])
        for model in models:
            wm = np.where(data.ols_mask(model), data.w, 0.0)
            xw = data.x * wm[:, None]
            sums[f"xx/{c}/{model.name}"] = xw.T @ data.x
            sums[f"xy/{c}/{model.name}"] = xw.T @ data.y
    return Partial(sums=sums)


def logit_pass(part: dict[str, np.ndarray], state: FitState) -> Partial:
    """Newton-step sums (information matrix, score) for each unfinished logit."""
    sums: dict[str, np.ndarray] = {}
    done: set = set()
    for c, cell in enumerate(state.cells):
        key = state.logit_keys[c]
        if key is None or key not in state.active_logits or key in done:
            continue
        done.add(key)
        _, data = cell_data(part, cell)
        p = pscore(data.x, state.gammas[key])
        ww = data.w * p * (1.0 - p)
        name = repr(key)
        sums[f"H/{name}"] = (data.x * ww[:, None]).T @ data.x
        sums[f"s/{name}"] = data.x.T @ (data.w * (data.D - p))
        sums[f"ll/{name}"] = np.array([logit_loglik(data.x, data.D, data.w, state.gammas[key])])
    return Partial(sums=sums)


def logit_and_cell_sums_pass(part: dict[str, np.ndarray], state: FitState) -> Partial:
    """A logit iteration and the estimator sums at the same coefficients, in one pass."""
    logit = logit_pass(part, state)
    cell = cell_sums_pass(part, state)
    return Partial(sums={**logit.sums, **cell.sums}, maxima=cell.maxima)


def cell_sums_pass(part: dict[str, np.ndarray], state: FitState) -> Partial:
    """Ratio-term sums, their derivative sums and nuisance Hessians for every cell."""
    sums: dict[str, np.ndarray] = {}
    maxima: dict[str, np.ndarray] = {}
    for c, cell in enumerate(state.cells):
        if cell.is_base or state.finals[c] is False:
            continue
        _, data = cell_data(part, cell)
        params = state.params(c)
        cell_terms = terms(state.est_method, data, params, state.trim_level)
        sums[f"A/{c}"] = np.array([t.a.sum() for t in cell_terms])
        sums[f"B/{c}"] = np.array([t.b.sum() for t in cell_terms])
        for k, t in enumerate(cell_terms):
            for name, coef in t.da.items():
                sums[f"da/{c}/{k}/{name}"] = data.x.T @ coef
            for name, coef in t.db.items():
                sums[f"db/{c}/{k}/{name}"] = data.x.T @ coef
        for name, _, weights in nuisances(state.est_method, data, params):
            sums[f"H/{c}/{name}"] = (data.x * weights[:, None]).T @ data.x
        if "ps" in params:
            # -inf (the identity of max) when the partition has none of the cell's rows, so
            # every partition returns the same names and shapes
            top = pscore(data.x, params["ps"]).max() if data.y.size else -np.inf
            maxima[f"pmax/{c}"] = np.array([top])
    return Partial(sums=sums, maxima=maxima)


def cell_influence(state: FitState, c: int, data: CellData, final: CellFinal) -> np.ndarray:
    """Influence function (sum scale) of cell ``c`` on the cell's rows of one partition."""
    cell_terms = terms(state.est_method, data, final.params, state.trim_level)
    phi = np.zeros(data.y.size)
    for k, t in enumerate(cell_terms):
        phi += final.signs[k] * (t.a - final.ratios[k] * t.b) / final.denominators[k]
    scores = {name: score for name, score, _ in nuisances(state.est_method, data, final.params)}
    for name, proj in final.projections.items():
        phi += scores[name] * (data.x @ proj)
    return phi


def influence_rows(part: dict[str, np.ndarray], state: FitState) -> np.ndarray:
    """The partition's ``(units, cells)`` influence-function matrix on the sum scale."""
    n_units = part["unit_G" if state.kind == "unbalanced" else "G"].shape[0]
    phi = np.zeros((n_units, len(state.cells)))
    for c, cell in enumerate(state.cells):
        final = state.finals[c]
        if not isinstance(final, CellFinal):
            continue
        idx, data = cell_data(part, cell)
        values = cell_influence(state, c, data, final)
        if state.kind == "unbalanced":
            phi[:, c] = np.bincount(part["unit"][idx], weights=values, minlength=n_units)
        else:
            phi[idx, c] = values
    return phi


def moments_pass(part: dict[str, np.ndarray], state: FitState) -> Partial:
    """Gram matrix, cluster sums and bootstrap sums of the units' rows ``z_i``.

    ``z_i = (phi_i for every cell, w_i 1{G_i = g} for every treated cohort, 1)``: every
    `aggte` aggregation (including the correction for estimated cohort shares) is a linear
    combination of it, so these sums are all inference needs. Large partitions are processed
    in blocks of rows, which bounds the memory of the ``(rows, cells)`` matrix.
    """
    n_rows = part["G"].shape[0]
    width = len(state.cells) + state.cohorts.size + 1
    rows = max(1024, min(MOMENT_BLOCK_ROWS, MOMENT_BLOCK_VALUES // width))
    if state.kind == "unbalanced" or n_rows <= rows:
        return _moments_block(part, state)
    result = Partial()
    for lo in range(0, n_rows, rows):
        block = {name: arr[lo: lo + rows] for name, arr in part.items()}
        result = result.combine(_moments_block(block, state))
    return result


def _moments_block(part: dict[str, np.ndarray], state: FitState) -> Partial:
    phi = influence_rows(part, state)
    # per-unit columns (units = observations in cross sections)
    unit = "unit_" if state.kind == "unbalanced" else ""
    G, w, key = part[unit + "G"], part[unit + "w"], part[unit + "key"]
    z = np.empty((G.shape[0], phi.shape[1] + state.cohorts.size + 1))
    z[:, : phi.shape[1]] = phi
    z[:, phi.shape[1] : -1] = w[:, None] * (G[:, None] == state.cohorts[None, :])
    z[:, -1] = 1.0
    sums: dict[str, np.ndarray] = {"zsum": z.sum(axis=0)}
    keyed: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    bootstrap_blocks: list[tuple[np.ndarray, np.ndarray]] = []
    if state.clustered:
        keyed["cluster"] = reduce_by_key(part[unit + "cluster"], z)
    else:
        sums["gram"] = z.T @ z
        if state.boot and state.native_bootstrap:
            bootstrap_blocks.append((key, z))
        elif state.boot:
            sums["boot"] = bootstrap_sums(state.seed, key, z, state.biters)
    if state.collect_influence:
        # Position of each unit in id order (row order for cross sections), so the
        # materialised influence function lines up with the sorted unit ids.
        keyed["influence"] = (part[unit + "pos"].astype(np.uint64), phi)
    return Partial(sums=sums, keyed=keyed, bootstrap_blocks=bootstrap_blocks)


def bootstrap_sums(seed: int, keys: np.ndarray, z: np.ndarray, biters: int) -> np.ndarray:
    """``sum_i v_ib z_i`` for draws b = 0..biters-1 with counter-based Mammen multipliers,
    as ``low * sum_i z_i + (high - low) * sum_{i drawn high} z_i``."""
    total = z.sum(axis=0)
    out = np.empty((biters, z.shape[1]))
    for start in range(0, biters, BOOTSTRAP_BLOCK):
        stop = min(start + BOOTSTRAP_BLOCK, biters)
        high = mammen_high_mask(seed, keys, start, stop).astype(np.float64)
        out[start:stop] = MAMMEN_LOW * total + (MAMMEN_HIGH - MAMMEN_LOW) * (high.T @ z)
    return out
