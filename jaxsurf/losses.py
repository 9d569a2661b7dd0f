"""Batch-mean losses and metrics for ``fn(params, batch)``.

Each loss maps ``(outputs, targets)`` to a dict of scalars that are means over
the batch, ready to be returned by ``fn``. Classification losses also report
``accuracy`` when the targets are integer labels (or one-hot rows).

Example:
    >>> import jax.numpy as jnp
    >>> from jaxsurf.losses import get_loss
    >>> get_loss("cross_entropy")(jnp.array([[2.0, 0.0]]), jnp.array([0]))["accuracy"]
    Array(1., dtype=float32)
"""

from jaxsurf._deprecation import moved_names
from jaxsurf._losses import accuracy, cross_entropy, get_loss, mae, mse

__all__ = ["accuracy", "cross_entropy", "get_loss", "mae", "mse"]

# public before the face was narrowed (issue 24): they warn, then resolve as before
__getattr__ = moved_names(__name__, "jaxsurf._losses", ("LOSSES", "label_classes",
    "check_labels",))
