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

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsurf import _validate, batching
from jaxsurf._io import atomic as _atomic
from jaxsurf._engine.data import check_data_dtypes
from jaxsurf._deprecation import deprecated_alias
from jaxsurf.data.augment import augment
from jaxsurf.evaluate import dataset_mean
from jaxsurf.flax import eval_mode_kwargs, linen_metrics_fn
from jaxsurf.interrupt import Interrupted, is_interrupt
from jaxsurf.losses import get_loss
from jaxsurf.progress import ProgressOption, ProgressTracker, make_sink

__all__ = ["TrainConfig", "TrainResult", "make_schedule", "make_optimizer", "fit",
           "plot_history", "read_log", "best_epoch"]

OPTIMIZERS = ("sgd", "nesterov", "adam", "nadam")
SCHEDULES = ("constant", "cosine", "piecewise")


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (all JSON-serialisable, saved beside the run).

    Attributes:
        epochs: passes over the training set.
        batch_size: examples per step.
        optimizer: ``sgd`` (heavy-ball momentum), ``nesterov``, ``adam`` or ``nadam``.
        learning_rate: peak learning rate.
        momentum: SGD momentum.
        weight_decay: L2 penalty added to the gradient (coupled, as in SGD
            training of ResNets; for Adam/Nadam decoupled AdamW-style).
        schedule: ``constant``, ``cosine`` (to 0) or ``piecewise`` (×``decay``
            at each fraction of training in ``milestones``).
        loss: ``cross_entropy``, ``mse`` or ``mae`` (see :mod:`jaxsurf.losses`).
        augment: random crop (pad 2) and, if ``flip``, horizontal flips.
        eval_batch_size: batch size of the exact evaluation passes.
        seed: initialisation, shuffling, dropout and augmentation seed.
    """

    epochs: int = 2
    batch_size: int = 128
    optimizer: str = "nesterov"
    learning_rate: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    milestones: tuple[float, ...] = (0.5, 0.75)
    decay: float = 0.1
    loss: str = "cross_entropy"
    augment: bool = False
    flip: bool = False
    eval_batch_size: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; use one of {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; use one of {SCHEDULES}")
        get_loss(self.loss)
        _validate.non_negative_int(self.epochs, "epochs")
        _validate.positive_int(self.batch_size, "batch_size")


@dataclass
class TrainResult:
    """What :func:`fit` returns: final variables, per-epoch history, best epoch."""

    variables: dict[str, Any]
    history: list[dict[str, float]]
    best_epoch: int
    seconds: float
    trajectory_dir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def make_schedule(config: TrainConfig, steps_per_epoch: int) -> optax.Schedule:
    """The learning-rate schedule over ``epochs * steps_per_epoch`` steps."""
    total = max(1, config.epochs * steps_per_epoch)
    if config.schedule == "constant":
        return optax.constant_schedule(config.learning_rate)
    if config.schedule == "cosine":
        return optax.cosine_decay_schedule(config.learning_rate, total)
    boundaries = {int(f * total): config.decay for f in config.milestones}
    return optax.piecewise_constant_schedule(config.learning_rate, boundaries)


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """SGD / Nesterov with coupled weight decay, or Adam / Nadam with decoupled decay."""
    schedule = make_schedule(config, steps_per_epoch)
    if config.optimizer in ("sgd", "nesterov"):
        return optax.chain(optax.add_decayed_weights(config.weight_decay),
                           optax.sgd(schedule, momentum=config.momentum,
                                     nesterov=config.optimizer == "nesterov"))
    return optax.adamw(schedule, weight_decay=config.weight_decay,
                       nesterov=config.optimizer == "nadam")


def _make_epoch(model: Any, loss_fn: Callable, tx: optax.GradientTransformation,
                config: TrainConfig, train_kwargs: dict[str, Any]) -> Callable:
    """``(params, state, opt_state, key, x, y) -> (..., mean step loss)`` for one epoch.

    One jitted step per batch, in a Python loop: on XLA:CPU, gradients of
    convolutions inside a rolled ``lax.scan`` ran about 9x slower than the
    same steps dispatched one by one (SmallCNN, 20 steps of 128: 31.8 s vs
    3.6 s), so the epoch is not a scan. The data stay on the device; each step
    gathers its shuffled batch there.
    """
    @jax.jit
    def step(params, state, opt_state, key, x, y, index):
        key, k_drop, k_aug = jax.random.split(key, 3)
        xb, yb = x[index], y[index]
        if config.augment:
            xb = augment(k_aug, xb, padding=2, flip=config.flip)

        def objective(p):
            out, new_state = model.apply({"params": p, **state}, xb, **train_kwargs,
                                         mutable=list(state), rngs={"dropout": k_drop})
            metrics = loss_fn(out, yb)
            metrics = metrics if isinstance(metrics, dict) else {"loss": metrics}
            return metrics["loss"], new_state

        (loss, new_state), grads = jax.value_and_grad(objective, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), dict(new_state), opt_state, key, loss

    @functools.partial(jax.jit, static_argnums=1)
    def shuffle(key, n):
        key, k_perm = jax.random.split(key)
        steps = n // config.batch_size
        order = jax.random.permutation(k_perm, n)[: steps * config.batch_size]
        return key, order.reshape((steps, config.batch_size))

    def epoch(params, state, opt_state, key, x, y, report=None):
        key, order = shuffle(key, x.shape[0])
        steps = int(order.shape[0])
        every = max(1, steps // 100)  # wait for the device at most ~100 times an epoch
        losses = []
        for i, index in enumerate(order):
            params, state, opt_state, key, loss = step(params, state, opt_state, key, x, y,
                                                       index)
            losses.append(loss)
            if report is not None and ((i + 1) % every == 0 or i + 1 == steps):
                loss.block_until_ready()  # count steps finished, not just dispatched
                report(i + 1)
        return params, state, opt_state, key, jnp.mean(jnp.stack(losses))

    return epoch


def _train_flags(model: Any) -> dict[str, Any]:
    """The inverse of the evaluation-mode flags: ``train=True`` etc."""
    return {k: (not v) for k, v in eval_mode_kwargs(model.__call__).items()}


def fit(model: Any, data: dict[str, Any], config: TrainConfig = TrainConfig(), *,
        out_dir: str | Path | None = None, variables: dict[str, Any] | None = None,
        log: Callable[[str], None] | None = print,
        progress: ProgressOption = None) -> TrainResult:
    """Trains ``model`` on ``data["train"]``, evaluating on ``data["val"]`` each epoch.

    Args:
        model: a Flax Linen module whose ``__call__`` takes ``train``.
        data: ``{"train": {"x", "y"}, "val": {"x", "y"}}`` float inputs and
            targets (``"val"`` optional).
        config: :class:`TrainConfig`.
        out_dir: where ``trajectory/`` (orbax), ``log.jsonl`` and
            ``config.json`` go; an existing run there is resumed.
        variables: initial variables (default: ``model.init`` with ``config.seed``).
        log: called with one line per epoch (None for silence).
        progress: progress within each epoch, in steps (see
            :mod:`jaxsurf.progress`): ``None`` (default) draws a bar on a
            terminal and writes log lines (start, every 10 % or 60 s, end)
            otherwise; ``False`` for none; or a callable.

    Returns:
        :class:`TrainResult` with the final variables and history.

    Raises:
        jaxsurf.interrupt.Interrupted: on Ctrl-C or SIGTERM with ``out_dir``,
            after the finished epochs are saved (a ``KeyboardInterrupt``; run
            again with the same ``out_dir`` to resume).

    Example:
        >>> result = fit(model, {"train": data}, TrainConfig(epochs=1, batch_size=32),
        ...              out_dir="runs/a", log=print, progress=False)
        epoch=1 train_step_loss=... train_accuracy=... train_loss=... seconds=...
        >>> sorted(result.variables)
        ['batch_stats', 'params']
    """
    train = data["train"]
    for split in data:  # the evaluators' checks: one row per example, numbers only
        batching.num_examples(data[split], what=f"data[{split!r}]")
        check_data_dtypes(data[split], f"data[{split!r}]")
    x, y = jnp.asarray(train["x"]), jnp.asarray(train["y"])
    if x.shape[0] < config.batch_size:
        raise ValueError(f"{x.shape[0]} training examples are fewer than batch_size "
                         f"{config.batch_size}")
    steps_per_epoch = x.shape[0] // config.batch_size
    tx = make_optimizer(config, steps_per_epoch)
    key = jax.random.key(config.seed)
    if variables is None:
        initial: dict[str, Any] = model.init(jax.random.fold_in(key, 1), x[:2])
        variables = initial
    params = variables["params"]
    state = {k: v for k, v in variables.items() if k != "params"}
    opt_state = tx.init(params)
    key = jax.random.fold_in(key, 2)
    eval_fn = linen_metrics_fn(model, loss=config.loss)

    def evaluator(split: dict[str, Any], limit: int | None = None) -> Callable:
        arrays = {"x": np.asarray(split["x"][:limit]), "y": np.asarray(split["y"][:limit])}
        return dataset_mean(eval_fn, arrays, batch_size=config.eval_batch_size)

    # exact train metrics on (up to) the first 10,000 training examples
    eval_train = evaluator(train, 10_000)
    eval_val = evaluator(data["val"]) if "val" in data else None

    recorder, history, start_epoch = None, [], 0
    if out_dir is not None:
        from jaxsurf.trajectory import TrajectoryRecorder

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        _atomic.write_text(out_dir / "config.json",
                           json.dumps(dataclasses.asdict(config), indent=1))
        recorder = TrajectoryRecorder(out_dir / "trajectory")
        if recorder.latest_step is not None:
            start_epoch = recorder.latest_step
            template = {"batch_stats": state, "opt_state": opt_state,
                        "key": jax.random.key_data(key)}
            params, saved = recorder.restore(start_epoch, params_like=params,
                                             state_like=template)
            if saved is None:
                raise ValueError(f"the checkpoint of epoch {start_epoch} in {out_dir} has no "
                                 f"training state (batch_stats, opt_state, key), so it was not "
                                 f"written by fit(); pass a new out_dir")
            state, opt_state = dict(saved["batch_stats"]), saved["opt_state"]
            key = jax.random.wrap_key_data(saved["key"])
            # rows after the checkpoint (each row is logged before its checkpoint) and a
            # torn last line (see jaxsurf._io.atomic.append_line) are dropped
            history = [h for h in read_log(out_dir / "log.jsonl") if h["epoch"] <= start_epoch]
            _atomic.write_text(out_dir / "log.jsonl",
                               "".join(json.dumps(h) + "\n" for h in history))
            if log:
                log(f"resuming from epoch {start_epoch} in {out_dir}")
        else:
            recorder.save(0, params, state={"batch_stats": state, "opt_state": opt_state,
                                            "key": jax.random.key_data(key)})
    epoch_fn = _make_epoch(model, get_loss(config.loss), tx, config, _train_flags(model))
    start = time.perf_counter()
    sink = make_sink(progress)
    saved_epoch = start_epoch
    try:
        for epoch in range(start_epoch + 1, config.epochs + 1):
            t0 = time.perf_counter()
            with ProgressTracker(sink, steps_per_epoch, unit="steps",
                                 label=f"epoch {epoch}/{config.epochs}") as track:
                params, state, opt_state, key, train_loss = epoch_fn(
                    params, state, opt_state, key, x, y,
                    report=track.update if sink is not None else None)
            current = {"params": params, **state}
            row = {"epoch": epoch, "train_step_loss": float(train_loss)}
            row.update({f"train_{k}": v for k, v in eval_train(current).items()})
            if eval_val is not None:
                row.update({f"val_{k}": v for k, v in eval_val(current).items()})
            row["seconds"] = time.perf_counter() - t0
            history.append(row)
            if recorder is not None and out_dir is not None:  # set together above
                # the row first: a crash before the checkpoint leaves a row a resume drops
                _atomic.append_line(out_dir / "log.jsonl", json.dumps(row))
                recorder.save(epoch, params, state={"batch_stats": state, "opt_state": opt_state,
                                                    "key": jax.random.key_data(key)})
                saved_epoch = epoch
            if log:
                log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                             for k, v in row.items()))
                if log is print:  # in order with the progress lines on stderr in a log
                    sys.stdout.flush()
    except BaseException as err:  # Ctrl-C / SIGTERM: the saved epochs are the resume point
        if out_dir is None or isinstance(err, Interrupted) or not is_interrupt(err):
            raise
        raise Interrupted(saved_epoch, config.epochs, out_dir, unit="epochs") from None
    finally:  # a crash mid-run still finishes the saves in flight
        if recorder is not None:
            recorder.close()
    best = best_epoch(history)
    return TrainResult({"params": params, **state}, history, best,
                       time.perf_counter() - start,
                       str(out_dir / "trajectory") if out_dir is not None else None)


def best_epoch(history: list[dict[str, float]]) -> int:
    """Epoch with the best validation accuracy (or lowest validation loss); 0 for
    an empty history.

    Example:
        >>> best_epoch([{"epoch": 1, "val_accuracy": 0.8}, {"epoch": 2, "val_accuracy": 0.7}])
        1
    """
    if not history:
        return 0
    if "val_accuracy" in history[0]:
        return int(max(history, key=lambda h: h["val_accuracy"])["epoch"])
    key = "val_loss" if "val_loss" in history[0] else "train_loss"
    return int(min(history, key=lambda h: h[key])["epoch"])


def read_log(path: str | Path) -> list[dict[str, float]]:
    """The per-epoch rows of a ``log.jsonl`` (empty if there is none).

    A torn last line (no newline: the run was killed while writing it) is
    dropped; the log must be a regular file (see :func:`jaxsurf._io.atomic.read_json_lines`).

    Example:
        >>> _ = Path("log.jsonl").write_text('{"epoch": 1, "train_loss": 0.5}\\n{"epo')
        >>> read_log("log.jsonl")
        [{'epoch': 1, 'train_loss': 0.5}]
    """
    return _atomic.read_json_lines(path, key="epoch")


# The figure moved to js.plot (one home for figures); the old name still works and warns.
plot_history = deprecated_alias("js.train.plot_history", "jaxsurf.plot", "training_history")
