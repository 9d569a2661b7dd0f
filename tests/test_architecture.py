"""The architecture, enforced: layers, what may import what, no cycles (docs/architecture.md).

The import graph is static (``ast``, built by ``scripts/architecture_report.py``): every
``import`` statement of a module counts, at module level, inside a function (a lazy import
is still a dependency) and under ``if TYPE_CHECKING:``. A module may import modules of its
own layer or of a lower one, never of a higher one; no set of modules imports itself round
in a circle. Moving a module, or adding one, means naming its layer in :data:`LAYERS`.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Layers, lowest first. A module belongs to the first layer with a pattern (fnmatch) that
# matches its dotted name; it may import its own layer and the layers before it.
LAYERS: dict[str, tuple[str, ...]] = {
    # what everything uses: pytrees, checks, limits, interrupts, progress, batches, devices
    "base": ("jaxsurf._version", "jaxsurf._limits", "jaxsurf._deprecation", "jaxsurf._modules",
             "jaxsurf.tree", "jaxsurf._tree", "jaxsurf._validate", "jaxsurf.interrupt",
             "jaxsurf._interrupt", "jaxsurf.progress", "jaxsurf._progress", "jaxsurf._layout",
             "jaxsurf.batching", "jaxsurf._batching", "jaxsurf.distributed",
             "jaxsurf._distributed", "jaxsurf.losses", "jaxsurf._losses"),
    # files: the one atomic writer, headers, npz/h5/json/vtk readers and writers; the
    # objects that are files (Surface, the store, trajectories)
    "io": ("jaxsurf._io", "jaxsurf._io.*", "jaxsurf.surface", "jaxsurf._surface", "jaxsurf.store",
           "jaxsurf._store", "jaxsurf.trajectory", "jaxsurf._trajectory"),
    # directions in parameter space, and the model-state policies
    "directions": ("jaxsurf.directions", "jaxsurf._directions", "jaxsurf.pca", "jaxsurf._pca",
                   "jaxsurf.volume", "jaxsurf._volume", "jaxsurf._state"),
    # the one evaluation engine, its public evaluators, and the one resumable fit loop
    "engine": ("jaxsurf._engine", "jaxsurf._engine.*", "jaxsurf.evaluate", "jaxsurf._evaluate",
               "jaxsurf.refine", "jaxsurf._refine", "jaxsurf.subsample", "jaxsurf._subsample",
               "jaxsurf._fitloop", "jaxsurf._ranges"),
    # model adapters: a framework's model -> fn(params, batch), params
    "adapters": ("jaxsurf.flax", "jaxsurf._flax", "jaxsurf.equinox", "jaxsurf._equinox"),
    # measures built on the engine: curvature, sharpness, topology, connectivity
    "measures": ("jaxsurf.hessian", "jaxsurf._hessian", "jaxsurf.sharpness", "jaxsurf._sharpness",
                 "jaxsurf.topology", "jaxsurf._topology", "jaxsurf.connect", "jaxsurf.connect.*",
                 "jaxsurf._monitor", "jaxsurf._statistics"),
    # what draws and exports
    "views": ("jaxsurf.plot", "jaxsurf.plot.*", "jaxsurf.view", "jaxsurf.view.*",
              "jaxsurf.export"),
    # the public face: ``import jaxsurf as js``
    "face": ("jaxsurf",),
    # the thesis's zoo beside the core, never imported by it
    "zoo": ("jaxsurf.models", "jaxsurf.models.*", "jaxsurf.data", "jaxsurf.data.*",
            "jaxsurf.train", "jaxsurf._train"),
    # the command line: an application of the library
    "app": ("jaxsurf.cli", "jaxsurf._cli", "jaxsurf._compute_cli", "jaxsurf._cli_outputs",
            "jaxsurf.__main__"),
}


def report_module() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(
        "architecture_report", ROOT / "scripts" / "architecture_report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REPORT = report_module()


@functools.cache
def parsed_graph(top: str) -> tuple[dict[str, set[str]], list[tuple]]:
    """``({module: modules of top it imports}, [(importer, module, name, level, line)])``."""
    parsed = REPORT.parse_all(ROOT, (top,))
    graphs, edges = REPORT.import_graphs(ROOT, parsed)
    imports = graphs[top]["with_typing"]
    return {name: set(imports.get(name, ())) for name in parsed}, edges


def graph(top: str) -> dict[str, set[str]]:
    """``{module: modules of top it imports}``: every import statement, any level."""
    return {name: set(targets) for name, targets in parsed_graph(top)[0].items()}


def layer_of(module: str) -> int:
    for rank, patterns in enumerate(LAYERS.values()):
        if any(fnmatch.fnmatchcase(module, p) for p in patterns):
            return rank
    raise AssertionError(f"{module} has no layer: name it in LAYERS in tests/test_architecture.py "
                         f"(and in docs/architecture.md)")


def upward_imports(g: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(a, b) for a, targets in g.items() for b in targets if layer_of(b) > layer_of(a)}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    return REPORT.strongly_connected(g)


def test_item7_every_module_has_a_layer():
    missing = []
    for module in graph("jaxsurf"):
        try:
            layer_of(module)
        except AssertionError as err:
            missing.append(str(err))
    assert not missing, "\n".join(missing)


def test_item7_no_upward_imports():
    found = upward_imports(graph("jaxsurf"))
    names = list(LAYERS)
    assert not found, "upward imports (a module imports a higher layer):\n" + "\n".join(
        f"  {a} ({names[layer_of(a)]}) imports {b} ({names[layer_of(b)]})"
        for a, b in sorted(found))


def test_item7_no_import_cycles_in_jaxsurf():
    # (evaluate <-> _state is gone: _state.interpolate_recomputed is given evaluate_points)
    found = cycles(graph("jaxsurf"))
    assert not found, f"import cycles: {found}"


def test_item7_no_import_cycles_in_experiments_and_the_library_never_imports_them():
    found = cycles(graph("experiments"))
    assert not found, f"import cycles among experiments/: {found}"
    edges = parsed_graph("jaxsurf")[1]
    assert not [e for e in edges if e[1].split(".")[0] == "experiments"]


def test_item7_the_checker_sees_an_upward_import_and_a_cycle():
    g = {"jaxsurf.tree": {"jaxsurf.evaluate"}, "jaxsurf.evaluate": {"jaxsurf.tree"}}
    assert upward_imports(g) == {("jaxsurf.tree", "jaxsurf.evaluate")}
    assert cycles(g) == [["jaxsurf.evaluate", "jaxsurf.tree"]]


def test_item4_cli_and_compute_cli_do_not_import_each_other():
    g = graph("jaxsurf")
    assert "jaxsurf._cli" not in g["jaxsurf._compute_cli"]
    assert "jaxsurf._compute_cli" in g["jaxsurf._cli"]       # the lazy subcommand


def test_item1_plot_siblings_import_plain_names():
    edges = parsed_graph("jaxsurf")[1]
    private = [f"{a} imports {name} from {b}" for a, b, name, _, _ in edges
               if name and name.startswith("_") and not name.startswith("__")
               and (a.startswith("jaxsurf.plot") or a.startswith("jaxsurf.view"))]
    assert not private, "\n".join(private)


def test_item1_modules_keep_their_own_class():
    import jaxsurf as js

    for name in ("sharpness", "tree", "plot", "view", "connect"):
        assert type(getattr(js, name)) is types.ModuleType, name
    with pytest.raises(TypeError, match="'module' object is not callable"):
        js.sharpness(lambda p, b: 0.0, {}, {})  # pyright: ignore[reportCallIssue]


def test_item6_viewer_page_and_script_are_package_data():
    from importlib import resources

    folder = resources.files("jaxsurf.view")
    page, script = (folder / "page.html").read_text(), (folder / "page.js").read_text()
    assert page.count("__APP__") == 1 and page.count("__DATA__") == 1
    assert "<script>" not in script and "def " not in script
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"jaxsurf.view" = ["page.html", "page.js", "monitor.html", "monitor.js"]' in pyproject
    monitor = (folder / "monitor.html").read_text()
    assert monitor.count("__APP__") == 1 and monitor.count("__DATA__") == 1
    assert "<script>" not in (folder / "monitor.js").read_text()
    assert not (ROOT / "jaxsurf" / "view.py").exists()
    assert not (ROOT / "jaxsurf" / "_viewer.js").exists()


def test_item6_viewer_script_is_valid_javascript():
    node = next((p for p in ("/usr/bin/node", "/usr/local/bin/node") if Path(p).exists()), None)
    if node is None:
        pytest.skip("node is not installed (the check is `node --check page.js`)")
    for script in ("page.js", "monitor.js"):
        done = subprocess.run([node, "--check", str(ROOT / "jaxsurf" / "view" / script)],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr


def test_item6_view_keeps_its_public_names():
    from jaxsurf import view

    assert sorted(view.__all__) == ["html", "write"]    # default_out, folder_groups: deprecated
    assert all(callable(getattr(view, name)) for name in view.__all__)
    assert sys.modules["jaxsurf.view"] is view
