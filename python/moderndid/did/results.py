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

The triple-differences results (:mod:`moderndid.ddd.results`) build on the public helpers
here: :class:`GroupTimeResultBase` and :class:`AggregateResultBase` (what ATT(g, t) and an
aggregation print and export), :data:`AGGREGATION_TYPES` with :data:`AGGREGATION_LABELS`,
and :func:`info_sections`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from moderndid.core.report import (
    AGGREGATION_LABELS,
    AGGREGATION_TYPES,
    EVENT_STUDY_TYPES,
    AggregationLabels,
    Block,
    Report,
    ResultBase,
    Section,
    Table,
    as_array,
    band_cells,
    bands,
    fmt_label,
    fmt_num,
    is_missing,
    level_label,
    normal_quantile,
    param,
)
from moderndid.errors import InvalidOptionError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd
    import pyarrow as pa

__all__ = ["AGGTEResult", "MPResult", "to_arrow", "to_df"]

_REFERENCE = "Reference: Callaway and Sant'Anna (2021)"


def _uniform_bands(self: Any) -> bool:
    """Whether the bands are simultaneous (bootstrap uniform) bands."""
    params = self.estimation_params
    if "cband" in params:
        return bool(params["cband"])
    # ModernDiD 0.4.1 spelling
    return bool(params.get("uniform_bands", False)) and bool(params.get("bootstrap", False))


def _label_of(value: Any, labels: Mapping[str, str]) -> str:
    """Printed name of a setting (a callable prints as ``Custom (name)``)."""
    if value is None:
        return "NA"
    if callable(value):
        return f"Custom ({getattr(value, '__name__', type(value).__name__)})"
    return labels.get(str(value).lower(), str(value))


_CONTROL_GROUP_LABELS = {"nevertreated": "Never Treated", "notyettreated": "Not Yet Treated"}
_EST_METHOD_LABELS = {"dr": "Doubly Robust", "ipw": "Inverse Probability Weighting",
                      "reg": "Outcome Regression"}


def info_sections(
    params: Mapping[str, Any],
    *,
    alpha: float,
    critical_value: float | None,
    uniform: bool,
    n_units: Any = None,
    n_groups: int | None = None,
    extra_details: Sequence[tuple[str, str]] = (),
) -> list[Section]:
    """Data, estimation and inference sections of a summary.

    Parameters
    ----------
    params : mapping
        The call settings (``estimation_params``); moderndid's and ModernDiD 0.4.1's
        spellings are read.
    alpha : float
        Significance level.
    critical_value : float or None
        Critical value of the bands, printed when known.
    uniform : bool
        Whether the bands are simultaneous.
    n_units : Any, optional
        Number of units (else ``params["n_units"]``).
    n_groups : int, optional
        Number of treated cohorts.
    extra_details : sequence of (str, str)
        Lines appended to the estimation details (before the engine).

    Returns
    -------
    list of Section
        ``Data Info``, ``Estimation Details`` and ``Inference``.
    """

    def add(lines: list[tuple[str, str]], key: str, value: Any, fmt: Any = str) -> None:
        if value is not None:
            lines.append((key, fmt(value)))

    data: list[tuple[str, str]] = []
    add(data, "Outcome", param(params, "yname"))
    data.append(("Control Group", _label_of(param(params, "control_group"), _CONTROL_GROUP_LABELS)))
    antic = param(params, "anticipation", "anticipation_periods", default=0)
    data.append(("Anticipation Periods", fmt_label(antic)))
    panel = param(params, "panel")
    if panel is not None:
        unbalanced = param(params, "allow_unbalanced_panel", default=False)
        kind = "Panel (unbalanced allowed)" if unbalanced else "Balanced panel"
        data.append(("Data Type", kind if panel else "Repeated cross-sections"))
    add(data, "Units", n_units if n_units is not None else param(params, "n_units"), fmt_label)
    add(data, "Observations", param(params, "n_obs"), fmt_label)
    add(data, "Time Periods", param(params, "n_periods"), fmt_label)
    add(data, "Treated Cohorts", n_groups)

    est = param(params, "est_method", "estimation_method")
    details = [("Estimation Method", _label_of(est, _EST_METHOD_LABELS))]
    xformla = param(params, "xformla")
    details.append(("Covariates", str(xformla) if xformla not in (None, "", "~1") else "None"))
    add(details, "Base Period", param(params, "base_period"), lambda b: str(b).capitalize())
    add(details, "Sampling Weights", param(params, "weightsname"))
    details.extend(extra_details)
    add(details, "Engine", param(params, "engine"))

    inference = [("Significance Level", f"{float(alpha):g}")]
    if param(params, "boot", "bootstrap", default=False):
        biters = param(params, "biters")
        suffix = f" ({fmt_label(biters)} draws)" if biters is not None else ""
        inference.append(("Standard Errors", "Multiplier bootstrap" + suffix))
        seed = param(params, "random_state")
        if isinstance(seed, (int, np.integer)):
            inference.append(("Random State", str(int(seed))))
    else:
        inference.append(("Standard Errors", "Analytical"))
    cv = "" if is_missing(critical_value) else f" (critical value {fmt_num(critical_value)})"
    band_kind = "Simultaneous (uniform)" if uniform else "Pointwise"
    inference.append(("Confidence Bands", band_kind + cv))
    clusters = param(params, "clustervars")
    clusters = [clusters] if isinstance(clusters, str) else clusters
    if clusters:
        inference.append(("Clustered On", ", ".join(str(c) for c in clusters)))
    return [("Data Info", data), ("Estimation Details", details), ("Inference", inference)]


def _band_table(labels: Mapping[str, Any], estimate: str, att: np.ndarray, se: np.ndarray,
                band: tuple[np.ndarray, np.ndarray], alpha: float, uniform: bool) -> Table:
    """Table of estimates with their bands: the label columns, then estimate, standard
    error and band ('*' where it excludes zero)."""
    cells = band_cells(*band)
    kind = "Simult." if uniform else "Pointwise"
    headers = [*labels, estimate, "Std. Error", f"[{level_label(alpha)} {kind} Conf. Band]"]
    rows = [
        [*(fmt_label(v) for v in values), fmt_num(a), fmt_num(s), b[0]]
        for *values, a, s, b in zip(*labels.values(), att, se, cells, strict=True)
    ]
    return Table(headers, rows, ["r"] * (len(labels) + 2) + ["l"], [b[1] for b in cells])


def single_effect_table(att: float, se: float, band: tuple[float, float], alpha: float,
                        extra: Mapping[str, float] | None = None) -> Table:
    """Table of one effect: ATT, standard error, the ``extra`` columns and the interval."""
    extra = extra or {}
    ((cell, star),) = band_cells(np.array([band[0]]), np.array([band[1]]))
    headers = ["ATT", "Std. Error", *extra, f"[{level_label(alpha)} Conf. Int.]"]
    row = [fmt_num(att), fmt_num(se), *(fmt_num(v) for v in extra.values()), cell]
    return Table(headers, [row], ["r"] * (len(row) - 1) + ["l"], [star])


def single_effect_columns(att: float, se: float, band: tuple[float, float]) -> dict[str, Any]:
    """``to_df`` columns of one effect: ``att``, ``se``, ``ci_lower``, ``ci_upper``."""
    return {k: np.array([v], dtype=float)
            for k, v in zip(("att", "se", "ci_lower", "ci_upper"), (att, se, *band), strict=True)}


class GroupTimeResultBase(ResultBase):
    """ATT(g, t) table, band kind and exports shared by MPResult and the staggered DDD results.

    The DDD classes provide ``att_gt``, ``se_gt`` and ``estimation_params`` as aliases.
    """

    groups: np.ndarray
    times: np.ndarray

    if TYPE_CHECKING:  # fields of one subclass, aliases (properties) of the other

        @property
        def att_gt(self) -> np.ndarray: ...
        @property
        def se_gt(self) -> np.ndarray: ...
        @property
        def estimation_params(self) -> dict[str, Any]: ...
        def confidence_bands(self) -> tuple[np.ndarray, np.ndarray]: ...

    uniform_bands = property(_uniform_bands)

    def _set_cells(self, n: int, **arrays: np.ndarray) -> None:
        """Store arrays that must be 1-D with one entry per cell (``n``)."""
        for name, arr in arrays.items():
            self._check_length(name, arr, n, "be 1-D with one entry per cell")
        self._set(**arrays)

    def _gt_table(self, alpha: float) -> Table:
        return _band_table({"Group": self.groups, "Time": self.times}, "ATT(g,t)", self.att_gt,
                           self.se_gt, self.confidence_bands(), alpha, self.uniform_bands)

    def _columns(self) -> dict[str, Any]:
        groups, times = self.groups, self.times
        lo, hi = self.confidence_bands()
        try:
            event_time = times - groups
        except TypeError:  # non-numeric labels
            event_time = np.full(times.shape, np.nan)
        status: list[str | None]
        try:
            status = ["Post" if t >= g else "Pre" for g, t in zip(groups, times, strict=True)]
        except TypeError:
            status = [None] * len(times)
        return {"group": groups, "time": times, "att": self.att_gt, "se": self.se_gt,
                "ci_lower": lo, "ci_upper": hi, "event_time": event_time,
                "treatment_status": status}


@dataclass(frozen=True, eq=False, repr=False)
class MPResult(GroupTimeResultBase):
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
        att = as_array(self.att_gt, dtype=float)
        self._set_cells(att.shape[0] if att.ndim else 1, groups=as_array(self.groups),
                        times=as_array(self.times), se_gt=as_array(self.se_gt, dtype=float))
        self._set(att_gt=att)
        if self.estimation_params is None:
            self._set(estimation_params={})
        self._as_arrays(["vcov_analytical"], float)
        self._as_arrays(["influence_func"])

    def _critical(self) -> float:
        cv = self.critical_value
        return normal_quantile(self.alpha) if cv is None else float(cv)

    def confidence_bands(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper band, ``att_gt -/+ critical_value * se_gt``.

        Returns
        -------
        tuple of numpy.ndarray
            ``(lower, upper)``, ``NaN`` where the standard error is missing.
        """
        return bands(self.att_gt, self.se_gt, self._critical())

    def _pretest_line(self) -> str:
        if self.wald_pvalue is None:
            return "No pre-treatment periods to test"
        line = f"P-value for pre-test of parallel trends assumption:  {fmt_num(self.wald_pvalue)}"
        if not is_missing(self.wald_stat):
            line += f"  (Wald statistic: {fmt_num(self.wald_stat)})"
        return line

    def _report(self) -> Report:
        table = self._gt_table(self.alpha)
        text = table.to_text() if self.att_gt.size else " No group-time cells were estimated."
        sections = info_sections(self.estimation_params, alpha=self.alpha,
                                 critical_value=self._critical(), uniform=self.uniform_bands,
                                 n_units=self.n_units, n_groups=int(np.unique(self.groups).size))
        return Report("Group-Time Average Treatment Effects", [Block(None, text, table.to_html())],
                      sections, _REFERENCE, footer=self._pretest_line())


class AggregateResultBase(ResultBase):
    """Summary, bands and exports of an aggregation of ATT(g, t).

    Shared by :class:`AGGTEResult` and the triple-differences ``DDDAggResult``. A subclass
    provides the fields or properties read here (``overall_att``, ``overall_se``,
    ``aggregation_type``, ``event_times``, ``att_by_event``, ``se_by_event``,
    ``critical_values``, ``estimation_params``, ``alpha``, ``min_event_time``,
    ``max_event_time``, ``balanced_event_threshold``), its title, reference and labels, and
    ``_info_sections`` (the settings it prints).
    """

    _labels: ClassVar[Mapping[str, AggregationLabels]] = AGGREGATION_LABELS
    _title: ClassVar[str] = "Aggregate Treatment Effects"
    _reference: ClassVar[str] = _REFERENCE

    overall_att: float
    overall_se: float
    aggregation_type: str
    alpha: float | None
    min_event_time: int | None
    max_event_time: int | None
    balanced_event_threshold: int | None

    if TYPE_CHECKING:  # fields of one subclass, aliases (properties) of the other

        @property
        def estimation_params(self) -> dict[str, Any]: ...
        @property
        def event_times(self) -> np.ndarray | None: ...
        @property
        def att_by_event(self) -> np.ndarray | None: ...
        @property
        def se_by_event(self) -> np.ndarray | None: ...
        @property
        def critical_values(self) -> np.ndarray | None: ...

    def _set_per_event(self, names: Sequence[str], n: int) -> None:
        """Store the fields ``names`` as float arrays of length ``n`` (a scalar is repeated)."""
        for name in names:
            arr = as_array(getattr(self, name), dtype=float)
            if arr is not None:
                arr = np.full(n, float(arr)) if arr.ndim == 0 else arr
                self._check_length(name, arr, n, "have one entry per event")
                self._set(**{name: arr})

    @property
    def alpha_level(self) -> float:
        """Significance level in effect (``alpha``, else the settings' ``alpha``, else 0.05)."""
        if self.alpha is not None:
            return float(self.alpha)
        return float(self.estimation_params.get("alpha", 0.05))

    uniform_bands = property(_uniform_bands)

    def overall_confidence_interval(self) -> tuple[float, float]:
        """Pointwise normal interval of the overall ATT.

        Returns
        -------
        tuple of float
            ``(lower, upper)``, ``NaN`` when the standard error is missing.
        """
        lo, hi = bands(np.array([self.overall_att], dtype=float),
                       np.array([self.overall_se], dtype=float), normal_quantile(self.alpha_level))
        return float(lo[0]), float(hi[0])

    def _event_critical(self) -> np.ndarray:
        assert self.att_by_event is not None
        cvals = self.critical_values
        if cvals is None:
            return np.full(self.att_by_event.shape, normal_quantile(self.alpha_level))
        return np.asarray(cvals, dtype=float)

    def _event_se(self) -> np.ndarray:
        assert self.att_by_event is not None
        se = self.se_by_event
        return np.full(self.att_by_event.shape, np.nan) if se is None else se

    def _event_bands(self) -> tuple[np.ndarray, np.ndarray]:
        """Bands of the disaggregated effects (NaN without standard errors)."""
        assert self.att_by_event is not None
        return bands(self.att_by_event, self._event_se(), self._event_critical())

    def _aggregation_details(self) -> list[tuple[str, str]]:
        out = [("Aggregation", self._labels[self.aggregation_type].description)]
        if self.aggregation_type in EVENT_STUDY_TYPES:
            if self.min_event_time is not None or self.max_event_time is not None:
                lo = "-Inf" if self.min_event_time is None else fmt_label(self.min_event_time)
                hi = "Inf" if self.max_event_time is None else fmt_label(self.max_event_time)
                out.append(("Event Window", f"[{lo}, {hi}]"))
            if self.balanced_event_threshold is not None:
                e = fmt_label(self.balanced_event_threshold)
                out.append(("Balanced Cohorts", f"observed for event times 0..{e}"))
        return out

    def _info_sections(self, **info: Any) -> list[Section]:
        """The settings sections, given :func:`info_sections`'s keyword arguments."""
        return info_sections(self.estimation_params, **info)

    def _report(self) -> Report:
        crit: float | None = normal_quantile(self.alpha_level)
        labels = self._labels[self.aggregation_type]
        overall = single_effect_table(self.overall_att, self.overall_se,
                                      self.overall_confidence_interval(), self.alpha_level)
        blocks = [Block.of_table(overall, labels.overall_heading)]
        events = (self.aggregation_type != "simple" and self.event_times is not None
                  and self.att_by_event is not None)
        if events:
            assert self.event_times is not None and self.att_by_event is not None
            cvals = self._event_critical()
            finite = cvals[np.isfinite(cvals)]
            crit = float(finite[0]) if finite.size else None
            table = _band_table({labels.label_header: self.event_times}, "Estimate",
                                self.att_by_event, self._event_se(), self._event_bands(),
                                self.alpha_level, self.uniform_bands)
            blocks.append(Block.of_table(table, labels.table_heading))
        sections = self._info_sections(alpha=self.alpha_level, critical_value=crit,
                                       uniform=self.uniform_bands and events,
                                       extra_details=self._aggregation_details())
        return Report(self._title + labels.title_suffix, blocks, sections, self._reference)

    def _columns(self) -> dict[str, Any]:
        if self.aggregation_type == "simple":
            return single_effect_columns(self.overall_att, self.overall_se,
                                         self.overall_confidence_interval())
        if self.event_times is None or self.att_by_event is None:
            raise InvalidOptionError(
                f"this {self.aggregation_type!r} aggregation holds no per-event estimates"
            )
        lo, hi = self._event_bands()
        cols: dict[str, Any] = {self._labels[self.aggregation_type].column: self.event_times,
                                "att": self.att_by_event, "se": self._event_se(),
                                "ci_lower": lo, "ci_upper": hi}
        if self.aggregation_type in EVENT_STUDY_TYPES:
            cols["treatment_status"] = [
                None if is_missing(e) else ("Post" if e >= 0 else "Pre") for e in self.event_times
            ]
        return cols


@dataclass(frozen=True, eq=False, repr=False)
class AGGTEResult(AggregateResultBase):
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
        if self.aggregation_type not in AGGREGATION_TYPES:
            raise InvalidOptionError(
                f"aggregation_type must be one of {AGGREGATION_TYPES}, "
                f"got {self.aggregation_type!r}"
            )
        self._set(**{k: {} for k in ("estimation_params", "call_info") if getattr(self, k) is None})
        if self.event_times is not None:
            self._as_arrays(["event_times"])
            self._set_per_event(("att_by_event", "se_by_event", "critical_values"),
                                self.event_times.shape[0])

    def confidence_bands(self) -> tuple[np.ndarray, np.ndarray]:
        """Bands of the disaggregated effects, ``att -/+ critical_values * se``.

        Returns
        -------
        tuple of numpy.ndarray
            ``(lower, upper)``; empty arrays for ``simple`` aggregation.
        """
        if self.att_by_event is None or self.se_by_event is None:
            return np.empty(0), np.empty(0)
        return self._event_bands()


def _result(result: Any) -> ResultBase:
    if not isinstance(result, ResultBase):
        raise TypeError(
            f"to_df / to_arrow expect an MPResult or AGGTEResult, got {type(result).__name__}"
        )
    return result


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
    return _result(result).to_df()


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
    return _result(result).to_arrow()
