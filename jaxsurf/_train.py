"""The implementation of :mod:`jaxsurf.train`; its public face, with the
documentation and examples, is ``jaxsurf/train.py``."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsurf import _fitloop, _validate, _batching as batching, _tree as tree
from jaxsurf._io import atomic as _atomic
from jaxsurf._engine.data import check_data_dtypes
from jaxsurf._deprecation import deprecated_alias
from jaxsurf.data.augment import augment
from jaxsurf._evaluate import dataset_mean
from jaxsurf._flax import eval_mode_kwargs, linen_metrics_fn
from jaxsurf._losses import (get_loss, next_token_cross_entropy, takes_mask,
                             tokens_per_example)
from jaxsurf._progress import ProgressOption
from jaxsurf._store import data_fingerprint

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
        loss: ``cross_entropy``, ``mse``, ``mae`` or ``next_token`` (see
            :mod:`jaxsurf.losses`).
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
    """``(params, state, opt_state, key, x, y, mask) -> (..., mean step loss)`` for one
    epoch (``mask``: the padding mask of every example, or ``None``).

    One jitted step per batch, in a Python loop: on XLA:CPU, gradients of
    convolutions inside a rolled ``lax.scan`` ran about 9x slower than the
    same steps dispatched one by one (SmallCNN, 20 steps of 128: 31.8 s vs
    3.6 s), so the epoch is not a scan. The data stay on the device; each step
    gathers its shuffled batch there.
    """
    @jax.jit
    def step(params, state, opt_state, key, x, y, mask, index):
        key, k_drop, k_aug = jax.random.split(key, 3)
        xb, yb = x[index], y[index]
        masked = {} if mask is None else {"mask": mask[index]}
        if config.augment:
            xb = augment(k_aug, xb, padding=2, flip=config.flip)

        def objective(p):
            out, new_state = model.apply({"params": p, **state}, xb, **train_kwargs,
                                         mutable=list(state), rngs={"dropout": k_drop})
            metrics = loss_fn(out, yb, **masked)
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

    def epoch(params, state, opt_state, key, x, y, mask=None, report=None, after_step=None):
        key, order = shuffle(key, x.shape[0])
        steps = int(order.shape[0])
        every = max(1, steps // 100)  # wait for the device at most ~100 times an epoch
        losses = []
        for i, index in enumerate(order):
            params, state, opt_state, key, loss = step(params, state, opt_state, key, x, y,
                                                       mask, index)
            losses.append(loss)
            if after_step is not None:  # e.g. a js.Monitor: (steps done, params, state)
                after_step(i + 1, params, state)
            if report is not None and ((i + 1) % every == 0 or i + 1 == steps):
                loss.block_until_ready()  # count steps finished, not just dispatched
                report(i + 1)
        return params, state, opt_state, key, jnp.mean(jnp.stack(losses))

    return epoch


def _monitor_hook(monitor: Callable[[int, Any], Any], base: int, params: Any, state: Any
                  ) -> Callable[[int, Any, Any], None]:
    """Calls ``monitor(0, variables)`` at the very start, and returns the per-step
    call ``(i, params, state) -> monitor(base + i, variables)``."""
    if base == 0:
        monitor(0, {"params": params, **state})

    def after_step(i: int, p: Any, s: Any) -> None:
        monitor(base + i, {"params": p, **s})
    return after_step


def _train_flags(model: Any) -> dict[str, Any]:
    """The inverse of the evaluation-mode flags: ``train=True`` etc."""
    return {k: (not v) for k, v in eval_mode_kwargs(model.__call__).items()}


def fit(model: Any, data: dict[str, Any], config: TrainConfig = TrainConfig(), *,
        out_dir: str | Path | None = None, variables: dict[str, Any] | None = None,
        log: Callable[[str], None] | None = print,
        progress: ProgressOption = None,
        monitor: Callable[[int, dict[str, Any]], Any] | None = None) -> TrainResult:
    """Trains ``model`` on ``data["train"]``, evaluating on ``data["val"]`` each epoch.

    Args:
        model: a Flax Linen module whose ``__call__`` takes ``train``.
        data: ``{"train": {"x", "y"}, "val": {"x", "y"}}`` inputs and
            targets (``"val"`` optional), and for a language model a padding
            ``"mask"`` beside them (passed to the loss as ``mask=``).
        config: :class:`TrainConfig`.
        out_dir: where ``trajectory/`` (orbax), ``log.jsonl`` and
            ``config.json`` go; an existing run there is resumed.
        variables: initial variables (default: ``model.init`` with ``config.seed``).
        log: called with one line per epoch (None for silence).
        progress: progress within each epoch, in steps (see
            :mod:`jaxsurf.progress`): ``None`` (default) draws a bar on a
            terminal and writes log lines (start, every 10 % or 60 s, end)
            otherwise; ``False`` for none; or a callable.
        monitor: called as ``monitor(step, variables)`` at the start (step 0,
            unless resuming) and after every optimizer step, with the global step
            (``(epoch - 1) * steps_per_epoch + i``) and the current variables
            (``{"params": ..., "batch_stats": ...}``), e.g. a
            :class:`jaxsurf.Monitor` whose ``fn`` is
            ``js.flax.linen_metrics_fn(model)`` (directions then leave the 1-D
            BatchNorm statistics where they are). A resumed run replays the steps
            after its last checkpoint; a monitor skips those it recorded.

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
    mask = jnp.asarray(train["mask"]) if "mask" in train else None
    if any("mask" in data[split] for split in data) and not takes_mask(get_loss(config.loss)):
        raise ValueError(f"the data carry a padding 'mask' but the loss {config.loss!r} takes "
                         f"no mask=; use loss='next_token' for a language model, or drop "
                         f"the 'mask' entries")
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
    def evaluator(split: dict[str, Any], limit: int | None = None) -> Callable:
        arrays = {k: np.asarray(split[k][:limit]) for k in ("x", "y", "mask") if k in split}
        loss: Any = config.loss
        if "mask" in arrays and get_loss(loss) is next_token_cross_entropy:
            # the split's tokens per sequence: an exact per-token mean however it is batched
            loss = functools.partial(next_token_cross_entropy,
                                     tokens_per_example=tokens_per_example(arrays["mask"]))
        return dataset_mean(linen_metrics_fn(model, loss=loss), arrays,
                            batch_size=config.eval_batch_size)

    # exact train metrics on (up to) the first 10,000 training examples
    eval_train = evaluator(train, 10_000)
    eval_val = evaluator(data["val"]) if "val" in data else None
    epoch_fn = _make_epoch(model, get_loss(config.loss), tx, config, _train_flags(model))
    if monitor is not None and not callable(monitor):
        raise TypeError(f"monitor must be callable as monitor(step, variables), e.g. a "
                        f"js.Monitor, got {type(monitor).__name__}")
    position = {"epoch": 0}  # the last finished epoch (set by the fit loop on resume)

    def start(first: int) -> None:
        position["epoch"] = first

    def epoch(params: Any, carry: dict[str, Any], report: Callable[[int], None] | None
              ) -> tuple[Any, dict[str, Any], dict[str, float]]:
        position["epoch"] += 1
        after_step = None if monitor is None else _monitor_hook(
            monitor, (position["epoch"] - 1) * steps_per_epoch, params, carry["batch_stats"])
        params, state, opt_state, key, train_loss = epoch_fn(
            params, carry["batch_stats"], carry["opt_state"], carry["key"], x, y, mask,
            report=report, after_step=after_step)
        current = {"params": params, **state}
        row = {"train_step_loss": float(train_loss)}
        row.update({f"train_{k}": v for k, v in eval_train(current).items()})
        if eval_val is not None:
            row.update({f"val_{k}": v for k, v in eval_val(current).items()})
        return params, {"batch_stats": state, "opt_state": opt_state, "key": key}, row

    folder = None
    if out_dir is not None:
        out_dir = Path(out_dir)
        folder = _fitloop.Folder(out_dir, "config.json", "trajectory", noun="model",
                                 argument="out_dir", writer="train.fit", save_initial=True,
                                 added=_ADDED_SETTINGS)
    fit_ = _fitloop.run(
        epoch, params, {"batch_stats": state, "opt_state": opt_state, "key": key},
        epochs=config.epochs, folder=folder,
        settings=_settings(config, data, variables, steps_per_epoch) if folder else None,
        log=log, describe=lambda row: " ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
        resumed=lambda start: f"resuming from epoch {start} in {out_dir}",
        progress=progress, steps=steps_per_epoch, start=start)
    history = fit_.history
    return TrainResult({"params": fit_.params, **fit_.state["batch_stats"]}, history,
                       best_epoch(history), fit_.seconds,
                       str(out_dir / "trajectory") if out_dir is not None else None)


# fields an earlier jaxsurf did not write to config.json (its runs resume unchecked by them)
_ADDED_SETTINGS = ("data", "initial_variables", "schedule_steps")


def _settings(config: TrainConfig, data: dict[str, Any], variables: dict[str, Any],
              steps_per_epoch: int) -> dict[str, Any]:
    """What identifies a run (``config.json``): the config, the schedule's length
    (``epochs`` may grow on resume, but not under a schedule that decays over
    them), the data of every split and the initial variables."""
    return {**dataclasses.asdict(config),
            "schedule_steps": (None if config.schedule == "constant"
                               else config.epochs * steps_per_epoch),
            "data": {split: data_fingerprint(data[split], batching.num_examples(data[split]))
                     for split in data},
            "initial_variables": tree.fingerprint(variables)}


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
