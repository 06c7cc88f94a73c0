"""What every engine and estimator shares about a call's data: the column roles of the
call (:class:`DidSpec`) and the validated, prepared input (:class:`DidData`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from moderndid.errors import InvalidOptionError


@dataclass
class DidData:
    """The validated, partitioned input of an `att_gt` estimation."""

    kind: str  # "panel", "rc" or "unbalanced"
    periods: np.ndarray
    cohorts: np.ndarray
    n_units: int
    n_obs: int
    covariate_names: list[str]
    partitions: list[dict[str, np.ndarray]]
    clustered: bool
    x_time_varying: bool = False
    cohort_counts: dict[float, int] = field(default_factory=dict)


@dataclass
class DidSpec:
    """Column roles of an `att_gt` call."""

    yname: str
    tname: str
    idname: str | None
    gname: str
    xformla: str | None
    weightsname: str | None
    clustervars: list[str]
    panel: bool
    allow_unbalanced_panel: bool
    anticipation: float
    control_group: str = "nevertreated"
    pname: str | None = None  # eligibility (partition) column of triple differences


def column_roles(spec: DidSpec, covariates: list[str],
                 categorical: Sequence[str] = ()) -> list[tuple[str, str]]:
    """Every column a call reads, with the role named in error messages (all engines).

    ``covariates`` are the columns the covariate formula reads; those in ``categorical``
    feed its dummies and need not be numeric."""
    roles = [(spec.yname, "outcome (yname)"), (spec.tname, "time (tname)"),
             (spec.gname, "group (gname)")]
    if spec.idname is not None:
        roles.append((spec.idname, "unit id (idname)"))
    elif spec.panel:
        raise InvalidOptionError("idname is required for panel data (panel=True)")
    if spec.weightsname is not None:
        roles.append((spec.weightsname, "weights (weightsname)"))
    roles += [(c, "cluster (clustervars)") for c in spec.clustervars]
    if spec.pname is not None:
        roles.append((spec.pname, "partition (pname)"))
    return roles + [(c, "categorical covariate (xformla)" if c in categorical
                     else "covariate (xformla)") for c in covariates]


NUMERIC_ROLES = ("outcome (yname)", "time (tname)", "group (gname)", "weights (weightsname)",
                 "partition (pname)", "covariate (xformla)")
