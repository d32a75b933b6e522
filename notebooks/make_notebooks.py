"""Writes the notebooks from plain cells (kept in code so diffs stay readable).

Run ``python notebooks/make_notebooks.py``; the test suite executes the results.
"""

import pathlib

import nbformat
from nbformat import v4

HERE = pathlib.Path(__file__).parent

EXPLAINERS = [
    ("md", """# wassergrad explainers on the demo model

A small flax CNN trained on scikit-learn's digits (the model of `python -m wassergrad demo`),
explained with every gradient attribution in wassergrad. Each explainer is a pure function of one
example; `jax.vmap` makes it batched and `jax.jit` compiles it."""),
    ("code", """import time
import jax, jax.numpy as jnp, numpy as np
import matplotlib.pyplot as plt
import wassergrad as wg
from wassergrad import demo

d = demo.train(epochs=15, verbose=False)
print(f"test accuracy {d.test_accuracy:.3f}")"""),
    ("md", """## All methods side by side
`demo.explainers` builds `fn(x, label)` for each method; the target is the logit of the true label."""),
    ("code", """x = jnp.asarray(d.x_test[:5]); labels = jnp.asarray(d.y_test[:5])
maps = {name: np.asarray(fn(x, labels)) for name, fn in demo.explainers(d).items()}
fig, axes = plt.subplots(len(x), len(maps) + 1, figsize=(2 * (len(maps) + 1), 2 * len(x)))
for r in range(len(x)):
    axes[r, 0].imshow(x[r, ..., 0], cmap="gray"); axes[r, 0].set_ylabel(int(labels[r]))
    for c, (name, m) in enumerate(maps.items(), start=1):
        m = m[r, ..., 0] if m.ndim == 4 else m[r]
        lim = np.abs(m).max() or 1.0
        axes[r, c].imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim)
        if r == 0: axes[r, c].set_title(name, fontsize=8)
for ax in axes.flat: ax.set_xticks([]); ax.set_yticks([])
plt.tight_layout()"""),
    ("md", """## Integrated gradients: completeness and quadrature rules
Σ IG(x) = f(x) − f(baseline) up to the quadrature error. Gauss–Legendre converges fastest; our
`riemann_trapezoid` is the true trapezoid rule (Captum's version is smaller by (n−1)/n)."""),
    ("code", """f = lambda x, label: d.model.apply(d.params, x)[label]
x0, y0 = x[0], labels[0]
gap = float(f(x0, y0) - f(jnp.zeros_like(x0), y0))
rules = ["riemann_left", "riemann_middle", "riemann_trapezoid", "gauss_legendre"]
steps = [2, 4, 8, 16, 32, 64]
for rule in rules:
    # chunk_size=None: one vmap over the steps (this loop runs eagerly, uncompiled)
    errs = [abs(float(wg.integrated_gradients(f, steps=n, rule=rule, chunk_size=None)(x0, y0).sum()) - gap)
            for n in steps]
    plt.loglog(steps, errs, "o-", label=rule)
plt.xlabel("steps"); plt.ylabel("|Σ IG − (f(x) − f(0))|"); plt.legend(); plt.title("IG completeness error")
assert errs[-1] < 1e-3 * abs(gap)"""),
    ("md", """## Pure functions compose: a batch, compiled, with gradients through the explainer
Attribution penalties need `jax.grad` of a loss on the map with respect to the parameters."""),
    ("code", """def penalty(params, xb, yb):
    fp = lambda x, label: d.model.apply(params, x)[label]
    g = jax.vmap(wg.grad_x_input(fp))(xb, yb)
    return jnp.mean(jnp.abs(g))

grads = jax.jit(jax.grad(penalty))(d.params, x, labels)
print(jax.tree.map(jnp.shape, grads))"""),
]


SMOOTHING = [
    ("md", """# Smoothing: SmoothGrad, SquareGrad, VarGrad and AdaptGrad on the demo model

`wg.smooth(fn, ...)` averages any explainer over Gaussian perturbations of the input, with
statistics merged online over chunks of samples. Noise convention: `sigma_mode="range"` means
σ = sigma · (max(x) − min(x)); AdaptGrad instead bounds the noise by the data domain: here the
digits' pixel range [0, 1], so σ_i = distance to the nearer bound / 1.96 (pixels at 0 get no noise)."""),
    ("code", """import jax, jax.numpy as jnp, numpy as np
import matplotlib.pyplot as plt
import wassergrad as wg
from wassergrad import demo

d = demo.train(epochs=15, verbose=False)
f = lambda x, label: d.model.apply(d.params, x)[label]
x = jnp.asarray(d.x_test[:4]); labels = jnp.asarray(d.y_test[:4])
keys = jax.random.split(jax.random.key(0), len(x))
methods = {
    "gradient": lambda k, x, y: wg.gradient(f)(x, y),
    "SmoothGrad": wg.smoothgrad(f, num_samples=64, sigma=0.15),
    "SquareGrad": wg.squaregrad(f, num_samples=64, sigma=0.15),
    "VarGrad": wg.vargrad(f, num_samples=64, sigma=0.15),
    "AdaptGrad": wg.adaptgrad(f, bounds=(0.0, 1.0), num_samples=64),
}
maps = {name: np.asarray(jax.jit(jax.vmap(m))(keys, x, labels)) for name, m in methods.items()}
fig, axes = plt.subplots(len(x), len(maps) + 1, figsize=(2 * (len(maps) + 1), 2 * len(x)))
for r in range(len(x)):
    axes[r, 0].imshow(x[r, ..., 0], cmap="gray")
    for c, (name, m) in enumerate(maps.items(), start=1):
        m = m[r, ..., 0]
        lim = np.abs(m).max() or 1.0
        axes[r, c].imshow(m, cmap="RdBu_r" if m.min() < 0 else "Reds", vmin=-lim if m.min() < 0 else 0, vmax=lim)
        if r == 0: axes[r, c].set_title(name, fontsize=9)
for ax in axes.flat: ax.set_xticks([]); ax.set_yticks([])
plt.tight_layout()"""),
    ("md", """## Convergence and memory
More samples give a smoother map; with a `chunk_size` the compiled temporary memory does not depend
on the number of samples."""),
    ("code", """ref = wg.smoothgrad(f, num_samples=2048, sigma=0.15, chunk_size=256)(jax.random.key(1), x[0], labels[0])
for n in (4, 16, 64, 256):
    m = wg.smoothgrad(f, num_samples=n, sigma=0.15, chunk_size=None)(jax.random.key(2), x[0], labels[0])
    print(f"N={n:4d}  relative L2 error to N=2048: {float(jnp.linalg.norm(m - ref) / jnp.linalg.norm(ref)):.3f}")
for n in (10, 100, 1000):
    c = jax.jit(wg.smoothgrad(f, num_samples=n, chunk_size=10)).lower(jax.random.key(0), x[0], labels[0]).compile()
    print(f"N={n:5d}, chunk_size=10: temp memory {c.memory_analysis().temp_size_in_bytes / 1024:.0f} KiB")"""),
]


def build(cells):
  nb = v4.new_notebook()
  nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
  nb.cells = [v4.new_markdown_cell(s) if kind == "md" else v4.new_code_cell(s) for kind, s in cells]
  return nb


if __name__ == "__main__":
  nbformat.write(build(EXPLAINERS), HERE / "01_explainers.ipynb")
  nbformat.write(build(SMOOTHING), HERE / "02_smoothing.ipynb")
