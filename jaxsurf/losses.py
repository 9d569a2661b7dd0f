"""Batch-mean losses and metrics for ``fn(params, batch)``.

Each loss maps ``(outputs, targets)`` to a dict of scalars that are means over
the batch, ready to be returned by ``fn``. Classification losses also report
``accuracy`` when the targets are integer labels (or one-hot rows).

Language models: :func:`next_token_cross_entropy` (name ``"next_token"``)
averages over real tokens only, given a padding mask (``js.flax.adapt``
passes a batch's ``"mask"`` entry); with ``tokens_per_example`` it is an
exact per-token mean over the whole data set under the engine's dataset
means (``docs/language_models.md``). :func:`perplexity` is ``exp`` of that
mean, taken after averaging.

Example:
    >>> import jax.numpy as jnp
    >>> from jaxsurf.losses import get_loss
    >>> get_loss("cross_entropy")(jnp.array([[2.0, 0.0]]), jnp.array([0]))["accuracy"]
    Array(1., dtype=float32)
"""

from jaxsurf._deprecation import moved_names
from jaxsurf._losses import (accuracy, cross_entropy, get_loss, mae, mse,
                             next_token_cross_entropy, perplexity, tokens_per_example)

__all__ = ["accuracy", "cross_entropy", "get_loss", "mae", "mse", "next_token_cross_entropy",
           "perplexity", "tokens_per_example"]

# public before the face was narrowed (issue 24): they warn, then resolve as before
__getattr__ = moved_names(__name__, "jaxsurf._losses", ("LOSSES", "label_classes",
    "check_labels",))
