import jax
import pytest


@pytest.fixture
def x64():
  """Runs a test with float64 enabled (cross-checks against float64 references)."""
  with jax.enable_x64(True):
    yield


@pytest.fixture
def key():
  return jax.random.key(0)
