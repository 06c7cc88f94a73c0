"""Printed and HTML reports of results: tables, key/value sections, numbers, bands.

Every result class of moderndid prints through this module, so all summaries share one
layout (a heavy-ruled title, blocks of box-drawn tables, the significance note, key/value
sections, the reference) and one way of writing numbers. Nothing here knows an estimator
or an engine: the result classes decide what goes in, this module how it looks.
"""

from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import numpy as np

from moderndid.errors import InvalidOptionError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "HEAVY_RULE",
    "LIGHT_RULE",
    "SIGNIF_NOTE",
    "Block",
    "Report",
    "ResultBase",
    "Section",
    "Table",
    "as_array",
    "band_cells",
    "bands",
    "fmt_label",
    "fmt_num",
    "is_missing",
    "level_label",
    "normal_quantile",
    "param",
]

_T = TypeVar("_T", bound="ResultBase")

HEAVY_RULE = "=" * 78
LIGHT_RULE = "-" * 78
SIGNIF_NOTE = "Signif. codes: '*' confidence band does not cover 0"

Section = tuple[str, list[tuple[str, str]]]
"""A titled list of ``(key, value)`` lines of a summary."""


def as_array(x: Any, dtype: Any = None) -> Any:
    """``x`` as a host numpy array of ``dtype`` (a CuPy array is copied to the host);
    ``None`` passes through."""
    if x is None:
        return None
    if hasattr(x, "__cuda_array_interface__") and hasattr(x, "get"):
        x = x.get()  # cupy -> host
    return np.asarray(x, dtype=dtype)


def param(params: Mapping[str, Any], *names: str, default: Any = None) -> Any:
    """The value in the call settings ``params`` of the first of ``names`` present (the
    spellings of one setting: moderndid's first, then ModernDiD 0.4.1's), else ``default``."""
    for name in names:
        if name in params:
            return params[name]
    return default


def is_missing(x: Any) -> bool:
    """Whether ``x`` is ``None`` or a NaN number."""
    if x is None:
        return True
    try:
        return bool(math.isnan(float(x)))
    except (TypeError, ValueError):
        return False


def fmt_num(x: Any, digits: int = 4) -> str:
    """Write a number in fixed point with ``digits`` decimals, ``NA`` when missing (never
    ``-0.0000``)."""
    if is_missing(x):
        return "NA"
    s = f"{float(x):.{digits}f}"
    return s[1:] if s.startswith("-") and float(s) == 0.0 else s


def fmt_label(x: Any) -> str:
    """Write a group, period or event-time label (number or text): integral values without
    decimals, ``NA`` when missing, ``Inf`` / ``-Inf`` for infinities."""
    if is_missing(x):
        return "NA"
    if isinstance(x, (np.integer, int)):
        return str(int(x))
    try:
        xf = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isinf(xf):
        return "Inf" if xf > 0 else "-Inf"
    if xf.is_integer():
        return str(int(xf))
    return f"{xf:g}"


def level_label(alpha: float) -> str:
    """Confidence level of a significance level, e.g. ``"95%"`` for 0.05."""
    level = round(100.0 * (1.0 - float(alpha)), 6)
    return f"{level:g}%"


def normal_quantile(alpha: float) -> float:
    """Two-sided normal critical value, the ``1 - alpha / 2`` quantile."""
    return NormalDist().inv_cdf(1.0 - float(alpha) / 2.0)


def bands(att: np.ndarray, se: np.ndarray, crit: np.ndarray | float
          ) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper band ``att -/+ crit * se`` (``crit``: one critical value or one per
    estimate), NaN wherever an input is missing."""
    att = np.asarray(att, dtype=float)
    se = np.asarray(se, dtype=float)
    crit_arr = np.broadcast_to(np.asarray(crit, dtype=float), att.shape)
    with np.errstate(invalid="ignore"):
        half = crit_arr * se
        return att - half, att + half


def band_cells(lo: np.ndarray, hi: np.ndarray) -> list[tuple[str, bool]]:
    """Aligned ``[lo, hi]`` cells of a table (``NA`` when a limit is missing) and whether
    each band excludes zero (the significance star)."""
    lo_s = [fmt_num(v) for v in lo]
    hi_s = [fmt_num(v) for v in hi]
    ok = [not (is_missing(a) or is_missing(b)) for a, b in zip(lo, hi, strict=True)]
    wl = max((len(s) for s, k in zip(lo_s, ok, strict=True) if k), default=0)
    wh = max((len(s) for s, k in zip(hi_s, ok, strict=True) if k), default=0)
    return [
        (f"[{s_lo:>{wl}}, {s_hi:>{wh}}]", bool(a > 0.0 or b < 0.0)) if k else ("NA", False)
        for a, b, s_lo, s_hi, k in zip(lo, hi, lo_s, hi_s, ok, strict=True)
    ]


@dataclass
class Table:
    """A small table rendered either as a box-drawn text table or as HTML.

    Parameters
    ----------
    headers : sequence of str
        Column headings.
    rows : sequence of sequence of str
        Cell texts.
    align : sequence of {"l", "r"}
        Alignment of each column.
    stars : sequence of bool, optional
        Rows whose last (band) cell gets the significance star.
    """

    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    align: Sequence[str]
    stars: Sequence[bool] = ()

    def __post_init__(self) -> None:
        self.stars = self.stars or [False] * len(self.rows)

    def to_text(self) -> str:
        """Render as a box-drawn text table."""
        rows = [list(row) for row in self.rows]
        if any(self.stars):  # the significance star goes after the last (band) column
            for row, star in zip(rows, self.stars, strict=True):
                row[-1] += " *" if star else "  "
        widths = [len(h) for h in self.headers]
        for row in rows:
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

        def line(left: str, mid: str, right: str) -> str:
            return left + mid.join("─" * (w + 2) for w in widths) + right

        def cells(values: Sequence[str]) -> str:
            parts = [
                f" {v:>{w}} " if a == "r" else f" {v:<{w}} "
                for v, w, a in zip(values, widths, self.align, strict=True)
            ]
            return "│" + "│".join(parts) + "│"

        lines = [line("┌", "┬", "┐"), cells(self.headers), line("├", "┼", "┤")]
        lines.extend(cells(r) for r in rows)
        lines.append(line("└", "┴", "┘"))
        return "\n".join(lines)

    def to_html(self) -> str:
        """Render as an HTML ``<table>``."""
        esc = html.escape
        head = "".join(f"<th>{esc(h)}</th>" for h in self.headers)
        body = []
        for row, star in zip(self.rows, self.stars, strict=True):
            tds = []
            for j, (v, a) in enumerate(zip(row, self.align, strict=True)):
                text = esc(v) + (" *" if star and j == len(row) - 1 else "")
                style = "text-align:right" if a == "r" else "text-align:left"
                tds.append(f'<td style="{style}">{text}</td>')
            body.append("<tr>" + "".join(tds) + "</tr>")
        return (f'<table class="moderndid-table"><thead><tr>{head}</tr></thead>'
                f"<tbody>{''.join(body)}</tbody></table>")


@dataclass(frozen=True)
class Block:
    """One block of a report's body: an optional heading over a table or a message.

    Parameters
    ----------
    heading : str or None
        Line printed above the content.
    text : str
        The content in the text report (a rendered table, or a message line).
    html : str
        The content in the HTML report.
    """

    heading: str | None
    text: str
    html: str

    @classmethod
    def of_table(cls, table: Table, heading: str | None = None) -> Block:
        """A block showing ``table`` under an optional ``heading``."""
        return cls(heading, table.to_text(), table.to_html())


@dataclass(frozen=True)
class Report:
    """A whole summary: title, body blocks, key/value sections and the reference.

    Parameters
    ----------
    title : str
        Title between the heavy rules.
    blocks : sequence of Block
        The estimates.
    sections : sequence of Section
        Settings printed after the significance note; empty sections are skipped.
    reference : str
        Last line (the paper to cite).
    footer : str, optional
        A line after the significance note (e.g. a pre-test).
    """

    title: str
    blocks: Sequence[Block]
    sections: Sequence[Section]
    reference: str
    footer: str | None = None

    def to_text(self) -> str:
        """Render the fixed-width text summary."""
        lines = [HEAVY_RULE, f" {self.title}", HEAVY_RULE]
        for i, block in enumerate(self.blocks):
            lines += [""] if i == 0 else ["", ""]
            if block.heading is not None:
                lines += [f" {block.heading}", ""]
            lines.append(block.text)
        lines += ["", LIGHT_RULE, f" {SIGNIF_NOTE}"]
        if self.footer is not None:
            lines += ["", f" {self.footer}"]
        for title, items in self.sections:
            if items:
                lines += ["", LIGHT_RULE, f" {title}", LIGHT_RULE]
                lines += [f" {k}: {v}" for k, v in items]
        lines += [HEAVY_RULE, f" {self.reference}"]
        return "\n".join(lines)

    def to_html(self) -> str:
        """Render the HTML summary (without the enclosing ``<div>``)."""
        esc = html.escape
        parts = [f"<h4>{esc(self.title)}</h4>"]
        for block in self.blocks:
            if block.heading is not None:
                parts.append(f"<p>{esc(block.heading)}</p>")
            parts.append(block.html)
        parts.append(f"<p><small>{esc(SIGNIF_NOTE)}</small></p>")
        if self.footer is not None:
            parts.append(f"<p>{esc(self.footer)}</p>")
        for title, items in self.sections:
            if items:
                rows = "".join(f'<tr><td style="text-align:left">{esc(k)}</td>'
                               f'<td style="text-align:left">{esc(v)}</td></tr>' for k, v in items)
                parts.append(f"<details open><summary><b>{esc(title)}</b></summary>"
                             f'<table class="moderndid-info">{rows}</table></details>')
        parts.append(f"<p><small>{esc(self.reference)}</small></p>")
        return "".join(parts)


class _FieldNames:
    """``cls._fields``: the names of the dataclass fields in order, as a NamedTuple has."""

    def __get__(self, obj: Any, owner: type) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(owner))


class ResultBase:
    """Printing, export and NamedTuple-style helpers shared by the result dataclasses.

    A subclass is a frozen dataclass that defines ``_report()`` (what its summary shows)
    and ``_columns()`` (the columns of ``to_df`` / ``to_arrow``).
    """

    _fields = _FieldNames()

    def _asdict(self) -> dict[str, Any]:
        """Return the fields as a ``dict`` (shallow, in field order)."""
        return {name: getattr(self, name) for name in self._fields}

    def _replace(self: _T, **changes: Any) -> _T:
        """Return a copy with the given fields replaced."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def _set(self, **values: Any) -> None:
        """Set fields of the frozen dataclass (from ``__post_init__``)."""
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def _check_length(self, name: str, arr: np.ndarray, n: int, what: str) -> None:
        """Raise unless the field ``name``'s array ``arr`` has shape ``(n,)``."""
        if arr.shape != (n,):
            raise InvalidOptionError(
                f"{type(self).__name__}.{name} must {what} ({n}), got shape {arr.shape}"
            )

    def _as_arrays(self, names: Sequence[str], dtype: Any = None) -> None:
        """Convert the fields ``names`` that are not ``None`` to numpy arrays."""
        self._set(**{n: as_array(getattr(self, n), dtype) for n in names
                     if getattr(self, n) is not None})

    def _report(self) -> Report:  # pragma: no cover - overridden
        raise NotImplementedError

    def _columns(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    def summary(self) -> str:
        """Return the printed summary as a string.

        Returns
        -------
        str
            The estimates with standard errors and confidence intervals or bands ('*'
            where one excludes zero) and the estimation settings.
        """
        return self._report().to_text()

    def __repr__(self) -> str:
        return self.summary()

    __str__ = __repr__

    def _repr_html_(self) -> str:
        """HTML rendering of the summary for Jupyter notebooks."""
        return f'<div class="moderndid-result">{self._report().to_html()}</div>'

    def to_df(self) -> pd.DataFrame:
        """Estimates and confidence bands as a pandas DataFrame.

        Returns
        -------
        pandas.DataFrame
            See the class documentation for the columns.
        """
        import pandas as pd

        return pd.DataFrame(self._columns())

    def to_arrow(self) -> pa.Table:
        """Estimates and confidence bands as a pyarrow Table (the columns of ``to_df``).

        Returns
        -------
        pyarrow.Table
        """
        import pyarrow as pa

        return pa.table(self._columns())

    def to_spark(self, spark: Any) -> Any:
        """Estimates and confidence bands as a Spark DataFrame (the columns of ``to_df``),
        e.g. to save with ``saveAsTable``.

        Parameters
        ----------
        spark : SparkSession
            Session to create the DataFrame in (classic or Spark Connect).

        Returns
        -------
        pyspark.sql.DataFrame
        """
        return spark.createDataFrame(self.to_arrow())


AGGREGATION_TYPES = ("simple", "dynamic", "group", "calendar")
"""The aggregations of ATT(g, t), in ``aggte``'s spelling."""

EVENT_STUDY_TYPES = ("dynamic", "eventstudy")
"""Names of the event-study aggregation: ``aggte``'s and R ``triplediff``'s (``agg_ddd``)."""


class AggregationLabels(NamedTuple):
    """What a summary, an export and a plot call one aggregation type."""

    title_suffix: str  # appended to the summary's title, e.g. " (Event Study)"
    overall_heading: str  # line above the overall ATT
    table_heading: str  # line above the table of disaggregated effects
    label_header: str  # heading of the label column (and axis label of the plots)
    column: str  # name of the label column of to_df / to_arrow
    description: str  # the "Aggregation" line of the estimation details


AGGREGATION_LABELS: Mapping[str, AggregationLabels] = {
    "simple": AggregationLabels(
        "", "Overall ATT:", "", "", "", "Simple (weighted average of post-treatment ATT(g,t))"),
    "dynamic": AggregationLabels(
        " (Event Study)", "Overall summary of ATT's based on event-study/dynamic aggregation:",
        "Dynamic Effects:", "Event time", "event_time", "Dynamic (event study)"),
    "group": AggregationLabels(
        " (Group/Cohort)", "Overall summary of ATT's based on group/cohort aggregation:",
        "Group Effects:", "Group", "group", "Group / cohort"),
    "calendar": AggregationLabels(
        " (Calendar Time)", "Overall summary of ATT's based on calendar time aggregation:",
        "Time Effects:", "Time", "time", "Calendar time"),
}
"""Labels of each of :data:`AGGREGATION_TYPES`."""
