"""The reference tool's algorithm in PyTorch, on the same networks as the JAX side.

Li et al.'s loss-landscape code evaluates a surface like this: for every grid
point, write ``theta + alpha * d1 + beta * d2`` into the model's weights, then
iterate a ``DataLoader`` over the data in evaluation mode under
``torch.no_grad()`` and sum ``loss * batch_size`` (and the number of correct
predictions). :func:`evaluate_grid` does exactly that. The networks are
PyTorch twins of ``jaxsurf.models.resnet20`` (option-A shortcuts, BatchNorm
with running statistics) and ``jaxsurf.models.DenseRegressor`` (tanh MLP); the
``load_*`` functions copy Flax params and directions into them so that both
sides compute the same losses (Flax ``[kh, kw, in, out]`` kernels become
PyTorch ``[out, in, kh, kw]`` weights, ``[in, out]`` dense kernels become
``[out, in]``).

``python -m benchmarks.torch_reference SPEC.npz --threads N`` runs :func:`serve`,
the worker that ``benchmarks/grid_throughput.py`` starts in its own process
(so that PyTorch's and XLA's thread pools never compete) and times.

PyTorch is a benchmark-only dependency (``pip install torch==2.13.0`` on CPU).

Example:
    >>> net = ResNetCIFARTorch(depth=20)
    >>> load_resnet(net, flax_params, flax_batch_stats)
    >>> flat = [flatten_resnet(p) for p in (params, d1, d2)]
    >>> losses = evaluate_grid(net, flat, coords, loader, "cross_entropy")
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ResNetCIFARTorch", "MLPTorch", "load_resnet", "load_mlp", "resnet_tensors",
           "mlp_tensors", "set_weights", "evaluate_grid", "make_loader", "build_from_spec",
           "serve"]


# --------------------------------------------------------------------------- networks
class BasicBlockTorch(nn.Module):
    """Two 3x3 conv + BatchNorm layers with a parameter-free option-A shortcut."""

    def __init__(self, in_features: int, features: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_features, features, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(features, eps=1e-5)
        self.conv2 = nn.Conv2d(features, features, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(features, eps=1e-5)
        self.stride, self.extra = stride, features - in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        short = x
        if self.stride != 1 or self.extra:
            short = x[:, :, ::self.stride, ::self.stride]
            short = F.pad(short, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return F.relu(y + short)


class ResNetCIFARTorch(nn.Module):
    """ResNet of depth 6n+2 (He et al. 2016, option A), as ``jaxsurf.models.ResNetCIFAR``.

    Input NCHW; output ``(N, num_classes)`` logits.
    """

    def __init__(self, depth: int = 20, num_classes: int = 10, in_channels: int = 1,
                 width: int = 16) -> None:
        super().__init__()
        n = (depth - 2) // 6
        self.conv_init = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn_init = nn.BatchNorm2d(width, eps=1e-5)
        blocks, features = [], width
        for stage in range(3):
            for b in range(n):
                out = width * 2 ** stage
                blocks.append(BasicBlockTorch(features, out, 2 if stage > 0 and b == 0 else 1))
                features = out
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(features, num_classes)
        self.blocks_per_stage = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn_init(self.conv_init(x)))
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean(dim=(2, 3)))


class MLPTorch(nn.Module):
    """``hidden`` tanh layers of ``width`` units and a linear output, as
    ``jaxsurf.models.DenseRegressor`` in evaluation mode (no dropout)."""

    def __init__(self, inputs: int, width: int, hidden: int, outputs: int) -> None:
        super().__init__()
        sizes = [inputs] + [width] * hidden
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.output = nn.Linear(sizes[-1], outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = torch.tanh(layer(x))
        return self.output(x)


# --------------------------------------------------------------------------- weights
def _conv(kernel: Any) -> torch.Tensor:
    """Flax ``[kh, kw, in, out]`` → PyTorch ``[out, in, kh, kw]``."""
    return torch.from_numpy(np.ascontiguousarray(np.transpose(np.asarray(kernel), (3, 2, 0, 1))))


def _dense(kernel: Any) -> torch.Tensor:
    """Flax ``[in, out]`` → PyTorch ``[out, in]``."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(kernel).T))


def _vec(x: Any) -> torch.Tensor:
    return torch.from_numpy(np.array(x, np.float32))


def _resnet_blocks(net: ResNetCIFARTorch) -> Iterable[tuple[str, BasicBlockTorch]]:
    n = net.blocks_per_stage
    for i, block in enumerate(net.blocks):
        yield f"stage{i // n + 1}_block{i % n}", block


def resnet_tensors(net: ResNetCIFARTorch, params: Mapping[str, Any]) -> list[torch.Tensor]:
    """A Flax ResNet params pytree (or a direction) as tensors in the order of
    ``net.parameters()``."""
    out = [_conv(params["conv_init"]["kernel"]), _vec(params["bn_init"]["scale"]),
           _vec(params["bn_init"]["bias"])]
    for name, _ in _resnet_blocks(net):
        p = params[name]
        out += [_conv(p["conv1"]["kernel"]), _vec(p["bn1"]["scale"]), _vec(p["bn1"]["bias"]),
                _conv(p["conv2"]["kernel"]), _vec(p["bn2"]["scale"]), _vec(p["bn2"]["bias"])]
    out += [_dense(params["head"]["kernel"]), _vec(params["head"]["bias"])]
    return out


def load_resnet(net: ResNetCIFARTorch, params: Mapping[str, Any],
                batch_stats: Mapping[str, Any]) -> ResNetCIFARTorch:
    """Copies Flax ``params`` and BatchNorm ``batch_stats`` into ``net`` (eval mode)."""
    set_weights(net, resnet_tensors(net, params))
    pairs = [(net.bn_init, batch_stats["bn_init"])]
    for name, block in _resnet_blocks(net):
        pairs += [(block.bn1, batch_stats[name]["bn1"]), (block.bn2, batch_stats[name]["bn2"])]
    for bn, stats in pairs:
        bn.running_mean.copy_(_vec(stats["mean"]))
        bn.running_var.copy_(_vec(stats["var"]))
    return net.eval()


def mlp_tensors(net: MLPTorch, params: Mapping[str, Any]) -> list[torch.Tensor]:
    """A Flax ``DenseRegressor`` params pytree as tensors in ``net.parameters()`` order."""
    out = []
    for i in range(len(net.hidden)):
        out += [_dense(params[f"hidden_{i}"]["kernel"]), _vec(params[f"hidden_{i}"]["bias"])]
    return out + [_dense(params["output"]["kernel"]), _vec(params["output"]["bias"])]


def load_mlp(net: MLPTorch, params: Mapping[str, Any]) -> MLPTorch:
    """Copies Flax ``DenseRegressor`` params into ``net`` (eval mode)."""
    set_weights(net, mlp_tensors(net, params))
    return net.eval()


@torch.no_grad()
def set_weights(net: nn.Module, tensors: Sequence[torch.Tensor]) -> None:
    """Writes ``tensors`` into ``net.parameters()`` in place (shapes must agree)."""
    params = list(net.parameters())
    if len(params) != len(tensors):
        raise ValueError(f"{len(tensors)} tensors for {len(params)} parameters")
    for p, t in zip(params, tensors):
        if p.shape != t.shape:
            raise ValueError(f"shape {tuple(t.shape)} for a parameter of {tuple(p.shape)}")
        p.copy_(t)


# --------------------------------------------------------------------------- the loop
def make_loader(x: np.ndarray, y: np.ndarray, batch_size: int, *, channels_first: bool
                ) -> torch.utils.data.DataLoader:
    """A plain, unshuffled ``DataLoader`` (NHWC images become NCHW)."""
    x = np.transpose(x, (0, 3, 1, 2)) if channels_first else x
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(np.ascontiguousarray(x)),
                                             torch.from_numpy(np.asarray(y)))
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)


def _device_of(net: nn.Module) -> torch.device:
    return next(net.parameters()).device


@torch.no_grad()
def _eval_loss(net: nn.Module, loader: torch.utils.data.DataLoader, loss: str) -> float:
    """The reference tool's ``eval_loss``: the dataset mean of the batch losses (each
    batch moved to the model's device, as the tool does with ``.cuda()``)."""
    total, count = 0.0, 0
    device = _device_of(net)
    for inputs, targets in loader:
        inputs, targets = inputs.to(device), targets.to(device)
        outputs = net(inputs)
        if loss == "cross_entropy":
            value = F.cross_entropy(outputs, targets.long())
            _ = (outputs.argmax(1) == targets).sum().item()  # the tool also counts hits
        else:
            value = F.mse_loss(outputs, targets)
        total += value.item() * len(targets)
        count += len(targets)
    return total / count


@torch.no_grad()
def evaluate_grid(net: nn.Module, origin: Sequence[torch.Tensor],
                  directions: Sequence[Sequence[torch.Tensor]], coords: np.ndarray,
                  loader: torch.utils.data.DataLoader, loss: str = "cross_entropy"
                  ) -> np.ndarray:
    """For each point: write the weights into ``net``, run the loader, return the mean loss.

    Args:
        net: the network (evaluation mode).
        origin: its weights at coordinates 0, as tensors in ``net.parameters()``
            order.
        directions: one such tensor list per direction.
        coords: ``(num_points, len(directions))`` coefficients.
        loader: the data.
        loss: ``"cross_entropy"`` or ``"mse"``.

    Returns:
        ``(num_points,)`` dataset-mean losses (float64).

    Example:
        >>> evaluate_grid(net, theta, [d1, d2], np.array([[0.0, 0.0]]), loader)
    """
    net.eval()
    values = []
    for point in np.asarray(coords, np.float64):
        weights = [o + sum(float(c) * d[i] for c, d in zip(point, directions))
                   for i, o in enumerate(origin)]
        set_weights(net, weights)
        values.append(_eval_loss(net, loader, loss))
    return np.array(values)


# --------------------------------------------------------------------------- the worker
def _nested(flat: Mapping[str, np.ndarray], prefix: str) -> dict[str, Any]:
    """``{"prefix:a/b": x}`` entries as ``{"a": {"b": x}}``."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if not key.startswith(prefix + ":"):
            continue
        node = out
        *parents, leaf = key[len(prefix) + 1:].split("/")
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = value
    return out


def build_from_spec(spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
                    ) -> tuple[nn.Module, list[torch.Tensor], list[list[torch.Tensor]],
                               torch.utils.data.DataLoader]:
    """Builds the PyTorch side of a benchmark case.

    Args:
        spec: the case's description (``model``, sizes, ``batch_size``,
            ``num_directions``, ``device``), as written by
            ``benchmarks.grid_throughput.write_torch_spec``.
        arrays: ``"origin:<path>"``, ``"stats:<path>"``, ``"d<k>:<path>"``
            Flax leaves and ``"data:x"`` / ``"data:y"``.

    Returns:
        ``(net, origin, directions, loader)``: the network with the origin
        loaded (eval mode), the origin and every direction as tensor lists in
        ``net.parameters()`` order, on the spec's device, and the loader.

    Example:
        >>> net, origin, dirs, loader = build_from_spec(spec, arrays)
        >>> evaluate_grid(net, origin, dirs, np.zeros((1, 2)), loader, spec["loss"])
    """
    device = torch.device(spec.get("device", "cpu"))
    origin, stats = _nested(arrays, "origin"), _nested(arrays, "stats")
    directions = [_nested(arrays, f"d{k}") for k in range(1, spec["num_directions"] + 1)]
    if spec["model"] == "resnet":
        net = load_resnet(ResNetCIFARTorch(spec["depth"], spec["num_classes"],
                                           spec["in_channels"]), origin, stats)
        tensors = resnet_tensors
    else:
        net = load_mlp(MLPTorch(spec["inputs"], spec["width"], spec["hidden"],
                                spec["outputs"]), origin)
        tensors = mlp_tensors
    loader = make_loader(arrays["data:x"], arrays["data:y"], spec["batch_size"],
                         channels_first=spec["model"] == "resnet")
    net = net.to(device)
    on_device = lambda tree: [t.to(device) for t in tensors(net, tree)]
    return net, on_device(origin), [on_device(d) for d in directions], loader


def serve(spec_path: str, threads: int) -> None:
    """The worker loop: answers ``{"coords": [[a, b], ...]}`` lines on stdin with
    ``RESULT {"seconds", "values"}`` lines on stdout, until ``{"quit": true}``
    or the end of input; every request is timed alone, after one warm-up point.

    Args:
        spec_path: an ``.npz`` with a JSON ``spec`` entry and the arrays of
            :func:`build_from_spec`.
        threads: ``torch.set_num_threads``.

    Example:
        $ echo '{"coords": [[0, 0]]}' | python -m benchmarks.torch_reference case.npz
    """
    import json
    import sys
    import time

    torch.set_num_threads(threads)
    with np.load(spec_path) as contents:
        arrays = {k: contents[k] for k in contents.files}
    spec = json.loads(str(arrays.pop("spec")))
    net, origin, directions, loader = build_from_spec(spec, arrays)
    del arrays
    evaluate_grid(net, origin, directions, np.zeros((1, len(directions))), loader,
                  spec["loss"])  # warm-up
    print("RESULT " + json.dumps({"ready": True, "threads": torch.get_num_threads(),
                                  "torch": torch.__version__}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("quit"):
            break
        start = time.perf_counter()
        values = evaluate_grid(net, origin, directions, np.array(request["coords"]), loader,
                               spec["loss"])
        seconds = time.perf_counter() - start
        print("RESULT " + json.dumps({"seconds": seconds, "values": values.tolist()}),
              flush=True)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="PyTorch reference-loop worker")
    parser.add_argument("spec")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    serve(args.spec, args.threads)
