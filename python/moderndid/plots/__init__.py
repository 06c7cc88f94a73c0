"""Plots of ``att_gt`` and ``aggte`` results (needs matplotlib: ``moderndid[plots]``).

* :func:`plot_event_study` - event study of one or several ``dynamic`` aggregations;
* :func:`plot_gt` - ATT(g, t) with intervals, one panel per cohort;
* :func:`plot_agg` - ``group`` / ``calendar`` aggregations with the overall ATT.

Every function returns a :class:`matplotlib.figure.Figure` that is not registered with
pyplot (so nothing is shown or kept open implicitly); restyle it through its axes and
save it with ``fig.savefig(...)``. matplotlib is imported only when a function is called.
"""

from moderndid.plots.aggregate import plot_agg
from moderndid.plots.event_study import plot_event_study
from moderndid.plots.group_time import plot_gt

__all__ = ["plot_agg", "plot_event_study", "plot_gt"]
