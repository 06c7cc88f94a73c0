"""Triple differences as combinations of difference-in-differences comparisons.

Ortiz-Villavicencio & Sant'Anna (2025): with S the treated-state (cohort) indicator and Q
eligibility, DDD(g, t) = DiD(g&Q=1 vs g&Q=0) + DiD(g&Q=1 vs C&Q=1) - DiD(g&Q=1 vs C&Q=0),
each term a two-group DR/IPW/OR DiD estimated on its own two subgroups. With several
not-yet-treated comparison cohorts, one DDD per cohort is combined with the GMM weights
``Omega^{-1} 1 / (1' Omega^{-1} 1)``, Omega the covariance of their influence functions
(R `triplediff`).

Every reported cell is a linear combination of comparison cells, so the influence-function
basis of the comparisons (and its Gram matrix) transforms linearly into the reported one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from moderndid.did.cells import Cell
from moderndid.did.fit import Moments


@dataclass
class DDDPlan:
    """Comparisons to estimate and how reported cells combine them."""

    comparisons: list[Cell]
    # Per reported cell: one entry per comparison cohort, each a list of (sign, comparison).
    recipes: list[list[list[tuple[float, int]]]]


def plan_ddd(cells: list[Cell]) -> DDDPlan:
    """The comparisons behind each DDD(g, t) cell (``cells`` from ``build_cells``)."""
    index: dict[Cell, int] = {}

    def comparison(cell: Cell) -> int:
        return index.setdefault(cell, len(index))

    recipes: list[list[list[tuple[float, int]]]] = []
    for cell in cells:
        if cell.is_base:
            recipes.append([])
            continue
        within = comparison(replace(cell, controls=(cell.group,), treat_q=1, control_q=0))
        per_cohort = []
        for cohort in cell.controls:
            eligible = comparison(replace(cell, controls=(cohort,), treat_q=1, control_q=1))
            ineligible = comparison(replace(cell, controls=(cohort,), treat_q=1, control_q=0))
            per_cohort.append([(1.0, within), (1.0, eligible), (-1.0, ineligible)])
        recipes.append(per_cohort)
    comparisons = sorted(index, key=index.__getitem__)
    return DDDPlan(comparisons=comparisons, recipes=recipes)


def combine(plan: DDDPlan, moments: Moments) -> tuple[np.ndarray, list[int]]:
    """The ``(reported, comparisons)`` weight matrix, and the pooled cells: those with
    several comparison cohorts, whose DDDs (influence functions ``phi_c``, centred
    covariance ``Omega`` from the comparisons' ``moments``) get the GMM weights
    ``Omega^{-1} 1 / (1' Omega^{-1} 1)``."""
    n_comp = len(plan.comparisons)
    gram = moments.gram[:n_comp, :n_comp]
    zsum = moments.zsum[:n_comp]
    matrix = np.zeros((len(plan.recipes), n_comp))
    pooled: list[int] = []
    for r, per_cohort in enumerate(plan.recipes):
        if not per_cohort:
            continue
        rows = np.zeros((len(per_cohort), n_comp))
        for j, recipe in enumerate(per_cohort):
            for sign, k in recipe:
                rows[j, k] += sign
        if len(per_cohort) == 1:
            matrix[r] = rows[0]
            continue
        sums = rows @ zsum
        centred = rows @ gram @ rows.T - np.outer(sums, sums) / moments.n_units
        inv = np.linalg.pinv(centred)
        weights = inv.sum(axis=1) / inv.sum()
        matrix[r] = weights @ rows
        pooled.append(r)
    return matrix, pooled


def transform_moments(moments: Moments, matrix: np.ndarray) -> Moments:
    """Moments of the reported cells: ``z -> (L phi, cohort terms, 1)``."""
    n_comp = matrix.shape[1]
    rest = moments.gram.shape[0] - n_comp
    T = np.zeros((matrix.shape[0] + rest, moments.gram.shape[0]))
    T[: matrix.shape[0], :n_comp] = matrix
    T[matrix.shape[0]:, n_comp:] = np.eye(rest)
    return replace(moments, gram=T @ moments.gram @ T.T, zsum=T @ moments.zsum,
                   boot=None if moments.boot is None else moments.boot @ T.T,
                   n_cells=matrix.shape[0])
