"""The ``mpdta`` county panel shipped with the R package ``did``.

The file ``files/mpdta.csv`` is a verbatim CSV export of ``data/mpdta.rda`` from the R package
``did`` (Callaway & Sant'Anna, GPL-3); see ``files/README.md`` for the attribution.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    import pandas as pd

__all__ = ["load_mpdta", "load_mpdta_arrow"]

# The columns in their returned order, with their types.
_SCHEMA = {"year": "int64", "countyreal": "int64", "lpop": "float64", "lemp": "float64",
           "first.treat": "int64", "treat": "int64"}


def _import_pandas() -> Any:
    """Import pandas lazily (it is an optional dependency)."""
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "moderndid.data needs pandas to return a DataFrame; install it with "
            "`pip install 'moderndid[pandas]'` (or `pip install pandas`), or use "
            "load_mpdta_arrow() for a pyarrow.Table."
        ) from exc
    return pd


def _mpdta_resource() -> Traversable:
    return resources.files("moderndid.data").joinpath("files", "mpdta.csv")


def load_mpdta() -> pd.DataFrame:
    """Load the ``mpdta`` minimum-wage county panel as a pandas DataFrame.

    A balanced panel of 500 U.S. counties observed yearly from 2003 to 2007 (2,500 rows), used
    as the running example of Callaway & Sant'Anna (2021). Counties are treated when their
    state raised the minimum wage; treatment is staggered (first treated in 2004, 2006 or
    2007) and 309 counties are never treated.

    Returns
    -------
    pandas.DataFrame
        Columns (in this order):

        ``year`` : int64
            Calendar year, 2003-2007.
        ``countyreal`` : int64
            County identifier.
        ``lpop`` : float64
            Log county population (time-invariant).
        ``lemp`` : float64
            Log teen employment (the outcome).
        ``first.treat`` : int64
            Year the county was first treated; ``0`` for never-treated counties.
        ``treat`` : int64
            ``1`` if the county is ever treated, else ``0``.

    Raises
    ------
    ImportError
        If pandas is not installed (use :func:`load_mpdta_arrow` instead).

    See Also
    --------
    load_mpdta_arrow : The same data as a :class:`pyarrow.Table`.

    Notes
    -----
    The data are copied from ``data/mpdta.rda`` of the R package ``did`` (Callaway &
    Sant'Anna, GPL-3). Floating-point values are parsed with round-trip precision, so they
    equal the R values bit for bit.

    References
    ----------
    Callaway, B. and Sant'Anna, P. H. C. (2021). Difference-in-differences with multiple time
    periods. *Journal of Econometrics*, 225(2), 200-230.

    Examples
    --------
    >>> from moderndid.data import load_mpdta
    >>> df = load_mpdta()
    >>> df.shape
    (2500, 6)
    """
    pd = _import_pandas()
    # pandas < 3 needs round_trip for bit-exact floats; pandas 3 parses exactly by default and
    # deprecates the argument.
    major = int(pd.__version__.split(".", 1)[0])
    precision = {"float_precision": "round_trip"} if major < 3 else {}
    with _mpdta_resource().open("rb") as fh:
        df = pd.read_csv(fh, dtype=_SCHEMA, **precision)
    return df[list(_SCHEMA)]


def load_mpdta_arrow() -> pa.Table:
    """Load the ``mpdta`` minimum-wage county panel as a :class:`pyarrow.Table`.

    Same content, column names and types as :func:`load_mpdta` (``int64`` for ``year``,
    ``countyreal``, ``first.treat`` and ``treat``; ``float64`` for ``lpop`` and ``lemp``), but
    without needing pandas.

    Returns
    -------
    pyarrow.Table
        2,500 rows and the six columns ``year, countyreal, lpop, lemp, first.treat, treat``.

    See Also
    --------
    load_mpdta : The same data as a pandas DataFrame.

    Examples
    --------
    >>> from moderndid.data import load_mpdta_arrow
    >>> tbl = load_mpdta_arrow()
    >>> tbl.num_rows
    2500
    """
    from pyarrow import csv

    types = {c: pa.type_for_alias(t) for c, t in _SCHEMA.items()}
    with _mpdta_resource().open("rb") as fh:
        table = csv.read_csv(fh, convert_options=csv.ConvertOptions(column_types=types))
    return table.select(list(_SCHEMA))
