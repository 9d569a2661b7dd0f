"""js.topology: persistence of basins on planes and volumes, summary, merge tree, plots."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxsurf as js
from jaxsurf import _topology as topology
from jaxsurf._surface import Surface

pytest.importorskip("gudhi")

# a non-square grid whose spacing hits neither minimum nor the saddle exactly
A_GRID = np.linspace(-1.23, 1.19, 57)
B_GRID = np.linspace(-0.71, 0.83, 31)


def double_well(a=A_GRID, b=B_GRID, shift=0.0) -> Surface:
    """(a^2 - 0.5)^2 + b^2: minima at a = ±sqrt(0.5), b = 0 (value 0); saddle (0, 0) (0.25)."""
    A, B = np.meshgrid(a, b, indexing="ij")
    return Surface(a, b, {"loss": (A**2 - 0.5) ** 2 + B**2 + shift,
                          "accuracy": 1 - 0.1 * A**2})


def grid_error(surface: Surface, fn) -> float:
    """Largest change of ``fn`` over half a grid step (bounds the sampling error)."""
    da, db = np.diff(surface.alphas).max(), np.diff(surface.betas).max()
    A, B = np.meshgrid(surface.alphas, surface.betas, indexing="ij")
    gradient = np.hypot(*np.gradient(fn(A, B), surface.alphas, surface.betas))
    return float(gradient.max() * np.hypot(da, db) / 2)


def test_double_well_two_minima_one_finite_bar_of_a_quarter():
    s = double_well()
    bars = topology.persistence(s)
    assert bars.shape == (2, 2)
    assert np.isinf(bars[:, 1]).sum() == 1
    finite = bars[np.isfinite(bars[:, 1])][0]
    # exact values: minima 0, saddle 0.25; the grid misses each by less than this
    tol = 0.02
    assert finite[1] - finite[0] == pytest.approx(0.25, abs=tol)
    assert finite[1] == pytest.approx(0.25, abs=tol)
    assert bars[:, 0] == pytest.approx([0.0, 0.0], abs=tol)
    tree = topology.merge_tree(s)
    deepest, other = tree
    assert deepest.merges_into is None and other.merges_into == deepest.id
    assert {round(np.sign(deepest.at[0])), round(np.sign(other.at[0]))} == {-1, 1}
    assert abs(abs(other.at[0]) - np.sqrt(0.5)) <= np.diff(A_GRID).max()
    assert other.saddle_at[0] == pytest.approx(0.0, abs=np.diff(A_GRID).max())
    assert other.saddle_at[1] == pytest.approx(0.0, abs=np.diff(B_GRID).max())
    assert other.death == pytest.approx(finite[1])


def test_bar_converges_to_a_quarter_as_the_grid_refines():
    errors = []
    for n in (15, 41, 121):
        s = double_well(np.linspace(-1.1, 1.3, n), np.linspace(-0.6, 0.9, n // 2 + 1))
        bars = topology.persistence(s)
        finite = bars[np.isfinite(bars[:, 1])]
        errors.append(abs(float(finite[0, 1] - finite[0, 0]) - 0.25))
    assert errors[-1] < errors[0] and errors[-1] < 2e-3


def test_volume_with_three_basins_and_orientation():
    a, b, g = np.linspace(-1, 1, 21), np.linspace(-0.5, 0.5, 9), np.linspace(0, 2, 11)
    A, B, G = np.meshgrid(a, b, g, indexing="ij")
    # three wells along gamma (depths 0, 0.1, 0.3), a bowl in alpha and beta
    wells = np.minimum.reduce([(G - 0.2) ** 2 * 8, (G - 1.0) ** 2 * 8 + 0.1,
                               (G - 1.8) ** 2 * 8 + 0.3])
    v = Surface(a, b, {"loss": A**2 + B**2 + wells}, {}, g)
    tree = topology.merge_tree(v)
    strong = [x for x in tree if x.persistence > 0.05]
    assert len(strong) == 3
    assert strong[0].persistence == np.inf and strong[0].at[2] == pytest.approx(0.2)
    assert [round(x.at[2], 3) for x in strong[1:]] == [1.0, 1.8]
    assert [x.merges_into for x in strong[1:]] == [0, 0]
    # the ridges on the grid: gamma = 0.6 (8 * 0.4^2 = 1.28), gamma = 1.4 (1.28 + 0.1)
    assert [x.persistence for x in strong[1:]] == pytest.approx([1.28 - 0.1, 1.38 - 0.3])
    summary = topology.summary(v, min_persistence=0.05)
    assert summary["num_persistent_minima"] == 3 and summary["grid"] == [21, 9, 11]
    assert summary["argmin"] == pytest.approx([0.0, 0.0, 0.2])


def test_non_finite_points_are_left_out_and_can_cut_the_grid():
    s = double_well()
    loss = s.metrics["loss"].copy()
    loss[len(A_GRID) // 2, :] = np.nan          # a wall of NaN between the two wells
    loss[0, 0] = np.inf
    cut = Surface(s.alphas, s.betas, {"loss": loss})
    bars = topology.persistence(cut)
    assert np.isinf(bars[:, 1]).sum() == 2      # two components that never merge
    summary = topology.summary(cut)
    assert summary["num_components"] == 2 and summary["nonfinite_points"] == len(B_GRID) + 1
    assert summary["max_finite_persistence"] is None
    json.dumps(summary, allow_nan=False)        # JSON-safe: no inf or nan anywhere


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 9), st.integers(2, 9), st.integers(0, 2**31 - 1),
       st.booleans(), st.booleans())
def test_merge_tree_bars_equal_gudhi_bars(n, m, seed, ties, holes):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, m))
    if ties:
        values = np.round(values)               # plateaus and equal minima
    if holes:
        values[rng.random((n, m)) < 0.2] = np.nan
    if not np.isfinite(values).any():
        values[0, 0] = 1.0
    s = Surface(np.arange(n, dtype=float), np.arange(m, dtype=float) * 0.5, {"loss": values})
    tree = np.array([[x.birth, x.death] for x in topology.merge_tree(s)
                     if x.persistence > 0]).reshape(-1, 2)
    tree = tree[np.lexsort((tree[:, 1], tree[:, 0]))]
    assert np.array_equal(topology.persistence(s), tree)


@pytest.mark.parametrize("transform", [np.exp, np.log1p, lambda x: x**3, np.arctan])
def test_summary_invariant_under_monotone_transform(transform):
    rng = np.random.default_rng(1)
    s = double_well()
    bumpy = s.metrics["loss"] + 0.03 * rng.normal(size=s.shape)
    base = Surface(s.alphas, s.betas, {"loss": bumpy})
    moved = Surface(s.alphas, s.betas, {"loss": transform(bumpy)})
    a, b = topology.summary(base), topology.summary(moved)
    # where the minima and saddles are, and how many, does not depend on the scale
    assert a["num_minima"] == b["num_minima"] and a["argmin"] == b["argmin"]
    assert [(x.index, x.saddle_index, x.merges_into) for x in topology.merge_tree(base)] == \
        [(x.index, x.saddle_index, x.merges_into) for x in topology.merge_tree(moved)]


@pytest.mark.parametrize("scale,shift", [(3.0, 0.0), (0.01, 5.0), (250.0, -7.0)])
def test_relative_numbers_invariant_under_positive_affine_maps(scale, shift):
    rng = np.random.default_rng(2)
    s = double_well()
    bumpy = s.metrics["loss"] + 0.03 * rng.normal(size=s.shape)
    a = topology.summary(Surface(s.alphas, s.betas, {"loss": bumpy}))
    b = topology.summary(Surface(s.alphas, s.betas, {"loss": scale * bumpy + shift}))
    for key in ("num_minima", "num_persistent_minima", "num_components", "argmin"):
        assert a[key] == b[key], key
    assert b["relative_total_persistence"] == pytest.approx(a["relative_total_persistence"])
    assert b["total_persistence"] == pytest.approx(scale * a["total_persistence"])
    assert b["min_persistence"] == pytest.approx(scale * a["min_persistence"])


def test_summary_threshold_and_fields():
    s = double_well()
    summary = topology.summary(s)
    assert summary["num_minima"] == 2 and summary["num_persistent_minima"] == 2
    assert summary["relative_threshold"] == topology.DEFAULT_RELATIVE_THRESHOLD
    lo, hi = summary["range"]
    assert summary["min_persistence"] == pytest.approx(0.05 * (hi - lo))
    assert summary["max_finite_persistence"] == pytest.approx(summary["total_persistence"])
    above = topology.summary(s, min_persistence=0.3)
    assert above["num_persistent_minima"] == 1 and above["relative_threshold"] is None
    assert [m["persistence"] for m in summary["persistent_minima"]][0] is None
    assert topology.summary(s, "accuracy")["num_minima"] >= 1
    assert js.topology.summary is topology.summary


def test_basins_say_when_their_minimum_or_saddle_was_interpolated():
    s = double_well()
    exact = topology.merge_tree(s)
    deep, shallow = [b for b in exact if b.persistence > 0.1][:2]
    assert not any(b.interpolated for b in exact)  # no mask: all evaluated
    assert not any(b.interpolated for b in topology.merge_tree(
        Surface(s.alphas, s.betas, s.metrics, evaluated=np.ones(s.shape, bool))))

    def flags(not_evaluated):
        mask = np.ones(s.shape, bool)
        mask[not_evaluated] = False
        refined = Surface(s.alphas, s.betas, s.metrics, evaluated=mask)
        return {b.id: b.interpolated for b in topology.merge_tree(refined)}, refined

    at_minimum, refined = flags(shallow.index)
    assert at_minimum[shallow.id] and not at_minimum[deep.id]
    at_saddle, _ = flags(shallow.saddle_index)  # the saddle belongs to the basin that dies
    assert at_saddle[shallow.id] and not at_saddle[deep.id]
    listed = topology.summary(refined)["persistent_minima"]
    assert [m["interpolated"] for m in listed] == [False, True]
    assert json.loads(json.dumps(listed)) == listed


def test_a_constant_surface_has_one_basin():
    s = Surface(np.arange(4.0), np.arange(5.0), {"loss": np.ones((4, 5))})
    summary = topology.summary(s)
    assert summary["num_minima"] == 1 and summary["total_persistence"] == 0.0
    assert summary["relative_total_persistence"] is None


@pytest.mark.parametrize("call", [topology.persistence, topology.summary, topology.merge_tree])
def test_bad_input(call):
    line = Surface(np.linspace(-1, 1, 7), None, {"loss": np.arange(7.0)})
    with pytest.raises(ValueError, match="2-D plane or a 3-D volume.*line of 7 points"):
        call(line)
    with pytest.raises(ValueError, match="unknown metric 'acc'.*'loss', 'accuracy'"):
        call(double_well(), "acc")
    with pytest.raises(TypeError, match="needs a jaxsurf.Surface"):
        call(np.zeros((3, 3)))
    nan = Surface(np.arange(3.0), np.arange(2.0), {"loss": np.full((3, 2), np.nan)})
    with pytest.raises(ValueError, match="no finite values"):
        call(nan)


def test_bad_threshold():
    with pytest.raises(ValueError, match="min_persistence must be a finite number >= 0"):
        topology.summary(double_well(), min_persistence=-1.0)


def test_plots_of_basins_and_persistence(tmp_path):
    s = double_well()
    rng = np.random.default_rng(3)
    noisy = Surface(s.alphas, s.betas,
                    {"loss": s.metrics["loss"] + 0.02 * rng.normal(size=s.shape)})
    fig = js.plot.basins(noisy, out=tmp_path / "basins.png")
    assert (tmp_path / "basins.png").stat().st_size > 0
    ax = fig.axes[0]
    assert "persistent" in ax.get_title() and ax.get_xlabel().startswith("alpha")
    # the two persistent minima are drawn at their (alpha, beta), not transposed
    big = [c for c in ax.collections if c.get_label().startswith("persistent")][0]
    xy = np.asarray(big.get_offsets())
    assert len(xy) == 2 and np.all(np.abs(np.abs(xy[:, 0]) - np.sqrt(0.5)) < 0.15)
    assert np.all(np.abs(xy[:, 1]) < 0.15)
    fig = js.plot.persistence({"noisy": noisy, "clean": s}, out=tmp_path / "pd.png")
    assert len(fig.axes) == 2 and "noisy" in fig.axes[0].get_legend().get_texts()[0].get_text()
    with pytest.raises(ValueError, match="kind must be one of"):
        js.plot.basins(s, kind="bars")
