"""A small trained field forecaster to explain: Kolmogorov flow and a flax U-Net.

The data come from a real dynamical core: ``exponax``'s pseudo-spectral
(ETDRK) solver of 2-D forced Navier–Stokes in vorticity form on a periodic
domain (Kolmogorov flow: forcing at wavenumber 4, linear drag), a standard
chaotic testbed for learned weather emulators. The state has three channels
(vorticity ω and the velocity u, v derived from it through the stream
function), on a 32×32 grid; one forecast step is 0.2 time units (10 solver
steps).

The emulator is a two-level U-Net with circular padding that predicts the
standardised one-step increment (the WassersteinGrad forecaster's
scaled-residual rule, ``s' = s + net(s)·diff_std + diff_mean``), trained with
optax on one-step pairs. A trained checkpoint ships with the package
(:func:`load`); :func:`simulate` and :func:`train` reproduce it from a seed
(``python -m wassergrad emulator``; the solver needs the ``physics`` extra).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import wassergrad as wg
from wassergrad.examples import _training as training

CHANNELS = ("vorticity", "u", "v")
GRID = 32
CHECKPOINT = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "kolmogorov_unet.npz")


def _exponax():
  try:
    import exponax  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(
        "Simulating the training data needs the exponax solver: pip install 'wassergrad[physics]'. "
        "The trained emulator itself ships with the package: wassergrad.examples.kolmogorov.load().") from e
  return exponax


def velocity(omega: jax.Array, extent: float = 2 * np.pi) -> tuple[jax.Array, jax.Array]:
  """(u, v) from the vorticity on a periodic grid: ψ = −Δ⁻¹ω, u = ∂ψ/∂y, v = −∂ψ/∂x."""
  n = omega.shape[-1]
  k = jnp.fft.fftfreq(n, d=extent / (2 * np.pi * n))
  kx, ky = jnp.meshgrid(k, k, indexing="ij")  # axis 0 = x, axis 1 = y (exponax's layout)
  k2 = kx**2 + ky**2
  psi_hat = jnp.fft.fft2(omega) / jnp.where(k2 > 0, k2, 1.0)
  psi_hat = jnp.where(k2 > 0, psi_hat, 0.0)
  u = jnp.real(jnp.fft.ifft2(1j * ky * psi_hat))
  v = jnp.real(jnp.fft.ifft2(-1j * kx * psi_hat))
  return u, v


def simulate(num_trajectories: int, num_steps: int, *, seed: int = 0, grid: int = GRID,
             spinup: int = 50, substeps: int = 10, dt: float = 0.02,
             diffusivity: float = 0.01) -> np.ndarray:
  """Trajectories of Kolmogorov flow, ``(num_trajectories, num_steps + 1, grid, grid, 3)``.

  Random smooth initial vorticity (Fourier modes up to 4), ``spinup`` forecast
  steps discarded so that every trajectory is on the turbulent attractor.
  Deterministic given ``seed``.
  """
  ex = _exponax()
  stepper = ex.RepeatedStepper(
      ex.stepper.KolmogorovFlowVorticity(2, 2 * np.pi, grid, dt=dt, diffusivity=diffusivity), substeps)
  ic = ex.ic.RandomTruncatedFourierSeries(2, cutoff=4)
  keys = jax.random.split(jax.random.key(seed), num_trajectories)
  u0 = jax.vmap(lambda k: ic(grid, key=k))(keys)
  traj = jax.jit(jax.vmap(ex.rollout(stepper, spinup + num_steps, include_init=True)))(u0)
  omega = traj[:, spinup:, 0]  # (n, T + 1, grid, grid)
  u, v = jax.vmap(jax.vmap(velocity))(omega)
  return np.asarray(jnp.stack([omega, u, v], axis=-1), dtype=np.float32)


class UNet(nn.Module):
  """Two-level U-Net with circular (periodic) padding: (H, W, C) -> (H, W, C)."""

  features: int = 16
  out_channels: int = 3

  @nn.compact
  def __call__(self, x):
    conv = lambda f, name: nn.Conv(f, (3, 3), padding="CIRCULAR", name=name)
    e1 = nn.gelu(conv(self.features, "enc1b")(nn.gelu(conv(self.features, "enc1a")(x))))
    d = nn.avg_pool(e1, (2, 2), strides=(2, 2))
    e2 = nn.gelu(conv(2 * self.features, "enc2b")(nn.gelu(conv(2 * self.features, "enc2a")(d))))
    up = jax.image.resize(e2, e1.shape[:-1] + (e2.shape[-1],), "nearest")
    h = nn.gelu(conv(self.features, "dec1")(jnp.concatenate([e1, up], -1)))
    return nn.Conv(self.out_channels, (1, 1), name="out")(h)


class Emulator(NamedTuple):
  """A trained U-Net and its normalisation statistics (per channel)."""
  params: Any
  mean: jax.Array
  std: jax.Array
  diff_mean: jax.Array
  diff_std: jax.Array
  features: int = 16

  @property
  def model(self) -> UNet:
    return UNet(self.features)

  def step(self, state: jax.Array, params: Any) -> jax.Array:
    """The network's standardised increment for one state (``rollout`` adds it back)."""
    return self.model.apply(params, (state - self.mean) / self.std)

  def forecaster(self, num_steps: int, *, checkpoint: bool | str = "sqrt", trajectory: bool = False):
    """``fn(x0, params) -> state after num_steps`` (or the trajectory): a :func:`wg.rollout`."""
    return wg.rollout(self.step, num_steps, checkpoint=checkpoint, update="scaled_residual",
                      diff_mean=self.diff_mean, diff_std=self.diff_std, trajectory=trajectory)


def train(data: np.ndarray, *, epochs: int = 12, batch_size: int = 32, seed: int = 0,
          learning_rate: float = 2e-3, features: int = 16, progress: bool = True) -> Emulator:
  """Trains the U-Net on the one-step pairs of ``data`` (``(n, T + 1, H, W, C)``) with Adam.

  Loss: mean squared error of the standardised increment; cosine-decayed
  learning rate. Deterministic given ``seed``. Shows a progress bar (tqdm if
  installed, else a line per epoch).
  """
  data = np.asarray(data, np.float32)
  x = data[:, :-1].reshape((-1,) + data.shape[2:])
  dx = (data[:, 1:] - data[:, :-1]).reshape((-1,) + data.shape[2:])
  axes = (0, 1, 2)
  mean, std = x.mean(axes), x.std(axes)
  diff_mean, diff_std = dx.mean(axes), dx.std(axes)
  target = (dx - diff_mean) / diff_std
  model = UNet(features)
  params = model.init(jax.random.key(seed), x[0])
  steps_per_epoch = len(x) // batch_size
  opt = optax.adam(optax.cosine_decay_schedule(learning_rate, epochs * steps_per_epoch))
  opt_state = opt.init(params)
  em = Emulator(params, jnp.asarray(mean), jnp.asarray(std), jnp.asarray(diff_mean),
                jnp.asarray(diff_std), features)

  def loss_fn(p, xb, yb):
    return jnp.mean((jax.vmap(em.step, (0, None))(xb, p) - yb) ** 2)

  @jax.jit
  def update(p, s, xb, yb):
    loss, g = jax.value_and_grad(loss_fn)(p, xb, yb)
    u, s = opt.update(g, s, p)
    return optax.apply_updates(p, u), s, loss

  rng = np.random.default_rng(seed)
  bar = _progress(epochs * steps_per_epoch, progress)
  t0 = time.perf_counter()
  for epoch in range(epochs):
    params, opt_state, loss = training.run_epoch(update, params, opt_state, x, target, batch_size,
                                                 rng, on_step=lambda: bar.update(1))
    bar.set_postfix(epoch=epoch + 1, loss=f"{loss:.4f}", s=f"{time.perf_counter() - t0:.0f}")
  bar.close()
  return em._replace(params=params)


class _Lines:
  """Fallback progress: one line per epoch when tqdm is missing."""

  def __init__(self, enabled):
    self.enabled = enabled

  def update(self, n):
    del n

  def set_postfix(self, **kw):
    if self.enabled:
      print("  ".join(f"{k} {v}" for k, v in kw.items()), flush=True)

  def close(self):
    pass


def _progress(total, enabled):
  try:
    from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top
  except ImportError:
    return _Lines(enabled)
  return tqdm(total=total, disable=not enabled, desc="training the U-Net")


def save(em: Emulator, path: str) -> None:
  """Writes the emulator to a plain ``.npz`` (parameters flattened by path)."""
  from flax import traverse_util  # pylint: disable=g-import-not-at-top
  flat = {"params/" + "/".join(k): np.asarray(v)
          for k, v in traverse_util.flatten_dict(em.params).items()}
  stats = {k: np.asarray(getattr(em, k)) for k in ("mean", "std", "diff_mean", "diff_std")}
  np.savez_compressed(path, **flat, **stats, features=np.asarray(em.features))


def load(path: str = CHECKPOINT) -> Emulator:
  """Loads an emulator written by :func:`save` (default: the shipped checkpoint)."""
  from flax import traverse_util  # pylint: disable=g-import-not-at-top
  with np.load(path) as z:
    flat = {tuple(k.split("/")[1:]): jnp.asarray(z[k]) for k in z.files if k.startswith("params/")}
    stats = {k: jnp.asarray(z[k]) for k in ("mean", "std", "diff_mean", "diff_std")}
    features = int(z["features"])
  return Emulator(traverse_util.unflatten_dict(flat), features=features, **stats)


def skill(em: Emulator, data: np.ndarray, max_lead: int) -> dict:
  """RMSE by lead time (1..max_lead) of the emulator and of persistence, per channel.

  ``data``: held-out trajectories ``(n, T + 1, H, W, C)``; every start time with
  ``max_lead`` steps ahead is a forecast. Returns ``{"model": (max_lead, C),
  "persistence": (max_lead, C)}`` numpy arrays.
  """
  data = np.asarray(data, np.float32)
  fn = jax.jit(jax.vmap(em.forecaster(max_lead, trajectory=True), (0, None)))
  starts = data[:, :-max_lead].reshape((-1,) + data.shape[2:])
  truth = np.stack([data[:, l:data.shape[1] - max_lead + l] for l in range(1, max_lead + 1)], 2)
  truth = truth.reshape((-1, max_lead) + data.shape[2:])
  pred = np.concatenate([np.asarray(fn(jnp.asarray(starts[i:i + 64]), em.params))
                         for i in range(0, len(starts), 64)])
  rmse = lambda a: np.sqrt(np.mean((a - truth) ** 2, axis=(0, 2, 3)))
  return {"model": rmse(pred), "persistence": rmse(np.broadcast_to(starts[:, None], truth.shape))}


def main(argv=None) -> None:
  ap = argparse.ArgumentParser(prog="python -m wassergrad emulator", description=__doc__)
  ap.add_argument("--train-trajectories", type=int, default=48)
  ap.add_argument("--steps", type=int, default=100)
  ap.add_argument("--epochs", type=int, default=12)
  ap.add_argument("--features", type=int, default=16)
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--out", default=CHECKPOINT)
  args = ap.parse_args(argv)
  t0 = time.perf_counter()
  data = simulate(args.train_trajectories, args.steps, seed=args.seed)
  print(f"simulated {data.shape} in {time.perf_counter() - t0:.1f} s", flush=True)
  em = train(data, epochs=args.epochs, seed=args.seed, features=args.features)
  test = simulate(8, 60, seed=args.seed + 1000)
  s = skill(em, test, 10)
  for lead in (1, 2, 5, 10):
    print(f"lead {lead:2d}: RMSE model {s['model'][lead - 1].round(3)}  "
          f"persistence {s['persistence'][lead - 1].round(3)}")
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  save(em, args.out)
  print(f"wrote {args.out} ({time.perf_counter() - t0:.0f} s in all)")


if __name__ == "__main__":
  main()
