"""Issue 24, item 4: one I/O layer (``jaxsurf/_io``), one file header, one atomic writer.

Every kind of jaxsurf file (Surface, store request, directions, curve) carries
one :class:`jaxsurf._io.header.Header`, read and checked by one ``check``; a
newer ``format_version`` is refused with the same message for every kind;
every writer goes through the atomic writer; files written before keep loading;
the I/O layer imports nothing above it (no ``surface <-> _h5`` cycle).
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import jaxsurf as js
from jaxsurf import _store as store_lib
from jaxsurf._io import atomic
from jaxsurf._io.header import FORMATS, Header
from jaxsurf._version import __version__

PARAMS = {"b": jnp.zeros(2), "w": jnp.ones((2, 3))}
OTHER = {"b": jnp.ones(2), "w": jnp.zeros((2, 3))}


def _request() -> dict:
    return store_lib.make_request(PARAMS, [OTHER], np.zeros((3, 1), np.float32),
                                  store_lib.stream_fingerprint([10]), ["loss"], "stream")


# --------------------------------------------------------------------------- one file of each kind
def _surface(tmp: Path) -> Path:
    return js.Surface(np.linspace(-1, 1, 3), None, {"loss": np.arange(3.0)},
                      {"seed": 0}).save(tmp / "s.npz")


def _directions(tmp: Path) -> Path:
    return js.save_directions(tmp / "d.npz", OTHER, metadata={"seed": 0})


def _curve(tmp: Path) -> Path:
    return js.connect.line(PARAMS, OTHER).save(tmp / "c.npz")


def _store(tmp: Path) -> Path:
    store = store_lib.PointStore.open(tmp / "st", _request())
    store.write(np.array([0]), {"loss": np.array([1.0], np.float32)})
    return tmp / "st" / "request.json"


def _monitor(tmp: Path) -> Path:
    def fn(params, batch):
        return jnp.mean((batch["x"] @ params["w"]) ** 2) + jnp.sum(params["b"] ** 2)

    data = {"x": np.ones((4, 2), np.float32)}
    js.Monitor(fn, data, out=tmp / "m", every=1, kind="line",
               grid=np.linspace(-1, 1, 3))(0, PARAMS)
    return tmp / "m" / "monitor.json"


def _load(kind: str, path: Path) -> object:
    if kind == "jaxsurf.surface":
        return js.Surface.load(path)
    if kind == "jaxsurf.directions":
        return js.load_directions(path, PARAMS)
    if kind == "jaxsurf.curve":
        return js.connect.load_curve(path, PARAMS)
    if kind == "jaxsurf.monitor":
        return js.Monitor.config(path.parent)
    return store_lib.PointStore.open(path.parent, _request())


WRITERS = {"jaxsurf.surface": _surface, "jaxsurf.directions": _directions,
           "jaxsurf.curve": _curve, "jaxsurf.store": _store, "jaxsurf.monitor": _monitor}
ERRORS = {"jaxsurf.surface": js.SurfaceFileError, "jaxsurf.directions": js.DirectionFileError,
          "jaxsurf.curve": ValueError, "jaxsurf.store": js.StoreError,
          "jaxsurf.monitor": ValueError}


def _raw_header(path: Path) -> dict:
    if path.suffix == ".json":
        return json.loads(path.read_text())
    with np.load(path, allow_pickle=False) as npz:
        raw = npz["header"]
    return json.loads(raw.tobytes() if raw.dtype == np.uint8 else str(raw))


def _write_header(path: Path, header: dict) -> None:
    """Rewrites the header of ``path`` in place (as a hand edit would)."""
    if path.suffix == ".json":
        path.write_text(json.dumps(header))
        return
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    text = json.dumps(header)
    arrays["header"] = np.frombuffer(text.encode(), np.uint8) \
        if arrays["header"].dtype == np.uint8 else np.array(text)
    np.savez(path, **arrays)


def test_item4_one_header_type_for_every_kind_of_file(tmp_path):
    assert set(FORMATS) == set(WRITERS)
    for kind, write in WRITERS.items():
        path = write(tmp_path)
        header = Header.parse(_raw_header(path), ValueError, str(path)).check(
            kind, ValueError, str(path))
        assert (header.format, header.format_version, header.library_version) == \
            (kind, FORMATS[kind], __version__), kind
        assert isinstance(header.metadata, dict), kind
        _load(kind, path)  # and the library's own reader takes it


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_item4_a_newer_format_version_is_refused_for_every_kind_with_one_message(
        tmp_path, kind):
    path = WRITERS[kind](tmp_path)
    header = _raw_header(path)
    newer = FORMATS[kind] + 1
    header.update(format_version=newer, library_version="9.0.0")
    if kind == "jaxsurf.curve":  # its name carries the version too
        header["format"] = f"jaxsurf.curve/{newer}"
    _write_header(path, header)
    with pytest.raises(ERRORS[kind], match=rf"was written by jaxsurf 9\.0\.0 in .* format "
                                           rf"{newer}, newer than this jaxsurf "
                                           rf"{__version__} reads \(format {FORMATS[kind]}\); "
                                           rf"upgrade jaxsurf"):
        _load(kind, path)


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_item4_a_damaged_or_foreign_header_gets_the_same_message_for_every_kind(
        tmp_path, kind):
    path = WRITERS[kind](tmp_path)
    header = _raw_header(path)
    _write_header(path, {**header, "format_version": "1"})
    with pytest.raises(ERRORS[kind], match="damaged header: format_version must be a positive "
                                           "integer, got '1'"):
        _load(kind, path)
    _write_header(path, {**header, "format": "other"})
    with pytest.raises(ERRORS[kind], match=rf"is not a jaxsurf .*: it has format 'other', "
                                           rf"expected '{kind}'"):
        _load(kind, path)


def test_item4_every_writer_goes_through_the_one_atomic_writer(tmp_path, monkeypatch):
    replaced: list[tuple[str, str]] = []
    real = os.replace

    def spy(src, dst):
        replaced.append((Path(src).name, Path(dst).name))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    plane = js.Surface(np.linspace(-1, 1, 3), np.linspace(-1, 1, 2),
                       {"loss": np.arange(6.0).reshape(3, 2) + 1})
    volume = js.Surface(np.arange(2.0), np.arange(2.0), {"loss": np.ones((2, 2, 2))},
                        gammas=np.arange(2.0))
    written = [_surface(tmp_path), _directions(tmp_path), _curve(tmp_path),
               js.export.write_vtp(plane, tmp_path / "p.vtp"),
               js.export.write_vti(volume, tmp_path / "v.vti"),
               js.export.write_csv(plane, tmp_path / "p.csv")]
    store = store_lib.PointStore.open(tmp_path / "st", _request())
    store.write(np.array([0]), {"loss": np.array([1.0], np.float32)})
    written.append(store.parts()[0])
    pytest.importorskip("h5py")
    written.append(js.export.write_h5(plane, tmp_path / "p.h5"))
    for path in written:
        assert any(dst == path.name and src.startswith(f".{path.name}.") and
                   src.endswith(".tmp") for src, dst in replaced), path
    assert not [p for p in tmp_path.rglob("*.tmp")]  # no temporary file left behind


def test_item4_store_request_is_created_through_the_atomic_writer(tmp_path, monkeypatch):
    temps: list[str] = []
    real = atomic.write_temp
    monkeypatch.setattr(atomic, "write_temp", lambda path, write: temps.append(
        Path(path).name) or real(path, write))
    _store(tmp_path)
    assert temps[0] == "request.json"  # then the part file, through write_with


def test_item4_files_in_todays_formats_still_load(tmp_path):
    """Headers as they were written before the one Header type: still read."""
    # a Surface header without library_version (hand-made, version 1 implied)
    np.savez(tmp_path / "s.npz", alphas=np.arange(3.0), metric_0=np.ones(3),
             header=np.array(json.dumps({"format": "jaxsurf.surface",
                                         "metric_names": ["loss"], "metadata": {"a": 1}})))
    assert js.Surface.load(tmp_path / "s.npz").metadata == {"a": 1}
    # a directions file as save_directions wrote it (no library_version)
    np.savez(tmp_path / "d.npz", d0_0=np.zeros(2, np.float32), d0_1=np.ones((2, 3), np.float32),
             header=np.array(json.dumps({
                 "format": "jaxsurf.directions", "format_version": 1, "count": 1,
                 "leaves": [{"path": "['b']", "shape": [2], "dtype": "float32"},
                            {"path": "['w']", "shape": [2, 3], "dtype": "float32"}],
                 "metadata": {"seed": 3}})))
    (d,), meta = js.load_directions(tmp_path / "d.npz", PARAMS, with_metadata=True)
    assert meta == {"seed": 3} and np.array_equal(d["w"], np.ones((2, 3)))
    # a curve as Curve.save wrote it: "jaxsurf.curve/1", no format_version
    old = {"format": "jaxsurf.curve/1", "kind": "bezier", "num_points": 2,
           "leaf_paths": ["['b']", "['w']"], "metadata": {"m": 1}}
    np.savez(tmp_path / "c.npz", point0_leaf0=np.zeros(2, np.float32),
             point0_leaf1=np.ones((2, 3), np.float32), point1_leaf0=np.ones(2, np.float32),
             point1_leaf1=np.zeros((2, 3), np.float32),
             header=np.frombuffer(json.dumps(old).encode(), np.uint8))
    curve = js.connect.load_curve(tmp_path / "c.npz", PARAMS)
    assert curve.kind == "bezier" and curve.metadata == {"m": 1}
    # a store request as make_request wrote it: the same fields, still reused
    (tmp_path / "st").mkdir()
    (tmp_path / "st" / "request.json").write_text(json.dumps(_request(), indent=1,
                                                             sort_keys=True))
    assert store_lib.PointStore.open(tmp_path / "st", _request()).request == _request()


def test_item4_new_files_keep_the_fields_older_readers_look_for(tmp_path):
    """Files written now stay readable by the readers of before (same keys, same spelling)."""
    assert _raw_header(_curve(tmp_path))["format"] == "jaxsurf.curve/1"
    assert _raw_header(_directions(tmp_path))["count"] == 1
    assert _raw_header(_surface(tmp_path))["metric_names"] == ["loss"]
    request = _raw_header(_store(tmp_path))
    assert "metadata" not in request and request["format"] == "jaxsurf.store"


def test_item4_the_io_layer_imports_nothing_above_it():
    """No ``surface <-> _h5`` cycle: ``jaxsurf/_io`` imports only its own modules and the
    library's bottom (limits, validation, tree, version)."""
    allowed = {"jaxsurf._limits", "jaxsurf._validate", "jaxsurf._tree", "jaxsurf._version",
               "jaxsurf._io"}
    package = Path(js.__file__).parent / "_io"
    for module in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module == "jaxsurf":
                names = [f"jaxsurf.{alias.name}" for alias in node.names]
            else:
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                if name.startswith("jaxsurf"):
                    assert name in allowed or name.startswith("jaxsurf._io."), \
                        f"{module.name} imports {name}"
