"""Memory planning: per-device bytes of a chunk program, checked before it runs.

Before the first chunk runs, the engine knows what one device holds: the
params and directions (each leaf's shard, as placed on the mesh), the data,
the combined params of the points evaluated together (``points_per_step``)
and the activations. The last two come from XLA's own accounting of the
compiled program (``compiled.memory_analysis()``: arguments, outputs and
temporaries), where the backend reports it; otherwise from the sizes alone.
:func:`compile_planned` compiles the program, lowers ``points_per_step``
until the program fits the memory available to one device (the
``memory_limit`` option, else a margin under what the device reports, else a
share of the host's memory for CPU devices), and refuses with one line
naming the bytes when even one point per step does not fit.

Example:
    >>> format_bytes(3 * 2**30), format_bytes(1536)
    ('3.00 GiB', '1.50 KiB')
"""

from __future__ import annotations

import os
from typing import Any, Callable

import jax

from jaxsurf import _distributed as distributed
from jaxsurf._engine.job import Job
from jaxsurf._tree import PyTree

__all__ = ["DEVICE_MARGIN", "HOST_SHARE", "available_bytes", "compile_planned", "format_bytes",
           "MemoryPlanError"]

DEVICE_MARGIN = 0.9  # of a device's own memory limit (the allocator's bytes_limit)
HOST_SHARE = 0.8  # of the host's physical memory, shared by its CPU devices


class MemoryPlanError(ValueError):
    """A program that cannot fit the memory of one device, even one point per step."""


def format_bytes(n: float) -> str:
    """``n`` bytes in binary units, e.g. ``'1.50 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} B" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TiB"  # pragma: no cover (the loop returns at GiB)


def _host_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # not a POSIX system
        return None


def available_bytes(mesh: Any, memory_limit: int | None) -> tuple[int | None, str]:
    """``(bytes one device may use, where that figure comes from)``.

    ``memory_limit`` (the engine option) wins; else ``DEVICE_MARGIN`` of the
    smallest ``bytes_limit`` a device of this process reports; else, for CPU
    devices (which report none), ``HOST_SHARE`` of the host's physical memory
    divided among this process's devices of the mesh; ``None`` if unknown.
    """
    if memory_limit is not None:
        return int(memory_limit), "memory_limit"
    local = [d for d in mesh.devices.flat if d.process_index == jax.process_index()]
    limits = []
    for device in local:
        try:
            stats = device.memory_stats()
        except Exception:  # a backend without the call
            stats = None
        if stats and stats.get("bytes_limit"):
            limits.append(int(stats["bytes_limit"]))
    if limits:
        return int(DEVICE_MARGIN * min(limits)), f"{DEVICE_MARGIN:.0%} of the device's memory"
    host = _host_memory()
    if host is None:
        return None, "unknown"
    return int(HOST_SHARE * host / max(1, len(local))), \
        f"{HOST_SHARE:.0%} of the host's memory shared by {len(local)} devices"


def _analysis(compiled: Any) -> dict[str, int] | None:
    try:
        stats = compiled.memory_analysis()
    except Exception:  # a backend that does not report it
        return None
    if stats is None:
        return None
    return {"arguments": int(stats.argument_size_in_bytes),
            "outputs": int(stats.output_size_in_bytes),
            "temporaries": int(stats.temp_size_in_bytes),
            "code": int(getattr(stats, "generated_code_size_in_bytes", 0) or 0)}


def compile_planned(job: Job, make: Callable[[], Callable], args: tuple, origin: PyTree,
                    directions: list[PyTree], data: PyTree, where: str = "the evaluation"
                    ) -> Callable:
    """Compiles ``make()`` (a jitted program reading ``job.points_per_step``) for
    ``args``, lowering ``job.points_per_step`` until it fits one device's memory.

    Records the plan in ``job.memory`` (for the Surface metadata) and returns
    the compiled program (call it with arguments placed as ``args``); on a mesh
    with model axes the program traces and runs under ``jax.set_mesh``.

    Raises:
        MemoryPlanError: even one point per step needs more than is available,
            with the bytes of each part and what to change.
    """
    available, source = available_bytes(job.mesh, job.memory_limit)
    params = distributed.device_bytes(origin if origin is not None else directions[0])
    dirs = sum(distributed.device_bytes(d) for d in directions)
    data_bytes = distributed.device_bytes(data)
    shape = {str(n): int(s) for n, s in job.mesh.shape.items()}

    def parts(points: int, analysis: dict[str, int] | None) -> dict[str, int]:
        combined = points * params
        out = {"params": params if origin is not None else 0, "directions": dirs,
               "data": data_bytes, "combined_params": combined}
        if analysis is None:
            out["activations"] = 0
            out["total"] = sum(out.values())
        else:
            out["activations"] = max(0, analysis["temporaries"] - combined)
            out["total"] = (analysis["arguments"] + analysis["outputs"]
                            + analysis["temporaries"] + analysis["code"])
        return out

    def refuse(points: int, need: dict[str, int], measured: bool) -> MemoryPlanError:
        listed = ", ".join(f"{k.replace('_', ' ')} {format_bytes(v)}" for k, v in need.items()
                           if k != "total" and (measured or k != "activations"))
        if not measured:
            listed += ", before activations"
        return MemoryPlanError(
            f"{where} needs {'' if measured else 'at least '}{format_bytes(need['total'])} per "
            f"device ({need['total']} bytes: "
            f"{listed}) with {points} point(s) per step, but {format_bytes(available or 0)} "
            f"({available} bytes, {source}) is available on mesh {shape}; shard the params "
            f"over more devices of a model axis (mesh=), use a smaller batch_size, or "
            f"compute_dtype=jnp.bfloat16 (or raise memory_limit= if the device has more)")

    if available is not None:  # the sizes alone: refuse before compiling anything
        floor = parts(1, None)
        if floor["total"] > available:
            raise refuse(1, floor, measured=False)
    requested = job.points_per_step
    while True:
        program = make()
        with distributed.mesh_context(job.mesh):
            compiled = program.lower(*args).compile()
        analysis = _analysis(compiled)
        need = parts(job.points_per_step, analysis)
        if available is None or need["total"] <= available:
            break
        if job.points_per_step == 1:
            raise refuse(1, need, measured=analysis is not None)
        fixed = need["total"] - (analysis or {}).get("temporaries", need["combined_params"])
        per_point = max(1, (need["total"] - fixed) / job.points_per_step)
        fit = int((available - fixed) // per_point)
        job.points_per_step = max(1, min(job.points_per_step - 1, fit))
    job.memory = {"per_device_bytes": need, "available_bytes": available,
                  "available_from": source, "measured_by": "xla" if analysis else "sizes",
                  "points_per_step_requested": requested}
    return compiled
