"""Fine-tuning and model-merging landscapes: task-vector planes, merge
operators, linear vs SLERP barriers, weight vs activation matching.

Two models (``--model``):

* ``transformer`` (default): the byte-level transformer LM of the scale issue
  (``jaxsurf.models.TransformerLM``), on the Python standard library's own
  source (``jaxsurf.data.load_python_source``). The *base* is pretrained on
  the library **without** the two task groups; the two *tasks* are two
  disjoint groups of its packages that differ in style: task A the GUI code
  (``tkinter``, ``idlelib``, ``turtledemo``), task B the internet-data code
  (``email``, ``http``, ``urllib``, ``xml``, ``xmlrpc``, ``html``,
  ``wsgiref``). Each group's files are split by file into training and
  held-out validation text; the held-out text of a group is its task's
  validation set. Every loss is the exact mean next-token cross-entropy
  (nats per byte) over the real tokens of a validation set.
* ``cnn``: the Fashion-MNIST CNN this experiment used before the transformer
  landed (three 3x3 conv-ReLU layers, global average pooling, a dense ReLU
  layer, a 10-way head, no BatchNorm); task A is classes 0-4, task B 5-9.

The steps are the same for both:

1. A *base* is pretrained; fine-tune A continues it on task A's training
   data only, fine-tune B on task B's (``jaxsurf.train``).
2. The *task plane* ``base + la (A - base) + lb (B - base)``
   (``js.connect.task_plane``, Ilharco et al. 2023) is evaluated for each
   task's validation loss and their sum; every merge
   (``js.connect.merge``: linear soup, task arithmetic, TIES, DARE,
   DARE-TIES) is marked on it (its projection: TIES and DARE leave the plane)
   and its (task A, task B) losses are tabulated.
3. Barriers between the fine-tunes along the straight line and along SLERP
   (``js.connect.evaluate_path``, ``js.connect.barrier``), on both tasks'
   validation data.
4. Two networks trained independently (different seeds): barriers of the
   straight line before alignment, after weight matching and after
   activation matching (``js.connect.align``), and with REPAIR
   (``js.connect.repair_path``, Jordan et al. 2023). The CNN's permutations
   are its channels and dense units (``js.connect.conv_spec``). The
   transformer's are the heads of every attention layer
   (``js.connect.attention_spec``) and the hidden units of every block's MLP
   (``js.connect.mlp_spec``), in one spec (``js.connect.combine_specs``); the
   residual stream (embeddings, LayerNorms, the output layer) is left
   unpermuted. Activation matching matches MLP units by the correlation of
   their GELU outputs and heads by the correlation of their attention
   probabilities (every causal query-key entry a sample): a head's output is
   ``head_dim`` numbers whose coordinates do not correspond between two
   independently trained nets, while its attention pattern is one number per
   (query, key) pair that does. REPAIR corrects the MLP units (a head is not one
   unit with one weight column and bias that REPAIR could rescale). The two
   LMs are the base (seed 0) and one more trained the same way (seed 1),
   compared on the pretraining validation text. An extra alignment permutes
   the residual stream too (``lm_residual_spec``), to show what that adds.

    python -m experiments.merging --preset smoke
    python -m experiments.merging --preset quick --out runs/merging_transformer_quick
    python -m experiments.merging --model cnn --preset quick --out runs/merging_quick

Presets: smoke (CI: seconds to a few minutes on a CPU; tiny models; the CNN
falls back to random images when Fashion-MNIST is missing), quick (minutes on
2 CPU cores), full (more data, wider models, finer planes; for a GPU).
Writes ``results.json``, the figures and every Surface to ``--out``; rerunning
reuses finished training runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import jaxsurf as js
from experiments.data import fashion_mnist
from experiments.report import jsonable, save_text
from jaxsurf import models, train
from jaxsurf.data import load_python_source
from jaxsurf.models import transformer as tlm

connect = js.connect
MODELS = ("transformer", "cnn")

# every merge of the two fine-tunes; scale 1 where the paper's default, density as papers
MERGES = {
    "soup (linear)": {"method": "linear"},
    "task arithmetic (scale 0.5)": {"method": "task_arithmetic", "scale": 0.5},
    "task arithmetic (scale 1)": {"method": "task_arithmetic", "scale": 1.0},
    "TIES (density 0.2)": {"method": "ties", "density": 0.2},
    "DARE (density 0.5, scale 0.5)": {"method": "dare", "density": 0.5, "scale": 0.5},
    "DARE-TIES (density 0.5)": {"method": "dare_ties", "density": 0.5},
}


@dataclass
class Setup:
    """What differs between the two models; the steps in :func:`main` are shared."""

    kind: str                       # "transformer" or "cnn"
    model: nn.Module
    description: str                # the model, for results.json
    dataset: str
    choice: str                     # which model and why (results.json "model_choice")
    tasks: dict[str, str]           # task -> what it is (figure titles)
    pretrain: dict                  # {"train", "val"} of the base (and the scratch nets)
    finetune: dict[str, dict]       # task -> {"train", "val"}
    both: dict                      # both tasks' validation data (paths between fine-tunes)
    scratch_val: dict               # where the independently trained nets are compared
    scratch_val_name: str
    configs: dict[str, train.TrainConfig]   # "pretrain", "finetune", "scratch"
    epochs: dict[str, int]          # "base", "finetune", "scratch"
    scratch_seeds: tuple[int, ...]  # seeds trained from scratch; 0 = the base itself
    loss_for: Callable[[dict], Any]  # subset -> the loss of js.flax.adapt for it
    spec: Callable[[Any], Any]      # params -> PermutationSpec of the alignment
    repair_spec: Callable[[Any], Any]   # params -> the spec REPAIR corrects
    activations: Callable[[Any, Any], Any]
    preactivations: Callable[[Any, Any], Any]
    match_data: dict                # examples activation matching and REPAIR use
    batch_size: int
    synthetic: bool = False
    loss_name: str = "loss"
    wider_spec: Callable[[Any], Any] | None = None   # an extra alignment (the LM: + residual)
    wider_activations: Callable[[Any, Any], Any] | None = None
    info: dict = dataclasses.field(default_factory=dict)


# ----------------------------------------------------------------- the CNN (--model cnn)
@dataclass(frozen=True)
class Preset:
    widths: tuple[int, ...]   # filters of the three conv layers
    hidden: int               # units of the dense layer
    train_examples: int | None  # training images (None: all 60,000)
    base_epochs: int          # pretraining of the base on all ten classes
    finetune_epochs: int      # each fine-tune, on its task's images
    scratch_epochs: int       # each independently trained net, on all classes
    eval_examples: int        # validation images of each task every value averages
    grid: int                 # points per axis of the task planes
    points: int               # values of t along every path
    synthetic_fallback: bool = False


BASE = Preset(widths=(16, 32, 32), hidden=64, train_examples=10_000, base_epochs=1,
              finetune_epochs=2, scratch_epochs=2, eval_examples=1_000, grid=13, points=11)
PRESETS = {
    "smoke": dataclasses.replace(BASE, widths=(4, 8, 8), hidden=8, train_examples=512,
                                 finetune_epochs=1, scratch_epochs=1, eval_examples=128,
                                 grid=5, points=5, synthetic_fallback=True),
    "quick": BASE,
    "full": dataclasses.replace(BASE, widths=(32, 64, 64), hidden=128, train_examples=None,
                                base_epochs=2, finetune_epochs=5, scratch_epochs=10,
                                eval_examples=5_000, grid=33, points=41),
}
PRETRAIN = train.TrainConfig(batch_size=128, optimizer="adam", learning_rate=1e-3,
                             weight_decay=0.0, schedule="constant", loss="cross_entropy",
                             eval_batch_size=1000)
FINETUNE = dataclasses.replace(PRETRAIN, learning_rate=3e-4, schedule="cosine")
SCRATCH = dataclasses.replace(PRETRAIN, schedule="cosine")
TASKS = {"A": (0, 1, 2, 3, 4), "B": (5, 6, 7, 8, 9)}
LAYERS = ["conv0", "conv1", "conv2", "dense0", "head"]


class CNN(nn.Module):
    """conv-ReLU x3 (2x2 max pool after the first two), global average pool,
    dense-ReLU, head. Without BatchNorm, and with pooling rather than a flatten
    before the dense layers, so that ``js.connect.conv_spec`` describes its
    permutations."""

    widths: tuple[int, ...] = (16, 32, 32)
    hidden: int = 64
    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        for i, w in enumerate(self.widths):
            x = nn.relu(nn.Conv(w, (3, 3), name=f"conv{i}")(x))
            if i < len(self.widths) - 1:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = jnp.mean(x, axis=(1, 2))
        x = nn.relu(nn.Dense(self.hidden, name="dense0")(x))
        return nn.Dense(self.num_classes, name="head")(x)


def load(data_dir: str | None, preset: Preset) -> tuple[dict, bool]:
    """Standardized Fashion-MNIST; the smoke preset falls back to random images."""
    try:
        return fashion_mnist(data_dir, preset.train_examples), False
    except SystemExit:
        if not preset.synthetic_fallback or data_dir is not None:
            raise
    rng = np.random.default_rng(0)
    fake = lambda n: {"x": rng.normal(size=(n, 28, 28, 1)).astype(np.float32),  # noqa: E731
                      "y": rng.integers(0, 10, n).astype(np.int32)}
    print("Fashion-MNIST not found: smoke run on SYNTHETIC random images")
    return {"train": fake(preset.train_examples or 512), "val": fake(4 * preset.eval_examples),
            "test": fake(256)}, True


def task_split(split: dict, classes: tuple[int, ...], n: int | None = None) -> dict:
    keep = np.isin(split["y"], classes)
    return {"x": split["x"][keep][:n], "y": split["y"][keep][:n]}


def hidden(model: nn.Module, pre: bool) -> Callable[[Any, Any], list]:
    """Every hidden layer's outputs (``pre``: before the ReLU), in conv_spec's group order."""
    def activations(params: Any, batch: Any) -> list:
        _, state = model.apply({"params": params}, batch["x"], capture_intermediates=True,
                               mutable=["intermediates"])
        out = [state["intermediates"][name]["__call__"][0] for name in LAYERS[:-1]]
        return out if pre else [jax.nn.relu(jnp.asarray(h)) for h in out]
    return activations


def cnn_setup(preset: Preset, data_dir: str | None) -> Setup:
    data, synthetic = load(data_dir, preset)
    model = CNN(widths=preset.widths, hidden=preset.hidden)
    val = {name: task_split(data["val"], classes, preset.eval_examples)
           for name, classes in TASKS.items()}
    both = {k: np.concatenate([val["A"][k], val["B"][k]]) for k in ("x", "y")}
    spec = lambda p: connect.conv_spec(p, layers=LAYERS)  # noqa: E731
    return Setup(
        kind="cnn", model=model,
        description=f"CNN {preset.widths} + dense {preset.hidden}, no BatchNorm",
        dataset="SYNTHETIC random images" if synthetic else "Fashion-MNIST",
        choice="Fashion-MNIST CNN (--model cnn: the stand-in the issue names, kept beside "
               "the transformer LM)",
        tasks={"A": "task A (classes 0-4)", "B": "task B (classes 5-9)"},
        pretrain={"train": data["train"], "val": both},
        finetune={name: {"train": task_split(data["train"], classes), "val": val[name]}
                  for name, classes in TASKS.items()},
        both=both, scratch_val=both, scratch_val_name="both tasks' validation images",
        configs={"pretrain": PRETRAIN, "finetune": FINETUNE, "scratch": SCRATCH},
        epochs={"base": preset.base_epochs, "finetune": preset.finetune_epochs,
                "scratch": preset.scratch_epochs},
        scratch_seeds=(1, 2), loss_for=lambda subset: "cross_entropy", spec=spec,
        repair_spec=spec, activations=hidden(model, pre=False),
        preactivations=hidden(model, pre=True),
        match_data={"x": data["train"]["x"][:preset.eval_examples]}, batch_size=500,
        synthetic=synthetic, loss_name="cross-entropy",
        info={"synthetic": synthetic, "tasks": {k: list(v) for k, v in TASKS.items()},
              "stand_in": "Fashion-MNIST CNN (--model cnn; the default is the transformer "
                          "LM of the scale issue)"})


# ----------------------------------------------------------------- the transformer LM
@dataclass(frozen=True)
class LMPreset:
    seq_len: int              # tokens per sequence (the context)
    d_model: int
    num_heads: int
    num_layers: int
    pretrain_bytes: int | None  # bytes of the library (without the task groups) read
    task_bytes: int | None    # bytes of each task group read (None: every file)
    base_epochs: int          # pretraining, also of the second independently trained LM
    finetune_epochs: int
    eval_examples: int        # validation sequences of each task every value averages
    grid: int                 # points per axis of the task planes ((grid - 1) % 4 == 0)
    points: int               # values of t along every path
    batch_size: int = 32


LM_PRESETS = {
    "smoke": LMPreset(seq_len=32, d_model=16, num_heads=2, num_layers=1,
                      pretrain_bytes=24_000, task_bytes=8_000, base_epochs=1,
                      finetune_epochs=1, eval_examples=32, grid=5, points=5),
    "quick": LMPreset(seq_len=64, d_model=64, num_heads=4, num_layers=2,
                      pretrain_bytes=1_000_000, task_bytes=300_000, base_epochs=3,
                      finetune_epochs=2, eval_examples=512, grid=13, points=11,
                      batch_size=64),
    "full": LMPreset(seq_len=256, d_model=256, num_heads=8, num_layers=6,
                     pretrain_bytes=None, task_bytes=None, base_epochs=10,
                     finetune_epochs=5, eval_examples=4096, grid=33, points=41,
                     batch_size=128),
}
# two disjoint groups of packages that differ in style: GUI code and internet-data code
GROUPS = {"A": ("tkinter", "idlelib", "turtledemo"),
          "B": ("email", "http", "urllib", "xml", "xmlrpc", "html", "wsgiref")}
GROUP_NAMES = {"A": "GUI code", "B": "internet-data code"}
PRETRAIN_VAL_FRACTION = 0.1
TASK_VAL_FRACTION = 0.2
LM_PRETRAIN = train.TrainConfig(batch_size=32, optimizer="adam", learning_rate=3e-3,
                                weight_decay=0.01, schedule="cosine", loss="next_token",
                                eval_batch_size=256)
LM_FINETUNE = dataclasses.replace(LM_PRETRAIN, learning_rate=1e-3)


def _heads(model: Any, q: jax.Array, k: jax.Array) -> jax.Array:
    """Attention probabilities ``(batch, causal pairs, heads)`` from the query and key
    projections ``(batch, length, d)``: one number per head at every (query, key <=
    query) pair, the head's pattern (masked pairs, zero for every head, left out)."""
    batch, length, width = q.shape
    h = model.num_heads
    q = q.reshape(batch, length, h, width // h)
    k = k.reshape(batch, length, h, width // h)
    if model.positions == "rotary":
        positions = jnp.arange(length)
        q = tlm.rotary_embedding(q, positions)
        k = tlm.rotary_embedding(k, positions)
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(width // h).astype(q.dtype)
    causal = jnp.tril(jnp.ones((length, length), bool))
    probs = jax.nn.softmax(jnp.where(causal, scores, jnp.finfo(scores.dtype).min), axis=-1)
    iq, ik = np.tril_indices(length)
    return jnp.moveaxis(probs[:, :, iq, ik], 1, -1)


def lm_hidden(model: Any, pre: bool) -> Callable[[Any, Any], dict]:
    """The transformer's hidden activations by group of :func:`lm_spec`: the MLP's
    GELU outputs (``pre``: its pre-activations, and no heads, for REPAIR) and the
    attention probabilities of every head."""
    def activations(params: Any, batch: Any) -> dict:
        _, state = model.apply({"params": params}, batch["x"], capture_intermediates=True,
                               mutable=["intermediates"])
        inter = state["intermediates"]
        out = {}
        for i in range(model.num_layers):
            block = inter[f"block_{i}"]
            mlp = block["mlp_in"]["__call__"][0]
            out[f"mlp:block_{i}/hidden_0"] = mlp if pre else nn.gelu(mlp)
            if not pre:
                attn = block["attn"]
                out[f"heads:block_{i}/attn"] = _heads(model, attn["query"]["__call__"][0],
                                                      attn["key"]["__call__"][0])
        return out
    return activations


def lm_mlp_spec(params: Any, layers: int) -> Any:
    """Each block's MLP hidden units, one group per block (``mlp:block_<i>/hidden_0``)."""
    return connect.combine_specs(**{
        f"mlp:block_{i}": connect.mlp_spec(params, layers=[f"block_{i}/mlp_in",
                                                           f"block_{i}/mlp_out"])
        for i in range(layers)})


def lm_spec(params: Any, heads: int, layers: int) -> Any:
    """The transformer's permutations: every attention layer's heads and every block's
    MLP hidden units; the residual stream is not permuted."""
    return connect.combine_specs(connect.attention_spec(params, num_heads=heads),
                                 lm_mlp_spec(params, layers))


# the residual stream's axis in each TransformerLM leaf (kernel [in, out]): what writes to
# the stream has it on its output axis, what reads the stream on its input axis
_RESIDUAL_AXIS = {"embedding": 1, "scale": 0, "ln_bias": 0, "query": 0, "key": 0, "value": 0,
                  "out": 1, "out_bias": 0, "mlp_in": 0, "mlp_out": 1, "mlp_out_bias": 0,
                  "head": 0}


def lm_residual_spec(params: Any, d_model: int) -> Any:
    """The residual stream as one more permutation group (``residual``, ``d_model``
    units): the embeddings' features, every LayerNorm's scale and bias, the input
    rows of every projection that reads the stream (query, key, value, mlp_in,
    head) and the outputs of those that write to it (out, mlp_out, their biases).
    LayerNorm commutes with a permutation of its features, so the network computes
    the same function. Not part of the issue's spec (heads and MLP units): an extra
    row, to show what aligning the stream too does."""
    axes: dict[str, tuple[Any, ...]] = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        names = [str(getattr(k, "key", k)) for k in path]
        layer, leaf_name, ndim = names[-2], names[-1], np.ndim(leaf)
        if leaf_name == "embedding":
            role = "embedding"
        elif layer.startswith("ln_"):
            role = "scale" if leaf_name == "scale" else "ln_bias"
        elif leaf_name == "bias":
            role = f"{layer}_bias" if layer in ("out", "mlp_out") else None
        else:
            role = layer
        axis = _RESIDUAL_AXIS.get(role) if role else None
        if axis is not None:
            entry: list[Any] = [None] * ndim
            entry[axis] = "residual"
            axes[js.tree.leaf_path(path)] = tuple(entry)
    leaves = tuple(js.tree.leaf_path(p) for p, _ in jax.tree_util.tree_leaves_with_path(params))
    return connect.PermutationSpec({"residual": connect.Group(d_model)}, axes, paths=leaves)


def lm_residual_hidden(model: Any) -> Callable[[Any, Any], dict]:
    """:func:`lm_hidden` plus the residual stream after every block (rows pooled)."""
    inner = lm_hidden(model, pre=False)

    def activations(params: Any, batch: Any) -> dict:
        out = inner(params, batch)
        _, state = model.apply({"params": params}, batch["x"], capture_intermediates=True,
                               mutable=["intermediates"])
        out["residual"] = [state["intermediates"][f"block_{i}"]["__call__"][0]
                           for i in range(model.num_layers)]
        return out
    return activations


def _split_record(source: dict) -> dict:
    return {s: {k: v for k, v in source["split"][s].items() if k not in ("file_bytes",)}
            for s in ("train", "val")}


def lm_setup(preset: LMPreset) -> Setup:
    every = [p for g in GROUPS.values() for p in g]
    pre = load_python_source(preset.seq_len, max_bytes=preset.pretrain_bytes,
                             val_fraction=PRETRAIN_VAL_FRACTION, exclude=every)
    tasks = {name: load_python_source(preset.seq_len, max_bytes=preset.task_bytes,
                                      val_fraction=TASK_VAL_FRACTION, packages=list(packages))
             for name, packages in GROUPS.items()}
    for source in tasks.values():   # the groups are disjoint, and not in pretraining
        files = set(source["split"]["train"]["files"] + source["split"]["val"]["files"])
        assert not files & set(pre["split"]["train"]["files"] + pre["split"]["val"]["files"])
    n = preset.eval_examples
    def cut(split: dict) -> dict:   # n sequences spread evenly over the split's files
        keep = np.unique(np.linspace(0, len(split["x"]) - 1, n).round().astype(int))
        return {k: v[keep] for k, v in split.items()}

    val = {name: cut(source["val"]) for name, source in tasks.items()}
    both = {k: np.concatenate([val["A"][k], val["B"][k]]) for k in ("x", "y", "mask")}
    model = models.TransformerLM(vocab_size=256, max_len=preset.seq_len,
                                 d_model=preset.d_model, num_heads=preset.num_heads,
                                 num_layers=preset.num_layers)

    def loss_for(subset: dict) -> Any:   # the exact mean over the subset's real tokens
        return functools.partial(js.losses.next_token_cross_entropy,
                                 tokens_per_example=js.losses.tokens_per_example(
                                     subset["mask"]))

    pretrain_cfg = dataclasses.replace(LM_PRETRAIN, batch_size=preset.batch_size)
    return Setup(
        kind="transformer", model=model,
        description=(f"Transformer LM ({preset.num_layers} layers, width {preset.d_model}, "
                     f"{preset.num_heads} heads, context {preset.seq_len}, byte vocabulary)"),
        dataset="python-stdlib",
        choice="transformer LM of the scale issue (jaxsurf.models.TransformerLM), pretrained "
               "on the Python standard library's source without the two task groups, "
               "fine-tuned on two disjoint groups of its packages",
        tasks={k: f"task {k} ({GROUP_NAMES[k]}: {', '.join(v)})" for k, v in GROUPS.items()},
        pretrain={"train": pre["train"], "val": cut(pre["val"])},
        finetune={name: {"train": source["train"], "val": val[name]}
                  for name, source in tasks.items()},
        both=both, scratch_val=cut(pre["val"]),
        scratch_val_name="held-out pretraining text (library without the task groups)",
        configs={"pretrain": pretrain_cfg,
                 "finetune": dataclasses.replace(LM_FINETUNE, batch_size=preset.batch_size),
                 "scratch": pretrain_cfg},
        epochs={"base": preset.base_epochs, "finetune": preset.finetune_epochs,
                "scratch": preset.base_epochs},
        scratch_seeds=(0, 1), loss_for=loss_for,
        spec=lambda p: lm_spec(p, preset.num_heads, preset.num_layers),
        repair_spec=lambda p: lm_mlp_spec(p, preset.num_layers),
        activations=lm_hidden(model, pre=False), preactivations=lm_hidden(model, pre=True),
        match_data={"x": pre["train"]["x"][:n]}, batch_size=64,
        wider_spec=lambda p: connect.combine_specs(
            lm_spec(p, preset.num_heads, preset.num_layers),
            lm_residual_spec(p, preset.d_model)),
        wider_activations=lm_residual_hidden(model),
        loss_name="next-token cross-entropy, nats/byte",
        info={"packages": {k: list(v) for k, v in GROUPS.items()},
              "task_names": GROUP_NAMES,
              "data": {"pretrain": {"excluded_packages": every,
                                    "val_fraction": PRETRAIN_VAL_FRACTION,
                                    **_split_record(pre)},
                       **{name: {"packages": list(GROUPS[name]),
                                 "val_fraction": TASK_VAL_FRACTION, **_split_record(source)}
                          for name, source in tasks.items()}},
              "eval_sequences": {"A": len(val["A"]["x"]), "B": len(val["B"]["x"]),
                                 "pretrain": len(cut(pre["val"])["x"])},
              "permutations": "heads of every attention layer (attention_spec, num_heads) "
                              "and hidden units of every block's MLP (mlp_spec), combined "
                              "(combine_specs); the residual stream (embeddings, LayerNorm, "
                              "output layer) is not permuted",
              "activation_matching": "MLP units: correlation of GELU outputs; heads: "
                                     "correlation of attention probabilities over every "
                                     "causal (query, key) pair",
              "repair": "MLP hidden units only (a head is not one unit with one producing "
                        "weight column and bias)",
              "independent_nets": "the base (seed 0) and a second LM trained the same way "
                                  "(seed 1)"})


# ----------------------------------------------------------------- steps
def fit(model: nn.Module, splits: dict, config: train.TrainConfig, out: Path,
        variables: Any = None) -> tuple[dict, float, dict]:
    t0 = time.perf_counter()
    result = train.fit(model, splits, config, out_dir=out, variables=variables, log=None,
                       progress=False)
    last = result.history[-1] if result.history else {}
    summary = {k: last.get(k) for k in ("train_loss", "val_loss", "val_accuracy")}
    return jax.device_get(result.variables)["params"], time.perf_counter() - t0, summary


def leaf_angles(pa: Any, pb: Any) -> dict[str, Any]:
    """Per-leaf angle between two models, the angle SLERP turns through (degrees);
    leaves with |cos| > 0.9995 are interpolated linearly by js.connect.slerp."""
    cos = [float(np.vdot(np.ravel(a), np.ravel(b)) / (np.linalg.norm(a) * np.linalg.norm(b)))
           for a, b in zip(jax.tree.leaves(pa), jax.tree.leaves(pb))]
    degrees = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    return {"max_degrees": float(degrees.max()), "median_degrees": float(np.median(degrees)),
            "leaves": len(cos),
            "leaves_linear": int(np.sum(np.abs(cos) > connect_slerp_colinear()))}


def connect_slerp_colinear() -> float:
    return 0.9995  # js.connect.slerp interpolates a leaf linearly above this |cos|


def path_row(surface: js.Surface) -> dict[str, Any]:
    b = connect.barrier(surface)
    mid = int(np.argmin(np.abs(surface.alphas - 0.5)))
    return {"loss_barrier": b.height, "barrier_t": b.t,
            "loss_mid": float(surface.metrics["loss"][mid]),
            "loss_max": float(surface.metrics["loss"].max()),
            "loss_ends": [float(surface.metrics["loss"][0]), float(surface.metrics["loss"][-1])],
            "accuracy_min": float(surface.metrics["accuracy"].min())}


# ----------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--model", choices=MODELS, default="transformer",
                        help="the transformer LM on the standard library's source (default) "
                             "or the Fashion-MNIST CNN")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST files (--model cnn)")
    parser.add_argument("--out", default=None,
                        help="output folder (default runs/merging_<model>_<preset>/)")
    args = parser.parse_args(argv)
    if args.data_dir is not None and args.model != "cnn":
        parser.error("--data-dir is for --model cnn (the transformer reads the standard "
                     "library's source)")
    out = Path(args.out or f"runs/merging_{args.model}_{args.preset}")
    out.mkdir(parents=True, exist_ok=True)
    print(f"output: {out}", flush=True)
    start = time.perf_counter()
    if args.model == "cnn":
        preset: Any = PRESETS[args.preset]
        setup = cnn_setup(preset, args.data_dir)
    else:
        preset = LM_PRESETS[args.preset]
        setup = lm_setup(preset)
    model, batch = setup.model, setup.batch_size
    seconds: dict[str, float] = {}
    training: dict[str, Any] = {}

    # 1. the base, then one fine-tune per task
    base, seconds["train_base"], training["base"] = fit(
        model, setup.pretrain, dataclasses.replace(
            setup.configs["pretrain"], epochs=setup.epochs["base"]), out / "base")
    fts = {}
    for name, splits in setup.finetune.items():
        fts[name], seconds[f"finetune_{name}"], training[f"finetune_{name}"] = fit(
            model, splits, dataclasses.replace(setup.configs["finetune"],
                                               epochs=setup.epochs["finetune"], seed=1),
            out / f"finetune_{name}", variables={"params": base})
    val = {name: splits["val"] for name, splits in setup.finetune.items()}
    fns = {name: js.flax.adapt(model, {"params": base}, loss=setup.loss_for(subset))[0]
           for name, subset in (*val.items(), ("both", setup.both),
                                ("scratch", setup.scratch_val))}

    # 2. the task plane of each task's validation loss and their sum, every merge on it
    t0 = time.perf_counter()
    d1, d2 = connect.task_plane(base, fts["A"], fts["B"])
    lambdas = np.linspace(-0.5, 1.5, preset.grid)  # (grid - 1) % 4 == 0: 0 and 1 on the grid
    labels = ["lambda_A (task vector A: fine-tune A - base)",
              "lambda_B (task vector B: fine-tune B - base)"]
    planes = {}
    for name in val:
        planes[name] = js.evaluate_plane(fns[name], base, d1, d2, val[name], lambdas, lambdas,
                                         batch_size=batch, progress=False,
                                         metadata={"task": name, "axis_labels": labels})
        planes[name].save(out / f"task_plane_{name}.npz")
    cosine = planes["A"].metadata["directions_cosine"]
    planes["sum"] = js.Surface(lambdas, lambdas, {
        "loss": planes["A"].metrics["loss"] + planes["B"].metrics["loss"],
        "accuracy": 0.5 * (planes["A"].metrics["accuracy"] + planes["B"].metrics["accuracy"])},
        {"directions_cosine": cosine, "axis_labels": labels,
         "what": "task A loss + task B loss; accuracy: their mean"})
    planes["sum"].save(out / "task_plane_sum.npz")
    seconds["task_planes"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    evaluate = {name: js.dataset_mean(fns[name], val[name], batch_size=batch) for name in val}
    models_on_plane = {"base": base, "fine-tune A": fts["A"], "fine-tune B": fts["B"]}
    for label, options in MERGES.items():
        key = jax.random.key(0) if "dare" in options["method"] else None
        models_on_plane[label] = connect.merge(base, [fts["A"], fts["B"]], key=key, **options)
    table = {}
    for label, params in models_on_plane.items():
        a, b, off = connect.plane_coordinates(params, base, d1, d2)
        va, vb = evaluate["A"](params), evaluate["B"](params)
        table[label] = {"loss_A": va["loss"], "loss_B": vb["loss"],
                        "loss_sum": va["loss"] + vb["loss"], "accuracy_A": va["accuracy"],
                        "accuracy_B": vb["accuracy"], "lambda_A": a, "lambda_B": b,
                        "off_plane_distance": off}
    best = int(np.argmin(planes["sum"].metrics["loss"]))
    i, j = np.unravel_index(best, planes["sum"].metrics["loss"].shape)
    plane_best = {"lambda_A": float(lambdas[i]), "lambda_B": float(lambdas[j]),
                  "loss_sum": float(planes["sum"].metrics["loss"][i, j])}
    seconds["merges"] = time.perf_counter() - t0

    figures = {}
    marks = {label: (row["lambda_A"], row["lambda_B"]) for label, row in table.items()
             if lambdas[0] <= row["lambda_A"] <= lambdas[-1]
             and lambdas[0] <= row["lambda_B"] <= lambdas[-1] and label != "base"}
    what = f"validation loss ({setup.loss_name})"
    for name, title in (("A", f"{setup.tasks['A']} {what}"),
                        ("B", f"{setup.tasks['B']} {what}"),
                        ("sum", f"task A + task B {what}")):
        file = f"task_plane_{name}.png"
        js.plot.contour(planes[name], log=True, points=marks, title=f"{title} on the task plane"
                        + (" (SYNTHETIC data)" if setup.synthetic else ""), figsize=(7.5, 6.5),
                        out=out / file)
        figures[f"task_plane_{name}"] = file

    # 3. between the fine-tunes: straight line vs SLERP, on both tasks' validation data
    t0 = time.perf_counter()
    ts = np.linspace(0.0, 1.0, preset.points)
    a_, b_ = fts["A"], fts["B"]
    ft_paths = {
        "line": connect.evaluate_path(fns["both"], lambda t: js.tree.axpy(
            t, js.tree.sub(b_, a_), a_), setup.both, ts, batch_size=batch, progress=False,
            path_fingerprint="line fine-tune A -> B"),
        "SLERP": connect.evaluate_path(fns["both"], lambda t: connect.slerp(a_, b_, t),
                                       setup.both, ts, batch_size=batch, progress=False,
                                       path_fingerprint="slerp fine-tune A -> B")}
    finetune_barriers = {label: path_row(s) for label, s in ft_paths.items()}
    finetune_angles = leaf_angles(a_, b_)
    for label, s in ft_paths.items():
        s.save(out / f"finetunes_{label.lower()}.npz")
    accuracy = "token accuracy" if setup.kind == "transformer" else "accuracy"
    js.plot.connectivity_lines(ft_paths, title=f"between the fine-tunes: loss (solid), "
                               f"{accuracy} (dashed) on both tasks",
                               out=out / "finetune_paths.png")
    figures["finetune_paths"] = "finetune_paths.png"
    seconds["finetune_paths"] = time.perf_counter() - t0

    # 4. two nets trained independently: line before and after weight / activation
    #    matching, REPAIR
    nets = []
    for seed in setup.scratch_seeds:
        if seed == 0 and setup.kind == "transformer":   # the base is the first LM
            nets.append(base)
            continue
        params, seconds[f"train_scratch_{seed}"], training[f"scratch_{seed}"] = fit(
            model, setup.pretrain, dataclasses.replace(
                setup.configs["scratch"], epochs=setup.epochs["scratch"], seed=seed),
            out / f"scratch_{seed}")
        nets.append(params)
    pa, pb = nets
    spec = setup.spec(pa)
    t0 = time.perf_counter()
    by_weight = connect.align(pa, pb, spec)
    seconds["weight_matching"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    by_activation = connect.align(pa, pb, spec, method="activation", data=setup.match_data,
                                  activations=setup.activations, batch_size=batch)
    seconds["activation_matching"] = time.perf_counter() - t0
    agree = {name: float(np.mean(connect.weight_matching(pa, pb, spec)[name] ==
                                 connect.activation_matching(
                                     pa, pb, spec, setup.match_data, setup.activations,
                                     batch_size=batch)[name]))
             for name in spec.groups}
    line = lambda p, q: (lambda t: js.tree.axpy(t, js.tree.sub(q, p), p))  # noqa: E731
    repair_label = ("activation matching + REPAIR" if setup.kind == "cnn" else
                    "activation matching + REPAIR (MLP units)")
    scratch_paths = {"line (not aligned)": line(pa, pb),
                     "line, weight matching": line(pa, by_weight),
                     "line, activation matching": line(pa, by_activation),
                     "SLERP, activation matching": lambda t: connect.slerp(pa, by_activation,
                                                                          t),
                     repair_label: connect.repair_path(
                         pa, by_activation, setup.repair_spec(pa), setup.match_data,
                         setup.preactivations, batch_size=batch)}
    distance = {label: float(js.tree.norm(js.tree.sub(p, pa))) for label, p in
                (("not aligned", pb), ("weight matching", by_weight),
                 ("activation matching", by_activation))}
    if setup.wider_spec is not None:   # the LM: the residual stream permuted too
        wider = setup.wider_spec(pa)
        t0 = time.perf_counter()
        wide_weight = connect.align(pa, pb, wider)
        seconds["weight_matching_with_residual"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        wide_activation = connect.align(pa, pb, wider, method="activation",
                                        data=setup.match_data,
                                        activations=setup.wider_activations, batch_size=batch)
        seconds["activation_matching_with_residual"] = time.perf_counter() - t0
        scratch_paths["line, weight matching + residual stream"] = line(pa, wide_weight)
        scratch_paths["line, activation matching + residual stream"] = line(pa, wide_activation)
        distance["weight matching + residual stream"] = float(
            js.tree.norm(js.tree.sub(wide_weight, pa)))
        distance["activation matching + residual stream"] = float(
            js.tree.norm(js.tree.sub(wide_activation, pa)))
    t0 = time.perf_counter()
    scratch_surfaces = {label: connect.evaluate_path(fns["scratch"], path, setup.scratch_val,
                                                     ts, batch_size=batch, progress=False)
                        for label, path in scratch_paths.items()}
    seconds["scratch_paths"] = time.perf_counter() - t0
    scratch_barriers = {label: path_row(s) for label, s in scratch_surfaces.items()}
    for k, s in enumerate(scratch_surfaces.values()):
        s.save(out / f"scratch_path_{k}.npz")
    scratch_angles = leaf_angles(pa, by_activation)
    nets_name = "two LMs trained independently" if setup.kind == "transformer" else \
        "two nets trained from scratch"
    js.plot.connectivity_lines(scratch_surfaces, title=f"{nets_name}: loss (solid), "
                               f"{accuracy} (dashed)", out=out / "scratch_paths.png")
    figures["scratch_paths"] = "scratch_paths.png"

    num_params = models.num_params({"params": base})
    results = {"experiment": "merging", "model_kind": setup.kind, "preset": args.preset,
               "command": "python -m experiments.merging " + " ".join(
                   argv if argv is not None else sys.argv[1:]),
               "config": dataclasses.asdict(preset),
               "training": {k: dataclasses.asdict(dataclasses.replace(
                   c, epochs=setup.epochs["base" if k == "pretrain" else k]))
                   for k, c in setup.configs.items()},
               "training_result": training,
               "model": f"{setup.description} ({num_params} parameters)",
               "num_params": num_params, "model_choice": setup.choice,
               "dataset": setup.dataset, "task_descriptions": setup.tasks,
               **setup.info,
               "backend": jax.default_backend(), "task_vector_cosine": cosine,
               "task_vector_norms": {"A": float(js.tree.norm(d1)), "B": float(js.tree.norm(d2))},
               "merges": table, "plane_minimum_of_sum": plane_best,
               "finetune_barriers": finetune_barriers, "finetune_leaf_angles": finetune_angles,
               "scratch_compared_on": setup.scratch_val_name,
               "scratch_barriers": scratch_barriers, "scratch_leaf_angles": scratch_angles,
               "scratch_distance": distance, "figures": figures, "seconds": seconds}
    results["weight_vs_activation_same_unit"] = agree   # share of units both put alike
    results["seconds"]["total"] = time.perf_counter() - start
    save_text(out / "results.json", json.dumps(jsonable(results), indent=1))
    acc = "token accuracy" if setup.kind == "transformer" else "accuracy"
    print(f"\n{results['model']}\ntask vectors: cos = {cosine:.3f}; merges (validation loss "
          f"A, B; {acc} A, B; plane coordinates, distance off the plane):")
    for label, row in table.items():
        print(f"  {label:32s} {row['loss_A']:7.4f} {row['loss_B']:7.4f}  "
              f"{100 * row['accuracy_A']:5.1f}% {100 * row['accuracy_B']:5.1f}%  "
              f"({row['lambda_A']:5.2f}, {row['lambda_B']:5.2f}) {row['off_plane_distance']:.3f}")
    print("barriers, loss at t = 0.5 (fine-tunes: both tasks' validation data; "
          f"independent nets: {setup.scratch_val_name}):")
    for label, row in {**finetune_barriers, **scratch_barriers}.items():
        print(f"  {label:42s} {row['loss_barrier']:8.4f} at t = {row['barrier_t']:.2f}   "
              f"{row['loss_mid']:.4f}")
    print(f"leaf angles between the fine-tunes: max {finetune_angles['max_degrees']:.2f} deg "
          f"({finetune_angles['leaves_linear']} of {finetune_angles['leaves']} leaves "
          f"interpolated linearly by slerp); between the independent nets: max "
          f"{scratch_angles['max_degrees']:.1f} deg")
    print(f"wrote {out / 'results.json'} ({results['seconds']['total']:.0f} s)")
    return results


if __name__ == "__main__":
    main()
