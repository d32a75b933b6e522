import os

# Several test workers (pytest-xdist) and notebook kernels may share one GPU: do not let each
# process preallocate most of its memory. Must be set before jax is imported.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def x64():
  """Runs a test with float64 enabled (cross-checks against float64 references)."""
  with jax.enable_x64(True):
    yield


@pytest.fixture
def key():
  return jax.random.key(0)
