"""Helpers shared by the plotting functions (no matplotlib import at module level)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from moderndid.core.report import as_array, fmt_label, level_label, normal_quantile
from moderndid.errors import InvalidOptionError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes
    from matplotlib.container import ErrorbarContainer
    from matplotlib.figure import Figure

PRE_COLOR = "#1f77b4"
POST_COLOR = "#d62728"
PRE_MARKER = "o"
POST_MARKER = "s"
MAX_EXPLICIT_TICKS = 25


def require_matplotlib() -> None:
    """Import matplotlib or raise an ``ImportError`` that says how to install it."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "moderndid's plotting functions need matplotlib, an optional dependency: "
            "pip install 'moderndid[plots]' (or pip install matplotlib)"
        ) from exc


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A constrained-layout figure not registered with pyplot (no global state or interactive
    backend: works headless, in threads and in loops without accumulating open figures)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def alpha_of(result: Any) -> float:
    """Significance level of a result (``alpha_level``, ``alpha`` or 0.05)."""
    for name in ("alpha_level", "alpha"):
        value = getattr(result, name, None)
        if value is not None and not callable(value):
            try:
                return float(value)
            except (TypeError, ValueError):
                continue
    params = getattr(result, "estimation_params", None) or {}
    try:
        return float(params.get("alpha", 0.05))
    except (TypeError, ValueError, AttributeError):
        return 0.05


def band_note(result: Any, alpha: float) -> str:
    """Legend title describing the intervals, e.g. ``"95% pointwise intervals"``."""
    uniform = bool(getattr(result, "uniform_bands", False))
    kind = "simultaneous bands" if uniform else "pointwise intervals"
    return f"{level_label(alpha)} {kind}"


def as_float(values: Any, name: str, n: int | None = None) -> np.ndarray:
    """``values`` as a 1-D float array (host memory), optionally checked for length ``n``."""
    arr = np.atleast_1d(as_array(values, float) if values is not None else np.nan)
    if arr.ndim != 1:
        raise InvalidOptionError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        if arr.shape[0] == 1:
            return np.full(n, arr[0])
        raise InvalidOptionError(f"{name} must have {n} entries, got {arr.shape[0]}")
    return arr


def half_widths(se: np.ndarray, crit: np.ndarray | float) -> np.ndarray:
    """``crit * se`` (NaN where either is missing: the point is drawn without interval)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(crit, dtype=float) * se


def event_half_widths(result: Any, n: int, alpha: float) -> np.ndarray:
    """Half-widths of an aggregation's ``n`` intervals: ``critical_values * se_by_event``
    (the normal quantile without critical values; NaN without standard errors)."""
    cvals = getattr(result, "critical_values", None)
    crit = as_float(normal_quantile(alpha) if cvals is None else cvals, "critical_values", n)
    return half_widths(as_float(result.se_by_event, "se_by_event", n), crit)


def figure_and_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """``ax`` and the top-level figure holding it, or a new figure with one axes."""
    from matplotlib.figure import Figure

    if ax is None:
        new = new_figure(figsize)
        return new, new.add_subplot()
    fig: Any = ax.get_figure()
    while fig is not None and not isinstance(fig, Figure):
        fig = getattr(fig, "figure", None)  # SubFigure -> its parent
    if fig is None:  # pragma: no cover - an Axes always belongs to a figure
        raise InvalidOptionError("ax is not attached to a matplotlib figure")
    return fig, ax


def set_integer_ticks(axis: Any, values: Sequence[float] | np.ndarray) -> None:
    """Tick every value when there are few of them, else integer-only automatic ticks."""
    from matplotlib.ticker import MaxNLocator

    ticks = np.unique(np.asarray(values, dtype=float))
    ticks = ticks[np.isfinite(ticks)]
    if 0 < ticks.size <= MAX_EXPLICIT_TICKS and np.all(np.mod(ticks, 1) == 0):
        axis.set_ticks(ticks, labels=[fmt_label(t) for t in ticks])
    elif np.all(np.mod(ticks, 1) == 0):
        axis.set_major_locator(MaxNLocator(integer=True))


def draw_points(
    ax: Axes,
    x: np.ndarray,
    y: np.ndarray,
    half: np.ndarray,
    *,
    color: Any,
    marker: str,
    label: str,
    filled: bool = True,
    horizontal: bool = False,
    markersize: float = 6.0,
) -> ErrorbarContainer:
    """Point estimates with error bars ``y -/+ half`` (NaN half-width: no bar), one container."""
    kwargs: dict[str, Any] = dict(
        fmt=marker, color=color, ecolor=color, markeredgecolor=color,
        markerfacecolor=color if filled else "white", markersize=markersize, elinewidth=1.4,
        capsize=3, capthick=1.2, label=label, zorder=3,
    )
    if horizontal:
        return ax.errorbar(y, x, xerr=half, **kwargs)
    return ax.errorbar(x, y, yerr=half, **kwargs)


def zero_line(ax: Axes, *, vertical: bool = False) -> None:
    """Solid reference line at 0."""
    line = ax.axvline if vertical else ax.axhline
    line(0.0, color="0.25", linewidth=0.9, zorder=1, gid="moderndid-zero-line")


def onset_line(ax: Axes, x: float) -> None:
    """Dashed vertical line at treatment onset."""
    ax.axvline(x, color="0.45", linestyle="--", linewidth=0.9, zorder=1, gid="moderndid-onset-line")


def add_legend(
    fig: Figure,
    ax: Axes,
    handles: Sequence[Any],
    labels: Sequence[str],
    *,
    title: str | None,
    outside: bool,
    ncols: int,
    side: Literal["lower center", "right upper"] = "lower center",
) -> None:
    """Legend outside the axes at ``side`` of a figure we created (where it cannot hide an
    estimate: matplotlib's ``"best"`` ignores error bars), else inside ``ax`` at the best spot
    (where it cannot collide with the caller's layout)."""
    common: dict[str, Any] = {"title": title, "fontsize": "small", "title_fontsize": "small"}
    if outside:
        fig.legend(handles, labels, frameon=False, ncols=max(1, min(ncols, len(labels))),
                   loc="outside right upper" if side == "right upper" else "outside lower center",
                   **common)
    else:
        ax.legend(handles, labels, loc="best", framealpha=0.9, **common)
