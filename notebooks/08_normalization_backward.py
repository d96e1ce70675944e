# %% [markdown]
# # 8. Normalization layers backward
#
# Batch normalization (Ioffe & Szegedy, 2015) standardises every channel with the mean and the
# variance **of the batch**. Those statistics are functions of every input of the channel, so in
# training mode the layer is not an elementwise map: each output depends on every input of its
# channel, across all samples, and the backward pass carries a *coupling term* that a per-element
# derivation misses. In this notebook we derive BatchNorm's forward and backward index by index,
# check them against `deconv.nn.BatchNorm2d` and against float64 central differences, and see
# that evaluation mode (running statistics) has no coupling at all. Instance normalization
# (Ulyanov, Vedaldi & Lempitsky, 2016), layer normalization (Ba, Kiros & Hinton, 2016) and group
# normalization (Wu & He, 2018) are the same derivation over other sets of axes: one function,
# parameterised by the axes, reproduces all four `deconv` layers. Finally we look at why the DCGAN
# generator (Radford, Metz & Chintala, 2016) puts BatchNorm after each of its transposed
# convolutions, with the generator of `deconv.models.generator` trained with and without it.
#
# The letters are the series' notation, stated once in [NOTATION.md](NOTATION.md): batch $N$,
# channels $C$, groups $G$, pixel $(h, \ell)$, upstream gradient $\bar y = \partial L/\partial y$.
# This notebook adds the statistics: $m$ values share one mean $\mu$ and one biased variance
# $\sigma^2$, $\hat\sigma = \sqrt{\sigma^2 + \varepsilon}$, the standardised input
# $\hat x = (x - \mu)/\hat\sigma$, and the affine parameters $\gamma$ (scale, `weight`) and $b$
# (shift, `bias`; the paper's $\beta$, a kernel tap column in NOTATION.md).
#
# Every numeric claim is a `compare(...)` line (`name | exact | approx | maxdiff`, raising if the
# arrays disagree) or an `assert`; the exercises end in `check_exercise(...)`.

# %%
import math
import runpy
from fractions import Fraction

import numpy as np
import matplotlib.pyplot as plt

import deconv
from deconv import nn
from deconv.gradcheck import compare, gradcheck, numerical_gradient
from deconv.models import data

from exercise import check_exercise          # notebooks/exercise.py: marks the fill-in cells

np.set_printoptions(precision=4, suppress=True, linewidth=110)

# Two float64 evaluations of the same algebra differ by the order of the sums: ~1e-16 relative.
ALGEBRA = dict(rtol=1e-10, atol=1e-12)
# Central differences, eps = 1e-6: rounding of L (|L| ~ 10) over 2 eps, ~1e-9; truncation ~1e-12.
FD = dict(rtol=1e-6, atol=1e-7)


def with_parameters(layer, gamma, b):
    """Set a deconv layer's weight and bias (float64 layers here) and return it."""
    layer.weight.data[...] = gamma
    layer.bias.data[...] = b
    return layer


# %% [markdown]
# ## 1. BatchNorm in training mode, index by index
#
# **Forward.** $x$ is $(N, C, H, W)$. Channel $c$ has $m = N H W$ values $x[n, c, h, \ell]$, and
# its statistics are
#
# $$\mu_c = \frac1m \sum_{n,h,\ell} x[n,c,h,\ell], \qquad
# \sigma_c^2 = \frac1m \sum_{n,h,\ell} \big(x[n,c,h,\ell] - \mu_c\big)^2 ,\qquad
# \hat\sigma_c = \sqrt{\sigma_c^2 + \varepsilon},$$
#
# (the biased variance: divisor $m$, not $m-1$), then
#
# $$\hat x[n,c,h,\ell] = \frac{x[n,c,h,\ell] - \mu_c}{\hat\sigma_c}, \qquad
# y[n,c,h,\ell] = \gamma_c\, \hat x[n,c,h,\ell] + b_c .$$
#
# Each channel is independent of the others; within a channel every sample of the batch enters
# $\mu_c$ and $\sigma_c$. Since nothing below mixes channels, write $i, j$ for the positions
# $(n, h, \ell)$ of one channel and drop $c$.
#
# **A hand example.** One channel, $N = 2$, $H = 1$, $W = 2$: the $m = 4$ values $1, 3, 3, 9$,
# with $\varepsilon = 0$, $\gamma = 2$, $b = 1$. Everything is a small fraction.

# %%
X_HAND = np.array([[[[1.0, 3.0]]], [[[3.0, 9.0]]]])          # (N, C, H, W) = (2, 1, 1, 2)
GAMMA_HAND, B_HAND = 2.0, 1.0


def frac(a):
    """An array of small fractions, printed as such."""
    return "[" + ", ".join(str(Fraction(float(v)).limit_denominator(100)) for v in np.ravel(a)) + "]"


values = X_HAND[:, 0].ravel()
m_hand = values.size
mu_hand = values.sum() / m_hand
var_hand = ((values - mu_hand) ** 2).sum() / m_hand
sigma_hand = math.sqrt(var_hand)
xhat_hand = (X_HAND - mu_hand) / sigma_hand
y_hand = GAMMA_HAND * xhat_hand + B_HAND
print(f"mu     = ({' + '.join(f'{v:.0f}' for v in values)}) / {m_hand} = {mu_hand:.0f}")
print(f"var    = ({' + '.join(f'({v - mu_hand:+.0f})^2' for v in values)}) / {m_hand} = {var_hand:.0f}"
      f",  sigma = {sigma_hand:.0f}")
print(f"xhat   = (x - {mu_hand:.0f}) / {sigma_hand:.0f} = {frac(xhat_hand)}")
print(f"y      = {GAMMA_HAND:.0f} xhat + {B_HAND:.0f} = {frac(y_hand)}")

bn_hand = with_parameters(nn.BatchNorm2d(1, eps=0.0, dtype=np.float64), GAMMA_HAND, B_HAND)
compare("hand example: y vs nn.BatchNorm2d", bn_hand(X_HAND), y_hand, **ALGEBRA)
assert (mu_hand, var_hand) == (4.0, 9.0)

# %% [markdown]
# **Exercise E8.1: BatchNorm forward in training mode.** Write the forward of the formulas above
# for $x$ of shape $(N, C, H, W)$ and $\gamma, b$ of shape $(C,)$: one channel at a time, its mean
# and biased variance over $(n, h, \ell)$, then $\gamma_c \hat x + b_c$. `check_exercise` compares
# with `deconv.nn.BatchNorm2d` in training mode on four cases (channels with offsets and scales far
# from 0 and 1, so a forgotten mean or variance shows). (Solution: `batch_norm_train_forward` in
# [solutions.py](solutions.py).)

# %%
def batch_norm_train_forward(x, gamma, b, eps):
    """x (N, C, H, W), gamma (C,), b (C,), eps -> y (N, C, H, W), batch statistics."""
    return ...                                     # <- your code here


check_exercise("E8.1", batch_norm_train_forward)

# %% [markdown]
# **Backward.** The loss reaches $y$ as $\bar y$. The affine map gives at once
#
# $$\bar b = \sum_i \bar y_i, \qquad \bar\gamma = \sum_i \bar y_i\, \hat x_i, \qquad
# \bar{\hat x}_i = \gamma\, \bar y_i$$
#
# (per channel; sums over the $m$ positions $i = (n, h, \ell)$ of the channel). For $\bar x$ we
# need the Jacobian of $\hat x$. From the definitions,
#
# $$\frac{\partial \mu}{\partial x_i} = \frac1m,\qquad
# \frac{\partial \sigma^2}{\partial x_i} = \frac2m\,(x_i - \mu)
# \quad\Big(\text{the term } -\tfrac2m \textstyle\sum_j (x_j - \mu) \text{ is } 0\Big),\qquad
# \frac{\partial \hat\sigma}{\partial x_i} = \frac{1}{2\hat\sigma}\,\frac{\partial \sigma^2}{\partial x_i}
# = \frac{\hat x_i}{m},$$
#
# so, with $\hat x_j = (x_j - \mu)/\hat\sigma$ and the quotient rule,
#
# $$\frac{\partial \hat x_j}{\partial x_i}
# = \frac{\delta_{ij} - \frac1m}{\hat\sigma} - \frac{x_j - \mu}{\hat\sigma^2}\,\frac{\hat x_i}{m}
# = \frac{1}{\hat\sigma}\Big(\delta_{ij} - \frac1m - \frac{\hat x_i\,\hat x_j}{m}\Big).$$
#
# Every entry is non-zero: each $\hat x_j$ of the channel depends on each $x_i$ of the channel,
# in every sample of the batch. The chain rule sums over all of them,
#
# $$\bar x_i = \sum_j \bar{\hat x}_j\, \frac{\partial \hat x_j}{\partial x_i}
# = \frac{1}{m}\,\frac{\gamma}{\hat\sigma}\Big(m\,\bar y_i - \sum_j \bar y_j
# - \hat x_i \sum_j \bar y_j\, \hat x_j\Big).$$
#
# The first term, $\gamma \bar y_i/\hat\sigma$, is what one would get by treating $\mu$ and
# $\hat\sigma$ as constants. The two sums are the **batch coupling**: they subtract from $\bar x$
# its component along the constant vector (through $\mu$) and along $\hat x$ (through $\sigma$).
# Two consequences can be read off and checked: per channel, $\sum_i \bar x_i = 0$ (adding a
# constant to $x$ does not change $y$) and $\sum_i \bar x_i\, \hat x_i = 0$ when $\varepsilon = 0$
# (scaling $x$ does not change $y$). Note that $\bar\gamma$ and $\bar b$ are exactly the two sums of
# the coupling term, so one pass computes all three gradients.
#
# **The hand example, backward,** with $\bar y = (1, 0, 0, 0)$:
# $\sum \bar y = 1$, $\sum \bar y\,\hat x = \hat x_0$, and $\gamma/(m\hat\sigma)$ is a fraction.

# %%
DY_HAND = np.array([[[[1.0, 0.0]]], [[[0.0, 0.0]]]])
sum_dy, sum_dy_xhat = DY_HAND.sum(), (DY_HAND * xhat_hand).sum()
dx_hand = GAMMA_HAND / (m_hand * sigma_hand) * (m_hand * DY_HAND - sum_dy - xhat_hand * sum_dy_xhat)
print(f"sum dy = {frac(sum_dy)},  sum dy*xhat = {frac(sum_dy_xhat)},  "
      f"gamma / (m sigma) = {frac(GAMMA_HAND / (m_hand * sigma_hand))}")
print(f"dx = {frac(GAMMA_HAND / (m_hand * sigma_hand))} * ({m_hand} dy - {frac(sum_dy)} - xhat * "
      f"{frac(sum_dy_xhat)}) = {frac(dx_hand)}")
print(f"without the coupling, gamma dy / sigma = {frac(GAMMA_HAND * DY_HAND / sigma_hand)}")
print(f"dgamma = sum dy*xhat = {frac(sum_dy_xhat)},  dbias = sum dy = {frac(sum_dy)}")

bn_hand(X_HAND)
compare("hand example: dx vs nn.BatchNorm2d.backward", bn_hand.backward(DY_HAND), dx_hand, **ALGEBRA)
compare("hand example: dgamma", bn_hand.weight.grad, np.array([sum_dy_xhat]), **ALGEBRA)
compare("hand example: dbias", bn_hand.bias.grad, np.array([sum_dy]), rtol=0, atol=0)
assert abs(dx_hand.sum()) < 1e-15 and abs((dx_hand * xhat_hand).sum()) < 1e-15

# %% [markdown]
# The input that received the whole upstream gradient keeps only part of it; the three others,
# which $\bar y$ never touched, receive gradient through $\mu$ and $\sigma$: the outlier 9 moves the
# opposite way to the inputs at 3, and everything sums to zero.
#
# **The same in general, checked three ways.** The function below is the derivation for any set of
# reduction axes (section 2 uses the other sets); for BatchNorm the axes are $(0, 2, 3)$ and
# $\gamma, b$ have shape $(1, C, 1, 1)$. We check it against `nn.BatchNorm2d` (float64, forward and
# backward, the parameters' gradients included), the layer against float64 central differences
# with `deconv.gradcheck`, and our $\bar x$ against `numerical_gradient` of our own forward.

# %%
def normalize(x, axes, gamma, b, eps):
    """Standardise x over `axes` (biased variance), then gamma * xhat + b.

    gamma, b broadcast against x (e.g. (1, C, 1, 1)). Returns y, and xhat and sigma (the
    latter with size 1 along `axes`) for the backward.
    """
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    sigma = np.sqrt(var + eps)
    xhat = (x - mu) / sigma
    return gamma * xhat + b, xhat, sigma


def sum_to(a, shape):
    """Sum a over the axes where `shape` is 1 (the broadcast axes of a parameter)."""
    axes = tuple(i for i, (n, k) in enumerate(zip(a.shape, shape)) if k == 1 and n != 1)
    return a.sum(axis=axes, keepdims=True)


def normalize_backward(dy, xhat, sigma, axes, gamma):
    """dx = (1/m) gamma / sigma (m dy - sum dy - xhat sum(dy xhat)), dgamma, dbias.

    Sums over `axes` (the m values of one statistic); gamma's gradient is summed over its own
    broadcast axes.
    """
    m = math.prod(xhat.shape[a] for a in axes)
    dxhat = dy * gamma
    coupling = dxhat.sum(axis=axes, keepdims=True) + xhat * (dxhat * xhat).sum(axis=axes, keepdims=True)
    dx = (m * dxhat - coupling) / (m * sigma)
    return dx, sum_to(dy * xhat, gamma.shape), sum_to(dy, gamma.shape)


BN_AXES = (0, 2, 3)
rng = np.random.default_rng(8)
N, C, H, W = 3, 2, 3, 2
x = rng.standard_normal((N, C, H, W)) * np.array([0.5, 3.0])[:, None, None] + np.array([2.0, -1.0])[:, None, None]
gamma, b = np.array([1.5, 0.7]), np.array([0.2, -0.4])
dy = rng.standard_normal(x.shape)
eps = 1e-5

y, xhat, sigma = normalize(x, BN_AXES, gamma.reshape(1, C, 1, 1), b.reshape(1, C, 1, 1), eps)
dx, dgamma, dbias = normalize_backward(dy, xhat, sigma, BN_AXES, gamma.reshape(1, C, 1, 1))

layer = with_parameters(nn.BatchNorm2d(C, eps=eps, dtype=np.float64), gamma, b)
compare("BatchNorm2d forward (train) vs ours", layer(x), y, **ALGEBRA)
compare("BatchNorm2d backward dx vs ours", layer.backward(dy), dx, **ALGEBRA)
compare("BatchNorm2d weight.grad vs ours", layer.weight.grad, dgamma.ravel(), **ALGEBRA)
compare("BatchNorm2d bias.grad vs ours", layer.bias.grad, dbias.ravel(), **ALGEBRA)

x_fd = x.copy()
numeric = numerical_gradient(
    lambda: np.vdot(normalize(x_fd, BN_AXES, gamma.reshape(1, C, 1, 1), b.reshape(1, C, 1, 1), eps)[0], dy), x_fd)
compare("our dx vs central differences", dx, numeric, **FD)
report = gradcheck(with_parameters(nn.BatchNorm2d(C, eps=eps, dtype=np.float64), gamma, b), x, verbose=True)
assert report.passed and [c.name for c in report.checks] == ["input", "weight", "bias"]

# the coupling matters: the per-element guess gamma * dy / sigma is wrong by a lot
uncoupled = dy * gamma.reshape(1, C, 1, 1) / sigma
gap = np.abs(uncoupled - dx).max() / np.abs(dx).max()
per_channel_sum = dx.sum(axis=BN_AXES)
per_channel_dot = (dx * xhat).sum(axis=BN_AXES)
print(f"max |uncoupled - dx| / max |dx| = {gap:.2f}; per-channel sum of dx {per_channel_sum}, "
      f"of dx * xhat {per_channel_dot}")
assert gap > 0.1 and np.abs(per_channel_sum).max() < 1e-12
# with eps > 0 scaling x changes y a little: sum dx * xhat = gamma * dgamma * eps / sigma^3 exactly
compare("sum of dx * xhat = gamma dgamma eps / sigma^3", per_channel_dot,
        gamma * dgamma.ravel() * eps / sigma.ravel() ** 3, rtol=1e-6, atol=1e-15)

# %% [markdown]
# **Exercise E8.2: the backward as Ioffe & Szegedy write it.** The paper backpropagates through the
# graph $x \to (\mu, \sigma^2) \to \hat x \to y$ one node at a time: $\bar{\hat x} = \gamma\bar y$;
# $\bar{\sigma^2} = \sum_i \bar{\hat x}_i (x_i - \mu) \cdot (-\tfrac12)\hat\sigma^{-3}$;
# $\bar\mu = -\sum_i \bar{\hat x}_i/\hat\sigma + \bar{\sigma^2}\cdot \tfrac1m \sum_i -2(x_i - \mu)$;
# $\bar x_i = \bar{\hat x}_i/\hat\sigma + \bar{\sigma^2}\, \tfrac{2 (x_i - \mu)}{m} + \tfrac{\bar\mu}{m}$.
# Write it for $(N, C, H, W)$ (sums over $n, h, \ell$ per channel) and let `check_exercise` compare it
# with `nn.BatchNorm2d.backward`; then show on paper that it simplifies to the formula above.
# (Solution: `batch_norm_backward_staged` in [solutions.py](solutions.py).)

# %%
def batch_norm_backward_staged(dy, x, gamma, eps):
    """dy, x (N, C, H, W), gamma (C,), eps -> dx (N, C, H, W), node by node through the graph."""
    return ...                                     # <- your code here


check_exercise("E8.2", batch_norm_backward_staged)

# %% [markdown]
# ### 1.1 Evaluation mode: a per-channel affine map
#
# In training mode the layer also keeps running estimates,
# $\text{running} \leftarrow (1-\text{momentum})\,\text{running} + \text{momentum}\cdot\text{batch}$,
# with the **unbiased** variance $\sigma^2\, m/(m-1)$. In evaluation mode those replace the batch
# statistics. They are constants, so the layer is
#
# $$y = \frac{\gamma}{\sqrt{\sigma^2_{\text{run}} + \varepsilon}}\,x
# + \Big(b - \frac{\gamma\,\mu_{\text{run}}}{\sqrt{\sigma^2_{\text{run}} + \varepsilon}}\Big),\qquad
# \bar x = \frac{\gamma}{\sqrt{\sigma^2_{\text{run}} + \varepsilon}}\,\bar y ,$$
#
# one scale and one shift per channel: no coupling, each sample's output independent of the rest
# of the batch (which is why a trained network is evaluated so). Below: one training forward with
# `momentum=1` copies the batch statistics into the buffers, and evaluation mode then differs from
# training mode by the ratio of the unbiased to the biased variance alone.

# %%
layer = with_parameters(nn.BatchNorm2d(C, eps=eps, momentum=1.0, dtype=np.float64), gamma, b)
y_train = layer(x)
m_bn = N * H * W
compare("running_mean = batch mean", layer.running_mean, x.mean(axis=BN_AXES), **ALGEBRA)
compare("running_var = unbiased batch variance", layer.running_var, x.var(axis=BN_AXES, ddof=1), **ALGEBRA)
layer.eval()
scale = gamma / np.sqrt(layer.running_var + eps)
affine = scale[:, None, None] * x + (b - scale * layer.running_mean)[:, None, None]
y_eval = layer(x)
compare("eval forward = per-channel affine map", y_eval, affine, **ALGEBRA)
compare("eval backward = scale * dy", layer.backward(dy), scale[:, None, None] * dy, **ALGEBRA)
ratio = (y_eval - b[:, None, None]) / (y_train - b[:, None, None])
print(f"m = {m_bn}: (y_eval - b) / (y_train - b) ranges over [{ratio.min():.6f}, {ratio.max():.6f}]; "
      f"sqrt((m-1)/m) = {math.sqrt((m_bn - 1) / m_bn):.6f}")
assert np.allclose(ratio, math.sqrt((m_bn - 1) / m_bn), rtol=1e-5)
layer.running_var[...] = x.var(axis=BN_AXES)            # the biased variance: eval = train
compare("eval with the biased variance = train", layer(x), y_train, **ALGEBRA)
report = gradcheck(layer, x)                            # eval mode, central differences
assert report.passed
print(report)

# %% [markdown]
# ## 2. One derivation, four layers: the axes of the statistics
#
# Nothing in section 1 used *which* axes the $m$ values came from. Changing the set of axes gives
# the other layers; for $x$ of shape $(N, C, H, W)$:
#
# | layer | statistic per | axes reduced | $m$ | $\gamma, b$ |
# |---|---|---|---|---|
# | BatchNorm | channel | $(0, 2, 3)$: $n, h, \ell$ | $N H W$ | $(C,)$ |
# | InstanceNorm | sample and channel | $(2, 3)$: $h, \ell$ | $H W$ | $(C,)$ |
# | LayerNorm over $(C, H, W)$ | sample | $(1, 2, 3)$: $c, h, \ell$ | $C H W$ | $(C, H, W)$, elementwise |
# | GroupNorm, $G$ groups | sample and group | $c$ within the group, $h, \ell$ | $\frac{C}{G} H W$ | $(C,)$ |
#
# The formulas for $\hat x$, $\bar x$, $\bar\gamma$, $\bar b$ are the same with the sums over the new
# $m$ values. GroupNorm's set is not a set of axes of $x$ but of a view of it,
# $(N, G, C/G, H, W)$ (exercise E8.3); its two extremes are: $G = C$ is InstanceNorm and $G = 1$ is
# LayerNorm over $(C, H, W)$ with a per-channel instead of an elementwise affine map. The cell
# checks `normalize` and `normalize_backward` with those axes against the `deconv` layers
# (InstanceNorm with its `affine=True`), including the two GroupNorm extremes, and each layer
# against central differences. None of these layers keeps running statistics by default (InstanceNorm
# can, as BatchNorm), so they compute the same thing in training and evaluation mode.

# %%
x = rng.standard_normal((2, 4, 3, 2)) * 2.0 + 1.0                      # (N, C, H, W)
N, C, H, W = x.shape
dy = rng.standard_normal(x.shape)
g_c, b_c = rng.uniform(0.5, 1.5, C), rng.uniform(-0.5, 0.5, C)
g_e, b_e = rng.uniform(0.5, 1.5, (C, H, W)), rng.uniform(-0.5, 0.5, (C, H, W))
per_channel = (g_c.reshape(1, C, 1, 1), b_c.reshape(1, C, 1, 1))
elementwise = (g_e[None], b_e[None])

LAYERS = {   # name: (deconv layer, our axes, our gamma and b as they broadcast)
    "BatchNorm2d": (nn.BatchNorm2d(C, eps=eps, dtype=np.float64), (0, 2, 3), per_channel),
    "InstanceNorm2d": (nn.InstanceNorm2d(C, eps=eps, affine=True, dtype=np.float64), (2, 3), per_channel),
    "LayerNorm((C, H, W))": (nn.LayerNorm((C, H, W), eps=eps, dtype=np.float64), (1, 2, 3), elementwise),
    "GroupNorm(G=C)": (nn.GroupNorm(C, C, eps=eps, dtype=np.float64), (2, 3), per_channel),
    "GroupNorm(G=1)": (nn.GroupNorm(1, C, eps=eps, dtype=np.float64), (1, 2, 3), per_channel),
}
for name, (layer, axes, (g, b_)) in LAYERS.items():
    with_parameters(layer, g.reshape(layer.weight.shape), b_.reshape(layer.bias.shape))
    y, xhat, sigma = normalize(x, axes, g, b_, eps)
    dx, dg, db = normalize_backward(dy, xhat, sigma, axes, g)
    compare(f"{name:21s} forward", layer(x), y, **ALGEBRA)
    compare(f"{name:21s} dx", layer.backward(dy), dx, **ALGEBRA)
    compare(f"{name:21s} weight.grad", layer.weight.grad, dg.reshape(layer.weight.shape), **ALGEBRA)
    compare(f"{name:21s} bias.grad", layer.bias.grad, db.reshape(layer.bias.shape), **ALGEBRA)
    layer.zero_grad()
    report = gradcheck(layer, x)
    worst = max(c.rel_error for c in report.checks)
    print(f"{name:21s} vs central differences: passed, worst relative error {worst:.1e}")
    assert report.passed

# %% [markdown]
# **Who is coupled to whom.** The Jacobian $\partial y_j / \partial x_i$ of each layer, read off its
# backward with one-hot $\bar y$ (24 backward calls for the 24 elements of a $(2, 4, 1, 3)$ input,
# elements in NCHW order), drawn black where it is non-zero. An entry is non-zero exactly when
# $x_i$ and $y_j$ share a statistic:
# BatchNorm couples the two samples within a channel, InstanceNorm nothing beyond one
# $(n, c)$ plane, GroupNorm ($G = 2$) a pair of channels of one sample, LayerNorm a whole sample;
# BatchNorm in evaluation mode is diagonal. The cell asserts that the pattern is exactly the
# predicted one.

# %%
x_small = rng.standard_normal((2, 4, 1, 3))            # W = 3: with 2 values xhat would be +-1, flat
n_idx, c_idx, _, _ = np.indices(x_small.shape).reshape(4, -1)
bn_eval = nn.BatchNorm2d(4, dtype=np.float64)
bn_eval.eval()
COUPLINGS = {   # name: (layer, which elements share a statistic)
    "BatchNorm2d (train)": (nn.BatchNorm2d(4, dtype=np.float64), c_idx[:, None] == c_idx[None]),
    "InstanceNorm2d": (nn.InstanceNorm2d(4, dtype=np.float64),
                       (c_idx[:, None] == c_idx[None]) & (n_idx[:, None] == n_idx[None])),
    "GroupNorm(2, 4)": (nn.GroupNorm(2, 4, dtype=np.float64),
                        (c_idx[:, None] // 2 == c_idx[None] // 2) & (n_idx[:, None] == n_idx[None])),
    "LayerNorm((4, 1, 3))": (nn.LayerNorm((4, 1, 3), dtype=np.float64), n_idx[:, None] == n_idx[None]),
    "BatchNorm2d (eval)": (bn_eval, np.eye(x_small.size, dtype=bool)),
}
fig, axes_ = plt.subplots(1, len(COUPLINGS), figsize=(15, 3.4))
for ax, (name, (layer, predicted)) in zip(axes_, COUPLINGS.items()):
    jacobian = np.empty((x_small.size, x_small.size))    # (outputs j, inputs i)
    for j in range(x_small.size):
        layer(x_small)
        one_hot = np.zeros(x_small.size)
        one_hot[j] = 1.0
        jacobian[j] = layer.backward(one_hot.reshape(x_small.shape)).ravel()
    coupled = np.abs(jacobian) > 1e-12
    assert np.array_equal(coupled, predicted), name
    ax.imshow(coupled, cmap="Greys")
    ax.set_title(f"{name}\n{coupled.sum()} non-zero of {coupled.size}", fontsize=9)
    ax.set_xlabel("input i (NCHW order)")
    ax.set_xticks([0, 12])
    ax.set_yticks([0, 12])
axes_[0].set_ylabel("output j: dy_j / dx_i != 0")
fig.tight_layout()
plt.show()

# %% [markdown]
# **Exercise E8.3: GroupNorm through a reshape.** For general $G$ the statistic runs over a group of
# $C/G$ consecutive channels of one sample. View $x$ as $(N, G, C/G, H, W)$, standardise over its last
# three axes, view it back as $(N, C, H, W)$ and apply the per-channel $\gamma, b$. `check_exercise`
# compares with `deconv.nn.GroupNorm` for $G = 2, 3, 6, 4$. (Solution: `group_norm_by_reshape` in
# [solutions.py](solutions.py).) The backward is `normalize_backward` on the same view, with
# $\gamma$ reshaped to $(1, G, C/G, 1, 1)$: try it.

# %%
def group_norm_by_reshape(x, G, gamma, b, eps):
    """x (N, C, H, W), G groups, gamma and b (C,), eps -> y (N, C, H, W)."""
    return ...                                     # <- your code here


check_exercise("E8.3", group_norm_by_reshape)

# %% [markdown]
# ## 3. Why DCGAN's generator needs it
#
# Radford, Metz & Chintala (2016) put BatchNorm after every transposed convolution of the generator
# but the last, and write that it "proved critical to get deep generators to begin learning,
# preventing the generator from collapsing all samples to a single point". We take the generator of
# `deconv.models.generator` (8x8 digits) at a small width and build it twice, from the script
# [checkpoints/08_dcgan_batchnorm.py](checkpoints/08_dcgan_batchnorm.py): with BatchNorm, and
# without it (the first two transposed convolutions then get a bias). Both start from DCGAN's
# initialisation, weights $\mathcal N(0, 0.02^2)$.
#
# ### 3.1 At initialisation
#
# A transposed convolution with weights of standard deviation $0.02$ multiplies the spread of its
# input by about $0.02\sqrt{\text{fan-in}}$: the number of (channel, tap) terms each output sums.
# With a fan-in of a few hundred at most, that is well below 1, so without normalization every
# layer shrinks the signal, and the gradient on its way back. BatchNorm divides each channel by
# its own spread and restores unit variance before every ReLU. The cell measures, on 512 latents,
# the standard deviation of every layer's output (BatchNorm in training mode: batch statistics),
# and the root mean square of each transposed convolution's weight gradient for the loss
# $L = \langle G(z), r\rangle$, $r$ standard normal.

# %%
script = runpy.run_path("checkpoints/08_dcgan_batchnorm.py")     # definitions only: no training
SETTINGS, generator, probe, probe_latents = (script[k] for k in ("SETTINGS", "generator", "probe", "probe_latents"))
print(SETTINGS)
z = probe_latents(SETTINGS)                                            # (512, Z, 1, 1)
r = np.random.default_rng(1).standard_normal((len(z), 1, 8, 8)).astype(np.float32)
init = {}
for name, batch_norm in (("bn", True), ("plain", False)):
    G = generator(SETTINGS.latent, SETTINGS.channels, batch_norm, rng=SETTINGS.seed + 2).train()
    h, spreads = z, []
    for layer in G:
        h = layer(h)
        spreads.append((type(layer).__name__, float(h.astype(np.float64).std())))
    G(z)                                                   # the same forward, as one network
    G.backward(r)
    grads = [float(np.sqrt(np.mean(lay.weight.grad.astype(np.float64) ** 2)))
             for lay in G if isinstance(lay, nn.ConvTranspose2d)]
    images = (h.astype(np.float64) + 1) / 2
    init[name] = dict(spreads=spreads, grads=grads, pixel_std=float(images.std(axis=0).mean()))
    print(f"\n{'with' if batch_norm else 'without'} BatchNorm: std of each layer's output")
    print("  " + "  ".join(f"{kind} {s:.4f}" for kind, s in spreads))
    print(f"  rms weight gradient of the 3 transposed convolutions: {', '.join(f'{g:.2e}' for g in grads)}")
    print(f"  samples: mean over pixels of the std across samples = {init[name]['pixel_std']:.4f}")

bn_spreads = dict(enumerate(init["bn"]["spreads"]))
plain_convs = [s for kind, s in init["plain"]["spreads"] if kind == "ConvTranspose2d"]
# BatchNorm's outputs have unit spread (gamma ~ N(1, 0.02)); without it each layer shrinks the signal
assert all(abs(s - 1) < 0.05 for kind, s in init["bn"]["spreads"] if kind == "BatchNorm2d")
assert plain_convs[0] > 3 * plain_convs[1] > 9 * plain_convs[2]
assert init["bn"]["pixel_std"] > 20 * init["plain"]["pixel_std"]
assert all(gb > 10 * gp for gb, gp in zip(init["bn"]["grads"][:2], init["plain"]["grads"][:2]))

# %% [markdown]
# Without BatchNorm the generator starts as a near constant: its samples differ from each other by
# a fraction of a grey level, and the first layer's gradient is orders of magnitude smaller than
# with it. (Adam divides each step by the running size of its gradient, which helps the plain
# generator start anyway; plain SGD would not.)
#
# ### 3.2 A short adversarial training, from committed checkpoints
#
# Training both takes longer than this notebook's budget, so the script trained them beforehand
# (same discriminator, seeds, latents and batches; Adam with $\beta_1 = 0.5$; settings printed
# above) and committed the final weights and, for every epoch, statistics of the 512 fixed latents
# (epoch 0 is the initialisation). The diversity measures: the mean over pixels of the samples'
# standard deviation, and the digit of each sample's nearest training image; from the histogram of
# those digits, the **effective number of classes** $e^{H}$ ($H$ the entropy: 10 for a uniform
# histogram, 1 if every sample looks like one digit). The nearest-neighbour labels are a fair
# judge: the cell prints its accuracy on the 360 held-out digits. The first check re-measures the
# loaded generators and must reproduce the last recorded epoch, so the file's weights are the
# trained ones.

# %%
generators, histories = script["load"]()
digits = data.digits()
train_x, train_y = digits.train.x.astype(np.float64), digits.train.y
val_x = digits.val.x.astype(np.float64)


def nearest_labels(images):
    """The label of each image's nearest training digit (Euclidean, over the 64 pixels)."""
    flat, train = images.reshape(len(images), -1), train_x.reshape(len(train_x), -1)
    distances = (flat ** 2).sum(1)[:, None] - 2 * flat @ train.T + (train ** 2).sum(1)[None]
    return train_y[np.argmin(distances, axis=1)]


def effective_classes(counts):
    p = np.asarray(counts, dtype=np.float64) / np.sum(counts)
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


val_labels = nearest_labels(val_x)
accuracy = float(np.mean(val_labels == digits.val.y))
real_classes = effective_classes(np.bincount(val_labels, minlength=10))
real_pixel_std = float(val_x.std(axis=0).mean())
print(f"1-NN accuracy on the held-out digits {accuracy:.3f}; held-out digits: pixel std {real_pixel_std:.3f}, "
      f"effective classes {real_classes:.2f}")
assert accuracy > 0.9

for name, G in generators.items():
    again = probe(G, z, train_x, train_y)
    compare(f"{name}: re-measured layer spreads = last epoch", again["layer_std"], histories[name]["layer_std"][-1],
            rtol=1e-12, atol=0)
    assert np.array_equal(again["classes"], histories[name]["classes"][-1])
    compare(f"{name}: recorded epoch 0 = this notebook's initialisation",
            histories[name]["layer_std"][0],
            np.array([s for kind, s in init[name]["spreads"] if kind == "ConvTranspose2d"]), rtol=1e-12, atol=0)

# %%
epochs = np.arange(len(histories["bn"]["pixel_std"]))
STYLE = {"bn": dict(color="C0", label="with BatchNorm"), "plain": dict(color="C3", label="without")}
fig, axs = plt.subplots(1, 4, figsize=(16, 3.6))
for name, hist in histories.items():
    for k, ls in zip(range(3), ("-", "--", ":")):
        axs[0].plot(epochs, hist["layer_std"][:, k], ls=ls, color=STYLE[name]["color"],
                    label=f"{STYLE[name]['label']}, ConvT {k + 1}")
    axs[1].plot(epochs, hist["pixel_std"], marker="o", ms=3, **STYLE[name])
    axs[2].plot(epochs, [effective_classes(c) for c in hist["classes"]], marker="o", ms=3, **STYLE[name])
    axs[3].plot(epochs[1:], hist["d_fake"][1:], marker="o", ms=3, **STYLE[name])
    axs[3].plot(epochs[1:], hist["d_real"][1:], ls="--", color=STYLE[name]["color"])
axs[0].set_yscale("log")
axs[0].set_title("std of each transposed conv's output", fontsize=10)
axs[0].legend(fontsize=6, ncol=2)
axs[1].axhline(real_pixel_std, color="gray", ls=":", label="held-out digits")
axs[1].set_title("diversity: pixel std across samples", fontsize=10)
axs[2].axhline(real_classes, color="gray", ls=":", label="held-out digits")
axs[2].set_ylim(0, 10.5)
axs[2].set_title("effective number of digit classes", fontsize=10)
axs[3].set_title("D(G(z)) (solid), D(x) (dashed), epoch means", fontsize=10)
for ax in axs:
    ax.set_xlabel("epoch")
for ax in axs[1:3]:
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

final = {name: dict(pixel_std=float(h["pixel_std"][-1]), classes=effective_classes(h["classes"][-1]),
                    grad=float(np.nanmean(h["grad_first"])))
         for name, h in histories.items()}


def mid_grey(images):
    """The share of pixels between a quarter and three quarters of full ink: the strokes' edges."""
    return float(np.mean((images > 0.25) & (images < 0.75)))


real_mid = mid_grey(val_x)
for name, f in final.items():
    samples = (generators[name](z).astype(np.float64) + 1) / 2        # eval mode, (512, 1, 8, 8)
    f["mid_grey"] = mid_grey(samples)
    f["d_fake"] = float(np.mean(histories[name]["d_fake"][2:]))
    print(f"{STYLE[name]['label']:15s} after {epochs[-1]} epochs: pixel std {f['pixel_std']:.3f} "
          f"(held-out {real_pixel_std:.3f}), effective classes {f['classes']:.2f} (held-out {real_classes:.2f}), "
          f"mid-grey pixels {100 * f['mid_grey']:.1f} % (held-out {100 * real_mid:.1f} %), "
          f"mean D(G(z)) from epoch 2 on {f['d_fake']:.3f}")

bn_h, plain_h = histories["bn"], histories["plain"]
bn_classes = np.array([effective_classes(c) for c in bn_h["classes"]])
plain_classes = np.array([effective_classes(c) for c in plain_h["classes"]])
print(f"effective classes per epoch, with BatchNorm: {bn_classes.round(1)}\n"
      f"                             without:        {plain_classes.round(1)}")
last_conv = plain_h["layer_std"][-1, 2] / bn_h["layer_std"][-1, 2]
print(f"last epochs, with BatchNorm: D(x) {bn_h['d_real'][-3:].mean():.3f}, D(G(z)) {bn_h['d_fake'][-3:].mean():.3f}; "
      f"std of the last transposed conv's output, without / with BatchNorm: {last_conv:.1f}")
assert abs(bn_h["d_real"][-3:].mean() - 0.5) < 0.1 and abs(bn_h["d_fake"][-3:].mean() - 0.5) < 0.1
assert last_conv > 1.5
# the discriminator tells the plain generator's samples apart far more easily ...
assert final["bn"]["d_fake"] > 3 * final["plain"]["d_fake"]
# ... which answers with nearly black-and-white samples, spread wider than real digits,
assert final["plain"]["mid_grey"] < 0.6 * real_mid < final["bn"]["mid_grey"]
assert final["plain"]["pixel_std"] > 1.2 * real_pixel_std
assert np.all(np.abs(bn_h["pixel_std"][2:] - real_pixel_std) < 0.1 * real_pixel_std)
# and covers the digits more slowly
assert np.all(bn_classes[1:] > plain_classes[1:])

# %%
fig, axs = plt.subplots(1, 2, figsize=(12, 5))
for ax, (name, G) in zip(axs, generators.items()):
    samples = (G(z[:80]).astype(np.float64) + 1) / 2                   # eval mode: running statistics
    framed = np.pad(samples[:, 0], ((0, 0), (1, 1), (1, 1)), constant_values=np.nan)   # (80, 10, 10)
    grid = framed.reshape(8, 10, 10, 10).transpose(0, 2, 1, 3).reshape(80, 100)
    ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1)
    counts = np.bincount(nearest_labels(samples), minlength=10)
    ax.set_title(f"{STYLE[name]['label']}: 80 samples (eval mode)\nnearest-digit counts {counts.tolist()}",
                 fontsize=9)
    ax.axis("off")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## What we found
#
# * **BatchNorm's backward** in training mode is
#   $\bar x = \frac{1}{m}\frac{\gamma}{\hat\sigma}\big(m\bar y - \sum\bar y - \hat x\sum\bar y\hat x\big)$
#   per channel: the per-element term and a coupling through the batch mean and variance that makes
#   every input gradient of a channel depend on every upstream gradient of that channel, in every
#   sample. Our derivation, the staged form of the paper (E8.2), `nn.BatchNorm2d` and float64
#   central differences agree (maxdiffs printed above); dropping the coupling is wrong by a large
#   fraction of the gradient (printed), and the coupled gradient sums to zero per channel.
# * **Evaluation mode** is a per-channel affine map with a diagonal Jacobian; it reproduces training
#   mode exactly when its variance is the *biased* batch variance, while the running estimate is the
#   unbiased one, so after one step with `momentum=1` the two modes differ by $\sqrt{(m-1)/m}$.
# * **InstanceNorm, LayerNorm and GroupNorm** are the same two functions with other reduction axes
#   (GroupNorm's on a reshaped view, with $G = C$ and $G = 1$ as InstanceNorm and LayerNorm); the
#   one-hot Jacobians show the blocks of coupled elements, exactly as predicted.
# * **DCGAN's generator.** At DCGAN's initialisation a generator without BatchNorm is a near
#   constant, all samples one grey (DCGAN's "single point"): its layer outputs shrink layer after
#   layer and its gradients are orders of magnitude below those of the generator with BatchNorm
#   (printed and asserted in 3.1). Adam's rescaled steps get it out of that start within the first
#   epochs, but in the short training of 3.2 it stays behind: the discriminator tells its samples
#   apart throughout ($D(G(z))$ far below the BatchNorm run's, which settles near one half); its
#   last transposed convolution's output grows larger than the BatchNorm run's (the ratio is
#   printed), its samples are nearly black and white blotches, with too few mid-grey edge pixels and a
#   spread across samples wider than real digits', and it covers fewer digit classes at every epoch
#   (all printed and asserted). With BatchNorm the samples' spread matches the held-out
#   digits' from the second epoch on.
#
# What differs from the papers: the derivation is exact algebra (agreement to rounding). DCGAN's
# claim concerns deep generators on large images and long training; ours has three layers, 8x8
# images and a few hundred steps, so section 3 shows the mechanism (the vanishing signal at
# initialisation) rather than reproducing the paper's failure rates.

# %% [markdown]
# ## Problems
#
# 1. In the hand example, take $\bar y = (1, 1, 1, 1)$ and then $\bar y = \hat x$. Predict $\bar x$
#    from the formula without computing (which of the two sums cancels which term?), and explain the
#    answers with the two invariances of $y$.
# 2. With $m = 1$ (a batch of one sample and a $1\times1$ image), what are $\hat x$, $y$ and $\bar x$?
#    Why do `nn.BatchNorm2d` and PyTorch refuse to train on such a batch, and why does evaluation mode
#    not mind?
# 3. Derive the backward of the *running* statistics' use in evaluation mode when $\gamma$ and $b$
#    are folded into the preceding convolution's weight and bias: write the folded weight and bias,
#    and show that the folded network's input gradient equals $\gamma\bar y/\sqrt{\sigma^2_\text{run} + \varepsilon}$
#    passed through the convolution's backward.
# 4. GroupNorm with $G = 1$ and LayerNorm over $(C, H, W)$ share their statistics but not their
#    parameters. Count the parameters of each for $C = 64$, $H = W = 32$; which one is independent of
#    the image size, and why does that matter for a fully convolutional network?
# 5. Split a batch of $2B$ samples into two halves and run BatchNorm on each half separately (as
#    the discriminator does for real and generated batches). Show that the gradient of a loss that
#    depends only on the first half's outputs is zero for the second half's inputs, and that this is
#    not so with one BatchNorm over all $2B$.

# %% [markdown]
# ## References
#
# * S. Ioffe, C. Szegedy. *Batch normalization: accelerating deep network training by reducing
#   internal covariate shift.* ICML 2015, PMLR 37, 448–456 (2015); arXiv:1502.03167.
# * J. L. Ba, J. R. Kiros, G. E. Hinton. *Layer normalization.* arXiv:1607.06450 (2016).
# * D. Ulyanov, A. Vedaldi, V. Lempitsky. *Instance normalization: the missing ingredient for fast
#   stylization.* arXiv:1607.08022 (2016).
# * Y. Wu, K. He. *Group normalization.* ECCV 2018, LNCS 11217, 3–19 (2018); arXiv:1803.08494.
# * A. Radford, L. Metz, S. Chintala. *Unsupervised representation learning with deep convolutional
#   generative adversarial networks.* ICLR 2016; arXiv:1511.06434 (2016).
# * I. Goodfellow, J. Pouget-Abadie, M. Mirza, B. Xu, D. Warde-Farley, S. Ozair, A. Courville,
#   Y. Bengio. *Generative adversarial nets.* NeurIPS 2014 (2014).
# * D. P. Kingma, J. Ba. *Adam: a method for stochastic optimization.* ICLR 2015; arXiv:1412.6980 (2015).
