"""Result containers for ``att_gt`` and ``aggte`` with printed summaries and exporters.

The two public containers, :class:`MPResult` (group-time average treatment effects) and
:class:`AGGTEResult` (aggregated effects), are frozen dataclasses whose field names and
field order follow the ``MPResult`` / ``AGGTEResult`` containers of the ModernDiD 0.4.1
package, so code written against that package (attribute access, keyword or positional
construction, ``_replace`` / ``_asdict``) keeps working. Fields that moderndid adds come
after those and all have defaults.

Printing a result (``print(res)``, ``str(res)``, ``res.summary()``) gives a fixed-width
report in the spirit of R ``did``'s ``summary()``; notebooks render :meth:`_repr_html_`.
:func:`to_df` and :func:`to_arrow` export the estimates with their confidence bands.
"""

from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

import numpy as np

from moderndid.errors import InvalidOptionError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd
    import pyarrow as pa

__all__ = ["AGGTEResult", "MPResult", "to_arrow", "to_df"]

_T = TypeVar("_T", bound="_ResultBase")

_RULE_WIDTH = 78
_HEAVY_RULE = "=" * _RULE_WIDTH
_LIGHT_RULE = "-" * _RULE_WIDTH
_SIGNIF_NOTE = "Signif. codes: '*' confidence band does not cover 0"
_REFERENCE = "Reference: Callaway and Sant'Anna (2021)"

_AGGREGATION_TYPES = ("simple", "dynamic", "group", "calendar")

_CONTROL_GROUP_LABELS = {
    "nevertreated": "Never Treated",
    "notyettreated": "Not Yet Treated",
}
_EST_METHOD_LABELS = {
    "dr": "Doubly Robust",
    "ipw": "Inverse Probability Weighting",
    "reg": "Outcome Regression",
}
# aggregation type -> (title suffix, overall heading, table heading, first column, df column)
_AGG_LABELS = {
    "simple": ("", "Overall ATT:", "", "", ""),
    "dynamic": (
        " (Event Study)",
        "Overall summary of ATT's based on event-study/dynamic aggregation:",
        "Dynamic Effects:",
        "Event time",
        "event_time",
    ),
    "group": (
        " (Group/Cohort)",
        "Overall summary of ATT's based on group/cohort aggregation:",
        "Group Effects:",
        "Group",
        "group",
    ),
    "calendar": (
        " (Calendar Time)",
        "Overall summary of ATT's based on calendar time aggregation:",
        "Time Effects:",
        "Time",
        "time",
    ),
}


# ---------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------


def _as_array(x: Any, dtype: Any = None) -> Any:
    """Return ``x`` as a host numpy array (``None`` passes through)."""
    if x is None:
        return None
    if (
        not isinstance(x, np.ndarray)
        and hasattr(x, "get")
        and hasattr(x, "__cuda_array_interface__")
    ):
        x = x.get()  # cupy -> host
    return np.asarray(x, dtype=dtype)


def _param(params: Mapping[str, Any], *names: str, default: Any = None) -> Any:
    """First of ``names`` present in ``params`` (moderndid or ModernDiD 0.4.1 spelling)."""
    for name in names:
        if name in params:
            return params[name]
    return default


def _is_missing(x: Any) -> bool:
    if x is None:
        return True
    try:
        return bool(math.isnan(float(x)))
    except (TypeError, ValueError):
        return False


def _fmt_num(x: Any, digits: int = 4) -> str:
    """Fixed-point number, ``NA`` for missing values."""
    if _is_missing(x):
        return "NA"
    s = f"{float(x):.{digits}f}"
    if float(s) == 0.0 and s.startswith("-"):
        s = s[1:]
    return s


def _fmt_label(x: Any) -> str:
    """Group / time / event-time label: integral values print without decimals."""
    if _is_missing(x):
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


def _level_label(alpha: float) -> str:
    level = round(100.0 * (1.0 - float(alpha)), 6)
    return f"{level:g}%"


def _normal_quantile(alpha: float) -> float:
    return NormalDist().inv_cdf(1.0 - float(alpha) / 2.0)


def _bands(
    att: np.ndarray, se: np.ndarray, crit: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """``att -/+ crit * se`` (NaN wherever an input is missing)."""
    att = np.asarray(att, dtype=float)
    se = np.asarray(se, dtype=float)
    crit_arr = np.broadcast_to(np.asarray(crit, dtype=float), att.shape)
    with np.errstate(invalid="ignore"):
        half = crit_arr * se
        return att - half, att + half


def _excludes_zero(lo: float, hi: float) -> bool:
    if _is_missing(lo) or _is_missing(hi):
        return False
    return bool(lo > 0.0 or hi < 0.0)


def _band_cells(lo: np.ndarray, hi: np.ndarray) -> list[tuple[str, bool]]:
    """Aligned ``[lo, hi]`` strings and whether each band excludes zero."""
    lo_s = [_fmt_num(v) for v in lo]
    hi_s = [_fmt_num(v) for v in hi]
    ok = [not (_is_missing(a) or _is_missing(b)) for a, b in zip(lo, hi, strict=True)]
    wl = max((len(s) for s, k in zip(lo_s, ok, strict=True) if k), default=0)
    wh = max((len(s) for s, k in zip(hi_s, ok, strict=True) if k), default=0)
    out: list[tuple[str, bool]] = []
    for a, b, s_lo, s_hi, k in zip(lo, hi, lo_s, hi_s, ok, strict=True):
        if not k:
            out.append(("NA", False))
        else:
            out.append((f"[{s_lo:>{wl}}, {s_hi:>{wh}}]", _excludes_zero(a, b)))
    return out


def _uniform_bands(params: Mapping[str, Any]) -> bool:
    """Whether simultaneous (bootstrap uniform) bands were computed."""
    if "cband" in params:
        return bool(params["cband"])
    if "uniform_bands" in params:  # ModernDiD 0.4.1 spelling
        return bool(params["uniform_bands"]) and bool(params.get("bootstrap", False))
    return False


def _label_of(value: Any, labels: Mapping[str, str]) -> str:
    if value is None:
        return "NA"
    if callable(value):
        return f"Custom ({getattr(value, '__name__', type(value).__name__)})"
    return labels.get(str(value).lower(), str(value))


class _Table:
    """A small table rendered either as a box-drawn text table or as HTML."""

    def __init__(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[str]],
        align: Sequence[str],
        stars: Sequence[bool] | None = None,
    ):
        self.headers = list(headers)
        self.rows = [list(r) for r in rows]
        self.align = list(align)
        self.stars = list(stars) if stars is not None else [False] * len(self.rows)

    def _text_rows(self) -> list[list[str]]:
        # the significance star goes after the last (band) column
        out = []
        for row, star in zip(self.rows, self.stars, strict=True):
            row = list(row)
            if any(self.stars):
                row[-1] = row[-1] + (" *" if star else "  ")
            out.append(row)
        return out

    def to_text(self) -> str:
        rows = self._text_rows()
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
        return (
            '<table class="moderndid-table">'
            f"<thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>"
        )


_Section = tuple[str, list[tuple[str, str]]]


def _info_sections(
    params: Mapping[str, Any],
    *,
    alpha: float,
    critical_value: float | None,
    uniform: bool,
    n_units: Any = None,
    n_groups: int | None = None,
    extra_details: Sequence[tuple[str, str]] = (),
) -> list[_Section]:
    """Key/value lines shared by the text and HTML summaries."""
    data: list[tuple[str, str]] = []
    yname = _param(params, "yname")
    if yname is not None:
        data.append(("Outcome", str(yname)))
    data.append(
        ("Control Group", _label_of(_param(params, "control_group"), _CONTROL_GROUP_LABELS))
    )
    antic = _param(params, "anticipation", "anticipation_periods", default=0)
    data.append(("Anticipation Periods", _fmt_label(antic)))
    panel = _param(params, "panel")
    if panel is not None:
        if not panel:
            kind = "Repeated cross-sections"
        elif _param(params, "allow_unbalanced_panel", default=False):
            kind = "Panel (unbalanced allowed)"
        else:
            kind = "Balanced panel"
        data.append(("Data Type", kind))
    units = n_units if n_units is not None else _param(params, "n_units")
    if units is not None:
        data.append(("Units", _fmt_label(units)))
    n_obs = _param(params, "n_obs")
    if n_obs is not None:
        data.append(("Observations", _fmt_label(n_obs)))
    n_periods = _param(params, "n_periods")
    if n_periods is not None:
        data.append(("Time Periods", _fmt_label(n_periods)))
    if n_groups is not None:
        data.append(("Treated Cohorts", str(n_groups)))

    details: list[tuple[str, str]] = []
    est = _param(params, "est_method", "estimation_method")
    details.append(("Estimation Method", _label_of(est, _EST_METHOD_LABELS)))
    xformla = _param(params, "xformla")
    details.append(("Covariates", str(xformla) if xformla not in (None, "", "~1") else "None"))
    base = _param(params, "base_period")
    if base is not None:
        details.append(("Base Period", str(base).capitalize()))
    weights = _param(params, "weightsname")
    if weights is not None:
        details.append(("Sampling Weights", str(weights)))
    details.extend(extra_details)
    engine = _param(params, "engine")
    if engine is not None:
        details.append(("Engine", str(engine)))

    inference: list[tuple[str, str]] = [("Significance Level", f"{float(alpha):g}")]
    boot = bool(_param(params, "boot", "bootstrap", default=False))
    if boot:
        biters = _param(params, "biters")
        suffix = f" ({_fmt_label(biters)} draws)" if biters is not None else ""
        inference.append(("Standard Errors", "Multiplier bootstrap" + suffix))
        seed = _param(params, "random_state")
        if seed is not None and isinstance(seed, (int, np.integer)):
            inference.append(("Random State", str(int(seed))))
    else:
        inference.append(("Standard Errors", "Analytical"))
    cv = "" if _is_missing(critical_value) else f" (critical value {_fmt_num(critical_value)})"
    band_kind = "Simultaneous (uniform)" if uniform else "Pointwise"
    inference.append(("Confidence Bands", band_kind + cv))
    clusters = _param(params, "clustervars")
    if isinstance(clusters, str):
        clusters = [clusters]
    if clusters:
        inference.append(("Clustered On", ", ".join(str(c) for c in clusters)))

    return [("Data Info", data), ("Estimation Details", details), ("Inference", inference)]


def _sections_text(sections: Sequence[_Section]) -> list[str]:
    lines: list[str] = []
    for title, items in sections:
        if not items:
            continue
        lines += ["", _LIGHT_RULE, f" {title}", _LIGHT_RULE]
        lines += [f" {k}: {v}" for k, v in items]
    return lines


def _sections_html(sections: Sequence[_Section]) -> str:
    esc = html.escape
    parts = []
    for title, items in sections:
        if not items:
            continue
        rows = "".join(
            f'<tr><td style="text-align:left">{esc(k)}</td>'
            f'<td style="text-align:left">{esc(v)}</td></tr>'
            for k, v in items
        )
        parts.append(
            f"<details open><summary><b>{esc(title)}</b></summary>"
            f'<table class="moderndid-info">{rows}</table></details>'
        )
    return "".join(parts)


# ---------------------------------------------------------------------------------------
# result classes
# ---------------------------------------------------------------------------------------


class _ResultBase:
    """NamedTuple-style helpers shared by the result dataclasses."""

    _fields: ClassVar[tuple[str, ...]] = ()

    def _asdict(self) -> dict[str, Any]:
        """Return the fields as a ``dict`` (shallow, in field order)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def _replace(self: _T, **changes: Any) -> _T:
        """Return a copy with the given fields replaced."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def summary(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def _html_body(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        """HTML rendering of the summary for Jupyter notebooks."""
        return f'<div class="moderndid-result">{self._html_body()}</div>'

    def to_df(self) -> pd.DataFrame:
        """Estimates and confidence bands as a pandas DataFrame; see :func:`to_df`."""
        return to_df(cast("MPResult | AGGTEResult", self))

    def to_arrow(self) -> pa.Table:
        """Estimates and confidence bands as a pyarrow Table; see :func:`to_arrow`."""
        return to_arrow(cast("MPResult | AGGTEResult", self))


@dataclass(frozen=True, eq=False, repr=False)
class MPResult(_ResultBase):
    """Group-time average treatment effects returned by ``att_gt``.

    The first sixteen fields carry the names and order of ModernDiD 0.4.1's ``MPResult``.

    Parameters
    ----------
    groups : numpy.ndarray
        Treatment cohort of each (g, t) cell, length ``n_cells``.
    times : numpy.ndarray
        Time period of each cell, length ``n_cells``.
    att_gt : numpy.ndarray
        ATT(g, t) estimates, length ``n_cells``.
    vcov_analytical : numpy.ndarray
        ``n_cells x n_cells`` covariance matrix of the estimates (from the influence
        functions, divided by ``n_units``).
    se_gt : numpy.ndarray
        Standard errors (bootstrap or analytical), ``NaN`` where not identified.
    critical_value : float
        Critical value used for the confidence bands: the normal quantile for pointwise
        intervals or the multiplier-bootstrap value for uniform bands.
    influence_func : numpy.ndarray or None
        ``n_units x n_cells`` influence-function matrix, or ``None`` when it was not
        materialised (e.g. distributed estimation).
    n_units : int, optional
        Number of cross-sectional units (observations for repeated cross-sections).
    wald_stat : float, optional
        Wald statistic of the pre-test of parallel trends, ``None`` without pre-periods.
    wald_pvalue : float, optional
        P-value of the pre-test, ``None`` without pre-treatment periods.
    aggregate_effects : Any, optional
        Placeholder kept for ModernDiD 0.4.1 compatibility.
    alpha : float, default 0.05
        Significance level.
    estimation_params : dict
        Call settings: ``yname``, ``tname``, ``idname``, ``gname``, ``xformla``,
        ``control_group``, ``anticipation``, ``base_period``, ``est_method``, ``panel``,
        ``allow_unbalanced_panel``, ``clustervars``, ``weightsname``, ``boot``, ``biters``,
        ``cband`` (True only if uniform bootstrap bands were computed), ``random_state``,
        ``n_obs``, ``n_periods``, ``engine``. The ModernDiD 0.4.1 spellings
        (``anticipation_periods``, ``estimation_method``, ``bootstrap``,
        ``uniform_bands``) are read as well.
    G : numpy.ndarray, optional
        Cohort of each unit, length ``n_units``.
    weights_ind : numpy.ndarray, optional
        Sampling weight of each unit.
    influence_moments : Any, optional
        Placeholder kept for ModernDiD 0.4.1 compatibility.
    moments : Any, optional
        Internal: Gram matrices and bootstrap draws the estimator hands to ``aggte``.
        Not shown in the repr and not compared.

    Notes
    -----
    Instances are immutable; use ``res._replace(field=value)`` for a modified copy.
    Equality is identity, because fields hold numpy arrays.
    """

    groups: np.ndarray
    times: np.ndarray
    att_gt: np.ndarray
    vcov_analytical: np.ndarray | None
    se_gt: np.ndarray
    critical_value: float
    influence_func: np.ndarray | None
    n_units: int | None = None
    wald_stat: float | None = None
    wald_pvalue: float | None = None
    aggregate_effects: Any = None
    alpha: float = 0.05
    estimation_params: dict[str, Any] = field(default_factory=dict)
    G: np.ndarray | None = None
    weights_ind: np.ndarray | None = None
    influence_moments: Any = None
    # --- moderndid additions (after the ModernDiD 0.4.1 fields, all defaulted) ---
    moments: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        groups = _as_array(self.groups)
        times = _as_array(self.times)
        att = _as_array(self.att_gt, dtype=float)
        se = _as_array(self.se_gt, dtype=float)
        n = att.shape[0] if att.ndim else 1
        for name, arr in (("groups", groups), ("times", times), ("se_gt", se)):
            if arr.ndim != 1 or arr.shape[0] != n:
                raise InvalidOptionError(
                    f"MPResult.{name} must be 1-D with one entry per cell ({n}), "
                    f"got shape {arr.shape}"
                )
        object.__setattr__(self, "groups", groups)
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "att_gt", att)
        object.__setattr__(self, "se_gt", se)
        if self.vcov_analytical is not None:
            object.__setattr__(self, "vcov_analytical", _as_array(self.vcov_analytical, float))
        if self.influence_func is not None:
            object.__setattr__(self, "influence_func", _as_array(self.influence_func))
        if self.estimation_params is None:
            object.__setattr__(self, "estimation_params", {})

    # -- derived quantities ------------------------------------------------------------

    @property
    def uniform_bands(self) -> bool:
        """Whether :attr:`critical_value` is a simultaneous (uniform) band value."""
        return _uniform_bands(self.estimation_params)

    def _critical(self) -> float:
        cv = self.critical_value
        return _normal_quantile(self.alpha) if cv is None else float(cv)

    def confidence_bands(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper band, ``att_gt -/+ critical_value * se_gt``.

        Returns
        -------
        tuple of numpy.ndarray
            ``(lower, upper)``, ``NaN`` where the standard error is missing.
        """
        return _bands(self.att_gt, self.se_gt, self._critical())

    # -- printing ----------------------------------------------------------------------

    def _table(self) -> _Table:
        lo, hi = self.confidence_bands()
        bands = _band_cells(lo, hi)
        kind = "Simult." if self.uniform_bands else "Pointwise"
        headers = [
            "Group",
            "Time",
            "ATT(g,t)",
            "Std. Error",
            f"[{_level_label(self.alpha)} {kind} Conf. Band]",
        ]
        rows = [
            [_fmt_label(g), _fmt_label(t), _fmt_num(a), _fmt_num(s), b[0]]
            for g, t, a, s, b in zip(
                self.groups, self.times, self.att_gt, self.se_gt, bands, strict=True
            )
        ]
        return _Table(headers, rows, ["r", "r", "r", "r", "l"], [b[1] for b in bands])

    def _pretest_line(self) -> str:
        if self.wald_pvalue is None:
            return "No pre-treatment periods to test"
        line = f"P-value for pre-test of parallel trends assumption:  {_fmt_num(self.wald_pvalue)}"
        if not _is_missing(self.wald_stat):
            line += f"  (Wald statistic: {_fmt_num(self.wald_stat)})"
        return line

    def _sections(self) -> list[_Section]:
        n_groups = int(np.unique(self.groups).size) if self.groups.size else 0
        return _info_sections(
            self.estimation_params,
            alpha=self.alpha,
            critical_value=self._critical(),
            uniform=self.uniform_bands,
            n_units=self.n_units,
            n_groups=n_groups,
        )

    def summary(self) -> str:
        """Return the printed summary (R ``did``-style) as a string.

        Returns
        -------
        str
            Table of ATT(g,t) with standard errors and confidence bands ('*' where the
            band excludes zero), the parallel-trends pre-test and the estimation settings.
        """
        lines = [
            _HEAVY_RULE,
            " Group-Time Average Treatment Effects",
            _HEAVY_RULE,
            "",
        ]
        if self.att_gt.size:
            lines.append(self._table().to_text())
        else:
            lines.append(" No group-time cells were estimated.")
        lines += ["", _LIGHT_RULE, f" {_SIGNIF_NOTE}", "", f" {self._pretest_line()}"]
        lines += _sections_text(self._sections())
        lines += [_HEAVY_RULE, f" {_REFERENCE}"]
        return "\n".join(lines)

    def _html_body(self) -> str:
        esc = html.escape
        return (
            "<h4>Group-Time Average Treatment Effects</h4>"
            + self._table().to_html()
            + f"<p><small>{esc(_SIGNIF_NOTE)}</small></p>"
            + f"<p>{esc(self._pretest_line())}</p>"
            + _sections_html(self._sections())
            + f"<p><small>{esc(_REFERENCE)}</small></p>"
        )


@dataclass(frozen=True, eq=False, repr=False)
class AGGTEResult(_ResultBase):
    """Aggregated treatment effects returned by ``aggte``.

    The first fifteen fields carry the names and order of ModernDiD 0.4.1's
    ``AGGTEResult``.

    Parameters
    ----------
    overall_att : float
        Overall aggregated ATT.
    overall_se : float
        Standard error of ``overall_att`` (``NaN`` allowed).
    aggregation_type : {"simple", "dynamic", "group", "calendar"}
        Kind of aggregation.
    event_times : numpy.ndarray, optional
        Labels of the disaggregated effects: event times (``dynamic``), cohorts
        (``group``) or periods (``calendar``); ``None`` for ``simple``.
    att_by_event : numpy.ndarray, optional
        Effect for each entry of ``event_times``.
    se_by_event : numpy.ndarray, optional
        Standard error of each entry (``NaN`` allowed).
    critical_values : numpy.ndarray, optional
        Critical value for each entry's band (a repeated uniform-band value or the normal
        quantile); ``None`` means pointwise normal quantiles.
    influence_func : numpy.ndarray, optional
        ``n_units x n_events`` influence functions of the disaggregated effects.
    influence_func_overall : numpy.ndarray, optional
        Influence function of ``overall_att`` (length ``n_units``).
    min_event_time, max_event_time : int, optional
        Event-time window requested for ``dynamic`` aggregation.
    balanced_event_threshold : int, optional
        ``balance_e`` used for ``dynamic`` aggregation.
    estimation_params : dict
        Settings carried over from ``att_gt`` (see :class:`MPResult`), with ``boot``,
        ``biters`` and ``cband`` (effective) as used by ``aggte``.
    call_info : dict
        Description of the call (e.g. ``{"function": ..., "type": ...}``).
    vcov_analytical : numpy.ndarray, optional
        Covariance matrix of ``att_by_event``.
    alpha : float, optional
        Significance level; ``None`` reads ``estimation_params["alpha"]`` (default 0.05).

    Notes
    -----
    The overall ATT's interval always uses the pointwise normal quantile, as in R
    ``did``; the disaggregated effects use ``critical_values``.
    """

    overall_att: float
    overall_se: float
    aggregation_type: str
    event_times: np.ndarray | None = None
    att_by_event: np.ndarray | None = None
    se_by_event: np.ndarray | None = None
    critical_values: np.ndarray | None = None
    influence_func: np.ndarray | None = None
    influence_func_overall: np.ndarray | None = None
    min_event_time: int | None = None
    max_event_time: int | None = None
    balanced_event_threshold: int | None = None
    estimation_params: dict[str, Any] = field(default_factory=dict)
    call_info: dict[str, Any] = field(default_factory=dict)
    vcov_analytical: np.ndarray | None = None
    # --- moderndid additions (after the ModernDiD 0.4.1 fields, all defaulted) ---
    alpha: float | None = None

    def __post_init__(self) -> None:
        if self.aggregation_type not in _AGGREGATION_TYPES:
            raise InvalidOptionError(
                f"aggregation_type must be one of {_AGGREGATION_TYPES}, "
                f"got {self.aggregation_type!r}"
            )
        if self.estimation_params is None:
            object.__setattr__(self, "estimation_params", {})
        if self.call_info is None:
            object.__setattr__(self, "call_info", {})
        if self.event_times is not None:
            ev = _as_array(self.event_times)
            object.__setattr__(self, "event_times", ev)
            n = ev.shape[0]
            for name in ("att_by_event", "se_by_event", "critical_values"):
                arr = _as_array(getattr(self, name), dtype=float)
                if arr is not None and arr.ndim == 0:
                    arr = np.full(n, float(arr))
                if arr is not None and arr.shape != (n,):
                    raise InvalidOptionError(
                        f"AGGTEResult.{name} must have one entry per event ({n}), "
                        f"got shape {arr.shape}"
                    )
                object.__setattr__(self, name, arr)

    # -- derived quantities ------------------------------------------------------------

    @property
    def alpha_level(self) -> float:
        """Significance level in effect (``alpha`` or ``estimation_params['alpha']``)."""
        if self.alpha is not None:
            return float(self.alpha)
        return float(self.estimation_params.get("alpha", 0.05))

    @property
    def uniform_bands(self) -> bool:
        """Whether the disaggregated bands are simultaneous (uniform) bands."""
        return _uniform_bands(self.estimation_params)

    def overall_confidence_interval(self) -> tuple[float, float]:
        """Pointwise interval for the overall ATT.

        Returns
        -------
        tuple of float
            ``(lower, upper)``, ``NaN`` when the standard error is missing.
        """
        lo, hi = _bands(
            np.array([self.overall_att], dtype=float),
            np.array([self.overall_se], dtype=float),
            _normal_quantile(self.alpha_level),
        )
        return float(lo[0]), float(hi[0])

    def _event_critical(self) -> np.ndarray:
        assert self.att_by_event is not None
        if self.critical_values is None:
            return np.full(self.att_by_event.shape, _normal_quantile(self.alpha_level))
        return np.asarray(self.critical_values, dtype=float)

    def confidence_bands(self) -> tuple[np.ndarray, np.ndarray]:
        """Bands of the disaggregated effects, ``att -/+ critical_values * se``.

        Returns
        -------
        tuple of numpy.ndarray
            ``(lower, upper)``; empty arrays for ``simple`` aggregation.
        """
        if self.att_by_event is None or self.se_by_event is None:
            return np.empty(0), np.empty(0)
        return _bands(self.att_by_event, self.se_by_event, self._event_critical())

    # -- printing ----------------------------------------------------------------------

    def _has_events(self) -> bool:
        return (
            self.aggregation_type != "simple"
            and self.event_times is not None
            and self.att_by_event is not None
        )

    def _overall_table(self) -> _Table:
        lo, hi = self.overall_confidence_interval()
        ((band, star),) = _band_cells(np.array([lo]), np.array([hi]))
        headers = ["ATT", "Std. Error", f"[{_level_label(self.alpha_level)} Conf. Int.]"]
        rows = [[_fmt_num(self.overall_att), _fmt_num(self.overall_se), band]]
        return _Table(headers, rows, ["r", "r", "l"], [star])

    def _event_table(self) -> _Table:
        assert self.event_times is not None and self.att_by_event is not None
        se = self.se_by_event
        if se is None:
            se = np.full(self.att_by_event.shape, np.nan)
        lo, hi = self.confidence_bands() if self.se_by_event is not None else (se, se)
        bands = _band_cells(lo, hi)
        kind = "Simult." if self.uniform_bands else "Pointwise"
        first_col = _AGG_LABELS[self.aggregation_type][3]
        headers = [
            first_col,
            "Estimate",
            "Std. Error",
            f"[{_level_label(self.alpha_level)} {kind} Conf. Band]",
        ]
        rows = [
            [_fmt_label(e), _fmt_num(a), _fmt_num(s), b[0]]
            for e, a, s, b in zip(self.event_times, self.att_by_event, se, bands, strict=True)
        ]
        return _Table(headers, rows, ["r", "r", "r", "l"], [b[1] for b in bands])

    def _aggregation_details(self) -> list[tuple[str, str]]:
        names = {
            "simple": "Simple (weighted average of post-treatment ATT(g,t))",
            "dynamic": "Dynamic (event study)",
            "group": "Group / cohort",
            "calendar": "Calendar time",
        }
        out = [("Aggregation", names[self.aggregation_type])]
        if self.aggregation_type == "dynamic":
            if self.min_event_time is not None or self.max_event_time is not None:
                lo = "-Inf" if self.min_event_time is None else _fmt_label(self.min_event_time)
                hi = "Inf" if self.max_event_time is None else _fmt_label(self.max_event_time)
                out.append(("Event Window", f"[{lo}, {hi}]"))
            if self.balanced_event_threshold is not None:
                out.append(
                    (
                        "Balanced Cohorts",
                        f"observed for event times 0..{_fmt_label(self.balanced_event_threshold)}",
                    )
                )
        return out

    def _sections(self) -> list[_Section]:
        crit: float | None = None
        if self._has_events():
            cvals = self._event_critical()
            finite = cvals[np.isfinite(cvals)]
            crit = float(finite[0]) if finite.size else None
        else:
            crit = _normal_quantile(self.alpha_level)
        return _info_sections(
            self.estimation_params,
            alpha=self.alpha_level,
            critical_value=crit,
            uniform=self.uniform_bands and self._has_events(),
            extra_details=self._aggregation_details(),
        )

    def summary(self) -> str:
        """Return the printed summary (R ``summary(aggte(...))``-style) as a string.

        Returns
        -------
        str
            The overall ATT with its interval, the table of disaggregated effects for
            ``dynamic``/``group``/``calendar`` and the estimation settings.
        """
        suffix, overall_head, table_head, _, _ = _AGG_LABELS[self.aggregation_type]
        lines = [
            _HEAVY_RULE,
            f" Aggregate Treatment Effects{suffix}",
            _HEAVY_RULE,
            "",
            f" {overall_head}",
            "",
            self._overall_table().to_text(),
        ]
        if self._has_events():
            lines += ["", "", f" {table_head}", "", self._event_table().to_text()]
        lines += ["", _LIGHT_RULE, f" {_SIGNIF_NOTE}"]
        lines += _sections_text(self._sections())
        lines += [_HEAVY_RULE, f" {_REFERENCE}"]
        return "\n".join(lines)

    def _html_body(self) -> str:
        esc = html.escape
        suffix, overall_head, table_head, _, _ = _AGG_LABELS[self.aggregation_type]
        parts = [
            f"<h4>Aggregate Treatment Effects{esc(suffix)}</h4>",
            f"<p>{esc(overall_head)}</p>",
            self._overall_table().to_html(),
        ]
        if self._has_events():
            parts += [f"<p>{esc(table_head)}</p>", self._event_table().to_html()]
        parts += [
            f"<p><small>{esc(_SIGNIF_NOTE)}</small></p>",
            _sections_html(self._sections()),
            f"<p><small>{esc(_REFERENCE)}</small></p>",
        ]
        return "".join(parts)


MPResult._fields = tuple(f.name for f in dataclasses.fields(MPResult))
AGGTEResult._fields = tuple(f.name for f in dataclasses.fields(AGGTEResult))


# ---------------------------------------------------------------------------------------
# exporters
# ---------------------------------------------------------------------------------------


def _columns(result: Any) -> dict[str, Any]:
    """Column name -> values (numpy arrays or lists) for :func:`to_df` / :func:`to_arrow`."""
    own = getattr(type(result), "_columns", None)
    if own is not None and not isinstance(result, MPResult | AGGTEResult):
        return own(result)  # other result families (triple differences) define their own
    if isinstance(result, MPResult):
        lo, hi = result.confidence_bands()
        groups, times = result.groups, result.times
        try:
            event_time = times - groups
        except TypeError:  # non-numeric labels
            event_time = np.full(times.shape, np.nan)
        status: list[str | None]
        try:
            status = ["Post" if t >= g else "Pre" for g, t in zip(groups, times, strict=True)]
        except TypeError:
            status = [None] * len(times)
        return {
            "group": groups,
            "time": times,
            "att": result.att_gt,
            "se": result.se_gt,
            "ci_lower": lo,
            "ci_upper": hi,
            "event_time": event_time,
            "treatment_status": status,
        }
    if isinstance(result, AGGTEResult):
        if result.aggregation_type == "simple":
            lo_o, hi_o = result.overall_confidence_interval()
            return {
                "att": np.array([result.overall_att], dtype=float),
                "se": np.array([result.overall_se], dtype=float),
                "ci_lower": np.array([lo_o]),
                "ci_upper": np.array([hi_o]),
            }
        if result.event_times is None or result.att_by_event is None:
            raise InvalidOptionError(
                f"this {result.aggregation_type!r} aggregation holds no per-event estimates"
            )
        se = result.se_by_event
        if se is None:
            se = np.full(result.att_by_event.shape, np.nan)
        lo, hi = result.confidence_bands() if result.se_by_event is not None else (se, se)
        label = _AGG_LABELS[result.aggregation_type][4]
        cols: dict[str, Any] = {
            label: result.event_times,
            "att": result.att_by_event,
            "se": se,
            "ci_lower": lo,
            "ci_upper": hi,
        }
        if result.aggregation_type == "dynamic":
            cols["treatment_status"] = [
                None if _is_missing(e) else ("Post" if e >= 0 else "Pre")
                for e in result.event_times
            ]
        return cols
    raise TypeError(
        f"to_df / to_arrow expect an MPResult or AGGTEResult, got {type(result).__name__}"
    )


def to_df(result: MPResult | AGGTEResult) -> pd.DataFrame:
    """Convert a result to a pandas DataFrame of estimates and confidence bands.

    Parameters
    ----------
    result : MPResult or AGGTEResult
        Output of ``att_gt`` or ``aggte``.

    Returns
    -------
    pandas.DataFrame
        For :class:`MPResult`: one row per (g, t) cell with columns ``group``, ``time``,
        ``att``, ``se``, ``ci_lower``, ``ci_upper``, ``event_time`` (``time - group``)
        and ``treatment_status`` (``"Pre"``/``"Post"``). For :class:`AGGTEResult`: one row
        per event time / cohort / period with the label column named ``event_time``,
        ``group`` or ``time`` by aggregation type, then ``att``, ``se``, ``ci_lower``,
        ``ci_upper`` (plus ``treatment_status`` for ``dynamic``); ``simple`` gives a
        single row ``att``, ``se``, ``ci_lower``, ``ci_upper``.
        Bands are ``att -/+ critical value * se``.

    Raises
    ------
    TypeError
        If ``result`` is not a result object.
    """
    import pandas as pd

    return pd.DataFrame(_columns(result))


def to_arrow(result: MPResult | AGGTEResult) -> pa.Table:
    """Convert a result to a pyarrow Table with the same columns as :func:`to_df`.

    Parameters
    ----------
    result : MPResult or AGGTEResult
        Output of ``att_gt`` or ``aggte``.

    Returns
    -------
    pyarrow.Table
        See :func:`to_df` for the columns.

    Raises
    ------
    TypeError
        If ``result`` is not a result object.
    """
    import pyarrow as pa

    cols = _columns(result)
    return pa.table({k: pa.array(list(v) if isinstance(v, list) else v) for k, v in cols.items()})
