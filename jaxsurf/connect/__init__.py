"""Mode connectivity: curves between solutions, loss barriers, permutation alignment.

* :func:`fit_curve` trains a Bézier curve or polygonal chain between two
  solutions so that the loss stays low along it (Garipov et al. 2018);
  :func:`line` is the straight segment as a curve without bends.
* :func:`evaluate_curve` gives exact data-set means along a curve on the
  evaluation engine; for ``fn`` from an adapter of a BatchNorm model it
  interpolates the statistics by default, as ``js.interpolate`` does
  (``state_policy="interpolate" | "recompute" | "fixed"``;
  :class:`BatchStatsRecompute` for ``fn`` over whole Linen variables).
* :func:`evaluate_path` gives exact means along any path ``t -> params`` (a
  SLERP, a merge schedule, a curve) on the same engine.
* :func:`barrier` measures the loss barrier of a path (Frankle et al. 2020,
  Entezari et al. 2022), on curves and on ``js.interpolate`` lines.
* :func:`curve_plane` gives the plane through the end points and the bend
  (Garipov et al.'s Figure 1), to evaluate with ``js.evaluate_plane``.
* :func:`task_plane` gives the task vectors of two fine-tunes as the axes of
  the task-arithmetic plane; :func:`plane_through` the orthonormal plane
  through any three models; :func:`merge` merges fine-tunes of one base
  (linear, task arithmetic, TIES, DARE, DARE-TIES); :func:`slerp`
  interpolates spherically, leaf by leaf (``docs/merging.md``).
* :func:`align` permutes the hidden units of one network to match another
  (weight matching or activation matching, Ainsworth et al. 2023), with specs
  for dense nets of any framework (:func:`mlp_spec`), plain conv nets
  (:func:`conv_spec`), the heads of attention layers (:func:`attention_spec`)
  and jaxsurf's CIFAR ResNets (:func:`resnet_spec`), several combined into one
  by :func:`combine_specs` (a transformer's heads and MLP units); :func:`repair_path` is the
  aligned straight path with REPAIR (Jordan et al. 2023) for nets without
  BatchNorm.

See ``docs/connectivity.md``.

Example:
    >>> import jaxsurf as js
    >>> aligned = js.connect.align(params_a, params_b, js.connect.mlp_spec(params_a))
    >>> curve = js.connect.fit_curve(fn, params_a, aligned, data, epochs=5, batch_size=32,
    ...                              log=None)
    >>> s = js.connect.evaluate_curve(fn, curve, data, np.linspace(0, 1, 21), progress=False)
    >>> bool(js.connect.barrier(s).height >= 0.0)
    True
"""

from jaxsurf.connect._align import (Group, PermutationSpec, activation_matching, align,
                                    apply_permutation, attention_spec, combine_specs,
                                    conv_spec, mlp_spec,
                                    repair_path, resnet_spec,
                                    weight_matching)
from jaxsurf.connect._curve import (KINDS, Curve, GaripovConvention, curve_coefficients,
                                     fit_curve, line, load_curve)
from jaxsurf.connect._measure import (Barrier, BatchStatsRecompute, CurvePlane, barrier,
                                      curve_path, curve_plane, evaluate_curve, plane_through,
                                      recompute_batch_stats)
from jaxsurf.connect._merge import merge, plane_coordinates, slerp, task_plane
from jaxsurf.connect._path import evaluate_path

__all__ = [
    "Curve", "KINDS", "GaripovConvention", "fit_curve", "line", "load_curve",
    "curve_coefficients",
    "evaluate_curve", "BatchStatsRecompute", "recompute_batch_stats",
    "Barrier", "barrier", "CurvePlane", "curve_plane", "curve_path",
    "Group", "PermutationSpec", "weight_matching", "activation_matching",
    "apply_permutation", "align", "repair_path",
    "mlp_spec", "resnet_spec", "conv_spec", "attention_spec", "combine_specs", "task_plane",
    "plane_through",
    "plane_coordinates", "merge", "slerp", "evaluate_path",
]
