"""Callaway & Sant'Anna staggered difference-in-differences: `att_gt` and `aggte`."""

from moderndid.did.att_gt import att_gt
from moderndid.did.results import AGGTEResult, MPResult, to_arrow, to_df

__all__ = ["AGGTEResult", "MPResult", "att_gt", "to_arrow", "to_df"]
