"""Triple differences (Ortiz-Villavicencio & Sant'Anna 2025): `ddd` and `agg_ddd`."""

from moderndid.data.ddd_generators import gen_ddd_2periods, gen_ddd_mult_periods, gen_ddd_scalable
from moderndid.ddd.agg_ddd import agg_ddd
from moderndid.ddd.estimator import ddd
from moderndid.ddd.results import (
    DDDAggResult,
    DDDMultiPeriodRCResult,
    DDDMultiPeriodResult,
    DDDPanelResult,
    DDDRCResult,
)

__all__ = [
    "DDDAggResult",
    "DDDMultiPeriodRCResult",
    "DDDMultiPeriodResult",
    "DDDPanelResult",
    "DDDRCResult",
    "agg_ddd",
    "ddd",
    "gen_ddd_2periods",
    "gen_ddd_mult_periods",
    "gen_ddd_scalable",
]
