"""Plots: orientation on non-square grids, levels, masking, clear errors, saving."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.collections import QuadMesh
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure

from jaxsurf import plot
from jaxsurf._surface import Surface

ALPHAS = np.linspace(-1.0, 1.0, 5)
BETAS = np.array([-0.5, 0.1, 0.5])  # uneven on purpose


def linear(a, b):
    """A plane with different slopes in alpha and beta: a transposed plot cannot match it."""
    return 2.0 * a + 0.3 * b + 3.0


def make_plane(alphas=ALPHAS, betas=BETAS, fn=linear, **meta) -> Surface:
    A, B = np.meshgrid(alphas, betas, indexing="ij")
    loss = fn(A, B)
    return Surface(alphas, betas, {"loss": loss, "accuracy": np.exp(-np.abs(loss))}, meta)


def make_line(n: int = 21) -> Surface:
    a = np.linspace(-1.0, 1.0, n)
    return Surface(a, None, {"loss": a**2 + 0.1, "accuracy": 1.0 - a**2 / 2}, {})


def artists(fig: Figure, kind: type, ax: int | None = 0) -> list:
    """Artists of ``kind`` on axes ``ax`` (default the plot, not its colour bar; None: all)."""
    axes = fig.axes if ax is None else [fig.axes[ax]]
    return [c for a in axes for c in a.get_children() if isinstance(c, kind)]


def bowl(a, b):
    return (a - 0.2) ** 2 + 3.0 * (b + 0.1) ** 2 + 0.05


# --------------------------------------------------------------------------- orientation
def test_heatmap_cell_ij_is_at_alpha_i_beta_j():
    s = make_plane()
    fig = plot.heatmap(s)
    (mesh,) = artists(fig, QuadMesh)
    data = np.asarray(mesh.get_array()).reshape(len(ALPHAS), len(BETAS))
    corners = mesh.get_coordinates()  # (n+1, m+1, 2); cell [i, j] spans corners i..i+1, j..j+1
    assert corners.shape == (len(ALPHAS) + 1, len(BETAS) + 1, 2)
    for i, a in enumerate(ALPHAS):
        for j, b in enumerate(BETAS):
            assert corners[i, j, 0] < a < corners[i + 1, j, 0]
            assert corners[i, j, 1] < b < corners[i, j + 1, 1]
            assert data[i, j] == pytest.approx(s.metrics["loss"][i, j])


def test_contour_vertices_lie_on_their_level():
    """Marching squares interpolates linearly, so on a linear field every vertex is exact."""
    s = make_plane()
    fig = plot.contour(s, levels=[2.0, 3.0, 4.0])
    (cs,) = artists(fig, ContourSet)
    checked = 0
    for level, path in zip(cs.levels, cs.get_paths()):
        verts = path.vertices
        assert len(verts), f"level {level} drew nothing"
        np.testing.assert_allclose(linear(verts[:, 0], verts[:, 1]), level, atol=1e-9)
        checked += len(verts)
    assert checked > 6
    ax = fig.axes[0]
    assert ax.get_xlim() == pytest.approx((ALPHAS[0], ALPHAS[-1]))
    assert ax.get_ylim() == pytest.approx((BETAS[0], BETAS[-1]))


def test_filled_and_surface3d_orientation():
    s = make_plane()
    fig = plot.filled(s, levels=[0.5, 2.0, 3.0, 4.0, 5.5])
    cs = artists(fig, ContourSet)[0]
    for k, path in enumerate(cs.get_paths()):
        verts = path.vertices
        if len(verts):
            z = linear(verts[:, 0], verts[:, 1])
            assert np.all(z >= cs.levels[k] - 1e-9) and np.all(z <= cs.levels[k + 1] + 1e-9)
    fig3 = plot.surface3d(s)
    ax = fig3.axes[0]
    assert ax.get_xlim() == pytest.approx((ALPHAS[0], ALPHAS[-1]))
    assert ax.get_ylim() == pytest.approx((BETAS[0], BETAS[-1]))
    assert [ax.get_xlabel(), ax.get_ylabel(), ax.get_zlabel()] == [
        "alpha (direction 1)", "beta (direction 2)", "loss"]


def test_surface3d_quads_match_grid():
    from jaxsurf.plot._surface3d import surface_quads
    A, B = np.meshgrid(ALPHAS, BETAS, indexing="ij")
    Z = linear(A, B)
    Z[2, 1] = np.nan
    verts, face_z = surface_quads(A, B, Z)
    # 4x2 cells; the NaN node at (2, 1) touches 4 of them
    assert verts.shape == (8 - 4, 4, 3)
    np.testing.assert_allclose(linear(verts[..., 0], verts[..., 1]), verts[..., 2])


# --------------------------------------------------------------------------- levels
def test_levels_like_reference_tool():
    s = make_plane(fn=bowl)
    fig = plot.contour(s, vmin=0.1, vmax=1.0, vlevel=0.2)
    (cs,) = artists(fig, ContourSet)
    np.testing.assert_allclose(cs.levels, [0.1, 0.3, 0.5, 0.7, 0.9])


@pytest.mark.parametrize("lo, hi, log", [(0.0712, 2.93, False), (1.0, 10.0, False),
                                         (0.25, 2.5, True), (0.0031, 47.0, True)])
def test_automatic_contour_levels_are_round_and_reach_the_maximum(lo, hi, log):
    """Issue 27: labels at 0.307, 0.679, 2.17 and a top level far below the maximum."""
    lv = plot.contour_levels(np.array([lo, hi]), log=log)
    assert np.all(np.diff(lv) > 0) and lv[0] > lo and lv[-1] < hi
    below = lo
    for value in lv:  # a multiple of a 1-2-5 step no wider than its gap: 0.31, 2.2, not 2.17
        gap, below = value - below, value
        steps = [f * 10.0 ** m for m in range(-6, 4) for f in (1, 2, 5) if f * 10.0 ** m <= gap]
        assert any(abs(value / s - round(value / s)) < 1e-6 for s in steps[-3:]), (value, lv)
    top = (np.log(lv[-1] / lo) / np.log(hi / lo)) if log else (lv[-1] - lo) / (hi - lo)
    assert top > 0.9, lv


def test_automatic_levels_denser_near_minimum_and_log():
    values = np.linspace(1.0, 10.0, 50)
    lv = plot.contour_levels(values)
    assert lv[0] > 1.0 and lv[-1] < 10.0 and len(lv) == 15
    gaps = np.diff(lv)
    assert gaps[-1] > 3 * gaps[0] and np.all(gaps > 0)  # gaps grow away from the minimum
    log = plot.contour_levels(values, log=True, filled=True, levels=4)
    np.testing.assert_allclose(log, [1.0, 10**0.25, 10**0.5, 10**0.75, 10.0])
    with pytest.raises(ValueError, match="log"):
        plot.contour_levels(values - 5.0, log=True)


def test_compare_shares_levels_and_norm():
    s1, s2 = make_plane(fn=bowl), make_plane(fn=lambda a, b: 3 * bowl(a, b))
    fig = plot.compare({"a": s1, "b": s2}, kind="filled")
    sets = artists(fig, ContourSet, ax=None)
    filled = [c for c in sets if c.filled]
    assert len(filled) == 2
    np.testing.assert_array_equal(filled[0].levels, filled[1].levels)
    assert filled[0].norm.vmin == filled[1].norm.vmin
    assert filled[0].norm.vmax == filled[1].norm.vmax
    both = np.concatenate([s1["loss"].ravel(), s2["loss"].ravel()])
    assert filled[0].levels[0] == pytest.approx(both.min())
    assert filled[0].levels[-1] == pytest.approx(both.max())
    assert [ax.get_title() for ax in fig.axes[:2]] == ["a", "b"]
    for kind in ("contour", "heatmap"):
        assert isinstance(plot.compare({"a": s1, "b": s2}, kind=kind), Figure)


# --------------------------------------------------------------------------- masking
@pytest.mark.parametrize("fn", [plot.contour, plot.filled, plot.heatmap, plot.surface3d])
def test_non_finite_values_are_masked_and_counted(fn):
    s = make_plane(alphas=np.linspace(-1, 1, 6), betas=np.linspace(-1, 1, 4), fn=bowl)
    s.metrics["loss"][0, 0] = np.nan
    s.metrics["loss"][5, 3] = np.inf
    fig = fn(s)
    assert "2 of 24 points non-finite" in fig.axes[0].get_title()


def test_line_masks_and_counts():
    s = make_line()
    s.metrics["loss"][3] = np.nan
    fig = plot.line(s)
    assert "1 of 42 points non-finite" in fig.axes[0].get_title()


# --------------------------------------------------------------------------- line
def test_line_twin_axes_and_labels():
    s = make_line()
    s.metadata["axis_labels"] = ["alpha (0: params_a, 1: params_b)"]
    fig = plot.line(s, log=True)
    left, right = fig.axes
    assert left.get_xlabel() == "alpha (0: params_a, 1: params_b)"
    assert left.get_yscale() == "log"
    assert "loss" in left.get_ylabel() and right.get_ylabel() == "accuracy (%)"
    (curve,) = left.get_lines()
    np.testing.assert_allclose(curve.get_xdata(), s.alphas)
    np.testing.assert_allclose(curve.get_ydata(), s["loss"])
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["loss", "accuracy"]
    only_acc = plot.line(s, "accuracy")
    assert len(only_acc.axes) == 1 and only_acc.axes[0].get_xlabel().startswith("alpha")


# --------------------------------------------------------------------------- labels and saving
def test_axis_labels_default_metadata_keyword():
    s = make_plane()
    ax = plot.contour(s).axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("alpha (direction 1)", "beta (direction 2)")
    s.metadata["axis_labels"] = ["PC1", "PC2"]
    ax = plot.heatmap(s).axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("PC1", "PC2")
    ax = plot.filled(s, labels=("x", "y")).axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x", "y")


def test_save_png_and_pdf(tmp_path):
    s = make_plane(fn=bowl)
    png = tmp_path / "deep" / "dir" / "c.png"
    plot.contour(s, out=png, title="t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = tmp_path / "s.pdf"
    plot.surface3d(s, out=pdf)
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with pytest.raises(ValueError, match="suffix"):
        plot.contour(s, out=tmp_path / "c.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep", "s.pdf"]


# --------------------------------------------------------------------------- errors
def test_wrong_kind_of_surface():
    with pytest.raises(ValueError, match="is a line.*line\\(\\)"):
        plot.contour(make_line())
    with pytest.raises(ValueError, match="plane"):
        plot.line(make_plane())
    with pytest.raises(TypeError, match="Surface"):
        plot.heatmap({"loss": np.zeros((3, 3))})


def test_unknown_metric_names_the_ones_there():
    with pytest.raises(ValueError, match=r"unknown metric 'err'.*\['loss', 'accuracy'\]"):
        plot.contour(make_plane(), "err")
    with pytest.raises(ValueError, match="unknown metric"):
        plot.line(make_line(), ["loss", "err"])


def test_too_small_and_constant_and_bad_levels():
    tiny = make_plane(alphas=np.array([0.0]), betas=np.linspace(-1, 1, 3))
    with pytest.raises(ValueError, match="at least 2x2"):
        plot.contour(tiny)
    assert isinstance(plot.heatmap(tiny), Figure)  # one row of cells is fine for a heatmap
    flat = make_plane(fn=lambda a, b: 0 * a + 1.0)
    for fn in (plot.contour, plot.filled):
        with pytest.raises(ValueError, match="constant"):
            fn(flat)
    s = make_plane(fn=bowl)
    with pytest.raises(ValueError, match="within the range"):
        plot.contour(s, levels=[100.0, 200.0])
    with pytest.raises(ValueError, match="vlevel"):
        plot.contour(s, vmin=0, vmax=1, vlevel=-0.1)
    with pytest.raises(ValueError, match="vmax"):
        plot.contour(s, vmin=2.0, vmax=1.0)
    assert isinstance(plot.contour(s, levels=[0.5]), Figure)  # one level: no colour bar
    with pytest.raises(ValueError, match="increasing"):
        plot.contour(s, levels=[0.5, 0.2])
    with pytest.raises(ValueError, match="log=True needs positive"):
        plot.contour(make_plane(fn=lambda a, b: a + b + 0.1), log=True)
    nan = make_plane(fn=lambda a, b: a * np.nan)
    with pytest.raises(ValueError, match="no finite values"):
        plot.heatmap(nan)
    with pytest.raises(ValueError, match="kind"):
        plot.compare({"a": s}, kind="surface")


# --------------------------------------------------------------------------- what a reader sees
def drawn(fig: Figure):
    """Draws ``fig`` with Agg and returns its renderer (for text extents)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def overlapping(boxes) -> list:
    return [(a, b) for k, a in enumerate(boxes) for b in boxes[k + 1:] if a.overlaps(b)]


@pytest.mark.parametrize("betas", [np.linspace(-1, 1, 11), np.linspace(-0.5, 0.5, 7)])
def test_surface3d_tick_labels_and_z_label_do_not_collide(betas):
    """The quickstart's square plane drew "1.00" of alpha on top of "-1.00" of beta."""
    from jaxsurf.plot._surface3d import drawn_tick_labels
    s = make_plane(alphas=np.linspace(-1, 1, 11), betas=betas, fn=bowl)
    fig = plot.surface3d(s)
    renderer = drawn(fig)
    ax = fig.axes[0]
    ticks = {name: [t.get_window_extent(renderer) for _, t in drawn_tick_labels(axis)]
             for name, axis in (("x", ax.xaxis), ("y", ax.yaxis), ("z", ax.zaxis))}
    assert all(len(b) >= 2 for b in ticks.values()), "every axis keeps labelled ticks"
    assert not overlapping([b for boxes in ticks.values() for b in boxes])
    assert all(t.get_text() and "." not in t.get_text() or len(t.get_text()) <= 5
               for _, t in drawn_tick_labels(ax.xaxis))   # "-0.5", "1", not "-1.00"
    zlabel = ax.zaxis.label.get_window_extent(renderer)
    assert not any(zlabel.overlaps(b) for b in ticks["z"])


def test_contour_colour_bar_is_true_to_scale_and_says_how_levels_are_spaced():
    s = make_plane(alphas=np.linspace(-1, 1, 9), betas=np.linspace(-1, 1, 7), fn=bowl)
    fig = plot.contour(s)
    (cs,) = artists(fig, ContourSet)
    bar = cs.colorbar
    assert bar.spacing == "proportional"
    assert "denser near the minimum" in bar.ax.get_ylabel()
    ticks = [t for t in bar.get_ticks() if cs.levels[0] <= t <= cs.levels[-1]]
    assert len(ticks) >= 3 and np.allclose(np.diff(ticks), ticks[1] - ticks[0])  # round, even
    assert "levels every 0.2" in plot.contour(s, vmin=0.1, vmax=1.0, vlevel=0.2).axes[1] \
        .get_ylabel()
    assert "evenly spaced in log" in plot.filled(s, log=True).axes[1].get_ylabel()
    assert plot.contour(s, levels=[0.5, 1.0, 2.0]).axes[1].get_ylabel() == "loss"
    assert "denser" in plot.compare({"a": s, "b": s}).axes[-1].get_ylabel()


def test_contour_labels_lie_inside_the_axes():
    """Automatic placement put labels where lines leave the axes, and clipped them."""
    a, b = np.linspace(-1, 1, 31), np.linspace(-1, 1, 31)
    s = make_plane(alphas=a, betas=b, fn=lambda x, y: x**2 + y**2 + 0.5 * x * y + 0.1)
    fig = plot.contour(s)
    renderer = drawn(fig)
    ax = fig.axes[0]
    labels = [t for t in ax.texts if t.get_text()]
    assert len(labels) >= 5
    inside = ax.get_window_extent(renderer)
    for t in labels:
        box = t.get_window_extent(renderer)
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1, t.get_text()
        assert inside.y0 <= box.y0 and box.y1 <= inside.y1, t.get_text()
    assert not overlapping([t.get_window_extent(renderer) for t in labels])


def test_line_accuracy_in_percent_legend_off_the_curves_and_titles():
    s = make_line()
    fig = plot.line(s)
    renderer = drawn(fig)
    left, right = fig.axes
    np.testing.assert_allclose(right.get_lines()[0].get_ydata(), 100 * s["accuracy"])
    assert right.get_ylabel() == "accuracy (%)"
    (legend,) = fig.legends
    assert not legend.get_window_extent(renderer).overlaps(left.get_window_extent(renderer))
    assert left.get_title() == "loss and accuracy along direction 1"
    interp = Surface(s.alphas, None, {"accuracy": s["accuracy"], "loss": s["loss"]},
                     {"kind": "interpolation"})
    title = plot.line(interp).axes[0].get_title()
    assert title.startswith("loss and accuracy") and "params_a" in title
    wide = Surface(s.alphas, None, {"loss": s["loss"], "accuracy": 100 * s["accuracy"]})
    assert plot.line(wide).axes[1].get_ylabel() == "accuracy"   # already in %: left alone


def test_plot_path_aspect_labels_and_origin_on_top():
    from jaxsurf.plot import pca_path
    a, b = np.linspace(-30, 5, 15), np.linspace(-5, 2, 11)
    A, B = np.meshgrid(a, b, indexing="ij")
    s = Surface(a, b, {"loss": 0.01 * A**2 + B**2 + 0.1})
    coords = np.array([[-26.0, -3.0], [-2.0, -4.0], [-0.6, -0.5], [-0.3, -0.2], [-0.1, -0.05],
                       [-0.02, -0.01], [0.0, 0.0]])
    fig = pca_path(s, coords, explained_variance_ratio=[0.97, 0.02], annotate_every=1)
    ax = fig.axes[0]
    assert ax.get_aspect() == "auto"
    box = ax.get_window_extent(drawn(fig))
    assert 0.5 < box.width / box.height < 2.5          # not a 4:1 strip
    renderer = drawn(fig)
    notes = [t for t in ax.texts if t.get_text() in {str(i) for i in range(len(coords))}]
    assert {"0", "6"} <= {t.get_text() for t in notes}   # start and end always labelled
    assert len(notes) < len(coords)                      # the crowded ones give way
    assert not overlapping([t.get_window_extent(renderer) for t in notes])
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert lines["origin"].get_zorder() > lines["end (6)"].get_zorder()


def test_surface3d_draws_undersides_darker_not_as_missing_data():
    """A wall steeper than the line of sight shows its underside: in its value's colour,
    darkened, with a legend saying so (issue 27: grey read as missing data)."""
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    from jaxsurf.plot._checks import UNDERSIDE_SHADE
    a = np.linspace(-1, 1, 21)
    steep = make_plane(alphas=a, betas=a, fn=lambda x, y: 40 * y**4 + x**2 + 0.1)
    shallow = make_plane(alphas=a, betas=a, fn=lambda x, y: x + 0.1 * y + 3.0)
    for s, expect in ((steep, True), (shallow, False)):
        fig = plot.surface3d(s)
        (faces,) = artists(fig, Poly3DCollection)
        colours = faces.get_facecolor()
        assert not np.all(np.isclose(colours, plot.UNDERSIDE), axis=1).any()  # never grey
        legend = fig.axes[0].get_legend()
        assert (legend is not None and "underside" in legend.get_texts()[0].get_text()) == expect
        if expect:  # the darkest faces are darker than any colour of the map
            assert colours[:, :3].max(axis=1).min() < UNDERSIDE_SHADE + 0.01
    fig = plot.surface3d(steep, elev=89.0)  # from above: no underside, no legend
    assert fig.axes[0].get_legend() is None


def test_a_log_colour_bar_over_many_decades_keeps_its_ticks():
    """matplotlib's LogLocator with 1-2-5 subs draws no tick when it must skip
    decades; a loss spanning 13 decades (a no-skip net's walls) still gets ticks."""
    a, b = np.linspace(-1, 1, 15), np.linspace(-1, 1, 11)
    A, B = np.meshgrid(a, b, indexing="ij")
    s = Surface(a, b, {"loss": 10 ** (13 * (A**2 + B**2) / 2) + 1.0})
    fig = plot.filled(s, log=True)
    fig.canvas.draw()
    bar = next(ax for ax in fig.axes if ax.get_label() == "<colorbar>")
    ticks = [t for t in bar.get_yticks() if bar.get_ylim()[0] <= t <= bar.get_ylim()[1]]
    assert len(ticks) >= 4


def test_basins_title_counts_one_minimum_in_the_singular():
    a = np.linspace(-1, 1, 11)
    bowl = make_plane(alphas=a, betas=a, fn=lambda x, y: x**2 + y**2 + 0.1)
    title = plot.basins(bowl).axes[0].get_title()
    assert "1 local minimum," in title and "minima" not in title


def test_connectivity_plane_marks_a_once_not_with_an_origin_star_too():
    a = np.linspace(-0.5, 1.5, 11)
    s = make_plane(alphas=a, betas=a, fn=lambda x, y: (x - 0.5)**2 + y**2 + 0.1)
    fig = plot.connectivity_plane(s, {"line": np.array([[0.0, 0.0], [1.0, 0.0]])},
                                  points={"A": (0.0, 0.0), "B": (1.0, 0.0)})
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "origin" not in labels
    legend = fig.axes[0].get_legend()
    assert legend is not None and "origin" not in [t.get_text() for t in legend.get_texts()]
    other = plot.connectivity_plane(s, {"line": np.array([[0.2, 0.0], [1.0, 0.0]])},
                                    points={"B": (1.0, 0.0)})     # A elsewhere: star stays
    assert "origin" in [line.get_label() for line in other.axes[0].get_lines()]
