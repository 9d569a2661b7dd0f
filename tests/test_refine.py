"""refine=js.Refine(...): exact where evaluated, within tol where interpolated,
the mask and metadata kept, resumable from a store, bad settings refused."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxsurf as js
from jaxsurf import _refine as refine_lib

TESTS = os.path.dirname(os.path.abspath(__file__))
DATA = {"x": np.linspace(0.0, 1.0, 6, dtype=np.float32)[:, None]}  # fn's mean: 0.5 * 0
PARAMS = {"w": jnp.zeros(2)}
D1, D2 = {"w": jnp.array([1.0, 0.0])}, {"w": jnp.array([0.0, 1.0])}  # (alpha, beta) = w


def plane(fn, alphas, betas, **kwargs):
    return js.evaluate_plane(fn, PARAMS, D1, D2, DATA, alphas, betas, progress=False,
                             **kwargs)


def bilinear(p, batch):
    a, b = p["w"][0], p["w"][1]
    return 2.0 + 0.5 * a - 0.25 * b + 0.75 * a * b + 0.0 * jnp.mean(batch["x"])


def well_np(a, b):
    """A smooth bowl with a sharp, narrow well off centre (positive everywhere)."""
    return 1.0 + a ** 2 + b ** 2 - 0.9 * np.exp(-((a - 0.3) ** 2 + (b + 0.2) ** 2) / 0.02)


def well(p, batch):
    a, b = p["w"][0], p["w"][1]
    return {"loss": 1.0 + a ** 2 + b ** 2
            - 0.9 * jnp.exp(-((a - 0.3) ** 2 + (b + 0.2) ** 2) / 0.02)
            + 0.0 * jnp.mean(batch["x"]), "accuracy": 0.5 + 0.25 * a}


@pytest.mark.parametrize("scale", ["linear", "log"])
def test_bilinear_function_stops_after_the_first_test_with_zero_error(scale):
    """Non-uniform, non-square grid: coordinates (not indices) weigh the interpolation."""
    alphas = np.sign(np.linspace(-1, 1, 17)) * np.linspace(-1, 1, 17) ** 2
    betas = np.linspace(-0.5, 1.5, 9)
    fn = bilinear if scale == "linear" else (lambda p, b: 10.0 ** (bilinear(p, b) - 2.0))
    s = plane(fn, alphas, betas, refine=js.Refine(tol=1e-4, start=2, scale=scale))
    A, B = np.meshgrid(alphas, betas, indexing="ij")
    exact = 2.0 + 0.5 * A - 0.25 * B + 0.75 * A * B
    exact = exact if scale == "linear" else 10.0 ** (exact - 2.0)
    np.testing.assert_allclose(s.metrics["loss"], exact, rtol=2e-6)
    levels = s.metadata["refine"]["levels"]
    assert [lv["cells_over_tol"] for lv in levels[1:]] == [0]  # one test, nothing refined
    # the start grid (every 4th alpha, every 2nd beta) and its midpoints, nothing else
    expected = np.zeros((17, 9), bool)
    expected[::2, :] = True
    assert np.array_equal(s.evaluated, expected)
    assert s.metadata["points_evaluated"] == expected.sum() == 9 * 9
    assert s.metadata["points_total"] == 153 and s.metadata["interpolated"]


def test_sharp_well_interpolated_within_tol_with_few_points():
    grid = np.linspace(-1, 1, 65)
    tol = 0.01
    s = plane(well, grid, grid, refine=js.Refine(tol=tol, start=3))
    A, B = np.meshgrid(grid, grid, indexing="ij")
    err = np.abs(np.log10(s.metrics["loss"]) - np.log10(well_np(A, B)))
    assert err.max() < tol
    assert s.evaluated.mean() < 0.3  # most of the bowl is interpolated
    # the well is resolved: the points next to its bottom were evaluated
    i, j = np.unravel_index(np.argmin(well_np(A, B)), A.shape)
    assert s.evaluated[i - 1:i + 2, j - 1:j + 2].sum() >= 3
    # the other metric is evaluated at the same points and interpolated linearly
    np.testing.assert_allclose(s.metrics["accuracy"], 0.5 + 0.25 * A, atol=1e-6)


def test_both_fills_stay_within_tol_and_quadratic_is_closer_on_a_smooth_bowl():
    grid = np.linspace(-1, 1, 65)
    A, B = np.meshgrid(grid, grid, indexing="ij")
    errors = {}
    for f in ("quadratic", "bilinear"):
        s = plane(well, grid, grid, refine=js.Refine(tol=0.02, start=3, fill=f))
        errors[f] = np.abs(np.log10(s.metrics["loss"]) - np.log10(well_np(A, B)))
        assert s.metadata["refine"]["fill"] == f
    assert errors["quadratic"].max() < 0.02 and errors["bilinear"].max() < 0.02
    assert errors["quadratic"].mean() < 0.6 * errors["bilinear"].mean()


@given(coeffs=st.lists(st.floats(-2, 2), min_size=9, max_size=9),
       n=st.integers(1, 3), m=st.integers(1, 3))
@settings(max_examples=40, deadline=None)
def test_quadratic_fill_reproduces_biquadratics_on_uneven_coordinates(coeffs, n, m):
    alphas = np.cumsum(np.r_[0.0, np.linspace(1.0, 2.0, 2 * n)])  # uneven spacing
    betas = np.cumsum(np.r_[0.0, np.linspace(0.5, 1.5, 2 * m)])
    A, B = np.meshgrid(alphas, betas, indexing="ij")
    c = np.reshape(coeffs, (3, 3))
    exact = sum(c[p, q] * A ** p * B ** q for p in range(3) for q in range(3))
    mask = np.zeros(exact.shape, bool)
    mask[np.ix_([0, n, 2 * n], [0, m, 2 * m])] = True
    filled = refine_lib.quadratic_fill(np.where(mask, exact, np.nan), mask,
                                       [(0, 2 * n, 0, 2 * m)], alphas, betas)
    np.testing.assert_allclose(filled, exact, atol=1e-9 * (1 + np.abs(exact).max()))


def test_simulate_on_the_exact_plane_picks_what_a_real_run_evaluates():
    grid = np.linspace(-1, 1, 33)
    settings = js.Refine(tol=0.01, start=3)
    real = plane(well, grid, grid, refine=settings)
    sim = refine_lib.simulate(plane(well, grid, grid), settings)
    assert np.array_equal(sim.evaluated, real.evaluated)
    np.testing.assert_array_equal(sim.metrics["loss"], real.metrics["loss"])
    assert sim.metadata["points_evaluated"] == real.metadata["points_evaluated"]
    with pytest.raises(ValueError, match="exact surface"):
        refine_lib.simulate(real, settings)


def test_tighter_tol_never_evaluates_fewer_points():
    grid = np.linspace(-1, 1, 17)
    counts = [int(plane(well, grid, grid, refine=js.Refine(tol=t, start=2)).evaluated.sum())
              for t in (0.1, 0.001)]
    assert counts == sorted(counts) and counts[0] < counts[-1]


def test_mask_and_metadata_round_trip(tmp_path):
    grid = np.linspace(-1, 1, 17)
    s = plane(well, grid, grid, refine=js.Refine(tol=0.05, start=2))
    loaded = js.Surface.load(s.save(tmp_path / "refined.npz"))
    assert loaded == s
    assert loaded.evaluated.dtype == bool and np.array_equal(loaded.evaluated, s.evaluated)
    assert loaded.metadata["refine"]["tol"] == 0.05
    assert loaded.metadata["points_total"] == 17 * 17
    assert loaded.metadata["points_exact"] == s.evaluated.sum()
    assert loaded.metadata["points_interpolated"] == 17 * 17 - s.evaluated.sum()
    assert "interpolated:" in loaded.summary()
    assert js.topology.summary(loaded)["interpolated_points"] == 17 * 17 - s.evaluated.sum()
    ordinary = plane(well, grid[:3], grid[:4])
    assert ordinary.evaluated is None and "interpolated" not in ordinary.summary()
    assert js.topology.summary(ordinary)["interpolated_points"] == 0
    back = js.Surface.load(ordinary.save(tmp_path / "ordinary.npz"))
    assert back.evaluated is None and back == ordinary


def test_surface_refuses_a_mask_of_the_wrong_shape_or_dtype():
    with pytest.raises(ValueError, match="boolean array of the grid's shape"):
        js.Surface(np.arange(3.0), np.arange(2.0), {"loss": np.ones((3, 2))},
                   evaluated=np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="boolean"):
        js.Surface(np.arange(3.0), None, {"loss": np.ones(3)}, evaluated=np.ones(3))


def test_stream_of_batches_gives_the_same_refined_surface():
    grid = np.linspace(-1, 1, 17)
    settings = js.Refine(tol=0.02, start=2)
    in_memory = plane(well, grid, grid, refine=settings)
    stream = js.evaluate_plane(well, PARAMS, D1, D2, [DATA, DATA], grid, grid, progress=False,
                               refine=settings)
    assert np.array_equal(stream.evaluated, in_memory.evaluated)
    np.testing.assert_allclose(stream.metrics["loss"], in_memory.metrics["loss"], rtol=1e-6)


def test_non_positive_values_in_log_scale_are_evaluated_not_interpolated():
    def shifted(p, batch):  # negative on part of the plane
        return well(p, batch)["loss"] - 1.2
    grid = np.linspace(-1, 1, 17)
    s = plane(shifted, grid, grid, refine=js.Refine(tol=0.05, start=2))
    A, B = np.meshgrid(grid, grid, indexing="ij")
    assert s.evaluated[well_np(A, B) - 1.2 <= 0].all()


def test_contour_marks_interpolated_regions(tmp_path):
    grid = np.linspace(-1, 1, 17)
    s = plane(well, grid, grid[:9], refine=js.Refine(tol=0.05, start=2))
    fig = js.plot.contour(s, log=True, show_interpolated=True, out=tmp_path / "c.png")
    ax = fig.axes[0]
    assert ax.get_legend() is not None
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["interpolated", "evaluated"]
    offsets = ax.collections[-1].get_offsets()
    assert len(offsets) == s.evaluated.sum()
    assert (tmp_path / "c.png").stat().st_size > 0
    plain = js.plot.contour(s, log=True)
    assert plain.axes[0].get_legend() is None


# --------------------------------------------------------------------------- resume
CHILD = """
import sys, time
sys.path.insert(0, {tests!r})
from test_refine import resumable_run

def park(info):  # stops for good once some points of the second level are stored
    if info.total > 25 and info.done >= {park_after}:
        time.sleep(300)

resumable_run({store!r}, progress=park)
"""


def resumable_run(store, **kwargs):
    """The refined run the resume test kills and reruns (also imported by the child)."""
    grid = np.linspace(-1, 1, 17)
    kwargs.setdefault("progress", False)
    return js.evaluate_plane(well, PARAMS, D1, D2, DATA, grid, grid, store=store,
                             chunk_size=4, refine=js.Refine(tol=0.01, start=2), **kwargs)


def stored_points(store):
    done = set()
    for part in Path(store).glob("part-*.npz"):
        with np.load(part) as contents:
            done.update(contents["indices"].tolist())
    return len(done)


def test_killed_refined_run_resumes_with_its_finished_points(tmp_path):
    reference = resumable_run(None)
    store = tmp_path / "refine.store"
    code = CHILD.format(tests=TESTS, store=str(store), park_after=8)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not store.exists() or stored_points(store) < 25 + 8:  # start grid + 8 more
        assert child.poll() is None, f"child ended early: {child.stderr.read()}"
        assert time.monotonic() < deadline, "child stored too few points in time"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    kept = stored_points(store)

    resumed = resumable_run(store)
    exact = int(reference.evaluated.sum())
    assert resumed.metadata["points_from_store"] == kept
    assert resumed.metadata["points_evaluated"] == exact - kept < exact
    assert np.array_equal(resumed.evaluated, reference.evaluated)
    assert np.array_equal(resumed.metrics["loss"], reference.metrics["loss"])
    # the store is keyed by the full grid: an exact run of it reuses every refined point
    full = js.evaluate_plane(well, PARAMS, D1, D2, DATA, reference.alphas, reference.betas,
                             store=store, chunk_size=4, progress=False)
    assert full.metadata["points_from_store"] == exact
    assert full.metadata["points_evaluated"] == 17 * 17 - exact
    assert np.array_equal(full.metrics["loss"][reference.evaluated],
                          reference.metrics["loss"][reference.evaluated])


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, match", [
    ({"tol": 0.0}, "positive finite"), ({"tol": -0.1}, "positive finite"),
    ({"tol": float("nan")}, "positive finite"), ({"tol": True}, "positive finite"),
    ({"tol": "0.1"}, "positive finite"), ({"tol": 0.1, "start": -1}, "non-negative integer"),
    ({"tol": 0.1, "start": 1.5}, "non-negative integer"),
    ({"tol": 0.1, "scale": "log2"}, "scale"), ({"tol": 0.1, "metric": ""}, "metric name"),
    ({"tol": 0.1, "fill": "cubic"}, r"fill=\.\.\.\) must be one of \('quadratic', 'bilinear'\)"),
])
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        js.Refine(**kwargs)


def test_start_that_does_not_fit_the_grid_is_refused_before_any_work():
    calls = []
    grid = np.linspace(-1, 1, 9)
    with pytest.raises(ValueError, match=r"start=4\) does not fit betas with 9.*start <= 3"):
        js.evaluate_plane(well, PARAMS, D1, D2, DATA, np.linspace(-1, 1, 17), grid,
                          refine=js.Refine(tol=0.1, start=4), progress=calls.append)
    assert calls == []
    with pytest.raises(ValueError, match="at least 2 points"):
        plane(well, grid, grid[:1], refine=js.Refine(tol=0.1, start=0))


def test_refine_metadata_keys_are_reserved():
    grid = np.linspace(-1, 1, 5)
    with pytest.raises(ValueError, match="refine"):
        plane(well, grid, grid, refine=js.Refine(tol=0.1, start=1), metadata={"refine": 1})


def test_refine_must_be_a_refine_and_name_a_metric_of_fn():
    grid = np.linspace(-1, 1, 5)
    with pytest.raises(TypeError, match="js.Refine"):
        plane(well, grid, grid, refine={"tol": 0.1})
    with pytest.raises(ValueError, match=r"'error'\) is not among fn's metrics \['accuracy', "
                                         r"'loss'\]"):
        plane(well, grid, grid, refine=js.Refine(tol=0.1, start=1, metric="error"))


def test_plan_start_covers_odd_grids_by_bisection():
    cells = refine_lib.plan_start((8, 5), 2)  # 7 = 2 + 2 + 1 + 2 index steps
    assert sorted({(c[0], c[1]) for c in cells}) == [(0, 1), (1, 3), (3, 5), (5, 7)]
    assert sorted({(c[2], c[3]) for c in cells}) == [(0, 1), (1, 2), (2, 3), (3, 4)]
