"""Data loaded with PyTorch (tensors, a DataLoader's batches) is converted to
numpy batch by batch; nothing imports torch. A stand-in class whose module is
``torch`` plays the tensor, with a dtype JAX cannot read, as torch's are."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jaxsurf as js
from helpers import classification_data, dense_params, mlp_fn


class _TorchDtype:
    def __repr__(self) -> str:
        return "torch.float32"


class Tensor:
    """Just enough of torch.Tensor: shape, dtype, __array__, detach/cpu/numpy, slicing."""

    def __init__(self, array: np.ndarray, convertible: bool = True):
        self._array, self._convertible = np.asarray(array), convertible
        self.shape, self.dtype = self._array.shape, _TorchDtype()

    def __array__(self, dtype=None, copy=None):
        return self._array

    def __getitem__(self, index):
        return Tensor(self._array[index], self._convertible)

    def __len__(self):
        return len(self._array)

    def detach(self):
        return self

    def cpu(self):
        return self

    def numpy(self):
        if not self._convertible:
            raise TypeError("Got unsupported ScalarType BFloat16")
        return self._array


Tensor.__module__ = "torch"


def test_tensors_and_dataloader_batches_give_the_numpy_values():
    params, data = dense_params(jax.random.key(0)), classification_data(n=50)
    d = js.random_direction(jax.random.key(1), params)
    alphas = np.array([-0.5, 0.0, 0.5])
    want = js.evaluate_line(mlp_fn, params, d, data, alphas, batch_size=16, progress=False)
    as_tensors = {k: Tensor(v) for k, v in data.items()}
    got = js.evaluate_line(mlp_fn, params, d, as_tensors, alphas, batch_size=16, progress=False)
    loader = [{k: Tensor(v[i:i + 16]) for k, v in data.items()} for i in range(0, 50, 16)]
    streamed = js.evaluate_line(mlp_fn, params, d, loader, alphas, progress=False)
    for name in want.metrics:
        np.testing.assert_allclose(got.metrics[name], want.metrics[name], rtol=1e-6)
        np.testing.assert_allclose(streamed.metrics[name], want.metrics[name], rtol=1e-5)
    assert js.dataset_mean(mlp_fn, as_tensors)(params)["loss"] == pytest.approx(
        float(want.metrics["loss"][1]), rel=1e-5)


def test_a_tensor_numpy_cannot_hold_says_how_to_convert():
    params, data = dense_params(jax.random.key(0)), classification_data(n=20)
    bad = {"x": Tensor(data["x"], convertible=False), "y": Tensor(data["y"])}
    with pytest.raises(TypeError, match=r"tensor\.float\(\)\.numpy\(\)"):
        js.evaluate_line(mlp_fn, params, js.random_direction(jax.random.key(1), params), bad,
                         np.array([0.0, 1.0]), progress=False)
