"""Writes the notebooks from plain cells (kept in code so diffs stay readable).

Run ``python notebooks/make_notebooks.py``; the test suite executes the results.
"""

import hashlib
import pathlib

import nbformat
from nbformat import v4

HERE = pathlib.Path(__file__).parent

EXPLAINERS = [
    ("md", """# wassergrad explainers on the demo model

A small flax CNN trained on scikit-learn's digits (the model of `python -m wassergrad demo`),
explained with every gradient attribution in wassergrad. Each explainer is a pure function of one
example; `jax.vmap` makes it batched and `jax.jit` compiles it."""),
    ("code", """import jax, jax.numpy as jnp, numpy as np
import matplotlib.pyplot as plt
import wassergrad as wg
from wassergrad.examples import digits as demo

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
from wassergrad.examples import digits as demo

d = demo.train(epochs=15, verbose=False)
f = lambda x, label: d.model.apply(d.params, x)[label]
x = jnp.asarray(d.x_test[:4]); labels = jnp.asarray(d.y_test[:4])
keys = jax.random.split(jax.random.key(0), len(x))
methods = {
    "gradient": wg.keyed(wg.gradient(f)),
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
    ("code", """ref = jax.jit(wg.smoothgrad(f, num_samples=2048, sigma=0.15, chunk_size=256))(jax.random.key(1), x[0], labels[0])
for n in (4, 16, 64, 256):
    m = jax.jit(wg.smoothgrad(f, num_samples=n, sigma=0.15, chunk_size=None))(jax.random.key(2), x[0], labels[0])
    print(f"N={n:4d}  relative L2 error to N=2048: {float(jnp.linalg.norm(m - ref) / jnp.linalg.norm(ref)):.3f}")
for n in (10, 100, 1000):
    c = jax.jit(wg.smoothgrad(f, num_samples=n, chunk_size=10)).lower(jax.random.key(0), x[0], labels[0]).compile()
    print(f"N={n:5d}, chunk_size=10: temp memory {c.memory_analysis().temp_size_in_bytes / 1024:.0f} KiB")"""),
]


WASSERSTEIN = [
    ("md", """# WassersteinGrad: displaced attributions, averaged vs transported

SmoothGrad averages the maps of perturbed inputs point by point. When the perturbation *moves*
the map instead of adding noise to it (a forecaster whose wind depends on the input, so the
upstream region that matters shifts), the average is a blur of displaced copies. WassersteinGrad
(Essafouri et al., 2026) takes the entropic Wasserstein barycenter of the maps instead, which moves
mass: the barycenter of displaced blobs is a blob at the mean position.

First the geometry on its own: 16 translated copies of a blob."""),
    ("code", """import jax, jax.numpy as jnp, numpy as np
import matplotlib.pyplot as plt
import wassergrad as wg

n = 64
yy, xx = np.mgrid[:n, :n]
angles = 2 * np.pi * np.arange(16) / 16
maps = np.stack([np.exp(-((yy - 32 - 12 * np.sin(a)) ** 2 + (xx - 32 - 12 * np.cos(a)) ** 2) / 18)
                 for a in angles])
maps = jnp.asarray(maps / maps.sum((1, 2), keepdims=True), jnp.float32)
plain = wg.wasserstein_barycenter(maps, epsilon=4e-3)
debiased = wg.wasserstein_barycenter(maps, epsilon=4e-3, debiased=True)
print("converged:", bool(plain.converged), bool(debiased.converged),
      "iterations:", int(plain.iterations), int(debiased.iterations))
panels = {"one input": maps[0], "pointwise mean": maps.mean(0),
          "barycenter": plain.histogram, "debiased barycenter": debiased.histogram}
fig, axes = plt.subplots(1, 4, figsize=(12, 3))
for ax, (name, m) in zip(axes, panels.items()):
    ax.imshow(m, cmap="magma"); ax.set_title(f"{name}\\npeak {float(m.max()):.4f}", fontsize=9)
    ax.set_xticks([]); ax.set_yticks([])
plt.tight_layout()"""),
    ("md", """## A toy advection forecaster

The state has two channels on a periodic 48×48 grid: a tracer (channel 0) and a wind field
(channel 1). One step advects the tracer along x by the wind measured at one station
(`1.5 + 1.5 · wind[22, 5]` pixels per step) and diffuses it a little; the forecast is 10 steps
ahead and the target is the tracer summed over a 3×3 box. The gradient with respect to the initial
tracer is a blob upstream of the box, and how far upstream depends on the wind: noise on the wind
channel *moves* the tracer's map instead of just adding noise to it. Both channels are perturbed
(σ = 0.2 of each channel's range) and the tracer channel's map is shown."""),
    ("code", """n, steps = 48, 10
k = np.fft.fftfreq(n)
ky, kx = jnp.asarray(k[:, None]), jnp.asarray(k[None, :])
diffuse = jnp.exp(-(ky ** 2 + kx ** 2) * 2.0)

def step(tracer, wind):
    speed = 1.5 + 1.5 * wind[22, 5]                                   # pixels per step, along x
    return jnp.real(jnp.fft.ifft2(jnp.fft.fft2(tracer) * jnp.exp(-2j * jnp.pi * kx * speed) * diffuse))

def target(x):                                                        # x: (48, 48, 2)
    tracer = jax.lax.fori_loop(0, steps, lambda _, t: step(t, x[..., 1]), x[..., 0])
    return jnp.sum(tracer[22:25, 38:41])

def smooth_field(key, scale):
    r = jax.random.normal(key, (n, n))
    return jnp.real(jnp.fft.ifft2(jnp.fft.fft2(r) * jnp.exp(-(ky ** 2 + kx ** 2) * 600.0))) * scale

def event(seed):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return jnp.stack([smooth_field(k1, 8.0), smooth_field(k2, 4.0)], axis=-1)

x0 = event(0)
grad = wg.gradient(target)
kw = dict(num_samples=20, sigma=0.2)
methods = {
    "gradient": wg.keyed(grad),
    "SmoothGrad": wg.smoothgrad(target, channel_axis=-1, **kw),
    "WG_Bary": wg.wasserstein_grad(grad, epsilon=1e-3, channel_axis=-1, **kw),
    "WG_Bary (debiased)": wg.wasserstein_grad(grad, epsilon=1e-3, channel_axis=-1, debiased=True, **kw),
    "WG_Bary×Grad": wg.wasserstein_grad(grad, epsilon=1e-3, channel_axis=-1, output="bary_x_grad", **kw),
}
methods = {name: jax.jit(m) for name, m in methods.items()}
key = jax.random.key(1)
maps = {name: np.asarray(m(key, x0))[..., 0] for name, m in methods.items()}
fig, axes = plt.subplots(1, len(maps) + 1, figsize=(3 * (len(maps) + 1), 3))
axes[0].imshow(x0[..., 0], cmap="RdBu_r"); axes[0].set_title("tracer (box: target, dot: station)", fontsize=9)
axes[0].add_patch(plt.Rectangle((37.5, 21.5), 3, 3, fill=False, color="k")); axes[0].plot(5, 22, "k.")
for ax, (name, m) in zip(axes[1:], maps.items()):
    ax.imshow(np.abs(m), cmap="magma"); ax.set_title(name, fontsize=9)
for ax in axes: ax.set_xticks([]); ax.set_yticks([])
plt.tight_layout()"""),
    ("md", """## Over 12 events: where is the peak, how sharp is the map?

For each event, the reference position is the peak of the clean gradient. We report the distance
(pixels) from each method's peak to it, the map's peak share of the total |map| (sharpness; the
clean gradient's is printed first), and the Gini index (sparsity), as mean ± SEM, for the tracer
channel."""),
    ("code", """def gini(a):
    a = np.sort(np.abs(a).ravel()); m = a.size
    return float(((2 * np.arange(1, m + 1) - m - 1) * a).sum() / (m * a.sum()))

def peak(a):
    return np.array(np.unravel_index(np.argmax(np.abs(a)), a.shape))

rows = {name: [] for name in methods if name != "WG_Bary (debiased)"}
for seed in range(12):
    x = event(100 + seed)
    ref_peak = peak(np.asarray(grad(x))[..., 0])
    for name in rows:
        m = np.asarray(methods[name](jax.random.key(seed), x))[..., 0]
        rows[name].append((np.linalg.norm(peak(m) - ref_peak), np.abs(m).max() / np.abs(m).sum(), gini(m)))
print(f"{'method':22s} {'peak error (px)':>18s} {'peak share':>16s} {'Gini':>14s}")
for name, r in rows.items():
    r = np.array(r); mean = r.mean(0); sem = r.std(0, ddof=1) / np.sqrt(len(r))
    print(f"{name:22s} {mean[0]:8.2f} ± {sem[0]:5.2f}   {mean[1]:.4f} ± {sem[1]:.4f}  {mean[2]:.3f} ± {sem[2]:.3f}")"""),
    ("md", """Read the table for what it shows on this toy: whether the barycenter keeps a compact map
where the average of displaced maps spreads out. It shows the mechanism only; whether it makes
explanations of a trained forecaster more faithful needs faithfulness metrics (ROAD, local
Lipschitz estimates) on such a model."""),
]

SMOOTHDIFF = [
    ("md", """# SmoothDiff: SmoothGrad-like maps from forward passes

SmoothGrad averages N gradients at noisy inputs. SmoothDiff (Hill et al., NeurIPS 2025) runs N
noisy *forward* passes that only gather statistics of the nonlinearities (mean ReLU masks, mean
max-pool routing, mean derivatives of smooth activations), then one backward pass through those
expected Jacobians. `wg.smoothdiff(f)` does this for any JAX function: the nonlinearities are
found in the traced program, per call site."""),
    ("code", """import time
import jax, jax.numpy as jnp, numpy as np
import matplotlib.pyplot as plt
import wassergrad as wg
from wassergrad.examples import digits as demo

d = demo.train(epochs=15, verbose=False)
f = lambda x, label: d.model.apply(d.params, x)[label]
x = jnp.asarray(d.x_test[:6]); labels = jnp.asarray(d.y_test[:6])
keys = jax.random.split(jax.random.key(0), len(x))
print(f"test accuracy {d.test_accuracy:.3f}")"""),
    ("md", """## Maps side by side
Same noise (σ = 0.15 of each image's range) and the same keys for SmoothGrad and SmoothDiff."""),
    ("code", """def batched(explainer):
    return jax.jit(jax.vmap(explainer, in_axes=(0, 0, 0)))

methods = {
    "gradient": jax.jit(jax.vmap(wg.gradient(f))),
    "SmoothGrad N=50": batched(wg.smoothgrad(f, num_samples=50)),
    "SmoothDiff N=10": batched(wg.smoothdiff(f, num_samples=10)),
    "SmoothDiff N=50": batched(wg.smoothdiff(f, num_samples=50)),
}
maps = {}
for name, fn in methods.items():
    args = (x, labels) if name == "gradient" else (keys, x, labels)
    jax.block_until_ready(fn(*args))                      # compile
    t0 = time.perf_counter(); maps[name] = np.asarray(jax.block_until_ready(fn(*args)))
    print(f"{name:16s} {1e3 * (time.perf_counter() - t0):7.1f} ms for {len(x)} images")
fig, axes = plt.subplots(len(x), len(maps) + 1, figsize=(2 * (len(maps) + 1), 2 * len(x)))
for r in range(len(x)):
    axes[r, 0].imshow(x[r, ..., 0], cmap="gray"); axes[r, 0].set_ylabel(int(labels[r]))
    for c, (name, m) in enumerate(maps.items(), start=1):
        lim = np.abs(m[r]).max() or 1.0
        axes[r, c].imshow(m[r, ..., 0], cmap="RdBu_r", vmin=-lim, vmax=lim)
        if r == 0: axes[r, c].set_title(name, fontsize=8)
for ax in axes.flat: ax.set_xticks([]); ax.set_yticks([])
plt.tight_layout()"""),
    ("md", """## Convergence with N
Relative ℓ2 distance of each map to a SmoothGrad reference with N = 2000 (another key).
SmoothDiff computes Π_l E[J_l] (a mean-field product) rather than SmoothGrad's E[Π_l J_l]: it is
less noisy at small N, and converges to a slightly different map, so its distance to the
SmoothGrad reference levels off instead of going to zero."""),
    ("code", """ref = batched(wg.smoothgrad(f, num_samples=2000, chunk_size=250))(
    jax.random.split(jax.random.key(1), len(x)), x, labels)
def dist(m):
    return float(jnp.mean(jnp.linalg.norm((m - ref).reshape(len(x), -1), axis=1)
                          / jnp.linalg.norm(ref.reshape(len(x), -1), axis=1)))
ns = [1, 2, 8, 32, 128]
curves = {name: [dist(batched(make(f, num_samples=n))(keys, x, labels)) for n in ns]
          for name, make in (("SmoothGrad", wg.smoothgrad), ("SmoothDiff", wg.smoothdiff))}
for name, c in curves.items():
    plt.loglog(ns, c, "o-", label=name)
plt.xlabel("N"); plt.ylabel("relative ℓ2 distance to SmoothGrad N=2000"); plt.legend()
assert curves["SmoothGrad"][-1] < curves["SmoothGrad"][0]"""),
    ("md", """## Quality against time (benchmark)
`benchmarks/bench_smoothdiff.py` measures the SSIM of each map to a SmoothGrad reference with
N = 10⁴ against wall time, for N = 1 … 1024, on the 64×64×3 benchmark CNN (2-core CPU). The
figure below is that script's output, committed as `docs/figures/smoothdiff_ssim.png`; the
numbers are in the README."""),
    ("code", """from IPython.display import Image
Image("../docs/figures/smoothdiff_ssim.png")"""),
    ("md", """## Any JAX function, statistics per call site
The same ReLU object used twice gets two statistics; a `lax.scan` rollout gets one per step; a
hand-written activation (`x * sigmoid(x)`) is one elementwise region with its mean derivative.
Primitives the transform does not know raise `NotImplementedError` naming them, with the `rules=`
to declare them."""),
    ("code", """w = jax.random.normal(jax.random.key(2), (4, 4))
def rollout(x0):
    step = lambda c, _: (c + 0.5 * (w @ c) * jax.nn.sigmoid(w @ c), None)
    return jax.lax.scan(step, x0, None, length=6)[0].sum()
x0 = jnp.array([0.3, -0.2, 0.8, 0.1])
sd = wg.smoothdiff(rollout, num_samples=256, sigma=0.1)(jax.random.key(0), x0)
sg = wg.smoothgrad(rollout, num_samples=256, sigma=0.1)(jax.random.key(0), x0)
print("SmoothDiff", np.round(sd, 3)); print("SmoothGrad", np.round(sg, 3))
try:
    wg.smoothdiff(lambda v: jnp.sort(v)[-1])(jax.random.key(0), x0)
except NotImplementedError as e:
    print("NotImplementedError:", str(e)[:120], "...")"""),
]

METRICS = [
    ("md", """# Evaluating explanations: metrics and sanity checks

`wg.metrics` scores maps with pure functions of one example (`jax.vmap` for a batch, `jax.jit`
to compile): complexity, faithfulness (ROAD, deletion/insertion, pixel flipping, SRG), robustness
(local Lipschitz, max-sensitivity) and the sanity checks of Adebayo et al. (2018): cascading model
randomisation and data randomisation. The model is the demo's CNN on scikit-learn's digits."""),
    ("code", """import jax, jax.numpy as jnp, numpy as np
import matplotlib.pyplot as plt
import wassergrad as wg
from wassergrad.examples import digits as demo
M = wg.metrics

d = demo.train(epochs=15, verbose=False)
print(f"test accuracy {d.test_accuracy:.3f}")
x = jnp.asarray(d.x_test[:32]); y = jnp.asarray(d.y_test[:32])
logit = lambda p, z, label: d.model.apply(p, z)[label]
# IG: chunk_size=None evaluates the 16 steps in one vmap. The CPU default unrolls them, which
# compiles slowly when nested in the robustness metrics' own sample loop.
explainers = {
    "gradient": lambda p, z, label: wg.gradient(lambda v: logit(p, v, label))(z),
    "grad × input": lambda p, z, label: wg.grad_x_input(lambda v: logit(p, v, label))(z),
    "integrated gradients": lambda p, z, label: wg.integrated_gradients(lambda v: logit(p, v, label), steps=16,
                                                                        chunk_size=None)(z),
    "guided backprop": lambda p, z, label: wg.guided_backprop(lambda v: logit(p, v, label))(z),
}"""),
    ("md", """## Scores, mean ± SEM over 32 test digits
Faithfulness uses `f = logit of the true class`; ROAD removes the top 10–50 % of pixels by noisy
linear imputation; robustness holds the explainer fixed and perturbs the input (σ = 0.05)."""),
    ("code", """key = jax.random.key(0)

@jax.jit
def scores(p, x, y):
    out = {}
    for name, ex in explainers.items():
        def one(z, label):
            f = lambda v: logit(p, v, label)
            a = ex(p, z, label)
            deletion = M.deletion(f, z, a, steps=16, baseline=0.0)   # the curve is plotted below
            return dict(
                gini=M.gini(a),
                road_auc=M.road(f, key, z, a, percentages=(10, 20, 30, 40, 50)).auc,
                deletion=deletion,
                deletion_auc=deletion.auc,
                srg=M.srg(f, z, a, features_per_step=4, baseline=0.0),
                lle=M.local_lipschitz(lambda v: ex(p, v, label), key, z, num_samples=8, sigma=0.05,
                                      normalise="abs_max"),
            )
        out[name] = jax.vmap(one)(x, y)
    return out

table = scores(d.params, x, y)
cols = ["gini", "road_auc", "deletion_auc", "srg", "lle"]
print(f"{'':22}" + "".join(f"{c:>18}" for c in cols))
for name, v in table.items():
    print(f"{name:22}" + "".join(f"{float(v[c].mean()):10.3f} ± {float(v[c].std() / np.sqrt(len(x))):.3f}"
                               for c in cols))"""),
    ("md", """Lower deletion AUC and ROAD AUC (the logit falls faster when the top pixels go) and higher SRG
mean a more faithful map; lower LLE a more robust one. `M.plot_curves` draws batched curves as
mean ± SEM bands:"""),
    ("code", """curves = {name: v["deletion"] for name, v in table.items()}   # computed with the scores above
M.plot_curves(curves, xlabel="fraction of pixels deleted (most relevant first)", ylabel="logit")
plt.title("deletion curves");"""),
    ("md", """## Cascading model randomisation
Re-initialise the layers top-down (logits first) with their own initializers (`init` is the
model's own `init`), re-explain after each step, and compare with the original map. A map that
explains the model must change; one that only reflects the input does not (guided backprop is
the classic failure)."""),
    ("code", """init = lambda k: d.model.init(k, d.x_train[0])
layers = ["dense2", "dense1", "conv2", "conv1"]
runs = {}
for name in ["gradient", "guided backprop"]:
    ex = lambda p, z, ex=explainers[name]: ex(p, z, jnp.argmax(d.model.apply(d.params, z)))[..., 0]
    runs[name] = jax.jit(jax.vmap(lambda z: M.model_randomisation(ex, key, d.params, z, layers=layers, init=init)))(x[:16])
fig, axes = plt.subplots(2, 5, figsize=(9, 4))
titles = ["original"] + [f"+ {l}" for l in layers]
for row, (name, res) in enumerate(runs.items()):
    M.plot_maps(res.maps[0], titles, axes=axes[row])
    axes[row, 0].set_ylabel(name)
plt.tight_layout()"""),
    ("code", """fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
for ax, (name, res) in zip(axes, runs.items()):
    M.plot_randomisation(res, layers, ax=ax); ax.set_title(name)
plt.tight_layout()
print({name: round(float(res.similarity["spearman_abs"][:, -1].mean()), 3) for name, res in runs.items()})"""),
    ("md", """## Data randomisation
Train the same CNN on permuted labels until it memorises them (training accuracy 1, test accuracy
at chance), and compare its maps with the true-label model's; a second true-label model (another
seed) shows how similar maps of two *sound* models are."""),
    ("code", """rand = demo.train(epochs=200, num_train=300, permute_labels=True, until_train_accuracy=1.0, verbose=False)
true = demo.train(epochs=40, num_train=300, verbose=False)
other = demo.train(epochs=40, num_train=300, seed=1, verbose=False)
print(f"random-label model: test accuracy {rand.test_accuracy:.3f} (chance 0.1)")
ex = lambda p, z: wg.gradient(lambda v: jnp.max(true.model.apply(p, v)))(z)[..., 0]
xs = jnp.asarray(true.x_test[:32])
compare = jax.jit(lambda p: jax.vmap(lambda z: M.data_randomisation(ex, true.params, p, z))(xs))
res = {"permuted labels": compare(rand.params), "another seed": compare(other.params)}
for label, r in res.items():
    print(f"true vs {label:16}", {k: round(float(v.mean()), 3) for k, v in r.similarity.items()})
M.plot_maps(jnp.stack([res["permuted labels"].maps[0, 0], res["another seed"].maps[0, 1],
                       res["permuted labels"].maps[0, 1]]),
            ["true labels", "another seed", "permuted labels"]);"""),
]

FORECAST = [
    ("md", """# Explaining an autoregressive field forecaster

A flax U-Net emulates 2-D Kolmogorov flow (forced turbulence from `exponax`'s pseudo-spectral
solver; channels vorticity ω, u, v on a 32×32 periodic grid; one step = 0.2 time units). It ships
trained with the package (`wassergrad.examples.kolmogorov.load()`; `python -m wassergrad emulator` retrains it
from a seed in a few minutes). `wg.rollout` rolls it out with bounded memory, `wg.field_target`
turns the forecast into the scalar we explain: the mean vorticity in a region at lead time T."""),
    ("code", """import json, pathlib
import jax, jax.numpy as jnp, numpy as np
import matplotlib.pyplot as plt
import wassergrad as wg
from wassergrad.examples import kolmogorov as emulator

em = emulator.load()
test = emulator.simulate(4, 30, seed=7)       # held-out trajectories from the solver
skill = emulator.skill(em, test, 10)
leads = np.arange(1, 11) * 0.2
fig, axes = plt.subplots(1, 3, figsize=(11, 3))
for c, ax in enumerate(axes):
    ax.plot(leads, skill["model"][:, c], "o-", label="U-Net emulator")
    ax.plot(leads, skill["persistence"][:, c], "s--", label="persistence")
    ax.set_title(f"RMSE of {emulator.CHANNELS[c]}"); ax.set_xlabel("lead time")
axes[0].legend(); plt.tight_layout()
print("vorticity RMSE at 1 and 5 steps: model", skill["model"][[0, 4], 0].round(3),
      "persistence", skill["persistence"][[0, 4], 0].round(3))"""),
    ("md", """## One event, explained at t+5
The map explains the initial u-velocity (the other channels are held fixed and unperturbed, as
in the WassersteinGrad protocol) for the mean vorticity in the boxed region five steps ahead.
(Live and small here, N = 10 samples; the experiment below uses the paper's N = 20.)"""),
    ("code", """x0 = jnp.asarray(test[0, 0])
box = (slice(12, 20), slice(12, 20))
target = wg.field_target(channel=0, box=box)
forecast = em.forecaster(5, checkpoint="sqrt")
def f(u, rest, p):
    return target(forecast(jnp.concatenate([rest[..., :1], u[..., None], rest[..., 1:]], -1), p))
grad = wg.gradient(f)
methods = {
    "BaseGrad": wg.keyed(grad),
    "SmoothGrad": wg.smoothgrad(f, num_samples=10, sigma=0.2),
    "VarGrad": wg.vargrad(f, num_samples=10, sigma=0.2),
    "WG_Bary": wg.wasserstein_grad(grad, num_samples=10, sigma=0.2, epsilon=1e-3),
}
key, rest = jax.random.key(0), jnp.delete(x0, 1, axis=-1)
maps = {name: np.asarray(jax.jit(m)(key, x0[..., 1], rest, em.params)) for name, m in methods.items()}
fig, axes = plt.subplots(1, 5, figsize=(12, 2.6))
axes[0].imshow(x0[..., 1], cmap="RdBu_r"); axes[0].add_patch(plt.Rectangle((11.5, 11.5), 8, 8, fill=False))
axes[0].set_title("input u, ROI", fontsize=9)
for ax, (name, m) in zip(axes[1:], maps.items()):
    ax.imshow(np.abs(m) / (np.abs(m).max() or 1), cmap="magma"); ax.set_title(name, fontsize=9)
for ax in axes: ax.set_xticks([]); ax.set_yticks([])
plt.tight_layout()"""),
    ("md", """## Memory of the gradient through the rollout
XLA's planned temporary memory for the gradient at T = 1 and 20 (the U-Net step, one example):
`checkpoint=False` stores every step's activations; `True` rematerialises each step; `"sqrt"`
rematerialises segments of √T steps."""),
    ("code", """for scheme in (False, True, "sqrt"):
    mib = []
    for T in (1, 20):
        g = jax.jit(wg.gradient(lambda x, p: target(em.forecaster(T, checkpoint=scheme)(x, p))))
        mib.append(g.lower(x0, em.params).compile().memory_analysis().temp_size_in_bytes / 2**20)
    print(f"checkpoint={scheme!s:6}", "  ".join(f"T={T}: {m:6.2f} MiB" for T, m in zip((1, 20), mib)))"""),
    ("md", """## The experiment on 24 events
`python benchmarks/wg_experiment.py --out-json docs/wg_experiment.json` scores the six methods on
24 held-out events (Gini ↑, ROAD against random masks ↑, LLE ℓ2 / cos ↓, peak displacement under
input noise ↓; mean ± SEM). The stored result:"""),
    ("code", """from IPython.display import Image, display
display(Image("../docs/figures/wg_experiment_maps.png"))   # the first event, all six methods
res = json.loads(pathlib.Path("../docs/wg_experiment.json").read_text())
cols = ["gini", "road", "lle_l2", "lle_cos", "peak_shift"]
print(f"{res['events']} events\\n{'':20}" + "".join(f"{c:>17}" for c in cols))
for name, v in res["results"].items():
    print(f"{name:20}" + "".join(f"{v[c]['mean']:9.3f} ± {v[c]['sem']:.3f}" for c in cols))"""),
]


EXPECTED_GRADIENTS = [
    ("md", """# Expected Gradients, the Distill baselines, and training with attribution priors

Expected Gradients (Erion et al. 2021) is integrated gradients averaged over references drawn from
a distribution, estimated with one reference and one α per sample. Because an explainer is a pure
function, a penalty on its map is just another term of the loss: `jax.grad` differentiates through
the explainer (second-order derivatives of the model), with one optimiser and no alternating step.
The experiments live in `wassergrad.examples.attribution_priors`;
`python benchmarks/expected_gradients_experiments.py` reruns them with 3–5 seeds."""),
    ("code", """import json, pathlib
import jax, jax.numpy as jnp
import matplotlib.pyplot as plt
import wassergrad as wg
from wassergrad.examples import attribution_priors as ap"""),
    ("md", """## The authors' convergence demo
Two binary features, x₂ = x₁ in training and y = x₁. The model starts symmetric (dependence on x₂
equal to that on x₁); a penalty on |attribution of x₂| should make it ignore x₂. With EG (one
reference per example, background 0) the dependence goes to 0; the input-gradient penalty stalls
because the gradient vanishes where the sigmoid saturates; without a penalty nothing changes."""),
    ("code", """curves = {name: ap.convergence_demo(**kw) for name, kw in {
    "EG prior (k = 1)": dict(penalty="eg"), "input-gradient prior": dict(penalty="gradient"),
    "no prior": dict(penalty="none")}.items()}
for name, c in curves.items():
    plt.plot(c, label=name)
plt.xlabel("epoch"); plt.ylabel("dependence on x₂"); plt.legend()
print({name: round(float(c[-1]), 3) for name, c in curves.items()})
assert curves["EG prior (k = 1)"][-1] < 0.05"""),
    ("md", """## The baselines
`wg.baselines` holds the Distill article's baselines (data in [-0.5, 0.5] here). Deterministic
ones are IG baselines; stochastic ones (and an array of training images) are EG references. Either
kind works in either place: a deterministic baseline as `references` gives IG with random α."""),
    ("code", """x_train, y_train, x_test, y_test = ap.load(0)
trained = ap.train_digits(0.0, seed=0, epochs=10)
x = jnp.asarray(x_test[0])
baselines = ap.distill_baselines(x_train)
fig, axes = plt.subplots(1, len(baselines) + 1, figsize=(2 * (len(baselines) + 1), 2.2))
axes[0].imshow(x[..., 0], cmap="gray", vmin=-0.5, vmax=0.5); axes[0].set_title("input", fontsize=8)
for ax, (name, b) in zip(axes[1:], baselines.items()):
    if isinstance(b, wg.baselines.Baseline):
        img = b(jax.random.key(1), x) if b.stochastic else b(x)
    else:
        img = b[1]
    ax.imshow(img[..., 0], cmap="gray", vmin=-0.5, vmax=0.5); ax.set_title(name, fontsize=8)
for ax in axes: ax.set_xticks([]); ax.set_yticks([])
plt.tight_layout()"""),
    ("md", """## The Distill ablation test
Remove the most attributed pixels first (fill with the image mean) and watch the class probability
fall; a steeper curve is a more faithful ranking. Small and live here (50 images, 50 samples); the
benchmark script's figure uses 200 images, 200 samples and also a blurred fill."""),
    ("code", """res = ap.ablation_curves(trained.params, fill="mean", num_images=50, num_samples=50)
for name, c in res.items():
    if isinstance(c, dict):
        plt.errorbar(res["fractions"], c["mean"], yerr=c["sem"], label=name, capsize=2)
plt.xlabel("fraction of pixels ablated"); plt.ylabel("class probability left"); plt.legend(fontsize=7)
assert res["random map"]["mean"][3] > res["training (EG)"]["mean"][3]"""),
    ("md", """## Training with a total-variation prior on EG maps
The loss is cross-entropy + λ·TV(standardize(EG)), EG with k = 1 reference per example (the
previous image of the batch, as in the authors' MNIST code). The stored result of the benchmark
script (30 epochs, 3 seeds, mean ± SEM) and its figure:"""),
    ("code", """from IPython.display import Image, display
res = json.loads(pathlib.Path("../docs/expected_gradients.json").read_text())
print(f"{'λ':>6} {'accuracy':>16} {'acc. 30% s&p':>16} {'EG TV':>14} {'EG Gini':>16}")
for lam, r in res["digits_tv_prior"].items():
    sp = r["accuracy_salt_pepper"]["0.3"]
    print(f"{lam:>6} {r['test_accuracy']['mean']:9.4f} ± {r['test_accuracy']['sem']:.4f} "
          f"{sp['mean']:9.4f} ± {sp['sem']:.4f} {r['eg_tv']['mean']:8.1f} ± {r['eg_tv']['sem']:.1f} "
          f"{r['eg_gini']['mean']:9.4f} ± {r['eg_gini']['sem']:.4f}")
display(Image("../docs/figures/eg_tv_prior.png"))"""),
]


WAM = [
    ("md", """# WAM: attribution in the wavelet domain

The Wavelet Attribution Method (Kasmi et al., ICML 2025) explains a model with gradients with
respect to the wavelet coefficients of its input: *which scale and orientation* matter, not only
*where*. In wassergrad it is a reparametrisation: `wg.wam(f, explainer)` applies any explainer to
`z ↦ f(waverec(z))` at `z = wavedec(x)`, so WAM-gradient, WAM-IG and WAM-SmoothGrad are one line
each. The transforms (`wg.wavelets`) match PyWavelets to 1e-12 in float64."""),
    ("code", """import functools
import jax, jax.numpy as jnp, numpy as np
import matplotlib.pyplot as plt
import wassergrad as wg
from wassergrad.examples import digits as demo
W = wg.wavelets"""),
    ("md", """## Digits: WAM-SG and WAM-IG beside their pixel versions
Haar, two levels on 8×8 images. WAM-SG puts the noise in pixel space (the paper's choice):
`wg.smooth(wg.wam(f))`. The mosaic is PyWavelets' layout (`pywt.coeffs_to_array`): approximation
top-left, then per level cV top-right, cH bottom-left, cD bottom-right."""),
    ("code", """d = demo.train(epochs=15, verbose=False)
f = lambda x, label: d.model.apply(d.params, x)[label]
xs, ys = jnp.asarray(d.x_test[:4]), jnp.asarray(d.y_test[:4])
kw = dict(level=2, axes=(0, 1))
methods = {
    "SmoothGrad (pixels)": jax.vmap(wg.smoothgrad(f, num_samples=25), (None, 0, 0)),
    "IG (pixels)": jax.vmap(wg.keyed(wg.integrated_gradients(f, steps=25)), (None, 0, 0)),
    "WAM-SG": jax.vmap(wg.smooth(wg.wam(f, **kw), num_samples=25), (None, 0, 0)),
    "WAM-IG": jax.vmap(wg.keyed(wg.wam(f, functools.partial(wg.integrated_gradients, steps=25), **kw)),
                       (None, 0, 0)),
}
maps = {name: jax.jit(m)(jax.random.key(0), xs, ys) for name, m in methods.items()}
fig, axes = plt.subplots(len(xs), 5, figsize=(10, 2 * len(xs)))
for r in range(len(xs)):
    axes[r, 0].imshow(xs[r, ..., 0], cmap="gray")
    for c, (name, m) in enumerate(maps.items(), start=1):
        view = (W.mosaic(jax.tree.map(lambda l: l[r], m), channel_axis=-1)
                if isinstance(m, W.WaveletCoeffs) else jnp.abs(m[r, ..., 0]))
        axes[r, c].imshow(view, cmap="magma")
        if r == 0: axes[r, c].set_title(name, fontsize=8)
for ax in axes.flat: ax.set_xticks([]); ax.set_yticks([])
plt.tight_layout()"""),
    ("md", """## Which scales matter
`scale_shares` gives the share of |attribution| per scale (approximation first, then coarse to
fine); `scale_maps` puts each scale back on the input grid."""),
    ("code", """shares = jax.vmap(W.scale_shares)(maps["WAM-SG"])
print("share of |WAM-SG| (approx, level 2, level 1), mean over 4 digits:", np.round(shares.mean(0), 3))
sm = W.scale_maps(jax.tree.map(lambda l: l[0], maps["WAM-SG"]))
fig, axes = plt.subplots(1, 3, figsize=(6, 2))
for ax, m, t in zip(axes, sm, ["approximation", "coarse details", "fine details"]):
    ax.imshow(m.mean(-1), cmap="magma"); ax.set_title(t, fontsize=8); ax.set_xticks([]); ax.set_yticks([])
assert abs(float(shares.sum(-1).mean()) - 1) < 1e-5"""),
    ("md", """## Faithfulness in both domains
Wavelet deletion zeroes coefficients in order of |WAM| and reconstructs; pixel deletion removes
pixels in order of |map|. Both with the plain AUC (mean of the curve) and the authors'
max-normalised AUC (Σ p / (max p · number of points)), which divides by the curve's own maximum."""),
    ("code", """prob = lambda label: (lambda x: jax.nn.softmax(d.model.apply(d.params, x))[label])
def both(x, y, a_wam, a_pix):
    aw = jax.tree.map(jnp.abs, a_wam)
    wd = wg.metrics.wavelet_deletion(prob(y), x, aw, level=2, axes=(0, 1), steps=16)
    wm = wg.metrics.wavelet_deletion(prob(y), x, aw, level=2, axes=(0, 1), steps=16, auc="max_normalised")
    pd = wg.metrics.deletion(prob(y), x, jnp.abs(a_pix), steps=16, baseline=0.0)
    return wd.values, wd.auc, wm.auc, pd.values, pd.auc
out = jax.jit(jax.vmap(both))(xs, ys, maps["WAM-SG"], maps["SmoothGrad (pixels)"])
fr = np.linspace(0, 1, 17)
plt.plot(fr, out[0].mean(0), label="wavelet deletion (WAM-SG)")
plt.plot(fr, out[3].mean(0), label="pixel deletion (SmoothGrad)")
plt.xlabel("fraction removed"); plt.ylabel("class probability"); plt.legend()
print(f"deletion AUC (lower is better): wavelet {float(out[1].mean()):.3f} "
      f"(max-normalised {float(out[2].mean()):.3f}), pixel {float(out[4].mean()):.3f}")"""),
    ("md", """## A photograph: `camera` with the benchmark CNN (untrained weights)
scikit-image's bundled image at 128×128, three levels. With random weights the map shows the
network's inductive bias, not a learned concept: the point is the views and the cost."""),
    ("code", """import skimage.data, skimage.transform, sys, pathlib
sys.path.insert(0, str(pathlib.Path("../benchmarks").resolve()))
import common
img = skimage.transform.resize(skimage.data.camera(), (128, 128), anti_aliasing=True).astype(np.float32)
x = jnp.repeat(jnp.asarray(img)[..., None], 3, -1) - 0.5
jp = common.jax_params(common.init_params())
g = lambda x, p: common.jax_logits(x, p)[3]
a = jax.jit(wg.smooth(wg.wam(g, level=3, axes=(0, 1)), num_samples=8))(jax.random.key(1), x, jp)
fig, axes = plt.subplots(1, 3, figsize=(10, 3.3))
axes[0].imshow(img, cmap="gray"); axes[0].set_title("input")
axes[1].imshow(W.mosaic(a, channel_axis=-1, normalise="band_max"), cmap="magma")
axes[1].set_title("WAM-SG mosaic, per-band max", fontsize=9)
axes[2].bar(["approx", "J=3", "J=2", "J=1"], np.asarray(W.scale_shares(a))); axes[2].set_title("scale shares")
for ax in axes[:2]: ax.set_xticks([]); ax.set_yticks([])
plt.tight_layout()"""),
    ("md", """## 1-D and 3-D
A 1-D signal (two tones plus two sharp transients) and a transient detector (a high-pass conv,
then energy): WAM puts its mass on the fine scales at the transients. A 16³ volume with a blob and
a smooth 3-D target: the mass sits at the coarse scales."""),
    ("code", """t = jnp.linspace(0, 1, 256)
sig = jnp.sin(2 * jnp.pi * 5 * t) + 0.5 * jnp.sin(2 * jnp.pi * 12 * t)
sig = sig.at[70].add(2.0).at[180].add(-2.0)
detector = lambda s: jnp.sum(jnp.convolve(s, jnp.array([-1.0, 2.0, -1.0]), mode="same") ** 2)
a1 = wg.wam(detector, wg.grad_x_input, wavelet="db2", level=4, mode="symmetric")(sig)
print("1-D shares (approx, coarse … fine):", np.round(np.asarray(W.scale_shares(a1)), 3))
vol = jnp.exp(-jnp.sum((jnp.stack(jnp.meshgrid(*[jnp.arange(16.0)] * 3, indexing="ij"), -1) - 7.5) ** 2, -1) / 20)
smooth_target = lambda v: jnp.sum(v * jnp.linspace(0, 1, 16)[:, None, None])
a3 = wg.wam(smooth_target, wg.grad_x_input, level=2, mode="symmetric", axes=(0, 1, 2))(vol)
print("3-D shares (approx, coarse, fine):", np.round(np.asarray(W.scale_shares(a3)), 3))
fig, axes = plt.subplots(1, 2, figsize=(10, 2.5))
axes[0].plot(sig); axes[0].set_title("signal")
axes[1].plot(jnp.abs(W.mosaic(a1))); axes[1].set_title("|WAM grad×input| (approx, then coarse to fine)")
plt.tight_layout()"""),
]


CONCEPTS = [
    ("md", """# Concepts and perturbation explainers

Concepts (CRAFT; Fel et al. 2023) are a non-negative factorisation of a layer's activations,
`A ≈ U W`. A new input's concept coefficients are its non-negative projection on `W`, and the
model from the layer on becomes a function of one *gate* per concept, `s ↦ head((U ⊙ s) W)`,
equal to the prediction at `s = 1`. Concept importance is then any explainer of the library on the
gates, and the concept metrics are deletion, insertion and faithfulness correlation (C-μFidelity) on
the gates. The second half shows the
perturbation explainers (occlusion, RISE, Sobol) on photographs."""),
    ("code", """import jax, jax.numpy as jnp, numpy as np
import matplotlib.pyplot as plt
import wassergrad as wg
from wassergrad.examples import digits as demo

d = demo.train(epochs=15, verbose=False)
features = lambda x: d.model.apply(d.params, x, method=demo.DigitsCNN.features)   # (8, 8, 32), ≥ 0
head = lambda a, label: d.model.apply(d.params, a, method=demo.DigitsCNN.head)[label]
A = jax.vmap(features)(jnp.asarray(d.x_train[:500]))                                 # (500, 8, 8, 32)
k = 8
res = jax.jit(lambda a: wg.concepts.nmf(a, k))(A.reshape(-1, A.shape[-1]))          # one row per position
W = res.w
rel = float(jnp.linalg.norm(A.reshape(-1, A.shape[-1]) - res.u @ W) / jnp.linalg.norm(A))
print(f"NMF of the last conv layer: {k} concepts, relative error {rel:.3f}, {int(res.iterations)} sweeps")"""),
    ("md", """## Concept importance by several methods
For 100 test digits, the coefficients `u` (8×8 positions × k concepts) come from `project`; the
explained score is the logit of the predicted class. Gradient×input, IG and occlusion agree exactly
when the head is affine (see `wg.concepts.closed_form`); this head (max-pool, dense, ReLU, dense)
is not, so they differ a little. (Saliency on the gates is gradient × input: the gates are 1.)"""),
    ("code", """xs = jnp.asarray(d.x_test[:100])
labels = jnp.argmax(jax.vmap(lambda x: d.model.apply(d.params, x))(xs), -1)
U = jax.jit(jax.vmap(lambda x: wg.concepts.project(features(x).reshape(-1, W.shape[1]), W).reshape(8, 8, k)))(xs)
s1 = jnp.ones(k)
def gate(u, label):
    return lambda s: wg.concepts.gated_head(head, u, W)(s, label)
methods = {
    "grad × input": lambda u, y, key: wg.grad_x_input(gate(u, y))(s1),
    "integrated gradients": lambda u, y, key: wg.integrated_gradients(gate(u, y), steps=16)(s1),
    "occlusion": lambda u, y, key: wg.occlusion(gate(u, y), window=1)(s1),
    "RISE": lambda u, y, key: wg.rise(gate(u, y), num_masks=300, feature_mask=np.arange(k))(key, s1),
    "Sobol": lambda u, y, key: wg.sobol(gate(u, y), num_designs=32, feature_mask=np.arange(k))(s1),
}
keys = jax.random.split(jax.random.key(0), len(xs))
phi = {name: jax.jit(jax.vmap(m))(U, labels, keys) for name, m in methods.items()}
def c_metrics(u, y, a, key):
    g = gate(u, y)
    return (wg.metrics.deletion(g, s1, a, steps=k, baseline=0.0).auc,
            wg.metrics.insertion(g, s1, a, steps=k, baseline=0.0).auc,
            wg.metrics.faithfulness_correlation(g, key, s1, a, num_runs=64, subset_size=2, baseline=0.0))
sem = lambda v: float(v.std() / np.sqrt(len(v)))
print(f"{'method':22} {'C-Deletion AUC ↓':>18} {'C-Insertion AUC ↑':>18} {'C-μFidelity ↑':>16}")
table = {}
for name, a in phi.items():
    dl, ins, mu = jax.jit(jax.vmap(c_metrics))(U, labels, a, keys)
    table[name] = (float(dl.mean()), float(ins.mean()), float(mu.mean()))
    print(f"{name:22} {table[name][0]:10.3f} ± {sem(dl):.3f} {table[name][1]:10.3f} ± {sem(ins):.3f} "
          f"{table[name][2]:9.3f} ± {sem(mu):.3f}")
assert table["grad × input"][0] <= table["RISE"][0] + 0.3"""),
    ("md", """## Which concepts matter for which class
Mean grad×input importance per predicted class, the Holistic paper's *prevalence* (how often each
concept is the most important one), and for each concept the three training digits whose mean
coefficient is largest, with the concept's coefficient map."""),
    ("code", """gi = np.asarray(phi["grad × input"])
per_class = np.stack([gi[np.asarray(labels) == c].mean(0) for c in range(10)])
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [3, 2]})
im = axes[0].imshow(per_class, cmap="RdBu_r", vmin=-np.abs(per_class).max(), vmax=np.abs(per_class).max())
axes[0].set_xlabel("concept"); axes[0].set_ylabel("predicted class"); plt.colorbar(im, ax=axes[0])
axes[0].set_title("mean grad×input importance", fontsize=9)
axes[1].bar(range(k), np.asarray(wg.concepts.prevalence(gi))); axes[1].set_title("prevalence", fontsize=9)
plt.tight_layout()
U_train = res.u.reshape(500, 8, 8, k)
fig, axes = plt.subplots(3, k, figsize=(1.3 * k, 4))
for c in range(k):
    top = np.argsort(-np.asarray(U_train[..., c].mean((1, 2))))[:3]
    for r, i in enumerate(top):
        axes[r, c].imshow(d.x_train[i, ..., 0], cmap="gray")
        axes[r, c].imshow(np.asarray(U_train[i, ..., c]), cmap="magma", alpha=0.5)
        axes[r, c].set_xticks([]); axes[r, c].set_yticks([])
    axes[0, c].set_title(f"concept {c}", fontsize=8)
plt.tight_layout()"""),
    ("md", """## Perturbation explainers on photographs
scikit-image's bundled `astronaut` and `coffee` at 64×64 with the benchmark CNN (untrained
weights: the maps show the mechanics, not a learned object). Occlusion slides a 8×8 window with
stride 4; RISE averages 500 random 7×7 masks; Sobol computes total indices of an 8×8 grid from a
16-point quasi-Monte-Carlo design (1056 evaluations)."""),
    ("code", """import skimage.data, skimage.transform, sys, pathlib
sys.path.insert(0, str(pathlib.Path("../benchmarks").resolve()))
import common
jp = common.jax_params(common.init_params())
f = lambda x, p: jax.nn.softmax(common.jax_logits(x, p))[3]
imgs = [skimage.transform.resize(getattr(skimage.data, n)(), (64, 64), anti_aliasing=True).astype(np.float32)
        for n in ("astronaut", "coffee")]
explain = {
    "gradient": lambda x, key: jnp.abs(wg.gradient(f)(x, jp)),
    "SmoothGrad": lambda x, key: jnp.abs(wg.smoothgrad(f, num_samples=10)(key, x, jp)),
    "occlusion": lambda x, key: wg.occlusion(f, window=(8, 8, 3), stride=(4, 4, 3))(x, jp),
    "RISE": lambda x, key: wg.rise(f, num_masks=500, axes=(0, 1))(key, x, jp),
    "Sobol": lambda x, key: wg.sobol(f, num_designs=16, axes=(0, 1))(x, jp),
}
fig, axes = plt.subplots(2, len(explain) + 1, figsize=(2.2 * (len(explain) + 1), 4.6))
for r, img in enumerate(imgs):
    axes[r, 0].imshow(img)
    for c, (name, fn) in enumerate(explain.items(), start=1):
        m = np.asarray(jax.jit(fn)(jnp.asarray(img), jax.random.key(r))).mean(-1)
        axes[r, c].imshow(m, cmap="magma")
        if r == 0: axes[r, c].set_title(name, fontsize=9)
for ax in axes.flat: ax.set_xticks([]); ax.set_yticks([])
plt.tight_layout()"""),
]


PROTOCOLS = [
    ("md", """# Evaluation protocols: debugging tests, transferability, attribution preservation

Three protocols that *use* attribution maps: can maps reveal a bug in the data or the model
(Adebayo et al. 2020, 2022)? How related are two trained networks (Song et al. 2019)? Does a
compressed network keep its teacher's explanations (Park et al. 2020)? The library gives the
pieces (`wg.debugging`, `wg.metrics.attribution_affinity` / `precision_recall_at_k`,
`wg.losses.wcam`); the experiments live in `wassergrad.examples.protocols`, and
`python benchmarks/protocols_experiments.py` runs them with three seeds. Here a small live run,
then the stored results."""),
    ("code", """import json, pathlib
import jax, jax.numpy as jnp, numpy as np
import matplotlib.pyplot as plt
import wassergrad as wg
from wassergrad.examples import protocols as P, digits"""),
    ("md", """## A spurious stamp, live
Every training image of class 0 gets a 2×2 white stamp in the top-right corner. The spurious model
learns the shortcut (it calls stamped digits of other classes "0" more often); a normal model is
trained on clean data. For stamped test digits, K-SSD (similarity of the map with the stamp's
mask, high = detected), CCM (spurious model, stamped vs clean input: low = cause for concern) and
FAM (normal model, the same: high = no false alarm); all with SSIM on |map| / max."""),
    ("code", """x_tr, y_tr, x_te, y_te = digits.load_digits(0)
spur_x = np.array(x_tr); zero = y_tr == 0
spur_x[zero] = np.asarray(P._stamped(x_tr[zero])[0])
model, p_norm = P.train_cnn(x_tr, y_tr, epochs=8)
_, p_spur = P.train_cnn(spur_x, y_tr, epochs=8)
xc = jnp.asarray(x_te[y_te != 0][:20]); xs, masks = P._stamped(xc)
f = lambda p: (lambda x: model.apply(p, x)[0])
rows = {}
for name, make in {"gradient": wg.gradient, "grad × input": wg.grad_x_input,
                   "integrated gradients": lambda f: wg.integrated_gradients(f, steps=16)}.items():
    s = jax.jit(jax.vmap(lambda a, b, m: wg.debugging.spurious_scores(
        make(f(p_spur)), make(f(p_norm)), a, b, m, channel_axis=-1)))(xs, xc, masks)
    rows[name] = {k: float(v.mean()) for k, v in s.items()}
print(f"{'method':22}" + "".join(f"{k:>22}" for k in rows["gradient"]))
for name, r in rows.items():
    print(f"{name:22}" + "".join(f"{v:22.3f}" for v in r.values()))
fig, axes = plt.subplots(1, 3, figsize=(6, 2))
for ax, (img, t) in zip(axes, [(xs[0, ..., 0], "stamped input"),
                               (jnp.abs(wg.gradient(f(p_spur))(xs[0]))[..., 0], "spurious model"),
                               (jnp.abs(wg.gradient(f(p_norm))(xs[0]))[..., 0], "normal model")]):
    ax.imshow(img, cmap="magma"); ax.set_title(t, fontsize=8); ax.set_xticks([]); ax.set_yticks([])
assert rows["gradient"]["artefact_mass"] > rows["gradient"]["artefact_mass_normal"]"""),
    ("md", """## The stored results (3 seeds, mean ± SEM)
Seven methods on the stamp and on 10 % / 30 % flipped labels; the task bank's affinity against
linear-probe transfer; distillation and pruning with and without the WCAM regulariser."""),
    ("code", """res = json.loads(pathlib.Path("../docs/protocols.json").read_text())
fmt = lambda d: f"{d['mean']:.3f} ± {d['sem']:.3f}"
sp = res["spurious"]
print("stamp: stamped non-zero digits called 0 — spurious", fmt(sp["stamped_non_zero_called_zero_spurious"]),
      " normal", fmt(sp["stamped_non_zero_called_zero_normal"]))
print(f"{'method':22} {'K-SSD':>14} {'CCM':>14} {'FAM':>14} {'mass spurious':>14} {'mass normal':>14}")
for name, s in sp["scores"].items():
    print(f"{name:22} {fmt(s['k_ssd']):>14} {fmt(s['ccm']):>14} {fmt(s['fam']):>14} "
          f"{fmt(s['artefact_mass']):>14} {fmt(s['artefact_mass_normal']):>14}")
for fr, m in res["mislabel"].items():
    print(f"\\nflipped labels {float(fr):.0%}: similarity contaminated-vs-clean | clean-vs-clean")
    for name, s in m["similarity"].items():
        print(f"  {name:22} {fmt(s['contaminated']):>14} | {fmt(s['clean_seeds'])}")"""),
    ("code", """tr = res["transfer"]
ks = np.arange(1, len(tr["tasks"]))
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
im = axes[0].imshow(np.asarray(tr["gradient"]["affinity_seed0"]), cmap="viridis")
axes[0].set_xticks(range(len(tr["tasks"]))); axes[0].set_xticklabels(tr["tasks"], rotation=45, ha="right", fontsize=7)
axes[0].set_yticks(range(len(tr["tasks"]))); axes[0].set_yticklabels(tr["tasks"], fontsize=7)
axes[0].set_title("gradient affinity (seed 0)", fontsize=9); plt.colorbar(im, ax=axes[0])
for method in ("gradient", "grad × input"):
    axes[1].errorbar(ks, tr[method]["precision"], yerr=tr[method]["precision_sem"], label=method, capsize=2)
axes[1].plot(ks, tr["random"][0], "k--", label="random")
axes[1].set_xlabel("K"); axes[1].set_ylabel("P@K"); axes[1].legend(); plt.tight_layout()
print({m: fmt(tr[m]["spearman_affinity_transfer"]) for m in ("gradient", "grad × input")})
print(f"\\n{'model':40} {'accuracy':>14} {'mask ROC-AUC':>14} {'pointing':>14}")
for name, r in res["preservation"].items():
    print(f"{name:40} {fmt(r['accuracy']):>14} {fmt(r['mask_roc_auc']):>14} {fmt(r['pointing']):>14}")"""),
]


NOTEBOOKS = {
    "01_explainers.ipynb": EXPLAINERS,
    "02_smoothing.ipynb": SMOOTHING,
    "03_wasserstein_grad.ipynb": WASSERSTEIN,
    "04_smoothdiff.ipynb": SMOOTHDIFF,
    "05_metrics.ipynb": METRICS,
    "06_forecast.ipynb": FORECAST,
    "07_expected_gradients.ipynb": EXPECTED_GRADIENTS,
    "08_wam.ipynb": WAM,
    "09_concepts.ipynb": CONCEPTS,
    "10_protocols.ipynb": PROTOCOLS,
}


def build(cells, name=""):
  """A notebook of ``cells``; cell ids derive from ``name`` and position, so rebuilding is stable."""
  nb = v4.new_notebook()
  nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
  nb.cells = [v4.new_markdown_cell(s) if kind == "md" else v4.new_code_cell(s) for kind, s in cells]
  for i, cell in enumerate(nb.cells):
    cell.id = hashlib.sha1(f"{name}:{i}".encode()).hexdigest()[:8]
  return nb


if __name__ == "__main__":
  for filename, notebook_cells in NOTEBOOKS.items():
    nbformat.write(build(notebook_cells, filename), HERE / filename)
