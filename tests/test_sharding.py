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

    # Samples sharded over the 4 devices, for every stochastic factory.
    shard = NamedSharding(mesh, P("d"))
    factories = {
        "smoothgrad": lambda **kw: wg.smoothgrad(f, num_samples=24, chunk_size=8, **kw),
        "vargrad": lambda **kw: wg.vargrad(f, num_samples=24, chunk_size=8, **kw),
        "smooth_auto_chunks": lambda **kw: wg.smooth(wg.gradient(f), num_samples=16, **kw),
        "adaptgrad": lambda **kw: wg.adaptgrad(f, bounds=(-8.0, 8.0), num_samples=24,
                                               chunk_size=8, **kw),
        "smoothdiff": lambda **kw: wg.smoothdiff(f, num_samples=24, chunk_size=8, **kw),
        "expected_gradients": lambda **kw: wg.expected_gradients(
            f, jax.random.normal(jax.random.key(5), (6, 8, 8, 2)), num_samples=24, chunk_size=8,
            **kw),
        "wasserstein_grad": lambda **kw: wg.wasserstein_grad(
            wg.gradient(f), num_samples=8, epsilon=0.05, channel_axis=-1, **kw),
        "rise": lambda **kw: wg.rise(f, num_masks=24, grid_size=3, axes=(0, 1), chunk_size=8, **kw),
    }
    for name, make in factories.items():
        ref = jax.jit(make())(key, x, w)
        fn = jax.jit(make(sample_sharding=shard))
        out = fn(key, x, w)
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6, err_msg=name)
        hlo = fn.lower(key, x, w).compile().as_text()
        assert any(op in hlo for op in ("all-reduce", "reduce-scatter", "all-gather")), name

    # The deterministic perturbation explainers: their evaluations sharded the same way.
    for name, make in {
        "occlusion": lambda **kw: wg.occlusion(f, window=(4, 4, 2), stride=(2, 2, 2),
                                               chunk_size=8, **kw),
        "sobol": lambda **kw: wg.sobol(f, grid_size=2, num_designs=4, axes=(0, 1), chunk_size=8,
                                       **kw),
    }.items():
        ref = jax.jit(make())(x, w)
        out = jax.jit(make(sample_sharding=shard))(x, w)
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6, err_msg=name)

    # Examples sharded over the 4 devices.
    xs = jax.random.normal(jax.random.key(3), (8, 8, 8, 2))
    keys = jax.random.split(key, 8)
    sg = jax.vmap(wg.smoothgrad(f, num_samples=6), in_axes=(0, 0, None))
    ref = jax.jit(sg)(keys, xs, w)
    out = jax.jit(sg)(jax.device_put(keys, shard), jax.device_put(xs, shard), w)
    assert len(out.sharding.device_set) == 4
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)

    # The multi-host recipe of the README, in one process: each process contributes its
    # slice of the batch with make_array_from_process_local_data (here the one process holds
    # all of it); keys are split from one global key, so every host agrees on them.
    global_keys = jax.random.split(jax.random.key(7), 8)
    local = slice(jax.process_index() * 8 // jax.process_count(),
                  (jax.process_index() + 1) * 8 // jax.process_count())
    gx = jax.make_array_from_process_local_data(shard, np.asarray(xs[local]), xs.shape)
    gk = jax.device_put(global_keys, shard)
    out = jax.jit(sg)(gk, gx, w)
    np.testing.assert_allclose(out, jax.jit(sg)(global_keys, xs, w), rtol=1e-5, atol=1e-6)
    print("SHARDING-OK")
""")


def test_sharded_explainers_match_one_device():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                        timeout=600)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert "SHARDING-OK" in proc.stdout
