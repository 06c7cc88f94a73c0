"""Tests of moderndid.plots: what is drawn, not only that drawing succeeds."""

from __future__ import annotations

import importlib
import sys
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

import moderndid
from moderndid.errors import InvalidOptionError
from moderndid.plots import plot_agg, plot_event_study, plot_gt

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------------------
# fixtures: one att_gt fit on mpdta, aggregated every way
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mp():
    return moderndid.att_gt(moderndid.load_mpdta(), "lemp", "year", "countyreal", "first.treat")


@pytest.fixture(scope="module")
def dyn(mp):
    return moderndid.aggte(mp, type="dynamic")


@pytest.fixture(scope="module")
def dyn_window(mp):
    return moderndid.aggte(mp, type="dynamic", min_e=-2, max_e=2)


@pytest.fixture(scope="module")
def grp(mp):
    return moderndid.aggte(mp, type="group")


@pytest.fixture(scope="module")
def cal(mp):
    return moderndid.aggte(mp, type="calendar")


# ---------------------------------------------------------------------------------------
# helpers reading the drawing back
# ---------------------------------------------------------------------------------------


def containers(ax) -> list[ErrorbarContainer]:
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


def points(container: ErrorbarContainer) -> tuple[np.ndarray, np.ndarray]:
    line = container.lines[0]
    return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)


def vertical_intervals(container: ErrorbarContainer) -> dict[float, tuple[float, float]]:
    """x -> (lower, upper) of every drawn vertical error bar."""
    (bars,) = container.lines[2]
    out = {}
    for seg in bars.get_segments():
        if len(seg):
            assert seg[0][0] == seg[1][0]
            out[float(seg[0][0])] = (float(min(seg[:, 1])), float(max(seg[:, 1])))
    return out


def horizontal_intervals(container: ErrorbarContainer) -> dict[float, tuple[float, float]]:
    """y -> (lower, upper) of every drawn horizontal error bar."""
    (bars,) = container.lines[2]
    out = {}
    for seg in bars.get_segments():
        if len(seg):
            assert seg[0][1] == seg[1][1]
            out[float(seg[0][1])] = (float(min(seg[:, 0])), float(max(seg[:, 0])))
    return out


def hlines_at_zero(ax) -> list:
    """Full-width horizontal lines at y = 0 (``axhline(0)``)."""
    return [
        ln for ln in ax.lines if list(ln.get_ydata()) == [0, 0] and list(ln.get_xdata()) == [0, 1]
    ]


def vlines_at(ax, x: float) -> list:
    return [
        ln for ln in ax.lines if list(ln.get_xdata()) == [x, x] and list(ln.get_ydata()) == [0, 1]
    ]


def legend_texts(legend) -> list[str]:
    return [t.get_text() for t in legend.get_texts()]


def assert_png(path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 5_000


# ---------------------------------------------------------------------------------------
# plot_event_study
# ---------------------------------------------------------------------------------------


def test_event_study_points_and_intervals(dyn):
    fig = plot_event_study(dyn)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    conts = containers(ax)
    assert len(conts) == 2  # pre and post
    xs = np.concatenate([points(c)[0] for c in conts])
    ys = np.concatenate([points(c)[1] for c in conts])
    assert xs.size == dyn.event_times.size
    order = np.argsort(xs)
    np.testing.assert_array_equal(xs[order], dyn.event_times)
    np.testing.assert_allclose(ys[order], dyn.att_by_event)

    # bands are att -/+ critical value * se, the result's own bands
    lo, hi = dyn.confidence_bands()
    np.testing.assert_allclose(lo, dyn.att_by_event - dyn.critical_values * dyn.se_by_event)
    drawn = {}
    for c in conts:
        drawn.update(vertical_intervals(c))
    assert len(drawn) == dyn.event_times.size
    for e, low, high in zip(dyn.event_times, lo, hi, strict=True):
        np.testing.assert_allclose(drawn[float(e)], (low, high), rtol=1e-12)

    # pre (e < 0) and post (e >= 0) differ in colour and marker
    pre, post = conts
    assert np.all(points(pre)[0] < 0) and np.all(points(post)[0] >= 0)
    assert pre.lines[0].get_color() != post.lines[0].get_color()
    assert pre.lines[0].get_marker() != post.lines[0].get_marker()


def test_event_study_labels_reference_lines_and_legend(dyn):
    fig = plot_event_study(dyn, title="Minimum wage")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Event time"
    assert ax.get_ylabel() == "ATT"
    assert ax.get_title() == "Minimum wage"
    assert len(hlines_at_zero(ax)) == 1
    (onset,) = vlines_at(ax, -0.5)
    assert onset.get_linestyle() == "--"
    (legend,) = fig.legends
    assert legend_texts(legend) == ["Pre-treatment", "Post-treatment"]
    kind = "simultaneous bands" if dyn.uniform_bands else "pointwise intervals"
    assert legend.get_title().get_text() == f"95% {kind}"
    # every event time gets a tick
    np.testing.assert_array_equal(ax.get_xticks(), dyn.event_times)

    custom = plot_event_study(dyn, xlabel="Years since treatment", ylabel="Effect on lemp")
    assert custom.axes[0].get_xlabel() == "Years since treatment"
    assert custom.axes[0].get_ylabel() == "Effect on lemp"
    assert custom.axes[0].get_title() == ""


def test_event_study_without_ref_line_or_pre(dyn):
    fig = plot_event_study(dyn, ref_line=False, show_pre=False)
    ax = fig.axes[0]
    assert hlines_at_zero(ax) == [] and vlines_at(ax, -0.5) == []
    (post,) = containers(ax)
    x, y = points(post)
    keep = dyn.event_times >= 0
    np.testing.assert_array_equal(x, dyn.event_times[keep])
    np.testing.assert_allclose(y, dyn.att_by_event[keep])
    assert legend_texts(fig.legends[0]) == ["Post-treatment"]


def test_event_study_missing_se_draws_point_without_interval(dyn):
    se = dyn.se_by_event.copy()
    se[1] = np.nan
    res = dyn._replace(se_by_event=se)
    ax = plot_event_study(res).axes[0]
    conts = containers(ax)
    assert sum(points(c)[0].size for c in conts) == dyn.event_times.size
    drawn = {}
    for c in conts:
        drawn.update(vertical_intervals(c))
    assert float(dyn.event_times[1]) not in drawn
    assert len(drawn) == dyn.event_times.size - 1


def test_event_study_uses_the_result_critical_values(dyn):
    n = dyn.event_times.size
    wide = dyn._replace(critical_values=np.full(n, 3.0))
    drawn = {}
    for c in containers(plot_event_study(wide).axes[0]):
        drawn.update(vertical_intervals(c))
    for e, a, s in zip(dyn.event_times, dyn.att_by_event, dyn.se_by_event, strict=True):
        np.testing.assert_allclose(drawn[float(e)], (a - 3.0 * s, a + 3.0 * s), rtol=1e-12)

    # no critical values: pointwise normal quantile at the result's alpha
    pointwise = dyn._replace(critical_values=None, alpha=0.1)
    drawn = {}
    for c in containers(plot_event_study(pointwise).axes[0]):
        drawn.update(vertical_intervals(c))
    z = 1.6448536269514722
    a, s = dyn.att_by_event[0], dyn.se_by_event[0]
    np.testing.assert_allclose(drawn[float(dyn.event_times[0])], (a - z * s, a + z * s))


def test_event_study_several_results_dodged_with_legend(dyn, dyn_window):
    fig = plot_event_study([dyn, dyn_window], labels=["Full window", "e in [-2, 2]"], dodge=0.2)
    ax = fig.axes[0]
    conts = containers(ax)
    assert len(conts) == 4
    n_points = sum(points(c)[0].size for c in conts)
    assert n_points == dyn.event_times.size + dyn_window.event_times.size

    def xs_of(prefix):
        return np.sort(
            np.concatenate([points(c)[0] for c in conts if c.get_label().startswith(prefix)])
        )

    np.testing.assert_allclose(xs_of("Full window:"), dyn.event_times - 0.1)
    np.testing.assert_allclose(xs_of("e in [-2, 2]:"), dyn_window.event_times + 0.1)
    (legend,) = fig.legends
    texts = legend_texts(legend)
    assert texts[:2] == ["Full window", "e in [-2, 2]"]
    assert "Pre-treatment (open)" in texts and "Post-treatment (filled)" in texts
    # one colour per result, pre-treatment markers open
    colors = {c.get_label(): c.lines[0].get_color() for c in conts}
    assert colors["Full window: pre-treatment"] == colors["Full window: post-treatment"]
    assert colors["Full window: post-treatment"] != colors["e in [-2, 2]: post-treatment"]
    pre = next(c for c in conts if c.get_label() == "Full window: pre-treatment")
    assert pre.lines[0].get_markerfacecolor() == "white"

    default = plot_event_study([dyn, dyn_window])
    assert legend_texts(default.legends[0])[:2] == ["Model 1", "Model 2"]


def test_event_study_on_given_axes(dyn):
    fig = Figure()
    ax1, ax2 = fig.subplots(1, 2)
    out = plot_event_study(dyn, ax=ax2, labels="Baseline", colors="black")
    assert out is fig
    assert containers(ax1) == [] and len(containers(ax2)) == 2
    legend = ax2.get_legend()
    assert legend is not None
    assert legend.get_title().get_text().startswith("Baseline\n")
    assert {c.lines[0].get_color() for c in containers(ax2)} == {"black"}


def test_event_study_accepts_duck_typed_results():
    # e.g. a triple-differences event study: only the four attributes are needed
    res = SimpleNamespace(
        event_times=np.array([-2, -1, 0, 1]),
        att_by_event=np.array([0.01, -0.02, 0.1, 0.2]),
        se_by_event=np.array([0.01, 0.02, 0.03, np.nan]),
        critical_values=None,
    )
    ax = plot_event_study(res).axes[0]
    conts = containers(ax)
    assert sum(points(c)[0].size for c in conts) == 4
    drawn = {}
    for c in conts:
        drawn.update(vertical_intervals(c))
    assert sorted(drawn) == [-2.0, -1.0, 0.0]
    np.testing.assert_allclose(
        drawn[0.0], (0.1 - 1.959963984540054 * 0.03, 0.1 + 1.959963984540054 * 0.03)
    )


def test_event_study_rejects_bad_input(dyn, grp):
    with pytest.raises(InvalidOptionError, match="plot_agg"):
        plot_event_study(grp)
    with pytest.raises(InvalidOptionError, match="dynamic"):
        plot_event_study([dyn, grp])
    with pytest.raises(TypeError, match="att_by_event"):
        plot_event_study(object())
    with pytest.raises(InvalidOptionError, match="labels"):
        plot_event_study([dyn, dyn], labels=["only one"])
    with pytest.raises(InvalidOptionError, match="colors"):
        plot_event_study([dyn, dyn], colors=["red"])
    with pytest.raises(InvalidOptionError, match="at least one"):
        plot_event_study([])
    with pytest.raises(InvalidOptionError, match="dodge"):
        plot_event_study(dyn, dodge=-1)


# ---------------------------------------------------------------------------------------
# plot_gt
# ---------------------------------------------------------------------------------------


def test_gt_one_panel_per_cohort(mp):
    fig = plot_gt(mp, title="ATT(g,t)")
    cohorts = np.unique(mp.groups)
    assert len(fig.axes) == cohorts.size
    assert [ax.get_title() for ax in fig.axes] == [f"Group {g}" for g in cohorts]
    assert fig.get_suptitle() == "ATT(g,t)"
    lo, hi = mp.confidence_bands()
    np.testing.assert_allclose(lo, mp.att_gt - mp.critical_value * mp.se_gt)
    for ax, g in zip(fig.axes, cohorts, strict=True):
        cells = mp.groups == g
        conts = containers(ax)
        xs = np.concatenate([points(c)[0] for c in conts])
        ys = np.concatenate([points(c)[1] for c in conts])
        assert xs.size == cells.sum()
        order = np.argsort(xs)
        np.testing.assert_array_equal(xs[order], mp.times[cells])
        np.testing.assert_allclose(ys[order], mp.att_gt[cells])
        drawn = {}
        for c in conts:
            drawn.update(vertical_intervals(c))
        for t, low, high in zip(mp.times[cells], lo[cells], hi[cells], strict=True):
            np.testing.assert_allclose(drawn[float(t)], (low, high), rtol=1e-12)
        # pre (t < g) and post (t >= g) are separate, differently coloured series
        by_label = {c.get_label(): c for c in conts}
        if "Pre-treatment" in by_label:
            assert np.all(points(by_label["Pre-treatment"])[0] < g)
        assert np.all(points(by_label["Post-treatment"])[0] >= g)
        assert len(hlines_at_zero(ax)) == 1
        assert ax.get_xlabel() == "Time"
    assert fig.axes[0].get_ylabel() == "ATT(g,t)"
    (legend,) = fig.legends
    assert legend_texts(legend) == ["Pre-treatment", "Post-treatment"]
    colors = {c.get_label(): c.lines[0].get_color() for c in containers(fig.axes[1])}
    assert colors["Pre-treatment"] != colors["Post-treatment"]
    # shared ATT axis by default
    assert fig.axes[0].get_shared_y_axes().joined(fig.axes[0], fig.axes[2])


def test_gt_groups_and_layout(mp):
    fig = plot_gt(mp, groups=[2007, 2004], ncols=1, sharey=False)
    assert [ax.get_title() for ax in fig.axes] == ["Group 2007", "Group 2004"]
    assert not fig.axes[0].get_shared_y_axes().joined(fig.axes[0], fig.axes[1])
    assert fig.axes[0].get_xlabel() == "" and fig.axes[1].get_xlabel() == "Time"

    grid = plot_gt(mp, ncols=2)  # 2 x 2 grid, the empty slot removed
    assert len(grid.axes) == 3
    # the panel above the empty slot labels its x axis
    assert [ax.get_xlabel() for ax in grid.axes] == ["", "Time", "Time"]
    assert [ax.get_ylabel() for ax in grid.axes] == ["ATT(g,t)", "", "ATT(g,t)"]

    given = Figure()
    assert plot_gt(mp, fig=given, groups=[2006]) is given
    assert [ax.get_title() for ax in given.axes] == ["Group 2006"]

    with pytest.raises(InvalidOptionError, match="not a cohort"):
        plot_gt(mp, groups=[2005])
    with pytest.raises(InvalidOptionError, match="ncols"):
        plot_gt(mp, ncols=0)
    with pytest.raises(TypeError, match="plot_event_study or plot_agg"):
        plot_gt(moderndid.aggte(mp, type="simple"))


# ---------------------------------------------------------------------------------------
# plot_agg
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "axis_label"), [("group", "Group"), ("calendar", "Time")])
def test_agg_point_ranges_and_overall(request, kind, axis_label):
    res = request.getfixturevalue("grp" if kind == "group" else "cal")
    fig = plot_agg(res, title=f"{kind} effects")
    (ax,) = fig.axes
    assert ax.get_ylabel() == axis_label
    assert ax.get_xlabel() == "ATT"
    assert ax.get_title() == f"{kind} effects"
    (cont,) = containers(ax)
    x, y = points(cont)
    n = res.event_times.size
    assert x.size == n
    np.testing.assert_allclose(x, res.att_by_event)
    np.testing.assert_array_equal(y, np.arange(n))
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(v) for v in res.event_times]
    lo, hi = res.confidence_bands()
    drawn = horizontal_intervals(cont)
    for pos in range(n):
        np.testing.assert_allclose(drawn[float(pos)], (lo[pos], hi[pos]), rtol=1e-12)
    # first label on top
    bottom, top = ax.get_ylim()
    assert top < bottom

    # overall ATT: dashed vertical line and its shaded pointwise interval
    (overall,) = vlines_at(ax, res.overall_att)
    assert overall.get_linestyle() == "--"
    o_lo, o_hi = res.overall_confidence_interval()
    (band,) = [p for p in ax.patches if p.get_gid() == "moderndid-overall-band"]
    verts = band.get_patch_transform().transform(band.get_path().vertices)
    np.testing.assert_allclose([verts[:, 0].min(), verts[:, 0].max()], [o_lo, o_hi])
    assert len(vlines_at(ax, 0.0)) == 1  # reference line at 0
    texts = legend_texts(fig.legends[0])
    assert texts[1] == "Overall ATT (95% CI)"
    assert texts[0].startswith(f"{axis_label} ATT (95% ")


def test_agg_on_given_axes_and_missing_se(grp):
    fig = Figure()
    ax = fig.add_subplot()
    se = grp.se_by_event.copy()
    se[0] = np.nan
    out = plot_agg(grp._replace(se_by_event=se, overall_se=np.nan), ax=ax)
    assert out is fig
    (cont,) = containers(ax)
    assert points(cont)[0].size == grp.event_times.size
    assert sorted(horizontal_intervals(cont)) == [1.0, 2.0]
    assert not [p for p in ax.patches if p.get_gid() == "moderndid-overall-band"]
    assert legend_texts(ax.get_legend())[1] == "Overall ATT"


def test_agg_rejects_other_aggregations(mp, dyn):
    with pytest.raises(InvalidOptionError, match="plot_event_study"):
        plot_agg(dyn)
    with pytest.raises(InvalidOptionError, match="simple"):
        plot_agg(moderndid.aggte(mp, type="simple"))
    with pytest.raises(TypeError, match="plot_gt"):
        plot_agg(mp)


# ---------------------------------------------------------------------------------------
# output and packaging
# ---------------------------------------------------------------------------------------


def test_figures_save_as_png(tmp_path, mp, dyn, dyn_window, grp, cal):
    figures = {
        "event_study": plot_event_study(dyn),
        "event_study_multi": plot_event_study([dyn, dyn_window], labels=["a", "b"]),
        "gt": plot_gt(mp),
        "group": plot_agg(grp),
        "calendar": plot_agg(cal),
    }
    for name, fig in figures.items():
        # not registered with pyplot: nothing is shown or kept open implicitly
        assert fig.canvas.manager is None
        path = tmp_path / f"{name}.png"
        fig.savefig(path, dpi=60)
        assert_png(path)


def test_plots_import_without_matplotlib(monkeypatch):
    # matplotlib is imported lazily: the package imports even where it is missing
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for name in [m for m in sys.modules if m.startswith("moderndid.plots")]:
        monkeypatch.delitem(sys.modules, name)
    module = importlib.import_module("moderndid.plots")
    assert callable(module.plot_event_study)


def test_missing_matplotlib_gives_install_hint(monkeypatch, dyn):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for call in (
        lambda: plot_event_study(dyn),
        lambda: plot_gt(object()),
        lambda: plot_agg(object()),
    ):
        with pytest.raises(ImportError, match=r"moderndid\[plots\]"):
            call()
