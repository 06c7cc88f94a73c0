"""The group-time cells of `att_gt`: periods compared, comparison cohorts, covariate period.

Follows R `did` (Callaway & Sant'Anna 2021; `compute.att_gt` in did 2.3): with a varying
base period the first period gets no cell and pre-treatment cells compare consecutive
periods; post-treatment cells, and every cell under a universal base period, compare with
period ``g - anticipation - 1``. Panel covariates come from the earlier of the two periods.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Cell:
    """One ATT(g, t) to estimate."""

    group: float
    time: float
    t_idx: int
    b_idx: int
    x_idx: int
    controls: tuple[float, ...]  # comparison cohorts (``inf`` = never treated)
    is_base: bool  # universal base period cell: ATT(g, g-1-anticipation) = 0 by construction
    # Triple differences compare subgroups by eligibility Q (the ``partition`` column):
    # treated = cohort ``group`` with Q == treat_q, comparison = ``controls`` with
    # Q == control_q. None (difference-in-differences): Q is not used.
    treat_q: int | None = None
    control_q: int | None = None


def build_cells(periods: np.ndarray, cohorts: np.ndarray, control_group: str,
                anticipation: float, base_period: str) -> list[Cell]:
    """List the cells in R `did`'s order (cohort-major, period-minor)."""
    all_cohorts = [*map(float, cohorts), float("inf")]
    first = 1 if base_period == "varying" else 0
    cells = []
    for g in map(float, cohorts):
        base_g = int(np.flatnonzero(periods + anticipation < g)[-1])
        for ti in range(first, periods.size):
            t = float(periods[ti])
            bi = ti - 1 if base_period == "varying" and t < g else base_g
            if control_group == "nevertreated":
                controls: tuple[float, ...] = (float("inf"),)
            else:
                threshold = max(t, float(periods[bi])) + anticipation
                controls = tuple(c for c in all_cohorts if c > threshold and c != g)
            cells.append(Cell(group=g, time=t, t_idx=ti, b_idx=bi,
                              x_idx=min(ti, bi), controls=controls, is_base=(ti == bi)))
    return cells
