"""Issue 13: one test (or a few) per numbered defect of the adversarial probe.

Each of these failed on main before the fix; docs/robustness.md has the probe
table (probe, before, after). The model is a plain pytree (a dict of numpy
arrays, no framework) with a least-squares ``fn``.
"""

import io
import json
import tracemalloc
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxsurf as js
from jaxsurf import _cli as cli
from jaxsurf import _store as store_lib

GRID = np.linspace(-1.0, 1.0, 4)


@pytest.fixture
def linear():
    """A linear model as a plain pytree, data, and one direction."""
    rng = np.random.default_rng(0)
    params = {"w": rng.normal(size=(3, 2)).astype(np.float32),
              "b": rng.normal(size=2).astype(np.float32)}
    direction = {k: rng.normal(size=v.shape).astype(np.float32) for k, v in params.items()}
    data = {"x": rng.normal(size=(24, 3)).astype(np.float32),
            "y": rng.normal(size=(24, 2)).astype(np.float32)}

    def fn(p, batch):
        return jnp.mean((batch["x"] @ p["w"] + p["b"] - batch["y"]) ** 2)

    return fn, params, direction, data


def line(linear, alphas=GRID, **kwargs):
    fn, params, direction, data = linear
    return js.evaluate_line(kwargs.pop("fn", fn), params, direction, data, alphas,
                            batch_size=8, progress=False, **kwargs)


# --------------------------------------------------------------------------- 1
def test_1_store_never_mixes_compute_dtypes(linear, tmp_path):
    store = tmp_path / "line.store"
    bf16 = line(linear, store=store, compute_dtype=jnp.bfloat16)
    assert json.loads((store / "request.json").read_text())["compute_dtype"] == "bfloat16"
    again = line(linear, store=store, compute_dtype=jnp.bfloat16)  # all from the store
    assert again.metadata["points_from_store"] == len(GRID)
    assert again.metadata["compute_dtype"] == "bfloat16"
    np.testing.assert_array_equal(again.metrics["loss"], bf16.metrics["loss"])
    with pytest.raises(store_lib.StoreMismatchError,
                       match="compute_dtype: stored bfloat16, requested None"):
        line(linear, store=store)  # float32 on a bfloat16 store
    f32 = line(linear, store=tmp_path / "f32.store")
    assert f32.metadata["compute_dtype"] is None  # fn saw params and data as given
    assert not np.array_equal(f32.metrics["loss"], bf16.metrics["loss"])


# --------------------------------------------------------------------------- 2
@pytest.mark.parametrize("alphas, words", [
    ([0.0, 1.0, 0.5], (r"alphas must be strictly increasing.*alphas\[2\] = 0.5 follows "
                       r"alphas\[1\] = 1.0 \(a decrease\)")),
    ([0.0, 0.5, 0.5], r"strictly increasing.*\(a repeat\)"),
    ([1.0, 1.0 + 1e-12], r"strictly increasing \(sorted, no repeats\) in float32"),
])
def test_2_grids_must_be_strictly_increasing_in_evaluation(linear, alphas, words):
    with pytest.raises(ValueError, match=words):
        line(linear, alphas)
    fn, params, direction, data = linear
    with pytest.raises(ValueError, match=words.replace("alphas", "betas")):
        js.evaluate_plane(fn, params, direction, direction, data, GRID, alphas,
                          progress=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-50, 50), min_size=1, max_size=8))
def test_2_a_surface_accepts_exactly_the_strictly_increasing_grids(values):
    coords = np.asarray(values, np.float64) / 4
    increasing = bool(np.all(np.diff(coords) > 0))
    build = lambda: js.Surface(coords, None, {"loss": np.zeros(len(coords))})
    if increasing:
        assert np.array_equal(build().alphas, coords)
    else:
        with pytest.raises(ValueError, match="alphas must be strictly increasing"):
            build()
        with pytest.raises(ValueError, match="betas must be strictly increasing"):
            js.Surface(GRID, coords, {"loss": np.zeros((4, len(coords)))})


# --------------------------------------------------------------------------- 3
def test_3_errors_raised_inside_fn_keep_their_type_and_identity(linear):
    def concretizes(p, batch):
        return float(jnp.mean(batch["x"] @ p["w"]))  # a Python float of a tracer

    with pytest.raises(jax.errors.ConcretizationTypeError) as info:
        line(linear, fn=concretizes)
    assert any("raised inside fn(params, batch)" in n for n in info.value.__notes__)

    class TwoArgs(Exception):
        def __init__(self, code, detail):
            super().__init__(code, detail)

    raised = TwoArgs(7, "boom")

    def fails(p, batch):
        raise raised

    with pytest.raises(TwoArgs) as info:
        line(linear, fn=fails)
    assert info.value is raised and info.value.args == (7, "boom")
    ours = [n for n in info.value.__notes__ if n.startswith("jaxsurf:")]  # JAX adds one too
    assert len(ours) == 1 and "'x': 'float32[8, 3]'" in ours[0], ours


# --------------------------------------------------------------------------- 4
def test_4_metric_names_that_collide_after_str_are_an_error(linear):
    fn = linear[0]
    with pytest.raises(ValueError, match=r"metric names 1 and '1' are both '1'"):
        line(linear, fn=lambda p, b: {1: fn(p, b), "1": 2 * fn(p, b)})
    with pytest.raises(ValueError, match=r"metric names 1 and '1' are both '1'"):
        js.Surface(GRID, None, {1: np.zeros(4), "1": np.ones(4)})


# --------------------------------------------------------------------------- 5
def _surface_file(tmp_path, header_edit=None, **members):
    """A Surface file, its header edited and members added or replaced."""
    path = js.Surface(GRID, None, {"loss": GRID ** 2}).save(tmp_path / "s.npz")
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    if header_edit:
        header = json.loads(str(arrays["header"]))
        header_edit(header)
        arrays["header"] = np.array(json.dumps(header))
    arrays.update(members)
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("version", ["1", None, 1.5, True, [1]])
def test_5_header_fields_of_the_wrong_type_are_file_errors(tmp_path, capsys, version):
    path = _surface_file(tmp_path, lambda h: h.update(format_version=version))
    with pytest.raises(js.SurfaceFileError, match="format_version must be a positive integer"):
        js.Surface.load(path)
    assert cli.main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert "format_version must be a positive integer" in err and "Traceback" not in err
    path = _surface_file(tmp_path, lambda h: h.update(metric_names=[1]))
    with pytest.raises(js.SurfaceFileError, match="metric_names must be distinct strings"):
        js.Surface.load(path)


def _huge_member(path: Path, name: str, shape: tuple[int, ...]) -> None:
    """Rewrites member ``name`` with an .npy header declaring ``shape`` (8 bytes of data)."""
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": shape})
    members[f"{name}.npy"] = header.getvalue() + b"\0" * 8
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)


def test_5_a_member_declaring_a_huge_shape_is_a_file_error_not_memory_error(tmp_path):
    path = _surface_file(tmp_path)
    _huge_member(path, "metric_0", (10**7, 10**7))
    with pytest.raises(js.SurfaceFileError, match="inconsistent|declares shape"):
        js.Surface.load(path)
    _huge_member(path, "alphas", (10**12,))
    with pytest.raises(js.SurfaceFileError, match=r"declares shape \(1000000000000,\)"):
        js.Surface.load(path)


def test_5_unused_members_are_never_read(tmp_path):
    path = _surface_file(tmp_path)
    size = 64 * 2**20  # 64 MiB of zeros, compressed to ~64 KiB
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z, \
            z.open("junk.npy", "w", force_zip64=True) as member:
        np.lib.format.write_array_header_1_0(
            member, {"descr": "|u1", "fortran_order": False, "shape": (size,)})
        chunk = bytes(2**20)
        for _ in range(size // len(chunk)):
            member.write(chunk)
    assert path.stat().st_size < 2**20
    tracemalloc.start()
    try:
        loaded = js.Surface.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(loaded.metrics["loss"], GRID ** 2)
    assert peak < 4 * 2**20, f"loading used {peak / 2**20:.1f} MiB"


def test_5_store_files_are_checked_before_they_are_used(linear, tmp_path):
    store = tmp_path / "line.store"
    line(linear, store=store)
    part = next(store.glob("part-*.npz"))
    _huge_member(part, "metric_0", (10**12,))
    with pytest.raises(store_lib.StoreError, match=rf"{part.name}.*shape.*delete it"):
        line(linear, store=store)
    part.unlink()
    request = json.loads((store / "request.json").read_text())
    request["format_version"] = "1"
    (store / "request.json").write_text(json.dumps(request))
    with pytest.raises(store_lib.StoreError, match="format_version must be a positive integer"):
        line(linear, store=store)


# --------------------------------------------------------------------------- 6
@pytest.mark.parametrize("values, dtype", [
    (np.array(["a", "b", "c", "d"]), "<U1"),
    (np.array([None, 1.0, 2.0, 3.0], object), "object"),
    (np.array([1j, 1, 2, 3]), "complex128"),
])
def test_6_surface_metrics_must_be_real_numbers(values, dtype):
    with pytest.raises(ValueError, match=rf"metric 'loss' must hold real numbers.*{dtype}"):
        js.Surface(GRID, None, {"loss": values})
    ok = js.Surface(GRID, None, {"hit": np.array([True, False, True, True]),
                                 "count": np.arange(4), "bf16": jnp.ones(4, jnp.bfloat16)})
    assert ok.metrics["bf16"].dtype == np.float32


# --------------------------------------------------------------------------- 9
def test_9_library_metadata_keys_are_reserved(linear):
    with pytest.raises(ValueError, match=r"metadata keys \['kind', 'num_examples'\] are "
                                         r"written by jaxsurf.*under other names"):
        line(linear, metadata={"kind": "mine", "num_examples": 3, "seed": 0})
    s = line(linear, metadata={"seed": 0, "title": "my line"})
    assert s.metadata["kind"] == "line" and s.metadata["num_examples"] == 24
    assert s.metadata["seed"] == 0 and s.metadata["title"] == "my line"


def test_9_non_json_metadata_fails_at_the_call(linear):
    calls = []
    fn = linear[0]

    def counted(p, b):
        calls.append(1)
        return fn(p, b)

    with pytest.raises(TypeError, match=r"metadata\['model'\] holds a value of type object"):
        line(linear, fn=counted, metadata={"model": object()})
    assert not calls  # refused before any evaluation
    with pytest.raises(TypeError, match=r"metadata\['f'\]\[1\] holds a value of type set"):
        js.Surface(GRID, None, {"loss": GRID}, {"f": [1, {2}]})


@pytest.mark.parametrize("edit, words", [
    (lambda a: a.pop("indices"), "has no array 'indices'"),
    (lambda a: a.update(indices=a["indices"].reshape(-1, 1)), "'indices' has shape"),
    (lambda a: a.update(indices=a["indices"].astype(np.float32)), "'indices' has dtype"),
    (lambda a: a.update(indices=a["indices"][:-1]), "'metric_0' has shape"),
])
def test_9_hand_made_store_parts_give_store_errors_naming_the_file(linear, tmp_path, edit,
                                                                   words):
    store = tmp_path / "line.store"
    line(linear, store=store)
    part = next(store.glob("part-*.npz"))
    with np.load(part) as npz:
        arrays = {k: npz[k] for k in npz.files}
    edit(arrays)
    np.savez(part, **arrays)
    with pytest.raises(store_lib.StoreError, match=rf"store part .*{part.name}.*{words}"):
        line(linear, store=store)


def test_9_argmin_of_an_all_nan_surface_is_an_error():
    s = js.Surface(GRID, GRID, {"loss": np.full((4, 4), np.nan)})
    with pytest.raises(ValueError, match="argmin of metric 'loss' is undefined: all 16"):
        s.argmin()
    with pytest.raises(KeyError, match="no metric 'acc'"):
        s.argmin("acc")


@pytest.mark.parametrize("returns, words", [
    (lambda p, b: None, "fn returned None"),
    (lambda p, b: jnp.complex64(1j), "dtype complex64; metrics must be real numbers"),
    (lambda p, b: {"loss": "low"}, "fn returned str 'low' for metric 'loss'"),
])
def test_9_fn_returning_none_complex_or_text_says_so(linear, returns, words):
    with pytest.raises(TypeError, match=words):
        line(linear, fn=returns)


def test_9_misspelled_options_and_bad_seeds_say_what_was_wrong(linear):
    with pytest.raises(TypeError, match=r"js.evaluate_line got an unknown option 'chunksize' "
                                        r"\(did you mean 'chunk_size'\?\)"):
        line(linear, chunksize=2)
    fn, params, direction, data = linear
    with pytest.raises(TypeError, match=r"js.evaluate_plane got an unknown option 'compute'"):
        js.evaluate_plane(fn, params, direction, direction, data, GRID, GRID, compute=1)
    with pytest.raises(ValueError, match="subsample_seed must be a non-negative integer.*-1"):
        line(linear, subsample=4, subsample_seed=-1)


def test_9_nan_params_in_top_eigenpairs_name_the_leaf(linear):
    fn, params, _, data = linear
    broken = {**params, "b": np.array([0.0, np.nan], np.float32)}
    with pytest.raises(ValueError, match=r"params leaf \['b'\] holds 1 NaN/inf of 2 values"):
        js.hessian.top_eigenpairs(fn, broken, data, key=jax.random.key(0))
    nan_loss = lambda p, b: fn(p, b) * jnp.nan
    with pytest.raises(ValueError, match="Hessian-vector product is NaN or inf"):
        js.hessian.top_eigenpairs(nan_loss, params, data, key=jax.random.key(0))
