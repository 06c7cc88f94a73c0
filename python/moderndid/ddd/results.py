"""Result containers of the triple-differences estimator ``ddd`` and of its aggregation.

* :class:`DDDPanelResult` / :class:`DDDRCResult` - the two-period DDD ATT (panel data /
  repeated cross-sections);
* :class:`DDDMultiPeriodResult` / :class:`DDDMultiPeriodRCResult` - the staggered-adoption
  ATT(g, t);
* :class:`DDDAggResult` - their aggregations (``simple``, ``eventstudy``, ``group``,
  ``calendar``).

They are frozen dataclasses whose field names and order follow the classes of the same names
in ModernDiD 0.4.1 (where those are NamedTuples), so attribute access, keyword or
positional construction and ``_replace`` / ``_asdict`` keep working; fields that moderndid
adds come after those and have defaults. Aliases with the names of :class:`MPResult` /
:class:`AGGTEResult` (``att_gt``, ``se_gt``, ``event_times``, ``att_by_event``, ...) are
provided as read-only properties, so the plotting functions accept these results too.

Printing gives a fixed-width report in the spirit of R ``triplediff``'s ``summary()``;
notebooks render :meth:`_repr_html_`; ``to_df`` / ``to_arrow`` export the estimates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, ClassVar

import numpy as np

from moderndid.core.report import (
    Block,
    Report,
    ResultBase,
    Section,
    as_array,
    bands,
    fmt_label,
    fmt_num,
    is_missing,
    normal_quantile,
    param,
)
from moderndid.did.results import (
    AGGREGATION_LABELS,
    AGGREGATION_TYPES,
    EVENT_STUDY_TYPES,
    AggregateResultBase,
    AggregationLabels,
    AGGTEResult,
    GroupTimeResultBase,
    info_sections,
    single_effect_columns,
    single_effect_table,
)
from moderndid.errors import InvalidOptionError

__all__ = [
    "DDDAggResult",
    "DDDMultiPeriodRCResult",
    "DDDMultiPeriodResult",
    "DDDPanelResult",
    "DDDRCResult",
]

_REFERENCE = "Reference: Ortiz-Villavicencio and Sant'Anna (2025)"
_EST_PREFIX = {"dr": "DR-DDD", "ipw": "IPW-DDD", "reg": "RA-DDD"}


def _ddd_type(kind: str) -> str:
    """R ``triplediff``'s name of an aggregation type (``eventstudy`` for ``dynamic``)."""
    return "eventstudy" if kind in EVENT_STUDY_TYPES else kind


# R triplediff words the event-study labels differently
_LABELS = {_ddd_type(kind): AGGREGATION_LABELS[kind] for kind in AGGREGATION_TYPES}
_LABELS["eventstudy"] = _LABELS["eventstudy"]._replace(
    overall_heading="Overall summary of ATT's based on event-study aggregation:",
    table_heading="Event Study:",
    description="Event study (by time since treatment)",
)
_AGG_TYPES = tuple(_LABELS)


def _est_method(params: Mapping[str, Any]) -> str:
    est = param(params, "est_method", "estimation_method")
    return est.lower() if isinstance(est, str) else ""


def _algorithm_details(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    est = _est_method(params)
    out = []
    if est in ("dr", "reg"):
        out.append(("Outcome Regression", "OLS"))
    if est in ("dr", "ipw"):
        out.append(("Propensity Score", "Logit (maximum likelihood)"))
    return out


def _implied_critical(att: np.ndarray, se: np.ndarray, upper: np.ndarray) -> float | None:
    """Critical value implied by stored bands, ``(upper - att) / se`` (median over cells)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (np.asarray(upper, float) - np.asarray(att, float)) / np.asarray(se, float)
    ratio = ratio[np.isfinite(ratio) & (np.asarray(se, float) > 0)]
    return float(np.median(ratio)) if ratio.size else None


def _ddd_sections(params: Mapping[str, Any], *, panel: bool, staggered: bool, n_units: Any,
                  extra_sections: Sequence[Section] = (), **info: Any) -> list[Section]:
    """Key/value sections of a DDD summary: :func:`info_sections` (given ``info``) adapted."""
    p = dict(params)
    p.setdefault("panel", panel)
    if not p["panel"] and n_units is not None:
        p.setdefault("n_obs", n_units)
        n_units = None
    sections = info_sections(p, n_units=n_units, **info)
    (data_title, data), (details_title, details), *rest = sections
    # the two-period DDD has no comparison-cohort choice, anticipation or base period
    drop = set() if staggered else {"Anticipation Periods", "Treated Cohorts", "Control Group"}
    if param(p, "control_group") is None:
        drop.add("Control Group")
    data = [(k, v) for k, v in data if k not in drop]
    if not staggered:
        details = [(k, v) for k, v in details if k != "Base Period"]
    at = next((i + 1 for i, (k, _) in enumerate(details) if k == "Estimation Method"), 0)
    details[at:at] = _algorithm_details(p)
    pname = param(p, "pname")
    if pname is not None:
        at = 1 if data and data[0][0] == "Outcome" else 0
        data.insert(at, ("Partition Variable", str(pname)))
    return [(data_title, data), *extra_sections, (details_title, details), *rest]


def _is_never(g: Any) -> bool:
    try:
        return float(g) == 0.0 or math.isinf(float(g))
    except (TypeError, ValueError):
        return False


def _subgroup_label(key: Any) -> str:
    """Printed label of a subgroup count key; ``(g, q)`` keys get R ``triplediff`` names."""
    try:
        g, q = key if isinstance(key, tuple) else ()
        eligible = float(q) == 1.0
    except (TypeError, ValueError):
        return str(key)
    treated = not _is_never(g)
    state = "treated" if treated else "untreated"
    part = "eligible" if eligible else "ineligible"
    return f"{1 + int(eligible) + 2 * int(treated)} ({state}, {part})"


def _alias(name: str, doc: str | None = None) -> Any:
    """Read-only property giving the field ``name`` under another name."""
    return property(lambda self: getattr(self, name), doc=doc or f"Alias of :attr:`{name}`.")


class _DDDBase(ResultBase):
    """Settings access shared by the DDD result classes."""

    _panel: ClassVar[bool] = True

    args: dict[str, Any]
    alpha: float | None

    estimation_params = _alias("args", "The call settings (``args``, the ModernDiD 0.4.1 name).")

    @property
    def panel(self) -> bool:
        """Whether the estimates come from panel data (else repeated cross-sections)."""
        return self._panel

    @property
    def alpha_level(self) -> float:
        """Significance level (``alpha`` or ``args['alpha']``, default 0.05)."""
        if self.alpha is not None:
            return float(self.alpha)
        return float(self.args.get("alpha", 0.05))

    def _plain_dicts(self, *names: str) -> None:
        """Store the mappings ``names`` as dicts (``None`` as an empty one)."""
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, dict):
                self._set(**{name: {} if value is None else dict(value)})


@dataclass(frozen=True, eq=False, repr=False)
class _DDDTwoPeriod(_DDDBase):
    att: float
    se: float
    uci: float | None
    lci: float | None
    boots: np.ndarray | None = None
    att_inf_func: np.ndarray | None = None
    did_atts: dict[str, Any] = field(default_factory=dict)
    subgroup_counts: dict[str, Any] = field(default_factory=dict)
    args: dict[str, Any] = field(default_factory=dict)
    # --- moderndid additions (after the ModernDiD 0.4.1 fields, all defaulted) ---
    n_units: int | None = None
    alpha: float | None = None

    def __post_init__(self) -> None:
        self._plain_dicts("did_atts", "subgroup_counts", "args")
        att = math.nan if self.att is None else float(self.att)
        se = math.nan if self.se is None else float(self.se)
        self._set(att=att, se=se)
        if self.uci is None or self.lci is None:
            lo, hi = bands(np.array([att]), np.array([se]), normal_quantile(self.alpha_level))
            self._set(lci=lo[0] if self.lci is None else self.lci,
                      uci=hi[0] if self.uci is None else self.uci)
        self._set(uci=float(self.uci), lci=float(self.lci))  # type: ignore[arg-type]
        self._as_arrays(["boots", "att_inf_func"], float)

    @property
    def boot(self) -> bool:
        """Whether the standard error comes from the multiplier bootstrap."""
        return bool(param(self.args, "boot", "bootstrap", default=self.boots is not None))

    influence_func = _alias("att_inf_func")

    @property
    def p_value(self) -> float:
        """Two-sided normal p-value of ``att / se`` (``NaN`` without a standard error)."""
        if is_missing(self.att) or not self.se > 0.0:
            return math.nan
        return 2.0 * (1.0 - NormalDist().cdf(abs(self.att / self.se)))

    def confidence_interval(self) -> tuple[float, float]:
        """``(lci, uci)``, the stored confidence interval."""
        return float(self.lci), float(self.uci)  # type: ignore[arg-type]

    def _critical(self) -> float:
        implied = _implied_critical(np.array([self.att]), np.array([self.se]), np.array([self.uci]))
        return normal_quantile(self.alpha_level) if implied is None else implied

    def _report(self) -> Report:
        extra: list[Section] = []
        if self.subgroup_counts:
            label = "Units per Subgroup" if self._panel else "Observations per Subgroup"
            items = [(_subgroup_label(k), fmt_label(v)) for k, v in self.subgroup_counts.items()]
            if all(isinstance(k, tuple) for k in self.subgroup_counts):
                items.sort(reverse=True)  # R triplediff order: subgroup 4 first
            extra.append((label, items))
        if self.did_atts:
            items = []
            for k, v in self.did_atts.items():
                try:
                    text = fmt_num(float(v))
                except (TypeError, ValueError):
                    text = str(v)
                items.append((str(k), text))
            extra.append(("DiD Components", items))
        params = dict(self.args)
        if self.boots is not None:
            params.setdefault("boot", True)
            params.setdefault("biters", int(self.boots.shape[0]))
        sections = _ddd_sections(params, panel=self._panel, staggered=False, n_units=self.n_units,
                                 extra_sections=extra, alpha=self.alpha_level,
                                 critical_value=self._critical(), uniform=False)
        table = single_effect_table(self.att, self.se, self.confidence_interval(),
                                    self.alpha_level, {"Pr(>|t|)": self.p_value})
        heading = f"{_EST_PREFIX.get(_est_method(self.args), 'DDD')} estimation for the ATT:"
        return Report("Triple Difference-in-Differences", [Block.of_table(table, heading)],
                      sections, _REFERENCE)

    def _columns(self) -> dict[str, Any]:
        return single_effect_columns(self.att, self.se, self.confidence_interval())


_TWO_PERIOD_DOC = """{title}

    The first nine fields carry the names and order of ModernDiD 0.4.1's ``{name}``.

    Parameters
    ----------
    att : float
        DDD estimate of the ATT of eligible units in treated states in the second period.
    se : float
        Its standard error (analytical or bootstrap; ``NaN`` allowed).
    uci, lci : float or None
        Upper and lower confidence limits (note the order). ``None`` computes
        ``att +/- z * se`` with the normal quantile at ``alpha``.
    boots : numpy.ndarray, optional
        Bootstrap draws of the estimate, ``None`` without bootstrap.
    att_inf_func : numpy.ndarray, optional
        Influence function of the estimate, one entry per {unit}, or ``None``.
    did_atts : dict
        The DiD comparisons the DDD combines (label -> estimate), e.g. the DiDs of subgroup
        4 against subgroups 3, 2 and 1; printed when not empty.
    subgroup_counts : dict
        Label -> number of {units} per subgroup, e.g. ``{{"4 (treated, eligible)": n4,
        "3 (treated, ineligible)": n3, "2 (untreated, eligible)": n2,
        "1 (untreated, ineligible)": n1}}``.
    args : dict
        Call settings (also available as ``estimation_params``): ``yname``, ``tname``,
        ``idname``, ``gname``, ``pname``, ``xformla``, ``est_method``, ``weightsname``,
        ``boot``, ``biters``, ``alpha``, ``clustervars``, ``random_state``, ``n_obs``,
        ``engine``, ... (whatever is present is printed).
    n_units : int, optional
        Number of {units}.
    alpha : float, optional
        Significance level; ``None`` reads ``args["alpha"]`` (default 0.05).

    Notes
    -----
    ``to_df()`` gives one row with columns ``att``, ``se``, ``ci_lower``, ``ci_upper``.
    Instances are immutable; use ``res._replace(field=value)`` for a modified copy.
    """


@dataclass(frozen=True, eq=False, repr=False)
class DDDPanelResult(_DDDTwoPeriod):
    _panel: ClassVar[bool] = True


@dataclass(frozen=True, eq=False, repr=False)
class DDDRCResult(_DDDTwoPeriod):
    _panel: ClassVar[bool] = False


def _document(template: str, title: str, *classes: type[_DDDBase]) -> None:
    """Fill the panel / repeated cross-section classes' docstrings from the shared template."""
    for cls in classes:
        data, unit = (
            ("panel data", "unit") if cls._panel else ("repeated cross-sections", "observation")
        )
        cls.__doc__ = template.format(title=f"{title} estimated from {data}.",
                                      name=cls.__name__, unit=unit, units=f"{unit}s")


_document(_TWO_PERIOD_DOC, "Two-period triple-differences ATT", DDDPanelResult, DDDRCResult)


@dataclass(frozen=True, eq=False, repr=False)
class _DDDMultiPeriod(GroupTimeResultBase, _DDDBase):
    att: np.ndarray
    se: np.ndarray
    uci: np.ndarray | None
    lci: np.ndarray | None
    groups: np.ndarray
    times: np.ndarray
    glist: np.ndarray | None
    tlist: np.ndarray | None
    inf_func_mat: np.ndarray | None
    n: int | None
    args: dict[str, Any]
    unit_groups: np.ndarray | None = None
    unit_weights: np.ndarray | None = None
    unit_clusters: np.ndarray | None = None
    unit_partition: np.ndarray | None = None
    # --- moderndid additions (after the ModernDiD 0.4.1 fields, all defaulted) ---
    critical_value: float | None = None
    vcov_analytical: np.ndarray | None = None
    alpha: float | None = None
    moments: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._plain_dicts("args")
        att = np.atleast_1d(as_array(self.att, dtype=float))
        n_cells = att.shape[0]
        self._set_cells(n_cells, att=att, se=np.atleast_1d(as_array(self.se, dtype=float)),
                        groups=np.atleast_1d(as_array(self.groups)),
                        times=np.atleast_1d(as_array(self.times)))
        self._set(glist=np.unique(self.groups) if self.glist is None else as_array(self.glist),
                  tlist=np.unique(self.times) if self.tlist is None else as_array(self.tlist))
        for name in ("uci", "lci"):
            if getattr(self, name) is not None:
                band = np.atleast_1d(as_array(getattr(self, name), dtype=float))
                self._check_length(name, band, n_cells, "have one entry per cell")
                self._set(**{name: band})
        # critical value: given, else implied by the stored bands, else the normal quantile
        crit = self.critical_value
        if crit is None:
            implied = None if self.uci is None else _implied_critical(att, self.se, self.uci)
            crit = normal_quantile(self.alpha_level) if implied is None else implied
        lo, hi = bands(att, self.se, float(crit))
        self._set(critical_value=float(crit), uci=hi if self.uci is None else self.uci,
                  lci=lo if self.lci is None else self.lci)
        self._as_arrays(["inf_func_mat", "vcov_analytical", "unit_weights"], float)
        self._as_arrays(["unit_groups", "unit_clusters", "unit_partition"])

    att_gt = _alias("att", "Alias of :attr:`att` (the ``MPResult`` name).")
    se_gt = _alias("se", "Alias of :attr:`se` (the ``MPResult`` name).")
    influence_func = _alias("inf_func_mat", "Alias of :attr:`inf_func_mat` (``n x n_cells``).")
    n_units = _alias("n", "Alias of :attr:`n` (units; observations for repeated cross-sections).")

    def confidence_bands(self) -> tuple[np.ndarray, np.ndarray]:
        """The stored bands ``(lci, uci)``.

        Returns
        -------
        tuple of numpy.ndarray
        """
        assert self.lci is not None and self.uci is not None
        return self.lci, self.uci

    def _count_section(self) -> list[Section]:
        """Units per cohort, as (eligible, ineligible) counts or a total without partitions."""
        counts: dict[Any, str] = {}
        subgroups = self.args.get("subgroup_counts")
        if self.unit_groups is not None:
            ug, up = self.unit_groups, self.unit_partition
            for g in np.unique(ug):
                in_g = ug == g
                if up is None or up.shape != ug.shape:
                    counts[g] = str(int(in_g.sum()))
                else:
                    n_el = int((in_g & (up == 1)).sum())
                    counts[g] = f"{n_el} eligible, {int(in_g.sum()) - n_el} ineligible"
        elif isinstance(subgroups, Mapping) and all(
            isinstance(key, tuple) and len(key) == 2 for key in subgroups
        ):
            pairs: dict[Any, list[int]] = {}
            for (g, q), value in subgroups.items():
                pairs.setdefault(g, [0, 0])[0 if float(q) == 1.0 else 1] += int(value)
            for g, (n_el, n_inel) in sorted(pairs.items(), key=lambda kv: kv[0]):
                counts[g] = f"{n_el} eligible, {n_inel} ineligible"
        if not counts:
            return []
        items = [("Never treated" if _is_never(g) else f"Cohort {fmt_label(g)}", text)
                 for g, text in counts.items()]
        items.sort(key=lambda kv: kv[0] != "Never treated")
        title = "Units per Cohort" if self._panel else "Observations per Cohort"
        return [(title, items)]

    def _report(self) -> Report:
        sections = _ddd_sections(self.args, panel=self._panel, staggered=True, n_units=self.n,
                                 extra_sections=self._count_section(), alpha=self.alpha_level,
                                 critical_value=self.critical_value, uniform=self.uniform_bands,
                                 n_groups=int(np.unique(self.groups).size))
        heading = f"{_EST_PREFIX.get(_est_method(self.args), 'DDD')} estimation for the ATT(g,t):"
        if self.att.size:
            block = Block.of_table(self._gt_table(self.alpha_level), heading)
        else:
            block = Block(heading, " No group-time cells were estimated.",
                          "<p>No group-time cells.</p>")
        return Report("Triple Difference-in-Differences, staggered adoption", [block], sections,
                      _REFERENCE)


_MULTI_DOC = """{title}

    The first fifteen fields carry the names and order of ModernDiD 0.4.1's ``{name}``;
    ``att_gt``, ``se_gt``, ``influence_func``, ``n_units`` and ``estimation_params`` are
    read-only aliases with the ``MPResult`` names.

    Parameters
    ----------
    att : numpy.ndarray
        ATT(g, t) estimates, length ``n_cells``.
    se : numpy.ndarray
        Standard errors (``NaN`` where not identified).
    uci, lci : numpy.ndarray or None
        Upper and lower band limits (note the order); ``None`` computes
        ``att +/- critical_value * se``.
    groups, times : numpy.ndarray
        Cohort and period of each cell.
    glist, tlist : numpy.ndarray or None
        The distinct cohorts and periods; ``None`` takes the unique ``groups`` / ``times``.
    inf_func_mat : numpy.ndarray or None
        ``n x n_cells`` influence functions, ``None`` when not materialised.
    n : int or None
        Number of {units}.
    args : dict
        Call settings (also ``estimation_params``): ``yname``, ``tname``, ``idname``,
        ``gname``, ``pname``, ``xformla``, ``control_group``, ``base_period``,
        ``anticipation``, ``est_method``, ``weightsname``, ``boot``, ``biters``, ``cband``
        (True only if uniform bootstrap bands were computed), ``alpha``, ``clustervars``,
        ``random_state``, ``n_obs``, ``n_periods``, ``engine``, ...
    unit_groups, unit_partition : numpy.ndarray, optional
        Cohort and partition (0/1) of each {unit}; when given, the summary lists the
        {units} per cohort and partition.
    unit_weights, unit_clusters : numpy.ndarray, optional
        Sampling weight and cluster of each {unit}.
    critical_value : float, optional
        Critical value of the bands (normal quantile for pointwise bands, the bootstrap
        value for uniform ones). ``None`` takes the value implied by ``uci`` (or the
        normal quantile at ``alpha``); after construction it is always a float.
    vcov_analytical : numpy.ndarray, optional
        ``n_cells x n_cells`` covariance matrix of the estimates.
    alpha : float, optional
        Significance level; ``None`` reads ``args["alpha"]`` (default 0.05).
    moments : Any, optional
        Internal: what the estimator hands to ``agg_ddd``. Not shown and not compared.

    Notes
    -----
    ``to_df()`` has columns ``group``, ``time``, ``att``, ``se``, ``ci_lower``,
    ``ci_upper``, ``event_time`` and ``treatment_status`` (as for ``MPResult``), the bands
    being ``lci`` / ``uci``.
    """


@dataclass(frozen=True, eq=False, repr=False)
class DDDMultiPeriodResult(_DDDMultiPeriod):
    _panel: ClassVar[bool] = True


@dataclass(frozen=True, eq=False, repr=False)
class DDDMultiPeriodRCResult(_DDDMultiPeriod):
    _panel: ClassVar[bool] = False


_document(_MULTI_DOC, "Staggered triple-differences ATT(g, t)", DDDMultiPeriodResult,
          DDDMultiPeriodRCResult)


@dataclass(frozen=True, eq=False, repr=False)
class DDDAggResult(AggregateResultBase, _DDDBase):
    """Aggregated triple-differences effects returned by ``agg_ddd``.

    The first ten fields carry the names and order of ModernDiD 0.4.1's ``DDDAggResult``;
    ``event_times``, ``att_by_event``, ``se_by_event``, ``critical_values``,
    ``influence_func``, ``influence_func_overall`` and ``estimation_params`` are read-only
    aliases with the ``AGGTEResult`` names.

    Parameters
    ----------
    overall_att : float
        Overall aggregated ATT.
    overall_se : float
        Its standard error (``NaN`` allowed).
    aggregation_type : {"simple", "eventstudy", "group", "calendar"}
        Kind of aggregation (``"dynamic"`` is accepted and stored as ``"eventstudy"``).
    egt : numpy.ndarray, optional
        Labels of the disaggregated effects: event times, cohorts or periods.
    att_egt, se_egt : numpy.ndarray, optional
        Effect and standard error for each entry of ``egt``.
    crit_val : float or numpy.ndarray, optional
        Critical value of the disaggregated bands (one value, or one per entry); ``None``
        is the normal quantile at ``alpha``.
    inf_func : numpy.ndarray, optional
        ``n x n_events`` influence functions of the disaggregated effects.
    inf_func_overall : numpy.ndarray, optional
        Influence function of ``overall_att``.
    args : dict
        Settings (see :class:`DDDMultiPeriodResult`), with ``boot``, ``biters`` and
        ``cband`` as used by the aggregation.
    vcov_analytical : numpy.ndarray, optional
        Covariance matrix of ``att_egt``.
    alpha : float, optional
        Significance level; ``None`` reads ``args["alpha"]`` (default 0.05).
    min_event_time, max_event_time, balanced_event_threshold : int, optional
        Event-time window and ``balance_e`` of an event-study aggregation.

    Notes
    -----
    The overall ATT's interval uses the pointwise normal quantile (as R ``triplediff``);
    the disaggregated effects use ``crit_val``. ``to_df()`` gives one row per entry of
    ``egt`` with a label column named ``event_time``, ``group`` or ``time``, then ``att``,
    ``se``, ``ci_lower``, ``ci_upper`` (and ``treatment_status`` for event studies);
    ``simple`` gives one row ``att``, ``se``, ``ci_lower``, ``ci_upper``.
    """

    overall_att: float
    overall_se: float
    aggregation_type: str
    egt: np.ndarray | None = None
    att_egt: np.ndarray | None = None
    se_egt: np.ndarray | None = None
    crit_val: float | np.ndarray | None = None
    inf_func: np.ndarray | None = None
    inf_func_overall: np.ndarray | None = None
    args: dict[str, Any] = field(default_factory=dict)
    # --- moderndid additions (after the ModernDiD 0.4.1 fields, all defaulted) ---
    vcov_analytical: np.ndarray | None = None
    alpha: float | None = None
    min_event_time: int | None = None
    max_event_time: int | None = None
    balanced_event_threshold: int | None = None

    _labels: ClassVar[Mapping[str, AggregationLabels]] = _LABELS
    _title: ClassVar[str] = "Aggregate Triple DiD Treatment Effects"
    _reference: ClassVar[str] = _REFERENCE

    def __post_init__(self) -> None:
        self._plain_dicts("args")
        kind = _ddd_type(self.aggregation_type)
        if kind not in _AGG_TYPES:
            raise InvalidOptionError(
                f"aggregation_type must be one of {_AGG_TYPES}, got {self.aggregation_type!r}"
            )
        self._set(aggregation_type=kind, overall_att=float(self.overall_att),
                  overall_se=math.nan if self.overall_se is None else float(self.overall_se))
        if self.crit_val is not None:
            cv = as_array(self.crit_val, dtype=float)
            self._set(crit_val=float(cv) if cv.ndim == 0 else cv)
        if self.egt is not None:
            self._set(egt=np.atleast_1d(as_array(self.egt)))
            n_ev = self.egt.shape[0]
            self._set_per_event(("att_egt", "se_egt"), n_ev)
            if isinstance(self.crit_val, np.ndarray):
                self._check_length("crit_val", self.crit_val, n_ev,
                                   "be a scalar or have one entry per event")
        self._as_arrays(["inf_func", "inf_func_overall", "vcov_analytical"], float)

    @classmethod
    def from_aggte(cls, agg: AGGTEResult, aggregation_type: str | None = None) -> DDDAggResult:
        """Wrap an :class:`~moderndid.did.results.AGGTEResult` of DDD cells.

        Parameters
        ----------
        agg : AGGTEResult
            Aggregation computed by the shared ``aggte`` core on DDD ATT(g, t).
        aggregation_type : str, optional
            ``"simple"``, ``"eventstudy"`` (or ``"dynamic"``), ``"group"`` or
            ``"calendar"``; must agree with ``agg.aggregation_type`` (``"dynamic"`` there
            maps to ``"eventstudy"``). ``None`` takes it from ``agg``.

        Returns
        -------
        DDDAggResult

        Raises
        ------
        InvalidOptionError
            If ``aggregation_type`` does not match ``agg``.
        TypeError
            If ``agg`` is not an ``AGGTEResult``.
        """
        if not isinstance(agg, AGGTEResult):
            raise TypeError(f"from_aggte expects an AGGTEResult, got {type(agg).__name__}")
        kind = _ddd_type(agg.aggregation_type)
        if aggregation_type is not None and _ddd_type(aggregation_type) != kind:
            raise InvalidOptionError(
                f"aggregation_type {aggregation_type!r} does not match the aggregation "
                f"{agg.aggregation_type!r}"
            )
        crit: float | np.ndarray | None = None
        if agg.critical_values is not None:
            cv = np.asarray(agg.critical_values, dtype=float)
            finite = cv[np.isfinite(cv)]
            if finite.size and np.all(finite == finite[0]):
                crit = float(finite[0])
            elif cv.size:
                crit = cv
        args = dict(agg.estimation_params)
        if agg.call_info:
            args.setdefault("call_info", dict(agg.call_info))
        same = ("overall_att", "overall_se", "vcov_analytical", "alpha", "min_event_time",
                "max_event_time", "balanced_event_threshold")
        return cls(aggregation_type=kind, egt=agg.event_times, att_egt=agg.att_by_event,
                   se_egt=agg.se_by_event, crit_val=crit, inf_func=agg.influence_func,
                   inf_func_overall=agg.influence_func_overall, args=args,
                   **{name: getattr(agg, name) for name in same})

    event_times = _alias("egt")
    att_by_event = _alias("att_egt")
    se_by_event = _alias("se_egt")
    influence_func = _alias("inf_func")
    influence_func_overall = _alias("inf_func_overall")

    @property
    def critical_values(self) -> np.ndarray | None:
        """Critical value of each disaggregated band (``None`` for ``simple``)."""
        if self.egt is None:
            return None
        crit = normal_quantile(self.alpha_level) if self.crit_val is None else self.crit_val
        return np.broadcast_to(np.asarray(crit, dtype=float), self.egt.shape[:1]).copy()

    def confidence_bands(self) -> tuple[np.ndarray, np.ndarray]:
        """Bands of the disaggregated effects, ``att_egt -/+ crit_val * se_egt``.

        Returns
        -------
        tuple of numpy.ndarray
            ``(lower, upper)``; empty arrays without disaggregated effects.
        """
        if self.att_egt is None or self.egt is None:
            return np.empty(0), np.empty(0)
        return self._event_bands()

    def _info_sections(self, **info: Any) -> list[Section]:
        panel = bool(param(self.args, "panel", default=True))
        return _ddd_sections(self.args, panel=panel, staggered=True, n_units=None, **info)


def build_ddd_result(
    fit: Any, data: Any, params: Mapping[str, Any]
) -> DDDPanelResult | DDDRCResult | DDDMultiPeriodResult | DDDMultiPeriodRCResult:
    """Build the result object of ``ddd`` from an engine-independent fit.

    Parameters
    ----------
    fit : DDDFit
        Needs ``cells`` (objects with ``group`` and ``time``), ``att``, ``se``,
        ``critical_value``, ``vcov`` (covariance of ``att``), ``influence`` (``n x cells``
        or ``None``), ``moments``, ``two_period`` and ``subgroup_counts`` (label or
        ``(g, q)`` -> count; may be empty).
    data : DidData
        Needs ``n_units`` and ``kind`` (``"rc"`` for repeated cross-sections); ``cohorts``
        and ``periods`` are used for ``glist`` / ``tlist`` when present.
    params : mapping
        The ``args`` / ``estimation_params`` of the result (``alpha``, ``panel``, ``boot``,
        ``cband``, ...).

    Returns
    -------
    DDDPanelResult, DDDRCResult, DDDMultiPeriodResult or DDDMultiPeriodRCResult
        Two-period classes when ``fit.two_period`` (the single cell), else the staggered
        ones; ``*RC*`` classes when ``params["panel"]`` is false (or ``data.kind == "rc"``).
    """
    args = dict(params)
    panel = bool(args.get("panel", getattr(data, "kind", "panel") != "rc"))
    alpha = float(args.get("alpha", 0.05))
    att = np.atleast_1d(np.asarray(fit.att, dtype=float))
    se = np.atleast_1d(np.asarray(fit.se, dtype=float))
    crit = float(fit.critical_value)
    lo, hi = bands(att, se, crit)
    n_units = getattr(data, "n_units", None)
    n_units = None if n_units is None else int(n_units)
    influence = getattr(fit, "influence", None)
    counts = dict(getattr(fit, "subgroup_counts", None) or {})
    if fit.two_period:
        return (DDDPanelResult if panel else DDDRCResult)(
            att=float(att[0]), se=float(se[0]), uci=float(hi[0]), lci=float(lo[0]), boots=None,
            att_inf_func=None if influence is None else np.asarray(influence)[:, 0],
            did_atts={}, subgroup_counts=counts, args=args, n_units=n_units, alpha=alpha,
        )
    if counts:
        args.setdefault("subgroup_counts", counts)
    cohorts = getattr(data, "cohorts", None)
    periods = getattr(data, "periods", None)
    return (DDDMultiPeriodResult if panel else DDDMultiPeriodRCResult)(
        att=att, se=se, uci=hi, lci=lo, groups=np.array([c.group for c in fit.cells]),
        times=np.array([c.time for c in fit.cells]),
        glist=None if cohorts is None else np.asarray(cohorts),
        tlist=None if periods is None else np.asarray(periods), inf_func_mat=influence,
        n=n_units, args=args, critical_value=crit, vcov_analytical=getattr(fit, "vcov", None),
        alpha=alpha, moments=getattr(fit, "moments", None),
    )

