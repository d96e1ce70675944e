# %% [markdown]
# # 1. Convolution arithmetic
#
# How big is the output of a convolution, a pooling layer or a transposed convolution, and
# *why*? This notebook re-derives, one relationship at a time, the output-size arithmetic of
# Dumoulin & Visin's *A guide to convolution arithmetic for deep learning* (2016,
# arXiv:1603.07285): no padding, zero padding, half ("same") and full padding, strides and the
# floor they bring, dilation, pooling, and the transposed convolution with its extra parameter
# $a$ (PyTorch's `output_padding`). Each relationship is derived in prose, then checked against
# `deconv.shapes` and against the shapes the library's ops actually produce, over a grid of
# configurations.
#
# We then redraw the guide's figures, but from the library's *own* index maps: we feed one-hot
# images through `deconv.conv2d` and `deconv.conv_transpose2d` and read off which input pixel
# reaches which output pixel through which kernel tap. Finally we build the guide's sparse matrix
# $\mathbf C$ (its Section 4.1) from the same one-hot trick and verify that the transposed
# convolution *is* $\mathbf C^\top$, that the backward pass of the convolution is $\mathbf C^\top$
# too, and that both agree with float64 central differences.
#
# You will learn: the one formula behind all of the guide's fifteen relationships, why a strided
# convolution maps $s$ different input sizes to the same output size, why the transposed
# convolution therefore needs $a$, and how "transposed convolution = zero insertion + padding +
# flipped kernel" follows from transposing a matrix.

# %% [markdown]
# ## 0. Notation and set-up
#
# The arithmetic never mixes axes: kernel size, stride, padding and dilation along the height
# only affect the output height. So, as in the guide, everything is derived for **one axis**.
# The letters are those of the whole series, stated once in [NOTATION.md](NOTATION.md): input
# size $i$, output size $o$, kernel size $k$ with taps $\alpha$ (row) and $\beta$ (column), stride
# $s$, padding $p$ on each side, dilation $d$, kernel extent $\hat k = d(k-1)+1$, and the transposed
# convolution's output padding $a$ (`output_padding`); output pixels are $(u, v)$, input pixels
# $(h, \ell)$, and $\bar y = \partial L/\partial y$ is an upstream gradient. Only here, following the
# guide, primes $i', o', k', s', p'$ name the *equivalent direct convolution* of a transposed one.
#
# Arrays follow PyTorch: the input $x$ has shape $(N, C_{in}, H, W)$ (batch, channels, height,
# width), a convolution weight $w$ has shape $(C_{out}, C_{in}, k_H, k_W)$ (no groups here), the
# output $y$ has shape $(N, C_{out}, H_{out}, W_{out})$. A transposed convolution's weight has shape
# $(C_{in}, C_{out}, k_H, k_W)$ in its own naming, which is the convolution's layout read the
# other way round; Section 6 shows why that is no accident.
#
# All checks are in float64. `compare(name, actual, expected)` prints
# `name | exact | approx | maxdiff` and raises if the two disagree beyond the tolerance, and every
# other claim is an `assert`: if this notebook runs to the end, every number in it holds.

# %%
import numpy as np
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

import deconv
from deconv import shapes
from deconv.gradcheck import compare as compare_arrays, numerical_gradient

from exercise import check_exercise          # notebooks/exercise.py: marks the fill-in cells
from gif import save_gif                     # notebooks/gif.py: animations as GIF files

rng = np.random.default_rng(0)
MAXDIFF = {}                                 # name -> largest |difference| of every compare below


def compare(name, actual, expected, **tolerances):
    """deconv.gradcheck.compare (prints, raises on disagreement), its maxdiff remembered by name."""
    MAXDIFF[name] = compare_arrays(name, actual, expected, **tolerances)
    return MAXDIFF[name]


def pair(v):
    """An int or a pair -> a pair (height, width)."""
    return (v, v) if np.isscalar(v) else tuple(v)

# %% [markdown]
# ## 1. The convolution, written out
#
# A (deep-learning) convolution is a cross-correlation: the kernel is not flipped. With zero
# padding $p$ on both sides, $x_{\text{pad}}$ has height $i + 2p$, and
#
# $$
# y[n, c_o, u, v] \;=\; \sum_{c=0}^{C_{in}-1}\sum_{\alpha=0}^{k_H-1}\sum_{\beta=0}^{k_W-1}
#   w[c_o, c, \alpha, \beta]\; x_{\text{pad}}[n, c,\; u\,s_H + \alpha\, d_H,\; v\, s_W + \beta\, d_W].
# $$
#
# Read it as a window: output row $u$ looks at the padded rows $u s,\ u s + d,\ \dots,\ u s +
# (k-1)d$, a window whose first row is $u s$ and whose extent is $\hat k = d(k-1)+1$ rows. The
# window slides by $s$. The output has one row per window position that still fits inside the
# padded input.
#
# The formula itself, one loop per index, is `deconv.kernels.naive.conv2d_forward`, printed
# below: the package's plain loop nest of the convolution (there $u, v$ are the input row and
# column, $i, j$ the output's, $a, b$ the kernel taps, and the group is a loop of its own; here
# there is one group). It reads the zero padding as an explicit zero instead of padding the
# array, and it is told the output size rather than computing it. We give it that size by
# counting, which is the sentence above as code: `rows` lists every start $0, s, 2s, \dots$ of
# the window in the padded input that leaves room for it, and the output has `len(rows)` rows.
# No output-size formula is used; the size *emerges* from the counting, so comparing it with
# `deconv.shapes` later is a real test.

# %%
import inspect

from deconv.kernels import naive


def conv2d_naive(x, w, stride=1, padding=0, dilation=1):
    """naive.conv2d_forward, the output size counted by sliding the window.

    x (N, C_in, H, W), w (C_out, C_in, kH, kW) -> (N, C_out, H_out, W_out).
    """
    (sH, sW), (pH, pW), (dH, dW) = pair(stride), pair(padding), pair(dilation)
    kH, kW = w.shape[2:]
    extH, extW = dH * (kH - 1) + 1, dW * (kW - 1) + 1          # extent of the dilated window
    rows = range(0, x.shape[2] + 2 * pH - extH + 1, sH)         # every start that leaves room
    cols = range(0, x.shape[3] + 2 * pW - extW + 1, sW)
    # Section 7 passes views (a cropped canvas, a flipped kernel): C-order copies keep the kernel
    # to one compiled specialisation.
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    return naive.conv2d_forward(x, w, None, sH, sW, pH, pW, dH, dW, 1, len(rows), len(cols))


print(inspect.getsource(naive.conv2d_forward))


x = rng.standard_normal((2, 3, 7, 9))                           # (N, C_in, H, W)
w = rng.standard_normal((4, 3, 3, 2))                           # (C_out, C_in, kH, kW)
config = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2))
y = deconv.conv2d(x, w, **config)                               # (N, C_out, H_out, W_out)
print("output shape:", y.shape)
compare("deconv.conv2d vs the naive loop", y, conv2d_naive(x, w, **config), rtol=1e-12, atol=1e-12)

# %% [markdown]
# ### One convolution by hand
#
# Small enough to redo on paper, and the same numbers return in notebooks 2 and 3: a $3\times 3$
# integer input, a $2\times 2$ kernel whose values are its tap numbers ($w[\alpha, \beta] = 1 +
# 2\alpha + \beta$, so a printed product names the tap that made it), stride $s = 2$ and padding
# $p = 1$. The cell pads the input, then, for each output pixel $(u, v)$, cuts the window whose
# top-left cell is $(us, vs)$ in the padded input and sums tap times pixel. Nothing is flipped.
# The last line is relationship 15 at work: the floor leaves $(i + 2p - \hat k) \bmod s$ padded
# rows and columns that no window reads.

# %%
X_HAND = np.array([[1., 2., 1.],
                   [3., 1., 2.],
                   [2., 1., 3.]])                                 # (H, W) = (3, 3)
W_HAND = np.array([[1., 2.],
                   [3., 4.]])                                     # (k_H, k_W) = (2, 2): tap numbers
S_HAND, P_HAND = 2, 1

x_pad = np.pad(X_HAND, P_HAND)                                    # (H + 2p, W + 2p) = (5, 5)
o_hand = shapes.conv_output_size(3, 2, S_HAND, P_HAND)
print(f"padded input, {x_pad.shape[0]}x{x_pad.shape[1]}:\n{x_pad}\n")
y_hand = np.zeros((o_hand, o_hand))                               # (H_out, W_out)
for u in range(o_hand):
    for v in range(o_hand):
        window = x_pad[u * S_HAND:u * S_HAND + 2, v * S_HAND:v * S_HAND + 2]   # (k_H, k_W)
        y_hand[u, v] = np.sum(W_HAND * window)
        terms = " + ".join(f"{t:.0f}*{x_:.0f}" for t, x_ in zip(W_HAND.ravel(), window.ravel()))
        print(f"y[{u},{v}]: window at padded rows {u * S_HAND}-{u * S_HAND + 1}, columns "
              f"{v * S_HAND}-{v * S_HAND + 1}:  {terms} = {y_hand[u, v]:.0f}")
print(f"\ny =\n{y_hand}")
compare("by hand vs deconv.conv2d", y_hand,
        deconv.conv2d(X_HAND[None, None], W_HAND[None, None], stride=S_HAND, padding=P_HAND)[0, 0],
        rtol=0, atol=0)
unread = (3 + 2 * P_HAND - 2) % S_HAND
print(f"(i + 2p - k) mod s = {unread}: the last {unread} padded row(s) and column(s) are read by no window")

# %% [markdown]
# The same computation in motion: the window (dark, with its tap numbers in the corners) slides
# by $s = 2$ over the padded input (dashed cells are padding), and each position fills one output
# pixel. The cell writes the frames to `figures/conv_sliding_window.gif`, shown below it; the GIF
# plays on the repository host without a running kernel.

# %%
BLUE, CYAN = "#7fb0e3", "#9be8e8"


def square(ax, x0, y0, face, edge="0.25", ls="-", alpha=1.0, z=1):
    ax.add_patch(Rectangle((x0, y0), 1, 1, facecolor=face, edgecolor=edge, linestyle=ls,
                           linewidth=0.8, alpha=alpha, zorder=z))


def draw_conv_frame(frame, axes):
    """Frame `frame` of the sliding window of the hand example: padded input | output so far."""
    u, v = divmod(frame, o_hand)
    for ax in axes:
        ax.clear()
        ax.set_aspect("equal")
        ax.axis("off")
    ax_in, ax_out = axes
    P = x_pad.shape[0]
    for r in range(P):
        for c in range(P):
            padding = not (P_HAND <= r < P - P_HAND and P_HAND <= c < P - P_HAND)
            square(ax_in, c, r, "white" if padding else BLUE, ls="--" if padding else "-",
                   edge="0.6" if padding else "0.25")
            ax_in.text(c + 0.5, r + 0.55, f"{x_pad[r, c]:.0f}", ha="center", va="center", fontsize=11,
                       color="0.6" if padding else "black")
    for alpha in range(2):
        for beta in range(2):
            r, c = u * S_HAND + alpha, v * S_HAND + beta
            square(ax_in, c, r, "black", alpha=0.35, z=2)
            ax_in.text(c + 0.1, r + 0.2, f"w={W_HAND[alpha, beta]:.0f}", fontsize=7, color="white",
                       va="center", zorder=3)
    ax_in.set_xlim(-0.2, P + 0.2)
    ax_in.set_ylim(P + 0.2, -0.2)
    ax_in.set_title(f"padded input (p={P_HAND}), window of y[{u},{v}]", fontsize=10)
    for r in range(o_hand):
        for c in range(o_hand):
            done = r * o_hand + c <= frame
            square(ax_out, c, r, CYAN if done else "white")
            if done:
                ax_out.text(c + 0.5, r + 0.55, f"{y_hand[r, c]:.0f}", ha="center", va="center", fontsize=12)
    square(ax_out, v, u, "black", alpha=0.35, z=2)
    ax_out.set_xlim(-0.2, o_hand + 0.2)
    ax_out.set_ylim(o_hand + 0.2, -0.2)
    window = x_pad[u * S_HAND:u * S_HAND + 2, v * S_HAND:v * S_HAND + 2]
    terms = " + ".join(f"{t:.0f}·{x_:.0f}" for t, x_ in zip(W_HAND.ravel(), window.ravel()))
    ax_out.set_title(f"y[{u},{v}] = {terms} = {y_hand[u, v]:.0f}", fontsize=9)


fig, axes = plt.subplots(1, 2, figsize=(7, 3.4), gridspec_kw=dict(width_ratios=[5, 2.6]))
size = save_gif(fig, lambda frame: draw_conv_frame(frame, axes), o_hand * o_hand,
                "conv_sliding_window.gif", fps=0.8)
print(f"figures/conv_sliding_window.gif: {o_hand * o_hand} frames, {size / 1000:.0f} kB")

# %% [markdown]
# ![The 2x2 window sliding with stride 2 over the padded 3x3 input](figures/conv_sliding_window.gif)
#
# **Exercise E1.3.** Write the sliding window yourself, for one channel: `x` of shape $(H, W)$,
# `w` of shape $(k, k)$, stride `s`, padding `p`, returning the $(H_{out}, W_{out})$ output. Replace
# the `...` and run the cell: `check_exercise` compares your function with `deconv.conv2d` on six
# integer cases (the hand example among them) and prints PASS, or the first case that differs, or
# "not done yet". The worked solution is `conv2d_sliding_window` in
# [solutions.py](solutions.py) (`from solutions import conv2d_sliding_window` to try it).

# %%
def conv2d_sliding_window(x, w, s, p):
    """x (H, W), w (k, k) -> y (H_out, W_out): pad x by p, slide the window by s, sum w * window."""
    return ...                                     # <- your code here


check_exercise("E1.3", conv2d_sliding_window)

# %% [markdown]
# ## 2. Counting window positions: the guide's relationships 1-6 and 15
#
# **The one derivation.** Put the padded input on the line $0, 1, \dots, i+2p-1$. Output $u$'s
# window occupies $[u s,\; u s + \hat k - 1]$. It fits iff its last tap is inside:
#
# $$ u s + \hat k - 1 \le i + 2p - 1 \iff u \le \frac{i + 2p - \hat k}{s}. $$
#
# The valid $u$ are $0, 1, \dots, \lfloor (i+2p-\hat k)/s \rfloor$, so
#
# $$ \boxed{\,o = \left\lfloor \frac{i + 2p - \hat k}{s} \right\rfloor + 1
#            = \left\lfloor \frac{i + 2p - k - (k-1)(d-1)}{s} \right\rfloor + 1\,} $$
#
# which is the guide's **relationship 15** (dilated convolution) and PyTorch's formula
# $\lfloor (i + 2p - d(k-1) - 1)/s \rfloor + 1$. If $\hat k > i + 2p$ not even $u = 0$ fits: there
# is no output, and `deconv` refuses the configuration with a `ValueError`.
#
# Every other relationship of the guide's Chapter 2 is a special case:
#
# | guide | conditions | $o$ | why |
# |---|---|---|---|
# | Rel. 1 | $s=1,\ p=0,\ d=1$ | $(i-k)+1$ | the kernel takes $i-k$ unit steps, plus its first position |
# | Rel. 2 | $s=1,\ d=1$ | $(i-k)+2p+1$ | padding makes the effective input $i+2p$ |
# | Rel. 3 (half/same) | $s=1,\ d=1,\ k=2n+1,\ p=n$ | $i$ | $2\lfloor k/2\rfloor = k-1$ exactly cancels the $-(k-1)$ |
# | Rel. 4 (full) | $s=1,\ d=1,\ p=k-1$ | $i+(k-1)$ | every partial overlap of kernel and input counts |
# | Rel. 5 | $p=0,\ d=1$ | $\lfloor (i-k)/s\rfloor+1$ | steps of size $s$; the floor drops a last incomplete step |
# | Rel. 6 | $d=1$ | $\lfloor (i+2p-k)/s\rfloor+1$ | Rel. 5 on the padded input |
# | Rel. 15 | any | $\lfloor (i+2p-\hat k)/s\rfloor+1$ | Rel. 6 with the kernel's extent $\hat k$ in place of $k$ |
#
# Dilation only changes the *extent* of the window (a $k$-tap kernel with $d-1$ holes between taps
# spans $k + (k-1)(d-1)$ cells), never the number of taps, so relationship 15 is relationship 6
# with $k \to \hat k$.
#
# We now write the relationships exactly as the guide states them, sweep a grid of $(i, k, s, p,
# d)$, and check, for every configuration, that `deconv.shapes.conv_output_size`, the window count
# of the naive loop, and each relationship that applies, all give the same $o$.

# %%
def rel1(i, k): return (i - k) + 1                                      # s=1, p=0
def rel2(i, k, p): return (i - k) + 2 * p + 1                           # s=1
def rel3(i, k): return i                                                # s=1, k odd, p=k//2
def rel4(i, k): return i + (k - 1)                                      # s=1, p=k-1
def rel5(i, k, s): return (i - k) // s + 1                              # p=0
def rel6(i, k, s, p): return (i + 2 * p - k) // s + 1                   # d=1
def rel15(i, k, s, p, d): return (i + 2 * p - k - (k - 1) * (d - 1)) // s + 1
def windows(i, k, s, p, d): return len(range(0, i + 2 * p - (d * (k - 1) + 1) + 1, s))  # the loop's count


grid = [(i, k, s, p, d) for i in range(1, 17) for k in range(1, 8) for s in range(1, 5)
        for p in range(0, 6) for d in range(1, 4)]
checked = dict.fromkeys(["Rel. 1", "Rel. 2", "Rel. 3", "Rel. 4", "Rel. 5", "Rel. 6", "Rel. 15"], 0)
valid, refused = [], 0
for i, k, s, p, d in grid:
    if shapes.effective_kernel_size(k, d) > i + 2 * p:               # no window fits
        try:
            shapes.conv_output_size(i, k, s, p, d)
        except ValueError:
            refused += 1
            continue
        raise AssertionError(f"no window fits but no error for {(i, k, s, p, d)}")
    o = shapes.conv_output_size(i, k, s, p, d)
    assert o == rel15(i, k, s, p, d) == windows(i, k, s, p, d) >= 1, (i, k, s, p, d)
    checked["Rel. 15"] += 1
    if d == 1:
        assert o == rel6(i, k, s, p); checked["Rel. 6"] += 1
        if p == 0:
            assert o == rel5(i, k, s); checked["Rel. 5"] += 1
        if s == 1:
            assert o == rel2(i, k, p); checked["Rel. 2"] += 1
            if p == 0:
                assert o == rel1(i, k); checked["Rel. 1"] += 1
            if k % 2 == 1 and p == k // 2:
                assert o == rel3(i, k); checked["Rel. 3"] += 1
            if p == k - 1:
                assert o == rel4(i, k); checked["Rel. 4"] += 1
    valid.append((i, k, s, p, d))
print(f"{len(grid)} configurations: {len(valid)} valid, {refused} refused (kernel extent > padded input)")
for name, n in checked.items():
    print(f"  {name:8s} holds on all {n:5d} configurations where it applies")

# %% [markdown]
# `deconv.shapes` is the library's arithmetic, but the ops could in principle disagree with it.
# So we also run `deconv.conv2d` itself on small arrays. Each call draws *two* configurations
# from the valid list, one for the height and one for the width, which also checks that the axes
# really do not interact.

# %%
picks = rng.integers(0, len(valid), size=(300, 2))
for a, b in picks:
    (iH, kH, sH, pH, dH), (iW, kW, sW, pW, dW) = valid[a], valid[b]
    y = deconv.conv2d(np.ones((1, 2, iH, iW)), np.ones((3, 2, kH, kW)),
                      stride=(sH, sW), padding=(pH, pW), dilation=(dH, dW))    # (1, 3, H_out, W_out)
    assert y.shape == (1, 3, rel15(iH, kH, sH, pH, dH), rel15(iW, kW, sW, pW, dW)), (valid[a], valid[b])
print(f"deconv.conv2d output shapes match relationship 15 on {len(picks)} random (height, width) pairs")

# %% [markdown]
# **Exercise E1.1.** Without looking back at the box above, write the output size of a dilated,
# strided, padded convolution along one axis, from the window-counting argument. `check_exercise`
# compares your function with `deconv.shapes.conv_output_size` on every valid configuration with
# $i \le 12$, $k \le 5$, $s \le 3$, $p \le 3$, $d \le 3$. (Solution: `conv_output_size` in
# [solutions.py](solutions.py).)

# %%
def conv_output_size(i, k, s, p, d):
    """Number of windows of extent d(k-1)+1, one every s cells, inside i + 2p cells."""
    return ...                                     # <- your formula here


check_exercise("E1.1", conv_output_size)

# %% [markdown]
# ### Half ("same") padding when $k$ is even
#
# Relationship 3 needs an odd $k$: $o = i$ requires a total padding of exactly $\hat k - 1 =
# d(k-1)$, which splits evenly into $p$ on each side only when $d(k-1)$ is even. PyTorch's
# `padding='same'` (stride 1 only) solves the odd case by padding asymmetrically, the extra
# zero going to the bottom/right: `shapes.same_padding(4) == (1, 2)`. We check that
# `padding='same'` keeps the size for every $k \le 7$ and $d \le 3$, and that it is *exactly* the
# convolution of the input padded by hand with $(\lfloor d(k-1)/2\rfloor, \lceil d(k-1)/2
# \rceil)$ zeros.

# %%
x = rng.standard_normal((1, 2, 9, 8))                            # (N, C_in, H, W)
for k in range(1, 8):
    for d in range(1, 4):
        w = rng.standard_normal((3, 2, k, k))                    # (C_out, C_in, k, k)
        y = deconv.conv2d(x, w, padding="same", dilation=d)      # (1, 3, 9, 8)
        assert y.shape[2:] == x.shape[2:]
        before, after = shapes.same_padding(k, d)
        assert before + after == d * (k - 1) and after - before in (0, 1)
        x_pad = np.pad(x, ((0, 0), (0, 0), (before, after), (before, after)))
        compare(f"same k={k} d={d}", y, deconv.conv2d(x_pad, w, dilation=d), rtol=0, atol=0,
                quiet=(k, d) != (4, 1))
print("padding='same' keeps the size and equals explicit (before, after) padding for k <= 7, d <= 3")

# %% [markdown]
# ## 3. The guide's figures, redrawn from deconv's own index map
#
# To draw which input pixels a given output pixel looks at, we do not re-use the formula: we ask
# the library. The convolution is linear in $x$, so feeding it the one-hot image $e_j$ (a 1 at
# pixel $j$, zeros elsewhere) returns column $j$ of its matrix. We make the kernel *name its
# taps*, $w[\alpha, \beta] = 1 + \alpha k + \beta$, so that the output at pixel $u$ for input
# $e_j$ is the number of the tap that joins $j$ to $u$, or 0 if none does. Stacking the $i^2$
# one-hot images as a batch gives, in one `conv2d` call, the whole tap map `M` of shape
# $(o^2, i^2)$.
#
# From `M` we recover, for each output pixel, where its window sits: tap $(\alpha, \beta)$ over
# input pixel $(r, c)$ means the window's top-left tap is at $(r - \alpha d,\ c - \beta d)$
# (negative = in the padding). All taps of one window must agree on that corner, and the corner
# of output $(u, v)$ must be $(u s - p,\ v s - p)$, the guide's "slide by $s$ from the padded
# corner": both are asserted for every output pixel of every figure.

# %%
def tap_kernel(k):
    """A (1, 1, k, k) weight whose values name the taps: 1 + alpha*k + beta."""
    return (1.0 + np.arange(k * k)).reshape(1, 1, k, k)


def conv_tap_map(i, k, s=1, p=0, d=1):
    """M (o*o, i*i): the tap of conv2d joining input pixel j to output pixel u (1-based), 0 if none."""
    onehots = np.eye(i * i).reshape(i * i, 1, i, i)                  # (i*i, 1, i, i), batch of e_j
    y = deconv.conv2d(onehots, tap_kernel(k), stride=s, padding=p, dilation=d)   # (i*i, 1, o, o)
    return y.reshape(i * i, -1).T                                   # (o*o, i*i)


def window_corner(row, i, k, d):
    """Top-left tap of the window behind one output pixel (input coordinates), from its row of M."""
    r, c = np.nonzero(row.reshape(i, i))
    alpha, beta = np.divmod(row.reshape(i, i)[r, c].astype(int) - 1, k)
    corners = set(zip((r - alpha * d).tolist(), (c - beta * d).tolist()))
    assert len(corners) == 1, corners                                # all taps agree
    return corners.pop()

# %% [markdown]
# The drawing helpers below only *paint* what those maps say: blue cells are the input, white
# dashed cells are zeros (padding, or in Section 8 inserted zeros), the dark cells are the taps of
# one window, each labelled with the number $1 + \alpha k + \beta$ of the kernel tap it meets, the
# cyan grid is the output with the corresponding pixel darkened. A red × marks a cell that no
# window ever reaches.

# %%
def paint(ax, is_input, reached, taps, n_out, out_cell, title, tap_numbers):
    """is_input, reached: (P, P) bool on the canvas; taps: canvas cells of the highlighted window,
    tap_numbers: the kernel tap (1 + alpha*k + beta) each of them meets."""
    P = is_input.shape[0]
    for r in range(P):
        for c in range(P):
            square(ax, c, r, BLUE if is_input[r, c] else "white", ls="-" if is_input[r, c] else "--",
                   edge="0.25" if is_input[r, c] else "0.6")
            if not reached[r, c]:
                ax.plot(c + 0.5, r + 0.5, marker="x", color="tab:red", ms=6, zorder=3)
    for (r, c), number in zip(taps, tap_numbers):
        square(ax, c, r, "black", alpha=0.4, z=2)
        ax.text(c + 0.5, r + 0.55, str(number), ha="center", va="center", fontsize=6.5, color="white",
                zorder=3)
    x0, y0 = P + 1.0, (P - n_out) / 2
    for r in range(n_out):
        for c in range(n_out):
            square(ax, x0 + c, y0 + r, CYAN)
    square(ax, x0 + out_cell[1], y0 + out_cell[0], "black", alpha=0.4, z=2)
    ax.set_xlim(-0.3, x0 + n_out + 0.3)
    ax.set_ylim(P + 0.3, -0.3)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=9)


def conv_panel(ax, i, k, s=1, p=0, d=1, label=""):
    """Draw conv2d(i, k, s, p, d) from deconv's tap map; highlight the top-right output pixel."""
    M = conv_tap_map(i, k, s, p, d)                                  # (o*o, i*i)
    o = int(round(np.sqrt(M.shape[0])))
    corners = [window_corner(M[u], i, k, d) for u in range(o * o)]  # read off deconv
    assert corners == [(u * s - p, v * s - p) for u in range(o) for v in range(o)]
    P = i + 2 * p                                                    # padded canvas
    offsets = [(a * d, b * d) for a in range(k) for b in range(k)]
    reached = np.zeros((P, P), bool)
    for r0, c0 in corners:
        for da, db in offsets:
            reached[r0 + p + da, c0 + p + db] = True
    is_input = np.zeros((P, P), bool)
    is_input[p:p + i, p:p + i] = True
    r0, c0 = corners[o - 1]                                          # output pixel (0, o-1)
    taps = [(r0 + p + da, c0 + p + db) for da, db in offsets]
    dil = f", d={d}" if d > 1 else ""
    numbers = [1 + a * k + b for a in range(k) for b in range(k)]    # the order of `offsets`
    paint(ax, is_input, reached, taps, o, (0, o - 1), f"{label}\ni={i}, k={k}, s={s}, p={p}{dil}  →  o={o}",
          numbers)
    return o

# %% [markdown]
# The eight configurations of the guide's Figures 2.1-2.7 and 5.1. The guide states each one's
# output size in its caption or text; we assert that the map read off `deconv` has exactly that
# many output pixels.
#
# Look at panel 2.7 ($i=6,\ k=3,\ s=2,\ p=1$): the bottom row and the right column of the padded
# input carry a red ×, no window reaches them, exactly as the guide's caption says. That is the
# floor of relationship 6 at work: $(6 + 2 - 3)/2 = 2.5$ steps, rounded down to 2. Panel 2.6 has
# $i=5$ and the *same* $3\times 3$ output; Section 4 makes this ambiguity precise.

# %%
figure_configs = [  # (guide figure, i, k, s, p, d, output size stated by the guide)
    ("Fig. 2.1 no padding", 4, 3, 1, 0, 1, 2), ("Fig. 2.2 arbitrary padding", 5, 4, 1, 2, 1, 6),
    ("Fig. 2.3 half padding", 5, 3, 1, 1, 1, 5), ("Fig. 2.4 full padding", 5, 3, 1, 2, 1, 7),
    ("Fig. 2.5 stride 2", 5, 3, 2, 0, 1, 2), ("Fig. 2.6 padding + stride", 5, 3, 2, 1, 1, 3),
    ("Fig. 2.7 padding + stride, odd", 6, 3, 2, 1, 1, 3), ("Fig. 5.1 dilation", 7, 3, 1, 0, 2, 3),
]
fig, axes = plt.subplots(2, 4, figsize=(11, 6.2))
for ax, (label, i, k, s, p, d, o_guide) in zip(axes.ravel(), figure_configs):
    assert conv_panel(ax, i, k, s, p, d, label) == o_guide == shapes.conv_output_size(i, k, s, p, d)
assert (6 + 2 * 1 - 3) / 2 == 2.5 and shapes.conv_output_size(6, 3, 2, 1) - 1 == 2   # Fig. 2.7: 2.5 steps -> 2
fig.suptitle("Convolutions of the guide, drawn from deconv.conv2d on one-hot inputs\n"
             "blue: input, dashed: zero padding, dark: window of the darkened output pixel (cyan), "
             "red ×: never reached", fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. The floor: $s$ input sizes share one output size
#
# For $s > 1$ the floor in relationship 6 throws information away. Write $i + 2p - \hat k =
# (o-1)s + a$ with $0 \le a < s$; then $o = \lfloor (i+2p-\hat k)/s \rfloor + 1$ for each of the
# $s$ inputs
#
# $$ i = (o-1)s + \hat k - 2p + a, \qquad a = (i + 2p - \hat k) \bmod s \in \{0, \dots, s-1\}. $$
#
# The guide puts it as: if $i+2p-k$ is a multiple of $s$, then $i, i+1, \dots, i+s-1$ all give
# the same $o$. The last window ends at cell $(o-1)s + \hat k - 1$ of the padded input, so its
# last $a$ cells are never read (the red × of Fig. 2.7, where they are padding; with less padding
# they are real input pixels, which the convolution silently ignores). Going backwards, from $o$
# to $i$, we will have to *choose* $a$; that is the job of `output_padding`. We check on the
# whole sweep that, for fixed $(k, s, p, d)$, the inputs with output $o$ are exactly the $s$
# consecutive sizes above (when they are $\ge 1$), and plot the staircase with the library's
# real shapes.

# %%
valid_set = set(valid)
families = sorted({(k, s, p, d) for _, k, s, p, d in valid})
for k, s, p, d in families:
    k_hat = d * (k - 1) + 1
    sizes = [i for i in range(1, 17) if (i, k, s, p, d) in valid_set]
    for o in {shapes.conv_output_size(i, k, s, p, d) for i in sizes}:
        inputs = [i for i in sizes if shapes.conv_output_size(i, k, s, p, d) == o]
        expected = [(o - 1) * s + k_hat - 2 * p + a for a in range(s)]
        assert inputs == [i for i in expected if 1 <= i <= 16], (k, s, p, d, o)
print(f"for all {len(families)} (k, s, p, d) families: output o <- exactly the inputs (o-1)s + k_hat - 2p + a, a < s")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
colours = {0: "tab:blue", 1: "tab:orange", 2: "tab:green"}
k, p = 3, 1
for ax, s in zip(axes, (2, 3)):
    sizes = np.arange(2, 17)
    outs = [deconv.conv2d(np.ones((1, 1, i, i)), np.ones((1, 1, k, k)), stride=s, padding=p).shape[2]
            for i in sizes]                                          # real output heights
    a_of = np.array([(i + 2 * p - k) % s for i in sizes])
    assert list(a_of) == [shapes.inverse_output_padding(i, k, s, p) for i in sizes]
    ax.step(sizes, outs, where="mid", color="0.75", zorder=1)
    for a in range(s):
        ax.scatter(sizes[a_of == a], np.array(outs)[a_of == a], color=colours[a], s=55, zorder=2,
                   label=f"a = {a}")
    ax.set_title(f"stride s = {s} (k = {k}, p = {p}): {s} input sizes per output size", fontsize=10)
    ax.set_xlabel("input size i")
    ax.set_xticks(sizes)
    ax.grid(alpha=0.3)
    ax.legend(title="a = (i+2p-k) mod s", fontsize=8, title_fontsize=8, loc="upper left")
axes[0].set_ylabel("output size o of deconv.conv2d")
fig.suptitle("The floor of relationship 6: o forgets a, so the transposed convolution must be told a "
             "(output_padding)", fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 5. Pooling: the same counting, plus PyTorch's `ceil_mode`
#
# Pooling slides a window too, only the linear combination is replaced by a max or a mean, so the
# counting of Section 2 carries over unchanged. The guide, with no padding, states **relationship
# 7**: $o = \lfloor (i - k)/s \rfloor + 1$ (PyTorch's default stride is $s = k$). PyTorch adds
# padding (at most $\lfloor k/2 \rfloor$, as PyTorch checks), dilation, and
# `ceil_mode`. In floor mode, only whole windows count, exactly relationship 15. In ceil mode,
# the leftover input that the floor drops gets one more, *partial*, window: keep adding windows
# while the previous one has not reached the end of the padded input, but never start a window in
# the right padding (it would pool nothing but padding). In symbols, with $r = i + 2p - \hat k$
# (the room left after the first window):
#
# $$ o_{\text{ceil}} = \left\lceil \frac{r}{s} \right\rceil + 1,\quad \text{minus 1 if } (o_{\text{ceil}}-1)s \ge i + p. $$
#
# Below, `pool_windows` is the sentence (a loop, no formula), checked against
# `shapes.pool_output_size` and relationship 7 on every configuration of a grid.

# %%
def rel7(i, k, s): return (i - k) // s + 1                              # pooling, p=0


def pool_windows(i, k, s, p, d, ceil_mode):
    """Count pooling windows by sliding, as described above."""
    k_hat, end = d * (k - 1) + 1, i + 2 * p
    n = 0
    while True:
        start = n * s
        if start + k_hat <= end:                                         # a whole window fits
            n += 1
            continue
        if ceil_mode and n > 0 and (n - 1) * s + k_hat < end and start < i + p:
            n += 1                                                       # one partial window
        return n


pool_checked = refused = 0
for i in range(1, 17):
    for k in range(1, 7):
        for s in range(1, 5):
            for p in range(0, k // 2 + 1):
                for d in range(1, 4):
                    for ceil_mode in (False, True):
                        n = pool_windows(i, k, s, p, d, ceil_mode)
                        if n == 0:
                            try:
                                shapes.pool_output_size(i, k, s, p, d, ceil_mode)
                            except ValueError:
                                refused += 1
                                continue
                            raise AssertionError((i, k, s, p, d, ceil_mode))
                        assert shapes.pool_output_size(i, k, s, p, d, ceil_mode) == n, (i, k, s, p, d, ceil_mode)
                        if not ceil_mode:
                            assert n == rel15(i, k, s, p, d)
                            if p == 0 and d == 1:
                                assert n == rel7(i, k, s)
                        pool_checked += 1
print(f"pool_output_size == window count on {pool_checked} configurations ({refused} refused: no window fits)")

# %% [markdown]
# Again the ops themselves: `max_pool2d` (with dilation and ceil mode) and `avg_pool2d` on small
# arrays. With dilation, a window can straddle a short input and see only padding; `deconv`
# refuses that (README, "Semantics"), and we assert that this is the only reason a call fails.
#
# Two more facts connect pooling to the convolution's index map:
#
# * average pooling with `count_include_pad=True` in floor mode *is* a convolution of each
#   channel with the constant kernel $1/k^2$;
# * the max-pool indices (flat positions $r W + c$ in each input plane) lie inside the window that
#   relationship 15 assigns to their output pixel, rows $[u s - p,\ u s - p + \hat k)$.

# %%
max_ok = max_refused = avg_ok = 0
for _ in range(200):
    i_h, i_w = (int(v) for v in rng.integers(1, 13, size=2))
    k, s, d = int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 3))
    p, ceil_mode = int(rng.integers(0, k // 2 + 1)), bool(rng.integers(0, 2))
    n_h, n_w = (pool_windows(size, k, s, p, d, ceil_mode) for size in (i_h, i_w))
    if min(n_h, n_w) == 0:                                                # no window fits
        continue
    x = rng.standard_normal((1, 2, i_h, i_w))                            # (N, C, H, W)
    try:
        y, idx = deconv.max_pool2d(x, k, s, p, dilation=d, ceil_mode=ceil_mode)
        assert y.shape[2:] == (n_h, n_w)
        max_ok += 1
    except ValueError:                                                    # only if a window sees only padding
        assert not (shapes.pool_window_has_input(i_h, n_h, k, s, p, d)
                    and shapes.pool_window_has_input(i_w, n_w, k, s, p, d))
        max_refused += 1
    y = deconv.avg_pool2d(x, k, s, p, ceil_mode=ceil_mode)                # avg_pool2d has no dilation
    assert y.shape[2:] == tuple(pool_windows(size, k, s, p, 1, ceil_mode) for size in (i_h, i_w))
    avg_ok += 1
print(f"max_pool2d shapes: {max_ok} ok, {max_refused} refused (a window of padding only); "
      f"avg_pool2d shapes: {avg_ok} ok")

# %%
x = rng.standard_normal((2, 3, 9, 9))                                    # (N, C, H, W)
k, s, p = 3, 2, 1
avg = deconv.avg_pool2d(x, k, s, p)                                      # (2, 3, 5, 5)
as_conv = deconv.conv2d(x.reshape(6, 1, 9, 9), np.full((1, 1, k, k), 1 / k**2), stride=s, padding=p)
compare("avg_pool2d vs conv2d with the kernel 1/k^2", avg, as_conv.reshape(avg.shape), rtol=1e-12, atol=1e-15)

y, idx = deconv.max_pool2d(x, k, s, p)                                   # idx: int64, (2, 3, 5, 5)
rows, cols = np.divmod(idx, 9)                                           # flat index r*W + c -> (r, c)
u = np.arange(5)                                                         # output rows (and columns)
assert np.all((rows >= u[:, None] * s - p) & (rows < u[:, None] * s - p + k))   # inside window rows
assert np.all((cols >= u[None, :] * s - p) & (cols < u[None, :] * s - p + k))   # inside window columns
picked = np.take_along_axis(x.reshape(2, 3, 81), idx.reshape(2, 3, 25), axis=2).reshape(y.shape)
compare("max_pool2d output vs x at its indices", y, picked, rtol=0, atol=0)

# %% [markdown]
# ## 6. Convolution as a matrix, and its transpose
#
# The guide's Section 4.1: unroll the $4 \times 4$ input into a vector of length 16 (row-major:
# left to right, top to bottom) and the $2\times 2$ output into a vector of length 4. A
# convolution with $k=3$, $s=1$, $p=0$ is then a $4 \times 16$ matrix $\mathbf C$ whose nonzero
# entries are the kernel's $w_{\alpha,\beta}$:
#
# $$
# \mathbf C = \begin{pmatrix}
# w_{00} & w_{01} & w_{02} & 0 & w_{10} & w_{11} & w_{12} & 0 & w_{20} & w_{21} & w_{22} & 0 & 0 & 0 & 0 & 0\\
# 0 & w_{00} & w_{01} & w_{02} & 0 & w_{10} & w_{11} & w_{12} & 0 & w_{20} & w_{21} & w_{22} & 0 & 0 & 0 & 0\\
# 0 & 0 & 0 & 0 & w_{00} & w_{01} & w_{02} & 0 & w_{10} & w_{11} & w_{12} & 0 & w_{20} & w_{21} & w_{22} & 0\\
# 0 & 0 & 0 & 0 & 0 & w_{00} & w_{01} & w_{02} & 0 & w_{10} & w_{11} & w_{12} & 0 & w_{20} & w_{21} & w_{22}
# \end{pmatrix}.
# $$
#
# We build $\mathbf C$ from `deconv.conv2d` on the 16 one-hot inputs (column $j$ = conv of
# $e_j$), with a random kernel, and assert it equals the guide's matrix typed in from the display
# above (row $r$ starts at offset $0, 1, 4, 5$ and has the kernel's rows at columns
# $\{0,1,2\}, \{4,5,6\}, \{8,9,10\}$ after that offset).

# %%
w = rng.standard_normal((1, 1, 3, 3))                                   # (C_out, C_in, kH, kW)
C = deconv.conv2d(np.eye(16).reshape(16, 1, 4, 4), w).reshape(16, 4).T  # (4, 16)

guide = np.zeros((4, 16))
for row, offset in enumerate([0, 1, 4, 5]):
    guide[row, offset + np.array([0, 1, 2, 4, 5, 6, 8, 9, 10])] = w[0, 0].ravel()
compare("C from conv2d on one-hots vs the guide's matrix", C, guide, rtol=0, atol=0)

# %% [markdown]
# **Forward, transposed, backward.** Now three claims of the guide, each checked in float64:
#
# 1. $y = \mathbf C x$: the convolution is multiplication by $\mathbf C$ (the flattening is
#    NumPy's `ravel`, row-major, matching the guide).
# 2. The transposed convolution of a $2\times 2$ map $z$ with the *same weight array* is
#    $\mathbf C^\top z$, a map $\mathbb R^4 \to \mathbb R^{16}$ with the same connectivity:
#    input pixel $u$ of the transposed conv scatters $w$ exactly onto the input pixels that output
#    pixel $u$ of the convolution gathered from.
# 3. Backpropagation. For a loss $L$ with upstream gradient $\bar y = \partial L/\partial y$ of
#    shape $(N, C_{out}, H_{out}, W_{out})$, the chain rule gives $\partial L/\partial x_j =
#    \sum_u \bar y_u\, \partial y_u/\partial x_j = \sum_u \bar y_u\, \mathbf C_{uj}$, i.e.
#    $\partial L / \partial x = \mathbf C^\top \bar y$. So `conv2d_backward`'s `grad_input`
#    must equal $\mathbf C^\top \bar y$, and both must equal central differences of $L(x) =
#    \langle \bar y, \operatorname{conv2d}(x)\rangle$ (whose gradient is exactly that).

# %%
x = rng.standard_normal((1, 1, 4, 4))                                   # (N, C_in, H, W)
dy = rng.standard_normal((1, 1, 2, 2))                                  # (N, C_out, H_out, W_out)
compare("conv2d(x) vs C x", deconv.conv2d(x, w).ravel(), C @ x.ravel(), rtol=1e-12, atol=1e-14)
compare("conv_transpose2d(dy) vs C^T dy", deconv.conv_transpose2d(dy, w).ravel(), C.T @ dy.ravel(),
        rtol=1e-12, atol=1e-14)
CT_rows = deconv.conv_transpose2d(np.eye(4).reshape(4, 1, 2, 2), w).reshape(4, 16)   # row m = C^T e_m
compare("conv_transpose2d on the 4 one-hots vs rows of C", CT_rows, C, rtol=0, atol=0)

grad_x, grad_w, grad_b = deconv.conv2d_backward(dy, x, w)               # (1,1,4,4), (1,1,3,3), (1,)
compare("conv2d_backward grad_input vs C^T dy", grad_x.ravel(), C.T @ dy.ravel(), rtol=1e-12, atol=1e-14)
numeric = numerical_gradient(lambda: float(np.sum(dy * deconv.conv2d(x, w))), x, eps=1e-6)
compare("central differences vs C^T dy", numeric.ravel(), C.T @ dy.ravel(), rtol=1e-6, atol=1e-9)

# %% [markdown]
# **Why the transposed weight is the same array.** With channels, $\mathbf C$ is a block matrix of
# shape $(C_{out}\,o^2,\ C_{in}\,i^2)$; block $(c_o, c)$ is the single-channel matrix of
# $w[c_o, c]$. Transposing swaps the block indices, so $\mathbf C^\top$ has block $(c, c_o)$
# equal to $\mathbf C_{c_o c}^\top$: a map from $C_{out}$ channels to $C_{in}$ channels indexed by
# $w[c_o, c]$, *first index = its input channel*. That is precisely PyTorch's transposed weight
# layout $(C_{in}', C_{out}', k_H, k_W) = (C_{out}, C_{in}, k_H, k_W)$: the convolution's weight
# array, unchanged. We check it on a multi-channel, strided, padded case ($C_{in} = 2$,
# $C_{out}=3$, $i=5$, $k=3$, $s=2$, $p=1$, so $\mathbf C$ is $27 \times 50$), with the dot-product
# test $\langle \mathbf C x, z\rangle = \langle x, \mathbf C^\top z \rangle$ computed by the two
# ops alone.

# %%
w = rng.standard_normal((3, 2, 3, 3))                                   # (C_out, C_in, kH, kW)
C = deconv.conv2d(np.eye(50).reshape(50, 2, 5, 5), w, stride=2, padding=1).reshape(50, 27).T  # (27, 50)
x = rng.standard_normal((1, 2, 5, 5))                                   # (N, C_in, 5, 5)
z = rng.standard_normal((1, 3, 3, 3))                                   # (N, C_out, 3, 3)
Tz = deconv.conv_transpose2d(z, w, stride=2, padding=1)                 # (N, C_in, 5, 5): a = 0 restores 5
compare("multi-channel: conv2d(x) vs C x", deconv.conv2d(x, w, stride=2, padding=1).ravel(), C @ x.ravel(),
        rtol=1e-12, atol=1e-14)
compare("multi-channel: conv_transpose2d(z) vs C^T z", Tz.ravel(), C.T @ z.ravel(), rtol=1e-12, atol=1e-14)
lhs = np.sum(deconv.conv2d(x, w, stride=2, padding=1) * z)
rhs = np.sum(x * Tz)
compare("<conv2d(x), z> vs <x, conv_transpose2d(z)>", np.array(lhs), np.array(rhs), rtol=1e-12, atol=0)

# %% [markdown]
# **The strided matrices.** For $i=5$, $k=3$, $s=2$, $p=0$ (the guide's Fig. 2.5) $\mathbf C$ is
# $4 \times 25$: the four rows are the kernel placed at offsets $0, 2, 10, 12$. For the pair of
# Figs. 2.6/2.7 ($k=3$, $s=2$, $p=1$ with $i=5$ and $i=6$), both matrices have $9$ rows, but
# $25$ and $36$ columns. The transposed convolution of a $3 \times 3$ map must pick one: with
# `output_padding=0` it is $\mathbf C_{i=5}^\top$, with `output_padding=1` it is
# $\mathbf C_{i=6}^\top$. Note what $a=1$ adds: not zeros, but the contributions to input row
# and column 5, which the $i=6$ convolution's last window does read. The 25 columns of
# $\mathbf C_{i=6}$ that belong to input pixels with $r, c < 5$ are exactly those of
# $\mathbf C_{i=5}$.
#
# The transposed convolution's own backward pass is, as the guide's Section 4.2 puts it,
# $(\mathbf C^\top)^\top = \mathbf C$: `conv_transpose2d_backward`'s `grad_input` is the
# convolution of the upstream gradient.

# %%
def conv_matrix(i, k, s, p, w):
    """C (o*o, i*i) of a single-channel conv2d, from one-hot inputs."""
    y = deconv.conv2d(np.eye(i * i).reshape(i * i, 1, i, i), w, stride=s, padding=p)   # (i*i, 1, o, o)
    return y.reshape(i * i, -1).T


w = rng.standard_normal((1, 1, 3, 3))
C5s2 = conv_matrix(5, 3, 2, 0, w)                                       # (4, 25)
z = rng.standard_normal((1, 1, 2, 2))
compare("stride 2: conv_transpose2d(z) vs C^T z", deconv.conv_transpose2d(z, w, stride=2).ravel(),
        C5s2.T @ z.ravel(), rtol=1e-12, atol=1e-14)

starts = [int(np.flatnonzero(row)[0]) for row in C5s2]                  # where each row's kernel begins
print("stride 2: rows of C start at input pixels", starts)
assert starts == [0, 2, 10, 12]
C5, C6 = conv_matrix(5, 3, 2, 1, w), conv_matrix(6, 3, 2, 1, w)        # (9, 25), (9, 36)
assert C5.shape == (9, 25) and C6.shape == (9, 36)
z = rng.standard_normal((1, 1, 3, 3))
for a, Ci in [(0, C5), (1, C6)]:
    out = deconv.conv_transpose2d(z, w, stride=2, padding=1, output_padding=a)   # (1, 1, 5+a, 5+a)
    compare(f"output_padding={a}: conv_transpose2d(z) {out.shape[2:]} vs C_(i={5 + a})^T z", out.ravel(),
            Ci.T @ z.ravel(), rtol=1e-12, atol=1e-14)
first25 = [r * 6 + c for r in range(5) for c in range(5)]
compare("C_(i=6) restricted to pixels r, c < 5 vs C_(i=5)", C6[:, first25], C5, rtol=0, atol=0)
assert np.abs(C6[:, [r * 6 + 5 for r in range(6)]]).sum() > 0           # a=1 column is not zeros

g = rng.standard_normal((1, 1, 6, 6))
gz = deconv.conv_transpose2d_backward(g, z, w, stride=2, padding=1, output_padding=1)[0]   # (1, 1, 3, 3)
compare("conv_transpose2d_backward grad_input vs C g", gz.ravel(), C6 @ g.ravel(), rtol=1e-12, atol=1e-14)
numeric = numerical_gradient(
    lambda: float(np.sum(g * deconv.conv_transpose2d(z, w, stride=2, padding=1, output_padding=1))), z)
compare("central differences vs C g", numeric.ravel(), C6 @ g.ravel(), rtol=1e-6, atol=1e-9)

# %% [markdown]
# The matrices themselves, drawn from `deconv` with the tap-naming kernel so that each nonzero
# entry shows *which* $w_{\alpha\beta}$ it is (the label is $\alpha\beta$). The first panel is the
# guide's display; in the second the stride shows as jumps of 2 and 10 between consecutive
# rows; in the third, the last column of each group of 6 ($c = 5$) and the last group ($r = 5$)
# are what $i=6$ adds over $i=5$: only the last window in each direction touches them.

# %%
fig, axes = plt.subplots(3, 1, figsize=(11, 7.5), gridspec_kw=dict(height_ratios=[4, 4, 9]),
                         layout="constrained")
for ax, (i, s, p) in zip(axes, [(4, 1, 0), (5, 2, 0), (6, 2, 1)]):
    M = conv_matrix(i, 3, s, p, tap_kernel(3))                           # (o*o, i*i), tap numbers
    im = ax.imshow(np.ma.masked_equal(M, 0), cmap="viridis", vmin=1, vmax=9)
    for (r, c), t in np.ndenumerate(M):
        if t:
            ax.text(c, r, "{}{}".format(*divmod(int(t) - 1, 3)), ha="center", va="center", fontsize=6,
                    color="white" if t < 7 else "black")
    ax.set_xticks(np.arange(0, i * i, i))
    ax.set_yticks(np.arange(M.shape[0]))
    ax.set_xticks(np.arange(-0.5, i * i, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, M.shape[0], 1), minor=True)
    ax.grid(which="minor", color="0.85", lw=0.5)
    ax.tick_params(which="minor", length=0)
    ax.set_title(f"C for i={i}, k=3, s={s}, p={p}: {M.shape[0]} x {M.shape[1]}", fontsize=10, loc="left")
    ax.set_anchor("W")
    ax.set_ylabel("output pixel")
axes[-1].set_xlabel("input pixel j = r*i + c  (ticks: first pixel of each image row)")
fig.colorbar(im, ax=axes, label="tap number 1 + 3α + β  (cell label: αβ)", shrink=0.5)
fig.suptitle("The convolution matrices, built by deconv.conv2d on one-hot inputs", fontsize=11)
plt.show()

# %% [markdown]
# ## 7. Transposed convolution arithmetic: relationships 8-14
#
# **Output size.** A transposed convolution is multiplication by $\mathbf C^\top$ for the
# convolution $(k, s, p, d)$ of some input size $i$. So its output size is simply that $i$, and
# its input size $i'$ is that convolution's $o$. Section 4 gives all the $i$ with output $o = i'$:
#
# $$ \boxed{\,o' = s(i'-1) + \hat k - 2p + a,\qquad 0 \le a < s\,} $$
#
# with $d = 1$ this is the guide's **relationship 14** ($a = (i+2p-k) \bmod s$ recovers the
# original $i$) and PyTorch's $o' = (i'-1)s - 2p + d(k-1) + a + 1$ with $a$ = `output_padding`. Its
# special cases are the guide's relationships 8-13:
#
# | guide | the convolution | $o'$ |
# |---|---|---|
# | Rel. 8 | $s=1,\ p=0$ | $i' + (k-1)$ |
# | Rel. 9 | $s=1$ | $i' + (k-1) - 2p$ |
# | Rel. 10 (half) | $s=1,\ k=2n+1,\ p=n$ | $i'$ |
# | Rel. 11 (full) | $s=1,\ p=k-1$ | $i' - (k-1)$ |
# | Rel. 12 | $p=0$, $s \mid (i-k)$ | $s(i'-1)+k$ |
# | Rel. 13 | $s \mid (i+2p-k)$ | $s(i'-1)+k-2p$ |
# | Rel. 14 | any, $a = (i+2p-k) \bmod s$ | $s(i'-1)+a+k-2p$ |
#
# **The equivalent direct convolution.** Why does the guide say the transposed convolution is a
# unit-stride convolution of a *stretched* input? Write the transposed convolution as a scatter
# (1-D, one channel): input pixel $z[h]$ adds $z[h]\,w[\alpha]$ to output pixel $u = h s - p + \alpha d$.
# Gather instead: $y[u] = \sum_{h,\alpha} [\,u = hs - p + \alpha d\,]\; z[h]\, w[\alpha]$.
#
# 1. *Stretch*: let $\tilde z$ have $z[h]$ at position $hs$ and zeros between ($s-1$ zeros
#    between units, length $\tilde i' = s(i'-1)+1$). Then $y[u] = \sum_\alpha w[\alpha]\,
#    \tilde z[u + p - \alpha d]$.
# 2. *Flip*: substitute $\alpha = k-1-\alpha'$: $y[u] = \sum_{\alpha'} w[k-1-\alpha']\,\tilde z[u + p -
#    d(k-1) + \alpha' d]$, a correlation with the flipped kernel, sliding with stride 1.
# 3. *Pad*: the index $u - p' + \alpha' d$ with $p' = d(k-1) - p$ means $\tilde z$ is shifted by
#    $p'$ zeros in front. At the end, the last output $u = o'-1$ reads up to position $o'-1 +
#    d(k-1)$ of the canvas, which is $p' + a$ cells past $\tilde z$: $p'$ zeros plus the $a$
#    extra ones at the bottom/right.
#
# So: $k' = k$, $s' = 1$, $p' = d(k-1) - p$ (the guide's $p' = k - p - 1$ for $d=1$), the input
# stretched to $\tilde i'$, $a$ more zeros at the bottom/right, and the kernel flipped. With
# channels, the flipped kernel also swaps its first two axes, turning the transposed weight
# $(C_{in}', C_{out}', k_H, k_W)$ into a convolution weight $(C_{out}', C_{in}', k_H, k_W)$. The
# function below is those three steps, literally, followed by the naive loop of Section 1 (when
# $p > d(k-1)$, a negative $p'$ means cropping instead of padding).

# %%
def pad_or_crop(z, before_after_h, before_after_w):
    """Zero-pad (positive amounts) or crop (negative amounts) the last two axes."""
    (bh, ah), (bw, aw) = before_after_h, before_after_w
    z = np.pad(z, ((0, 0), (0, 0), (max(bh, 0), max(ah, 0)), (max(bw, 0), max(aw, 0))))
    H, W = z.shape[2:]
    return z[:, :, max(-bh, 0):H - max(-ah, 0), max(-bw, 0):W - max(-aw, 0)]


def conv_transpose2d_via_conv(z, w, stride=1, padding=0, output_padding=0, dilation=1):
    """The guide's equivalent convolution. z (N, C_in', H', W'), w (C_in', C_out', kH, kW)."""
    (sH, sW), (pH, pW), (aH, aW), (dH, dW) = map(pair, (stride, padding, output_padding, dilation))
    N, C, H, W = z.shape
    kH, kW = w.shape[2:]
    stretched = np.zeros((N, C, (H - 1) * sH + 1, (W - 1) * sW + 1))    # (N, C_in', i~'_H, i~'_W)
    stretched[:, :, ::sH, ::sW] = z                                      # s-1 zeros between units
    qH, qW = dH * (kH - 1) - pH, dW * (kW - 1) - pW                      # p'
    canvas = pad_or_crop(stretched, (qH, qH + aH), (qW, qW + aW))        # (N, C_in', o' + dH(kH-1), ...)
    w_eq = w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]                     # (C_out', C_in', kH, kW), flipped
    return conv2d_naive(canvas, w_eq, dilation=(dH, dW))                 # (N, C_out', o'_H, o'_W)


z = rng.standard_normal((2, 3, 3, 3))                                   # (N, C_in', i', i')
w = rng.standard_normal((3, 2, 3, 3))                                   # (C_in', C_out', k, k)
out = deconv.conv_transpose2d(z, w, stride=2, padding=1, output_padding=1)   # guide Fig. 4.7: 3 -> 6
print("Fig. 4.7 configuration, output shape:", out.shape)
compare("conv_transpose2d vs stretch + pad + flipped conv", out,
        conv_transpose2d_via_conv(z, w, stride=2, padding=1, output_padding=1), rtol=1e-12, atol=1e-12)

# %% [markdown]
# Now the sweep. For every valid convolution $(i, k, s, p, d)$ of Section 2 with output $o$:
#
# * `inverse_output_padding` is $a = (i + 2p - \hat k) \bmod s$, and the transposed convolution
#   with it maps $i' = o$ back to exactly $i$;
# * every relationship 8-14 that applies gives that same $o'$;
# * every $a < s$ gives $o' = s(i'-1) + \hat k - 2p + a$, and a convolution of an input of that
#   size returns $o$: these are the $s$ input sizes of Section 4.
#
# PyTorch (and `deconv`) also accept $s \le a < d$ when the dilation exceeds the stride, a case
# the guide does not consider. Then $o'$ is still given by the same formula, but a convolution of
# an input of size $o'$ has $o + \lfloor a/s \rfloor$ outputs, more than the $i'$ we started
# from: the transposed convolution is then the adjoint of the convolution *evaluated only at its
# first $i'$ outputs* (README, "Semantics"). We assert that too.

# %%
def rel8(i_t, k): return i_t + (k - 1)
def rel9(i_t, k, p): return i_t + (k - 1) - 2 * p
def rel10(i_t, k): return i_t
def rel11(i_t, k): return i_t - (k - 1)
def rel12(i_t, k, s): return s * (i_t - 1) + k
def rel13(i_t, k, s, p): return s * (i_t - 1) + k - 2 * p
def rel14(i_t, k, s, p, a): return s * (i_t - 1) + a + k - 2 * p


checked_t = dict.fromkeys(["Rel. 8", "Rel. 9", "Rel. 10", "Rel. 11", "Rel. 12", "Rel. 13", "Rel. 14"], 0)
beyond_stride = 0
for i, k, s, p, d in valid:
    k_hat = d * (k - 1) + 1
    i_t = shapes.conv_output_size(i, k, s, p, d)                        # i' = o
    a = shapes.inverse_output_padding(i, k, s, p, d)
    assert a == (i + 2 * p - k_hat) % s
    o_t = shapes.conv_transpose_output_size(i_t, k, s, p, a, d)
    assert o_t == i
    if d == 1:
        assert o_t == rel14(i_t, k, s, p, a); checked_t["Rel. 14"] += 1
        if (i + 2 * p - k) % s == 0:
            assert o_t == rel13(i_t, k, s, p); checked_t["Rel. 13"] += 1
            if p == 0:
                assert o_t == rel12(i_t, k, s); checked_t["Rel. 12"] += 1
        if s == 1:
            assert o_t == rel9(i_t, k, p); checked_t["Rel. 9"] += 1
            if p == 0:
                assert o_t == rel8(i_t, k); checked_t["Rel. 8"] += 1
            if k % 2 == 1 and p == k // 2:
                assert o_t == rel10(i_t, k); checked_t["Rel. 10"] += 1
            if p == k - 1:
                assert o_t == rel11(i_t, k); checked_t["Rel. 11"] += 1
    for a in range(max(s, d)):
        size = s * (i_t - 1) + k_hat - 2 * p + a
        if size < 1:                                                     # no such output: refused
            continue
        assert shapes.conv_transpose_output_size(i_t, k, s, p, a, d) == size
        assert shapes.conv_output_size(size, k, s, p, d) == i_t + a // s
        beyond_stride += a >= s
for name, n in checked_t.items():
    print(f"  {name:8s} holds on all {n:5d} configurations where it applies")
print(f"transposed conv restores i on all {len(valid)} valid convolutions; {beyond_stride} cases with s <= a < d checked")

# %% [markdown]
# **Exercise E1.2.** Write the transposed convolution's output size $o$ for input size $i$, kernel
# size $k$, stride $s$, padding $p$, output padding $a$ and dilation $d$ — the input size of the
# convolution that maps back to $i$ with remainder $a$. Checked against
# `deconv.shapes.conv_transpose_output_size`. (Solution: `conv_transpose_output_size` in
# [solutions.py](solutions.py).)

# %%
def conv_transpose_output_size(i, k, s, p, a, d):
    """Output size of conv_transpose along one axis."""
    return ...                                     # <- your formula here


check_exercise("E1.2", conv_transpose_output_size)

# %% [markdown]
# And the ops: `deconv.conv_transpose2d` against the stretch-pad-flip construction on random
# configurations (height and width drawn independently, several channels, any $a < \max(s, d)$),
# printing the largest difference seen. A configuration whose formula gives $o' < 1$ must be
# refused with a `ValueError`.

# %%
worst, n_ok, n_refused, n_crop = 0.0, 0, 0, 0
for _ in range(150):
    (iH, kH, sH, pH, dH), (iW, kW, sW, pW, dW) = (valid[j] for j in rng.integers(0, len(valid), size=2))
    i_tH, i_tW = shapes.conv_output_size(iH, kH, sH, pH, dH), shapes.conv_output_size(iW, kW, sW, pW, dW)
    aH, aW = int(rng.integers(0, max(sH, dH))), int(rng.integers(0, max(sW, dW)))
    z = rng.standard_normal((2, 2, i_tH, i_tW))                          # (N, C_in', i'_H, i'_W)
    w = rng.standard_normal((2, 3, kH, kW))                              # (C_in', C_out', kH, kW)
    cfg = dict(stride=(sH, sW), padding=(pH, pW), output_padding=(aH, aW), dilation=(dH, dW))
    sizes = (sH * (i_tH - 1) + dH * (kH - 1) + 1 - 2 * pH + aH, sW * (i_tW - 1) + dW * (kW - 1) + 1 - 2 * pW + aW)
    if min(sizes) < 1:
        try:
            deconv.conv_transpose2d(z, w, **cfg)
        except ValueError:
            n_refused += 1
            continue
        raise AssertionError(f"o' < 1 accepted: {cfg}")
    out = deconv.conv_transpose2d(z, w, **cfg)
    assert out.shape == (2, 3) + sizes
    worst = max(worst, compare("", out, conv_transpose2d_via_conv(z, w, **cfg), rtol=1e-12, atol=1e-12, quiet=True))
    n_ok += 1
    n_crop += pH > dH * (kH - 1) or pW > dW * (kW - 1)                   # p' < 0: a crop
print(f"conv_transpose2d == stretch + pad + flipped conv on {n_ok} random configurations "
      f"({n_crop} with p' < 0; max |difference| {worst:.2g}); {n_refused} with o' < 1 refused")

# %% [markdown]
# ## 8. The transposed figures, from deconv's transposed index map
#
# The guide draws each transposed convolution as its equivalent direct convolution: the
# stretched, padded input (blue units, white zeros), the flipped kernel sliding with stride 1,
# the output above. We draw the same thing, but check it against `deconv.conv_transpose2d` on
# one-hot inputs with the tap-naming kernel: for every output pixel $u$, the map says which input
# units $h$ reach it and through which tap $(\alpha, \beta)$ of $w$. In the equivalent
# convolution unit $h$ sits at canvas position $p' + h s$ and is met by the flipped tap $k - 1 -
# \alpha$, so the window must start at $p' + hs - d(k-1-\alpha)$. We assert that this is $u$, for
# every $u$, every $h$ reaching it, in both directions: the picture is the library's
# connectivity, and it is the guide's construction. The numbers in the dark window are the taps
# of $w$ each cell meets: they run backwards, $k^2, \dots, 2, 1$, where the panels of Section 3 ran
# $1, 2, \dots, k^2$ — the kernel flip, visible.
#
# The captions give the guide's quantities $(i', \tilde i', p', a) \to o'$ for Figs. 4.1-4.7,
# plus the transpose of the dilated Fig. 5.1 (not in the guide), which needs $p' = d(k-1) = 4$.

# %%
def transposed_panel(ax, i, k, s=1, p=0, d=1, label=""):
    """Transpose of conv2d(i, k, s, p, d) as the guide's equivalent convolution, checked against deconv."""
    i_t = shapes.conv_output_size(i, k, s, p, d)                        # i'
    a = shapes.inverse_output_padding(i, k, s, p, d)
    p_eq = d * (k - 1) - p                                               # p'
    onehots = np.eye(i_t * i_t).reshape(i_t * i_t, 1, i_t, i_t)
    y = deconv.conv_transpose2d(onehots, tap_kernel(k), stride=s, padding=p, output_padding=a, dilation=d)
    o_t = y.shape[2]                                                     # o' as produced by deconv
    M = y.reshape(i_t * i_t, -1).T                                       # (o'*o', i'*i') tap map
    pos = p_eq + s * np.arange(i_t)                                      # canvas position of unit m
    for q in range(o_t * o_t):
        m = np.nonzero(M[q])[0]
        assert m.size > 0                                                # every output pixel is reached
        alpha, beta = np.divmod(M[q, m].astype(int) - 1, k)
        m1, m2 = np.divmod(m, i_t)
        assert np.all(pos[m1] - d * (k - 1 - alpha) == q // o_t)         # window starts at row q1
        assert np.all(pos[m2] - d * (k - 1 - beta) == q % o_t)           # and column q2
    Q = (i_t - 1) * s + 1 + 2 * p_eq + a                                 # stretched + padded canvas
    assert Q == o_t + d * (k - 1)
    is_input = np.zeros((Q, Q), bool)
    is_input[np.ix_(pos, pos)] = True
    reached = np.zeros((Q, Q), bool)
    for r0 in range(o_t):
        for c0 in range(o_t):
            reached[np.ix_(r0 + d * np.arange(k), c0 + d * np.arange(k))] = True
    taps = [(d * a1, o_t - 1 + d * b1) for a1 in range(k) for b1 in range(k)]   # window of u = (0, o'-1)
    # window cell (a1, b1) meets the flipped kernel there, i.e. tap (k-1-a1, k-1-b1) of w
    numbers = [1 + (k - 1 - a1) * k + (k - 1 - b1) for a1 in range(k) for b1 in range(k)]
    tilde = (i_t - 1) * s + 1
    paint(ax, is_input, reached, taps, o_t, (0, o_t - 1),
          f"{label}\ni'={i_t}, ĩ'={tilde}, p'={p_eq}, a={a}  →  o'={o_t}", numbers)
    return i_t, tilde, p_eq, a, o_t


transposed_configs = [  # (label, conv i, k, s, p, d, guide's (i', i~', p', a, o'))
    ("Fig. 4.1 (of 2.1)", 4, 3, 1, 0, 1, (2, 2, 2, 0, 4)), ("Fig. 4.2 (of 2.2)", 5, 4, 1, 2, 1, (6, 6, 1, 0, 5)),
    ("Fig. 4.3 (of 2.3)", 5, 3, 1, 1, 1, (5, 5, 1, 0, 5)), ("Fig. 4.4 (of 2.4)", 5, 3, 1, 2, 1, (7, 7, 0, 0, 5)),
    ("Fig. 4.5 (of 2.5)", 5, 3, 2, 0, 1, (2, 3, 2, 0, 5)), ("Fig. 4.6 (of 2.6)", 5, 3, 2, 1, 1, (3, 5, 1, 0, 5)),
    ("Fig. 4.7 (of 2.7)", 6, 3, 2, 1, 1, (3, 5, 1, 1, 6)), ("transpose of Fig. 5.1", 7, 3, 1, 0, 2, (3, 3, 4, 0, 7)),
]
fig, axes = plt.subplots(2, 4, figsize=(11, 6.4))
for ax, (label, i, k, s, p, d, guide_values) in zip(axes.ravel(), transposed_configs):
    assert transposed_panel(ax, i, k, s, p, d, label) == guide_values, label
fig.suptitle("Transposed convolutions as the guide's equivalent convolutions, checked against deconv.conv_transpose2d\n"
             "blue: input units, dashed: inserted zeros and padding, dark: flipped-kernel window of the darkened output "
             "pixel, red ×: never reached", fontsize=9.5)
plt.tight_layout()
plt.show()

# %% [markdown]
# Reading the panels: in 4.1 the transpose of an unpadded convolution is a *fully* padded one
# ($p' = k-1 = 2$); in 4.4 the transpose of a fully padded convolution is an unpadded one; 4.3
# maps half padding to half padding. In 4.5-4.7 the zeros inserted between the blue units are
# the "fractional stride" $1/s$: the window moves one canvas cell per output pixel, which is
# $1/2$ of an input unit. In 4.7, $a = 1$ adds the extra row and column at the bottom/right of
# the canvas, and the output is $6 \times 6$ instead of the $5 \times 5$ of 4.6, from the same
# $3\times 3$ input.

# %% [markdown]
# The numbers the summary below quotes, gathered from the checks above (every `compare` of this
# notebook recorded its maxdiff) and asserted here:

# %%
relationships = len(checked) + 1 + len(checked_t)                       # 1-6 and 15, 7 (pooling), 8-14
matrix_markers = ("C x", "C^T", "rows of C", "C g", "C_(i=", "guide's matrix", "<conv2d(x), z>")
matrix = {n: m for n, m in MAXDIFF.items() if "central" not in n and any(t in n for t in matrix_markers)}
central = {n: m for n, m in MAXDIFF.items() if n.startswith("central")}
print(f"relationships checked: {relationships}; grid: {len(grid)} configurations, {len(valid)} valid; "
      f"random conv2d shape pairs: {len(picks)}")
print(f"matrix checks (Section 6): {len(matrix)}, largest maxdiff {max(matrix.values()):.1e}, "
      f"{sum(m == 0 for m in matrix.values())} exactly 0")
print(f"central differences: {len(central)}, largest maxdiff {max(central.values()):.1e}")
print(f"stretch + pad + flip (Section 7): {n_ok} configurations, largest maxdiff {worst:.1e}")
assert relationships == 15 and len(grid) > 1000
assert len(matrix) >= 10 and max(matrix.values()) < 1e-13 and sum(m == 0 for m in matrix.values()) >= 3
assert max(central.values()) < 1e-9 and worst < 1e-13

# %% [markdown]
# ## What we found
#
# * **Reproduced.** All fifteen of the guide's relationships hold for `deconv`, both for
#   `deconv.shapes` and for the shapes the ops produce: relationships 1-6 and 15 on every valid
#   configuration of a grid of $i \le 16$, $k \le 7$, $s \le 4$, $p \le 5$, $d \le 3$ (and 300
#   random height/width pairs through `conv2d`), relationship 7 with PyTorch's padding, dilation
#   and `ceil_mode` through a window-counting loop, relationships 8-14 on the same grid. The
#   guide's stated output sizes for Figs. 2.1-2.7, 4.1-4.7 and 5.1 are reproduced from the
#   library's index maps, including the uncovered bottom row and right column of the padding in
#   Fig. 2.7, and the equivalent-convolution quantities $(i', \tilde i', p', a, o')$ of every
#   transposed figure.
# * The guide's matrix $\mathbf C$ of Section 4.1 is reproduced *exactly* by `conv2d` on one-hot
#   inputs; `conv_transpose2d` with the same weight array is $\mathbf C^\top$ (single- and
#   multi-channel, strided, with both values of $a$ for $i=5$/$i=6$), `conv2d_backward`'s
#   `grad_input` is $\mathbf C^\top \bar y$ and `conv_transpose2d_backward`'s is $\mathbf C g$,
#   each to float64 rounding (every maxdiff below $10^{-13}$, several exactly 0: printed and
#   asserted just above) and to central differences with $\varepsilon = 10^{-6}$ (maxdiff below
#   $10^{-9}$).
# * The "stretch, pad by $p' = d(k-1)-p$ plus $a$, flip" construction of the guide equals
#   `conv_transpose2d` to float64 rounding (maxdiff below $10^{-13}$) on the random
#   configurations of Section 7, including dilation,
#   non-square settings, several channels and $p > d(k-1)$ (where $p'$ is a crop).
# * **Differences and extensions.** The guide treats square inputs, symmetric padding, unpadded
#   floor-mode pooling and $a < s$. PyTorch, and `deconv`, also have asymmetric `'same'` padding
#   for even kernels, pooling padding $\le k/2$, dilation and `ceil_mode` in pooling, and
#   `output_padding` up to $\max(s, d) - 1$; we derived and checked each. One small
#   inconsistency in the guide itself: the caption of Fig. 4.7 (in the LaTeX source on the
#   authors' GitHub repository) calls the input "$2 \times 2$" while giving $i' = 3$ and
#   $\tilde i' = 5$; the convolution of Fig. 2.7 has a $3 \times 3$ output, so the transposed
#   input is $3 \times 3$, as drawn above.
# * The sizes here are tiny on purpose (at most $16 \times 16$): the arithmetic does not depend on
#   scale, and the one-hot maps make every connection visible.

# %% [markdown]
# ## Problems
#
# Work these on paper first, then check each with `deconv` in a new cell.
#
# 1. In the hand example ($i = 3$, $k = 2$, $s = 2$), which padding $p \le 2$ leaves an *input*
#    pixel (not a padding cell) unread by every window? Which $a$ does `inverse_output_padding`
#    give for it, and why is that the number of unread rows?
# 2. `padding='same'` needs asymmetric padding exactly when $d(k-1)$ is odd. List all $(k, d)$
#    with $k \le 5$, $d \le 3$ where it does, and check `shapes.same_padding` on them.
# 3. Relationship 12 assumes $s \mid (i-k)$. Find the smallest $i$ with $k = 3$, $s = 2$, $p = 0$
#    where it does not hold, show that $s(i'-1)+k$ then misses the original $i$, and name the
#    `output_padding` that repairs it.
# 4. Build the $4 \times 9$ matrix $\mathbf C$ of the hand example's convolution on paper (which
#    entries of $w$ land where, with $p = 1$?), then with the one-hot trick of Section 6, and
#    check that `conv_transpose2d(..., stride=2, padding=1, output_padding=1)` is $\mathbf C^\top$.
# 5. With `ceil_mode=True`, find a pooling configuration whose extra window would *start* in the
#    right padding, and check that `shapes.pool_output_size` does not count it.

# %% [markdown]
# ## References
#
# * Vincent Dumoulin and Francesco Visin. *A guide to convolution arithmetic for deep learning.*
#   arXiv:1603.07285, 2016 (revised 2018). Relationships 1-15, the figures of Chapters 2, 4 and 5,
#   and the matrix of Section 4.1.
# * Fisher Yu and Vladlen Koltun. *Multi-scale context aggregation by dilated convolutions.*
#   International Conference on Learning Representations (ICLR), 2016. arXiv:1511.07122.
#   (Dilated convolutions, cited by the guide's Chapter 5.)
# * Jonathan Long, Evan Shelhamer and Trevor Darrell. *Fully convolutional networks for semantic
#   segmentation.* IEEE Conference on Computer Vision and Pattern Recognition (CVPR), 2015.
#   arXiv:1411.4038. (Upsampling by "backwards strided convolution", i.e. the transposed
#   convolution.)
# * Adam Paszke et al. *PyTorch: An imperative style, high-performance deep learning library.*
#   Advances in Neural Information Processing Systems 32 (NeurIPS), 2019. arXiv:1912.01703.
#   (The semantics `deconv` follows: `padding='same'`, `output_padding`, `ceil_mode`.)
