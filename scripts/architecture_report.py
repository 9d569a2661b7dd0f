"""Measures the shape of a jaxsurf checkout: public names, import cycles, reach-ins, writers.

Usage:
    python scripts/architecture_report.py CHECKOUT [--json OUT.json]

For the checkout given (a directory holding ``jaxsurf/`` and ``experiments/``) it reports:

- public names per public namespace: ``jaxsurf`` and every submodule whose dotted path has no
  component starting with ``_`` (``len(__all__)`` and the names without a leading underscore
  that the imported module actually carries);
- import cycles among ``jaxsurf/`` modules and among ``experiments/`` modules, from a static
  (``ast``) import graph, three ways: module-level imports (``module``; ``if TYPE_CHECKING:``
  blocks left out), all run-time imports (``all``: function-level ones too) and every import
  (``with_typing``: ``TYPE_CHECKING`` ones too);
- private reach-ins: a name starting with ``_`` imported from another module
  (``from m import _x`` where ``_x`` is not a module), and a private module imported from
  outside the package that holds it (``tests/`` importing ``jaxsurf._atomic``);
- file-header formats: module constants named ``*FORMAT*`` whose value is a string starting
  with ``"jaxsurf."`` (the kinds of file; whether a ``*FORMAT_VERSION*`` constant sits beside
  it), and the modules that build a header dict (``{"format": ...}``) or read one
  (``.get("format")``): one header format means one module of each;
- places that write files: ``open(..., "w"/"a"/"x"/"+")``, ``.write_text``, ``.write_bytes``,
  ``np.save*``, ``savefig``, ``h5py.File(..., "w"/"a")``, ``os.replace``, outside the atomic
  writer (a module whose file name contains ``atomic``, its calls, and the callbacks given to
  it), and functions named ``*atomic*`` elsewhere (a second atomic writer);
- lines of the experiment scripts (files with ``if __name__ == "__main__"``) and of the
  shared experiment modules.

It prints a table and, with ``--json``, writes the numbers and the details as JSON. The
public-name count imports the checkout (in a subprocess with the checkout first on
``sys.path``); everything else is static.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

PACKAGES = ("jaxsurf", "experiments")
REACH_IN_SOURCES = ("jaxsurf", "experiments", "tests", "benchmarks", "scripts")
WRITER_SOURCES = ("jaxsurf", "experiments")


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def python_files(root: Path, top: str) -> list[Path]:
    base = root / top
    if not base.exists():
        return []
    return sorted(p for p in base.rglob("*.py") if ".venv" not in p.parts)


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(tree: ast.Module):
    """Yields (node, level) with level "module", "function" or "type_checking"."""

    def walk(node: ast.AST, level: str):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, level
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from walk(child, "function")
            elif isinstance(child, ast.If) and is_type_checking(child.test) and level == "module":
                for sub in child.body:
                    if isinstance(sub, (ast.Import, ast.ImportFrom)):
                        yield sub, "type_checking"
                    else:
                        yield from walk(sub, "type_checking")
                for sub in child.orelse:
                    yield from walk(ast.Module(body=[sub], type_ignores=[]), level)
            else:
                yield from walk(child, level)

    yield from walk(tree, "module")


def resolve(importer: str, is_package: bool, node: ast.Import | ast.ImportFrom,
            modules: set[str]) -> list[tuple[str, str | None]]:
    """The (target module, imported attribute or None) pairs of one import statement."""
    out: list[tuple[str, str | None]] = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            name = alias.name
            while name and name not in modules and "." in name:
                name = name.rsplit(".", 1)[0]
            out.append((name if name in modules else alias.name, None))
        return out
    if node.level:
        package = importer if is_package else importer.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        if sub in modules:
            out.append((sub, None))
        else:
            out.append((base, alias.name))
    return out


def private_module_owner(target: str) -> str | None:
    """The package that owns the first private component of ``target`` (None if public)."""
    parts = target.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not (part.startswith("__") and part.endswith("__")):
            return ".".join(parts[:i])
    return None


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                result.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(result)


def two_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    return sorted([a, b] for a in graph for b in graph[a] if a < b and a in graph.get(b, ()))


def parse_all(root: Path, tops) -> dict[str, tuple[Path, ast.Module]]:
    parsed = {}
    for top in tops:
        for path in python_files(root, top):
            try:
                parsed[module_name(root, path)] = (path, ast.parse(path.read_text(), str(path)))
            except SyntaxError as err:  # pragma: no cover - reported, not fatal
                print(f"warning: cannot parse {path}: {err}", file=sys.stderr)
    return parsed


def import_graphs(root: Path, parsed):
    modules = set(parsed)
    graphs = {top: {"module": defaultdict(set), "all": defaultdict(set),
                    "with_typing": defaultdict(set)} for top in PACKAGES}
    edges = []
    for name, (path, tree) in parsed.items():
        is_package = path.name == "__init__.py"
        for node, level in imports_of(tree):
            for target, attr in resolve(name, is_package, node, modules):
                edges.append((name, target, attr, level, node.lineno))
                top = name.split(".")[0]
                if top in graphs and target.split(".")[0] == top and target != name:
                    if target in modules:
                        graphs[top]["with_typing"][name].add(target)
                        if level != "type_checking":
                            graphs[top]["all"][name].add(target)
                        if level == "module":
                            graphs[top]["module"][name].add(target)
    return graphs, edges


def public_names(root: Path, parsed) -> dict[str, dict]:
    names = sorted(n for n in parsed if n.split(".")[0] == "jaxsurf"
                   and not any(p.startswith("_") for p in n.split(".")))
    code = (
        "import json, sys, warnings\n"
        f"sys.path.insert(0, {str(root)!r})\n"
        "warnings.simplefilter('ignore')\n"
        "import importlib\n"
        "out = {}\n"
        f"for name in {names!r}:\n"
        "    try:\n"
        "        m = importlib.import_module(name)\n"
        "    except Exception as e:\n"
        "        out[name] = {'error': repr(e)}\n"
        "        continue\n"
        "    if name == 'jaxsurf' and not m.__file__.startswith(sys.path[0]):\n"
        "        raise SystemExit('imported ' + m.__file__ + ', not the checkout')\n"
        "    all_ = getattr(m, '__all__', None)\n"
        "    out[name] = {'all': None if all_ is None else len(all_),\n"
        "                 'public_attributes': len([a for a in dir(m) if not a.startswith('_')])}\n"
        "print('@@' + json.dumps(out))\n")
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=str(root), env=env, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("@@"):
            return json.loads(line[2:])
    raise SystemExit(f"could not import the checkout's modules:\n{proc.stderr[-3000:]}")


def header_formats(parsed) -> list[dict]:
    tables = set()  # keys of module-level dicts named *FORMAT*: {kind: newest version}
    for _name, (_path, tree) in parsed.items():
        for node in tree.body:
            target = node.target if isinstance(node, ast.AnnAssign) else (
                node.targets[0] if isinstance(node, ast.Assign) else None)
            if isinstance(target, ast.Name) and "FORMAT" in target.id.upper() and \
                    isinstance(node.value, ast.Dict):
                tables.update(k.value for k in node.value.keys if isinstance(k, ast.Constant))
    found = []
    for name, (_path, tree) in parsed.items():
        if not name.startswith("jaxsurf"):
            continue
        consts = {}
        for node in tree.body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Name) and isinstance(node.value, ast.Constant):
                        consts[t.id] = node.value.value
        for key, value in consts.items():
            if "FORMAT" in key.upper() and "VERSION" not in key.upper() and \
                    isinstance(value, str) and value.startswith("jaxsurf."):
                versioned = value in tables or any(
                    "VERSION" in k.upper() and "FORMAT" in k.upper() for k in consts)
                found.append({"module": name, "constant": key, "value": value,
                              "version_constant": versioned})
    return found


def header_code(parsed) -> dict[str, list[str]]:
    """Modules that build a file header themselves (a dict literal with a ``"format"`` key)
    and modules that read one (``x.get("format")``, ``x["format"]``): one header format
    means one module of each."""
    builders, readers = set(), set()
    for name, (_path, tree) in parsed.items():
        if not name.startswith("jaxsurf"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict) and any(
                    isinstance(k, ast.Constant) and k.value == "format" for k in node.keys):
                builders.add(name)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr == "get" and node.args and \
                    isinstance(node.args[0], ast.Constant) and node.args[0].value == "format":
                readers.add(name)
            elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and \
                    node.slice.value == "format":
                readers.add(name)
    return {"builders": sorted(builders), "readers": sorted(readers)}


WRITE_MODES = set("wax+")


def mode_of(call: ast.Call, position: int) -> str | None:
    for kw in call.keywords:
        if kw.arg == "mode" and isinstance(kw.value, ast.Constant):
            return str(kw.value.value)
    arg = call.args[position] if len(call.args) > position else None
    return str(arg.value) if isinstance(arg, ast.Constant) else None


ATOMIC_CALLBACK_TAKERS = {"write_via_path", "write_temp", "write_with"}


def is_atomic_call(node: ast.AST) -> bool:
    """A call of the atomic writer: ``atomic.write_text(...)``, ``_atomic.write_with(...)``,
    or one of its callback-taking functions imported by name."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Attribute):
        owner = func.value
        return (isinstance(owner, ast.Name) and "atomic" in owner.id) or (
            isinstance(owner, ast.Attribute) and "atomic" in owner.attr)
    return isinstance(func, ast.Name) and func.id in ATOMIC_CALLBACK_TAKERS


def writers(parsed) -> list[dict]:
    """Calls that write a file themselves, not through the atomic writer.

    Left out: calls of the atomic writer, writes inside a callback given to it (a lambda in
    its arguments, or a function of the module passed to it by name), and everything in a
    module whose file name contains ``atomic``. ``os.replace``/``os.rename`` outside it
    count too (a hand-made atomic write).
    """
    found = []
    for name, (path, tree) in parsed.items():
        if name.split(".")[0] not in WRITER_SOURCES or "atomic" in path.name:
            continue
        covered: set[int] = set()
        callbacks: set[str] = set()
        for node in ast.walk(tree):
            if is_atomic_call(node):
                assert isinstance(node, ast.Call)
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    covered.update(id(n) for n in ast.walk(arg))
                    if isinstance(arg, ast.Name):
                        callbacks.add(arg.id)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                    node.name in callbacks:
                covered.update(id(n) for n in ast.walk(node))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or id(node) in covered or is_atomic_call(node):
                continue
            func = node.func
            attr = func.attr if isinstance(func, ast.Attribute) else (
                func.id if isinstance(func, ast.Name) else None)
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(
                func.value, ast.Name) else None
            kind = None
            if isinstance(func, ast.Name) and func.id == "open":
                mode = mode_of(node, 1)
                if mode and WRITE_MODES & set(mode):
                    kind = f"open({mode!r})"
            elif attr == "open" and owner not in ("h5py", "os", "gzip", "tarfile", "zipfile"):
                mode = mode_of(node, 0)
                if mode and WRITE_MODES & set(mode):
                    kind = f".open({mode!r})"
            elif attr in ("write_text", "write_bytes", "savefig"):
                kind = attr
            elif attr in ("save", "savez", "savez_compressed") and owner in ("np", "numpy",
                                                                                "jnp"):
                kind = f"{owner}.{attr}"
            elif attr == "File" and owner == "h5py":
                mode = mode_of(node, 1)
                if mode and WRITE_MODES & set(mode):
                    kind = f"h5py.File({mode!r})"
            elif attr in ("replace", "rename") and owner == "os":
                kind = f"os.{attr}"
            if kind:
                found.append({"module": name, "line": node.lineno, "kind": kind})
    return found


def atomic_writers(parsed) -> list[dict]:
    """Functions outside the atomic writer's module whose name says they write atomically
    (a second atomic writer, or a wrapper of the first)."""
    return [{"module": name, "line": node.lineno, "function": node.name}
            for name, (path, tree) in parsed.items()
            if name.split(".")[0] in WRITER_SOURCES and "atomic" not in path.name
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and "atomic" in node.name.lower()]


def report(root: Path) -> dict:
    root = root.resolve()
    parsed = parse_all(root, REACH_IN_SOURCES)
    core = {n: v for n, v in parsed.items() if n.split(".")[0] in PACKAGES}
    graphs, edges = import_graphs(root, core)
    _, all_edges = import_graphs(root, parsed)
    modules = set(parsed)

    cycles = {}
    for top in PACKAGES:
        for level in ("module", "all", "with_typing"):
            g = graphs[top][level]
            cycles[f"{top}/{level}"] = {"components": strongly_connected(g),
                                        "two_cycles": two_cycles(g)}

    private_names, private_modules = [], []
    for importer, target, attr, level, line in all_edges:
        if attr and attr.startswith("_") and not (attr.startswith("__") and attr.endswith("__")) \
                and target != importer:
            private_names.append({"importer": importer, "from": target, "name": attr,
                                  "level": level, "line": line})
        owner = private_module_owner(target)
        full = f"{target}.{attr}" if attr and f"{target}.{attr}" in modules else target
        owner = private_module_owner(full)
        if owner is not None and target.split(".")[0] in ("jaxsurf", "experiments") and not (
                importer == owner or importer.startswith(owner + ".")):
            private_modules.append({"importer": importer, "module": full, "level": level,
                                    "line": line})

    def by_group(items, key):
        counts = defaultdict(int)
        for item in items:
            counts[item[key].split(".")[0]] += 1
        return dict(sorted(counts.items()))

    exp_lines, runnable = {}, set()
    for path in python_files(root, "experiments"):
        if path.parent == root / "experiments":
            text = path.read_text()
            exp_lines[path.name] = len(text.splitlines())
            if "__name__ == \"__main__\"" in text or "__name__ == '__main__'" in text:
                runnable.add(path.name)
    helpers = sum(v for k, v in exp_lines.items() if k not in runnable)
    scripts = sum(v for k, v in exp_lines.items() if k in runnable)

    formats = header_formats(core)
    write_sites = writers(core)
    second = atomic_writers(core)
    publics = public_names(root, core)
    return {
        "checkout": str(root),
        "commit": subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                                 capture_output=True, text=True, check=False).stdout.strip(),
        "public_names": publics,
        "public_names_total": {
            "namespaces": len(publics),
            "all": sum(v.get("all") or 0 for v in publics.values()),
            "submodules_all": sum(v.get("all") or 0 for k, v in publics.items() if k != "jaxsurf"),
            "public_attributes": sum(v.get("public_attributes", 0) for v in publics.values()),
        },
        "cycles": cycles,
        "private_name_imports": {"count": len(private_names), "by_importer": by_group(
            private_names, "importer"), "items": private_names},
        "private_module_reach_ins": {"count": len(private_modules), "by_importer": by_group(
            private_modules, "importer"), "items": private_modules},
        "experiment_lines": {"files": exp_lines, "scripts": scripts, "helpers": helpers,
                             "runnable": sorted(runnable)},
        "header_formats": {"count": len({f["value"] for f in formats}), "items": formats,
                           "versioned": sum(f["version_constant"] for f in formats),
                           **header_code(core)},
        "writers": {"count": len(write_sites), "items": write_sites},
        "atomic_writers_outside_the_writer": {"count": len(second), "items": second},
    }


def print_table(r: dict) -> None:
    print(f"checkout {r['checkout']} @ {r['commit'][:10]}")
    print("\npublic names per namespace (len(__all__) / public attributes)")
    for name, v in r["public_names"].items():
        if "error" in v:
            print(f"  {name:32s} import error: {v['error'][:60]}")
        else:
            print(f"  {name:32s} {str(v['all']):>5s} / {v['public_attributes']:>4d}")
    t = r["public_names_total"]
    print(f"  {'TOTAL (' + str(t['namespaces']) + ' namespaces)':32s} {t['all']:>5d} / "
          f"{t['public_attributes']:>4d}   (submodules' __all__: {t['submodules_all']})")
    print("\nimport cycles (strongly connected components)")
    for key, v in r["cycles"].items():
        comps = v["components"]
        print(f"  {key:22s} {len(comps)} component(s), {len(v['two_cycles'])} two-cycle(s)")
        for c in comps:
            shown = " <-> ".join(c) if len(c) <= 6 else f"{len(c)} modules: " + ", ".join(c)
            print(f"      {shown}")
    for key in ("private_name_imports", "private_module_reach_ins"):
        v = r[key]
        print(f"\n{key.replace('_', ' ')}: {v['count']}  {v['by_importer']}")
    e = r["experiment_lines"]
    print(f"\nexperiment lines: scripts {e['scripts']}, shared modules {e['helpers']}")
    for name, n in e["files"].items():
        print(f"  {name:24s} {n:>5d}  {'script' if name in e['runnable'] else 'shared'}")
    h = r["header_formats"]
    print(f"\nfile kinds with a header: {h['count']} ({h['versioned']} with a version number); "
          f"modules that build a header: {len(h['builders'])}, that read one: "
          f"{len(h['readers'])}")
    print(f"  build: {', '.join(h['builders'])}\n  read:  {', '.join(h['readers'])}")
    for f in h["items"]:
        print(f"  {f['module']:28s} {f['constant']} = {f['value']!r}"
              f"{'  (+ version number)' if f['version_constant'] else ''}")
    w = r["writers"]
    counts = defaultdict(int)
    for item in w["items"]:
        counts[item["module"]] += 1
    print(f"\nplaces that write files outside the atomic writer: {w['count']}")
    for name, n in sorted(counts.items()):
        kinds = ", ".join(sorted({i["kind"] for i in w["items"] if i["module"] == name}))
        print(f"  {name:32s} {n}  ({kinds})")
    a = r["atomic_writers_outside_the_writer"]
    print(f"\nfunctions named atomic outside the atomic writer: {a['count']}")
    for item in a["items"]:
        print(f"  {item['module']}.{item['function']} (line {item['line']})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("checkout", type=Path)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    r = report(args.checkout)
    print_table(r)
    if args.json:
        args.json.write_text(json.dumps(r, indent=1) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
