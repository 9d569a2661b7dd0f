"""Peak memory of trajectory PCA: streamed from an orbax directory vs the full matrix.

Writes a synthetic trajectory of ``--checkpoints`` float32 checkpoints of a
``--params``-parameter model (conv-like kernels, two large dense layers,
biases) with :class:`jaxsurf.TrajectoryRecorder` into a temporary directory
(deleted afterwards), then measures, each in a fresh subprocess (peak RSS
``VmHWM``, plus the RSS right after the imports):

* ``streaming``: ``js.pca_directions(directory)`` (Gram matrix built block
  by block within ``memory_budget``, directions in a second pass);
* ``full matrix + Gram``: all checkpoints loaded into one ``n × P`` float32
  array, centred, PCA via ``eigh(X Xᵀ)`` (the least memory any in-memory
  method needs: the matrix itself);
* ``full matrix + numpy SVD``: the same matrix and ``np.linalg.svd`` (what
  the reference code does through scikit-learn). LAPACK's SVD workspace
  needs about 9× the matrix here, so it is skipped (and the reason recorded)
  when that estimate exceeds the machine's available memory.

Each child also returns the explained variance and a sample of the
directions, and the parent checks that all methods agree. The memory budget
scales with ``--params`` (1 GiB at 25 M) so that a scaled-down run keeps the
same number of rows per block.

    python -m benchmarks.pca_memory                      # 25 M params, 50 checkpoints
    python -m benchmarks.pca_memory --params 2.5e6       # scaled down (all three methods)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REFERENCE_PARAMS = 25_000_000
REFERENCE_BUDGET = 1 << 30
SVD_WORKSPACE_FACTOR = 9.5  # measured here: np.linalg.svd of 50 x 2.5M float32 peaked ~9x
SAMPLE = 20_000  # direction entries returned by each child for the agreement check


def layer_shapes(num_params: int) -> list[tuple[int, ...]]:
    """ResNet-50-like leaves summing to about ``num_params``: 3x3 conv kernels, two large
    dense layers (dropped for small runs) and 40 bias vectors."""
    dense = [(2048, 1000), (1024, 4096)]
    rest = num_params - sum(math.prod(s) for s in dense) - 40 * 256
    if rest < num_params / 2:  # small runs: conv kernels only
        dense, rest = [], num_params - 40 * 256
    channels = 256 if rest > 20 * 9 * 256 * 256 else 64
    count = max(1, round(rest / (9 * channels * channels)))
    return [(3, 3, channels, channels)] * count + dense + [(256,)] * 40


def write_trajectory(path: Path, num_params: int, num_checkpoints: int) -> dict:
    """A drifting random walk with shrinking steps, recorded one checkpoint per step."""
    from jaxsurf.trajectory import TrajectoryRecorder

    rng = np.random.default_rng(0)
    shapes = layer_shapes(num_params)
    params = {f"layer_{i:03d}": rng.standard_normal(s, dtype=np.float32) * 0.05
              for i, s in enumerate(shapes)}
    drift = {k: rng.standard_normal(v.shape, dtype=np.float32) * 0.01 for k, v in params.items()}
    start = time.perf_counter()
    with TrajectoryRecorder(path) as rec:
        for step in range(num_checkpoints):
            rec.save(step, params)
            lr = 1.0 / (1 + 0.1 * step)
            for k, v in params.items():
                v += lr * (drift[k] + 0.005 * rng.standard_normal(v.shape, dtype=np.float32))
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return {"num_params": int(sum(math.prod(s) for s in shapes)), "leaves": len(shapes),
            "write_s": time.perf_counter() - start, "disk_bytes": size}


# --------------------------------------------------------------------------- children
def _status_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, from /proc (Linux).

    Not ``getrusage``: its ``ru_maxrss`` survives ``fork``+``exec``, so a child
    would inherit the parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def _peak_mb() -> float:
    return _status_mb("VmHWM")


def _sample(direction, index: np.ndarray) -> list[float]:
    """Entries ``index`` of a direction pytree flattened in leaf order."""
    import jax

    flat = np.concatenate([np.asarray(x, np.float32).ravel()
                           for x in jax.tree_util.tree_leaves(direction)])
    return flat[index].tolist()


def child_streaming(path: str, budget: int, index: np.ndarray) -> dict:
    import orbax.checkpoint  # noqa: F401  (imports are counted in "after imports")

    from jaxsurf.pca import pca_directions

    after_imports = _rss_mb()
    start = time.perf_counter()
    dirs, ratio = pca_directions(path, k=2, memory_budget=budget)
    return {"seconds": time.perf_counter() - start, "rss_after_imports_mb": after_imports,
            "ratio": ratio.tolist(), "samples": [_sample(d, index) for d in dirs]}


def _load_matrix(path: str) -> np.ndarray:
    """All checkpoints as one preallocated (n, P) float32 array (no extra copies)."""
    import jax

    from jaxsurf._trajectory import _Reader, load_trajectory

    with _Reader(path) as reader:
        n = len(reader.steps)
    rows = None
    for i, (_, params) in enumerate(load_trajectory(path)):
        leaves = [np.asarray(x).ravel() for x in jax.tree_util.tree_leaves(params)]
        if rows is None:
            rows = np.empty((n, sum(x.size for x in leaves)), np.float32)
        np.concatenate(leaves, out=rows[i])
    return rows


def child_full(path: str, method: str, index: np.ndarray) -> dict:
    import orbax.checkpoint  # noqa: F401

    import jaxsurf  # noqa: F401

    after_imports = _rss_mb()
    start = time.perf_counter()
    x = _load_matrix(path)
    x -= x[-1].copy()     # rows θ_i - θ_final, in place (x -= x[-1] would copy all of x)
    x -= x.mean(axis=0)   # centred, in place
    if method == "svd":
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        lam, vecs = s**2, vt[:2]
    else:
        gram = np.zeros((len(x), len(x)))
        for c in range(0, x.shape[1], 1 << 16):  # float64 accumulation, small temporaries
            block = x[:, c:c + (1 << 16)].astype(np.float64)
            gram += block @ block.T
        lam, u = np.linalg.eigh(gram)
        lam, u = lam[::-1].clip(0), u[:, ::-1]
        vecs = (u[:, :2].T.astype(np.float32) @ x) / np.sqrt(lam[:2, None]).astype(np.float32)
    return {"seconds": time.perf_counter() - start, "rss_after_imports_mb": after_imports,
            "ratio": (lam[:2] / lam.sum()).tolist(),
            "samples": [np.asarray(v)[index].tolist() for v in vecs],
            "matrix_mb": x.nbytes / 2**20}


def run_child(method: str, path: Path, budget: int, index_seed: int, num_params: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.pca_memory", "--child", method, "--dir", str(path),
           "--budget", str(budget), "--index-seed", str(index_seed),
           "--params", str(num_params)]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                          cwd=Path(__file__).resolve().parent.parent)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else
                f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- parent
def available_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def agree(a: dict, b: dict) -> bool:
    """Same explained variance (rtol 1e-3) and directions equal up to sign (|cos| > 0.999)."""
    if "error" in a or "error" in b or "skipped" in a or "skipped" in b:
        return False
    ok = np.allclose(a["ratio"], b["ratio"], rtol=1e-3)
    for u, v in zip(a["samples"], b["samples"]):
        u, v = np.asarray(u), np.asarray(v)
        ok &= abs(u @ v) / (np.linalg.norm(u) * np.linalg.norm(v)) > 0.999
    return bool(ok)


def benchmark(num_params: int, num_checkpoints: int, workdir: Path | None) -> dict:
    need = 1.3 * num_params * 4 * num_checkpoints
    base = workdir or Path(tempfile.gettempdir())
    free = shutil.disk_usage(base).free
    if free < need:
        raise SystemExit(f"needs ~{need / 2**30:.1f} GiB free in {base}, has "
                         f"{free / 2**30:.1f} GiB: use --params to scale down")
    tmp = Path(tempfile.mkdtemp(prefix="jaxsurf_pca_memory_", dir=workdir))
    try:
        info = write_trajectory(tmp / "traj", num_params, num_checkpoints)
        print(f"wrote {num_checkpoints} checkpoints of {info['num_params'] / 1e6:.1f} M params "
              f"({info['disk_bytes'] / 2**30:.2f} GiB) in {info['write_s']:.0f} s", flush=True)
        budget = int(REFERENCE_BUDGET * info["num_params"] / REFERENCE_PARAMS)
        matrix = info["num_params"] * 4 * num_checkpoints
        results = {}
        for name, method in (("streaming", "streaming"), ("full matrix + Gram", "gram"),
                             ("full matrix + numpy SVD", "svd")):
            if method == "svd" and SVD_WORKSPACE_FACTOR * matrix > 0.8 * available_bytes():
                results[name] = {"skipped": f"needs ~{SVD_WORKSPACE_FACTOR * matrix / 2**30:.0f}"
                                 f" GiB (≈{SVD_WORKSPACE_FACTOR}x the matrix), "
                                 f"{available_bytes() / 2**30:.0f} GiB available"}
            else:
                results[name] = run_child(method, tmp / "traj", budget, 0, info["num_params"])
            print(name, {k: v for k, v in results[name].items() if k != "samples"}, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ref = results["full matrix + Gram"]
    for r in results.values():
        if "samples" in r:
            r["agrees_with_full_matrix"] = agree(r, ref)
    for r in results.values():
        r.pop("samples", None)
    return {"num_checkpoints": num_checkpoints, "memory_budget_bytes": budget,
            "matrix_bytes": matrix, **info, "methods": results}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", type=float, default=REFERENCE_PARAMS)
    parser.add_argument("--checkpoints", type=int, default=50)
    parser.add_argument("--workdir", type=Path, default=None, help="parent of the temp dir")
    parser.add_argument("--name", default="pca_memory", help="results/<name>.json")
    parser.add_argument("--child", choices=("streaming", "gram", "svd"), help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--index-seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        index = np.random.default_rng(args.index_seed).integers(0, int(args.params), SAMPLE)
        out = (child_streaming(args.dir, args.budget, index) if args.child == "streaming"
               else child_full(args.dir, args.child, index))
        out["peak_rss_mb"] = _peak_mb()
        print(json.dumps(out))
        return

    from benchmarks.common import save_results

    result = benchmark(int(args.params), args.checkpoints, args.workdir)
    table = []
    for name, r in result["methods"].items():
        if "peak_rss_mb" in r:
            table.append([name, f"{r['peak_rss_mb']:.0f}", f"{r['rss_after_imports_mb']:.0f}",
                          f"{r['peak_rss_mb'] - r['rss_after_imports_mb']:.0f}",
                          f"{r['seconds']:.0f}", r["agrees_with_full_matrix"]])
        else:
            table.append([name, r.get("skipped") or r.get("error"), "", "", "", ""])
    print(f"\n{result['num_checkpoints']} checkpoints x {result['num_params'] / 1e6:.1f} M float32 "
          f"params (matrix {result['matrix_bytes'] / 2**30:.2f} GiB), streaming budget "
          f"{result['memory_budget_bytes'] / 2**20:.0f} MiB")
    save_results(args.name, result, table, ["method", "peak RSS MiB", "after imports MiB",
                                            "peak - imports MiB", "seconds", "agrees"])


if __name__ == "__main__":
    main()
