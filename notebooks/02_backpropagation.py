# %% [markdown]
# # 2. Backpropagation through convolution and pooling
#
# In this notebook we derive, with pencil-and-paper index calculus, the backward pass of every
# layer a convolutional encoder-decoder is made of: the **convolution** (its gradients with respect
# to the input $x$, the weight $w$ and the bias $b$, with stride, padding, dilation and groups),
# **max pooling** (with its "switches"), **average pooling**, **max unpooling** and **bilinear
# upsampling**. For each one we write the chain rule index by index, implement the result naively
# with NumPy loops on tiny arrays, and check it three ways: against `deconv`'s hand-written Numba
# kernels, against float64 central differences, and through the *adjoint identity*
# $\langle A x, v\rangle = \langle x, A^\top v\rangle$.
#
# The method is backpropagation (Rumelhart, Hinton & Williams, 1986) applied to the weight-sharing
# layers of convolutional networks (LeCun et al., 1989; 1998). Along the way we re-derive the fact
# that Dumoulin & Visin (2016) make the centre of their convolution-arithmetic guide: the gradient
# of a convolution with respect to its input **is** a transposed convolution with the same kernel;
# and we look at the max-pooling *switches* that Zeiler & Fergus (2014) reuse to unpool.
#
# The letters are the series' notation, stated once in [NOTATION.md](NOTATION.md): stride $s$,
# padding $p$, dilation $d$, output padding $a$, kernel taps $(\alpha, \beta)$, output pixel $(u, v)$,
# input pixel $(h, \ell)$, upstream gradient $\bar y$.
#
# Every numeric claim below is a `compare(...)` line (it prints `name | exact | approx | maxdiff`
# and raises if the two arrays disagree) or an `assert`; if any of them failed, the notebook would
# stop with an error.

# %%
import numpy as np
import matplotlib.pyplot as plt

import deconv
from deconv import shapes
from deconv.gradcheck import compare, numerical_gradient

from exercise import check_exercise          # notebooks/exercise.py: marks the fill-in cells
from gif import save_gif                     # notebooks/gif.py: animations as GIF files

np.set_printoptions(precision=4, suppress=True, linewidth=110)

RESULTS = []  # (what, kind, maxdiff) of every check, plotted at the end
NAIVE, FDIFF, ADJ = "naive & identities vs kernel", "kernel vs central differences", "adjoint identity"


def check(name, actual, expected, kind, rtol, atol):
    """compare() (prints exact / approx / maxdiff, raises AssertionError on disagreement), remembered."""
    maxdiff = compare(name, actual, expected, rtol=rtol, atol=atol)
    RESULTS.append((name, kind, maxdiff))
    return maxdiff


# Two float64 evaluations of the same algebra differ only by the order of the sums: ~1e-16 relative.
ALGEBRA = dict(rtol=1e-10, atol=1e-12)
# Central differences with eps = 1e-6: truncation O(eps^2) plus rounding of L, O(|L| * 1e-16 / eps);
# our losses have |L| up to ~100, so the noise is up to ~1e-8 absolute (also on exactly-zero gradients).
FD = dict(rtol=1e-6, atol=1e-7)
EPS = 1e-6

# %% [markdown]
# ## 0. What a backward pass computes, and how we will check it
#
# A layer is a function $y = f(x)$ somewhere inside a network whose output is a scalar loss $L$.
# Backpropagation hands the layer the gradient of the loss with respect to its output,
#
# $$\bar y := \frac{\partial L}{\partial y}\qquad(\text{same shape as } y),$$
#
# and asks for the gradient with respect to its input. By the chain rule, summing over **every**
# output element $m$ that depends on input element $j$,
#
# $$\bar x_j = \frac{\partial L}{\partial x_j} = \sum_m \frac{\partial L}{\partial y_m}\,
# \frac{\partial y_m}{\partial x_j} = \sum_m \bar y_m\, J_{mj},$$
#
# a vector–Jacobian product $\bar x = J^\top \bar y$. All the layers in this notebook are **linear**
# in the argument we differentiate (the convolution in $x$ and, separately, in $w$; pooling once the
# switches are fixed; unpooling; upsampling), so $J$ is simply the matrix $A$ of the layer, and
#
# $$\text{backward} = \text{multiplication by } A^\top .$$
#
# In code, we write $\bar y$ as `dY`, $\bar x$ as `dX`, and so on. Three independent checks follow
# from this:
#
# 1. **naive vs kernel** — our loops, written straight from the derived formula, against
#    `deconv`'s Numba kernel (float64, so they may differ only by rounding, ~1e-16 relative);
# 2. **kernel vs central differences** — take a fixed random array $R$ and the scalar
#    $L(x) = \langle f(x), R\rangle = \sum_m f(x)_m R_m$. Then $\partial L/\partial y = R$ exactly, so
#    `backward(dY=R)` must be the gradient of $L$, which we estimate element by element with
#    $\big(L(x+\varepsilon e_j) - L(x-\varepsilon e_j)\big)/2\varepsilon$, $\varepsilon=10^{-6}$
#    (`deconv.gradcheck.numerical_gradient`). Its error is the truncation $O(\varepsilon^2)$ (zero here:
#    $L$ is linear in $x$) plus the rounding of the two evaluations of $L$ divided by $2\varepsilon$,
#    about $|L|\cdot 10^{-16}/10^{-6}$: up to $\sim 10^{-8}$ for our $|L| \lesssim 100$. Hence the
#    tolerance $10^{-6}$ relative plus $10^{-7}$ absolute;
# 3. **adjoint identity** — $\langle A x, v\rangle = \langle x, A^\top v\rangle$ for random $x, v$
#    (section 9).

# %% [markdown]
# ## 1. The convolution, written as one sum
#
# **Dimension letters.** $N$ batch size; $C_\text{in}$, $C_\text{out}$ input and output channels;
# $G$ the number of groups (both channel counts divisible by it); $H, W$ the input height and width;
# $k_H, k_W$ the kernel size; $s$ the stride, $p$ the zero padding, $d$ the dilation (the same in
# both directions here, to keep the formulas short — `deconv` accepts a pair for each). The output
# size per axis is (Dumoulin & Visin, 2016, chapter 5, dilated convolutions)
#
# $$H_\text{out} = \left\lfloor \frac{H + 2p - d(k_H-1) - 1}{s}\right\rfloor + 1,\qquad
# W_\text{out} = \left\lfloor \frac{W + 2p - d(k_W-1) - 1}{s}\right\rfloor + 1 .$$
#
# **Shapes (PyTorch's layout).** $x$: $(N, C_\text{in}, H, W)$; $w$: $(C_\text{out}, C_\text{in}/G, k_H, k_W)$;
# $b$: $(C_\text{out},)$; $y$: $(N, C_\text{out}, H_\text{out}, W_\text{out})$.
#
# **Groups.** Each group sees $C^g_\text{in} = C_\text{in}/G$ input channels and produces
# $C^g_\text{out} = C_\text{out}/G$ output channels. Output channel $c_o$ belongs to group
# $\gamma(c_o) = \lfloor c_o / C^g_\text{out}\rfloor$ and reads input channels
# $\gamma(c_o)\,C^g_\text{in} + c$ for $c = 0, \dots, C^g_\text{in}-1$. Write $\tilde x$ for $x$ extended
# by zeros outside $[0,H)\times[0,W)$ — that is what zero padding means. Then the whole layer is
#
# $$y[n,c_o,u,v] = b[c_o] + \sum_{c=0}^{C^g_\text{in}-1}\ \sum_{\alpha=0}^{k_H-1}\ \sum_{\beta=0}^{k_W-1}
#   w[c_o,c,\alpha,\beta]\ \tilde x\big[n,\ \gamma(c_o) C^g_\text{in} + c,\ s u + d \alpha - p,\ s v + d \beta - p\big].$$
#
# Read the spatial index $s u + d \alpha - p$ from left to right: output row $u$ starts its window at
# input row $s u - p$ (stride, then padding shifts it up), and kernel tap $\alpha$ sits $d \alpha$ rows lower
# (dilation spreads the taps). Note the $+\,\alpha$: deep-learning "convolution" is a cross-correlation;
# the kernel is not flipped. The naive implementation is that formula, one loop per index: it is
# `deconv.kernels.naive.conv2d_forward`, printed below (there the group is its own loop `g`, `o`
# and `c` count within the group, and the kernel taps are `a`, `b`). The package keeps one such loop
# nest per pass; `with deconv.kernels.use("naive"):` makes `deconv.conv2d` and friends run them.

# %%
import inspect

from deconv.kernels import naive


def conv_out(L, k, s, p, d):
    """Output length of a convolution (floor((L + 2P - d(k-1) - 1) / s) + 1)."""
    return (L + 2 * p - d * (k - 1) - 1) // s + 1


def conv2d_naive(x, w, b, s=1, p=0, d=1, groups=1):
    """naive.conv2d_forward with this notebook's arguments (the same s, p, d on both axes)."""
    H_out, W_out = conv_out(x.shape[2], w.shape[2], s, p, d), conv_out(x.shape[3], w.shape[3], s, p, d)
    return naive.conv2d_forward(x, w, b, s, s, p, p, d, d, groups, H_out, W_out)


print(inspect.getsource(naive.conv2d_forward))


# %% [markdown]
# Two configurations, both in float64. **A** is the plain case. **B** switches everything on:
# stride 2, padding 1, dilation 2, two groups, a non-square kernel ($3\times 2$, so that a swapped
# $\alpha$/$\beta$ would be caught), and sizes where the floor in $H_\text{out}$ / $W_\text{out}$ drops rows
# and columns.

# %%
rng = np.random.default_rng(0)
CONFIGS = {
    #      (N, C_in, C_out, H, W, kH, kW)    stride, padding, dilation, groups
    "A": dict(shape=(2, 2, 3, 5, 6, 3, 3), s=1, p=0, d=1, groups=1),
    "B": dict(shape=(2, 4, 6, 9, 8, 3, 2), s=2, p=1, d=2, groups=2),
}
DATA = {}
for name, cfg in CONFIGS.items():
    N, C_in, C_out, H, W, kH, kW = cfg["shape"]
    x = rng.standard_normal((N, C_in, H, W))                           # (N, C_in, H, W)
    w = rng.standard_normal((C_out, C_in // cfg["groups"], kH, kW))    # (C_out, C_in/G, kH, kW)
    b = rng.standard_normal(C_out)                                     # (C_out,)
    kw = dict(stride=cfg["s"], padding=cfg["p"], dilation=cfg["d"], groups=cfg["groups"])
    y = deconv.conv2d(x, w, b, **kw)                                   # (N, C_out, H_out, W_out)
    dY = rng.standard_normal(y.shape)      # the upstream gradient dL/dy, i.e. R in L = <y, R>
    DATA[name] = dict(x=x, w=w, b=b, kw=kw, dY=dY)
    print(f"config {name}: x {x.shape}, w {w.shape} -> y {y.shape}")
    check(f"conv2d forward {name}: naive vs deconv.conv2d",
          conv2d_naive(x, w, b, cfg["s"], cfg["p"], cfg["d"], cfg["groups"]), y, NAIVE,
          **ALGEBRA)

# %% [markdown]
# ## 2. Deriving the three gradients
#
# We are given $\bar y[n,c_o,u,v] = \partial L/\partial y[n,c_o,u,v]$, shape $(N, C_\text{out}, H_\text{out}, W_\text{out})$.
# Every parameter and every input pixel is used by many outputs (that is weight sharing), so each
# gradient is a **sum over all the outputs that used it**.
#
# ### 2.1 The bias
#
# $\partial y[n,c_o,u,v]/\partial b[c_o'] = [c_o = c_o']$ (Iverson bracket: 1 if true, else 0). Hence
#
# $$\bar b[c_o] = \sum_{n,c_o',u,v} \bar y[n,c_o',u,v]\,[c_o'=c_o] = \sum_{n=0}^{N-1}\sum_{u=0}^{H_\text{out}-1}\sum_{v=0}^{W_\text{out}-1} \bar y[n,c_o,u,v],
# \qquad \bar b:\ (C_\text{out},).$$
#
# The bias is added at every position of every image, so it collects the gradient of every position.
#
# ### 2.2 The weight
#
# $y$ is linear in $w$: $\partial y[n,c_o,u,v]/\partial w[c_o',c,\alpha,\beta] = [c_o=c_o']\ \tilde x[n, \gamma(c_o)C^g_\text{in}+c, s u+d \alpha-p, s v+d \beta-p]$. So
#
# $$\bar w[c_o,c,\alpha,\beta] = \sum_{n=0}^{N-1}\sum_{u,v} \bar y[n,c_o,u,v]\ \tilde x\big[n,\ \gamma(c_o)C^g_\text{in}+c,\ s u + d \alpha - p,\ s v + d \beta - p\big],
# \qquad \bar w:\ (C_\text{out}, C_\text{in}/G, k_H, k_W).$$
#
# Look at which index moves where. For a fixed tap $(\alpha,\beta)$ we sum over the output grid $(u,v)$,
# whose points sit $s$ apart in $\tilde x$; moving to the next tap moves the whole grid by $d$. So
# $\bar w$ is **a correlation of the (padded) input with $\bar y$ used as the kernel** — with the
# roles of stride and dilation *swapped*: $\bar y$'s taps are spaced $s$ apart (dilation $s$) and the
# result is sampled every $d$ (stride $d$), and the batch index $n$ plays the role of the summed
# channel. We will verify this literally by calling `deconv.conv2d` with `stride=d, dilation=s`.
#
# ### 2.3 The input
#
# Input pixel $x[n,c',h,\ell]$ with $c' = \gamma C^g_\text{in} + c$ (group $\gamma$) is read by output
# $(c_o,u,v)$ through tap $(\alpha,\beta)$ exactly when $s u + d \alpha - p = h$ and $s v + d \beta - p = \ell$, and only by
# the output channels $c_o$ of its group. Therefore
#
# $$\bar x[n,c',h,\ell] = \sum_{c_o \in \text{group }\gamma}\ \sum_{u,v,\alpha,\beta}\ \bar y[n,c_o,u,v]\ w[c_o,c,\alpha,\beta]\
#   [\,s u + d \alpha - p = h\,]\,[\,s v + d \beta - p = \ell\,],\qquad \bar x:\ (N, C_\text{in}, H, W).$$
#
# There are two ways to evaluate this sum, and seeing both is the point of this section.
#
# **Scatter (loop over outputs).** Each $\bar y[n,c_o,u,v]$ adds a copy of the kernel $w[c_o,c]$, dilated
# by $d$ and scaled by $\bar y[n,c_o,u,v]$, into $\bar x$ with its top-left tap at $(s u - p,\ s v - p)$
# — exactly the window that output read in the forward pass. This *is* the transposed convolution
# (Dumoulin & Visin, 2016, chapter 4): every input of `conv_transpose2d` stamps the kernel into the
# output at stride $s$, and the conv weight $(C_\text{out}, C_\text{in}/G, k_H, k_W)$ is, unchanged, a
# valid transposed-conv weight $(C'_\text{in}, C'_\text{out}/G, k_H, k_W)$ with $C'_\text{in}=C_\text{out}$.
#
# **Gather (loop over inputs).** Solve the bracket for $u$: $u = (h + p - d \alpha)/s$, which must be an
# integer in $[0, H_\text{out})$. Define $\hat y$ by inserting $s-1$ zeros between the entries of
# $\bar y$ ($\hat y[n,c_o,s u, s v] = \bar y[n,c_o,u,v]$, zero elsewhere, shape
# $(N, C_\text{out}, s(H_\text{out}-1)+1, s(W_\text{out}-1)+1)$); then the divisibility condition is
# automatic and
#
# $$\bar x[n,c',h,\ell] = \sum_{c_o\in\gamma}\sum_{\alpha,\beta} \hat y\big[n,c_o,\ h + p - d \alpha,\ \ell + p - d \beta\big]\ w[c_o,c,\alpha,\beta].$$
#
# The index now runs *backwards* in $\alpha$: this is a true convolution (not a correlation) of $\hat y$
# with the dilated kernel. Substituting $\alpha' = k_H - 1 - \alpha$ turns it into a correlation with the
# **flipped** kernel $w[c_o,c,k_H-1-\alpha', k_W-1-\beta']$ over $\hat y$ zero-padded by $d(k_H-1) - p$ rows at
# the top ($d(k_W-1)-p$ columns at the left): the "full" padding $d(k-1)$ minus the forward's
# padding. For $d = 1$ that is $k - p - 1$, the padding $p' = k - p - 1$ of the "equivalent direct
# convolution" of a transposed convolution in Dumoulin & Visin's chapter 4, where the zero
# insertion appears as the "stretched input". In words: **the input gradient is a full convolution
# of the zero-upsampled $\bar y$ with the flipped kernel**, and the channel axes of the kernel swap
# roles ($c_o$ is now summed). Rows of $x$ that no window reached (the floor in $H_\text{out}$ dropped
# them) receive exactly zero.
#
# The loop nests of these gradients are in `deconv.kernels.naive`, one per pass, printed below:
# `conv2d_input_grad` lets each input pixel gather the outputs whose windows read it (the formula
# above, with the divisibility by $s$ made explicit), `conv2d_weight_grad` sums each tap over the
# batch and the image, and `conv2d_bias_grad` sums $\bar y$. The scatter view of $\bar x$ — every
# output sends $\bar y \cdot w$ back along each tap — is the transposed convolution's forward,
# `conv_transpose2d_forward`, applied to $\bar y$ with the same weight. `dX_gather` is the
# zero-insert / pad / flip / correlate recipe, written with array slices (it assumes
# $0 \le p \le d(k-1)$, the usual case; asserted).

# %%
def conv2d_backward_naive(dY, x, w, s=1, p=0, d=1, groups=1):
    """(dX gathered, dX scattered, dW, db) from the naive loop nests; dY: (N, C_out, H_out, W_out)."""
    geometry = (s, s, p, p, d, d, groups)
    H, W = x.shape[2:]
    dX = naive.conv2d_input_grad(dY, w, *geometry, H, W)                     # (N, C_in, H, W)
    dX_scatter = naive.conv_transpose2d_forward(dY, w, None, *geometry, H, W)
    dW = naive.conv2d_weight_grad(dY, x, *geometry, *w.shape[2:])             # (C_out, C_in/G, kH, kW)
    return dX, dX_scatter, dW, naive.conv2d_bias_grad(dY)                    # ..., (C_out,)


for f in (naive.conv2d_input_grad, naive.conv2d_weight_grad, naive.conv_transpose2d_forward):
    print(inspect.getsource(f))


def dX_gather(dY, w, x_shape, s=1, p=0, d=1, groups=1):
    """Full convolution of the zero-upsampled dY with the flipped, dilated kernel."""
    N, C_out, H_out, W_out = dY.shape
    _, Cg_in, kH, kW = w.shape
    H, W = x_shape[2:]
    Cg_out = C_out // groups
    top, left = d * (kH - 1) - p, d * (kW - 1) - p      # "full" padding minus the forward's
    assert top >= 0 and left >= 0
    # 1. zero insertion + padding: a canvas big enough for every window of the H x W result
    Yp = np.zeros((N, C_out, H + d * (kH - 1), W + d * (kW - 1)))
    rows = slice(top, top + s * (H_out - 1) + 1, s)
    cols = slice(left, left + s * (W_out - 1) + 1, s)
    Yp[:, :, rows, cols] = dY                           # dY[i] lands at row top + s*i
    w_flip = w[:, :, ::-1, ::-1]                        # (C_out, C_in/G, kH, kW), flipped in space
    dX = np.zeros((N, groups * Cg_in, H, W))
    # 2. correlate with the flipped kernel: sum over output channels o of the group and taps alpha', beta'
    for g in range(groups):
        ys = Yp[:, g * Cg_out:(g + 1) * Cg_out]          # (N, C_out/G, H + d(kH-1), W + d(kW-1))
        ws = w_flip[g * Cg_out:(g + 1) * Cg_out]         # (C_out/G, C_in/G, kH, kW)
        for alpha in range(kH):
            for beta in range(kW):
                window = ys[:, :, d * alpha:d * alpha + H, d * beta:d * beta + W]       # (N, C_out/G, H, W)
                dX[:, g * Cg_in:(g + 1) * Cg_in] += np.einsum("nohw,oc->nchw", window, ws[:, :, alpha, beta])
    return dX


# %% [markdown]
# ### 2.4 By hand: the gradients of notebook 1's small convolution
#
# Notebook 1 computed, by hand, the convolution of a $3 \times 3$ integer input with the $2\times 2$
# kernel of tap numbers $w[\alpha, \beta] = 1 + 2\alpha + \beta$, stride 2, padding 1: a $2\times 2$
# output. Send back an integer $\bar y$ and follow the two formulas above on paper:
#
# * $\bar x$ by **scatter**: each $\bar y[u, v]$ stamps $\bar y[u,v]\cdot w$ with its top-left tap at
#   $(us - p, vs - p)$; the parts of a stamp that fall on the padding are dropped;
# * $\bar w$ by **correlation**: $\bar w[\alpha, \beta] = \sum_{u,v} \bar y[u,v]\, \tilde x[us + \alpha - p,\ vs + \beta - p]$,
#   the sum of the window pixels under tap $(\alpha,\beta)$, weighted by the output's gradient.
#
# The kernel is not flipped in the stamps: the printed stamps show 1 2 / 3 4 times $\bar y[u,v]$.

# %%
X_HAND = np.array([[1., 2., 1.], [3., 1., 2.], [2., 1., 3.]])       # (H, W): notebook 1's input
W_HAND = np.array([[1., 2.], [3., 4.]])                             # (k_H, k_W): tap numbers
DY_HAND = np.array([[1., -1.], [2., 1.]])                           # (H_out, W_out): upstream gradient
S_HAND, P_HAND = 2, 1

canvas = np.zeros((3 + 2 * P_HAND, 3 + 2 * P_HAND))                # dx on the padded grid, (5, 5)
for u in range(2):
    for v in range(2):
        stamp = DY_HAND[u, v] * W_HAND                              # (k_H, k_W), unflipped
        canvas[u * S_HAND:u * S_HAND + 2, v * S_HAND:v * S_HAND + 2] += stamp
        print(f"dy[{u},{v}] = {DY_HAND[u, v]:+.0f} stamps {stamp.ravel().tolist()} (row-major) at padded "
              f"({u * S_HAND}, {v * S_HAND}), i.e. input ({u * S_HAND - P_HAND}, {v * S_HAND - P_HAND})")
dx_hand = canvas[P_HAND:P_HAND + 3, P_HAND:P_HAND + 3]             # drop what fell on the padding
print(f"\nsum of the stamps on the padded grid:\n{canvas}\ndx = its 3x3 interior:\n{dx_hand}\n")

x_pad = np.pad(X_HAND, P_HAND)
dw_hand = np.zeros((2, 2))
for alpha in range(2):
    for beta in range(2):
        under = x_pad[alpha:alpha + 3:S_HAND, beta:beta + 3:S_HAND]     # the pixel under tap (alpha, beta), per output
        dw_hand[alpha, beta] = np.sum(DY_HAND * under)
        terms = " + ".join(f"{g:+.0f}*{x_:.0f}" for g, x_ in zip(DY_HAND.ravel(), under.ravel()))
        print(f"dw[{alpha},{beta}] = {terms} = {dw_hand[alpha, beta]:.0f}")

gx, gw, _ = deconv.conv2d_backward(DY_HAND[None, None], X_HAND[None, None], W_HAND[None, None],
                                   stride=S_HAND, padding=P_HAND)
check("hand example dx vs conv2d_backward", dx_hand, gx[0, 0], NAIVE, rtol=0, atol=0)
check("hand example dw vs conv2d_backward", dw_hand, gw[0, 0], NAIVE, rtol=0, atol=0)

# %% [markdown]
# **Exercise E2.1: the gather form of $\bar x$.** Write $\bar x$ the other way round, one input
# pixel at a time, for one channel, stride $s$, no padding, no dilation: input pixel $(h, \ell)$
# collects $\bar y[u, v]\, w[\alpha, \beta]$ from every output $(u, v)$ and tap $(\alpha, \beta)$ with
# $us + \alpha = h$ and $vs + \beta = \ell$. Solve for $u$ and $v$; not every tap gives an integer
# (that is the zero insertion of the derivation). `check_exercise` compares with
# `deconv.conv2d_backward` on six integer cases. (Solution: `conv_input_grad_gather` in
# [solutions.py](solutions.py).)

# %%
def conv_input_grad_gather(dy, w, s, x_shape):
    """dy (H_out, W_out), w (k, k), stride s, x_shape (H, W) -> dx (H, W), by gathering."""
    return ...                                     # <- your code here


check_exercise("E2.1", conv_input_grad_gather)


# %% [markdown]
# ## 3. Checking the conv gradients
#
# For each configuration: the naive loop nests (gather and scatter) and our gather recipe against
# `deconv.conv2d_backward`, then the kernel against central differences of $L(x, w, b) = \langle \mathrm{conv2d}(x, w, b), \bar y\rangle$.

# %%
for name, D in DATA.items():
    x, w, b, kw, dY = D["x"], D["w"], D["b"], D["kw"], D["dY"]
    s, p, d, groups = kw["stride"], kw["padding"], kw["dilation"], kw["groups"]
    dX, dW, db = deconv.conv2d_backward(dY, x, w, **kw)             # the kernel
    nX, sX, nW, nb = conv2d_backward_naive(dY, x, w, s, p, d, groups)  # the loop nests
    check(f"conv {name} dX: gather loop vs kernel", nX, dX, NAIVE, **ALGEBRA)
    check(f"conv {name} dX: scatter loop vs kernel", sX, dX, NAIVE, **ALGEBRA)
    check(f"conv {name} dX: gather (flipped kernel) vs kernel",
          dX_gather(dY, w, x.shape, s, p, d, groups), dX, NAIVE, **ALGEBRA)
    check(f"conv {name} dW: loop vs kernel", nW, dW, NAIVE, **ALGEBRA)
    check(f"conv {name} db: sum vs kernel", nb, db, NAIVE, **ALGEBRA)

    def loss():                                    # L = <conv2d(x, w, b), dY>, reads x, w, b in place
        return float(np.sum(deconv.conv2d(x, w, b, **kw) * dY))

    check(f"conv {name} dX: kernel vs central differences", dX, numerical_gradient(loss, x, EPS),
          FDIFF, **FD)
    check(f"conv {name} dW: kernel vs central differences", dW, numerical_gradient(loss, w, EPS),
          FDIFF, **FD)
    check(f"conv {name} db: kernel vs central differences", db, numerical_gradient(loss, b, EPS),
          FDIFF, **FD)
    D.update(dX=dX, dW=dW, db=db)

# %% [markdown]
# ### 3.1 The two claims of section 2, checked with the library's own ops
#
# *$\bar x$ is the transposed convolution.* `conv_transpose2d(dY, w, stride=s, padding=p,
# dilation=d, groups=G)` with the *same* weight array. One subtlety: a strided convolution maps
# several input sizes to the same output size (here $W = 8$ and $W = 7$ both give $W_\text{out}=4$
# in config B), so the transposed conv needs `output_padding` to know which one to produce;
# `deconv.shapes.inverse_output_padding` computes it (it is Dumoulin & Visin's
# $a = (i + 2p - k) \bmod s$, generalised to dilation).
#
# *$\bar w$ is a correlation of $x$ with $\bar y$, stride and dilation swapped.* Put the batch axis
# where the channels were: $x^\top$ = `x.transpose(1, 0, 2, 3)` is $(C_\text{in}, N, H, W)$ and
# $\bar y^\top$ is $(C_\text{out}, N, H_\text{out}, W_\text{out})$. Then
# `conv2d(x^T, dY^T, stride=d, padding=p, dilation=s)[c, c_o, alpha, beta]`
# $= \sum_{n,u,v} \bar y[n,c_o,u,v]\,\tilde x[n,c, d \alpha + s u - p, d \beta + s v - p]$, which is
# $\bar w[c_o,c,\alpha,\beta]$ once transposed back, one group at a time. Its output can be a little larger
# than $k_H\times k_W$ (extra taps that no window of the forward used); we keep the first $k_H \times k_W$.

# %%
for name, D in DATA.items():
    x, w, kw, dY = D["x"], D["w"], D["kw"], D["dY"]
    s, p, d, groups = kw["stride"], kw["padding"], kw["dilation"], kw["groups"]
    kH, kW = w.shape[2:]
    out_pad = tuple(shapes.inverse_output_padding(L, k, s, p, d) for L, k in zip(x.shape[2:], (kH, kW)))
    dX_t = deconv.conv_transpose2d(dY, w, stride=s, padding=p, output_padding=out_pad,
                                   groups=groups, dilation=d)                # (N, C_in, H, W)
    print(f"config {name}: output_padding = {out_pad}")
    if name == "B":                                                         # the text's W = 8 and W = 7
        assert x.shape[3] == 8 and conv_out(8, kW, s, p, d) == conv_out(7, kW, s, p, d) == 4
    check(f"conv {name} dX == conv_transpose2d(dY, w)", dX_t, D["dX"], NAIVE, **ALGEBRA)

    Cg_in, Cg_out = x.shape[1] // groups, w.shape[0] // groups
    dW_c = np.zeros_like(w)
    for g in range(groups):
        xt = x[:, g * Cg_in:(g + 1) * Cg_in].transpose(1, 0, 2, 3)        # (C_in/G, N, H, W)
        yt = dY[:, g * Cg_out:(g + 1) * Cg_out].transpose(1, 0, 2, 3)     # (C_out/G, N, H_out, W_out)
        r = deconv.conv2d(xt, yt, stride=d, padding=p, dilation=s)        # (C_in/G, C_out/G, >=kH, >=kW)
        dW_c[g * Cg_out:(g + 1) * Cg_out] = r[:, :, :kH, :kW].transpose(1, 0, 2, 3)
    check(f"conv {name} dW == conv2d(x^T, dY^T, stride=d, dilation=s)", dW_c, D["dW"],
          NAIVE, **ALGEBRA)

# %% [markdown]
# ### 3.2 The transposed convolution's gradients, the weight's derived
#
# Notebooks 4 and 6 *train* transposed convolutions, so their weight gradient is needed as much as
# the convolution's. Derive it the same way, index by index. The transposed convolution (notebook
# 3, Section 1) has input $x$: $(N, C_\text{in}, H, W)$, weight $w$: $(C_\text{in}, C_\text{out}/G, k_H, k_W)$
# (*input* channels first), output $y$: $(N, C_\text{out}, H_\text{out}, W_\text{out})$ with
# $H_\text{out} = (H-1)s - 2p + d(k_H-1) + a + 1$. Input pixel $(h, \ell)$ of channel $c$ (group
# $\gamma(c)$) writes through tap $(\alpha, \beta)$ to output pixel $(hs - p + \alpha d,\ \ell s - p + \beta d)$
# of each output channel $\gamma(c)\, C^g_\text{out} + c_o$ of its group, $0 \le c_o < C^g_\text{out}$:
#
# $$y[n,\ \gamma(c) C^g_\text{out} + c_o,\ u, v] = b[\cdot] + \sum_{c \in \gamma}\sum_{h,\ell,\alpha,\beta} x[n,c,h,\ell]\ w[c,c_o,\alpha,\beta]\
#   [\,hs - p + \alpha d = u\,]\,[\,\ell s - p + \beta d = v\,], \qquad 0 \le u < H_\text{out},\ 0 \le v < W_\text{out}.$$
#
# **The weight.** $y$ is linear in $w$, and $w[c, c_o, \alpha, \beta]$ appears once for each input
# pixel $(h, \ell)$ of channel $c$, at the output pixel that pixel writes to through that tap:
#
# $$\frac{\partial y[n, \gamma(c) C^g_\text{out} + c_o, u, v]}{\partial w[c, c_o, \alpha, \beta]}
#   = \sum_{h,\ell} x[n,c,h,\ell]\,[\,hs - p + \alpha d = u\,]\,[\,\ell s - p + \beta d = v\,],$$
#
# and summing $\bar y \cdot \partial y/\partial w$ over $n, u, v$ leaves, for each $(h, \ell)$, the one
# output pixel the bracket selects:
#
# $$\bar w[c, c_o, \alpha, \beta] = \sum_{n=0}^{N-1}\sum_{h=0}^{H-1}\sum_{\ell=0}^{W-1} x[n,c,h,\ell]\
#   \tilde{\bar y}\big[n,\ \gamma(c) C^g_\text{out} + c_o,\ hs - p + \alpha d,\ \ell s - p + \beta d\big],
#   \qquad \bar w:\ (C_\text{in}, C_\text{out}/G, k_H, k_W),$$
#
# where $\tilde{\bar y}$ is $\bar y$ extended by zeros: a tap whose target fell into the $p$ rows that
# the transposed convolution crops receives nothing from it. (The $a$ extra rows are not cropped:
# they are real output rows and do pass gradient back.)
#
# **What it is.** Compare with $\bar w$ of the convolution (Section 2.2): there the sum ran over the
# *output* grid, reading the padded *input* at $su + d\alpha - p$; here it runs over the *input* grid
# $(h, \ell)$, reading the padded *upstream gradient* at $hs + d\alpha - p$. It is the same formula with
# the roles of $x$ and $\bar y$ exchanged: $\bar y$ is read like a convolution's input (stride $s$,
# padding $p$, dilation $d$) and $x$ weights it like a convolution's upstream gradient. So
#
# $$\bar w_{\text{conv\_transpose}}(x, \bar y) = \bar w_{\text{conv}}(\text{input} = \bar y,\ \text{upstream gradient} = x),$$
#
# with the same weight layout, because the transposed weight $(C_\text{in}, C_\text{out}/G)$ read as a
# convolution weight maps $C_\text{out}$ channels to $C_\text{in}$. The one-line reason: the
# transposed convolution is the adjoint of the convolution, $\langle \bar y, T_w x\rangle = \langle
# \mathrm{conv}_w(\bar y), x\rangle$ for every $w$, and differentiating both sides in $w$ gives the
# identity. Its input gradient is, in the same way, the convolution $\mathrm{conv}_w(\bar y)$ (notebook
# 1, Section 6), and its bias gradient is again the sum of $\bar y$.
#
# Below: the formula as a loop nest (one sum per index, over NumPy's batch axis), checked against
# `deconv.conv_transpose2d_backward`, against the convolution's weight gradient with the roles
# exchanged, and against float64 central differences, on a configuration with stride, padding,
# dilation, output padding, two groups and a non-square kernel.

# %%
def conv_transpose2d_weight_grad_naive(dY, x, k_hw, s, p, d, groups):
    """The formula above: dW[c, c_o, alpha, beta] = sum_{n,h,l} x[n,c,h,l] dY~[n, g*Cg_out + c_o, hs-p+alpha d, ls-p+beta d].

    dY (N, C_out, H_out, W_out), x (N, C_in, H, W) -> dW (C_in, C_out/G, kH, kW).
    """
    N, C_in, H, W = x.shape
    _, C_out, H_out, W_out = dY.shape
    Cg_in, Cg_out = C_in // groups, C_out // groups
    kH, kW = k_hw
    dW = np.zeros((C_in, Cg_out, kH, kW))
    for c in range(C_in):
        g = c // Cg_in                                              # group of input channel c
        for c_o in range(Cg_out):
            for alpha in range(kH):
                for beta in range(kW):
                    for h in range(H):
                        for l in range(W):
                            u, v = h * s - p + alpha * d, l * s - p + beta * d   # where (h, l) wrote
                            if 0 <= u < H_out and 0 <= v < W_out:                 # not cropped away
                                dW[c, c_o, alpha, beta] += x[:, c, h, l] @ dY[:, g * Cg_out + c_o, u, v]
    return dW


rng = np.random.default_rng(7)
T = dict(stride=2, padding=1, output_padding=1, dilation=2, groups=2)
xt_ = rng.standard_normal((2, 4, 4, 5))                             # (N, C_in, H, W)
wt_ = rng.standard_normal((4, 3, 3, 2))                             # (C_in, C_out/G, kH, kW)
bt_ = rng.standard_normal(6)                                        # (C_out,)
yt_ = deconv.conv_transpose2d(xt_, wt_, bt_, **T)                   # (N, C_out, H_out, W_out)
dYt = rng.standard_normal(yt_.shape)
print(f"transposed conv: x {xt_.shape}, w {wt_.shape} -> y {yt_.shape}")
assert yt_.shape[2:] == ((4 - 1) * 2 - 2 + 2 * (3 - 1) + 1 + 1, (5 - 1) * 2 - 2 + 2 * (2 - 1) + 1 + 1)

gx_t, gw_t, gb_t = deconv.conv_transpose2d_backward(dYt, xt_, wt_, **T)   # (N,C_in,H,W), w.shape, (C_out,)
check("conv_transpose2d dW: loop nest vs kernel",
      conv_transpose2d_weight_grad_naive(dYt, xt_, (3, 2), 2, 1, 2, 2), gw_t, NAIVE, **ALGEBRA)
conv_args = dict(stride=2, padding=1, dilation=2, groups=2)         # the convolution it is the adjoint of
check("conv_transpose2d dW == conv2d_backward(dY=x, x=dY)'s dW",
      deconv.conv2d_backward(xt_, dYt, wt_, **conv_args)[1], gw_t, NAIVE, **ALGEBRA)
check("conv_transpose2d dX == conv2d(dY, w)", deconv.conv2d(dYt, wt_, **conv_args), gx_t, NAIVE, **ALGEBRA)
check("conv_transpose2d db == sum of dY", dYt.sum(axis=(0, 2, 3)), gb_t, NAIVE, **ALGEBRA)


def loss_t():                                   # L = <conv_transpose2d(x, w, b), dY>, reads x, w, b in place
    return float(np.sum(deconv.conv_transpose2d(xt_, wt_, bt_, **T) * dYt))


check("conv_transpose2d dW: kernel vs central differences", gw_t, numerical_gradient(loss_t, wt_, EPS),
      FDIFF, **FD)
check("conv_transpose2d dX: kernel vs central differences", gx_t, numerical_gradient(loss_t, xt_, EPS),
      FDIFF, **FD)
check("conv_transpose2d db: kernel vs central differences", gb_t, numerical_gradient(loss_t, bt_, EPS),
      FDIFF, **FD)


# %% [markdown]
# ## 4. What the input gradient looks like
#
# Send back a gradient that is 1 at a single output position and 0 elsewhere (a one-hot $\bar y$).
# The scatter view predicts that $\bar x$ is the kernel itself — *not* flipped — stamped at the
# window that output read; its support is the output's **receptive field**. We use a $3\times3$
# kernel holding $1, \dots, 9$ so that the orientation is visible, one channel, and:
#
# * (a) stride 1: the kernel appears as it is, at the window of the chosen output;
# * (b) dilation 2: the same nine taps, spread two pixels apart;
# * (c) two stacked $3\times 3$ convolutions with stride 2 and padding 1 (all-ones kernels): backpropagating the
#   one-hot through both gives the receptive field of a deeper unit, $3 + 2\cdot(3-1) = 7$ pixels wide,
#   with weights that count the paths from each input pixel to the output;
# * (d) an all-ones $\bar y$ through a $3\times3$, stride-2 convolution with an all-ones kernel: windows
#   overlap by one row/column, so some pixels are counted once, some twice and some four times — the
#   uneven coverage that makes strided transposed convolutions produce checkerboard artifacts
#   (notebook 4; Odena, Dumoulin & Olah, 2016).

# %%
k9 = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)       # (C_out=1, C_in=1, 3, 3), values 1..9
ones3 = np.ones((1, 1, 3, 3))


def one_hot(shape, i, j):
    e = np.zeros(shape)
    e[0, 0, i, j] = 1.0
    return e


x9 = np.zeros((1, 1, 9, 9))
ga = deconv.conv2d_backward(one_hot((1, 1, 7, 7), 2, 4), x9, k9)[0][0, 0]                 # stride 1
gb = deconv.conv2d_backward(one_hot((1, 1, 5, 5), 2, 2), x9, k9, dilation=2)[0][0, 0]     # dilation 2
assert np.array_equal(ga[2:5, 4:7], k9[0, 0]) and ga.sum() == 45      # the kernel, unflipped, at (2, 4)
assert np.array_equal(gb[2:7:2, 2:7:2], k9[0, 0]) and gb.sum() == 45    # taps 2 apart

x17, h9 = np.zeros((1, 1, 17, 17)), np.zeros((1, 1, 9, 9))
dh = deconv.conv2d_backward(one_hot((1, 1, 5, 5), 2, 2), h9, ones3, stride=2, padding=1)[0]  # (1,1,9,9)
gc = deconv.conv2d_backward(dh, x17, ones3, stride=2, padding=1)[0][0, 0]                     # (17, 17)
rows, cols = np.nonzero(gc)
assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (7, 7) and gc.sum() == 81

gd = deconv.conv2d_backward(np.ones((1, 1, 5, 5)), x9, ones3, stride=2, padding=1)[0][0, 0]  # (9, 9)
assert set(np.unique(gd)) == {1.0, 2.0, 4.0} and gd[1, 1] == 4 and gd[0, 0] == 1

fig, axes = plt.subplots(1, 4, figsize=(11, 3.1))
panels = [(ga, "(a) one-hot dY at (2, 4)\nstride 1, kernel 1..9"),
          (gb, "(b) one-hot dY at (2, 2)\ndilation 2, kernel 1..9"),
          (gc, "(c) two 3x3 stride-2 convs\nreceptive field 7x7"),
          (gd, "(d) all-ones dY, 3x3 stride 2\noverlap counts 1, 2, 4")]
for ax, (img, title) in zip(axes, panels):
    im = ax.imshow(img, cmap="viridis")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("input column v")
    fig.colorbar(im, ax=ax, fraction=0.046)
axes[0].set_ylabel("input row h")
fig.suptitle("dX = conv2d_backward(dY, ...)[0]: each output sends its gradient back through its window",
             fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 5. Max pooling and its switches
#
# **Forward.** One channel plane at a time (pooling never mixes channels). With kernel $k$, stride
# $s$, padding $p$ (padding counts as $-\infty$, so it is never chosen) and window
# $\mathcal W(u,v) = \{(s u - p + \alpha,\ s v - p + \beta) : 0\le \alpha,\beta<k\}$ clipped to the image,
#
# $$y[n,c,u,v] = \max_{(h,\ell)\in\mathcal W(u,v)} x[n,c,h,\ell],\qquad
#   \sigma[n,c,u,v] = h^\star W + \ell^\star,$$
#
# where $(h^\star, \ell^\star)$ is the position of the maximum (the first one in row-major window order
# if several tie). $\sigma$ — the **switches** (Zeiler & Fergus, 2014) — is an int64 array of shape
# $(N, C, H_\text{out}, W_\text{out})$ holding flat positions inside each $H\times W$ input plane,
# exactly what PyTorch's `return_indices=True` gives.
#
# **Derivative.** Away from ties, a small change of $x$ does not change which element wins, so
# locally $y[n,c,u,v] = x[n,c].\text{flat}[\sigma[n,c,u,v]]$ — a *selection*, linear in $x$:
#
# $$\frac{\partial y[n,c,u,v]}{\partial x[n,c].\text{flat}[j]} = [\,j = \sigma[n,c,u,v]\,]
# \quad\Longrightarrow\quad
# \bar x[n,c].\text{flat}[j] = \sum_{u,v:\ \sigma[n,c,u,v] = j} \bar y[n,c,u,v].$$
#
# Each output's gradient is **routed to its switch**; all other pixels of the window get zero. When
# windows overlap ($s < k$) one pixel can be the maximum of several windows and then collects the
# sum. (At an exact tie the max is not differentiable; the convention gives the whole gradient to
# the chosen element.) The backward needs only $\sigma$ and the input shape — not $x$.

# %%
def max_pool2d_naive(x, k, s, p):
    N, C, H, W = x.shape
    H_out, W_out = conv_out(H, k, s, p, 1), conv_out(W, k, s, p, 1)
    y = np.zeros((N, C, H_out, W_out))                     # (N, C, H_out, W_out)
    idx = np.zeros((N, C, H_out, W_out), dtype=np.int64)   # switches: flat positions h*W + v
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    best, arg = -np.inf, -1
                    for alpha in range(k):                     # row-major window order:
                        for beta in range(k):                 # the first maximum wins ties
                            h, v = s * i - p + alpha, s * j - p + beta
                            if 0 <= h < H and 0 <= v < W and x[n, c, h, v] > best:
                                best, arg = x[n, c, h, v], h * W + v
                    y[n, c, i, j], idx[n, c, i, j] = best, arg
    return y, idx


def max_pool2d_backward_naive(dY, idx, x_shape):
    dX = np.zeros(x_shape)
    for n, c, i, j in np.ndindex(*dY.shape):
        h, v = divmod(idx[n, c, i, j], x_shape[3])
        dX[n, c, h, v] += dY[n, c, i, j]                   # route to the switch (sum on overlap)
    return dX


# %% [markdown]
# Overlapping windows ($k=3$, $s=2$, $p=1$) on a random input. For the central differences to be
# meaningful, no perturbation of $\pm\varepsilon$ may change a switch: we assert that all input
# values are more than $2\varepsilon$ apart.

# %%
rng = np.random.default_rng(1)
xp = rng.standard_normal((2, 3, 7, 7))                     # (N, C, H, W)
assert np.min(np.diff(np.sort(xp.ravel()))) > 2 * EPS      # no near-ties: switches are stable
pool = dict(kernel_size=3, stride=2, padding=1)
yp, ip = deconv.max_pool2d(xp, **pool)                     # (2, 3, 4, 4) values, int64 switches
ny, ni = max_pool2d_naive(xp, 3, 2, 1)
assert ip.dtype == np.int64
check("max_pool2d forward: naive vs kernel (values)", ny, yp, NAIVE, rtol=0, atol=0)
check("max_pool2d forward: naive vs kernel (switches)", ni, ip, NAIVE, rtol=0, atol=0)

dYp = rng.standard_normal(yp.shape)
dXp = deconv.max_pool2d_backward(dYp, ip, xp.shape)        # (2, 3, 7, 7)
check("max_pool2d dX: naive vs kernel", max_pool2d_backward_naive(dYp, ip, xp.shape), dXp,
      NAIVE, **ALGEBRA)
check("max_pool2d dX: kernel vs central differences", dXp,
      numerical_gradient(lambda: float(np.sum(deconv.max_pool2d(xp, **pool)[0] * dYp)), xp, EPS),
      FDIFF, **FD)
shared = np.array([np.bincount(ip[n, c].ravel()).max() for n in range(2) for c in range(3)])
print("largest number of windows sharing one switch, per plane:", shared)
assert shared.max() >= 2          # overlap really happened, and the scatter-add summed it

# %% [markdown]
# **Exercise E2.2: max-pool backward from the switches.** Given $\bar y$ $(N, C, H_\text{out},
# W_\text{out})$, the int64 switches (flat positions $h W + \ell$ in each $H \times W$ plane) and the
# input shape, return $\bar x$: route each $\bar y$ to its switch, *adding* where windows share one
# (a plain fancy-index assignment `dx[idx] = dy` would keep only one of them — try it). Checked
# against `deconv.max_pool2d_backward`, overlapping windows included. (Solution:
# `max_pool_backward_from_switches` in [solutions.py](solutions.py).)

# %%
def max_pool_backward_from_switches(dy, switches, x_shape):
    """dy, switches (N, C, H_out, W_out), x_shape (N, C, H, W) -> dx (N, C, H, W)."""
    return ...                                     # <- your code here


check_exercise("E2.2", max_pool_backward_from_switches)

# %% [markdown]
# ### The switches as a picture
#
# A $48\times48$ grey crop of scikit-learn's temple photograph (`deconv.data.sample_photos`, the
# eaves of the roof), max-pooled with non-overlapping $4\times4$ windows. The pooled image (b) keeps
# *what* the maximum was; the switches keep *where* it was (a, c) — the information that pooling
# throws away and that the deconvnet of Zeiler & Fergus (2014) records to put activity back in
# place. The gradient of $\langle \text{pooled}, \bar y\rangle$ (d) is zero everywhere except at the
# switches, where it equals $\bar y$: the routing of this section made visible. With $\bar y$ = the
# pooled values it is, bit for bit, the max-unpooled image of section 7. (The photograph's values are
# multiples of $1/765$, so flat regions hold exact ties; there the first maximum in row-major order
# is the switch.)

# %%
photo = deconv.data.sample_photos(np.float64)[0].mean(axis=0)   # (427, 640) grey temple, in [0, 1]
assert np.allclose(photo * 765, np.round(photo * 765), rtol=0, atol=1e-9)   # multiples of 1/765: ties
S, K = 48, 4
crop = photo[104:104 + S, 150:150 + S][None, None]              # (1, 1, 48, 48)
pooled, sw = deconv.max_pool2d(crop, K)                         # (1, 1, 12, 12) and int64 switches
g_crop = deconv.max_pool2d_backward(pooled, sw, crop.shape)     # (1, 1, 48, 48)
check("max_pool2d_backward(pooled) == max_unpool2d(pooled) on the photo", g_crop,
      deconv.max_unpool2d(pooled, sw, K), NAIVE, rtol=0, atol=0)
sh, sv = np.divmod(sw[0, 0], S)                                 # switch rows / columns in the crop
assert np.all(sh // K == np.arange(S // K)[:, None])           # each switch lies in its own window
assert np.all(sv // K == np.arange(S // K)[None, :])
assert np.array_equal(crop[0, 0][sh, sv], pooled[0, 0])         # and holds the window's maximum

fig, axes = plt.subplots(1, 4, figsize=(11, 3.4))
axes[0].imshow(crop[0, 0], cmap="gray", vmin=0, vmax=1)
axes[0].scatter(sv.ravel(), sh.ravel(), s=6, c="red")
for t in np.arange(K, S, K) - 0.5:                              # the pooling windows
    axes[0].axhline(t, color="yellow", lw=0.3)
    axes[0].axvline(t, color="yellow", lw=0.3)
axes[0].set_title("(a) input 48x48, 4x4 windows;\nswitches (argmax) in red", fontsize=9)
axes[1].imshow(pooled[0, 0], cmap="gray", vmin=0, vmax=1)
axes[1].set_title("(b) max_pool2d output 12x12:\nwhat the maxima were", fontsize=9)
axes[2].imshow(pooled[0, 0], cmap="gray", vmin=0, vmax=1, alpha=0.45)
ii, jj = np.mgrid[0:S // K, 0:S // K]
axes[2].quiver(jj, ii, (sv % K - (K - 1) / 2) / K, (sh % K - (K - 1) / 2) / K, color="red",
               angles="xy", scale_units="xy", scale=1, width=0.006)
axes[2].set_xlim(-0.5, S // K - 0.5)
axes[2].set_ylim(S // K - 0.5, -0.5)
axes[2].set_title("(c) switches: arrow from window\ncentre to where the max was", fontsize=9)
axes[3].imshow(g_crop[0, 0], cmap="gray", vmin=0, vmax=1)
axes[3].set_title("(d) max_pool2d_backward(dY=pooled)\n= max_unpool2d(pooled, switches)", fontsize=9)
for ax in axes:
    ax.set_xlabel("column")
axes[0].set_ylabel("row")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 6. Average pooling
#
# **Forward.** Same windows as max pooling, but padding now counts as *zeros*, and the sum is divided
# by a divisor $D(u,v)$:
#
# $$y[n,c,u,v] = \frac{1}{D(u,v)} \sum_{(h,\ell)\in\mathcal W(u,v)\cap\,[0,H)\times[0,W)} x[n,c,h,\ell].$$
#
# With `count_include_pad=True` (PyTorch's default), $D$ is the window's area including the padded
# cells, $k^2$ here (the area is clipped at $H+p$, which only matters with `ceil_mode=True`). With
# `count_include_pad=False`, $D(u,v) = |\mathcal W(u,v) \cap \text{image}|$, the number of real
# pixels; border windows then average over fewer values.
#
# **Derivative.** $y$ is linear in $x$ with coefficient $1/D(u,v)$ for each pixel of the window, so
#
# $$\bar x[n,c,h,\ell] = \sum_{(u,v):\ (h,\ell)\in\mathcal W(u,v)} \frac{\bar y[n,c,u,v]}{D(u,v)} .$$
#
# Each output **spreads** its gradient uniformly, $\bar y/D$, over the real pixels of its window (the
# padded cells would receive their share too, but they are not inputs, so it is dropped — which is
# why, with `count_include_pad=True`, a border window passes back less than $\bar y$ in total).

# %%
def avg_pool2d_naive(x, k, s, p, count_include_pad):
    """Returns the output and the backward as a closure, both from one list of windows."""
    N, C, H, W = x.shape
    H_out, W_out = conv_out(H, k, s, p, 1), conv_out(W, k, s, p, 1)
    windows = {}
    for i in range(H_out):
        for j in range(W_out):
            h0, v0 = s * i - p, s * j - p                                   # window origin (may be < 0)
            rs, cs = slice(max(h0, 0), min(h0 + k, H)), slice(max(v0, 0), min(v0 + k, W))
            real = (rs.stop - rs.start) * (cs.stop - cs.start)             # pixels inside the image
            area = (min(h0 + k, H + p) - h0) * (min(v0 + k, W + p) - v0)   # incl. padding (k*k here)
            windows[i, j] = (rs, cs, area if count_include_pad else real)
    y = np.zeros((N, C, H_out, W_out))
    for (i, j), (rs, cs, D) in windows.items():
        y[:, :, i, j] = x[:, :, rs, cs].sum(axis=(2, 3)) / D

    def backward(dY):
        dX = np.zeros(x.shape)
        for (i, j), (rs, cs, D) in windows.items():
            dX[:, :, rs, cs] += dY[:, :, i, j][:, :, None, None] / D     # spread dY / D
        return dX
    return y, backward


rng = np.random.default_rng(2)
xa = rng.standard_normal((2, 3, 7, 7))
for include in (True, False):
    opts = dict(kernel_size=3, stride=2, padding=1, count_include_pad=include)
    ya = deconv.avg_pool2d(xa, **opts)                                      # (2, 3, 4, 4)
    ny, nback = avg_pool2d_naive(xa, 3, 2, 1, include)
    check(f"avg_pool2d (count_include_pad={include}) forward: naive vs kernel", ny, ya,
          NAIVE, **ALGEBRA)
    dYa = rng.standard_normal(ya.shape)
    dXa = deconv.avg_pool2d_backward(dYa, xa.shape, **opts)                 # (2, 3, 7, 7)
    check(f"avg_pool2d (count_include_pad={include}) dX: naive vs kernel", nback(dYa), dXa,
          NAIVE, **ALGEBRA)
    check(f"avg_pool2d (count_include_pad={include}) dX: kernel vs central differences", dXa,
          numerical_gradient(lambda: float(np.sum(deconv.avg_pool2d(xa, **opts) * dYa)), xa, EPS),
          FDIFF, **FD)
    # What one output passes back in total: 1 for an interior window, and for the corner window
    # (4 real pixels of 9) 4/9 with count_include_pad=True but 1 with False.
    corner = deconv.avg_pool2d_backward(one_hot((1, 1, 4, 4), 0, 0), (1, 1, 7, 7), **opts)
    print(f"count_include_pad={include}: gradient passed back by the corner window = {corner.sum():.4f}")
    assert np.isclose(corner.sum(), 4 / 9 if include else 1.0, rtol=1e-12)

# %% [markdown]
# ## 7. Max unpooling: the transpose of the switch selection
#
# **Forward.** Max unpooling (Zeiler & Fergus, 2014) takes pooled-size values $z$ and the switches
# $\sigma$ of a max pooling and puts each value back where its maximum came from, zeros elsewhere:
#
# $$U[n,c].\text{flat}[\sigma[n,c,u,v]] = z[n,c,u,v],\qquad U = 0 \text{ elsewhere},\qquad
#   U:\ (N, C, H, W).$$
#
# For fixed switches, this is linear in $z$. Call $S$ the selection matrix of section 5 (each row of
# $S$ is one-hot at a switch, $y = S x$). Unpooling is $U = S^\top z$ — the very scatter that max
# pooling's backward performs. Hence, when the windows do not overlap,
# `max_unpool2d(dY, idx)` and `max_pool2d_backward(dY, idx)` are the same function.
#
# **Derivative.** $\partial U.\text{flat}[j] / \partial z[u,v] = [j = \sigma[u,v]]$, so
#
# $$\bar z[n,c,u,v] = \bar U[n,c].\text{flat}[\sigma[n,c,u,v]],$$
#
# a **gather**: each pooled value receives the gradient of the one output cell it was written to.
# (The backward of the transpose $S^\top$ is $S$ again.)

# %%
def max_unpool2d_naive(z, idx, out_hw):
    u = np.zeros(z.shape[:2] + out_hw)                    # (N, C, H, W)
    for n, c, i, j in np.ndindex(*z.shape):
        h, v = divmod(idx[n, c, i, j], out_hw[1])
        u[n, c, h, v] = z[n, c, i, j]                     # place at the switch
    return u


def max_unpool2d_backward_naive(dU, idx):
    dZ = np.zeros(idx.shape)
    for n, c, i, j in np.ndindex(*idx.shape):
        h, v = divmod(idx[n, c, i, j], dU.shape[3])
        dZ[n, c, i, j] = dU[n, c, h, v]                   # gather from the switch
    return dZ


rng = np.random.default_rng(3)
x_src = rng.standard_normal((2, 3, 6, 6))
_, iu = deconv.max_pool2d(x_src, 2)                       # switches of a 2x2 pooling, (2, 3, 3, 3)
z = rng.standard_normal(iu.shape)                         # values to unpool, (2, 3, 3, 3)
u = deconv.max_unpool2d(z, iu, 2)                         # (2, 3, 6, 6)
check("max_unpool2d forward: naive vs kernel", max_unpool2d_naive(z, iu, (6, 6)), u,
      NAIVE, rtol=0, atol=0)
check("max_unpool2d(z, idx) == max_pool2d_backward(z, idx)  [S^T both]",
      deconv.max_pool2d_backward(z, iu, x_src.shape), u, NAIVE, rtol=0, atol=0)
dU = rng.standard_normal(u.shape)
dZ = deconv.max_unpool2d_backward(dU, iu)                 # (2, 3, 3, 3)
check("max_unpool2d dz: naive vs kernel", max_unpool2d_backward_naive(dU, iu), dZ,
      NAIVE, rtol=0, atol=0)
check("max_unpool2d dz: kernel vs central differences", dZ,
      numerical_gradient(lambda: float(np.sum(deconv.max_unpool2d(z, iu, 2) * dU)), z, EPS),
      FDIFF, **FD)

# %% [markdown]
# **Pooling and unpooling in motion.** A $4 \times 4$ integer input, $2 \times 2$ windows: first max
# pooling records, window by window, the maximum and its switch (the flat index $hW + \ell$,
# circled); then max unpooling writes each pooled value back at its switch, zeros elsewhere — the
# same scatter as max pooling's backward. The cell writes `figures/maxpool_unpool_switches.gif`
# and checks the frames' numbers against `deconv`.

# %%
x_anim = np.array([[1., 5., 2., 0.],
                   [3., 2., 7., 4.],
                   [8., 0., 1., 6.],
                   [2., 4., 3., 5.]])[None, None]                  # (1, 1, 4, 4), one maximum per window
y_anim, sw_anim = deconv.max_pool2d(x_anim, 2)                     # (1, 1, 2, 2) values and switches
u_anim = deconv.max_unpool2d(y_anim, sw_anim, 2)                   # (1, 1, 4, 4)
print("pooled:\n", y_anim[0, 0], "\nswitches (flat h*4 + l):\n", sw_anim[0, 0], "\nunpooled:\n", u_anim[0, 0])
assert np.array_equal(u_anim, deconv.max_pool2d_backward(y_anim, sw_anim, x_anim.shape))


def draw_pool_frame(frame, axes):
    """Frames 0-3: pooling window by window; frames 4-7: unpooling value by value."""
    for ax in axes:
        ax.clear()
        ax.set_aspect("equal")
        ax.axis("off")
    ax_x, ax_y, ax_u = axes
    step = frame
    pooled_so_far = step + 1 if frame < 4 else 4
    unpooled_so_far = 0 if frame < 4 else min(frame - 3, 4)
    u_, v_ = divmod(step % 4, 2)                                    # the window of this frame
    for (r, c), val in np.ndenumerate(x_anim[0, 0]):
        ax_x.add_patch(plt.Rectangle((c, r), 1, 1, fc="#7fb0e3", ec="0.3"))
        ax_x.text(c + 0.5, r + 0.55, f"{val:.0f}", ha="center", va="center", fontsize=12)
        ax_x.text(c + 0.08, r + 0.22, str(r * 4 + c), fontsize=6, color="0.3")
    ax_x.add_patch(plt.Rectangle((2 * v_, 2 * u_), 2, 2, fill=False, ec="black", lw=3))
    for window in range(pooled_so_far):
        h, l = divmod(int(sw_anim[0, 0].flat[window]), 4)
        ax_x.add_patch(plt.Circle((l + 0.5, h + 0.5), 0.38, fill=False, ec="tab:red", lw=2))
    for (r, c), val in np.ndenumerate(y_anim[0, 0]):
        done = r * 2 + c < pooled_so_far
        ax_y.add_patch(plt.Rectangle((c, r), 1, 1, fc="#9be8e8" if done else "white", ec="0.3"))
        if done:
            ax_y.text(c + 0.5, r + 0.45, f"{val:.0f}", ha="center", va="center", fontsize=12)
            ax_y.text(c + 0.5, r + 0.8, f"switch {sw_anim[0, 0, r, c]}", ha="center", fontsize=7,
                      color="tab:red")
    ax_y.add_patch(plt.Rectangle((v_, u_), 1, 1, fill=False, ec="black", lw=3))
    for (r, c), val in np.ndenumerate(u_anim[0, 0]):
        ax_u.add_patch(plt.Rectangle((c, r), 1, 1, fc="white", ec="0.3"))
    for window in range(unpooled_so_far):
        h, l = divmod(int(sw_anim[0, 0].flat[window]), 4)
        ax_u.add_patch(plt.Rectangle((l, h), 1, 1, fc="#f4b183", ec="0.3"))
        ax_u.text(l + 0.5, h + 0.55, f"{u_anim[0, 0, h, l]:.0f}", ha="center", va="center", fontsize=12)
    for ax, n in ((ax_x, 4), (ax_y, 2), (ax_u, 4)):
        ax.set_xlim(-0.1, n + 0.1)
        ax.set_ylim(n + 0.1, -0.1)
    ax_x.set_title("input x (small: flat index)\nred: switches", fontsize=9)
    ax_y.set_title("max_pool2d: value, switch", fontsize=9)
    ax_u.set_title("max_unpool2d: value back\nat its switch, 0 elsewhere", fontsize=9)


fig, axes = plt.subplots(1, 3, figsize=(8, 3.2), gridspec_kw=dict(width_ratios=[4, 2.4, 4]))
size = save_gif(fig, lambda frame: draw_pool_frame(frame, axes), 8, "maxpool_unpool_switches.gif", fps=1)
print(f"figures/maxpool_unpool_switches.gif: 8 frames, {size / 1000:.0f} kB")

# %% [markdown]
# ![Max pooling records the switches, max unpooling puts the values back there](figures/maxpool_unpool_switches.gif)

# %% [markdown]
# **Overlapping windows.** With $k=3$, $s=1$ a pixel can be the switch of several windows, so
# $\sigma$ repeats. Unpooling then writes the same cell several times; `deconv` keeps the last
# write (in row-major order) and its backward gives the gradient to that one only, which is the
# derivative of what the forward did. (PyTorch's backward gathers for every duplicate, so the chain
# pool → unpool would count such a pixel's gradient once per window; see the README's *Semantics*.)
# We check the whole chain $x \mapsto \text{unpool}(\text{maxpool}(x))$ against central differences.

# %%
rng = np.random.default_rng(4)
x5 = rng.standard_normal((1, 2, 5, 5))
assert np.min(np.diff(np.sort(x5.ravel()))) > 2 * EPS
y5, i5 = deconv.max_pool2d(x5, 3, stride=1)                         # (1, 2, 3, 3)
dups = [9 - np.unique(i5[0, c]).size for c in range(2)]
print("repeated switches per plane:", dups)
assert max(dups) > 0
dU5 = rng.standard_normal(x5.shape)


def chain():
    y, i = deconv.max_pool2d(x5, 3, stride=1)
    return float(np.sum(deconv.max_unpool2d(y, i, 3, stride=1) * dU5))


analytic = deconv.max_pool2d_backward(deconv.max_unpool2d_backward(dU5, i5), i5, x5.shape)
check("max_pool2d -> max_unpool2d chain (duplicates): backward vs central differences", analytic,
      numerical_gradient(chain, x5, EPS), FDIFF, **FD)

# %% [markdown]
# ## 8. Bilinear upsampling: weights, matrix, transpose
#
# Bilinear interpolation is **separable**: it interpolates along rows and then along columns, each
# a 1-D linear interpolation. Along one axis, output index $u\in[0, o)$ reads a real-valued
# source position $\mathrm{src}(u)$ in the input $[0, i)$:
#
# * `align_corners=False` (PyTorch's default): pixels are unit squares and the outer *edges* of input
#   and output coincide. Output pixel centre $u + \tfrac12$, scaled by $i/o$, then
#   shifted back by $\tfrac12$: $\ \mathrm{src}(u) = \max\!\big(\tfrac{i}{o}(u+\tfrac12) - \tfrac12,\ 0\big)$.
# * `align_corners=True`: the *centres* of the corner pixels coincide:
#   $\ \mathrm{src}(u) = u\,\frac{i-1}{o-1}$.
#
# Then $h_0 = \lfloor \mathrm{src}(u)\rfloor$, $h_1 = \min(h_0+1, i-1)$,
# $\lambda_1 = \mathrm{src}(u) - h_0$, $\lambda_0 = 1-\lambda_1$, and $y_u = \lambda_0 x_{h_0} + \lambda_1 x_{h_1}$.
# Collect the weights in a matrix $A \in \mathbb R^{o\times i}$ with
# $A[u, h_0] \mathrel{+}= \lambda_0$, $A[u, h_1] \mathrel{+}= \lambda_1$; every row sums to 1. In 2-D,
# with $A_H$ $(H_\text{out}\times H)$ and $A_W$ $(W_\text{out}\times W)$, for every plane
#
# $$Y = A_H\, X\, A_W^\top,\qquad\text{i.e.}\quad \mathrm{vec}(Y) = (A_H \otimes A_W)\,\mathrm{vec}(X)$$
#
# (row-major $\mathrm{vec}$). **Backward**: $\bar X[h,\ell] = \sum_{u,v} \bar Y[u,v]\,A_H[u,h]\,A_W[v,\ell]$, that is
#
# $$\bar X = A_H^\top\, \bar Y\, A_W,\qquad \mathrm{vec}(\bar X) = (A_H\otimes A_W)^\top \mathrm{vec}(\bar Y):$$
#
# every output sends $\lambda$-weighted shares of its gradient back to the (up to) four input pixels
# it read. We now build $M = A_H\otimes A_W$ *from the library's forward* — column $j$ is
# `upsample_bilinear2d(e_j)` for the one-hot input $e_j$ — and the backward's matrix from
# `upsample_bilinear2d_backward` on one-hot gradients, and check that the second is the transpose
# of the first, and that both equal the matrix of our formulas.

# %%
def interp_matrix(L_in, L_out, align_corners):
    """A: (L_out, L_in), the 1-D linear-interpolation weights derived above."""
    A = np.zeros((L_out, L_in))
    for o in range(L_out):
        if align_corners:
            src = o * (L_in - 1) / (L_out - 1)
        else:
            src = max((o + 0.5) * (L_in / L_out) - 0.5, 0.0)
        i0 = min(int(np.floor(src)), L_in - 1)
        i1 = min(i0 + 1, L_in - 1)
        lam1 = src - i0
        A[o, i0] += 1 - lam1
        A[o, i1] += lam1
    return A


def matrix_of(func, in_shape):
    """The matrix of a linear map on (1, 1, *in_shape) arrays: column k = func(one-hot e_k)."""
    cols = []
    for k in range(int(np.prod(in_shape))):
        e = np.zeros((1, 1) + in_shape)
        e.flat[k] = 1.0
        cols.append(func(e).ravel())
    return np.stack(cols, axis=1)


H, W, H_out, W_out = 4, 5, 7, 8
rng = np.random.default_rng(5)
xb = rng.standard_normal((2, 3, H, W))
for ac in (False, True):
    A_H, A_W = interp_matrix(H, H_out, ac), interp_matrix(W, W_out, ac)
    assert np.allclose(A_H.sum(axis=1), 1.0, rtol=1e-15) and np.allclose(A_W.sum(axis=1), 1.0, rtol=1e-15)
    M = matrix_of(lambda e: deconv.upsample_bilinear2d(e, size=(H_out, W_out), align_corners=ac),
                  (H, W))                                                        # (H_out W_out, H W)
    B = matrix_of(lambda e: deconv.upsample_bilinear2d_backward(e, (1, 1, H, W), align_corners=ac),
                  (H_out, W_out))                                                # (H W, H_out W_out)
    check(f"bilinear align_corners={ac}: forward matrix vs kron(A_H, A_W)", M, np.kron(A_H, A_W),
          NAIVE, **ALGEBRA)
    check(f"bilinear align_corners={ac}: backward matrix vs forward matrix transposed", B, M.T,
          NAIVE, **ALGEBRA)
    yb = deconv.upsample_bilinear2d(xb, size=(H_out, W_out), align_corners=ac)   # (2, 3, 7, 8)
    check(f"bilinear align_corners={ac} forward: A_H X A_W^T vs kernel",
          np.einsum("oh,nchv,rv->ncor", A_H, xb, A_W), yb, NAIVE, **ALGEBRA)
    dYb = rng.standard_normal(yb.shape)
    dXb = deconv.upsample_bilinear2d_backward(dYb, xb.shape, align_corners=ac)   # (2, 3, 4, 5)
    check(f"bilinear align_corners={ac} dX: A_H^T dY A_W vs kernel",
          np.einsum("oh,ncor,rv->nchv", A_H, dYb, A_W), dXb, NAIVE, **ALGEBRA)
    check(f"bilinear align_corners={ac} dX: kernel vs central differences", dXb,
          numerical_gradient(lambda: float(np.sum(
              deconv.upsample_bilinear2d(xb, size=(H_out, W_out), align_corners=ac) * dYb)), xb, EPS),
          FDIFF, **FD)

# %% [markdown]
# The 1-D interpolation matrices for $i=4 \to o=10$, taken from the library (a
# $(1, L)$ image, whose height axis is copied), and the column sums $A^\top\mathbf 1$ — the gradient
# each input pixel receives when every output sends back 1, i.e. the backward of an all-ones $\bar y$.
# Either way the total is $o$, since each row of $A$ sums to 1, but it is shared
# differently. With `align_corners=False` the output samples are spread over the input's full extent,
# and here every input pixel receives the same $o/i = 2.5$ (the clamp
# $\max(\cdot,0)$ hands the edge pixel exactly the weight the missing pixel $-1$ would have taken; for
# other ratios the shares are only nearly equal, e.g. $5\to7$, printed below the figure).
# With `align_corners=True` the corner outputs sit exactly on the edge pixels and nothing lies beyond
# them, so the edge pixels receive *less* (2 against 3): a network trained through such a layer
# gets systematically weaker gradients at the image border.

# %%
L_in, L_out = 4, 10
fig, axes = plt.subplots(2, 2, figsize=(10, 6.2), gridspec_kw=dict(height_ratios=[2.2, 1]))
for col, ac in enumerate((False, True)):
    A = matrix_of(lambda e: deconv.upsample_bilinear2d(e, size=(1, L_out), align_corners=ac), (1, L_in))
    check(f"1-D bilinear matrix align_corners={ac}: library vs formula", A,
          interp_matrix(L_in, L_out, ac), NAIVE, **ALGEBRA)
    g_ones = deconv.upsample_bilinear2d_backward(np.ones((1, 1, 1, L_out)), (1, 1, 1, L_in),
                                                 align_corners=ac)[0, 0, 0]      # (L_in,) = A^T 1
    check(f"1-D bilinear align_corners={ac}: backward(ones) vs column sums of A", g_ones, A.sum(axis=0),
          NAIVE, **ALGEBRA)
    expected_share = [2.0, 3.0, 3.0, 2.0] if ac else [2.5, 2.5, 2.5, 2.5]     # see the text above
    assert np.allclose(g_ones, expected_share, rtol=1e-12) and np.isclose(g_ones.sum(), L_out)
    ax = axes[0, col]
    im = ax.imshow(A, cmap="gray_r", vmin=0, vmax=1, aspect="auto")
    for (o, i), val in np.ndenumerate(A):
        if val > 0:
            ax.text(i, o, f"{val:.3g}", ha="center", va="center", fontsize=7,
                    color="white" if val > 0.6 else "black")
    ax.set_title(f"A (align_corners={ac}): row o = weights of output o", fontsize=9)
    ax.set_xlabel("input index i")
    ax.set_ylabel("output index o")
    ax.set_xticks(range(L_in))
    fig.colorbar(im, ax=ax, fraction=0.046)
    axes[1, col].bar(range(L_in), g_ones, color="tab:blue")
    axes[1, col].set_title("backward of all-ones dY = column sums of A", fontsize=9)
    axes[1, col].set_xlabel("input index i")
    axes[1, col].set_ylabel("gradient received")
    axes[1, col].set_xticks(range(L_in))
    axes[1, col].axhline(L_out / L_in, color="gray", ls="--", lw=0.8)
fig.suptitle("Bilinear upsampling 4 -> 10: the interpolation matrix (forward) and its transpose (backward)",
             fontsize=10)
fig.tight_layout()
plt.show()
share_5_7 = deconv.upsample_bilinear2d_backward(np.ones((1, 1, 1, 7)), (1, 1, 1, 5))[0, 0, 0]
print("5 -> 7, align_corners=False, gradient each input pixel receives:", np.round(share_5_7, 2))
assert np.isclose(share_5_7.sum(), 7) and np.ptp(share_5_7) > 0.2     # nearly, not exactly, equal

# %% [markdown]
# ## 9. One identity for every layer: $\langle A x, v\rangle = \langle x, A^\top v\rangle$
#
# If the backward of a linear map $A$ is really $A^\top$, then for **any** $x$ and $v$ the two inner
# products agree: $\langle A x, v\rangle = \sum_m (Ax)_m v_m = \sum_k x_k (A^\top v)_k = \langle x, A^\top v\rangle$.
# This test needs no derivative, no $\varepsilon$ and no loop over elements, so it is the cheapest
# way to catch a wrong backward at realistic sizes; it holds to rounding (asserted below to
# $10^{-12}$ relative; the printed inner products agree to their last digits).
# We check it for each op, with larger random arrays than above. The convolution has two linear
# maps (in $x$ with $w$ fixed, and in $w$ with $x$ fixed; no bias, since $x\mapsto Wx+b$ is affine,
# not linear), and its input adjoint is available in two forms: `conv2d_backward`'s `grad_input`
# and `conv_transpose2d`.

# %%
rng = np.random.default_rng(6)
xc = rng.standard_normal((2, 4, 16, 15))                    # (N, C_in, H, W)
wc = rng.standard_normal((6, 2, 3, 3))                      # (C_out, C_in/G, kH, kW), G = 2
ck = dict(stride=2, padding=1, dilation=2, groups=2)
vc = rng.standard_normal(deconv.conv2d(xc, wc, **ck).shape)  # a random element of the output space
op = tuple(shapes.inverse_output_padding(L, 3, 2, 1, 2) for L in xc.shape[2:])

xq = rng.standard_normal((2, 3, 16, 16))
_, iq = deconv.max_pool2d(xq, 2)                             # switches (2, 3, 8, 8)
zq = rng.standard_normal(iq.shape)
opts_t = dict(kernel_size=3, stride=2, padding=1, count_include_pad=True)
opts_f = dict(opts_t, count_include_pad=False)
up = (20, 23)
v_avg = rng.standard_normal(deconv.avg_pool2d(xq, **opts_t).shape)
v_up = rng.standard_normal((2, 3) + up)
v_xq = rng.standard_normal(xq.shape)

conv_t = lambda v: deconv.conv_transpose2d(v, wc, stride=2, padding=1, output_padding=op,
                                          groups=2, dilation=2)
gather = lambda x, i: np.take_along_axis(x.reshape(2, 3, -1), i.reshape(2, 3, -1), axis=2)
bil = lambda x, ac: deconv.upsample_bilinear2d(x, size=up, align_corners=ac)
bil_T = lambda v, ac: deconv.upsample_bilinear2d_backward(v, xq.shape, align_corners=ac)
yc = deconv.conv2d(xc, wc, **ck)
gx_c, gw_c, _ = deconv.conv2d_backward(vc, xc, wc, **ck)

ADJOINTS = {  # name: (<A x, v>, <x, A^T v>)
    "conv2d in x (grad_input)": (np.vdot(yc, vc), np.vdot(xc, gx_c)),
    "conv2d in x (conv_transpose2d)": (np.vdot(yc, vc), np.vdot(xc, conv_t(vc))),
    "conv2d in w (grad_weight)": (np.vdot(yc, vc), np.vdot(wc, gw_c)),
    "max_pool2d, switches fixed (gather S)":
        (np.vdot(gather(xq, iq), zq.reshape(2, 3, -1)),
         np.vdot(xq, deconv.max_pool2d_backward(zq, iq, xq.shape))),
    "max_unpool2d (scatter S^T)":
        (np.vdot(deconv.max_unpool2d(zq, iq, 2), v_xq),
         np.vdot(zq, deconv.max_unpool2d_backward(v_xq, iq))),
    "avg_pool2d count_include_pad=True":
        (np.vdot(deconv.avg_pool2d(xq, **opts_t), v_avg),
         np.vdot(xq, deconv.avg_pool2d_backward(v_avg, xq.shape, **opts_t))),
    "avg_pool2d count_include_pad=False":
        (np.vdot(deconv.avg_pool2d(xq, **opts_f), v_avg),
         np.vdot(xq, deconv.avg_pool2d_backward(v_avg, xq.shape, **opts_f))),
    "upsample_bilinear2d align_corners=False":
        (np.vdot(bil(xq, False), v_up), np.vdot(xq, bil_T(v_up, False))),
    "upsample_bilinear2d align_corners=True":
        (np.vdot(bil(xq, True), v_up), np.vdot(xq, bil_T(v_up, True))),
    "upsample_nearest2d":
        (np.vdot(deconv.upsample_nearest2d(xq, size=up), v_up),
         np.vdot(xq, deconv.upsample_nearest2d_backward(v_up, xq.shape))),
}
for name, (lhs, rhs) in ADJOINTS.items():
    print(f"{name:42s} <Ax, v> = {lhs: .12f}   <x, A^T v> = {rhs: .12f}")
    check(f"adjoint: {name}", np.array(lhs), np.array(rhs), ADJ, rtol=1e-12, atol=0)

# %% [markdown]
# ## 10. All the checks at a glance
#
# Every `compare` of this notebook, by kind. "naive & identities vs kernel" (our loops, and identities
# between library ops such as $\bar x$ = `conv_transpose2d`) and "adjoint identity" compare two
# exact float64 evaluations of the same algebra: they differ by rounding only, and some are
# bit-identical (drawn on the bottom line). "kernel vs central differences" is limited by the
# finite differences themselves: the rounding of $L$ divided by $2\varepsilon$,
# $\sim|L|\cdot10^{-16}/10^{-6}$ (section 0); the cell prints the range measured here.

# %%
kinds = [NAIVE, ADJ, FDIFF]
floor = 1e-18                                              # where exact zeros are drawn
fig, ax = plt.subplots(figsize=(9, 3.8))
for pos, kind in enumerate(kinds):
    vals = np.array([m for _, k, m in RESULTS if k == kind])
    jitter = np.random.default_rng(pos).uniform(-0.18, 0.18, vals.size)
    ax.scatter(pos + jitter, np.maximum(vals, floor), s=22, alpha=0.75,
               label=f"{kind} ({vals.size} checks, {np.sum(vals == 0)} bit-exact)")
ax.set_yscale("log")
ax.set_ylim(floor / 3, 1e-5)
ax.axhline(floor, color="gray", lw=0.6, ls=":")
ax.set_xticks(range(len(kinds)))
ax.set_xticklabels(kinds)
ax.set_ylabel("max |difference| (0 drawn at 1e-18)")
ax.set_title(f"{len(RESULTS)} checks, all passed: kernels agree with the algebra to rounding, "
             "with central differences to ~1e-8", fontsize=10)
ax.legend(fontsize=8, loc="upper left")
fig.tight_layout()
plt.show()
fd = [m for _, k, m in RESULTS if k == FDIFF]
conv_naive = [m for name, k, m in RESULTS if k == NAIVE and name.startswith("conv")]
print(f"{len(RESULTS)} checks; central differences: maxdiff from {min(fd):.1e} to {max(fd):.1e}; "
      f"conv loops vs kernels: largest maxdiff {max(conv_naive):.1e}; adjoint identities: {len(ADJOINTS)}")
assert len(RESULTS) >= 40 and max(m for _, k, m in RESULTS if k != FDIFF) < 1e-12
assert max(fd) < 1e-7 and max(conv_naive) < 1e-13 and len(ADJOINTS) == 10

# %% [markdown]
# ## What we found
#
# * **Convolution.** The chain rule, applied index by index to
#   $y = b + \sum w\,\tilde x$, gives $\bar b = $ the sum of $\bar y$, $\bar w =$ a correlation of the
#   padded input with $\bar y$ (stride and dilation swapped, batch summed), and $\bar x =$ the scatter
#   of the kernel at every window, equivalently the full convolution of the zero-upsampled $\bar y$ with
#   the flipped kernel. Our loops reproduce `deconv.conv2d_backward` to rounding (float64, maxdiff
#   below $10^{-13}$, printed and asserted in section 10) for a plain case and for stride 2 /
#   padding 1 / dilation 2 / groups 2 with a non-square kernel, and the kernel matches central
#   differences to below $10^{-7}$, the rounding noise of the finite differences themselves.
# * **The transposed convolution's weight gradient**, derived in section 3.2, is the convolution's
#   weight gradient with input and upstream gradient exchanged; a loop nest of the formula, that
#   identity and central differences all agree with `deconv.conv_transpose2d_backward`.
# * **$\bar x$ is a transposed convolution.** `conv_transpose2d(dY, w, ...)` with the same weight and
#   the right `output_padding` equals the input gradient — Dumoulin & Visin's (2016) description of the
#   transposed convolution as the gradient (the transpose) of the convolution, reproduced exactly.
#   And $\bar w$ is itself a `conv2d` call, which we also checked.
# * **Pooling and unpooling.** Max pooling routes $\bar y$ to its switches (summing where overlapping
#   windows share one); its int64 switches are PyTorch's flat positions, reproduced by a naive loop bit
#   for bit. Max unpooling is the transpose of the switch selection (Zeiler & Fergus's unpooling), so its
#   forward *is* max pooling's backward (bit-identical for non-overlapping windows) and its backward is a
#   gather. Average pooling spreads $\bar y/D$, with the divisor $D$ of `count_include_pad` deciding how
#   much gradient a border window passes back ($4/9$ vs $1$ at a corner).
# * **Bilinear upsampling** is a Kronecker product of two 1-D interpolation matrices; the matrix of the
#   library's backward is exactly the transpose of the matrix of its forward, both equal to the weights
#   we derived, for both `align_corners` settings.
# * **The adjoint identity** holds to $\le 10^{-12}$ relative for all ten linear maps we tried.
#
# What differs from the papers: nothing numerical is "reproduced" beyond these identities — they are
# exact mathematics, so the agreement is to rounding, not to a tolerance chosen to fit. The arrays are
# tiny (at most $2\times4\times16\times15$) because central differences cost two forward passes per
# element; the kernels themselves are tested at larger sizes in the repository's test suite. We did not
# check float32 here (the same identities would hold only to single-precision rounding), nor the
# gradient at ties of max pooling, which is a convention rather than a derivative.

# %% [markdown]
# ## Problems
#
# 1. In the hand example of section 2.4, change $\bar y$ to all ones. Predict $\bar x$ by
#    counting how many windows cover each input pixel (with stride 2 and a $2\times 2$ kernel, how
#    many can?), then check with `conv2d_backward`. What changes with a $3\times 3$ kernel?
# 2. Derive $\bar w$ for the hand example with $p = 0$ instead of $p = 1$: which input row and
#    column drop out of every sum, and why does the floor of the output size make that so?
# 3. Show from the formula of section 3.2 that the transposed convolution's weight gradient does
#    not depend on `output_padding` rows that lie beyond every stamp (when $a > p$), and check it
#    with `deconv.conv_transpose2d_backward` on a case with $a = 1$, $p = 0$.
# 4. Average pooling with `count_include_pad=False` is not a convolution with a fixed kernel. Why
#    not, and what does that do to the gradient a corner pixel receives compared with a centre
#    pixel? Check with a one-hot $\bar y$.
# 5. Max pooling with $k = 3$, $s = 1$ on a $5\times 5$ input: construct an input where one
#    pixel is the switch of all nine windows, and predict `max_pool2d_backward` of an all-ones
#    $\bar y$ at that pixel.

# %% [markdown]
# ## References
#
# * D. E. Rumelhart, G. E. Hinton, R. J. Williams. *Learning representations by back-propagating
#   errors.* Nature 323, 533–536 (1986).
# * Y. LeCun, B. Boser, J. S. Denker, D. Henderson, R. E. Howard, W. Hubbard, L. D. Jackel.
#   *Backpropagation applied to handwritten zip code recognition.* Neural Computation 1(4), 541–551 (1989).
# * Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. *Gradient-based learning applied to document
#   recognition.* Proceedings of the IEEE 86(11), 2278–2324 (1998).
# * V. Dumoulin, F. Visin. *A guide to convolution arithmetic for deep learning.* arXiv:1603.07285 (2016).
# * M. D. Zeiler, R. Fergus. *Visualizing and understanding convolutional networks.* ECCV 2014,
#   LNCS 8689, 818–833 (2014); arXiv:1311.2901.
# * A. Odena, V. Dumoulin, C. Olah. *Deconvolution and checkerboard artifacts.* Distill (2016),
#   doi:10.23915/distill.00003.
