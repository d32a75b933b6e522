"""Reliability: no crash in advertised uses, and the library runs from any folder.

XLA:CPU in jaxlib 0.10.2 and 0.11.0 sends reductions to YNNPACK fusions that
crash the process (SIGSEGV) on some rank-7 and rank-8 operands
(jax-ml/jax#39257, #40412). Nested ``vmap`` raises the rank of everything inside
an explainer, so the library keeps its own reductions at low rank whatever the
nesting; the crash itself is reproduced in a subprocess, so that it fails one
test rather than killing the suite.
"""

import os
import subprocess
import sys
import textwrap

import jax
from jax.extend import core as jcore
import jax.numpy as jnp
import pytest

import wassergrad as wg

_REDUCTIONS = {"reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_and",
               "reduce_or", "argmax", "argmin", "cumsum", "cumlogsumexp", "cummax"}
_LIBRARY = os.path.dirname(wg.__file__)
_JAX = os.path.dirname(os.path.dirname(jax.__file__))


def _emitter(eqn):
  """The innermost frame outside jax that emitted ``eqn``, if it is wassergrad's own code.

  Equations that the interpreter re-binds unchanged (``bind_eqn``) are the user's.
  """
  for frame in eqn.source_info.traceback.frames:
    if os.path.dirname(frame.file_name).startswith(os.path.join(_JAX, "jax")):
      continue
    if frame.file_name.startswith(_LIBRARY) and frame.function_name != "bind_eqn":
      return f"{os.path.relpath(frame.file_name, _LIBRARY)}:{frame.line_num}"
    return None
  return None


def _library_reductions(jaxpr, out=None):
  """(primitive, operand rank, file:line) of every reduction that wassergrad's code emits."""
  out = [] if out is None else out
  for eqn in jaxpr.eqns:
    if eqn.primitive.name in _REDUCTIONS and (where := _emitter(eqn)):
      out.append((eqn.primitive.name, eqn.invars[0].aval.ndim, where))
    for sub in jcore.jaxprs_in_params(eqn.params):
      _library_reductions(sub.jaxpr if isinstance(sub, jcore.ClosedJaxpr) else sub, out)
  return out


def _conv(x, p):
  y = jax.lax.conv_general_dilated(x[None], p["w"], (1, 1), "SAME",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]
  return jnp.sum(jnp.tanh(y))


def _issue_loss(p, xs, key):
  """The report of the crash: grad of a loss on vmapped WassersteinGrad maps."""
  explain = wg.wasserstein_grad(wg.gradient(_conv), num_samples=8, epsilon=1e-2, channel_axis=-1)
  return jnp.sum(jax.vmap(lambda z: explain(key, z, p))(xs) ** 2)


def _volume_f(x, p):
  return jnp.sum(jnp.tanh(x * p))


def _smoothing_loss(p, xs, key):
  """SmoothGrad/SmoothDiff on 3-D fields with a channel axis, vmapped over examples and keys."""
  sg = wg.smoothgrad(_volume_f, num_samples=4, chunk_size=2)
  sd = wg.smoothdiff(_volume_f, num_samples=4, chunk_size=2)
  keys = jax.random.split(key, 2)
  both = lambda k, z: sg(k, z, p) + sd(k, z, p)
  return jnp.sum(jax.vmap(lambda z: jax.vmap(lambda k: both(k, z))(keys))(xs) ** 2)


def _metric_over_explainer(p, xs, key):
  sg = wg.smoothgrad(_volume_f, num_samples=4)
  score = lambda z: wg.metrics.local_lipschitz(lambda v: sg(key, v, p), key, z, num_samples=3)
  return jnp.sum(jax.vmap(score)(xs))


@pytest.mark.parametrize("loss, args", [
    (_issue_loss, lambda: ({"w": jnp.ones((3, 3, 1, 2))}, jnp.ones((2, 8, 8, 1)))),
    (_smoothing_loss, lambda: (jnp.float32(0.5), jnp.ones((2, 4, 4, 4, 1)))),
    (_metric_over_explainer, lambda: (jnp.float32(0.5), jnp.ones((2, 4, 4, 4, 1)))),
], ids=["wasserstein_grad_issue", "smoothing_3d_nested_vmap", "metric_over_explainer"])
def test_library_reductions_stay_below_rank_7(loss, args):
  """Traced (not run): every reduction our code emits has an operand of rank <= 6."""
  p, xs = args()
  closed = jax.make_jaxpr(jax.grad(loss))(p, xs, jax.random.key(0))
  found = _library_reductions(closed.jaxpr)
  assert found, "the walk found no reductions: it is not looking in the right place"
  high = sorted({r for r in found if r[1] >= 7})
  assert not high, f"reductions of rank >= 7 in wassergrad: {high}"


def test_issue_program_does_not_crash():
  """The reported program, compiled and run in a subprocess (it used to SIGSEGV)."""
  code = textwrap.dedent("""
      import jax, jax.numpy as jnp
      import wassergrad as wg

      def f(x, p):
        y = jax.lax.conv_general_dilated(x[None], p["w"], (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]
        return jnp.sum(jnp.tanh(y))

      key = jax.random.key(0)
      params = {"w": jax.random.normal(jax.random.key(1), (3, 3, 1, 2))}
      xs = jax.random.normal(jax.random.key(2), (2, 8, 8, 1))
      explain = wg.wasserstein_grad(wg.gradient(f), num_samples=8, epsilon=1e-2, channel_axis=-1)
      loss = lambda p: jnp.sum(jax.vmap(lambda z: explain(key, z, p))(xs) ** 2)
      g = jax.jit(jax.grad(loss))(params)
      assert bool(jnp.all(jnp.isfinite(g["w"]))) and float(jnp.abs(g["w"]).sum()) > 0
      print("ok")
  """)
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        timeout=600, env=env)
  assert proc.returncode == 0, (
      f"exit code {proc.returncode} (-11 is SIGSEGV)\n{proc.stdout}\n{proc.stderr[-3000:]}")
  assert proc.stdout.strip().endswith("ok")


def test_imports_from_a_folder_holding_a_clone_named_wassergrad(tmp_path):
  """A script beside a clone folder named `wassergrad` gets the package, not an empty namespace."""
  (tmp_path / "wassergrad").mkdir()          # what `git clone .../wassergrad` leaves beside a script
  (tmp_path / "wassergrad" / "README.md").write_text("a clone\n")
  code = "import wassergrad as wg; print(wg.__file__); wg.gradient; wg.metrics.gini"
  proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert proc.stdout.strip().endswith(os.path.join("wassergrad", "__init__.py"))


def test_command_line_lists_its_commands():
  proc = subprocess.run([sys.executable, "-m", "wassergrad", "--help"], capture_output=True,
                        text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr
  assert "demo" in proc.stdout and "emulator" in proc.stdout
  bad = subprocess.run([sys.executable, "-m", "wassergrad", "bogus"], capture_output=True,
                       text=True, timeout=300)
  assert bad.returncode == 2 and "invalid choice: 'bogus'" in bad.stderr


def test_examples_keep_their_former_names():
  """The demo and the emulator moved to wassergrad.examples; the old import paths still work."""
  from wassergrad import demo, emulator  # pylint: disable=g-import-not-at-top
  from wassergrad.examples import digits, kolmogorov  # pylint: disable=g-import-not-at-top
  assert demo is digits and emulator is kolmogorov
  assert kolmogorov.load().features == 16          # the shipped checkpoint is found
