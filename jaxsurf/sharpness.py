"""Sharpness of a minimum, as numbers: the worst or average loss increase
under bounded perturbations of the weights.

All measures use the exact dataset-mean loss ``L`` (every example, the short
last batch weighted by its size) and its exact gradient ``g = grad L(w)``;
each costs a handful of passes over the data.

=====================  =====================================================
measure                definition
=====================  =====================================================
``epsilon_sharpness``  ``100 (max_{|d_i| <= eps(|w_i|+1)} L(w+d) - L(w)) / (1 + L(w))``
                       (Keskar et al. 2017), max by projected sign ascent
``sam_sharpness``      ``L(w + rho g/||g||) - L(w)`` (Foret et al. 2021)
``adaptive_sharpness`` ``L(w + rho T^2 g/||T g||) - L(w)``, ``T = |w| + eta``
                       (Kwon et al. 2021, ASAM)
``average_sharpness``  ``E_d L(w+d) - L(w)``, ``d ~ N(0, sigma^2 I)`` or
                       ``N(0, sigma^2 diag(w^2))`` (Monte Carlo, standard error)
=====================  =====================================================

Caveat (Dinh et al. 2017, "Sharp minima can generalize for deep nets"):
for ReLU networks a layer-wise rescaling ``(c W1, W2 / c)`` leaves the
function unchanged but changes Euclidean-ball sharpness arbitrarily.
``adaptive_sharpness`` with ``eta=0`` and ``average_sharpness(scale="weight")``
are exactly invariant to such element-wise rescalings (the first is tested);
``epsilon_sharpness`` (radii ``eps(|w|+1)``) only partly; ``sam_sharpness``
and ``average_sharpness(scale="none")`` not at all.

Example:
    >>> import jaxsurf as js
    >>> increase = js.sharpness.sam_sharpness(fn, params, data, rho=0.05)
    >>> mean, se = js.sharpness.average_sharpness(fn, params, data, key=jax.random.key(0))
"""

from jaxsurf._sharpness import (
    adaptive_sharpness,
    average_sharpness,
    epsilon_sharpness,
    sam_sharpness,
)

__all__ = ["adaptive_sharpness", "average_sharpness", "epsilon_sharpness", "sam_sharpness"]
