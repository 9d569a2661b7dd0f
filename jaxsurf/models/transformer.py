"""A decoder-only transformer language model (Flax Linen), with the rules that
shard its weights over a ``"model"`` mesh axis and the axes filter
normalization treats as its filters.

``TransformerLM`` is GPT-style: token embedding (+ learned positions, or
rotary positions inside attention), ``num_layers`` pre-LayerNorm blocks
(``x + attn(LN(x))``, ``x + mlp(LN(x))``) with causal multi-head
self-attention and a GELU MLP, a final LayerNorm and an untied output layer
over the vocabulary (256 bytes by default). Kernels keep Flax's layout
``[in, out]``; the param tree is::

    embed/embedding [vocab, d]     pos_embed/embedding [max_len, d] (learned only)
    block_<i>/ln_attn/{scale,bias} block_<i>/attn/{query,key,value,out}/{kernel,bias}
    block_<i>/ln_mlp/{scale,bias}  block_<i>/mlp_in/{kernel,bias}  block_<i>/mlp_out/...
    ln_final/{scale,bias}          head/{kernel [d, vocab], bias}

Inputs are int token ids ``(batch, length)`` with ``length <= max_len``;
outputs are float32 logits ``(batch, length, vocab)``, position ``t`` seeing
tokens ``0..t`` only.

:func:`partition_specs` places the weights on a mesh (``"megatron"``: tensor
parallel column/row splits; ``"fsdp"``: each large leaf split along its
largest divisible axis); :func:`filter_axes` gives ``js.normalize`` the
filters of every leaf (a token row of an embedding, an output unit of every
projection). ``docs/language_models.md`` explains both.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from jaxsurf.models import TransformerLM, num_params
    >>> model = TransformerLM(d_model=32, num_heads=4, num_layers=2, max_len=16)
    >>> variables = model.init(jax.random.key(0), jnp.zeros((1, 16), jnp.int32))
    >>> num_params(variables)
    42624
    >>> model.apply(variables, jnp.zeros((3, 16), jnp.int32)).shape
    (3, 16, 256)
"""

from __future__ import annotations

from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec

from jaxsurf.models._layers import Dtype

__all__ = ["TransformerLM", "Block", "CausalSelfAttention", "partition_specs", "filter_axes",
           "rotary_embedding"]

POSITIONS = ("learned", "rotary")


def rotary_embedding(x: jax.Array, positions: jax.Array, base: float = 10_000.0) -> jax.Array:
    """Rotates pairs of features of ``x`` by position-dependent angles (RoPE, Su et
    al. 2021), in the "rotate half" arrangement.

    Args:
      x: ``(..., length, heads, head_dim)`` queries or keys; ``head_dim`` even.
      positions: ``(length,)`` integer positions.
      base: the wavelength base.

    Returns:
      ``x`` rotated, same shape and dtype. Dot products of rotated queries and
      keys depend only on the offset of their positions.

    Example:
      >>> q = jnp.ones((1, 4, 1, 2))
      >>> rotary_embedding(q, jnp.arange(4))[0, 0, 0]   # position 0 is not rotated
      Array([1., 1.], dtype=float32)
    """
    dim = x.shape[-1]
    if dim % 2:
        raise ValueError(f"rotary positions need an even head dimension, got {dim}")
    half = dim // 2
    freqs = base ** (-jnp.arange(half, dtype=jnp.float32) / half)
    angles = jnp.asarray(positions, jnp.float32)[:, None] * freqs[None, :]   # (length, half)
    sin = jnp.sin(angles)[:, None, :].astype(x.dtype)   # broadcast over heads
    cos = jnp.cos(angles)[:, None, :].astype(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with separate ``query``, ``key``, ``value``
    and ``out`` Dense layers (kernels ``[d, d]``; heads are consecutive blocks of
    ``head_dim`` columns).

    Attributes:
      num_heads: heads; must divide the model width.
      rotary: rotate queries and keys by their positions (RoPE).
      dropout: attention-probability dropout in training.
      dtype: computation dtype.
    """

    num_heads: int
    rotary: bool = False
    dropout: float = 0.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        batch, length, width = x.shape
        if width % self.num_heads:
            raise ValueError(f"num_heads={self.num_heads} does not divide the model width "
                             f"{width}")
        head_dim = width // self.num_heads

        def project(name: str) -> jax.Array:
            y = nn.Dense(width, dtype=self.dtype, name=name)(x)
            return y.reshape(batch, length, self.num_heads, head_dim)

        q, k, v = project("query"), project("key"), project("value")
        if self.rotary:
            positions = jnp.arange(length)
            q, k = rotary_embedding(q, positions), rotary_embedding(k, positions)
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(head_dim).astype(self.dtype)
        causal = jnp.tril(jnp.ones((length, length), bool))
        scores = jnp.where(causal, scores.astype(jnp.float32), jnp.finfo(jnp.float32).min)
        weights = jax.nn.softmax(scores, axis=-1).astype(self.dtype)
        weights = nn.Dropout(self.dropout, deterministic=not train)(weights)
        y = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(batch, length, width)
        return nn.Dense(width, dtype=self.dtype, name="out")(y)


class Block(nn.Module):
    """One pre-LayerNorm transformer block: ``x + attn(LN(x))``, then
    ``x + mlp_out(gelu(mlp_in(LN(x))))``."""

    num_heads: int
    mlp_ratio: int = 4
    rotary: bool = False
    dropout: float = 0.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        width = x.shape[-1]
        h = nn.LayerNorm(dtype=self.dtype, name="ln_attn")(x)
        h = CausalSelfAttention(self.num_heads, self.rotary, self.dropout, self.dtype,
                                name="attn")(h, train)
        x = x + nn.Dropout(self.dropout, deterministic=not train)(h)
        h = nn.LayerNorm(dtype=self.dtype, name="ln_mlp")(x)
        h = nn.Dense(self.mlp_ratio * width, dtype=self.dtype, name="mlp_in")(h)
        h = nn.Dense(width, dtype=self.dtype, name="mlp_out")(nn.gelu(h))
        return x + nn.Dropout(self.dropout, deterministic=not train)(h)


class TransformerLM(nn.Module):
    """A decoder-only transformer language model over token ids.

    Attributes:
      vocab_size: tokens (256: bytes).
      max_len: the longest input (the learned position table's rows).
      d_model: width of the residual stream.
      num_heads: attention heads (divide ``d_model``).
      num_layers: blocks.
      mlp_ratio: the MLP's hidden width is ``mlp_ratio * d_model``.
      positions: ``"learned"`` (a ``pos_embed`` table added to the token
        embeddings) or ``"rotary"`` (RoPE on queries and keys, no table).
      dropout: dropout rate in training (``train=True``, rng ``"dropout"``).
      dtype: computation dtype (logits are float32).

    Example:
      >>> model = TransformerLM(d_model=16, num_heads=2, num_layers=1, max_len=8,
      ...                       positions="rotary")
      >>> v = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 8), jnp.int32))
      >>> sorted(v["params"])
      ['block_0', 'embed', 'head', 'ln_final']
    """

    vocab_size: int = 256
    max_len: int = 128
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    mlp_ratio: int = 4
    positions: Literal["learned", "rotary"] = "learned"
    dropout: float = 0.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, tokens: jax.Array, train: bool = False) -> jax.Array:
        if self.positions not in POSITIONS:
            raise ValueError(f"positions={self.positions!r}; use one of {POSITIONS}")
        tokens = jnp.asarray(tokens)
        if tokens.ndim != 2 or not jnp.issubdtype(tokens.dtype, jnp.integer):
            raise ValueError(f"TransformerLM takes integer token ids (batch, length), got "
                             f"{tokens.dtype}{list(tokens.shape)}")
        length = tokens.shape[1]
        if length > self.max_len:
            raise ValueError(f"sequences of {length} tokens are longer than max_len="
                             f"{self.max_len}; build the model with a larger max_len")
        init = nn.initializers.normal(0.02)
        x = nn.Embed(self.vocab_size, self.d_model, embedding_init=init, dtype=self.dtype,
                     name="embed")(tokens)
        if self.positions == "learned":
            x = x + nn.Embed(self.max_len, self.d_model, embedding_init=init,
                             dtype=self.dtype, name="pos_embed")(jnp.arange(length))[None]
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        for i in range(self.num_layers):
            x = Block(self.num_heads, self.mlp_ratio, self.positions == "rotary",
                      self.dropout, self.dtype, name=f"block_{i}")(x, train)
        x = nn.LayerNorm(dtype=self.dtype, name="ln_final")(x)
        logits = nn.Dense(self.vocab_size, dtype=self.dtype, name="head")(x)
        return jnp.asarray(logits, jnp.float32)


# ----------------------------------------------------------------- sharding rules

# (layer name, leaf name) -> which axis of the leaf the Megatron rule splits:
# column-parallel layers split their output features (kernel axis 1, bias axis 0),
# row-parallel layers their input features (kernel axis 0, bias replicated).
_COLUMN = ("query", "key", "value", "mlp_in", "head")
_ROW = ("out", "mlp_out")
_NORMS = ("ln_attn", "ln_mlp", "ln_final")


def _names(path: tuple) -> list[str]:
    return [str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path]


def _megatron_split(names: list[str], ndim: int, embedding: str) -> int | None:
    """The axis of one leaf the Megatron rule splits (``None``: replicated)."""
    layer, leaf = (names[-2] if len(names) > 1 else ""), names[-1]
    if layer in _NORMS and leaf in ("scale", "bias"):
        return None
    if layer in _COLUMN and leaf == "kernel":
        return 1
    if layer in _COLUMN and leaf == "bias":
        return 0
    if layer in _ROW and leaf == "kernel":
        return 0
    if layer in _ROW and leaf == "bias":
        return None
    if layer == "embed" and leaf == "embedding":
        return 0 if embedding == "vocab" else 1
    if layer == "pos_embed" and leaf == "embedding":
        return None if embedding == "vocab" else 1
    raise ValueError(f"partition_specs(style='megatron') does not know the leaf "
                     f"{''.join(f'[{n!r}]' for n in names)} (ndim {ndim}); it is written for "
                     f"TransformerLM's params. Use style='fsdp' for another model")


def _fsdp_split(shape: tuple[int, ...], axis_size: int, min_size: int) -> int | None:
    """The largest axis of ``shape`` that ``axis_size`` divides (first on a tie), for a
    leaf of at least ``min_size`` elements; ``None`` (replicated) otherwise."""
    if int(np.prod(shape, dtype=np.int64)) < min_size:
        return None
    fits = [a for a, n in enumerate(shape) if n % axis_size == 0 and n >= axis_size]
    return max(fits, key=lambda a: (shape[a], -a)) if fits else None


def partition_specs(params: Any, style: Literal["megatron", "fsdp"] = "megatron", *,
                    axis: str = "model", axis_size: int | None = None,
                    embedding: Literal["vocab", "features"] = "vocab",
                    min_size: int = 1024) -> Any:
    """Where each weight of a :class:`TransformerLM` lies on a mesh axis.

    ``"megatron"`` (tensor parallelism, Shoeybi et al. 2019): ``query``,
    ``key``, ``value``, ``mlp_in`` and ``head`` are column-parallel (kernel
    ``P(None, axis)``, bias ``P(axis)``: each shard computes some heads / some
    hidden units / some logits); ``out`` and ``mlp_out`` are row-parallel
    (kernel ``P(axis, None)``, bias replicated: the partial sums are reduced);
    the token embedding is split over the vocabulary (``P(axis, None)``) or,
    with ``embedding="features"``, over its features (``P(None, axis)``, the
    position table too); LayerNorm parameters are replicated. Any other leaf
    is an error: the rule is written for this model.

    ``"fsdp"`` (fully sharded data parallel): every leaf of at least
    ``min_size`` elements is split along its largest axis that ``axis_size``
    divides; smaller leaves, and those with no such axis, are replicated. It
    applies to any params pytree.

    Under GSPMD any placement computes the same values; the placement only
    decides what each device holds and what is communicated.

    Args:
      params: the params pytree (arrays or ``jax.ShapeDtypeStruct``).
      style: ``"megatron"`` or ``"fsdp"``.
      axis: the mesh axis the weights are split over.
      axis_size: that axis's size (devices). Required by ``"fsdp"``; for
        ``"megatron"`` it checks that every split divides its dimension.
      embedding: ``"vocab"`` or ``"features"`` (Megatron only).
      min_size: the smallest leaf ``"fsdp"`` splits.

    Returns:
      A pytree like ``params`` of ``jax.sharding.PartitionSpec`` (one per
      leaf); ``jax.tree.map(lambda s: NamedSharding(mesh, s), specs)`` makes
      the shardings for ``jax.device_put``.

    Raises:
      ValueError: an unknown style, a leaf the Megatron rule does not know, or
        a split that ``axis_size`` does not divide (naming the leaf, its shape
        and the sizes that would work).

    Example:
      >>> model = TransformerLM(d_model=32, num_heads=4, num_layers=1, max_len=8)
      >>> v = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 8), jnp.int32))
      >>> specs = partition_specs(v["params"], "megatron", axis_size=4)
      >>> specs["block_0"]["attn"]["query"]["kernel"], specs["block_0"]["attn"]["out"]["kernel"]
      (P(None, 'model'), P('model', None))
      >>> partition_specs(v["params"], "fsdp", axis_size=4)["block_0"]["mlp_in"]["kernel"]
      P(None, 'model')
    """
    if style not in ("megatron", "fsdp"):
        raise ValueError(f"style={style!r}; use 'megatron' or 'fsdp'")
    if embedding not in ("vocab", "features"):
        raise ValueError(f"embedding={embedding!r}; use 'vocab' or 'features'")
    if axis_size is not None and (not isinstance(axis_size, (int, np.integer))
                                  or isinstance(axis_size, bool) or axis_size < 1):
        raise ValueError(f"axis_size must be a positive int (the devices on mesh axis "
                         f"{axis!r}), got {axis_size!r}")
    if style == "fsdp" and axis_size is None:
        raise ValueError("partition_specs(style='fsdp') needs axis_size= (the devices on mesh "
                         f"axis {axis!r}) to choose an axis each leaf divides along")

    def spec(path: tuple, leaf: Any) -> PartitionSpec:
        shape = tuple(int(n) for n in np.shape(leaf))
        names = _names(path)
        if style == "fsdp":
            split = _fsdp_split(shape, int(axis_size or 1), min_size)
        else:
            split = _megatron_split(names, len(shape), embedding)
            if split is not None and split >= len(shape):
                raise ValueError(f"leaf {''.join(f'[{n!r}]' for n in names)} has shape "
                                 f"{shape}; the Megatron rule splits its axis {split}")
            if split is not None and axis_size is not None and shape[split] % axis_size:
                sizes = [s for s in range(1, shape[split] + 1) if shape[split] % s == 0]
                raise ValueError(
                    f"leaf {''.join(f'[{n!r}]' for n in names)} of shape {shape} is split "
                    f"along axis {split} ({shape[split]}), which {axis_size} shards do not "
                    f"divide; use a model axis of size {sizes[-8:]} or a model width that "
                    f"{axis_size} divides")
        if split is None:
            return PartitionSpec()
        return PartitionSpec(*[axis if a == split else None for a in range(len(shape))])

    return jax.tree_util.tree_map_with_path(spec, params)


def filter_axes(params: Any) -> Any:
    """Which axis indexes the filters of each :class:`TransformerLM` leaf, for
    ``js.normalize(..., filter_axis=filter_axes(params))``.

    * Every Dense kernel ``[in, out]`` (``query``, ``key``, ``value``, ``out``,
      ``mlp_in``, ``mlp_out``, ``head``): the **last** axis, one filter per
      output unit (Flax's rule, as for any Dense layer). For ``query`` and
      ``key`` it is also the model's symmetry: scaling column ``j`` of the
      query kernel by ``c`` and of the key kernel by ``1/c`` leaves every
      attention score unchanged, and likewise a ``value`` column against the
      matching row of ``out``.
    * Embedding tables ``[vocab, d]`` (``embed``, ``pos_embed``): the **first**
      axis, one filter per token (per position): the embedding is a Dense
      layer from one-hot tokens, and a token's row is what its lookup
      produces (and, were the output layer tied to it, the filter of that
      token's logit). This is the reference tool's and Equinox's choice;
      ``js.normalize``'s default for a Flax ``embedding`` leaf is a feature
      column, so pass this function's result.
    * LayerNorm ``scale``/``bias`` and biases (``ndim <= 1``): ``None`` (the whole
      leaf; ``ignore="biasbn"`` gives them a zero direction).

    Args:
      params: the model's params (arrays or shapes).

    Returns:
      A pytree like ``params`` of ``0``, ``-1`` or ``None``.

    Example:
      >>> model = TransformerLM(d_model=16, num_heads=2, num_layers=1, max_len=8)
      >>> p = model.init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))["params"]
      >>> axes = filter_axes(p)
      >>> axes["embed"]["embedding"], axes["block_0"]["attn"]["query"]["kernel"]
      (0, -1)
      >>> import jaxsurf as js
      >>> d = js.normalize(js.random_direction(jax.random.key(1), p), p, filter_axis=axes)
      >>> rows = lambda t: np.linalg.norm(np.asarray(t["embed"]["embedding"]), axis=1)
      >>> bool(np.allclose(rows(d), rows(p), rtol=1e-5))   # a token row per filter
      True
    """
    def axis_of(path: tuple, leaf: Any) -> int | None:
        if len(np.shape(leaf)) <= 1:
            return None
        return 0 if _names(path)[-1] == "embedding" else -1

    return jax.tree_util.tree_map_with_path(axis_of, params)
