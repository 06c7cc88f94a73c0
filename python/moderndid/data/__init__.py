"""Example and simulated data sets.

* :func:`load_mpdta` / :func:`load_mpdta_arrow` - the ``mpdta`` county panel of the R package
  ``did`` (Callaway & Sant'Anna), as a pandas DataFrame or a pyarrow Table.
* :func:`gen_did_scalable` - a fast, vectorised staggered-adoption simulator with a known
  ATT(g, t) and doubly-robust misspecification scenarios (Sant'Anna & Zhao 2020 style).
* :func:`gen_ddd_2periods`, :func:`gen_ddd_mult_periods`, :func:`gen_ddd_scalable` -
  triple-differences designs with a known ATT (also available from ``moderndid.ddd``).
"""

from moderndid.data.ddd_generators import gen_ddd_2periods, gen_ddd_mult_periods, gen_ddd_scalable
from moderndid.data.generators import gen_did_scalable
from moderndid.data.mpdta import load_mpdta, load_mpdta_arrow

__all__ = [
    "gen_ddd_2periods", "gen_ddd_mult_periods", "gen_ddd_scalable", "gen_did_scalable",
    "load_mpdta", "load_mpdta_arrow",
]
