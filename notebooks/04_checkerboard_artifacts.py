# %% [markdown]
# # 4. Checkerboard artifacts
#
# Images produced by a network that upsamples with strided transposed convolutions
# ("deconvolutions") often carry a faint checkerboard: a pattern whose period is exactly the
# stride. Odena, Dumoulin & Olah explained it in
# *Deconvolution and Checkerboard Artifacts* (Distill, 2016): when the kernel size is not a
# multiple of the stride, the kernel copies that the transposed convolution stamps into its output
# **overlap unevenly**, so some output pixels receive more contributions than their neighbours;
# stacking layers compounds the pattern, the same pattern appears in the *gradient* of a strided
# convolution, and upsampling by resizing followed by an ordinary convolution ("resize-convolution")
# avoids it.
#
# This notebook re-derives each of those claims and checks it with `deconv`'s own kernels:
#
# 1. the **overlap count** of every output pixel, counted by hand and computed by
#    `deconv.conv_transpose1d/2d` on all-ones arrays, with its closed form;
# 2. the **phase sums**: why a constant input already produces a checkerboard at initialisation,
#    even when the overlap is even;
# 3. **resize-convolution is a transposed convolution** (kernel 4, stride 2) whose weights are
#    tied so that the checkerboard is impossible, an exact identity;
# 4. **stacking**: three transposed convolutions collapse into one with stride 8, and the
#    checkerboard's contrast grows from 2 to 3 to 5 per axis;
# 5. the checkerboard in the **gradient of a strided convolution**, checked against central
#    differences;
# 6. three small **decoders** (transposed conv 3/2, transposed conv 4/2, resize-conv) trained on
#    the same super-resolution task with the same seed, compared by eye and by their spectra at
#    the checkerboard (Nyquist) frequency.

# %% [markdown]
# ## 0. Notation and set-up
#
# The letters are the series', stated once in [NOTATION.md](NOTATION.md). On one axis: input
# size $i$, output size $o$, kernel size $k$, stride $s$, padding $p$ (of the convolution whose
# adjoint the transposed convolution is), output padding $a$; input pixel $h$, output pixel $u$,
# kernel tap $\alpha$ (in 2-D $(h, \ell)$, $(u, v)$, $(\alpha, \beta)$); channels $c < C_{in}$,
# $c_o < C_{out}$. New here: the **phase** $r$ of an output pixel and the taps $n_r$ that reach
# it (Section 1.2), the phase sums $S_r$ (Section 2).
#
# Layouts are PyTorch's: a transposed convolution maps $x$ of shape $(N, C_{in}, H, W)$ with a
# weight $w$ of shape $(C_{in}, C_{out}, k_H, k_W)$ to $y$ of shape $(N, C_{out}, H_{out}, W_{out})$,
# $H_{out} = (H-1)s - 2p + k_H + a$ (likewise $W_{out}$). An ordinary convolution's weight has shape
# $(C_{out}, C_{in}, k_H, k_W)$.
#
# Every check is an `assert` or a `compare(name, actual, expected)`, which prints
# `name | exact | approx | maxdiff` and raises when the two disagree; integer identities are
# checked with zero tolerance, float64 identities with `rtol=1e-12`.

# %%
import numpy as np
import matplotlib.pyplot as plt

import deconv
from deconv import nn, optim, data, metrics, shapes
from deconv.gradcheck import compare, numerical_gradient
from IPython.display import Markdown, display

from exercise import check_exercise          # notebooks/exercise.py: marks the fill-in cells

np.set_printoptions(linewidth=110, precision=4, suppress=True)

# %% [markdown]
# ## 1. Where the checkerboard comes from: the overlap count
#
# ### 1.1 The transposed convolution as a stamp
#
# Take one channel and one axis. A transposed convolution with stride $s$ and padding $p$ is
# easiest to read as a **scatter**: input position $h$ stamps a copy of the kernel, scaled by
# $x[h]$, into the output starting at position $s\,h - p$:
#
# $$
# y[u] \;=\; \sum_{h=0}^{i-1} \sum_{\alpha=0}^{k-1} x[h]\, w[\alpha]\; \mathbb 1\!\left[u = s\,h + \alpha - p\right],
# \qquad o = (i-1)s - 2p + k + a .
# $$
#
# Neighbouring stamps start $s$ apart and are $k$ long, so they overlap when $k > s$. Set every
# input and every weight to one, $x \equiv 1$, $w \equiv 1$: then $y[u]$ is the number of
# (input position, tap) pairs that land on $u$, the **overlap count**
#
# $$
# c[u] = \#\{(h, \alpha) : s\,h + \alpha - p = u,\; 0 \le h < i,\; 0 \le \alpha < k\}.
# $$
#
# ### 1.2 Its closed form away from the borders
#
# Fix $u$. The condition $s\,h = u + p - \alpha$ says that tap $\alpha$ reaches $u$ exactly when
# $\alpha \equiv u + p \pmod s$ (and the $h$ it implies lies in $[0, i)$). Call
# $r = (u + p) \bmod s$ the **phase** of $u$. In the *interior*, where every such $h$ exists, i.e.
# $k - 1 - p \le u \le (i-1)s - p$, the count depends on the phase only:
#
# $$
# c[u] = n_r = \#\{\,\alpha \in [0, k) : \alpha \equiv r \!\!\pmod s\,\} = \max\!\left(0, \left\lceil \tfrac{k - r}{s} \right\rceil\right).
# $$
#
# Write $k = m\,s + t$ with $0 \le t < s$. Then $n_r = m + 1$ for the $t$ phases $r < t$ and
# $n_r = m$ for the others:
#
# * if $s$ divides $k$ ($t = 0$) every phase gets $k/s$ taps: **even overlap**, a constant interior;
# * otherwise two levels $m+1$ and $m$ alternate with period $s$: **uneven overlap**, a
#   1-D "checkerboard" whose contrast $(m+1)/m$ is largest, 2, when $s < k < 2s$ (e.g. $k=3, s=2$);
#   and for $k < s$ ($m = 0$) some phases get no tap at all: holes.
#
# We count by hand with two loops, count with the library on all-ones arrays, and compare both
# with $n_r$, for the six kernel/stride pairs below.

# %%
def overlap_count_1d(L, k, s, p=0):
    """c[o]: how many (input position i, tap j) pairs land on o = s*i + j - p; shape (L_out,)."""
    L_out = (L - 1) * s - 2 * p + k
    count = np.zeros(L_out)
    for i in range(L):              # every input position ...
        for j in range(k):          # ... stamps k taps
            o = s * i + j - p
            if 0 <= o < L_out:
                count[o] += 1
    return count


def overlap_count_deconv_1d(L, k, s, p=0):
    """The same count, computed by deconv's transposed convolution of all-ones arrays."""
    x = np.ones((1, 1, L))          # (N=1, C_in=1, L)
    w = np.ones((1, 1, k))          # (C_in=1, C_out=1, k)
    return deconv.conv_transpose1d(x, w, stride=s, padding=p)[0, 0]      # (L_out,)


def taps_per_phase(k, s):
    """n_r = max(0, ceil((k - r) / s)), r = 0 .. s-1."""
    return np.array([max(0, -(-(k - r) // s)) for r in range(s)], dtype=float)


PAIRS = [(3, 2), (4, 2), (5, 2), (2, 2), (6, 3), (3, 1)]      # (kernel k, stride s)
L = 8
for k, s in PAIRS:
    by_hand = overlap_count_1d(L, k, s)
    by_deconv = overlap_count_deconv_1d(L, k, s)
    compare(f"k={k} s={s}: deconv count vs loops      ", by_deconv, by_hand, rtol=0, atol=0)
    interior = np.arange(k - 1, (L - 1) * s + 1)              # o in [k-1-p, (L-1)s-p], p = 0
    compare(f"k={k} s={s}: interior vs n_(o mod s)    ", by_hand[interior],
            taps_per_phase(k, s)[interior % s], rtol=0, atol=0)
    constant = np.ptp(by_hand[interior]) == 0
    assert constant == (k % s == 0), (k, s)                   # even overlap <=> s divides k
    print(f"    interior, one period: {by_hand[interior][:s]}   constant: {constant}")

# k=3, s=2: the interior alternates 2, 1, 2, 1, ...
c32 = overlap_count_1d(L, 3, 2)
assert list(c32[2:8]) == [2, 1, 2, 1, 2, 1]

# %% [markdown]
# **Exercise E4.1.** Count the taps per phase yourself, without the closed form: return the array
# $(n_0, \dots, n_{s-1})$ for a kernel of $k$ taps and stride $s$ (which taps $\alpha$ reach an
# interior output pixel of phase $r$?). `check_exercise` compares it with the interior of
# `deconv.conv_transpose1d` on all-ones arrays for every $k \le 7$, $s \le 4$, holes ($k < s$)
# included. The worked solution is `phase_tap_counts` in [solutions.py](solutions.py).

# %%
def phase_tap_counts(k, s):
    """(k, s) -> (s,) float array: n_r, the number of taps alpha that reach an interior pixel of phase r."""
    return ...                                     # <- your code here


check_exercise("E4.1", phase_tap_counts)

# %% [markdown]
# ### 1.3 In two dimensions the counts multiply
#
# With a $k_H \times k_W$ kernel and strides $(s, s)$ the indicator in the 2-D transposed
# convolution is a product of one indicator per axis,
# $\mathbb 1[u = s\,h + \alpha - p]\;\mathbb 1[v = s\,\ell + \beta - p]$, so with all-ones arrays
# the double sum factorises:
#
# $$
# c_{2D}[u, v] = c_H[u]\; c_W[v].
# $$
#
# For $k=3, s=2$ the interior values are the products of $\{1, 2\}$ with $\{1, 2\}$: 4 where
# both phases get two taps, 2 on the mixed positions, 1 where both get one: the **1, 2, 4
# checkerboard** of the article's figure. The map below comes from `deconv.conv_transpose2d` on a
# $6 \times 6$ all-ones input.

# %%
def overlap_count_deconv_2d(L, k, s, p=0):
    x = np.ones((1, 1, L, L))       # (N, C_in, H, W)
    w = np.ones((1, 1, k, k))       # (C_in, C_out, kH, kW)
    return deconv.conv_transpose2d(x, w, stride=s, padding=p)[0, 0]      # (H_out, W_out)


L2 = 6
maps_2d = {}
for k, s in PAIRS:
    c1 = overlap_count_1d(L2, k, s)
    maps_2d[k, s] = overlap_count_deconv_2d(L2, k, s)
    compare(f"k={k} s={s}: 2-D count vs outer product of 1-D counts", maps_2d[k, s],
            np.outer(c1, c1), rtol=0, atol=0)

inner = maps_2d[3, 2][2:11, 2:11]                # interior of the 13 x 13 map
assert set(np.unique(inner)) == {1.0, 2.0, 4.0}
print("k=3 s=2, top-left of the interior:\n", inner[:4, :4])

# %% [markdown]
# The figure shows each pair twice: the 1-D count (interior shaded; the counts fall off at the
# borders, where stamps are missing) and the 2-D map. Only the pairs with $s \mid k$ (4/2, 2/2,
# 6/3, and trivially 3/1) have a flat interior.

# %%
fig, axes = plt.subplots(2, len(PAIRS), figsize=(11, 4.6),
                         gridspec_kw={"height_ratios": [1, 1.6]})
for col, (k, s) in enumerate(PAIRS):
    c = overlap_count_1d(L2, k, s)
    ax = axes[0, col]
    ax.axvspan(k - 1 - 0.5, (L2 - 1) * s + 0.5, color="tab:orange", alpha=0.15, lw=0)
    ax.bar(np.arange(len(c)), c, width=0.8, color="tab:blue")
    ax.set_title(f"k={k}, s={s}" + ("" if k % s == 0 else "  (uneven)"), fontsize=10)
    ax.set_ylim(0, c.max() + 0.5)
    ax.set_xlabel("output position o", fontsize=8)
    ax.tick_params(labelsize=7)
    if col == 0:
        ax.set_ylabel("taps landing on o")
    ax = axes[1, col]
    im = ax.imshow(maps_2d[k, s], cmap="gray", vmin=0, interpolation="nearest")
    ax.set_xticks([]); ax.set_yticks([])
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03).ax.tick_params(labelsize=7)
axes[1, 0].set_ylabel("2-D count map")
fig.suptitle("Overlap count of conv_transpose with all-ones input (6 pixels) and kernel: "
             "1-D (interior shaded) and 2-D")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 2. A constant input: phase sums, and why even overlap is not enough
#
# Even overlap only says that every output pixel receives the *same number* of taps. What it
# receives is a sum of *different* weights. In the interior, the output at phase $r$ is
#
# $$
# y[u] = \sum_{\alpha \equiv r \;(\mathrm{mod}\; s)} w[\alpha]\; x\!\left[\tfrac{u + p - \alpha}{s}\right],
# $$
#
# an ordinary stride-1 convolution of $x$ with the **sub-kernel** $w[r], w[r+s], w[r+2s], \dots$.
# A transposed convolution is $s$ (in 2-D, $s^2$) independent convolutions whose outputs are
# interleaved; this "polyphase" view is the sub-pixel convolution of Shi et al. (2016). For a
# constant input $x \equiv 1$ each phase outputs the sum of its sub-kernel, the **phase sum**
#
# $$
# S_r = \sum_{\alpha \equiv r} w[\alpha], \qquad y[u] = S_{(u+p) \bmod s} \text{ in the interior}.
# $$
#
# The overlap count is the special case $w \equiv 1$, $S_r = n_r$. A flat input gives a flat
# output only if **all phase sums are equal**; nothing in a free kernel enforces that, so a
# randomly initialised transposed convolution turns a constant image into a checkerboard whether
# $k$ is a multiple of $s$ or not, which is what the article observes at initialisation.
#
# How strong is it, on average over random weights? Let the taps be independent with mean 0 and
# variance $\sigma^2$ (PyTorch's default initialisation: uniform on $[-b, b]$, $\sigma^2 = b^2/3$).
# Then $E[S_r^2] = n_r \sigma^2$: **the overlap count is the variance map** of a random transposed
# convolution's response to a constant. And the contrast between two phases,
# $E[(S_0 - S_1)^2] = (n_0 + n_1)\sigma^2$, is not zero for even overlap either. We check the exact
# statement on one random kernel and the expectations by Monte Carlo (200 000 draws: the
# tolerance of 2% is about six standard errors).

# %%
rng = np.random.default_rng(0)
w4 = rng.standard_normal(4)                                        # (k,) = 4 taps, s = 2
y = deconv.conv_transpose1d(np.ones((1, 1, L)), w4[None, None], stride=2)[0, 0]   # (L_out,) = (18,)
interior = np.arange(3, (L - 1) * 2 + 1)
S = np.array([w4[0::2].sum(), w4[1::2].sum()])                   # phase sums S_0, S_1
compare("constant input, k=4 s=2: interior output == S_(o mod 2)", y[interior], S[interior % 2],
        rtol=1e-12, atol=0)
print("phase sums of this random kernel:", S, "-> a checkerboard despite even overlap")

draws, b = 200_000, 1.0
for k in (3, 4):
    wk = rng.uniform(-b, b, size=(draws, k))                       # (draws, k)
    Sr = np.stack([wk[:, r::2].sum(axis=1) for r in range(2)])     # (2, draws)
    sigma2 = b**2 / 3
    compare(f"k={k} s=2: E[S_r^2]/sigma^2 (Monte Carlo) vs n_r     ",
            (Sr**2).mean(axis=1) / sigma2, taps_per_phase(k, 2), rtol=0.02, atol=0)
    compare(f"k={k} s=2: E[(S_0-S_1)^2]/sigma^2 (Monte Carlo) vs k ",
            np.array(((Sr[0] - Sr[1])**2).mean() / sigma2), np.array(float(k)), rtol=0.02, atol=0)

# %% [markdown]
# **Exercise E4.3 (the sub-pixel view).** The polyphase reading says that a stride-$r$ transposed
# convolution computes $r^2$ ordinary convolutions at low resolution and interleaves them. Shi et
# al. (2016) do exactly that: a convolution makes $C r^2$ channels, and the **pixel shuffle**
# interleaves them, channel $c\,r^2 + \phi\, r + \psi$ becoming the pixels of phase $(\phi, \psi)$ (rows
# $u \equiv \phi$, columns $v \equiv \psi \bmod r$) of output channel $c$. Write it for one image,
# $z$ of shape $(C r^2, H, W) \to (C, rH, rW)$; `check_exercise` compares with
# `deconv.pixel_shuffle`. The worked solution is `pixel_shuffle_by_hand` in
# [solutions.py](solutions.py).

# %%
def pixel_shuffle_by_hand(z, r):
    """z (C r^2, H, W) -> (C, r H, r W): channel c r^2 + a' r + b' fills the phase (a', b') of channel c."""
    return ...                                     # <- your code here


check_exercise("E4.3", pixel_shuffle_by_hand)

# %% [markdown]
# ## 3. Resize-convolution is a transposed convolution with tied weights
#
# The article's remedy is to **resize** (nearest-neighbour upsampling by 2) and then apply an
# ordinary convolution. Why does that avoid the pattern? Because it *is* a transposed convolution,
# one with tied weights. In 1-D, nearest upsampling is $\tilde x[m] = x[\lfloor m/2 \rfloor]$, and a $3$-tap convolution
# with padding 1 (cross-correlation, as in PyTorch) is $z[u] = \sum_{\alpha=0}^{2} w[\alpha]\,\tilde x[u + \alpha - 1]$.
# Group the terms by the input position $h = \lfloor (u + \alpha - 1)/2 \rfloor$, i.e. by
# $u + \alpha - 1 \in \{2h, 2h+1\}$:
#
# $$
# z[u] = \sum_h x[h] \sum_{\alpha} w[\alpha]\, \mathbb 1\!\left[u + 1 - 2h \in \{2 - \alpha,\; 3 - \alpha\}\right]
#      = \sum_h x[h]\, K[u + 1 - 2h],
# \qquad K[t] = \sum_\alpha w[\alpha]\, B[t, \alpha],\quad B[t, \alpha] = \mathbb 1[t \in \{2-\alpha, 3-\alpha\}],
# $$
#
# which is the transposed convolution of Section 1 with stride 2, padding 1 and the 4-tap kernel
#
# $$
# K = \big(w[2],\; w[1] + w[2],\; w[0] + w[1],\; w[0]\big).
# $$
#
# (The borders match too: the zero padding of the convolution is the transposed convolution's
# cropping, and both outputs have length $2i$.) Its phase sums are $K[0] + K[2] = K[1] + K[3] =
# w[0] + w[1] + w[2]$ **for every** $w$. So resize-convolution is a 4/2 transposed convolution
# whose 16 taps per channel pair (in 2-D) are tied to 9 free weights exactly so that all four phase
# sums equal $\sum w$: a constant input gives a constant output, whatever the weights, at
# initialisation and after any amount of training. In 2-D the tying acts on both axes:
# $K[c, c_o, t_h, t_w] = \sum_{\alpha, \beta} w[c_o, c, \alpha, \beta]\, B[t_h, \alpha]\, B[t_w, \beta]$,
# with $w$ of shape $(C_{out}, C_{in}, 3, 3)$ and $K$ of shape $(C_{in}, C_{out}, 4, 4)$.

# %%
B = np.array([[float(t in (2 - j, 3 - j)) for j in range(3)] for t in range(4)])   # (4, 3)
print("B =\n", B)

rng = np.random.default_rng(1)
x = rng.standard_normal((2, 5, 6, 7))                # (N, C_in, H, W), not square on purpose
w = rng.standard_normal((4, 5, 3, 3))                # (C_out, C_in, 3, 3): the conv's weight
resize_conv = deconv.conv2d(deconv.upsample_nearest2d(x, scale_factor=2), w, padding=1)  # (2, 4, 12, 14)
K = np.einsum("oijk,aj,bk->ioab", w, B, B)           # (C_in, C_out, 4, 4): transposed-conv weight
as_transposed = deconv.conv_transpose2d(x, K, stride=2, padding=1)                     # (2, 4, 12, 14)
compare("nearest x2 + conv3x3(p=1)  ==  conv_transpose(K, k=4, s=2, p=1)", as_transposed, resize_conv,
        rtol=1e-12, atol=1e-12)

phase_sums = np.stack([K[:, :, a::2, c::2].sum(axis=(2, 3))
                       for a in range(2) for c in range(2)])    # (4 phases, C_in, C_out)
compare("all four phase sums of K == sum of w  ", phase_sums,
        np.broadcast_to(w.sum(axis=(2, 3)).T, phase_sums.shape), rtol=1e-12, atol=1e-12);

# %% [markdown]
# **Exercise E4.2.** Write resize-convolution from its definition, for one channel and without
# `deconv`: repeat every pixel of $x$ $(H, W)$ into a $2 \times 2$ block, pad by 1, and correlate
# with $w$ $(3, 3)$, returning $(2H, 2W)$. `check_exercise` compares with
# `deconv.conv2d(deconv.upsample_nearest2d(x), w, padding=1)`. The worked solution is
# `resize_conv` in [solutions.py](solutions.py).

# %%
def resize_conv(x, w):
    """x (H, W), w (3, 3) -> (2H, 2W): nearest upsampling by 2, then a 3x3 correlation with padding 1."""
    return ...                                     # <- your code here


check_exercise("E4.2", resize_conv)

# %% [markdown]
# Resize-convolution is therefore a *subset* of the 4/2 transposed convolutions, the subset with
# balanced phases. A free 4/2 kernel can represent it exactly, so in Section 6 any difference
# between the two comes from initialisation and optimisation, not from capacity. Aitken et al.
# (2017) use the same correspondence the other way round: they initialise a sub-pixel
# convolution so that it *equals* a nearest-resize followed by a convolution, which removes the
# checkerboard at initialisation while keeping the free kernel.

# %% [markdown]
# ## 4. Stacking compounds the pattern
#
# Decoders stack several stride-2 layers. Write the 1-D transposed convolution without padding
# as "insert $s-1$ zeros between input samples, then convolve" (the picture Dumoulin & Visin,
# 2016, draw of it):
#
# $$
# y = (x{\uparrow}s) * w, \qquad (x{\uparrow}s)[m] = \begin{cases} x[m/s] & s \mid m \\ 0 & \text{otherwise,}\end{cases}
# $$
#
# since $\sum_h x[h]\,w[u - s h] = \sum_m (x{\uparrow}s)[m]\, w[u - m]$ ($*$ is the full linear
# convolution). Zero insertion distributes over convolution, $(a * b){\uparrow}s =
# (a{\uparrow}s) * (b{\uparrow}s)$, and two insertions make one, $(x{\uparrow}s){\uparrow}s =
# x{\uparrow}s^2$. Hence two layers are one:
#
# $$
# \big((x{\uparrow}s) * w_1\big){\uparrow}s * w_2 = (x{\uparrow}s^2) * \underbrace{(w_1{\uparrow}s) * w_2}_{W_2},
# $$
#
# a transposed convolution with stride $s^2$ and kernel $W_2$ of length $s(k_1 - 1) + k_2$; three
# layers give stride $s^3$ and $W_3 = (W_2{\uparrow}s) * w_3$. (With ReLUs in between and
# non-negative signals, as here, nothing changes.) The interior overlap of the stack is the phase
# sums of $W_n$ modulo $s^n$. For three all-ones 3/2 layers:
#
# * one layer: phases $(2, 1)$, contrast max/min $= 2$;
# * two layers: $W_2 = (1, 1, 2, 1, 2, 1, 1)$, phase sums mod 4 $= (3, 2, 3, 1)$, contrast 3;
# * three layers: phase sums mod 8 $= (4, 3, 5, 2, 5, 3, 4, 1)$, contrast 5.
#
# In 2-D the contrasts square: 4, 9, 25. For 4/2 every $W_n$ stays balanced. We check the collapse
# to one layer on the library's outputs, then the phase sums.

# %%
def zero_insert(a, s):
    """a^s: a[m/s] at multiples of s, zeros in between; length s*(len(a)-1)+1."""
    out = np.zeros(s * (len(a) - 1) + 1)
    out[::s] = a
    return out


def stacked_kernel(kernels, s):
    """W_n of n stacked stride-s transposed convolutions: W <- (W^s) * w."""
    W = np.asarray(kernels[0], dtype=float)
    for w_next in kernels[1:]:
        W = np.convolve(zero_insert(W, s), w_next)
    return W


L = 12
contrast = {}
for k, s in [(3, 2), (4, 2)]:
    x = np.ones((1, 1, L))                                       # (N, C, L)
    y = x
    for depth in (1, 2, 3):
        y = deconv.conv_transpose1d(y, np.ones((1, 1, k)), stride=s)          # one more layer
        W = stacked_kernel([np.ones(k)] * depth, s)
        one_layer = deconv.conv_transpose1d(x, W[None, None], stride=s**depth)
        compare(f"{k}/{s} x{depth}: stack == one layer (stride {s**depth:>1}, kernel {len(W):>2})",
                y, one_layer, rtol=0, atol=0)
        period = s**depth
        phase = np.array([W[r::period].sum() for r in range(period)])  # interior overlap per phase
        lo, hi = len(W) - 1, (L - 1) * period                          # interior of the stack
        compare(f"        interior == phase sums {phase.astype(int)}", y[0, 0, lo:hi + 1],
                phase[np.arange(lo, hi + 1) % period], rtol=0, atol=0)
        contrast[k, depth] = phase.max() / phase.min()

print({key: float(v) for key, v in contrast.items()})
assert [contrast[3, d] for d in (1, 2, 3)] == [2.0, 3.0, 5.0]     # uneven overlap compounds
assert [contrast[4, d] for d in (1, 2, 3)] == [1.0, 1.0, 1.0]     # even overlap stays even

# %% [markdown]
# The same stacks in 2-D, from `deconv.conv_transpose2d` applied one, two and three times to an
# all-ones $10 \times 10$ input. Each panel is a $16 \times 16$ crop of the interior, divided by its
# mean so that the colour scales are comparable.

# %%
def stack_2d(k, s, depth, L=10):
    y = np.ones((1, 1, L, L))
    for _ in range(depth):
        y = deconv.conv_transpose2d(y, np.ones((1, 1, k, k)), stride=s)     # (1, 1, H_out, W_out)
    return y[0, 0]


panels = [(3, 2, 1), (3, 2, 2), (3, 2, 3), (4, 2, 3)]
fig, axes = plt.subplots(1, 4, figsize=(11, 3.1))
for ax, (k, s, depth) in zip(axes, panels):
    m = stack_2d(k, s, depth)
    lo = len(stacked_kernel([np.ones(k)] * depth, s)) - 1           # first interior row/column
    crop = m[lo:lo + 16, lo:lo + 16]
    assert np.isclose(crop.max() / crop.min(), contrast[k, depth] ** 2)   # 2-D contrast = 1-D squared
    im = ax.imshow(crop / crop.mean(), cmap="gray", vmin=0, vmax=2.2, interpolation="nearest")
    ax.set_title(f"{depth} layer{'s' if depth > 1 else ''} k={k}, s={s}\nmax/min = "
                 f"{crop.max() / crop.min():.0f}", fontsize=10)
    ax.set_xticks([]); ax.set_yticks([])
fig.colorbar(im, ax=axes, fraction=0.02, pad=0.02, label="count / mean count")
fig.suptitle("Stacked transposed convolutions (all-ones): the uneven 3/2 overlap compounds, 4/2 stays flat",
             y=1.02)
plt.show()

# %% [markdown]
# ## 5. The same pattern in the gradient of a strided convolution
#
# The article's second source of checkerboards runs the other way. A strided convolution (in a
# classifier, an encoder, a GAN's discriminator) computes, in 1-D,
#
# $$
# y[u] = \sum_{\alpha=0}^{k-1} w[\alpha]\, x[s\,u + \alpha - p], \qquad 0 \le u < o = \left\lfloor \tfrac{i + 2p - k}{s} \right\rfloor + 1.
# $$
#
# For a loss $\ell$ with upstream gradient $g[u] = \partial \ell / \partial y[u]$, the chain rule
# collects every output that read $x[m]$:
#
# $$
# \frac{\partial \ell}{\partial x[m]} = \sum_{u} \sum_{\alpha} g[u]\, w[\alpha]\; \mathbb 1\!\left[m = s\,u + \alpha - p\right],
# $$
#
# which is Section 1's stamp with $g$ as input: **the input gradient of a strided convolution is
# a transposed convolution of the upstream gradient** (with the `output_padding` that restores
# the input size). With $g \equiv 1$ and $w \equiv 1$ it is the overlap count. For $k = 3, s = 2,
# p = 1$: input positions of one parity are read by two windows, the others by one, so a
# perfectly uniform upstream gradient arrives at the input as a 1/2 (1-D) or 1/2/4 (2-D)
# checkerboard; the image a generator or a feature visualisation is pushed towards inherits it.
# With $k = 4$ the interior is flat. We check the identity, the counts and, with random $w$ and
# $g$, the gradient itself against central differences.

# %%
H = 9                                                           # 9 -> 5 -> 9 with k=3, s=2, p=1
x = np.random.default_rng(2).standard_normal((1, 1, H, H))     # (N, C_in, H, W)
ones3 = np.ones((1, 1, 3, 3))                                   # (C_out, C_in, kH, kW)
y = deconv.conv2d(x, ones3, stride=2, padding=1)                # (1, 1, 5, 5)
grad_x, _, _ = deconv.conv2d_backward(np.ones_like(y), x, ones3, stride=2, padding=1)   # (1, 1, 9, 9)

q = shapes.inverse_output_padding(H, 3, stride=2, padding=1)
compare("conv grad_input  == conv_transpose(g=1, w=1, s=2, p=1, q)", grad_x,
        deconv.conv_transpose2d(np.ones_like(y), ones3, stride=2, padding=1, output_padding=q),
        rtol=0, atol=0)
c1 = overlap_count_1d(5, 3, 2, p=1)                             # (9,): the 1-D count, p = 1
compare("conv grad_input  == outer(c, c), c = 1-D overlap count", grad_x[0, 0], np.outer(c1, c1),
        rtol=0, atol=0)
assert list(c1) == [1, 2, 1, 2, 1, 2, 1, 2, 1]
assert set(np.unique(grad_x)) == {1.0, 2.0, 4.0}

# The general gradient (random w and g) against float64 central differences
rng = np.random.default_rng(3)
w_rand = rng.standard_normal((1, 1, 3, 3))
g_rand = rng.standard_normal(y.shape)
loss = lambda: float(np.sum(g_rand * deconv.conv2d(x, w_rand, stride=2, padding=1)))
grad_fd = numerical_gradient(loss, x, eps=1e-6)
grad_an, _, _ = deconv.conv2d_backward(g_rand, x, w_rand, stride=2, padding=1)
compare("conv grad_input (random w, g) vs central differences", grad_an, grad_fd, rtol=1e-6, atol=1e-8)

# Kernel 4, stride 2: the interior of the gradient is flat
x10 = np.zeros((1, 1, 10, 10))
ones4 = np.ones((1, 1, 4, 4))
g4 = np.ones_like(deconv.conv2d(x10, ones4, stride=2, padding=1))          # (1, 1, 5, 5)
grad4, _, _ = deconv.conv2d_backward(g4, x10, ones4, stride=2, padding=1)   # (1, 1, 10, 10)
assert np.ptp(grad4[0, 0, 1:-1, 1:-1]) == 0 and grad4[0, 0, 5, 5] == 4
grad_rand1, _, _ = deconv.conv2d_backward(np.ones_like(y), x, w_rand, stride=2, padding=1)

# %%
fig, axes = plt.subplots(1, 3, figsize=(10, 3.3))
shown = [(grad_x[0, 0], "k=3, s=2, w = 1"), (grad4[0, 0], "k=4, s=2, w = 1"),
         (grad_rand1[0, 0], "k=3, s=2, random w")]
for ax, (img, title) in zip(axes, shown):
    im = ax.imshow(img, cmap="gray", interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("input column"); ax.set_ylabel("input row")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
fig.suptitle(r"$\partial \ell / \partial x$ of a strided conv2d for a uniform upstream gradient $g = 1$")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 6. Three decoders, trained the same way
#
# ### 6.1 Task and models
#
# A concrete, CPU-sized task: **x2 super-resolution of photo patches** (`deconv.data.superres`:
# $16 \times 16$ colour patches of scikit-learn's two sample photographs, box-downsampled from the
# $32 \times 32$ targets; training and validation come from disjoint image regions). Every decoder
# has the same two feature layers at low resolution and differs only in its last, upsampling
# layer:
#
# | decoder | upsampling layer (16 channels $\to$ 3) | weights of that layer |
# |---|---|---|
# | **deconv 3/2** | `ConvTranspose2d(16, 3, 3, stride=2, padding=1, output_padding=1)` | $16\cdot3\cdot9 = 432$ |
# | **deconv 4/2** | `ConvTranspose2d(16, 3, 4, stride=2, padding=1)` | $16\cdot3\cdot16 = 768$ |
# | **resize-conv** | `Upsample(scale_factor=2)` (nearest), `Conv2d(16, 3, 3, padding=1)` | $3\cdot16\cdot9 = 432$ |
#
# with the feature layers `Conv2d(3, 16, 3, padding=1), ReLU, Conv2d(16, 16, 3, padding=1), ReLU`
# ($448 + 2320 = 2768$ parameters) in front: input $(N, 3, 16, 16) \to$ features $(N, 16, 16, 16) \to$ output
# $(N, 3, 32, 32)$. The upsampling layer is the last one, as in the DCGAN generator of Radford et
# al. (2016) (there followed only by a tanh), so nothing after it can smooth its pattern away. All
# three are built from the same seed, so their feature layers start identical, and they see the
# same mini-batches.
#
# **The recipe, and why.** Trained directly, for the few hundred steps this notebook can afford,
# such decoders end *below* plain bilinear upsampling: their artifacts would then
# be those of models that have not yet learned the task. So each decoder predicts a **correction
# added to the bilinear upsampling** of its input, $\hat y = \mathrm{bilinear}(x) + D(x)$ (the
# global skip of Kim et al.'s VDSR, 2016, and of `deconv.models.superres` in notebook 6): the
# upsampling layer still writes every output pixel, and whatever pattern it prints is in
# $\hat y$. The upsampling layer's initial weights are PyTorch's default scaled by
# $\gamma = 0.1$, so that the untrained correction is small beside bilinear's output; the scale
# changes no *shape*: the Nyquist fractions of 6.3 do not depend on it. Adam's learning rate is
# $10^{-3}$: a larger one can kill every feature ReLU of a decoder early, after which its
# correction is exactly zero and it *is* bilinear upsampling.
#
# ### 6.2 Measuring the checkerboard: energy at the Nyquist frequency
#
# A pattern of period 2 along an axis lives at the highest frequency the pixel grid can carry,
# $\pi$ radians per pixel (the Nyquist frequency). In the discrete Fourier transform of a length-$M$
# signal ($M$ even), bin $M/2$ is
#
# $$
# Y[M/2] = \sum_m y[m]\, e^{-i\pi m} = \sum_{m \text{ even}} y[m] - \sum_{m \text{ odd}} y[m],
# $$
#
# the difference between the two phases. For images $y$ of shape $(N, C, 32, 32)$ we average the
# power spectrum $P[u, v] = \mathrm{mean}_{n, c}\, |\mathrm{FFT2}(y_{n,c})[u, v]|^2$ and sum it over
# the two Nyquist lines, $u = 16$ (period 2 down the columns) or $v = 16$ (along the rows):
#
# $$
# E_{\mathrm{Nyq}} = \sum_v P[16, v] + \sum_u P[u, 16] - P[16, 16].
# $$
#
# A period-2 checkerboard puts all of its energy there, apart from its mean (at frequency 0). Natural images have some too (edges, fine
# texture), so we report every decoder's $E_{\mathrm{Nyq}}$ **relative to the targets'**, for the
# outputs and for the errors (output $-$ target). By Parseval's theorem
# $\sum_{u,v} |\mathrm{FFT2}(e)|^2 = HW \sum_{h,w} e^2$, the MSE loss weighs an error at the
# Nyquist frequency exactly like an error at any other frequency.

# %%
def power_spectrum(images):
    """mean over images and channels of |FFT2|^2: (N, C, H, W) -> (H, W), float64."""
    spectrum = np.fft.fft2(images.astype(np.float64), axes=(-2, -1))
    return (np.abs(spectrum) ** 2).mean(axis=(0, 1))


def nyquist_energy(P):
    """Power on the lines u = H/2 or v = W/2 (each bin counted once)."""
    H, W = P.shape
    return P[H // 2, :].sum() + P[:, W // 2].sum() - P[H // 2, W // 2]


sig = np.random.default_rng(4).standard_normal(32)
compare("FFT bin M/2 == sum(even) - sum(odd)", np.fft.fft(sig)[16].real,
        sig[0::2].sum() - sig[1::2].sum(), rtol=1e-12, atol=1e-12)
e = np.random.default_rng(5).standard_normal((2, 3, 32, 32))
compare("Parseval: sum |FFT2(e)|^2 == H W sum e^2", power_spectrum(e).sum() * 6,
        32 * 32 * np.sum(e**2), rtol=1e-12, atol=0);

# %%
ds = data.superres(scale=2)                       # float32, x in [0, 1]
x_train, y_train = ds.train.x, ds.train.y          # (1450, 3, 16, 16), (1450, 3, 32, 32)
x_val, y_val = ds.val.x, ds.val.y                  # (450, 3, 16, 16), (450, 3, 32, 32)
print("train", x_train.shape, "->", y_train.shape, "  val", x_val.shape, "->", y_val.shape)

F = 16                                             # feature channels
KINDS = ["deconv 3/2", "deconv 4/2", "resize-conv"]


HEAD_SCALE = 0.1                                   # gamma: the upsampling layer's initial weights, scaled


def decoder(kind, seed=0):
    rng = np.random.default_rng(seed)              # same seed: identical feature layers
    features = [nn.Conv2d(3, F, 3, padding=1, rng=rng), nn.ReLU(),
                nn.Conv2d(F, F, 3, padding=1, rng=rng), nn.ReLU()]                 # (N, F, 16, 16)
    if kind == "deconv 3/2":
        head = [nn.ConvTranspose2d(F, 3, 3, stride=2, padding=1, output_padding=1, rng=rng)]
    elif kind == "deconv 4/2":
        head = [nn.ConvTranspose2d(F, 3, 4, stride=2, padding=1, rng=rng)]
    else:
        head = [nn.Upsample(scale_factor=2), nn.Conv2d(F, 3, 3, padding=1, rng=rng)]
    head[-1].weight.data *= HEAD_SCALE
    return nn.Sequential(*features, *head)                    # D: (N, 3, 16, 16) -> (N, 3, 32, 32)


models = {kind: decoder(kind) for kind in KINDS}
n_params = {kind: sum(p.size for p in m.parameters()) for kind, m in models.items()}
print("parameters:", n_params)
assert n_params == {"deconv 3/2": 2768 + 432 + 3, "deconv 4/2": 2768 + 768 + 3,
                    "resize-conv": 2768 + 432 + 3}                  # features + head weights + bias

# %% [markdown]
# ### 6.3 At initialisation
#
# Feed each untrained decoder's correction $D$ (bilinear upsampling adds only a constant to a
# constant input) a **constant** grey image (every pixel 0.5) and one validation
# patch. By Section 2 the transposed convolutions turn the constant features into a period-2
# pattern of their random phase sums; by Section 3 resize-conv cannot. Away from the borders (the
# zero padding of the convolutions makes the outer pixels differ), we crop the central
# $16 \times 16$ of each $32 \times 32$ output and compare its Nyquist energy with its total
# energy. A period-2 image has power only at the four frequencies $(0, 0), (0, \pi), (\pi, 0),
# (\pi, \pi)$, which we also check.
#
# Which transposed convolution should print the stronger pattern at initialisation? Section 2's
# argument in 2-D: with constant features $h$ (one value per channel), output channel $c_o$ at
# phase $(\phi, \psi)$ is $\sum_{c_i} h_{c_i} S_{\phi\psi}(c_i, c_o)$ plus the bias, and the phase sums of
# independent taps are independent with $\mathrm{Var}\,S_{\phi\psi} = n_{\phi\psi}\sigma^2$. Summed over the four
# phases, the deviation from the phase mean has expectation
# $E\sum_{\phi\psi}(S_{\phi\psi} - \bar S)^2 = \tfrac34 \sum_{\phi\psi} n_{\phi\psi}\sigma^2 = \tfrac34 k^2\sigma^2$. PyTorch's
# default initialisation draws the taps of a transposed convolution uniformly on $[-B, B]$ with
# $B = 1/\sqrt{\text{fan\_in}}$, $\text{fan\_in} = C_{out} k^2$, so $\sigma^2 = B^2/3$ and
# $\tfrac34 k^2 \sigma^2 = 1/(4 C_{out})$, **the same for $k = 3$ and $k = 4$**: the 3/2 layer's taps are
# fewer but larger. Even overlap buys nothing at initialisation. We check it on 400 freshly
# initialised layers of each kind ($400 \cdot 16 \cdot 3$ channel pairs: the 4% tolerance is
# several standard errors).

# %%
grey = np.full((1, 3, 16, 16), 0.5, dtype=np.float32)     # (N, C, H, W), constant input
patch = x_val[[200]]                                       # one validation patch, (1, 3, 16, 16)
init_grey = {kind: m(grey) for kind, m in models.items()}  # (1, 3, 32, 32) each
init_patch = {kind: m(patch) for kind, m in models.items()}

nyquist_fraction_init = {}
for kind in KINDS:
    centre = init_grey[kind][:, :, 8:24, 8:24]             # (1, 3, 16, 16), even offset
    P = power_spectrum(centre)
    nyquist_fraction_init[kind] = nyquist_energy(P) / P.sum()
    four = P[0, 0] + P[0, 8] + P[8, 0] + P[8, 8]
    assert P.sum() - four <= 1e-9 * P.sum(), kind         # period 2: only the four frequencies
    print(f"{kind:12s} constant input: Nyquist energy / total energy of the centre = "
          f"{nyquist_fraction_init[kind]:.3g}")

assert nyquist_fraction_init["resize-conv"] < 1e-10        # exactly flat, up to float32 rounding
assert nyquist_fraction_init["deconv 3/2"] > 1e-3
assert nyquist_fraction_init["deconv 4/2"] > 1e-3

init_rng = np.random.default_rng(6)
for k in (3, 4):
    w = np.stack([nn.ConvTranspose2d(F, 3, k, stride=2, rng=init_rng, dtype=np.float64).weight.data
                  for _ in range(400)])                                 # (400, F, 3, k, k)
    S_ab = np.stack([w[..., a::2, c::2].sum(axis=(-2, -1)) for a in range(2) for c in range(2)])
    imbalance = ((S_ab - S_ab.mean(axis=0)) ** 2).sum(axis=0).mean()   # E sum_ab (S_ab - mean)^2
    compare(f"k={k} s=2, default init: E sum_ab (S_ab - S_mean)^2 vs 1/(4 C_out)",
            np.array(imbalance), np.array(1 / (4 * 3)), rtol=0.04, atol=0)

# %%
fig, axes = plt.subplots(2, 3, figsize=(10, 6.4))
for col, kind in enumerate(KINDS):
    for row, (out, what) in enumerate([(init_grey[kind], "constant input"),
                                       (init_patch[kind], "validation patch")]):
        ax = axes[row, col]
        im = ax.imshow(out[0, 0], cmap="gray", interpolation="nearest")   # red channel
        ax.set_title(f"{kind}, untrained\n{what}", fontsize=10)
        ax.set_xticks([]); ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
fig.suptitle("Untrained decoders (output channel 0): the transposed convolutions print a "
             "checkerboard, resize-conv does not")
fig.tight_layout()
plt.show()

# %% [markdown]
# ### 6.4 Training
#
# Each decoder is trained for the same 300 steps of Adam (Kingma & Ba, 2015; learning rate
# $10^{-3}$) on the MSE loss of $\hat y = \mathrm{bilinear}(x) + D(x)$, with the same
# mini-batches of 16 patches drawn by a seeded generator. The loop is the whole of training
# without autograd: clear the gradients, run forward, evaluate the loss, run the hand-written
# backward from the loss gradient, step. Bilinear upsampling has no parameters, so the loss
# gradient with respect to $\hat y$ is also the gradient with respect to $D(x)$.

# %%
STEPS, BATCH, LR = 300, 16, 1e-3
up_train = deconv.upsample_bilinear2d(x_train, scale_factor=2)      # (1450, 3, 32, 32), fixed
up_val = deconv.upsample_bilinear2d(x_val, scale_factor=2)          # (450, 3, 32, 32)


def train(model, seed=0):
    optimizer = optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.MSELoss()
    batches = np.random.default_rng(seed)           # the same batches for every model
    losses = np.empty(STEPS)
    for step in range(STEPS):
        idx = batches.integers(0, len(x_train), BATCH)
        model.zero_grad()
        prediction = up_train[idx] + model(x_train[idx])     # (BATCH, 3, 32, 32)
        losses[step] = loss_fn(prediction, y_train[idx])
        model.backward(loss_fn.backward())            # d loss / d D(x) = d loss / d y_hat
        optimizer.step()
    return losses


losses, predictions = {}, {}
for kind, model in models.items():
    losses[kind] = train(model)
    model.eval()
    predictions[kind] = up_val + model(x_val)         # (450, 3, 32, 32)
    assert losses[kind][-50:].mean() < losses[kind][:50].mean()          # it did learn
print("\n".join(f"{kind:12s} mean training loss: first 50 steps {losses[kind][:50].mean():.5f}, "
                f"last 50 steps {losses[kind][-50:].mean():.5f}" for kind in KINDS))

# %% [markdown]
# ### 6.5 Results
#
# The table gives the validation PSNR ($10 \log_{10}(1/\mathrm{MSE})$, outputs clipped to $[0, 1]$),
# the Nyquist energy of the outputs and of the errors relative to the targets' Nyquist energy,
# and the Nyquist fraction of the untrained decoder's output for the grey input (6.3). Bilinear upsampling of the input
# (no training; `deconv.upsample_bilinear2d`) is a reference row.

# %%
P_target = power_spectrum(y_val)
E_target = nyquist_energy(P_target)
bilinear = up_val                                                     # (450, 3, 32, 32)
rows = {**{kind: predictions[kind] for kind in KINDS}, "bilinear": bilinear}
spectra, table = {}, {}
lines = [f"{'':12s} {'params':>7s} {'PSNR dB':>8s} {'E_Nyq(out)/E_Nyq(target)':>25s} "
         f"{'E_Nyq(error)/E_Nyq(target)':>28s} {'init: Nyquist fraction, grey':>30s}"]
for name, out in rows.items():
    spectra[name] = power_spectrum(out)
    table[name] = dict(psnr=metrics.psnr(np.clip(out, 0, 1), y_val),
                       out=nyquist_energy(spectra[name]) / E_target,
                       err=nyquist_energy(power_spectrum(out - y_val)) / E_target)
    init = f"{nyquist_fraction_init[name]:.2g}" if name in KINDS else "-"
    params = n_params.get(name, 0)
    lines.append(f"{name:12s} {params:7d} {table[name]['psnr']:8.2f} {table[name]['out']:25.3f} "
                 f"{table[name]['err']:28.3f} {init:>30s}")
print("\n".join(lines))

# %%
out, err = {k: table[k]["out"] for k in table}, {k: table[k]["err"] for k in table}
psnr = {k: table[k]["psnr"] for k in table}
gain = {kind: psnr[kind] - psnr["bilinear"] for kind in KINDS}
assert min(gain.values()) > 0                       # every trained decoder beats bilinear
assert out["resize-conv"] < min(out["deconv 3/2"], out["deconv 4/2"])
ORDER_OUT = sorted(KINDS, key=out.get, reverse=True)
display(Markdown(f"""
Reading the table (the numbers of this seed and these {STEPS} steps, printed above):

* **Every decoder has learned.** Their validation PSNRs beat bilinear upsampling's
  {psnr["bilinear"]:.2f} dB by {", ".join(f"{gain[k]:+.2f} dB ({k})" for k in KINDS)}: the
  artifacts below are those of models that do better than the untrained baseline.
* **Output Nyquist energy.** Bilinear upsampling keeps {out["bilinear"]:.3f} of the targets'
  Nyquist energy; resize-conv, whose correction is smooth at that frequency by construction
  (Section 3), {out["resize-conv"]:.3f}; the transposed convolutions put more there:
  {out["deconv 3/2"]:.3f} (3/2) and {out["deconv 4/2"]:.3f} (4/2).
* **Error Nyquist energy.** Is that extra energy detail or artifact? An output with *no* Nyquist
  content would have an error ratio of exactly 1 (its error would be the targets' own Nyquist
  content). The ratios are {", ".join(f"{err[k]:.3f} ({k})" for k in KINDS + ["bilinear"])}.
* **PSNR** differs between the decoders by {max(gain.values()) - min(gain.values()):.2f} dB at most:
  a checkerboard of small amplitude costs little MSE, which is why a pixel loss alone removes
  it slowly.
"""))

# %% [markdown]
# By eye: five validation patches, from the most textured (largest pixel variance) to smooth,
# bright ones (ranks 0, 27, 243, 306 and 369 of 450 by variance), and below each decoder's output
# of the constant grey image after training. The checkerboard is easiest to see in the smooth,
# bright regions and in the grey image.

# %%
variance = y_val.reshape(len(y_val), -1).var(axis=1)                       # (450,)
order = np.argsort(variance)[::-1][[0, 27, 243, 306, 369]]                  # textured -> smooth
trained_grey = {kind: models[kind](grey) for kind in KINDS}                  # D(grey): (1, 3, 32, 32)
to_rgb = lambda a: np.clip(a.transpose(1, 2, 0), 0, 1)                       # (3, H, W) -> (H, W, 3)

columns = [("input (nearest x2)", deconv.upsample_nearest2d(x_val[order], scale_factor=2)),
           ("target", y_val[order])] + [(kind, predictions[kind][order]) for kind in KINDS]
fig, axes = plt.subplots(6, 5, figsize=(9, 11.2))
for col, (title, images) in enumerate(columns):
    for row in range(5):
        axes[row, col].imshow(to_rgb(images[row]), interpolation="nearest")
    axes[0, col].set_title(title, fontsize=10)
for col in range(5):
    ax = axes[5, col]
    if col >= 2:
        g = trained_grey[KINDS[col - 2]][0, 0]
        ax.imshow(g, cmap="gray", interpolation="nearest")
        ax.set_title(f"grey input, trained\nrange {g[8:24, 8:24].min():.3f}..{g[8:24, 8:24].max():.3f}",
                     fontsize=8)
    else:
        ax.axis("off")
for ax in axes.flat:
    ax.set_xticks([]); ax.set_yticks([])
fig.suptitle(f"Validation patches after {STEPS} steps (bottom row: the correction D of a constant "
             "0.5 input, channel 0)")
fig.tight_layout()
plt.show()

# %% [markdown]
# The spectra. Left: $\log_{10} P[u, v]$ of the targets, averaged over the 450 validation
# patches and 3 channels, zero frequency in the centre, so the Nyquist lines $u = \pm\pi$ and
# $v = \pm\pi$ are the top row and the left column (framed in red in every panel, and the red
# line at $\pi$ in the curve). The
# other three panels divide each decoder's spectrum by the targets': blue where a decoder has less
# power than the photographs (blur), red where it has more. The curve below sums the power over
# $v$ for each vertical frequency $u$, again relative to the targets'.

# %%
shift = np.fft.fftshift
extent = (-16.5, 15.5, 15.5, -16.5)                           # bins -16 .. 15 on both axes
fig, axes = plt.subplot_mosaic([["t", "a", "b", "c"], ["line", "line", "line", "line"]],
                               figsize=(11, 6.8), gridspec_kw={"height_ratios": [1, 0.85]},
                               layout="constrained")
im_t = axes["t"].imshow(np.log10(shift(P_target)), cmap="gray", extent=extent)
axes["t"].set_title("target: log10 power", fontsize=10)
fig.colorbar(im_t, ax=axes["t"], fraction=0.046, pad=0.02)
for key, kind in zip("abc", KINDS):
    im_r = axes[key].imshow(np.log10(shift(spectra[kind] / P_target)), cmap="coolwarm",
                            vmin=-1.5, vmax=1.5, extent=extent)
    axes[key].set_title(f"{kind}\nlog10(power / target power)", fontsize=10)
fig.colorbar(im_r, ax=[axes[k] for k in "abc"], fraction=0.02, pad=0.01, shrink=0.85)
for key in "tabc":                                            # frame row u = -16 and column v = -16
    for xy, width, height in [((-16.5, -16.5), 32, 1), ((-16.5, -16.5), 1, 32)]:
        axes[key].add_patch(plt.Rectangle(xy, width, height, fill=False, ec="red", lw=2.5, zorder=3))
    axes[key].text(-15, -14, "Nyquist", color="red", fontsize=8, fontweight="bold", va="top")
    axes[key].set_xlim(-16.5, 15.5); axes[key].set_ylim(15.5, -16.5)
    axes[key].set_xlabel("v (horizontal frequency bin)", fontsize=8)
    axes[key].tick_params(labelsize=7)
axes["t"].set_ylabel("u (vertical frequency bin)", fontsize=8)
u = np.arange(17)                                             # bins 0 .. 16 (16 = Nyquist)
profile_target = P_target.sum(axis=1)[:17]
for name in KINDS + ["bilinear"]:
    axes["line"].semilogy(u * np.pi / 16, spectra[name].sum(axis=1)[:17] / profile_target,
                          marker="o", ms=3, label=name, ls="--" if name == "bilinear" else "-")
axes["line"].axhline(1, color="k", lw=0.8)
axes["line"].axvline(np.pi, color="red", lw=2.5, alpha=0.7)
axes["line"].text(np.pi, axes["line"].get_ylim()[1], " Nyquist ", color="red", ha="right", va="top",
                  fontweight="bold")
axes["line"].set_xlabel("vertical frequency (radians per pixel); the checkerboard sits at $\\pi$")
axes["line"].set_ylabel("power / target power")
axes["line"].legend()
fig.suptitle("Power spectra of the validation outputs after training, relative to the targets")
plt.show()

# %% [markdown]
# ## 7. What we found
#
# Reproduced, exactly (integer identities with zero tolerance, float64 identities to $10^{-12}$):
#
# * the **overlap counts** of Odena et al.'s figures, computed by `deconv.conv_transpose1d/2d` on
#   all-ones arrays, agree with a hand count and with the closed form
#   $n_r = \lceil (k - r)/s \rceil$; the interior is flat if and only if $s \mid k$ (4/2, 2/2, 6/3,
#   3/1), alternates 2, 1 for 3/2 and 3, 2 for 5/2, and in 2-D is the outer product (1, 2, 4 for 3/2);
# * **stacking compounds** it: three stacked transposed convolutions equal one with stride $s^3$
#   and kernel $W_3$; for 3/2 the contrast grows 2, 3, 5 per axis (4, 9, 25 in 2-D), while 4/2
#   stays flat;
# * the **gradient of a strided convolution** is a transposed convolution of the upstream
#   gradient (also checked against central differences), so a uniform upstream gradient becomes
#   a 1, 2, 4 checkerboard through a 3/2 convolution and stays flat through a 4/2 one;
# * the article's observation that artifacts are present **at initialisation**: with a constant
#   input the untrained 3/2 and 4/2 decoders print a period-2 pattern, resize-conv's output is
#   flat (Nyquist fraction below $10^{-10}$).
#
# Beyond the article, two exact statements explain those observations: a transposed convolution
# answers a constant with its **phase sums**, and even overlap does not balance them (for random
# weights $E[S_r^2] = n_r\sigma^2$, so the overlap map is the variance map); and
# **resize-convolution is a 4/2 transposed convolution with tied weights** whose phase sums are
# all equal, so it is checkerboard-free for constant inputs by construction, not by luck.
#
# **Training**, in numbers built from the table of 6.5 by the cell below:

# %%
ranked = sorted(KINDS + ["bilinear"], key=err.get)
display(Markdown(f"""
x2 super-resolution of photo patches, {STEPS} Adam steps, seed 0, each decoder a correction on top
of bilinear upsampling. All three beat bilinear ({psnr["bilinear"]:.2f} dB) on the held-out
patches: {", ".join(f"{k} {psnr[k]:.2f} dB" for k in KINDS)}. What the upsampling layer adds at the
checkerboard frequency still depends on its kind: relative to the targets' Nyquist energy the
outputs carry {", ".join(f"{out[k]:.3f} ({k})" for k in KINDS + ["bilinear"])}, so the two
transposed convolutions put {out["deconv 3/2"] / out["resize-conv"]:.2f}x (3/2) and
{out["deconv 4/2"] / out["resize-conv"]:.2f}x (4/2) resize-conv's Nyquist power into their outputs,
while resize-conv's stays within {abs(out["resize-conv"] / out["bilinear"] - 1):.1%} of bilinear's.
The Nyquist error ratios, smallest first: {", ".join(f"{k} {err[k]:.3f}" for k in ranked)}.

**What differs, and why.** The article shows artifacts in large GAN generators and in images made
by following a classifier's gradient, where no pixel-wise target pulls the output towards a
natural image; ours is a small regression task at 32x32 on a CPU, trained for a few seconds
with an MSE loss that penalises the checkerboard directly and on top of a smooth bilinear
prediction, so the artifacts are faint by eye (clearest in the constant-input corrections and
in the spectra). The magnitudes hold for this seed and this short schedule; only the orderings
asserted in 6.5 are checked.
"""))

# %% [markdown]
# ## Problems
#
# Work these on paper first, then check each with `deconv` in a new cell.
#
# 1. For $k = 5$, $s = 3$, list $n_r$ for the three phases and the contrast of one layer; then the
#    phase sums of two stacked all-ones 5/3 layers (stride 9) and their contrast.
# 2. Show that a $k = 2s$ transposed convolution with *random* weights still answers a constant
#    input with a period-$s$ pattern, and give the constraint on $w$ that removes it (Section 2).
#    How many free weights does that leave in 2-D, and how does it compare with resize-conv's 9?
# 3. Nearest upsampling by 3 followed by a $3 \times 3$ convolution with padding 1 is a transposed
#    convolution: find its stride, padding and kernel $K$ (the analogue of $B$), and check that all
#    nine phase sums are equal.
# 4. A strided convolution with $k = 3$, $s = 2$, $p = 1$ sits in a classifier. Which input pixels
#    of an $8 \times 8$ image receive gradient from four windows, two, one? Would $k = 4$, $p = 1$
#    change the borders too?
# 5. Why does the MSE loss remove a checkerboard of amplitude $\epsilon$ slowly? Compute the MSE
#    of a period-2 pattern $\pm\epsilon$ added to a perfect prediction, and its PSNR for
#    $\epsilon = 0.01$.
#
# ## References
#
# * Augustus Odena, Vincent Dumoulin, Chris Olah. *Deconvolution and Checkerboard Artifacts.*
#   Distill, 2016. doi:10.23915/distill.00003.
# * Vincent Dumoulin, Francesco Visin. *A guide to convolution arithmetic for deep learning.*
#   arXiv:1603.07285, 2016.
# * Wenzhe Shi, Jose Caballero, Ferenc Huszár, Johannes Totz, Andrew P. Aitken, Rob Bishop,
#   Daniel Rueckert, Zehan Wang. *Real-Time Single Image and Video Super-Resolution Using an
#   Efficient Sub-Pixel Convolutional Neural Network.* CVPR 2016, arXiv:1609.05158.
# * Andrew Aitken, Christian Ledig, Lucas Theis, Jose Caballero, Zehan Wang, Wenzhe Shi.
#   *Checkerboard artifact free sub-pixel convolution: A note on sub-pixel convolution, resize
#   convolution and convolution resize.* arXiv:1707.02937, 2017.
# * Alec Radford, Luke Metz, Soumith Chintala. *Unsupervised Representation Learning with Deep
#   Convolutional Generative Adversarial Networks.* ICLR 2016, arXiv:1511.06434.
# * Diederik P. Kingma, Jimmy Ba. *Adam: A Method for Stochastic Optimization.* ICLR 2015,
#   arXiv:1412.6980.
