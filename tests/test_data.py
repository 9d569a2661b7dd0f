"""Loaders: Fashion-MNIST IDX files, errors, augmentation, tfds path, stand-ins."""

import gzip
import os
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsurf import data
from jaxsurf.data import fashion_mnist as fm

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"


def write_idx(path, array, *, magic_type=0x08):
    header = bytes([0, 0, magic_type, array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_fake_fmnist(directory, n_train=12, n_test=4, gz=True):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte{suffix}"),
                  rng.integers(0, 256, (n, 28, 28)))
        write_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte{suffix}"),
                  rng.integers(0, 10, n))


# ------------------------------------------------------------------ Fashion-MNIST


@pytest.mark.skipif(not os.path.isdir(FMNIST_DIR),
                    reason=f"{FMNIST_DIR} absent (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_real_files():
    ds = data.load_fashion_mnist(validation=5000, seed=0)
    assert ds["train"]["x"].shape == (55_000, 28, 28, 1)
    assert ds["val"]["x"].shape == (5_000, 28, 28, 1)
    assert ds["test"]["x"].shape == (10_000, 28, 28, 1)
    for part in ("train", "val", "test"):
        assert ds[part]["x"].dtype == np.uint8 and ds[part]["y"].dtype == np.int32
        assert len(ds[part]["x"]) == len(ds[part]["y"])
    assert ds["num_classes"] == 10 and ds["synthetic"] is False
    counts = np.bincount(np.concatenate([ds["train"]["y"], ds["val"]["y"]]), minlength=10)
    assert counts.tolist() == [6000] * 10  # the 60k training set, balanced
    mean, std = data.channel_stats(ds["train"]["x"])
    assert 70 < mean[0] < 76 and 88 < std[0] < 92  # 0.286 * 255, 0.353 * 255


def test_fashion_mnist_from_a_given_dir_raw_and_gz(tmp_path):
    for gz in (True, False):
        d = tmp_path / f"gz{gz}"
        d.mkdir()
        write_fake_fmnist(str(d), gz=gz)
        ds = data.load_fashion_mnist(d, validation=3, seed=1)
        assert ds["train"]["x"].shape == (9, 28, 28, 1) and ds["val"]["y"].shape == (3,)
        assert ds["test"]["x"].dtype == np.uint8 and ds["test"]["y"].dtype == np.int32
    again = data.load_fashion_mnist(d, validation=3, seed=1)
    np.testing.assert_array_equal(again["val"]["x"], ds["val"]["x"])  # fixed split


def test_missing_dataset_message_lists_places_and_remedies(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as err:
        data.load_fashion_mnist(missing)
    msg = str(err.value)
    assert str(missing) in msg and "apt-get install dataset-fashion-mnist" in msg
    assert "data_dir" in msg
    # default search: the Debian folder, then tensorflow-datasets
    monkeypatch.setattr(fm, "DEFAULT_DIRS", (str(missing),))
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import fails
    with pytest.raises(FileNotFoundError) as err:
        data.load_fashion_mnist()
    assert str(missing) in str(err.value) and "tensorflow-datasets" in str(err.value)
    partial = tmp_path / "partial"
    partial.mkdir()
    write_fake_fmnist(str(partial))
    os.remove(partial / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        data.load_fashion_mnist(partial)


@pytest.mark.parametrize("damage, message", [
    ("magic", "magic number"),
    ("truncate", "truncated"),
    ("gzip", "corrupt"),
    ("labels", "labels for"),
])
def test_corrupt_idx_files_are_reported(tmp_path, damage, message):
    write_fake_fmnist(str(tmp_path))
    images = str(tmp_path / "train-images-idx3-ubyte.gz")
    if damage == "magic":
        with gzip.open(images, "rb") as f:
            raw = f.read()
        with gzip.open(images, "wb") as f:
            f.write(b"\x12\x34" + raw[2:])
    elif damage == "truncate":
        with gzip.open(images, "rb") as f:
            raw = f.read()
        with gzip.open(images, "wb") as f:
            f.write(raw[:-100])
    elif damage == "gzip":
        with open(images, "rb") as f:
            raw = f.read()
        with open(images, "wb") as f:
            f.write(raw[: len(raw) // 2])
    else:
        write_idx(str(tmp_path / "train-labels-idx1-ubyte.gz"), np.zeros(5))
    with pytest.raises(data.IDXFormatError, match=message):
        data.load_fashion_mnist(tmp_path)


def test_standardize_uses_given_or_own_statistics():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (50, 4, 4, 3)).astype(np.uint8)
    test = rng.integers(0, 256, (20, 4, 4, 3)).astype(np.uint8)
    mean, std = data.channel_stats(train)
    np.testing.assert_allclose(mean, train.reshape(-1, 3).mean(0), rtol=1e-5)
    np.testing.assert_allclose(std, train.reshape(-1, 3).std(0), rtol=1e-5)
    z = data.standardize(train, mean, std)
    assert z.dtype == np.float32 and z.shape == train.shape
    np.testing.assert_allclose(z.reshape(-1, 3).mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z.reshape(-1, 3).std(0), 1, atol=1e-4)
    np.testing.assert_allclose(data.standardize(test, mean, std),
                               (test.astype(np.float32) - mean) / std, rtol=1e-5)
    np.testing.assert_allclose(data.standardize(train), z, rtol=1e-6)
    assert fm.standardize is data.standardize


# -------------------------------------------------------------------- augmentation


def test_random_crop_is_a_shift_of_the_padded_image():
    x = jnp.arange(2 * 6 * 6 * 1, dtype=jnp.float32).reshape(2, 6, 6, 1)
    out = data.random_crop(jax.random.key(0), x, padding=2)
    assert out.shape == x.shape and out.dtype == x.dtype
    padded = np.pad(np.asarray(x), ((0, 0), (2, 2), (2, 2), (0, 0)))
    for i in range(2):
        windows = [padded[i, r:r + 6, c:c + 6] for r in range(5) for c in range(5)]
        assert any(np.array_equal(out[i], w) for w in windows)
    np.testing.assert_array_equal(data.random_crop(jax.random.key(0), x, padding=0), x)
    const = jnp.full((3, 5, 5, 2), 7, jnp.uint8)
    np.testing.assert_array_equal(data.random_crop(jax.random.key(1), const, 2, "reflect"), const)


def test_random_flip_and_augment():
    x = jax.random.normal(jax.random.key(0), (16, 4, 4, 3))
    out = np.asarray(data.random_flip(jax.random.key(1), x))
    flipped = [np.array_equal(o, np.asarray(xi)[:, ::-1]) for o, xi in zip(out, x)]
    kept = [np.array_equal(o, np.asarray(xi)) for o, xi in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)
    step = jax.jit(lambda k, b: data.augment(k, b, padding=1, mode="reflect", flip=False))
    assert step(jax.random.key(2), x).shape == x.shape
    no_op = data.augment(jax.random.key(3), x, padding=0, flip=False)
    np.testing.assert_array_equal(no_op, x)


# ------------------------------------------------------------- tfds and stand-ins


def test_fake_image_datasets_have_real_shapes():
    ds = data.fake_image_dataset("cifar10", n=12, seed=0)
    assert ds["train"]["x"].shape == (12, 32, 32, 3) and ds["train"]["x"].dtype == np.uint8
    assert ds["val"]["x"].shape == (3, 32, 32, 3) and ds["test"]["y"].dtype == np.int32
    assert ds["num_classes"] == 10 and ds["synthetic"] is True and "SYNTHETIC" in ds["description"]
    assert ds["train"]["y"].max() < 10
    again = data.fake_image_dataset("cifar10", n=12, seed=0)
    np.testing.assert_array_equal(again["train"]["x"], ds["train"]["x"])
    imagenet = data.fake_image_dataset("imagenet2012", n=2, n_val=1, n_test=1)
    assert imagenet["train"]["x"].shape == (2, 224, 224, 3) and imagenet["num_classes"] == 1000
    with pytest.raises(ValueError, match="unknown"):
        data.fake_image_dataset("svhn")


def test_load_tfds_without_tfds_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(ImportError, match=r"pip install 'jaxsurf\[tfds\]'"):
        data.load_tfds("cifar10")


def test_load_tfds_through_a_stand_in_module(monkeypatch):
    """The tfds code path, with a fake module returning generated arrays."""
    rng = np.random.default_rng(0)
    calls = []

    def load(name, split, data_dir, download, batch_size):
        calls.append((name, split, batch_size))
        if name == "imagenet2012":  # variable-size images, one example at a time
            return [{"image": rng.integers(0, 256, (40 + i, 50, 3), dtype=np.uint8),
                     "label": np.int64(i)} for i in range(3)]
        n = 20 if split == "train" else 6
        return {"image": rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                "label": rng.integers(0, 10, n)}

    fake = types.SimpleNamespace(load=load, as_numpy=lambda ds: ds)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    ds = data.load_tfds("cifar10", data_dir="/somewhere", validation=5, seed=0)
    assert ds["train"]["x"].shape == (15, 32, 32, 3) and ds["val"]["y"].shape == (5,)
    assert ds["test"]["y"].dtype == np.int32 and ds["synthetic"] is False
    assert ds["num_classes"] == 10
    net = data.load_tfds("imagenet2012", split={"test": "validation[:3]"})
    assert net["test"]["x"].shape == (3, 224, 224, 3) and net["test"]["y"].tolist() == [0, 1, 2]
    assert calls[-1] == ("imagenet2012", "validation[:3]", None)


# ----------------------------------------------------------------- gene expression


def test_synthetic_gene_expression_shapes_and_flag():
    ds = data.load_gene_expression(n_train=40, n_val=10, n_test=10, seed=0)
    assert ds["train"]["x"].shape == (40, 942) and ds["train"]["y"].shape == (40, 4760)
    assert ds["test"]["x"].shape == (10, 942) and ds["val"]["y"].dtype == np.float32
    assert ds["synthetic"] is True and "SYNTHETIC" in ds["description"]
    np.testing.assert_allclose(ds["train"]["y"].mean(0), 0, atol=1e-4)   # per-gene
    np.testing.assert_allclose(ds["train"]["y"].std(0), 1, atol=1e-3)    # standardised
    # the test split's examples do not depend on the training-set size (only
    # the standardisation does), and the seed fixes everything
    raw = data.synthetic_gene_expression(40, 10, 10, seed=0)
    np.testing.assert_array_equal(raw["test"]["y"], ds["test"]["y"])
    other = data.synthetic_gene_expression(40, 10, 10, seed=1)
    assert not np.allclose(other["test"]["y"], ds["test"]["y"])


def _ridge_mae(ds, lams=(1.0, 10.0, 100.0, 1000.0)):
    """Closed-form ridge regression, penalty chosen on validation; test MAE."""
    x, y = ds["train"]["x"].astype(np.float64), ds["train"]["y"]
    best = None
    for lam in lams:
        w = np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)
        val = np.abs(ds["val"]["x"] @ w - ds["val"]["y"]).mean()
        if best is None or val < best[0]:
            best = (val, np.abs(ds["test"]["x"] @ w - ds["test"]["y"]).mean())
    return best[1]


def _mlp_mae(ds, hidden=64, epochs=30, batch=250, lr=3e-3):
    """A one-hidden-layer tanh MLP trained with Adam (MSE); test MAE."""
    import optax

    x, y = jnp.asarray(ds["train"]["x"]), jnp.asarray(ds["train"]["y"])
    k1, k2 = jax.random.split(jax.random.key(0))
    params = {"w1": jax.random.normal(k1, (x.shape[1], hidden)) / np.sqrt(x.shape[1]),
              "b1": jnp.zeros(hidden),
              "w2": jax.random.normal(k2, (hidden, y.shape[1])) / np.sqrt(hidden),
              "b2": jnp.zeros(y.shape[1])}

    def predict(p, inputs):
        return jnp.tanh(inputs @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]

    opt = optax.adam(lr)
    steps = x.shape[0] // batch

    @jax.jit
    def train(p, perms):
        def step(carry, idx):
            p, state = carry
            grads = jax.grad(lambda q: jnp.mean((predict(q, x[idx]) - y[idx]) ** 2))(p)
            updates, state = opt.update(grads, state)
            return (optax.apply_updates(p, updates), state), None
        (p, _), _ = jax.lax.scan(step, (p, opt.init(p)), perms)
        return p

    rng = np.random.default_rng(0)
    perms = np.stack([rng.permutation(x.shape[0])[: steps * batch].reshape(steps, batch)
                      for _ in range(epochs)]).reshape(-1, batch)
    params = train(params, jnp.asarray(perms))
    return float(jnp.abs(predict(params, ds["test"]["x"]) - ds["test"]["y"]).mean())


def test_synthetic_gene_data_is_clearly_nonlinear():
    """A linear model (best ridge) is clearly worse than a small MLP. Smaller
    input/output counts than D-GEX keep this test cheap; the latent model is
    the same."""
    ds = data.synthetic_gene_expression(3000, 500, 500, n_inputs=200, n_outputs=200, seed=0)
    linear, mlp = _ridge_mae(ds), _mlp_mae(ds)
    assert mlp < 0.85 * linear, (linear, mlp)


def test_dgex_files_are_found_tolerantly(tmp_path):
    rng = np.random.default_rng(0)
    sizes = {"tr": 6, "va": 3, "te": 2}
    for part, n in sizes.items():
        np.save(tmp_path / f"bgedv2_X_{part}_float64.npy", rng.normal(size=(n, 943)))
        np.save(tmp_path / f"bgedv2_Y_{part}_0-4760_float64.npy", rng.normal(size=(n, 4760)))
        np.save(tmp_path / f"bgedv2_Y_{part}_4760-9520_float64.npy", np.ones((n, 4760)))
    np.save(tmp_path / "1000G_X_float64.npy", np.zeros((2, 943)))  # other set: ignored
    ds = data.load_gene_expression(tmp_path)
    assert ds["synthetic"] is False and ds["train"]["x"].shape == (6, 943)
    assert ds["train"]["x"].dtype == np.float32 and ds["test"]["y"].shape == (2, 4760)
    second = data.load_gene_expression(tmp_path, targets="4760-9520", n_train=4)
    assert second["train"]["y"].shape == (4, 4760) and np.all(second["train"]["y"] == 1)
    both = data.load_gene_expression(tmp_path, targets="all")
    assert both["val"]["y"].shape == (3, 9520)
    os.remove(tmp_path / "bgedv2_X_te_float64.npy")
    with pytest.raises(FileNotFoundError) as err:
        data.load_gene_expression(tmp_path)
    assert "X_test" in str(err.value) and "bgedv2_X_tr_float64.npy" in str(err.value)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load_gene_expression(tmp_path / "nope")
