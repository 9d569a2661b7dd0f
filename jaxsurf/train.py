"""An optax training loop for Flax Linen models that records its trajectory.

Beside the analysis core and never imported by it. Each epoch is one jitted
``lax.scan`` over device-resident, shuffled batches (the short last batch of
an epoch is dropped in training, as usual; evaluation is exact). BatchNorm
statistics are updated in training and frozen in evaluation. After every
epoch the params, BatchNorm statistics and optimizer state are saved with
:class:`jaxsurf.trajectory.TrajectoryRecorder` (step = epoch, step 0 = the
initialisation), and a JSON line of metrics is appended to ``log.jsonl``; an
interrupted run started again with the same ``out_dir`` resumes after the last
saved epoch.

Example:
    >>> from jaxsurf import train
    >>> splits = {"train": data, "val": data}     # model: a Linen net taking ``train``
    >>> result = train.fit(model, splits, train.TrainConfig(epochs=2, batch_size=32),
    ...                    out_dir="runs/net", log=None, progress=False)
    >>> [h["epoch"] for h in result.history], 0.0 <= result.history[-1]["val_accuracy"] <= 1.0
    ([1, 2], True)
"""

from jaxsurf._train import (
    OPTIMIZERS,
    TrainConfig,
    TrainResult,
    best_epoch,
    fit,
    make_optimizer,
    make_schedule,
    plot_history,
    read_log,
)

__all__ = ["OPTIMIZERS", "TrainConfig", "TrainResult", "best_epoch", "fit", "make_optimizer",
           "make_schedule", "plot_history", "read_log"]
