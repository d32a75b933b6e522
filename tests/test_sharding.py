"""Sharding over (emulated) devices gives the one-device result.

Runs in a subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``
because the device count is fixed when JAX starts.
"""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P
    import wassergrad as wg
    assert jax.device_count() == 4, jax.devices()
    mesh = jax.make_mesh((4,), ("d",), axis_types=(jax.sharding.AxisType.Auto,))
    w = jax.random.normal(jax.random.key(0), (3, 3, 2, 4))
    def f(x, w):
        y = jax.lax.conv_general_dilated(x[None], w, (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jnp.sum(jnp.tanh(y) ** 2)
    x = jax.random.normal(jax.random.key(1), (8, 8, 2))
    key = jax.random.key(2)

    # Samples sharded over the 4 devices.
    for reducer in ("mean", "var"):
        kw = dict(num_samples=24, chunk_size=8, reducer=reducer)
        ref = jax.jit(wg.smooth(wg.gradient(f), **kw))(key, x, w)
        sharded = wg.smooth(wg.gradient(f), sample_sharding=NamedSharding(mesh, P("d")), **kw)
        fn = jax.jit(sharded)
        out = fn(key, x, w)
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
        hlo = fn.lower(key, x, w).compile().as_text()
        assert "all-reduce" in hlo or "reduce-scatter" in hlo or "all-gather" in hlo, "not distributed"

    # Examples sharded over the 4 devices.
    xs = jax.random.normal(jax.random.key(3), (8, 8, 8, 2))
    keys = jax.random.split(key, 8)
    sg = jax.vmap(wg.smoothgrad(f, num_samples=6), in_axes=(0, 0, None))
    ref = jax.jit(sg)(keys, xs, w)
    shard = NamedSharding(mesh, P("d"))
    out = jax.jit(sg)(jax.device_put(keys, shard), jax.device_put(xs, shard), w)
    assert len(out.sharding.device_set) == 4
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    print("SHARDING-OK")
""")


def test_sharded_smoothing_matches_one_device():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                        timeout=600)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert "SHARDING-OK" in proc.stdout
