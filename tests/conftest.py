"""Test set-up: four simulated CPU devices (set before JAX starts; the
repository-root conftest.py sets them too) and shared fixtures. Plain helper
functions live in helpers.py."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402
from helpers import classification_data, dense_params, mlp_fn  # noqa: E402


@pytest.fixture
def mlp():
    params = dense_params(jax.random.key(0))
    return mlp_fn, params, classification_data()
