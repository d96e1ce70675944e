# %% [markdown]
# # 3. The transposed convolution three ways
#
# The layer that PyTorch calls `conv_transpose2d` (Caffe and many papers say "deconvolution",
# though it inverts nothing) can be written down in at least three ways that look nothing alike:
#
# * **(a) zero insertion**: spread the input apart with $s-1$ zeros between pixels, pad it, and run
#   an ordinary stride-1 convolution with the kernel flipped and its two channel axes swapped
#   (the "fractionally strided convolution" of Dumoulin & Visin, 2016);
# * **(b) scatter-add**: every input pixel stamps a copy of the kernel, scaled by its value, into
#   the output, and overlapping stamps add up;
# * **(c) $C^\top$**: write the ordinary strided convolution as a (sparse) matrix $C$; the
#   transposed convolution is multiplication by $C^\top$, which is also why it is exactly the
#   input gradient of a convolution.
#
# We derive all three, implement (a) and (b) with NumPy loops and (c) with an explicit matrix, and
# check that each equals `deconv.conv_transpose2d` and `deconv.conv2d_backward`'s input gradient,
# with stride, padding, dilation, `output_padding` and groups all switched on. Then we look at what
# `output_padding` is for, re-deriving the output size of the stride-$n$ deconvolution layer of
# FSRCNN (Dong, Loy & Tang, 2016), and finally re-derive the sub-pixel equivalence of Shi et al.
# (2016, "Is the deconvolution layer the same as a convolutional layer?", and ESPCN): a stride-$r$
# transposed convolution with an $rk \times rk$ kernel *is* $r^2$ ordinary $k\times k$ convolutions
# followed by a pixel shuffle. We build the $r^2$ small kernels from the big one and verify the
# identity exactly.
# Section 7 sets it beside true deconvolution (Wiener filtering and Richardson-Lucy) on one
# blurred photograph, to show what the name promises and the layer does not do.

# %%
import numpy as np
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

import deconv
from deconv import shapes
from deconv.gradcheck import compare as compare_arrays, numerical_gradient

from exercise import check_exercise          # notebooks/exercise.py: marks the fill-in cells
from gif import save_gif                     # notebooks/gif.py: animations as GIF files

np.set_printoptions(precision=3, suppress=True, linewidth=110)
CHECKS = []                                  # (name, largest |difference|) of every compare below


def compare(name, actual, expected, **tolerances):
    """deconv.gradcheck.compare (prints, raises on disagreement), its maxdiff remembered."""
    CHECKS.append((name.strip(), compare_arrays(name, actual, expected, **tolerances)))
    return CHECKS[-1][1]

# %% [markdown]
# ## 1. What the transposed convolution computes
#
# **Names** (the series' notation, stated once in [NOTATION.md](NOTATION.md)). The transposed convolution takes an input $x$ of shape $(N, C_{in}, H, W)$ and a
# weight $w$ of shape $(C_{in}, C_{out}/G, k_H, k_W)$ (PyTorch's layout: *input* channels first)
# and returns $y$ of shape $(N, C_{out}, H_{out}, W_{out})$. $N$ is the batch size, $G$ the number
# of groups (input channels $c$ and output channels $c_o$ are split into $G$ blocks of
# $C_{in}/G$ and $C_{out}/G$; block $g$ of the input talks only to block $g$ of the output),
# $s$ the stride, $p$ the padding, $d$ the dilation and $a$ the `output_padding`. Every spatial
# axis is handled independently, so the derivations below are written for the row axis; the column
# axis is identical with its own $s, p, d, a, k_W$.
#
# **Definition (the scatter form).** Input pixel $h$ and kernel tap $\alpha$ write to output row
#
# $$u = h\,s - p + \alpha\,d ,$$
#
# so, with $g$ the group of input channel $c$ and $c_o$ an output channel of that group,
#
# $$y[n, c_o, u, v] \;=\; \sum_{\substack{c \in g,\ h, \alpha:\ h s - p + \alpha d = u \\ \ell, \beta:\ \ell s - p + \beta d = v}}
#   x[n, c, h, \ell]\; w[c,\ c_o - g\,C_{out}/G,\ \alpha, \beta].$$
#
# **Output size.** Without cropping, the last input pixel $h = H-1$ with the last tap $\alpha = k-1$
# reaches row $(H-1)s + d(k-1)$, so the uncropped ("full") output has
# $F = (H-1)s + d(k-1) + 1$ rows. The padding $p$ removes $p$ rows from each side and
# `output_padding` adds $a$ rows back at the bottom:
#
# $$H_{out} = (H-1)\,s - 2p + d\,(k_H-1) + a + 1 .$$
#
# Why "padding removes rows"? Because the transposed convolution is defined as the adjoint of the
# convolution *with* padding $p$: that convolution reads a padded input, and the padding rows are
# not part of its input, so the adjoint does not produce them. Section 3 makes this precise.
#
# We use one configuration with everything switched on (and different settings on the two axes so
# that a row/column mix-up cannot pass unnoticed), in float64:

# %%
cfg = dict(stride=(2, 3), padding=(1, 2), output_padding=(1, 2), dilation=(2, 1), groups=2)
N, C_in, C_out, H, W, kH, kW = 2, 4, 6, 4, 3, 3, 3
G = cfg["groups"]

rng = np.random.default_rng(0)
x = rng.standard_normal((N, C_in, H, W))                  # (N, C_in, H, W)
w = rng.standard_normal((C_in, C_out // G, kH, kW))       # (C_in, C_out/G, kH, kW)

y = deconv.conv_transpose2d(x, w, **cfg)                  # (N, C_out, H_out, W_out)
H_out = shapes.conv_transpose_output_size(H, kH, 2, 1, 1, 2)   # (4-1)*2 - 2 + 2*2 + 1 + 1 = 10
W_out = shapes.conv_transpose_output_size(W, kW, 3, 2, 2, 1)   # (3-1)*3 - 4 + 1*2 + 2 + 1 = 7
print("x", x.shape, "w", w.shape, "->  y", y.shape)
assert y.shape == (N, C_out, H_out, W_out) == (2, 6, 10, 7)

# %% [markdown]
# ## 2. View (b): scatter-add
#
# The definition read literally is an algorithm: loop over the input pixels $(h, \ell)$; each one
# multiplies the whole kernel slice $w[c, :, :, :]$ (shape $(C_{out}/G, k_H, k_W)$) by its value
# and adds the result into the output at rows $h s + \alpha d$ and columns $\ell s + \beta d$ of the *full*
# (uncropped) output, i.e. a dilated stamp whose top-left corner sits at $(h s, \ell s)$. At the end
# we append $a$ zero rows/columns at the bottom/right of the full output (positions no stamp can
# reach) and crop $p$ from each side: rows $p, \dots, p + H_{out} - 1$ are kept.

# %%
def conv_transpose_scatter(x, w, stride, padding, output_padding, dilation, groups):
    """Transposed conv by stamping: y_full[i*s + a*d, j*s + b*d] += x[i, j] * w[a, b]."""
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
    N, C_in, H, W = x.shape
    _, C_out_g, kH, kW = w.shape
    C_in_g = C_in // groups
    FH = (H - 1) * sh + dh * (kH - 1) + 1                  # full (uncropped) output rows
    FW = (W - 1) * sw + dw * (kW - 1) + 1
    full = np.zeros((N, C_out_g * groups, FH + oph, FW + opw))   # a extra rows/cols: never stamped
    for c in range(C_in):
        g = c // C_in_g
        out_ch = slice(g * C_out_g, (g + 1) * C_out_g)     # the output channels of group g
        for i in range(H):
            for j in range(W):
                rows = slice(i * sh, i * sh + dh * (kH - 1) + 1, dh)   # kH rows, step dh
                cols = slice(j * sw, j * sw + dw * (kW - 1) + 1, dw)   # kW cols, step dw
                # (N, 1, 1, 1) * (1, C_out/G, kH, kW): one stamp per sample
                full[:, out_ch, rows, cols] += x[:, c, i, j, None, None, None] * w[c][None]
    H_out, W_out = FH + oph - 2 * ph, FW + opw - 2 * pw
    return full[:, :, ph:ph + H_out, pw:pw + W_out]        # (N, C_out, H_out, W_out)

y_b = conv_transpose_scatter(x, w, **cfg)
compare("(b) scatter-add  vs deconv.conv_transpose2d", y_b, y, rtol=1e-10, atol=1e-12);

# %% [markdown]
# ## 3. View (c): the transpose of the convolution matrix
#
# Now take the *ordinary* convolution that runs in the opposite direction: it reads an image $z$
# of shape $(N, C_{out}, H_{out}, W_{out})$ and writes $(N, C_{in}, H, W)$, with stride $s$,
# padding $p$, dilation $d$, $G$ groups, and **the very same array** $w$ read as a conv weight:
# PyTorch's conv layout $(C^{conv}_{out}, C^{conv}_{in}/G, k_H, k_W)$ is
# $(C_{in}, C_{out}/G, k_H, k_W)$ here. In PyTorch's convention (cross-correlation, no flip),
#
# $$\mathrm{conv}(z)[n, c, h, \ell] \;=\; \sum_{c_o \in g,\ \alpha,\ \beta} z[n, c_o,\ h s - p + \alpha d,\ \ell s - p + \beta d]\; w[c,\ c_o - g\,C_{out}/G,\ \alpha, \beta],$$
#
# where reads outside $z$ (the padding) are zero. Pair it with an arbitrary $x$ of the conv's
# output shape and expand:
#
# $$\langle x, \mathrm{conv}(z)\rangle = \sum_{n,c,h,\ell} x[n,c,h,\ell] \sum_{c_o,\alpha,\beta} z[n,c_o,h s-p+\alpha d,\dots]\,w[c,c_o,\alpha,\beta]
#   = \sum_{n,c_o,u,v} z[n,c_o,u,v] \underbrace{\sum_{\substack{c,h,\alpha:\ h s-p+\alpha d=u\\ \ell,\beta:\ \ell s-p+\beta d=v}} x[n,c,h,\ell]\,w[c,c_o,\alpha,\beta]}_{=\ y[n,c_o,u,v]} .$$
#
# The underbraced sum is exactly the scatter definition of Section 1, restricted to output
# positions $0 \le u < H_{out}$ (the padding rows of $z$ do not exist, which is why the
# transposed conv crops $p$ rows). So
#
# $$\langle x, \mathrm{conv}(z)\rangle = \langle \mathrm{conv\_transpose}(x), z\rangle \quad\text{for all } x, z .$$
#
# Flatten $z$ into a vector of length $M = C_{out} H_{out} W_{out}$ and one sample of $x$ into a
# vector of length $K = C_{in} H W$. The convolution is linear, so it is a $K\times M$ matrix $C$
# with $\mathrm{conv}(z) = C z$, and the identity says $\mathrm{conv\_transpose}(x) = C^\top x$.
# This also explains the name and the main use of the layer: by the chain rule, the gradient of a
# loss $\mathcal L$ with respect to the conv's input is
# $\partial \mathcal L / \partial z = C^\top\, \partial \mathcal L / \partial(\mathrm{conv}(z))$, so **the
# transposed convolution is the backward pass of the convolution** (and vice versa).
#
# We build $C$ without writing any index formula: feed the convolution the $M$ one-hot images
# $e_m$; the output $C e_m$ is column $m$ of $C$. One call with a batch of $M$ one-hots does it.

# %%
sp = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"], groups=G)  # the conv's arguments
M = C_out * H_out * W_out                                      # length of a flattened z: 6*10*7 = 420
K = C_in * H * W                                               # length of a flattened x sample: 4*4*3 = 48
one_hots = np.eye(M).reshape(M, C_out, H_out, W_out)           # (M, C_out, H_out, W_out)
C = deconv.conv2d(one_hots, w, **sp).reshape(M, K).T           # column m = conv(e_m): C is (K, M)
print("C:", C.shape, f"  nonzeros: {np.count_nonzero(C)} of {C.size} ({np.count_nonzero(C) / C.size:.1%})")

# one sample at a time, y = C^T x; all N samples at once as a matrix product
y_c = (x.reshape(N, K) @ C).reshape(N, C_out, H_out, W_out)    # (N, K) @ (K, M) = rows of (C^T x)
compare("(c) C^T x         vs deconv.conv_transpose2d", y_c, y, rtol=1e-10, atol=1e-12);

# %% [markdown]
# The conv did map $H_{out}\times W_{out} = 10 \times 7$ back to exactly $H \times W = 4\times 3$
# (otherwise the reshape to $(M, K)$ would have failed) — that is what `output_padding` was
# chosen for, see Section 5. Three further checks of the adjoint story:
#
# 1. `deconv.conv2d_backward(x, z, w, ...)` (upstream gradient $x$, conv input $z$) returns as
#    `grad_input` the gradient $C^\top x$, which must be the transposed convolution of $x$;
# 2. the adjoint identity $\langle x, \mathrm{conv}(z)\rangle = \langle \mathrm{conv\_transpose}(x), z\rangle$
#    on random $x, z$;
# 3. float64 central differences (step $\varepsilon = 10^{-6}$) of the scalar
#    $f(z) = \langle x, \mathrm{conv}(z)\rangle$, whose gradient with respect to $z$ is by
#    definition $C^\top x$. Because $f$ is linear, the difference quotient has no truncation error
#    at all; what remains is the rounding of $f$ (a few $10^{-15}$) divided by $2\varepsilon$,
#    i.e. a few $10^{-9}$.

# %%
z = np.random.default_rng(1).standard_normal((N, C_out, H_out, W_out))   # an input of the conv
grad_input, _, _ = deconv.conv2d_backward(x, z, w, **sp)                  # (N, C_out, H_out, W_out)
compare("conv2d_backward grad_input vs conv_transpose2d", grad_input, y, rtol=1e-10, atol=1e-12)

lhs = np.vdot(x, deconv.conv2d(z, w, **sp))    # <x, conv(z)>
rhs = np.vdot(y, z)                            # <conv_transpose(x), z>
print(f"<x, conv(z)> = {lhs:.15f}\n<y,       z> = {rhs:.15f}")
compare("adjoint identity", np.array(lhs), np.array(rhs), rtol=1e-12, atol=0)

numeric = numerical_gradient(lambda: np.vdot(x, deconv.conv2d(z, w, **sp)), z, eps=1e-6)   # (N, C_out, H_out, W_out)
# relative tolerance 1e-6, measured against the gradient's scale for entries near zero
compare("central differences d<x,conv(z)>/dz vs conv_transpose2d(x)", numeric, y, rtol=1e-6, atol=1e-6 * np.abs(y).max());

# %% [markdown]
# `conv2d_backward`'s `grad_input` and `conv_transpose2d` agree bit for bit (`exact: True`):
# deconv runs the same Numba kernel for both, as the README says. The scatter and the
# matrix product add the same terms in other orders, hence differences of a few ulp.
#
# ## 4. View (a): zero insertion, padding, and a flipped kernel
#
# Now solve the scatter constraint for the input pixel instead of looping over it. In one
# dimension and one channel, $y[u] = \sum_{h,\alpha:\ h s + \alpha d = u + p} x[h]\,w[\alpha]$. Define the
# **zero-inserted** input $\tilde x$ of length $(H-1)s+1$ by $\tilde x[h s] = x[h]$ and zero
# elsewhere; then the constraint becomes "read $\tilde x$ at $u + p - \alpha d$":
#
# $$y[u] = \sum_{\alpha=0}^{k-1} \tilde x[u + p - \alpha d]\; w[\alpha].$$
#
# This is a convolution in the textbook sense (index *minus* tap). Substitute $\alpha = k-1-\alpha'$ to turn it
# into the cross-correlation that `conv2d` computes:
#
# $$y[u] = \sum_{\alpha'=0}^{k-1} \tilde x\big[u + \alpha' d - (d(k-1) - p)\big]\; w[k-1-\alpha'] = \sum_{\alpha'} \tilde x_{\mathrm{pad}}[u + \alpha'd]\; w_{\mathrm{flip}}[\alpha'],$$
#
# where $\tilde x_{\mathrm{pad}}$ is $\tilde x$ with $d(k-1) - p$ zeros prepended and
# $w_{\mathrm{flip}}[\alpha'] = w[k-1-\alpha']$. For the output to have $H_{out}$ entries, the last read
# $H_{out}-1+d(k-1)$ must exist, which needs $d(k-1) - p + a$ zeros appended. So:
#
# 1. insert $s-1$ zeros between neighbouring input pixels (rows and columns);
# 2. pad with $d(k-1) - p$ on the top/left and $d(k-1) - p + a$ on the bottom/right (a negative
#    amount means: crop that many);
# 3. cross-correlate, stride 1, dilation $d$, with the kernel **flipped in both spatial axes** and
#    its channel axes **swapped** to conv layout $(C_{out}, C_{in}/G, k_H, k_W)$, group by group.
#
# This is the picture in Dumoulin & Visin's guide. It is also the wasteful way to compute the layer:
# away from the borders a fraction $1 - 1/(s_H s_W)$ of the products multiply an inserted zero. Step 3 is written below as
# a loop over the $k_H k_W$ taps, each one a matrix product over channels (`einsum`).

# %%
def zero_insert(x, stride):
    """(N, C, H, W) -> (N, C, (H-1)*sH + 1, (W-1)*sW + 1) with x at every stride-th position."""
    sh, sw = stride
    N, C, H, W = x.shape
    out = np.zeros((N, C, (H - 1) * sh + 1, (W - 1) * sw + 1))
    out[:, :, ::sh, ::sw] = x
    return out

def pad_or_crop(a, top, bottom, left, right):
    """Zero-pad the last two axes by the given amounts; a negative amount crops instead."""
    a = np.pad(a, [(0, 0), (0, 0), (max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0))])
    return a[:, :, max(-top, 0):a.shape[2] - max(-bottom, 0), max(-left, 0):a.shape[3] - max(-right, 0)]

def correlate(xp, v, dilation, groups):
    """Stride-1, dilated, grouped cross-correlation without padding ('valid').
    xp (N, C, Hp, Wp), v (C_out, C/groups, kH, kW) -> (N, C_out, Hp - dH(kH-1), Wp - dW(kW-1))."""
    dh, dw = dilation
    C_out, C_g, kH, kW = v.shape
    Ho, Wo = xp.shape[2] - dh * (kH - 1), xp.shape[3] - dw * (kW - 1)
    out = np.zeros((xp.shape[0], C_out, Ho, Wo))
    Co_g = C_out // groups
    for g in range(groups):
        xg, vg = xp[:, g * C_g:(g + 1) * C_g], v[g * Co_g:(g + 1) * Co_g]
        for a in range(kH):
            for b in range(kW):
                window = xg[:, :, a * dh:a * dh + Ho, b * dw:b * dw + Wo]       # (N, C/G, Ho, Wo)
                out[:, g * Co_g:(g + 1) * Co_g] += np.einsum("nchw,oc->nohw", window, vg[:, :, a, b])
    return out

def flip_swap(w, groups):
    """Transposed-conv weight (C_in, C_out/G, kH, kW) -> conv weight (C_out, C_in/G, kH, kW), flipped."""
    C_in, C_out_g, kH, kW = w.shape
    v = w.reshape(groups, C_in // groups, C_out_g, kH, kW).transpose(0, 2, 1, 3, 4)   # swap within each group
    return v.reshape(groups * C_out_g, C_in // groups, kH, kW)[:, :, ::-1, ::-1]      # flip both spatial axes

def conv_transpose_zero_insertion(x, w, stride, padding, output_padding, dilation, groups):
    (ph, pw), (oph, opw), (dh, dw) = padding, output_padding, dilation
    kH, kW = w.shape[2:]
    eh, ew = dh * (kH - 1) - ph, dw * (kW - 1) - pw                # d(k-1) - p per axis
    xp = pad_or_crop(zero_insert(x, stride), eh, eh + oph, ew, ew + opw)
    return correlate(xp, flip_swap(w, groups), dilation, groups)   # (N, C_out, H_out, W_out)

y_a = conv_transpose_zero_insertion(x, w, **cfg)
compare("(a) zero insertion vs deconv.conv_transpose2d", y_a, y, rtol=1e-10, atol=1e-12);

# %% [markdown]
# One configuration can hide a special case, so run all three constructions on a few more,
# including $p > d(k-1)$ (step 2 then *crops* the zero-inserted input), $a$ on one axis only,
# a depthwise case ($G = C_{in}$) and a rectangular kernel. Each line checks (a), (b) and (c)
# against deconv and against `conv2d_backward`'s `grad_input`.

# %%
def conv_matrix(w, out_shape, **conv_args):
    """C^T of the conv (C_out, H_out, W_out) -> (C_in, H, W), built from one-hot inputs: (M, K)."""
    M = int(np.prod(out_shape))
    return deconv.conv2d(np.eye(M).reshape((M,) + out_shape), w, **conv_args).reshape(M, -1)

configs = [  # (C_in, C_out, H, W, kH, kW, stride, padding, output_padding, dilation, groups)
    (3, 2, 5, 4, 3, 3, (3, 3), (4, 4), (2, 0), (1, 1), 1),     # p > d(k-1): crop instead of pad
    (4, 4, 3, 5, 2, 3, (2, 1), (0, 1), (1, 0), (3, 2), 4),     # depthwise, output_padding on one axis
    (2, 6, 4, 4, 5, 1, (1, 2), (2, 0), (0, 1), (1, 1), 2),     # stride 1 on one axis, 5x1 kernel
]
for ci, co, h, wd, kh, kw, s, p, op, d, g in configs:
    rg = np.random.default_rng(2)
    xx, ww = rg.standard_normal((2, ci, h, wd)), rg.standard_normal((ci, co // g, kh, kw))
    args = dict(stride=s, padding=p, output_padding=op, dilation=d, groups=g)
    ref = deconv.conv_transpose2d(xx, ww, **args)                                   # (2, co, Ho, Wo)
    CT = conv_matrix(ww, ref.shape[1:], stride=s, padding=p, dilation=d, groups=g)  # (M, K)
    print(f"k={kh}x{kw} s={s} p={p} op={op} d={d} G={g}: {xx.shape} -> {ref.shape}")
    compare("   (a) zero insertion", conv_transpose_zero_insertion(xx, ww, **args), ref, rtol=1e-10, atol=1e-12)
    compare("   (b) scatter-add   ", conv_transpose_scatter(xx, ww, **args), ref, rtol=1e-10, atol=1e-12)
    compare("   (c) C^T x         ", (xx.reshape(2, -1) @ CT.T).reshape(ref.shape), ref, rtol=1e-10, atol=1e-12)
    gi = deconv.conv2d_backward(xx, np.zeros_like(ref), ww, stride=s, padding=p, dilation=d, groups=g)[0]
    compare("   conv2d_backward   ", gi, ref, rtol=1e-10, atol=1e-12)

# %% [markdown]
# ### The three views side by side
#
# One channel, a $3\times 3$ input holding $1, \dots, 9$, a $3\times3$ kernel, stride 2, no padding:
# the output is $(3-1)\cdot 2 + 3 = 7$ pixels wide. Left, view (a): the zero-inserted input padded by
# $d(k-1)-p = 2$, and the window that the flipped kernel reads for output pixel $y[3,2]$, each cell
# labelled with the tap $\alpha\beta$ of $w$ it meets (22 at the top left: flipped) — it
# straddles two input pixels and seven zeros (counted in the cell: of its nine cells, only those
# at the inserted positions $(2 + 2h, 2 + 2\ell)$ hold input pixels). Middle, view (b): the output as
# a sum of nine stamps, each outlined in its own colour; pixels are covered by one, two or four
# stamps (also counted in the cell). Right, view (c):
# $C^\top$, a $49\times 9$ matrix. Its column $m$ is the stamp of input pixel $m$, flattened (the
# thick outline in the middle is column 4), and its row $7u+v$ holds the kernel weights that the
# window of output pixel $(u, v)$ applies (the dashed row is $y[3,2]$'s window on the left). Reading
# $C^\top$ by columns is view (b), reading it by rows is view (a).

# %%
x1 = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)                                   # (1, 1, 3, 3), values 1..9
w1 = np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]).reshape(1, 1, 3, 3) / 4
small = dict(stride=(2, 2), padding=(0, 0), output_padding=(0, 0), dilation=(1, 1), groups=1)
y1 = deconv.conv_transpose2d(x1, w1, stride=2)                                   # (1, 1, 7, 7)
xpad1 = pad_or_crop(zero_insert(x1, (2, 2)), 2, 2, 2, 2)                         # (1, 1, 9, 9)
CT1 = conv_matrix(w1, (1, 7, 7), stride=2)                                       # (49, 9)
compare("figure example: (a)", conv_transpose_zero_insertion(x1, w1, **small), y1, rtol=1e-12, atol=0)
compare("figure example: (b)", conv_transpose_scatter(x1, w1, **small), y1, rtol=1e-12, atol=0)
compare("figure example: (c)", (CT1 @ x1.reshape(9)).reshape(y1.shape), y1, rtol=1e-12, atol=0)

u0, v0 = 3, 2                                   # one output pixel, followed through all three panels
m0 = 4                                          # one input pixel (h, l) = (1, 1), ditto
window_cells = xpad1[0, 0, u0:u0 + 3, v0:v0 + 3]                                # (3, 3): what y[3,2] reads
n_inputs, n_zeros = np.count_nonzero(window_cells), np.sum(window_cells == 0)  # x1 holds 1..9: no zero input
coverage = conv_transpose_scatter(np.ones_like(x1), np.ones_like(w1), **small)[0, 0]   # stamps per pixel
print(f"y[{u0},{v0}]'s window: {n_inputs} input pixels and {n_zeros} zeros; "
      f"stamps covering a pixel: {sorted(int(c) for c in set(coverage.ravel()))}; C^T: {CT1.shape}")
assert (n_inputs, n_zeros) == (2, 7) and set(coverage.ravel()) == {1.0, 2.0, 4.0} and CT1.shape == (49, 9)
fig, axes = plt.subplots(1, 3, figsize=(11, 4.3), gridspec_kw=dict(width_ratios=[1, 1, 0.62]))
ax = axes[0]
ax.imshow(xpad1[0, 0], cmap="gray", vmin=0, vmax=9)
for (r_, c_), v in np.ndenumerate(xpad1[0, 0]):
    ax.text(c_, r_, f"{v:.0f}", ha="center", va="center", fontsize=8,
            color="tab:red" if v == 0 else ("white" if v < 5 else "black"))
ax.add_patch(Rectangle((v0 - 0.5, u0 - 0.5), 3, 3, fill=False, ec="tab:orange", lw=2.5))
for a1 in range(3):                             # window cell (a1, b1) meets tap (2-a1, 2-b1) of w: the flip
    for b1 in range(3):
        ax.text(v0 + b1 - 0.45, u0 + a1 - 0.28, f"{2 - a1}{2 - b1}", fontsize=5.5, color="tab:orange")
ax.set_title(f"(a) zero-inserted input, padded by 2\norange: flipped-kernel window of y[{u0},{v0}]\n"
             "(small: tap αβ of w met there)", fontsize=9)
ax.set_xlabel("column"); ax.set_ylabel("row")
ax = axes[1]
ax.imshow(y1[0, 0], cmap="gray")
colours = plt.cm.tab10(np.arange(9))
for m, (i, j) in enumerate(np.ndindex(3, 3)):
    inset = 0.06 + 0.04 * m                     # stagger the outlines so that overlaps stay visible
    ax.add_patch(Rectangle((2 * j - 0.5 + inset, 2 * i - 0.5 + inset), 3 - 2 * inset, 3 - 2 * inset,
                           fill=False, ec=colours[m], lw=3.5 if m == m0 else 1.2))
ax.add_patch(Rectangle((v0 - 0.5, u0 - 0.5), 1, 1, fill=False, ec="tab:orange", lw=2.5, ls="--"))
ax.set_title("(b) y = sum of 9 stamps x[h,ℓ]·w at (2h, 2ℓ)\nthick: stamp of x[1,1]; dashed: y[3,2]", fontsize=10)
ax.set_xlabel("column"); ax.set_ylabel("row")
ax = axes[2]
im = ax.imshow(CT1, cmap="viridis", aspect="auto", interpolation="nearest")
ax.add_patch(Rectangle((m0 - 0.5, -0.5), 1, 49, fill=False, ec=colours[m0], lw=2))
ax.axhline(7 * u0 + v0, color="tab:orange", lw=1.5, ls="--")
ax.set_title("(c) $C^\\top$ (49 × 9): column = stamp,\nrow = window", fontsize=10)
ax.set_xticks(range(9))
ax.set_xlabel("input pixel m = 3h + ℓ"); ax.set_ylabel("output pixel 7u + v")
fig.colorbar(im, ax=ax, fraction=0.08, label="weight")
fig.suptitle("One transposed convolution (3×3 input, 3×3 kernel, stride 2), three ways", y=1.0)
fig.tight_layout()
plt.show()

# %% [markdown]
# ### By hand: notebook 1's small example, transposed
#
# The $3 \times 3$ integer input and the $2\times 2$ kernel of tap numbers ($w[\alpha, \beta] = 1 +
# 2\alpha + \beta$) of notebooks 1 and 2, now through the transposed convolution with stride 2 and no
# padding: $o = (3-1)\cdot 2 + 2 = 6$. Redo it on paper both ways:
#
# * **scatter**: input pixel $(h, \ell)$ stamps $x[h, \ell]\cdot w$, unflipped, at $(2h, 2\ell)$ (with
#   $k = s$ the stamps tile the output without overlapping);
# * **zero insertion**: put one zero between neighbouring pixels, pad by $d(k-1) - p = 1$ on every
#   side, and slide the *flipped* kernel (4 3 / 2 1) with stride 1. The printed window products show
#   which tap meets which pixel: the flip is what makes both ways agree.
#
# Finally the link with notebook 2: with padding 1 and output padding 1, the transposed convolution
# of notebook 2's $\bar y$ is that notebook's input gradient $\bar x$ of the same convolution.

# %%
X_HAND = np.array([[1., 2., 1.], [3., 1., 2.], [2., 1., 3.]])      # (H, W): notebook 1's input
W_HAND = np.array([[1., 2.], [3., 4.]])                            # (k_H, k_W): tap numbers
DY_HAND = np.array([[1., -1.], [2., 1.]])                          # notebook 2's upstream gradient

y_scatter = np.zeros((6, 6))                                       # (H_out, W_out)
for h in range(3):
    for l in range(3):
        y_scatter[2 * h:2 * h + 2, 2 * l:2 * l + 2] += X_HAND[h, l] * W_HAND
        print(f"x[{h},{l}] = {X_HAND[h, l]:.0f} stamps {(X_HAND[h, l] * W_HAND).ravel().tolist()} at ({2 * h}, {2 * l})")
print(f"\nscatter: y =\n{y_scatter}\n")

canvas = np.pad(zero_insert(X_HAND[None, None], (2, 2))[0, 0], 1)  # (7, 7): zeros inserted, padded by 1
flipped = W_HAND[::-1, ::-1]
print(f"zero-inserted, padded input:\n{canvas}\nflipped kernel:\n{flipped}")
y_gather = np.zeros((6, 6))
for u in range(6):
    for v in range(6):
        y_gather[u, v] = np.sum(canvas[u:u + 2, v:v + 2] * flipped)
for u, v in [(0, 0), (0, 1), (1, 1), (4, 3)]:                     # a few windows, written out
    cells = canvas[u:u + 2, v:v + 2].ravel()
    print(f"y[{u},{v}] = " + " + ".join(f"{t:.0f}*{c:.0f}" for t, c in zip(flipped.ravel(), cells))
          + f" = {y_gather[u, v]:.0f}")
compare("hand example: scatter vs conv_transpose2d", y_scatter,
        deconv.conv_transpose2d(X_HAND[None, None], W_HAND[None, None], stride=2)[0, 0], rtol=0, atol=0)
compare("hand example: zero insertion + flipped kernel vs scatter", y_gather, y_scatter, rtol=0, atol=0)
dx_notebook2 = deconv.conv2d_backward(DY_HAND[None, None], X_HAND[None, None], W_HAND[None, None],
                                      stride=2, padding=1)[0]
compare("conv_transpose2d(dy, p=1, a=1) vs notebook 2's dx",
        deconv.conv_transpose2d(DY_HAND[None, None], W_HAND[None, None], stride=2, padding=1, output_padding=1),
        dx_notebook2, rtol=0, atol=0)

# %% [markdown]
# **The scatter in motion.** With a $3\times 3$ kernel (tap numbers 1..9) and stride 2 the stamps of
# the same input overlap, and overlapping stamps add. Each frame takes one input pixel, multiplies the
# kernel by it and adds the stamp at $(2h, 2\ell)$; the output's numbers are the running sums. The
# cell writes `figures/conv_transpose_scatter.gif` and checks the last frame against `deconv`.

# %%
W_TAPS = np.arange(1.0, 10.0).reshape(3, 3)                        # (3, 3): tap numbers 1..9
frames_y = [np.zeros((7, 7))]
for h in range(3):
    for l in range(3):
        nxt = frames_y[-1].copy()
        nxt[2 * h:2 * h + 3, 2 * l:2 * l + 3] += X_HAND[h, l] * W_TAPS
        frames_y.append(nxt)
compare("scatter frames: last one vs conv_transpose2d", frames_y[-1],
        deconv.conv_transpose2d(X_HAND[None, None], W_TAPS[None, None], stride=2)[0, 0], rtol=0, atol=0)


def draw_scatter_frame(frame, axes):
    """Frame `frame` (0..8): input pixel frame // 3, frame % 3 stamps its scaled kernel."""
    h, l = divmod(frame, 3)
    for ax in axes:
        ax.clear()
        ax.set_aspect("equal")
        ax.axis("off")
    ax_x, ax_w, ax_y = axes
    for (r, c), val in np.ndenumerate(X_HAND):
        ax_x.add_patch(Rectangle((c, r), 1, 1, fc="#7fb0e3" if (r, c) == (h, l) else "white", ec="0.3"))
        ax_x.text(c + 0.5, r + 0.55, f"{val:.0f}", ha="center", va="center", fontsize=12)
    for (r, c), val in np.ndenumerate(W_TAPS):
        ax_w.add_patch(Rectangle((c, r), 1, 1, fc="#f4b183", ec="0.3"))
        ax_w.text(c + 0.5, r + 0.55, f"{val:.0f}", ha="center", va="center", fontsize=11)
    for (r, c), val in np.ndenumerate(frames_y[frame + 1]):
        ax_y.add_patch(Rectangle((c, r), 1, 1, fc="#9be8e8" if val else "white", ec="0.5"))
        if val:
            ax_y.text(c + 0.5, r + 0.55, f"{val:.0f}", ha="center", va="center", fontsize=8)
    ax_y.add_patch(Rectangle((2 * l, 2 * h), 3, 3, fill=False, ec="tab:red", lw=2.5))
    for ax, n in ((ax_x, 3), (ax_w, 3), (ax_y, 7)):
        ax.set_xlim(-0.1, n + 0.1)
        ax.set_ylim(n + 0.1, -0.1)
    ax_x.set_title(f"input x: pixel ({h},{l})", fontsize=9)
    ax_w.set_title(f"kernel w (taps 1..9)\nstamp = {X_HAND[h, l]:.0f} · w", fontsize=9)
    ax_y.set_title(f"output: stamp added at ({2 * h},{2 * l})\nstride 2: overlaps add", fontsize=9)


fig, axes = plt.subplots(1, 3, figsize=(8, 3.2), gridspec_kw=dict(width_ratios=[3, 3, 7]))
size = save_gif(fig, lambda frame: draw_scatter_frame(frame, axes), 9, "conv_transpose_scatter.gif", fps=1)
print(f"figures/conv_transpose_scatter.gif: 9 frames, {size / 1000:.0f} kB")

# %% [markdown]
# ![The transposed convolution as scatter: each input pixel stamps the scaled kernel](figures/conv_transpose_scatter.gif)
#
# **Exercise E3.1: the transposed convolution by zero insertion.** For one channel, stride $s$, no
# padding, no dilation: insert $s - 1$ zeros between neighbouring pixels, pad by $k - 1$ on every
# side, and correlate (stride 1) with the kernel flipped in both axes. `check_exercise` compares
# with `deconv.conv_transpose2d` on five integer cases, $k < s$, $k = s$ and $k > s$ among them.
# (Solution: `conv_transpose_by_zero_insertion` in [solutions.py](solutions.py).)

# %%
def conv_transpose_by_zero_insertion(x, w, s):
    """x (H, W), w (k, k), stride s -> y ((H-1)s + k, (W-1)s + k)."""
    return ...                                     # <- your code here


check_exercise("E3.1", conv_transpose_by_zero_insertion)

# %% [markdown]
# ## 5. `output_padding`: choosing among the inputs of a strided convolution
#
# A convolution of an input of length $i$ has
#
# $$o = \left\lfloor \frac{i + 2p - d(k-1) - 1}{s} \right\rfloor + 1$$
#
# outputs. The floor throws away a remainder $a = (i + 2p - d(k-1) - 1) \bmod s \in \{0, \dots, s-1\}$.
# Indeed, the padded input has $i + 2p = (o-1)s + d(k-1) + 1 + a$ rows: the last window
# starts at $(o-1)s$ and ends $d(k-1)$ rows later, and the $a$ rows after it are read by no
# window at all. So the $s$ input lengths that differ only in $a$ give the same $o$,
# and the transposed convolution must return *one* of them. Its formula solved for $i$, with the
# remainder as its output padding $a$, reads
#
# $$i = (o-1)\,s - 2p + d(k-1) + a + 1 ,$$
#
# which is the output size of Section 1. So `output_padding` is the remainder $a$ of the conv
# whose adjoint we want; `deconv.shapes.inverse_output_padding(L, k, s, p, d)` computes it from
# $i$, and $0 \le a < s$. (PyTorch also accepts $s \le a < d$ when $d > s$; then no
# convolution with these arguments has that input length, and the README states what deconv's
# backward does there.)
#
# Example: a stride-3 conv with $k=3$, $p=1$ maps $i = 13, 14, 15$ all to 5.

# %%
k_, s_, p_ = 3, 3, 1
for L in range(13, 16):
    L_conv = shapes.conv_output_size(L, k_, s_, p_)
    op = shapes.inverse_output_padding(L, k_, s_, p_)
    back = shapes.conv_transpose_output_size(L_conv, k_, s_, p_, output_padding=op)
    y_op = deconv.conv_transpose2d(np.ones((1, 1, L_conv, L_conv)), np.ones((1, 1, k_, k_)),
                                   stride=s_, padding=p_, output_padding=op)
    print(f"L = {L} -> conv -> {L_conv};  output_padding = {op} = remainder "
          f"{(L + 2 * p_ - (k_ - 1) - 1) % s_};  transposed conv -> {back}, array {y_op.shape[2:]}")
    assert L_conv == 5 and op == (L + 2 * p_ - (k_ - 1) - 1) % s_ and back == L and y_op.shape[2:] == (L, L)

# the remainder formula agrees with deconv.shapes on a grid of configurations
for L in range(1, 30):
    for k in range(1, 6):
        for s in range(1, 5):
            for p in range(0, 3):
                for d in (1, 2):
                    if d * (k - 1) + 1 <= L + 2 * p:
                        assert shapes.inverse_output_padding(L, k, s, p, d) == (L + 2 * p - d * (k - 1) - 1) % s

# %% [markdown]
# **Exercise E3.2.** Write the `output_padding` $a$ with which the transposed convolution returns
# exactly the input size $i$ of a convolution $(k, s, p, d)$: the remainder the floor dropped.
# Checked against `deconv.shapes.inverse_output_padding` on every valid configuration with
# $i \le 12$. (Solution: `output_padding_that_restores` in [solutions.py](solutions.py).)

# %%
def output_padding_that_restores(i, k, s, p, d):
    """The a that makes conv_transpose(conv(length i)) have length i again."""
    return ...                                     # <- your formula here


check_exercise("E3.2", output_padding_that_restores)

# %% [markdown]
# `output_padding` is not "append zeros". The $a$ rows that no window reads are the last
# rows of the *padded* input; as long as $a \le p$ they are padding rows, and the rows that the
# transposed conv adds are real input rows of the conv, whose values are rows of the full output that
# the crop by $p$ would otherwise have removed. (Only when $a > p$ are the last $a - p$ rows real
# input rows that no window reads: zero columns of $C$, zero rows of the output.) With $a$ rows
# added, the output with $a = 0$ is exactly its top-left part:

# %%
xo = np.random.default_rng(3).standard_normal((1, 2, 4, 4))   # (N, C_in, H, W)
wo = np.random.default_rng(4).standard_normal((2, 3, 3, 3))   # (C_in, C_out, k, k)
y0 = deconv.conv_transpose2d(xo, wo, stride=2, padding=1)                      # (1, 3, 7, 7)
y1_ = deconv.conv_transpose2d(xo, wo, stride=2, padding=1, output_padding=1)   # (1, 3, 8, 8)
compare("output_padding=1 output, top-left 7x7 vs output_padding=0", y1_[:, :, :7, :7], y0, rtol=1e-12, atol=0)
print("largest |value| in the added last row:", np.abs(y1_[:, :, 7, :]).max())
assert np.abs(y1_[:, :, 7, :]).max() > 0.1   # real values, not padding

# %% [markdown]
# ### FSRCNN's deconvolution layer
#
# FSRCNN (Dong, Loy & Tang, 2016) replaces the bicubic pre-upsampling of SRCNN by a last
# "deconvolution" layer with $9 \times 9$ kernels and stride $n$ equal to the upscaling factor.
# Such a layer turns an $i$-pixel input into $n\,i - n + 1$ pixels, not $n\,i$, when it is given
# the padding that keeps the size of a stride-1 $9\times 9$ convolution. The general formula (here
# $d = 1$, $k = 9$, $s = n$) says why:
#
# $$o = (i-1)\,n - 2p + (k-1) + a + 1 = n\,i - n + (k - 2p) + a .$$
#
# With the "same"-style padding $p = (k-1)/2 = 4$ and $a = 0$ this is $n\,i - n + 1$: input
# pixel $h$ lands on output pixel $n h$ (the centre of its stamp), so the output runs from the first
# input pixel to the last one and stops there; the $n-1$ output pixels that belong "to the right
# of" the last input pixel are missing. To get exactly $n\,i$ we need
#
# $$k - 2p + a = n, \qquad 0 \le a < n ,$$
#
# and with $k = 9$, $p = 4$ that is $a = n - 1$ (what common PyTorch re-implementations of FSRCNN use:
# `ConvTranspose2d(..., kernel_size=9, stride=n, padding=4, output_padding=n-1)`); other $(p, a)$
# pairs work too, e.g. $p = 3, a = 0$ for $n = 3$. The cell lists every solution with $k = 9$ and
# checks each against `deconv.shapes`, `inverse_output_padding` and the array that
# `conv_transpose2d` returns, for input sizes $i = 1, \dots, 12$.

# %%
k = 9
for n in (2, 3, 4):
    same = [shapes.conv_transpose_output_size(i, k, n, 4, 0) for i in range(1, 13)]
    assert same == [n * i - n + 1 for i in range(1, 13)]          # FSRCNN's n*i - n + 1 with p = 4, a = 0
    sols = [(p, op) for p in range(0, 5) for op in range(n) if k - 2 * p + op == n]   # k - 2p + a = n
    for p, op in sols:
        for i in range(1, 13):
            if i * n + 2 * p < k:                                   # too short for a conv back: skip
                continue
            assert shapes.conv_transpose_output_size(i, k, n, p, op) == n * i
            assert shapes.inverse_output_padding(n * i, k, n, p) == op
        out = deconv.conv_transpose2d(np.ones((1, 1, 5, 7)), np.ones((1, 1, k, k)), stride=n, padding=p, output_padding=op)
        assert out.shape[2:] == (5 * n, 7 * n)
    print(f"n = {n}:  p=4, a=0 gives n*i-n+1 = {same[:5]}...;  exactly n*i with (p, a) in {sols}")
    assert (4, n - 1) in sols

# %% [markdown]
# The picture in one dimension for $n = 3$, $i = 4$: each input pixel's 9-tap stamp (bars), the
# output window kept with $p = 4$, $a = 0$ (10 pixels, from the first input pixel's centre to the
# last one's) and the $n - 1 = 2$ pixels that $a = 2$ adds. Next to it, the staircase of the
# stride-3 convolution of the example above: three input lengths per output length, told apart by
# $a$.

# %%
n, i_len, k, p = 3, 4, 9, 4
assert n * i_len - n + 1 == 10 and n - 1 == 2                          # the text's 10 kept, 2 added
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw=dict(width_ratios=[1.4, 1]))
ax = axes[0]
for j in range(i_len):
    ax.barh(j, k, left=j * n - 0.5, height=0.6, color="tab:blue", alpha=0.35)   # full-frame positions j*n .. j*n+8
    ax.plot(j * n + 4, j, "k|", ms=14)
ax.axvspan(p - 0.5, p + n * i_len - n + 1 - 0.5, color="tab:green", alpha=0.2, label="kept, $a=0$: $ni-n+1=10$")
ax.axvspan(p + n * i_len - n + 1 - 0.5, p + n * i_len - 0.5, color="tab:orange", alpha=0.35, label="added by $a = n-1 = 2$")
ax.set_xlabel("position in the full (uncropped) output"); ax.set_ylabel("input pixel j")
ax.set_yticks(range(i_len)); ax.set_xlim(-1, (i_len - 1) * n + k)
ax.set_xticks(range(0, (i_len - 1) * n + k)); ax.tick_params(axis="x", labelsize=8)
ax.set_title("FSRCNN-style layer, i = 4: k=9, stride n=3, padding 4\nbars: stamps of the 4 input pixels; |: stamp centres", fontsize=10)
ax.legend(loc="lower right", fontsize=8)
ax = axes[1]
Ls = np.arange(4, 22)
outs = [shapes.conv_output_size(L, 3, 3, 1) for L in Ls]
ops = [shapes.inverse_output_padding(L, 3, 3, 1) for L in Ls]
sc = ax.scatter(Ls, outs, c=ops, cmap="viridis", s=60, zorder=3)
fig.colorbar(sc, ax=ax, ticks=[0, 1, 2], label="output_padding that recovers L")
ax.set_xlabel("conv input length L"); ax.set_ylabel("conv output length")
ax.set_title("stride-3 conv (k=3, p=1):\n3 input lengths per output length", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 6. The sub-pixel view: a strided transposed conv is $r^2$ small convolutions
#
# ESPCN (Shi et al., CVPR 2016) upsamples by computing $r^2 C$ channels at low resolution with an
# ordinary convolution and rearranging them into an $r\times$ larger image, the **pixel shuffle**
#
# $$\mathrm{PS}_r(t)[n, c, h r + \phi_h, w r + \phi_w] = t[n,\ c\,r^2 + \phi_h r + \phi_w,\ h, w],
#   \qquad 0 \le \phi_h, \phi_w < r .$$
#
# The note by Shi, Caballero, Theis et al. (2016, arXiv:1609.07009) shows this is the *same*
# function class as a stride-$r$ transposed convolution with an $rk\times rk$ kernel. We derive the
# exact correspondence.
#
# **One dimension, stride $r$, kernel length $K = rk$, no padding, $d = 1$.** The scatter form is
# $y[u] = \sum_{h r + \alpha = u} x[h]\, w[\alpha]$. Write the output index and the tap index in base $r$:
#
# $$u = r m + \phi \quad (\text{output block } m,\ \text{phase } \phi), \qquad \alpha = r t + \theta \quad (\text{tap block } 0 \le t < k,\ \text{tap phase } 0 \le \theta < r).$$
#
# Then $h r + \alpha = u$ reads $r(h + t) + \theta = r m + \phi$, and since $0 \le \theta, \phi < r$ this
# forces $\theta = \phi$ and $h = m - t$ (with $x[h] = 0$ outside $0 \le h < i$). Hence
#
# $$y[r m + \phi] = \sum_{t=0}^{k-1} x[m - t]\; w[r t + \phi] .$$
#
# For each phase $\phi$ only the taps $w[\phi], w[\phi + r], \dots, w[\phi + r(k-1)]$, i.e.
# `w[phi::r]`, are ever used: the big kernel splits into $r$ interleaved sub-kernels. Each phase
# is an ordinary convolution *at the input's resolution*, index minus tap again, so with
# $t = k-1-t'$ it becomes a cross-correlation with the flipped sub-kernel
# $v_\phi[t'] = w[r(k-1-t') + \phi]$ on the input padded by $k-1$:
#
# $$y[r m + \phi] = \sum_{t'=0}^{k-1} x[m - (k-1) + t']\; v_\phi[t'] , \qquad m = 0, \dots, i + k - 2 .$$
#
# The $r$ phases are computed on the same grid $m$ and interleaved by $u = rm + \phi$: that is
# $\mathrm{PS}_r$. In 2-D with channels, phase $(\phi_h, \phi_w)$ of output channel $c_o$ is channel
# $c_o r^2 + \phi_h r + \phi_w$ of one convolution with weight $V$ of shape $(C_{out} r^2, C_{in}, k, k)$:
#
# $$V[c_o r^2 + \phi_h r + \phi_w,\ c,\ t_h', t_w'] = w[c,\ c_o,\ r(k-1-t_h') + \phi_h,\ r(k-1-t_w') + \phi_w].$$
#
# **Padding and `output_padding`.** The construction gives the full output,
# $r(i + k - 1) = (i-1)r + rk$ pixels, with padding $k-1$. The transposed conv with padding $p$
# and $a$ keeps the full rows $p, \dots, p + o - 1$, so in general
#
# $$y = \mathrm{crop}_{\text{top/left } p,\ \text{bottom/right } p - a}\Big(\mathrm{PS}_r\big(\mathrm{conv}(x, V, \text{padding}=k-1)\big)\Big)$$
#
# (a negative crop means padding with zeros). When $p = r q$ is a multiple of $r$ and $a = 0$,
# cropping $q$ whole blocks per side is the same as giving the small convolution padding
# $k - 1 - q$ instead of $k-1$: no cropping at all, and $y = \mathrm{PS}_r(\mathrm{conv}(x, V, \text{padding}=k-1-q))$.
# For example $r = 3$, $K = 9$, $p = 3$ (an FSRCNN-style $\times 3$ layer that returns exactly $3i$)
# is $\mathrm{PS}_3$ of nine $3\times3$ convolutions with padding 1.
#
# Building $V$ is a reshape: split each kernel axis of length $rk$ into $(k, r)$ (block $t$,
# phase $\theta$), reverse the block axes, and move the phases next to the output channel.

# %%
def subpixel_kernels(w, r):
    """Transposed-conv weight (C_in, C_out, r*k, r*k) -> conv weight V (C_out*r*r, C_in, k, k)."""
    C_in, C_out, KH, KW = w.shape
    k = KH // r
    w6 = w.reshape(C_in, C_out, k, r, k, r)          # [c, c', t_h, phi_h, t_w, phi_w]: tap a = r*t + phi
    w6 = w6[:, :, ::-1, :, ::-1, :]                   # t -> k-1-t': flip the blocks, not the phases
    return w6.transpose(1, 3, 5, 0, 2, 4).reshape(C_out * r * r, C_in, k, k)   # channel c'*r*r + phi_h*r + phi_w

def subpixel_conv_transpose(x, w, r, padding, output_padding=0):
    """conv_transpose2d(x, w, stride=r, padding, output_padding) as crop(PS_r(conv2d(x, V)))."""
    k = w.shape[2] // r
    P, op = padding, output_padding
    full = deconv.pixel_shuffle(deconv.conv2d(x, subpixel_kernels(w, r), padding=k - 1), r)  # (N, C_out, r(H+k-1), r(W+k-1))
    return pad_or_crop(full, -P, op - P, -P, op - P)

# %% [markdown]
# Check it against `deconv.conv_transpose2d`, with $C_{in} = 3$, $C_{out} = 2$, non-square inputs,
# for $r = 2$ and $r = 3$, with and without cropping and with `output_padding`; in the $p = rq$,
# $a = 0$ cases also the crop-free form with padding $k-1-q$. The tolerance is tight
# (`rtol=1e-12`); the `exact` column says whether the two float64 results are also bitwise equal.

# %%
cases = [  # (r, k, p, a): the big kernel is (r*k) x (r*k)
    (2, 2, 1, 0),   # 4x4 kernel, stride 2, padding 1: the DCGAN / FCN "x2" layer, output 2i
    (2, 2, 1, 1),   # ... with output_padding 1: output 2i + 1
    (2, 3, 2, 0),   # 6x6, padding 2 = 2*1: crop-free with padding k-1-q = 1, output 2i
    (3, 3, 3, 0),   # 9x9, padding 3 = 3*1: crop-free with padding 1, output 3i (FSRCNN-style x3)
    (3, 3, 4, 2),   # 9x9, padding 4, output_padding 2: FSRCNN's p = 4 with a = n - 1, output 3i
    (3, 2, 0, 0),   # 6x6, no padding: the full output, r(i + k - 1)
]
rs = np.random.default_rng(5)
for r, k, P, op in cases:
    xs = rs.standard_normal((2, 3, 5, 4))                   # (N, C_in, H, W)
    ws = rs.standard_normal((3, 2, r * k, r * k))           # (C_in, C_out, rk, rk)
    ref = deconv.conv_transpose2d(xs, ws, stride=r, padding=P, output_padding=op)   # (N, C_out, H_out, W_out)
    got = subpixel_conv_transpose(xs, ws, r, P, op)
    compare(f"r={r} K={r * k} p={P} a={op} {ref.shape[2:]}: crop(PS(conv))", got, ref, rtol=1e-12, atol=1e-13)
    if P % r == 0 and op == 0:
        q = P // r
        free = deconv.pixel_shuffle(deconv.conv2d(xs, subpixel_kernels(ws, r), padding=k - 1 - q), r)
        compare(f"      crop-free: PS(conv(padding={k - 1 - q}))", free, ref, rtol=1e-12, atol=1e-13)

# %% [markdown]
# The two sides agree to a few units in the last place but are generally **not bitwise equal**:
# they add the same products in a different order (different kernels and loop orders), and float
# addition is not associative. The
# identity itself is exact: with integer-valued inputs and weights every product and every partial
# sum is an integer far below $2^{53}$, so float64 computes each side without rounding and the
# results must be identical bit for bit.

# %%
ri = np.random.default_rng(6)
for r, k, P, op in cases:
    xi = ri.integers(-9, 10, (2, 3, 5, 4)).astype(np.float64)           # integers in float64
    wi = ri.integers(-9, 10, (3, 2, r * k, r * k)).astype(np.float64)
    ref = deconv.conv_transpose2d(xi, wi, stride=r, padding=P, output_padding=op)
    got = subpixel_conv_transpose(xi, wi, r, P, op)
    assert np.array_equal(got, ref), (r, k, P, op)
print("integer-valued data: sub-pixel form == conv_transpose2d bit for bit in all", len(cases), "cases")

# %% [markdown]
# Here is the split for $r = 3$ and a $9\times 9$ kernel (one input and one output channel).
# Each tap $(\alpha, \beta)$ of the big kernel is coloured by its phase $(\alpha \bmod 3,\ \beta \bmod 3)$; the
# nine $3 \times 3$ sub-kernels on the right are the taps of one colour, in reversed block order
# (the numbers are the big kernel's tap indices $\alpha,\beta$). Sub-kernel $(\phi_h, \phi_w)$ produces the
# output pixels $(3m + \phi_h,\ 3m' + \phi_w)$ — channel $3\phi_h + \phi_w$ before the shuffle.

# %%
r, k = 3, 3
wk = np.random.default_rng(7).standard_normal((1, 1, r * k, r * k))      # (C_in, C_out, 9, 9)
V = subpixel_kernels(wk, r)                                               # (9, 1, 3, 3)
phase_colour = plt.cm.tab10([0, 1, 2, 3, 4, 5, 6, 8, 9])                  # 9 colours (tab10 without grey)
vmax = np.abs(wk).max()

fig = plt.figure(figsize=(11, 5.4))
left, right = fig.subfigures(1, 2, width_ratios=[1.15, 1])
ax = left.subplots()
im = ax.imshow(wk[0, 0], cmap="gray", vmin=-vmax, vmax=vmax)
for a in range(r * k):
    for b in range(r * k):
        ax.add_patch(Rectangle((b - 0.42, a - 0.42), 0.84, 0.84, fill=False, lw=2.4,
                               ec=phase_colour[(a % r) * r + b % r]))
ax.set_title(f"big kernel w ({r * k}×{r * k}) of a stride-{r} transposed conv\n"
             f"border colour = phase (a mod {r}, b mod {r})", fontsize=10)
ax.set_xlabel("tap b"); ax.set_ylabel("tap a")
left.colorbar(im, ax=ax, fraction=0.046, label="weight")
subs = right.subplots(r, r)
for ph in range(r):
    for pw in range(r):
        sub, ch = subs[ph, pw], ph * r + pw
        sub.imshow(V[ch, 0], cmap="gray", vmin=-vmax, vmax=vmax)
        for t in range(k):
            for u in range(k):
                a, b = r * (k - 1 - t) + ph, r * (k - 1 - u) + pw            # which big-kernel tap this is
                assert V[ch, 0, t, u] == wk[0, 0, a, b]
                sub.text(u, t, f"{a},{b}", ha="center", va="center", fontsize=7,
                         color="white" if V[ch, 0, t, u] < 0 else "black")
        for spine in sub.spines.values():
            spine.set_edgecolor(phase_colour[ch]); spine.set_linewidth(3.5)
        sub.set_xticks([]); sub.set_yticks([])
        sub.set_title(f"phase ({ph},{pw}): channel {ch}", fontsize=8)
right.suptitle("the 9 sub-kernels V (labels: taps a,b of w)", fontsize=10)
fig.suptitle("The sub-pixel split: 9×9 stride-3 transposed conv = pixel shuffle of nine 3×3 convolutions",
             y=1.03)
plt.show()

# %% [markdown]
# ### The split at work on a photograph
#
# The classic initialisation of a $\times 2$ "deconvolution" in FCN (Long, Shelhamer & Darrell,
# 2015) is the bilinear kernel $f \otimes f$ with $f = (\tfrac14, \tfrac34, \tfrac34, \tfrac14)$,
# stride 2 (FCN crops its output with a separate layer; in PyTorch terms that crop is padding 1),
# here applied to a grey patch of scikit-learn's flower photograph, box-downsampled to $24 \times 24$
# ($1 \times 1 \times 24 \times 24 \to 48 \times 48$). By Section 6 it is the shuffle of four
# $2\times2$ convolutions, whose sub-kernels are the outer products of the flipped halves
# $f[0::2]$ reversed $= (\tfrac34, \tfrac14)$ and $f[1::2]$ reversed $= (\tfrac14, \tfrac34)$. The figure shows the four phase images at low resolution and
# the interleaved result. Away from the border, where zero padding darkens the transposed conv, it
# equals `deconv.upsample_bilinear2d` with `scale_factor=2` (which replicates the border instead).

# %%
from deconv.data import sample_photos, downsample
photo = sample_photos(np.float64)[1].mean(axis=0)                   # (427, 640): the flower, grey, in [0, 1]
lr = downsample(photo[None, None, 120:216, 262:358], 4)            # (1, 1, 24, 24): 4x4 block means
f = np.array([0.25, 0.75, 0.75, 0.25])
w_bil = np.outer(f, f)[None, None]                                  # (C_in=1, C_out=1, 4, 4)
hr = deconv.conv_transpose2d(lr, w_bil, stride=2, padding=1)       # (1, 1, 48, 48)
V_bil = subpixel_kernels(w_bil, 2)                                  # (4, 1, 2, 2)
phases = deconv.conv2d(lr, V_bil, padding=1)                        # (1, 4, 25, 25): padding k-1 = 1
assert lr.shape[2:] == (24, 24) and hr.shape[2:] == (48, 48) and phases.shape[2:] == (25, 25)
compare("bilinear kernel: crop(PS(4 convs)) vs conv_transpose2d",
        pad_or_crop(deconv.pixel_shuffle(phases, 2), -1, -1, -1, -1), hr, rtol=1e-12, atol=1e-14)
print("sub-kernel of phase (0,0):\n", V_bil[0, 0])
bil = deconv.upsample_bilinear2d(lr, scale_factor=2)                # (1, 1, 48, 48)
compare("interior vs upsample_bilinear2d", hr[..., 1:-1, 1:-1], bil[..., 1:-1, 1:-1], rtol=1e-12, atol=1e-14)

lo, hi = lr.min(), lr.max()                                         # one grey scale for all panels
fig = plt.figure(figsize=(11, 4.4))
grid = fig.add_gridspec(2, 4, width_ratios=[2, 1, 1, 2], wspace=0.15, hspace=0.3)
ax = fig.add_subplot(grid[:, 0])
ax.imshow(lr[0, 0], cmap="gray", vmin=lo, vmax=hi); ax.set_title("input x, 24×24", fontsize=10)
ax.set_xticks([]); ax.set_yticks([])
for ch in range(4):
    ax = fig.add_subplot(grid[ch // 2, 1 + ch % 2])
    ax.imshow(phases[0, ch], cmap="gray", vmin=lo, vmax=hi)
    ax.set_title(f"channel {ch} = phase ({ch // 2},{ch % 2})", fontsize=8)
    ax.set_xticks([]); ax.set_yticks([])
ax = fig.add_subplot(grid[:, 3])
ax.imshow(hr[0, 0], cmap="gray", vmin=lo, vmax=hi)
ax.set_title("PS$_2$ of the 4 channels, crop 1 per side\n= conv_transpose2d, 48×48", fontsize=10)
ax.set_xticks([]); ax.set_yticks([])
fig.suptitle("Stride-2 transposed conv with the bilinear 4×4 kernel = four 2×2 convolutions (25×25 each) + pixel shuffle",
             fontsize=11)
plt.show()

# %% [markdown]
# The numbers the summary quotes, from the checks above (every `compare` recorded its maxdiff):

# %%
MAXDIFF = dict(CHECKS)                                              # name -> maxdiff, names used once
views = [m for n, m in CHECKS if n.startswith(("(a)", "(b)", "(c)"))]
subpixel = [m for n, m in CHECKS if "PS(" in n and "bilinear" not in n]
print(f"three views vs deconv: {len(views)} checks, largest maxdiff {max(views):.1e}")
print(f"adjoint identity: |<x, conv(z)> - <y, z>| = {MAXDIFF['adjoint identity']:.1e} (|<y, z>| = {abs(rhs):.1f})")
print(f"central differences: maxdiff {MAXDIFF['central differences d<x,conv(z)>/dz vs conv_transpose2d(x)']:.1e}")
print(f"sub-pixel form, random float64: {len(subpixel)} checks, largest maxdiff {max(subpixel):.1e}")
print(f"bilinear kernel vs upsample_bilinear2d, interior: maxdiff {MAXDIFF['interior vs upsample_bilinear2d']:.1e}")
assert len(views) == 12 and max(views) < 1e-13
assert MAXDIFF["adjoint identity"] <= 1e-12 * abs(rhs)
assert MAXDIFF["central differences d<x,conv(z)>/dz vs conv_transpose2d(x)"] < 1e-8
assert len(subpixel) == 9 and max(subpixel) < 1e-13 and MAXDIFF["interior vs upsample_bilinear2d"] < 1e-15

# %% [markdown]
# ## 7. "Deconvolution" is a misnomer
#
# In signal processing, *deconvolution* means undoing a convolution: a camera shook or was out of
# focus, so the recorded image is the sharp one blurred by a known point spread function (PSF)
# $\kappa$, plus noise,
#
# $$y = A x + n, \qquad (A x)[h, \ell] = \sum_{\alpha, \beta} \kappa[\alpha, \beta]\,
# x[h - \alpha + c,\; \ell - \beta + c], \qquad c = \lfloor k/2 \rfloor,$$
#
# and *deconvolution* estimates $x$ from $y$. The layer that deep learning calls "deconvolution"
# computes $A^\top y$, the **transpose** (adjoint) of a convolution: it routes every value back
# along the kernel's taps, so it *blurs again*, with the mirrored kernel. It has the shape of an
# inverse (it maps the convolution's output space back to its input space) but it is not one. Here
# both act on the same blurred photograph: a $96\times96$ crop of scikit-image's grey `camera`
# (a validation image of the corpus, $[0, 1]$ values), blurred by a one-sided motion PSF
# ($k = 9$, a horizontal streak whose weights fall from 9/45 to 1/45), with Gaussian noise of
# standard deviation 0.005.
#
# `deconv.conv2d` is a correlation, so $A$ (a true convolution, as `scipy.signal.convolve2d` with
# `mode='same'` computes it) is `conv2d` with the **flipped** PSF and padding $c = 4$, and $A^\top$
# is `conv_transpose2d` with the same weight and padding. The PSF is asymmetric on purpose: the
# flip is visible.

# %%
from IPython.display import Markdown, display
from scipy import signal
from skimage import restoration

from deconv.models import images


def blur(image, psf):
    """A: (H, W) -> (H, W), true convolution with an odd PSF, zeros outside ('same')."""
    c = psf.shape[0] // 2
    return deconv.conv2d(image[None, None], psf[::-1, ::-1][None, None].copy(), padding=c)[0, 0]


def blur_transposed(image, psf):
    """A^T: (H, W) -> (H, W), the transposed convolution with the same weight: the 'deconvolution' layer."""
    c = psf.shape[0] // 2
    return deconv.conv_transpose2d(image[None, None], psf[::-1, ::-1][None, None].copy(), padding=c)[0, 0]


def psnr(estimate, sharp, border=8):
    """PSNR in dB of an estimate of a [0, 1] image, `border` pixels cropped (the blur's reach)."""
    inner = (slice(border, -border),) * 2
    return 10 * np.log10(1.0 / np.mean((estimate[inner] - sharp[inner]) ** 2))


sharp = images.load("camera", np.float64)[0, 60:156, 200:296]          # (96, 96), the photographer
psf = np.zeros((9, 9))
psf[4, :] = np.arange(9, 0, -1) / 45.0                                  # streak, heavy on the left
noise = 0.005 * np.random.default_rng(7).standard_normal(sharp.shape)
observed = blur(sharp, psf) + noise                                     # y = A x + n, (96, 96)

compare_arrays("A x == scipy.signal.convolve2d(x, psf, 'same')", blur(sharp, psf),
               signal.convolve2d(sharp, psf, mode="same"), rtol=1e-12, atol=1e-15)
z = np.random.default_rng(8).standard_normal(sharp.shape)
lhs, rhs_adj = np.vdot(blur(sharp, psf), z), np.vdot(sharp, blur_transposed(z, psf))
print(f"<A x, z> = {lhs:.12f}\n<x, A^T z> = {rhs_adj:.12f}")
assert abs(lhs - rhs_adj) <= 1e-12 * abs(lhs)
compare_arrays("A^T z == scipy.signal.correlate2d(z, psf, 'same'): the mirrored blur",
               blur_transposed(z, psf), signal.correlate2d(z, psf, mode="same"), rtol=1e-12, atol=1e-13)

# %% [markdown]
# **Wiener filtering** inverts $A$ in the frequency domain. For a *circular* convolution,
# $A = F^{-1} \operatorname{diag}(K) F$ with $K$ the discrete Fourier transform of the PSF centred at
# the origin, and the minimiser of $\|A x - y\|^2 + \lambda \|x\|^2$ is
#
# $$\hat x = F^{-1}\Big[\frac{\overline{K}}{|K|^2 + \lambda}\, F y\Big],$$
#
# which divides by $K$ where the blur kept the frequency ($|K|^2 \gg \lambda$) and damps where it
# destroyed it (there only noise is left; $\lambda$ is the noise-to-signal ratio). $\lambda \to 0$ is
# the plain inverse filter, which amplifies the noise without bound. Our $A$ pads with zeros instead
# of wrapping around, so the filter is exact only away from the border: the PSNRs below crop 8 pixels.
#
# **Richardson-Lucy** (Richardson, 1972; Lucy, 1974) is the maximum-likelihood estimate for Poisson
# noise, iterated multiplicatively from a flat start (so it stays non-negative):
#
# $$x_{t+1} = x_t \odot A^\top\!\Big(\frac{y}{A x_t}\Big), \qquad x_0 = \tfrac12,$$
#
# one blur and **one transposed convolution** per step: the transposed convolution is a part of
# real deconvolution, not a replacement for it. Both are implemented below and checked against
# `skimage.restoration.wiener` (with a flat regulariser, `reg` = the unit impulse) and
# `skimage.restoration.richardson_lucy`, whose step is the same with `scipy.signal.convolve`.

# %%
def wiener(observed, psf, balance):
    """(H, W) -> (H, W): the Wiener (Tikhonov) deconvolution for a circular blur by psf."""
    H, W = observed.shape
    c = psf.shape[0] // 2
    kernel = np.zeros((H, W))
    kernel[:psf.shape[0], :psf.shape[1]] = psf
    kernel = np.roll(kernel, (-c, -c), axis=(0, 1))                     # centre tap at the origin
    K = np.fft.rfft2(kernel)                                            # (H, W // 2 + 1)
    return np.fft.irfft2(np.conj(K) / (np.abs(K) ** 2 + balance) * np.fft.rfft2(observed), s=(H, W))


def richardson_lucy(observed, psf, steps):
    """(H, W) -> (H, W): `steps` multiplicative updates x <- x * A^T(y / A x), from x = 1/2."""
    estimate = np.full(observed.shape, 0.5)
    for _ in range(steps):
        estimate = estimate * blur_transposed(observed / (blur(estimate, psf) + 1e-12), psf)
    return estimate


BALANCE, RL_STEPS = 0.01, 30
restored_wiener = wiener(observed, psf, BALANCE)
restored_rl = richardson_lucy(observed, psf, RL_STEPS)
compare_arrays("wiener == skimage.restoration.wiener (flat regulariser)", restored_wiener,
               restoration.wiener(observed, psf, BALANCE, reg=np.ones((1, 1)), clip=False),
               rtol=1e-10, atol=1e-12)
compare_arrays("richardson_lucy == skimage.restoration.richardson_lucy", restored_rl,
               restoration.richardson_lucy(observed, psf, num_iter=RL_STEPS, clip=False),
               rtol=1e-9, atol=1e-12)
transposed = blur_transposed(observed, psf)                             # the "deconvolution" layer
results = {"blurred y": observed, "transposed conv A^T y": transposed,
           f"Wiener (lambda = {BALANCE})": restored_wiener, f"Richardson-Lucy ({RL_STEPS} steps)": restored_rl}
MISNOMER_PSNR = {name: psnr(image, sharp) for name, image in results.items()}
for name, value in MISNOMER_PSNR.items():
    print(f"{name:28s} PSNR {value:6.2f} dB")
p_blur, p_transposed, p_wiener, p_rl = MISNOMER_PSNR.values()
assert max(p_blur, p_transposed) < min(p_wiener, p_rl)


def detail(image, border=8):
    """Mean squared horizontal difference (the blur's direction), border cropped: high-frequency energy."""
    return np.mean(np.diff(image[border:-border, border:-border], axis=1) ** 2)


DETAIL = {name: detail(image) for name, image in [("sharp x", sharp)] + list(results.items())}
offsets = np.arange(-4, 5)
shift = float(np.sum(psf[4] * offsets))                                 # the PSF's centre of mass
for name, value in DETAIL.items():
    print(f"{name:28s} horizontal detail {value:.2e}")
print(f"centre of mass of the PSF: {shift:+.3f} columns; of the PSF of A^T A: "
      f"{float(np.sum(np.convolve(psf[4], psf[4][::-1]) * np.arange(-8, 9))):+.3f}")
assert DETAIL["transposed conv A^T y"] < DETAIL["blurred y"] < DETAIL["sharp x"]

# %%
fig, axes = plt.subplots(2, 5, figsize=(12, 5.4))
zoom = (slice(24, 56), slice(24, 56))                                   # a 32 x 32 detail, 3x enlarged
panels = [("sharp x", sharp, None)] + [(name, image, MISNOMER_PSNR[name]) for name, image in results.items()]
for col, (name, image, value) in enumerate(panels):
    for row, view in enumerate((image, image[zoom])):
        axes[row, col].imshow(np.clip(view, 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[row, col].set_xticks([])
        axes[row, col].set_yticks([])
    axes[0, col].set_title(name + ("" if value is None else f"\n{value:.2f} dB"), fontsize=9)
    axes[0, col].add_patch(Rectangle((23.5, 23.5), 32, 32, fill=False, ec="C1", lw=1))
axes[1, 0].set_ylabel("zoomed (orange box)", fontsize=9)
fig.suptitle("The same motion blur undone (Wiener, Richardson-Lucy) and blurred again (transposed conv)",
             fontsize=10)
fig.tight_layout()
plt.show()

# %%
display(Markdown(
    f"The transposed convolution keeps **less** detail than the blurred image it started from "
    f"(horizontal detail {DETAIL['transposed conv A^T y']:.2e} against {DETAIL['blurred y']:.2e}; the "
    f"sharp crop has {DETAIL['sharp x']:.2e}): it blurs a second time. Its PSNR, {p_transposed:.2f} dB "
    f"against {p_blur:.2f} dB for $y$, is {'higher' if p_transposed > p_blur else 'lower'} for another "
    f"reason: the one-sided streak moved every edge by its centre of mass, {shift:+.2f} columns, and "
    f"the mirrored streak of $A^\\top$ moves it back (the PSF of $A^\\top A$ is symmetric, centre of "
    f"mass 0). In the Fourier domain $A^\\top$ multiplies by $\\overline{{K}}$ where an inverse would "
    f"multiply by $1/K = \\overline{{K}}/|K|^2$: the same phase, so shifts are undone, but the magnitude "
    f"$|K| \\le 1$ damps each frequency again instead of restoring it. Wiener ({p_wiener:.2f} dB, "
    f"{p_wiener - p_blur:+.2f} dB over $y$) and Richardson-Lucy ({p_rl:.2f} dB, {p_rl - p_blur:+.2f} dB) "
    f"restore the detail the blur flattened. A network's 'deconvolution' layer is $A^\\top$ with "
    f"*learned* weights, the map that carries gradients back through a convolution; whatever inverting "
    f"it does is learned by the network around it. (Zeiler et al. called their 2010 model a "
    f"*deconvolutional network* because it solved for the input of a convolutional sparse code, a real "
    f"inverse problem; the name stuck to the layer.)"))

# %% [markdown]
# **Exercise E3.3: one Richardson-Lucy step.** Given the estimate $x_t$, the observation $y$ and an
# odd, square PSF (all float64, `'same'` size, zeros outside), return
# $x_{t+1} = x_t \odot A^\top(y / A x_t)$, with $A$ the true convolution by the PSF and no $\varepsilon$.
# Use only NumPy (slices and sums; the blur is the one `scipy.signal.convolve2d(..., mode='same')`
# computes). `check_exercise` compares with the step computed by `deconv.conv2d` and
# `deconv.conv_transpose2d`. (Solution: `richardson_lucy_step` in [solutions.py](solutions.py).)

# %%
def richardson_lucy_step(estimate, observed, psf):
    """estimate (H, W), observed (H, W), psf (k, k), k odd -> the next estimate (H, W)."""
    return ...                                     # <- your code here


check_exercise("E3.3", richardson_lucy_step)

# %% [markdown]
# ## What we found
#
# * **Three constructions, one operator.** Zero insertion + padding $d(k-1)-p$ (and
#   $+a$ at the bottom/right) + a flipped, channel-swapped stride-1 correlation; scatter-add of
#   kernel stamps; and $C^\top$ with $C$ built from `conv2d` on one-hot images all equal
#   `deconv.conv_transpose2d` to below $10^{-13}$ in float64 (printed above), on four configurations that together
#   use stride, padding (including $p > d(k-1)$), dilation, `output_padding` and groups (including
#   depthwise) on non-square inputs and kernels. `conv2d_backward`'s input gradient is the same
#   array bit for bit, the adjoint identity holds to $10^{-12}$ relative or better, and central
#   differences of $\langle x, \mathrm{conv}(z)\rangle$ reproduce the transposed convolution to below
#   $10^{-8}$ (pure rounding: the function is linear).
# * **`output_padding`** is the remainder $(i + 2p - d(k-1) - 1) \bmod s$ dropped by the floor of
#   the strided convolution; `deconv.shapes.inverse_output_padding` matches that formula on a grid
#   of configurations, and the rows it adds hold real values (for $a \le p$). FSRCNN's $n\,i - n + 1$ is
#   reproduced: it is the $k=9$, $p=4$, $a=0$ case of the general formula; $a = n - 1$ (or
#   the other listed $(p, a)$) gives exactly $n\,i$ for $n = 2, 3, 4$. We re-derived a size
#   formula, not FSRCNN's super-resolution results.
# * **Sub-pixel equivalence (Shi et al., 2016).** A stride-$r$ transposed conv with an
#   $rk\times rk$ kernel equals $\mathrm{PS}_r$ of one convolution with $r^2 C_{out}$ output
#   channels and the $k\times k$ sub-kernels $V[c_o r^2 + \phi_h r + \phi_w, c, t, t'] =
#   w[c, c_o, r(k-1-t) + \phi_h, r(k-1-t') + \phi_w]$, then a crop of $p$ (top/left) and $p - a$
#   (bottom/right); for $p = rq$, $a = 0$ the crop becomes padding $k-1-q$. Verified for $r = 2, 3$
#   with $C_{in} = 3$, $C_{out} = 2$: equal to below $10^{-13}$ with random float64 data (not bitwise,
#   because the summation order differs) and bitwise with integer-valued data. What the note goes on
#   to argue — that learning in low-resolution space is therefore as expressive and $r^2$ times
#   cheaper than convolving a zero-inserted high-resolution image — follows from the count of
#   multiplications in view (a), but we did not measure speed here. On a photograph, FCN's bilinear
#   $4\times4$ stride-2 kernel became four $2\times2$ convolutions, and away from the one-pixel border
#   it equals `upsample_bilinear2d` to below $10^{-15}$.
# * **"Deconvolution" is a misnomer.** On a motion-blurred crop of `camera`, Wiener filtering
#   and Richardson-Lucy (our NumPy FFT and `conv2d`/`conv_transpose2d` versions, equal to
#   scikit-image's to rounding) restore detail; the transposed convolution with the same kernel
#   is the adjoint (checked: $\langle Ax, z\rangle = \langle x, A^\top z\rangle$) and blurs a
#   second time, undoing only the blur's shift (section 7 prints the numbers).
# * **By hand.** Notebook 1's $3\times 3$ example through the transposed convolution is nine
#   non-overlapping stamps, or the zero-inserted input under the flipped kernel; with padding 1 and
#   output padding 1 it is notebook 2's input gradient, bit for bit.

# %% [markdown]
# ## Problems
#
# 1. In the hand example, which output pixels would change if the stride were 1 instead of 2?
#    Predict the $4 \times 4$ output on paper (now the stamps overlap) and check it.
# 2. How many of the products that view (a) computes for the hand example multiply an inserted
#    or padding zero? Compare with $1 - 1/(s_H s_W)$ and explain the difference (the border).
# 3. Take the convolution of notebook 1's hand example ($p = 1$). Which `output_padding` makes its
#    transposed convolution return $3 \times 3$, and which rows of the result would $a = 0$ lose?
# 4. Split the hand example's $2\times2$ kernel with stride 2 into sub-pixel kernels (Section 6,
#    $r = 2$, $k = 1$): what are the four $1 \times 1$ kernels, and why does the pixel shuffle of
#    four $1\times1$ convolutions give the six-by-six output directly?
# 5. Find $(k, s, p, a)$ with $s = 2$ for which the transposed convolution's output size is exactly
#    $2i$ for every $i$, with $k = 3$ and with $k = 4$; which of them is the DCGAN layer?

# %% [markdown]
# ## References
#
# * V. Dumoulin and F. Visin. *A guide to convolution arithmetic for deep learning.* arXiv:1603.07285, 2016.
# * C. Dong, C. C. Loy and X. Tang. *Accelerating the Super-Resolution Convolutional Neural Network.*
#   European Conference on Computer Vision (ECCV), 2016. arXiv:1608.00367.
# * W. Shi, J. Caballero, F. Huszár, J. Totz, A. P. Aitken, R. Bishop, D. Rueckert and Z. Wang.
#   *Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel Convolutional
#   Neural Network.* IEEE Conference on Computer Vision and Pattern Recognition (CVPR), 2016. arXiv:1609.05158.
# * W. Shi, J. Caballero, L. Theis, F. Huszár, A. Aitken, C. Ledig and Z. Wang.
#   *Is the deconvolution layer the same as a convolutional layer?* arXiv:1609.07009, 2016.
# * N. Wiener. *Extrapolation, Interpolation, and Smoothing of Stationary Time Series.* MIT Press, 1949.
# * W. H. Richardson. *Bayesian-Based Iterative Method of Image Restoration.* Journal of the Optical
#   Society of America 62(1), 1972.
# * L. B. Lucy. *An iterative technique for the rectification of observed distributions.* The
#   Astronomical Journal 79(6), 1974.
# * M. D. Zeiler, D. Krishnan, G. W. Taylor and R. Fergus. *Deconvolutional Networks.* IEEE Conference on
#   Computer Vision and Pattern Recognition (CVPR), 2010.
# * J. Long, E. Shelhamer and T. Darrell. *Fully Convolutional Networks for Semantic Segmentation.*
#   IEEE Conference on Computer Vision and Pattern Recognition (CVPR), 2015. arXiv:1411.4038.
