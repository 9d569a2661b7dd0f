"""Numbers about the minimum a network reached: the Hessian's lambda_max and trace
(:func:`curvature`), SAM and average-case sharpness (:func:`sharpness`), and the
held-out metrics (:func:`held_out_metrics`)."""

from __future__ import annotations

import time
import warnings
from typing import Any, Callable

import jax

import jaxsurf as js
from experiments._data import Data
from experiments._settings import Preset

def curvature(fn: Callable, params: Any, data: Data, preset: Preset, seed: int
              ) -> dict[str, Any]:
    """lambda_max (Lanczos) and the Hutchinson trace of the Hessian over a fixed subset."""
    subset = data.subset(preset.analysis_examples)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lams, _ = js.hessian.top_eigenpairs(
            fn, params, subset, k=1, key=jax.random.key(seed + 101),
            batch_size=preset.eval_batch_size, num_iterations=preset.lanczos_iterations,
            tol=1e-3)
    converged = not any("Lanczos stopped" in str(w.message) for w in caught)
    tr, se = js.hessian.trace(fn, params, subset, key=jax.random.key(seed + 102),
                              num_samples=preset.hutchinson_samples,
                              batch_size=preset.eval_batch_size)
    return {"examples": int(len(subset["y"])), "lambda_max": float(lams[0]),
            "lanczos_iterations": preset.lanczos_iterations,
            "lanczos_converged_tol_1e-3": converged, "trace": tr, "trace_stderr": se,
            "hutchinson_samples": preset.hutchinson_samples,
            "seconds": time.perf_counter() - start}

def sharpness(fn: Callable, params: Any, data: Data, preset: Preset, seed: int
              ) -> dict[str, Any]:
    """SAM sharpness (rho 0.05) and |w|-scaled average-case sharpness (sigma 0.05)."""
    subset = data.subset(preset.analysis_examples)
    start = time.perf_counter()
    sam = js.sharpness.sam_sharpness(fn, params, subset, rho=0.05,
                                     batch_size=preset.eval_batch_size)
    mean, se = js.sharpness.average_sharpness(
        fn, params, subset, key=jax.random.key(seed + 103), sigma=0.05,
        num_samples=preset.sharpness_samples, scale="weight",
        batch_size=preset.eval_batch_size)
    return {"examples": int(len(subset["y"])), "sam_rho_0.05": sam,
            "average_weight_scaled_sigma_0.05": mean, "average_stderr": se,
            "average_samples": preset.sharpness_samples,
            "seconds": time.perf_counter() - start}


def held_out_metrics(model: Any, variables: Any, loss: str, data: Data, preset: Preset
                 ) -> dict[str, float]:
    """Mean metrics on the test split (regression: also on val, with MAE and MSE),
    keyed ``<split>_<metric>``, e.g. ``test_accuracy``."""
    metrics_fn = js.flax.linen_metrics_fn(
        model, loss=_regression_metrics if data.regression else loss)
    values = {}
    for split in ("val", "test") if data.regression else ("test",):
        if len(data.splits[split]["y"]):
            mean = js.dataset_mean(metrics_fn, data.splits[split],
                                   batch_size=preset.eval_batch_size)(variables)
            values.update({f"{split}_{k}": float(v) for k, v in mean.items()})
    return values

def _regression_metrics(outputs: Any, targets: Any) -> dict[str, Any]:
    """MAE (the D-GEX metric) and MSE of a regression, as batch means."""
    from jaxsurf.losses import mae, mse

    return {"loss": mae(outputs, targets)["loss"], "mae": mae(outputs, targets)["loss"],
            "mse": mse(outputs, targets)["loss"]}
