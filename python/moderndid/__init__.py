"""moderndid: staggered difference-in-differences in memory, on Spark and on Dask.

``import moderndid as did`` gives Callaway & Sant'Anna's :func:`att_gt` with :func:`aggte`,
result classes, and data sets / generators.
"""

from moderndid._version import __version__
from moderndid.data import gen_did_scalable, load_mpdta, load_mpdta_arrow
from moderndid.ddd import (
    DDDAggResult,
    DDDMultiPeriodRCResult,
    DDDMultiPeriodResult,
    DDDPanelResult,
    DDDRCResult,
    agg_ddd,
    ddd,
    gen_ddd_2periods,
    gen_ddd_mult_periods,
    gen_ddd_scalable,
)
from moderndid.did.aggte import aggte
from moderndid.did.att_gt import att_gt
from moderndid.did.results import AGGTEResult, MPResult, to_arrow, to_df
from moderndid.errors import (
    ColumnNotFoundError,
    ColumnTypeError,
    ConvergenceError,
    DataStructureError,
    InvalidOptionError,
    MissingValuesError,
    ModernDiDError,
    SingularDesignError,
    UnsupportedInputError,
)
from moderndid.plots import plot_agg, plot_event_study, plot_gt

__all__ = [
    "AGGTEResult", "ColumnNotFoundError", "ColumnTypeError", "ConvergenceError",
    "DDDAggResult", "DDDMultiPeriodRCResult", "DDDMultiPeriodResult", "DDDPanelResult",
    "DDDRCResult", "DataStructureError", "InvalidOptionError", "MPResult",
    "MissingValuesError", "ModernDiDError", "SingularDesignError", "UnsupportedInputError",
    "__version__", "agg_ddd", "aggte", "att_gt", "ddd", "gen_ddd_2periods",
    "gen_ddd_mult_periods", "gen_ddd_scalable", "gen_did_scalable", "load_mpdta",
    "load_mpdta_arrow", "plot_agg", "plot_event_study", "plot_gt", "to_arrow", "to_df",
]
