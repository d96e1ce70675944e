# %% [markdown]
# # 6. Super-resolution with learned upsampling
#
# A low-resolution photograph has lost detail; *single-image super-resolution* guesses it back.
# In this notebook we build, check and train the two classic ways for a network to
# **learn its own upsampling**, and measure them against the interpolations they replace:
#
# * **FSRCNN** (Dong, Loy & Tang, ECCV 2016): the network works on the low-resolution image
#   and ends with a *transposed convolution of stride $r$* ("deconvolution") that paints the
#   high-resolution image;
# * **ESPCN** (Shi et al., CVPR 2016): the network works on the low-resolution image and ends
#   with an ordinary convolution to $C r^2$ channels, which a *pixel shuffle* rearranges into an
#   image $r$ times larger;
# * **SRCNN** (Dong et al., ECCV 2014), their predecessor, which first upsamples with bicubic
#   interpolation and then runs every layer at high resolution, is the background and the cost
#   reference.
#
# The setup is the papers' (and `deconv train superres`'s): low-resolution inputs made by
# antialiased **bicubic downscaling**, four **held-out photographs measured whole** (astronaut,
# coffee, chelsea, camera), **PSNR on the luminance** with a border of $r$ pixels cropped, and
# nearest, bilinear and bicubic upsampling as baselines. You will learn: how the inputs are made
# (the bicubic kernel stretched by $r$, built by hand and checked); the exact index arithmetic of
# a stride-$r$ transposed convolution and of the pixel shuffle, each implemented naively and
# compared with deconv's kernels; the identity **transposed conv $=$ conv $+$ pixel shuffle**
# (Shi et al., 2016, "Is the deconvolution layer the same as a convolutional layer?"), checked to
# rounding error; how to count multiply-adds per output pixel, and why working in low-resolution
# space divides the cost of every layer before the upsampler by $r^2$; why the models are residual
# on an interpolation with a zero-initialised last layer; and finally a PSNR table at $\times 2$
# and $\times 4$ for the interpolations and a narrow FSRCNN with each upsampler, with zoomed crops
# and error maps to look at.
#
# Everything is small enough for a CPU and the notebook's 90-second budget: 768 training patches,
# six epochs, a 16-channel FSRCNN. The papers train on thousands of images for hours or days, and
# `deconv train superres` for minutes; "What we found" compares honestly. The letters are those of
# [NOTATION.md](NOTATION.md); here the scale factor $r$ is the upsampler's stride $s$.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

import deconv
from deconv import data, metrics, models, nn, optim
from deconv.gradcheck import compare, gradcheck
from deconv.models import images
from deconv.train import Trainer

from exercise import check_exercise          # notebooks/exercise.py: marks the fill-in cells

NOTEBOOK_START = time.perf_counter()
np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## 1. The task: undo a bicubic downscaling
#
# **Dimension letters.** $N$ images (patches), $C = 1$ channel (the luminance $Y$; the papers
# train and measure on it), a high-resolution (HR) size $H \times W$, a scale factor
# $r \in \{2, 4\}$ and the low-resolution (LR) size $h \times w = H/r \times W/r$. Arrays are NCHW:
# the HR target $y$ has shape $(N, 1, H, W)$, the LR input $x$ has shape $(N, 1, h, w)$. LR pixels
# are $(i, j)$, HR pixels $(u, v)$.
#
# **The degradation.** `deconv.data.superres_corpus` takes every photograph and texture of the
# image corpus (`deconv.models.images`: pictures shipped inside scikit-image, PyWavelets,
# matplotlib and scikit-learn), turns it into its luminance
# $Y = \tfrac{16}{255} + (65.481 R + 128.553 G + 24.966 B)/255$ (ITU-R BT.601), cuts it to a
# multiple of $r$ and downscales it **whole** with `deconv.interpolate(mode='bicubic',
# antialias=True)` (`data.downscale`), as MATLAB's `imresize` does for the papers. Along one axis
# that is a matrix $D_r$ of shape $(h, H)$: LR pixel $i$ has its centre at HR coordinate
# $(i + \tfrac12) r$, and HR pixel $u$ (centre $u + \tfrac12$) gets the weight of Keys' cubic
# kernel ($a = -\tfrac12$) **stretched by $r$**, normalised to sum to 1:
#
# $$D_r[i, u] \propto \mathrm{cubic}\Big(\frac{u + \tfrac12 - (i + \tfrac12) r}{r}\Big), \qquad
# \mathrm{cubic}(t) = \begin{cases} \tfrac32|t|^3 - \tfrac52|t|^2 + 1 & |t| \le 1\\
# -\tfrac12|t|^3 + \tfrac52|t|^2 - 4|t| + 2 & 1 < |t| < 2 \\ 0 & \text{else.}\end{cases}$$
#
# Stretching is the antialiasing: the kernel spans $4r$ HR pixels, a low-pass filter matched to the
# new sampling rate (without it, bicubic downscaling would read 4 HR pixels and alias). In 2-D,
# $x = D_r\, y\, D_r^\top$ (separable). We build $D_r$ and check it against `data.downscale`, then
# check that the validation inputs are exactly the downscaled luminance of the held-out photographs.
# Training pairs are 768 random LR windows ($16\times16$ at $\times 2$, $12\times12$ at
# $\times 4$) of the *other* images with the HR windows above them, each turned by one of the eight
# symmetries of the square; no validation image is ever cut into patches.

# %%
def cubic(t, a=-0.5):
    """Keys' cubic convolution kernel (a = -1/2), support |t| < 2."""
    t = np.abs(t)
    return np.where(t <= 1, ((a + 2) * t - (a + 3)) * t * t + 1,
                    np.where(t < 2, ((a * t - 5 * a) * t + 8 * a) * t - 4 * a, 0.0))


def downscale_matrix(n, r):
    """D_r, shape (n / r, n): row i holds the weights of the cubic kernel stretched by r."""
    centres = (np.arange(n // r) + 0.5) * r                          # LR centres in HR units, (n/r,)
    weights = cubic((np.arange(n)[None, :] + 0.5 - centres[:, None]) / r)    # (n/r, n)
    return weights / weights.sum(axis=1, keepdims=True)


SCALES = (2, 4)
PATCHES, PATCH = 768, {2: 16, 4: 12}                                 # training pairs, LR patch side
sets = {r: data.superres_corpus(scale=r, count=PATCHES, patch_size=PATCH[r]) for r in SCALES}
test = np.random.default_rng(0).random((1, 1, 24, 36))               # (N, C, H, W), float64
for r in SCALES:
    ds = sets[r]
    print(f"x{r}: train x {ds.train.x.shape} -> y {ds.train.y.shape}; validation (whole): "
          + ", ".join(f"{n} {lo.shape[1:]} -> {hi.shape[1:]}" for n, lo, hi in zip(ds.names, ds.val.x, ds.val.y)))
    compare(f"x{r}: D_r y D_r^T == data.downscale (float64)",
            downscale_matrix(24, r) @ test[0, 0] @ downscale_matrix(36, r).T, data.downscale(test, r)[0, 0],
            rtol=1e-12, atol=1e-15)
    for name, low, high in zip(ds.names, ds.val.x, ds.val.y):
        y_hr = images.modcrop(images.luminance(images.load(name, np.float64)), r)    # (1, H, W)
        assert np.array_equal(high, y_hr.astype(np.float32))
        compare(f"x{r} {name}: input == D_r Y D_r^T (float32 rounding)", low[0],
                downscale_matrix(y_hr.shape[1], r) @ y_hr[0] @ downscale_matrix(y_hr.shape[2], r).T,
                rtol=1e-5, atol=1e-6)

# %% [markdown]
# **The metric.** Peak signal-to-noise ratio of one image's luminance, values in $[0, 1]$ (peak 1),
# with a border of $b = r$ pixels cropped on every side (the pixels whose filters reached past
# the image), as the papers' MATLAB code (`shave`) does:
#
# $$\mathrm{PSNR}(\hat y, y) = 10\log_{10}\frac{1}{\mathrm{MSE}}, \qquad
# \mathrm{MSE} = \frac{1}{(H-2b)(W-2b)}\sum_{u=b}^{H-b-1}\sum_{v=b}^{W-b-1}\big(\hat y[u,v]-y[u,v]\big)^2 ,$$
#
# one per validation image, then the **mean over the four images** (`deconv.models.evaluate`, which
# clips predictions to $[0, 1]$ first, as any displayed image would be). Every $+1$ dB is a
# $10^{-0.1} = 0.794\times$ smaller MSE.
#
# **Exercise E6.3: luminance PSNR with a border.** Write `psnr_y_cropped(prediction, target,
# border)` for RGB images `(3, H, W)` in $[0, 1]$: the BT.601 luminance above, `border` pixels
# cropped on each side, then PSNR in dB. `check_exercise` compares with `deconv.metrics.psnr_y`.
# (Solution: `psnr_y_cropped` in [solutions.py](solutions.py).)

# %%
def psnr_y_cropped(prediction, target, border):
    """prediction, target (3, H, W) in [0, 1], border b -> PSNR (dB) of Y[b:H-b, b:W-b]."""
    return ...                                     # <- your code here


check_exercise("E6.3", psnr_y_cropped)

# %%
rng = np.random.default_rng(0)
a = rng.random((1, 40, 30))
b = np.clip(a + 0.05 * rng.standard_normal(a.shape), 0, 1)
_ = compare("metrics.psnr_y(border=2) == 10 log10(1 / MSE) on the cropped image",
            np.array(metrics.psnr_y(b, a, border=2)),
            np.array(10 * np.log10(1 / np.mean((b - a)[:, 2:-2, 2:-2] ** 2))), rtol=1e-12, atol=0)
# %% [markdown]
# ## 2. The baselines: nearest, bilinear and bicubic upsampling
#
# **Nearest** copies each LR pixel into its $r\times r$ block:
# $\hat y[\,ri+a,\, rj+b\,] = x[i, j]$ for $0 \le a, b < r$.
#
# **Bilinear** (`align_corners=False`, PyTorch's and deconv's default) treats pixels as
# squares and interpolates between pixel *centres*. Along one axis, output index $o$ has
# centre $o + \tfrac12$ in HR units, i.e. $(o+\tfrac12)/r$ in LR units, whose LR pixel-index
# coordinate is
#
# $$s(o) = \max\!\Big(\frac{o + \frac12}{r} - \frac12,\; 0\Big), \qquad
# i_0 = \lfloor s \rfloor,\quad i_1 = \min(i_0 + 1,\; h - 1),\quad \lambda = s - i_0,$$
#
# $$\hat y[o] = (1 - \lambda)\, x[i_0] + \lambda\, x[i_1].$$
#
# (The $\max(\cdot, 0)$ clamps the first half pixel; the $\min$ repeats the last pixel.) In 2-D
# the same weights are applied along $H$, then along $W$ (the interpolation is separable). At
# $r = 2$ the interior weights are the familiar $\tfrac34, \tfrac14$.

# %%
def nearest_naive(x, r):
    """(N, C, h, w) -> (N, C, rh, rw): repeat every pixel r times along each axis."""
    return np.repeat(np.repeat(x, r, axis=2), r, axis=3)


def bilinear_weights(n_in, r):
    """Index pairs and weights of 1-D bilinear upsampling (align_corners=False)."""
    o = np.arange(n_in * r)
    s = np.maximum((o + 0.5) / r - 0.5, 0.0)                 # source coordinate, (r n_in,)
    i0 = np.floor(s).astype(int)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = s - i0
    return i0, i1, lam


def bilinear_naive(x, r):
    """(N, C, h, w) -> (N, C, rh, rw), separable: first along H, then along W."""
    i0, i1, lam = bilinear_weights(x.shape[2], r)
    t = (1 - lam)[:, None] * x[:, :, i0, :] + lam[:, None] * x[:, :, i1, :]    # (N, C, rh, w)
    j0, j1, mu = bilinear_weights(x.shape[3], r)
    return (1 - mu) * t[:, :, :, j0] + mu * t[:, :, :, j1]                      # (N, C, rh, rw)


print("x2 weights of the first six outputs:", bilinear_weights(6, 2)[2][:6])
x64 = np.random.default_rng(1).random((2, 3, 8, 8))          # (N, C, h, w), float64
for r in SCALES:
    compare(f"x{r}: nearest, naive vs deconv.upsample_nearest2d",
            deconv.upsample_nearest2d(x64, scale_factor=r), nearest_naive(x64, r), rtol=0, atol=0)
    compare(f"x{r}: bilinear, naive vs deconv.upsample_bilinear2d",
            deconv.upsample_bilinear2d(x64, scale_factor=r), bilinear_naive(x64, r),
            rtol=1e-12, atol=1e-15)

# %% [markdown]
# **Bicubic** upsampling (`deconv.interpolate(mode='bicubic')`, `align_corners=False`, *not*
# stretched: upsampling needs no antialiasing) weighs the $4\times4$ LR pixels nearest to the
# source coordinate $s(o)$ above with $\mathrm{cubic}(s - i)$, repeating the border pixels. Now the
# three baselines on the whole validation images (`deconv.models.baseline`), the bicubic one
# re-measured with our own PSNR:

# %%
baselines = {r: models.baseline("superres", sets[r]) for r in SCALES}
for r in SCALES:
    val = sets[r].val
    for name in ("nearest", "bilinear", "bicubic"):
        print(f"x{r} {name:8s} mean PSNR {baselines[r][name]['psnr']:6.3f} dB;  per image "
              + ", ".join(f"{n} {p:.2f}" for n, p in zip(sets[r].names, baselines[r][name]["psnr_each"])))
    ours = []
    for low, high in zip(val.x, val.y):
        up = np.clip(deconv.interpolate(low[None].astype(np.float64), scale_factor=r, mode="bicubic")[0], 0, 1)
        ours.append(10 * np.log10(1 / np.mean((up - high)[:, r:-r, r:-r] ** 2)))
    compare(f"x{r}: bicubic PSNR, baseline() vs our crop and formula", np.array(baselines[r]["bicubic"]["psnr"]),
            np.array(np.mean(ours)), rtol=1e-5, atol=0)
    assert baselines[r]["bicubic"]["psnr"] > baselines[r]["bilinear"]["psnr"] > baselines[r]["nearest"]["psnr"]
BICUBIC = {r: baselines[r]["bicubic"]["psnr"] for r in SCALES}
display(Markdown(
    "On bicubic-downscaled inputs the three interpolations rank as expected at both scales: "
    + "; ".join(f"$\\times{r}$: nearest {baselines[r]['nearest']['psnr']:.2f} dB, bilinear "
                f"{baselines[r]['bilinear']['psnr']:.2f} dB, **bicubic {BICUBIC[r]:.2f} dB**" for r in SCALES)
    + ". Bicubic is the baseline to beat, as in the papers (the earlier version of this notebook "
      "box-averaged its inputs, which made nearest upsampling a strong baseline; the bicubic kernel's "
      "negative lobes make the inputs sharper, and a sharper interpolation then wins)."))
# %% [markdown]
# ## 3. Three ways to put a network around upsampling
#
# **SRCNN** (Dong et al., 2014) upsamples first (bicubic) and then runs three convolutions at
# high resolution: $9\times9$ to 64 channels, $1\times1$ to 32, $5\times5$ to the image. Every
# layer pays for $H \times W$ positions although the information came from $h \times w$.
#
# **FSRCNN** (Dong, Loy & Tang, 2016) moves the network to low resolution: feature extraction
# ($5\times5$, $d = 56$ channels), *shrinking* ($1\times1$ to $s = 12$), $m = 4$ mapping
# layers ($3\times3$, $s \to s$), *expanding* ($1\times1$ back to $d$), and a last
# **transposed convolution** ($9\times9$, stride $r$) straight to the HR image.
#
# **ESPCN** (Shi et al., 2016) also works at low resolution ($5\times5$ to 64, $3\times3$ to
# 32) and ends with a $3\times3$ **convolution to $C r^2$ channels** followed by the
# **pixel shuffle** ("periodic shuffling") that turns the $r^2$ channels of each LR pixel
# into an $r \times r$ block of HR pixels.
#
# Sections 3-6 take apart `deconv.models.superres`, a small RGB member of this family (its
# $k = 2r$ transposed conv makes the index arithmetic simplest); section 7 trains the luminance
# FSRCNN of `deconv train superres` at a reduced width.
#
# `deconv.models.superres` is a small member of this family. With $C_f = 32$ feature
# channels and $c = 16$ mapping channels (`channels=(32, 16)`), its **body** is
#
# | layer | operation | output shape |
# |---|---|---|
# | input | | $(N, 3, h, w)$ |
# | 0, 1 | Conv2d$(3, C_f, 5, \text{pad } 2)$, ReLU — feature extraction | $(N, C_f, h, w)$ |
# | 2, 3 | Conv2d$(C_f, c, 1)$, ReLU — shrinking | $(N, c, h, w)$ |
# | 4, 5 | Conv2d$(c, c, 3, \text{pad } 1)$, ReLU — one mapping layer | $(N, c, h, w)$ |
# | 6 (`"deconv"`) | ConvTranspose2d$(c, 3, 2r, \text{stride } r, \text{pad } r/2)$ | $(N, 3, rh, rw)$ |
# | 6, 7 (`"pixelshuffle"`) | Conv2d$(c, 3r^2, 3, \text{pad } 1)$, PixelShuffle$(r)$ | $(N, 3r^2, h, w) \to (N, 3, rh, rw)$ |
#
# (FSRCNN-style without the expanding layer and with one mapping layer; ESPCN-style with
# FSRCNN's shrinking; ReLU instead of PReLU / tanh.) By default (`residual=True`) the network
# around the body is $\hat y = \mathrm{head}\big(\mathrm{concat}(\mathrm{bilinear}_r(x),
# \mathrm{body}(x))\big)$ with a $1\times1$ `head` from 6 to 3 channels; section 6 explains
# why. Let us run one LR patch through each body layer by layer and print the shapes:

# %%
def describe(model, x):
    """Print each top-level layer of a Sequential body with its output shape and parameters."""
    for i, layer in enumerate(model):
        x = layer(x)
        n = sum(p.size for p in layer.parameters())
        print(f"  {i}  {layer!r:62.62s} -> {str(x.shape):18s} {n:6d} params")
    return x


for r in SCALES:
    for kind in ("deconv", "pixelshuffle"):
        net = models.superres(scale=r, upsample=kind, rng=0)
        body = net[0][1]                                     # Concat(Upsample, body), head
        print(f"x{r} {kind}: body")
        out = describe(body, np.zeros((1, 3, 32 // r, 32 // r), np.float32))
        assert out.shape == (1, 3, 32, 32)

# %% [markdown]
# ## 4. The two learned upsamplers, derived and checked
#
# ### 4.1 The transposed convolution with stride $r$
#
# A transposed convolution with weight $W$ of shape $(C_{in}, C_{out}, k, k)$ (PyTorch's
# layout), stride $r$ and padding $p$ **scatters**: each input pixel $(i, j)$ paints a
# $k\times k$ patch, weighted by its $C_{in}$ values, at offset $(ri - p,\, rj - p)$:
#
# $$y[n, o, u, v] \;=\; b[o] + \sum_{c, i, j, \alpha, \beta \,:\; u = ri - p + \alpha,\;
# v = rj - p + \beta} x[n, c, i, j]\; W[c, o, \alpha, \beta].$$
#
# The output length is $(h - 1)r - 2p + k$. FSRCNN-style upsampling uses $k = 2r$ and
# $p = r/2$ (for even $r$), which gives exactly $(h-1)r - r + 2r = rh$. Why $k = 2r$ and not
# $k = r$? With $k = r$ the patches tile without overlap, so every HR pixel comes from a
# single LR pixel: a learned *nearest* upsampling, blocky by construction. With $k = 2r$
# every HR pixel receives exactly $k/r = 2$ contributions per axis ($2\times2$ LR pixels),
# and because $k$ is a multiple of $r$ that count is the *same* for every output pixel, so the
# layer has no built-in checkerboard (Odena, Dumoulin & Olah, 2016: uneven overlap when $k$ is
# not divisible by the stride). The formula as a plain loop nest, one loop per letter, is
# `deconv.kernels.naive.conv_transpose2d_forward` (printed in notebooks 02 and 05). Below we
# write it the way the formula reads as *patches*: one `einsum` per LR pixel paints its
# $(C_{out}, k, k)$ patch onto an uncropped canvas, then $p$ is cropped from each side. We check
# that patch form against the naive loop nest and against deconv's kernel.

# %%
from deconv.kernels import naive


def conv_transpose2d_patches(x, w, b, r, p):
    """x (N, C_in, h, w), w (C_in, C_out, k, k), b (C_out,) -> (N, C_out, (h-1)r - 2p + k, ...)."""
    N, C_in, h, wd = x.shape
    _, C_out, k, _ = w.shape
    full = np.zeros((N, C_out, (h - 1) * r + k, (wd - 1) * r + k))    # before cropping p
    for i in range(h):
        for j in range(wd):
            # (N, C_in) x (C_in, C_out, k, k) -> (N, C_out, k, k): LR pixel (i, j) paints its patch
            full[:, :, i * r:i * r + k, j * r:j * r + k] += np.einsum("nc,cokl->nokl", x[:, :, i, j], w)
    H_out, W_out = (h - 1) * r - 2 * p + k, (wd - 1) * r - 2 * p + k
    return full[:, :, p:p + H_out, p:p + W_out] + b[None, :, None, None]


rng = np.random.default_rng(2)
for r in SCALES:
    k, p = 2 * r, r // 2
    x = rng.standard_normal((2, 5, 6, 7))                    # (N, C_in, h, w)
    w = rng.standard_normal((5, 3, k, k))                    # (C_in, C_out, 2r, 2r)
    b = rng.standard_normal(3)
    y = deconv.conv_transpose2d(x, w, b, stride=r, padding=p)
    assert y.shape == (2, 3, r * 6, r * 7)                   # (N, C_out, rh, rw)
    patches = conv_transpose2d_patches(x, w, b, r, p)
    compare(f"x{r}: transposed conv, einsum patches vs deconv", y, patches, rtol=1e-12, atol=1e-12)
    loops = naive.conv_transpose2d_forward(x, w, b, r, r, p, p, 1, 1, 1, r * 6, r * 7)  # (N, C_out, rh, rw)
    compare(f"x{r}: transposed conv, einsum patches vs naive loop nest", patches, loops,
            rtol=1e-12, atol=1e-12)
    # overlap: with x = 1 and w = 1 every interior output pixel counts its contributions
    ones = deconv.conv_transpose2d(np.ones((1, 1, 6, 6)), np.ones((1, 1, k, k)),
                                   stride=r, padding=p)                # (1, 1, 6r, 6r)
    assert np.all(ones[0, 0, r:-r, r:-r] == (k // r) ** 2), "uneven overlap"
print("every interior output pixel receives (k/r)^2 = 4 LR contributions, at r = 2 and r = 4")

# %% [markdown]
# ### 4.2 The pixel shuffle
#
# The pixel shuffle $\mathrm{PS}_r$ maps $(N, C r^2, h, w) \to (N, C, rh, rw)$ by
#
# $$\mathrm{PS}_r(z)[n, c,\; ri + \phi,\; rj + \psi] \;=\; z[n,\; c r^2 + \phi r + \psi,\; i,\; j],
# \qquad 0 \le \phi, \psi < r:$$
#
# channel $c r^2 + \phi r + \psi$ of LR pixel $(i, j)$ becomes the HR pixel at *phase*
# $(\phi, \psi)$ of block $(i, j)$. It moves numbers and computes nothing, so it is a
# permutation $P$ of the entries; its gradient is $P^\top = P^{-1}$, the *pixel unshuffle*
# (`pixel_shuffle_backward`). We check the definition with a loop, and the adjoint identity
# $\langle P z, g\rangle = \langle z, P^\top g\rangle$, which is what makes the backward
# correct.

# %%
def pixel_shuffle_naive(z, r):
    """(N, C r^2, h, w) -> (N, C, rh, rw), one phase at a time."""
    N, Crr, h, w = z.shape
    C = Crr // (r * r)
    y = np.empty((N, C, h * r, w * r))
    for c in range(C):
        for sy in range(r):
            for sx in range(r):
                y[:, c, sy::r, sx::r] = z[:, c * r * r + sy * r + sx]     # (N, h, w) -> phase (sy, sx)
    return y


rng = np.random.default_rng(3)
for r in SCALES:
    z = rng.standard_normal((2, 3 * r * r, 5, 6))            # (N, C r^2, h, w)
    g = rng.standard_normal((2, 3, 5 * r, 6 * r))            # (N, C, rh, rw): an upstream gradient
    compare(f"x{r}: pixel shuffle, naive vs deconv", deconv.pixel_shuffle(z, r),
            pixel_shuffle_naive(z, r), rtol=0, atol=0)
    compare(f"x{r}: <PS z, g> == <z, PS_backward g>",
            np.array(np.vdot(deconv.pixel_shuffle(z, r), g)),
            np.array(np.vdot(z, deconv.pixel_shuffle_backward(g, r))), rtol=1e-12, atol=0)

# %% [markdown]
# **Exercise E6.1: the pixel shuffle as a reshape and a transpose.** The loop above moves one
# phase at a time. Write it with one `reshape` that splits the channel axis into $(C, r, r)$, one
# `transpose` that puts each phase axis after the LR axis it refines, and one `reshape` to
# $(N, C, rh, rw)$ (no loop, no copy by hand). `check_exercise` compares with
# `deconv.pixel_shuffle`. (Solution: `pixel_shuffle_by_reshape` in [solutions.py](solutions.py).)

# %%
def pixel_shuffle_by_reshape(z, r):
    """z (N, C r^2, h, w) -> (N, C, r h, r w)."""
    return ...                                     # <- your code here


check_exercise("E6.1", pixel_shuffle_by_reshape)

# %% [markdown]
# ### 4.3 The deconvolution *is* a sub-pixel convolution
#
# Shi et al. (2016, "Is the deconvolution layer the same as a convolutional layer?") showed
# that the two upsamplers are the same kind of layer. Notebook 3 derives this in general;
# here we need it in the exact form our model uses ($k = 2r$, $p = r/2$). Write an output
# index as $u = rq + s$ with block $q$ and phase $s \in [0, r)$, and an input index as
# $i = q + d$. The transposed
# conv links them through tap $\alpha = u + p - ri$, i.e.
#
# $$\alpha \;=\; s + p - d\,r ,$$
#
# which is a valid tap ($0 \le \alpha < 2r$) only for $d \in \{-1, 0, 1\}$ and, with
# $p = r/2$: $d = 0$ always; $d = 1$ iff $s \ge r/2$; $d = -1$ iff $s < r/2$. So the output at
# phase $s$ of block $q$ is a **$3 \times 3$ convolution** of $x$ around $(q_y, q_x)$
# (padding 1), with a weight that depends on the phase:
#
# $$V[\,o r^2 + \phi r + \psi,\; c,\; d_y + 1,\; d_x + 1\,] \;=\;
# W[\,c,\; o,\; \phi + p - d_y r,\; \psi + p - d_x r\,] \quad(\text{0 if the tap is out of range}),$$
#
# followed by the pixel shuffle, which sends channel $o r^2 + \phi r + \psi$ to phase
# $(\phi, \psi)$. The bias $b[o]$ is repeated for the $r^2$ phases. Per axis, 2 of the 3
# offsets are valid for every phase, so $V$ has $4/9$ of its taps non-zero, and each of the
# $(2r)^2$ taps of $W$ appears exactly once: $V$ *is* $W$, rearranged.

# %%
def subpixel_weight(w, r):
    """Transposed-conv weight (C_in, C_out, 2r, 2r) -> conv weight (C_out r^2, C_in, 3, 3)."""
    C_in, C_out, k, _ = w.shape
    p = r // 2
    v = np.zeros((C_out * r * r, C_in, 3, 3))
    for o in range(C_out):
        for sy in range(r):
            for sx in range(r):
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        ky, kx = sy + p - dy * r, sx + p - dx * r            # the tap used
                        if 0 <= ky < k and 0 <= kx < k:
                            v[o * r * r + sy * r + sx, :, dy + 1, dx + 1] = w[:, o, ky, kx]
    return v


rng = np.random.default_rng(4)
for r in SCALES:
    x = rng.standard_normal((2, 16, 8, 8))                   # (N, c, h, w)
    w = rng.standard_normal((16, 3, 2 * r, 2 * r))           # (c, 3, 2r, 2r)
    b = rng.standard_normal(3)
    v = subpixel_weight(w, r)                                # (3 r^2, c, 3, 3)
    deconv_out = deconv.conv_transpose2d(x, w, b, stride=r, padding=r // 2)        # (N, 3, rh, rw)
    subpixel_out = deconv.pixel_shuffle(deconv.conv2d(x, v, np.repeat(b, r * r), padding=1), r)
    compare(f"x{r}: ConvTranspose(2r, stride r, pad r/2) == PixelShuffle(Conv 3x3)",
            subpixel_out, deconv_out, rtol=1e-12, atol=1e-12)
    assert np.count_nonzero(v) == w.size == v.size * 4 // 9   # every tap once, 4/9 of V
    assert np.array_equal(np.sort(v[v != 0]), np.sort(w.ravel()))
print("the sub-pixel weight holds every deconvolution tap exactly once; 4/9 of its taps are used")

# %% [markdown]
# The figure shows where the 16 taps of a $4\times4$ deconvolution kernel ($r = 2$) land in
# the four $3\times3$ phase kernels. Each phase looks at the $2 \times 2$ LR pixels nearest to
# it, *towards its side of the block*, which is why the deconvolution's reach is $2\times2$
# LR pixels per output pixel while ESPCN's $3\times3$ conv sees $3\times3$.

# %%
r = 2
taps = np.arange(16.0).reshape(1, 1, 4, 4)                   # label tap (ky, kx) by 4 ky + kx
v = subpixel_weight(taps + 1, r)[:, 0]                       # (r^2, 3, 3); +1 so tap 0 is non-zero
fig, axes = plt.subplots(1, 5, figsize=(10.5, 2.5))
axes[0].imshow(taps[0, 0], cmap="viridis", vmin=0, vmax=15)
axes[0].set_title("deconv kernel W\n(4x4 taps, r = 2)", fontsize=9)
for (ky, kx), t in np.ndenumerate(taps[0, 0]):
    axes[0].text(kx, ky, int(t), ha="center", va="center", color="w", fontsize=9)
for phase in range(4):
    ax = axes[phase + 1]
    used = np.ma.masked_equal(v[phase], 0) - 1
    ax.imshow(used, cmap="viridis", vmin=0, vmax=15)
    ax.set_facecolor("0.92")
    for (dy, dx), t in np.ndenumerate(v[phase]):
        ax.text(dx, dy, int(t - 1) if t else "·", ha="center", va="center",
                color="w" if t else "0.4", fontsize=9)
    ax.set_title(f"phase (φ, ψ) = {divmod(phase, 2)}\n3x3 over LR offsets", fontsize=9)
for ax in axes:
    ax.set_xticks(range(ax.images[0].get_array().shape[1]))
    ax.set_yticks(range(ax.images[0].get_array().shape[0]))
for ax in axes[1:]:
    ax.set_xticklabels(["-1", "0", "+1"])
    ax.set_yticklabels(["-1", "0", "+1"])
    ax.set_xlabel("d_x (LR column offset)", fontsize=8)
axes[1].set_ylabel("d_y (LR row offset)", fontsize=8)
axes[0].set_xlabel("kx", fontsize=8)
axes[0].set_ylabel("ky", fontsize=8)
fig.suptitle("Transposed conv (k = 2r, stride r, pad r/2) = 3x3 conv to r² phases + pixel "
             "shuffle: which tap feeds which phase", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# **Exercise E6.2: FSRCNN's own layer as a sub-pixel convolution.** The model trained in section 7
# uses FSRCNN's upsampler, a $9\times9$ transposed convolution with stride $r$, padding $p = 4$ and
# output padding $a = r - 1$, not the $k = 2r$ layer above. Redo the derivation for it: with
# $u = r q + \phi$, the tap is $\alpha = \phi + 4 - \delta r$ for LR offset $\delta = i - q$, valid for
# $0 \le \alpha \le 8$, so at $r = 2$ the offsets run over $\delta \in \{-2, \dots, 2\}$ (a $5\times5$
# convolution, padding 2) and at $r = 4$ over $\{-1, 0, 1\}$ ($3\times3$, padding 1): in general
# $K = 2\lfloor 4/r \rfloor + 1$. Write `fsrcnn_subpixel_weight(w, r)` for $r \in \{2, 4\}$: from
# $w$ of shape $(C_{in}, C_{out}, 9, 9)$ return $V$ of shape $(C_{out} r^2, C_{in}, K, K)$ with
# $\mathrm{PS}_r(\mathrm{conv}(x, V, \text{padding } \lfloor 4/r\rfloor)) =
# \mathrm{conv\_transpose}(x, w, \text{stride } r, \text{padding } 4, \text{output padding } r-1)$.
# `check_exercise` compares with a $V$ read off `deconv.conv_transpose2d` by feeding it one-hot
# LR images (each LR pixel's stamp, cut into phases). (Solution: `fsrcnn_subpixel_weight` in
# [solutions.py](solutions.py).)

# %%
def fsrcnn_subpixel_weight(w, r):
    """w (C_in, C_out, 9, 9), r in {2, 4} -> V (C_out r^2, C_in, K, K), K = 2 (4 // r) + 1."""
    return ...                                     # <- your code here


check_exercise("E6.2", fsrcnn_subpixel_weight)

# %% [markdown]
# So the FSRCNN-style layer is an ESPCN-style layer whose $3\times3$ kernels are constrained
# to a phase-dependent $2\times2$ support. Our two models therefore differ in the *reach* of
# the last layer and in its parameter count ($c \cdot 3 \cdot (2r)^2$ against
# $c \cdot 3r^2 \cdot 9$ weights), not in kind.
#
# ## 5. Cost per output pixel: why work in low-resolution space
#
# Count multiply-adds (MACs). A stride-1 convolution from $C_{in}$ to $C_{out}$ channels with
# a $k\times k$ kernel, producing an $h' \times w'$ output, costs $h' w' \cdot C_{out} C_{in}
# k^2$ (zero padding included, as an im2col kernel computes it). A transposed convolution
# scatters every input pixel through every tap: $h w \cdot C_{in} C_{out} k^2$. Per HR output
# pixel (divide by $H W = r^2 h w$), with $C_f = 32$, $c = 16$:
#
# * the LR body costs $B = 25 \cdot 3\, C_f + C_f c + 9 c^2$ MACs per LR pixel, i.e.
#   $B / r^2$ per output pixel;
# * the FSRCNN-style deconvolution: $c \cdot 3 \cdot (2r)^2 / r^2 = 12\,c$;
# * the ESPCN-style conv to $3r^2$ channels: $9 c \cdot 3 r^2 / r^2 = 27\,c$;
# * the residual head ($1\times1$, 6 to 3 channels): $18$;
# * an SRCNN-style network (upsample first, then the *same* body and a $3\times3$ conv
#   $c \to 3$, all at HR): $B + 27c$ per output pixel, whatever $r$.
#
# Both learned upsamplers cost a constant per output pixel, while the body's cost falls as
# $1/r^2$: that is the "efficient" in ESPCN and a large part of FSRCNN's speed-up. (The two
# interpolations cost a few operations per pixel and are not counted.) The function below
# counts MACs by running the model and reading each conv layer's shapes; we assert it against
# the formulas.

# %%
def conv_macs(module, x):
    """(output, MACs) of every Conv2d / ConvTranspose2d in a model, for the input x."""
    if isinstance(module, nn.Sequential):
        total = 0
        for layer in module:
            x, m = conv_macs(layer, x)
            total += m
        return x, total
    if isinstance(module, nn.Concat):
        outs = [conv_macs(branch, x) for branch in module]
        return np.concatenate([o for o, _ in outs], axis=1), sum(m for _, m in outs)
    y = module(x)
    if isinstance(module, nn.ConvTranspose2d):      # every input pixel through every tap
        kh, kw = module.kernel_size
        return y, x.shape[2] * x.shape[3] * module.in_channels * module.out_channels * kh * kw
    if isinstance(module, nn.Conv2d):               # every output pixel through every tap
        kh, kw = module.kernel_size
        return y, y.shape[2] * y.shape[3] * module.out_channels * module.in_channels * kh * kw
    return y, 0


Cf, c = 32, 16
B = 25 * 3 * Cf + Cf * c + 9 * c * c                          # MACs of the body per LR pixel
H = W = 32
cost = {}
for r in SCALES:
    x = np.zeros((1, 3, H // r, W // r), np.float32)
    formula = {"deconv": B / r**2 + 12 * c + 18, "pixelshuffle": B / r**2 + 27 * c + 18}
    for kind in ("deconv", "pixelshuffle"):
        _, macs = conv_macs(models.superres(scale=r, upsample=kind, rng=0), x)
        cost[r, kind] = macs / (H * W)
        compare(f"x{r} {kind:12s} MACs per output pixel = {cost[r, kind]:7.1f}",
                np.array(cost[r, kind]), np.array(formula[kind]), rtol=1e-12, atol=0)
    # SRCNN-style: bilinear first, then the same layers at HR (scale 1 = a 3x3 conv c -> 3)
    pre = nn.Sequential(nn.Upsample(scale_factor=r, mode="bilinear"),
                        models.superres(scale=1, upsample="pixelshuffle", residual=False, rng=0))
    _, macs = conv_macs(pre, x)
    cost[r, "pre-upsampling"] = macs / (H * W)
    compare(f"x{r} pre-upsampling MACs per output pixel = {cost[r, 'pre-upsampling']:7.1f}",
            np.array(cost[r, "pre-upsampling"]), np.array(B + 27.0 * c), rtol=1e-12, atol=0)
    print(f"   -> LR-space processing is {cost[r, 'pre-upsampling'] / cost[r, 'deconv']:.1f}x "
          f"(deconv) and {cost[r, 'pre-upsampling'] / cost[r, 'pixelshuffle']:.1f}x "
          f"(pixel shuffle) cheaper than pre-upsampling")

# %%
fig, ax = plt.subplots(figsize=(8.5, 3.6))
kinds = [("pre-upsampling", "SRCNN-style (upsample first)", "0.6"),
         ("deconv", "FSRCNN-style (transposed conv)", "C0"),
         ("pixelshuffle", "ESPCN-style (pixel shuffle)", "C1")]
for k, (kind, label, colour) in enumerate(kinds):
    vals = [cost[r, kind] for r in SCALES]
    bars = ax.bar(np.arange(2) + (k - 1) * 0.27, vals, 0.25, label=label, color=colour)
    ax.bar_label(bars, fmt="%.0f", fontsize=8)
ax.set_xticks(range(2), [f"x{r}" for r in SCALES])
ax.set_ylabel("multiply-adds per output pixel")
ax.set_title(f"Conv multiply-adds per HR pixel (C_f = {Cf}, c = {c}): the LR body shrinks as 1/r²")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# At this tiny width the two learned upsamplers cost about the same; the pixel shuffle's last
# layer is the more expensive one ($27c$ against $12c$), because its $3\times3$ kernels are
# dense where the deconvolution's are $4/9$ full (section 4.3). What the papers' speed-ups
# come from is the body running at LR: with FSRCNN's and ESPCN's real widths the body
# dominates, and the saving approaches $r^2$ (and FSRCNN also shrinks the mapping layers,
# which is how it reports more than $40\times$ over SRCNN).
#
# ## 6. Residual on bilinear, with a zero last layer
#
# Trained from scratch, the plain body must first learn to reproduce what bilinear already
# does (move colours to the right places at the right brightness) before it can add detail;
# within our budget it does not get there (measured in section 7). deconv's model therefore
# learns only the *correction* to bilinear, as VDSR does (Kim, Lee & Lee, 2016):
#
# $$\hat y = \mathrm{head}\big(\mathrm{concat}(\mathrm{bilinear}_r(x),\, \mathrm{body}(x))\big),
# \qquad \mathrm{head}: 1\times1\text{ conv, weight } [\,I_3 \;\; I_3\,],\ \text{bias } 0,$$
#
# so $\hat y = \mathrm{bilinear}_r(x) + \mathrm{body}(x)$ at initialisation, and the body's
# last layer starts at **zero**, so the untrained network *is* bilinear upsampling. That
# makes "beat bilinear" the natural starting point, not a distant goal. We check it bitwise
# (multiplying by 1 and adding 0 are exact in floating point):

# %%
for r in SCALES:
    for kind in ("deconv", "pixelshuffle"):
        net = models.superres(scale=r, upsample=kind, rng=0)
        patches = np.random.default_rng(6).random((64, 3, 32 // r, 32 // r)).astype(np.float32)
        compare(f"x{r} {kind:12s} untrained output == bilinear", net(patches),
                deconv.upsample_bilinear2d(patches, scale_factor=r), rtol=0, atol=0)

# %% [markdown]
# **What the zero does to the gradients.** Let $g = \partial L / \partial \hat y$ and let
# $f$ be the features entering the last layer (shape $(N, c, h, w)$). The last layer is linear
# in its weight $V$ and in $f$, so
#
# $$\frac{\partial L}{\partial V} = \big(\text{correlation of } f \text{ with } g\big) \ne 0,
# \qquad \frac{\partial L}{\partial f} = V^\top g = 0 \quad (V = 0),$$
#
# and every earlier layer's gradient, being $\partial L/\partial f$ pushed further back, is
# exactly zero. The first optimiser step therefore moves only the last layer and the head;
# from the second step on the gradient flows everywhere. (Had the *whole* body been zero, its
# ReLUs would be dead and nothing would ever move; random earlier layers and a zero last
# layer avoid that.) The loss is L1, $L = \frac{1}{M}\sum |\hat y - y|$ over the
# $M = N\cdot 3 H W$ values, with $\partial L/\partial \hat y = \mathrm{sign}(\hat y - y)/M$.
# We check all of this in float64:

# %%
rng = np.random.default_rng(5)
x = rng.random((2, 3, 8, 8))                                  # (N, 3, h, w), float64
y = rng.random((2, 3, 16, 16))                                # (N, 3, 2h, 2w)
net = models.superres(scale=2, upsample="deconv", dtype=np.float64, rng=0)
loss = models.loss("superres")
pred = net(x)
value = loss(pred, y)
g = loss.backward()                                           # (N, 3, 16, 16)
compare("L1 gradient == sign(pred - y) / M", g, np.sign(pred - y) / pred.size, rtol=1e-15, atol=0)
net.backward(g)
for name, prm in net.named_parameters():
    print(f"  {name:14s} {str(prm.shape):18s} |grad| max {np.abs(prm.grad).max():.3g}")
body_grads = {name: prm.grad for name, prm in net.named_parameters() if name.startswith("0.1.")}
assert all(np.all(gr == 0) for name, gr in body_grads.items() if not name.startswith("0.1.6"))
assert np.abs(net[0][1][6].weight.grad).max() > 0 and np.abs(net[1].weight.grad).max() > 0

# %% [markdown]
# The hand-written backward of the whole network (Concat, bilinear Upsample, convs, ReLU,
# transposed conv or pixel shuffle, head, L1) against float64 central differences
# (`deconv.gradcheck.gradcheck`, $\varepsilon = 10^{-6}$, relative tolerance $10^{-6}$;
# small tensors element by element, large ones along 4 random directions). We first give the
# last layer random weights so that every gradient is non-zero:

# %%
for r, kind in ((2, "deconv"), (2, "pixelshuffle"), (4, "deconv")):
    net = models.superres(scale=r, upsample=kind, dtype=np.float64, rng=0)
    last = net[0][1][6]
    last.weight.data[...] = 0.1 * rng.standard_normal(last.weight.shape)
    x = rng.random((2, 3, 4, 4))                              # (N, 3, h, w)
    y = rng.random((2, 3, 4 * r, 4 * r))                      # (N, 3, rh, rw)
    report = gradcheck(net, x, y, loss=models.loss("superres"), rtol=1e-6)
    worst = max(report.checks, key=lambda ch: ch.rel_error)
    print(f"x{r} {kind:12s}: {len(report.checks)} tensors, worst relative error "
          f"{worst.rel_error:.1e} ({worst.name})")
    report.assert_passed()

# %% [markdown]
# ## 7. Training at ×2 and ×4
#
# The trained network is `deconv.models.fsrcnn`, the model of `deconv train superres`, at a width
# that fits this notebook: feature width $d = 16$, mapping width $s = 8$, two $3\times3$ mapping
# layers (the command trains $d = 32$, $s = 12$ and three), PReLU activations, and either FSRCNN's
# $9\times9$ transposed convolution of stride $r$ (padding 4, output padding $r - 1$, so the output
# is exactly $r h$) or ESPCN's $3\times3$ convolution to $r^2$ channels and a pixel shuffle. It is
# residual on **bicubic** upsampling with a zero last layer (section 6's construction with bicubic
# in place of bilinear), so the untrained network is the best baseline; the plain stack
# (`residual=False`, torch's initialisation) is trained too, at $\times 4$. Each model: MSE loss
# (PSNR is a function of the MSE), Adam (Kingma & Ba, 2015) at learning rate $2\cdot10^{-3}$,
# batches of 16, 6 epochs of the 768 patches (288 steps), seeded shuffling and deterministic
# kernels, so the numbers are the same on every run. After every epoch the model is measured on
# the four validation images whole.

# %%
def fsrcnn_small(r, kind, residual=True):
    return models.fsrcnn(r, kind, residual=residual, channels=(16, 8), mapping=2, rng=0)


EPOCHS = 6


def train(r, kind, residual=True, epochs=EPOCHS):
    """Train one model on the x r pairs; return (model, validation PSNR after each epoch, seconds)."""
    ds = sets[r]
    net = fsrcnn_small(r, kind, residual)
    trainer = Trainer(net, models.fsrcnn_loss(), optim.Adam(net.parameters(), lr=2e-3),
                      batch_size=16, epochs=0, seed=0, progress="none")
    curve, start = [], time.perf_counter()
    for epoch in range(1, epochs + 1):
        trainer.epochs = epoch                                        # fit() continues to this epoch
        trainer.fit(ds.train.x, ds.train.y)
        curve.append(models.evaluate("superres", models.predict_images(net, ds.val.x), ds.val)["psnr"])
        net.train()
    seconds = time.perf_counter() - start
    print(f"x{r} {kind:12s}{'' if residual else ' (plain)':8s}: {epochs} epochs in {seconds:5.1f} s, "
          f"validation PSNR per epoch " + " ".join(f"{v:.3f}" for v in curve))
    return net, curve, seconds


for r in SCALES:                                  # untrained: bicubic, bit for bit
    for kind in ("deconv", "pixelshuffle"):
        low = sets[r].val.x[3][None]                                  # camera, (1, 1, h, w)
        compare(f"x{r} {kind:12s} untrained output == bicubic upsampling", fsrcnn_small(r, kind)(low),
                deconv.interpolate(low, scale_factor=r, mode="bicubic"), rtol=0, atol=0)

trained, curves, seconds = {}, {}, {}
for r in SCALES:
    for kind in ("deconv", "pixelshuffle"):
        trained[r, kind], curves[r, kind], seconds[r, kind] = train(r, kind)
plain, plain_curve, plain_seconds = train(4, "deconv", residual=False)

# %%
LABEL = {"deconv": "FSRCNN-style (transposed conv)", "pixelshuffle": "ESPCN-style (pixel shuffle)"}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
for ax, r in zip(axes, SCALES):
    for kind, colour in (("deconv", "C0"), ("pixelshuffle", "C1")):
        # epoch 0 is the untrained network, i.e. bicubic upsampling
        ax.plot(range(EPOCHS + 1), [BICUBIC[r]] + curves[r, kind], "o-", color=colour, label=LABEL[kind], ms=4)
    for name, style in (("bilinear", ":"), ("bicubic", "--")):
        ax.axhline(baselines[r][name]["psnr"], color="k", ls=style, lw=1, label=name)
    ax.set_title(f"x{r}: mean validation PSNR (Y, border {r}) while training", fontsize=10)
    ax.set_xticks(range(EPOCHS + 1))
    ax.set_xlabel("epoch (0 = untrained = bicubic)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_ylim(baselines[r]["bilinear"]["psnr"] - 0.1, None)
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
last_step = {key: curve[-1] - curve[-2] for key, curve in curves.items()}
display(Markdown(
    "In the last epoch the validation PSNR still moved by "
    + ", ".join(f"{last_step[r, kind]:+.3f} dB ($\\times{r}$ {kind})" for r in SCALES for kind in ("deconv", "pixelshuffle"))
    + ": " + ("every curve is still rising, so more steps would still pay"
              if min(last_step.values()) > 0 else "not every curve is still rising")
    + f"; the plain $\\times4$ stack ended at {plain_curve[-1]:.2f} dB, "
      f"{plain_curve[-1] - BICUBIC[4]:+.2f} dB from bicubic."))

# %% [markdown]
# ## 8. Results
#
# The mean validation PSNR of every method over the four held-out images (luminance, border $r$),
# and each image's, from `deconv.models.evaluate`, with parameter counts.

# %%
def n_params(net):
    return sum(p.size for p in net.parameters())


results = {r: {name: baselines[r][name] for name in ("nearest", "bilinear", "bicubic")} for r in SCALES}
for r in SCALES:
    for kind in ("deconv", "pixelshuffle"):
        results[r][LABEL[kind]] = models.evaluate(
            "superres", models.predict_images(trained[r, kind], sets[r].val.x), sets[r].val)
plain_result = models.evaluate("superres", models.predict_images(plain, sets[4].val.x), sets[4].val)
params = {(r, kind): n_params(trained[r, kind]) for r in SCALES for kind in ("deconv", "pixelshuffle")}

rows = ["| method | x2 mean | x4 mean | x4: " + " | ".join(sets[4].names) + " | params x2 / x4 |",
        "|---|---|---|" + "---|" * len(sets[4].names) + "---|"]
for name in results[2]:
    count = next((f"{params[2, k]} / {params[4, k]}" for k in LABEL if LABEL[k] == name), "0")
    rows.append(f"| {name} | {results[2][name]['psnr']:.3f} | {results[4][name]['psnr']:.3f} | "
                + " | ".join(f"{p:.2f}" for p in results[4][name]["psnr_each"]) + f" | {count} |")
rows.append(f"| FSRCNN-style, plain (x4 only) | | {plain_result['psnr']:.3f} | "
            + " | ".join(f"{p:.2f}" for p in plain_result["psnr_each"]) + f" | {n_params(plain)} |")
display(Markdown("\n".join(rows)))
print("training time (s):", ", ".join(f"x{r} {kind} {s:.1f}" for (r, kind), s in seconds.items()),
      f", x4 plain {plain_seconds:.1f}")

gain = {(r, kind): results[r][LABEL[kind]]["psnr"] - BICUBIC[r] for r in SCALES for kind in LABEL}
lead = {r: results[r][LABEL["pixelshuffle"]]["psnr"] - results[r][LABEL["deconv"]]["psnr"] for r in SCALES}
for (r, kind), g in gain.items():
    assert g > 0, f"x{r} {kind} did not beat bicubic"                 # training helped, at both scales
assert plain_result["psnr"] < BICUBIC[4]
display(Markdown(
    "Asserted: both learned upsamplers beat bicubic at both scales, by "
    + ", ".join(f"{gain[r, kind]:+.3f} dB ($\\times{r}$ {kind})" for r in SCALES for kind in LABEL)
    + ". The pixel shuffle minus the transposed convolution: "
    + ", ".join(f"{lead[r]:+.3f} dB at $\\times{r}$" for r in SCALES)
    + ". Both gaps come from one seed and 288 steps each; we assert nothing about their sign. "
    + f"The plain stack, with the same budget at $\\times 4$, is {plain_result['psnr'] - BICUBIC[4]:+.2f} dB "
      "from bicubic: starting from the interpolation is what makes a short training useful."))
# %% [markdown]
# ### Looking at it
#
# Whole-image PSNR differences of a few tenths of a dB are invisible at full size. So we look
# where they are: in each validation image, the $48\times48$ HR window (on an 8-pixel grid) where
# bicubic's squared error is largest, at $\times 4$, enlarged. Top row: bicubic, the two trained
# models and the truth. Bottom row: the absolute error $|\hat y - y|$ of each (one colour scale),
# and, last, where the transposed-conv model beats bicubic (blue: its error is smaller) or loses
# (red). The PSNR of each crop is in its title.

# %%
def worst_window(error, size=48, step=8):
    """Top-left corner of the size x size window, on a step grid, with the largest summed error."""
    H, W = error.shape
    corners = [(u, v) for u in range(0, H - size + 1, step) for v in range(0, W - size + 1, step)]
    return max(corners, key=lambda c: error[c[0]:c[0] + size, c[1]:c[1] + size].sum())


r, size = 4, 48
val = sets[r].val
predictions = {"bicubic": tuple(np.clip(deconv.interpolate(lo[None], scale_factor=r, mode="bicubic")[0], 0, 1)
                                for lo in val.x)}
for kind in LABEL:
    predictions[kind] = tuple(np.clip(p, 0, 1) for p in models.predict_images(trained[r, kind], val.x))
fig, axes = plt.subplots(2 * len(val.x), 4, figsize=(9.6, 4.9 * len(val.x)))
error_scale = 0.15
crop_gain = []
for index, (name, target) in enumerate(zip(sets[r].names, val.y)):
    u, v = worst_window((predictions["bicubic"][index][0] - target[0]) ** 2, size)
    window = (0, slice(u, u + size), slice(v, v + size))
    truth = target[window]
    for col, key in enumerate(("bicubic", "deconv", "pixelshuffle")):
        guess = predictions[key][index][window]
        crop_psnr = 10 * np.log10(1 / np.mean((guess - truth) ** 2))
        if key == "deconv":
            crop_gain.append(crop_psnr - 10 * np.log10(1 / np.mean((predictions["bicubic"][index][window] - truth) ** 2)))
        axes[2 * index, col].imshow(guess, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[2 * index, col].set_title(f"{name} x{r}: {key}\n{crop_psnr:.2f} dB", fontsize=8)
        im_err = axes[2 * index + 1, col].imshow(np.abs(guess - truth), cmap="magma", vmin=0,
                                                 vmax=error_scale, interpolation="nearest")
    axes[2 * index, 3].imshow(truth, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes[2 * index, 3].set_title(f"truth, rows {u}-{u + size - 1},\ncolumns {v}-{v + size - 1}", fontsize=8)
    better = np.abs(predictions["bicubic"][index][window] - truth) - np.abs(predictions["deconv"][index][window] - truth)
    im_gain = axes[2 * index + 1, 3].imshow(better, cmap="RdBu", vmin=-0.05, vmax=0.05, interpolation="nearest")
    axes[2 * index + 1, 3].set_title("|e bicubic| - |e deconv|", fontsize=8)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
fig.colorbar(im_err, ax=axes[:, :3], shrink=0.3, label="absolute error (luminance)")
fig.colorbar(im_gain, ax=axes[:, 3], shrink=0.3, label="blue: model better")
plt.show()
display(Markdown(
    "In these hardest windows the transposed-conv model gains "
    + ", ".join(f"{g:+.2f} dB ({n})" for g, n in zip(crop_gain, sets[r].names))
    + f" over bicubic (its whole-image mean gain at $\\times{r}$: {gain[r, 'deconv']:+.3f} dB). The "
      "error maps show where bicubic errs, at edges and in texture; the blue and red of the last "
      "column show where the network's correction lands."))
# %% [markdown]
# ## What we found
#
# * **Reproduced exactly.** The stride-$r$ transposed convolution with kernel $2r$ and padding
#   $r/2$ equals a $3\times3$ convolution to $C r^2$ channels followed by a pixel shuffle whose
#   kernels use $4/9$ of their taps (Shi et al., 2016b), to $10^{-12}$ in float64 at $r = 2$ and
#   $4$; exercise E6.2 does the same for FSRCNN's own $9\times9$ layer ($5\times5$ at $\times 2$,
#   $3\times3$ at $\times 4$). Naive NumPy versions of the transposed conv, the pixel shuffle, the
#   interpolations and the antialiased bicubic downscaling agree with deconv's kernels; the
#   network's backward agrees with central differences to better than $10^{-6}$ relative.
# * **Reproduced in kind: the cost argument** (section 5): processing in LR space divides the
#   body's cost per output pixel by $r^2$; at our small widths the upsampling layer is a large
#   share, so the total saving is below $r^2$.
# * **Reproduced in kind, at toy scale: learned upsampling beats bicubic** on the papers' setup
#   (bicubic-downscaled inputs, held-out images, luminance PSNR with a border), and the plain
#   stack does not within the same budget; the gains, printed below, are small next to the
#   papers' because the budget is: 288 steps of a 16-channel network on 768 small patches (the
#   papers train for hours to days, `deconv train superres` for minutes and gains about 1.5 dB at
#   $\times 2$ and 1 dB at $\times 4$, see the README).
# * **Transposed convolution against pixel shuffle:** the difference, printed below, comes from
#   one seed and a few hundred steps; its sign is not a finding. ESPCN's argument is about
#   expressiveness: a sub-pixel layer with a $K\times K$ kernel contains the transposed conv
#   whose taps it can hold (section 4.3, E6.2), so with enough training it can do at least as well.

# %%
total = time.perf_counter() - NOTEBOOK_START
display(Markdown(
    "Measured in this run: over bicubic, "
    + "; ".join(f"$\\times{r}$: transposed conv {gain[r, 'deconv']:+.3f} dB, pixel shuffle "
                f"{gain[r, 'pixelshuffle']:+.3f} dB (pixel shuffle minus transposed conv {lead[r]:+.3f} dB)"
                for r in SCALES)
    + f"; plain $\\times4$ stack {plain_result['psnr'] - BICUBIC[4]:+.2f} dB. The notebook ran in "
      f"{total:.1f} s, {sum(seconds.values()) + plain_seconds:.1f} s of it training."))

# %% [markdown]
# ## Problems
#
# 1. Antialiasing: downscale a fine stripe pattern (period 3 HR pixels) by $r = 2$ with the cubic
#    kernel stretched by $r$ (section 1) and without stretching. Which of the two shows a stripe
#    pattern at low resolution, and with what period? Predict it from the kernel's frequency response.
# 2. Why does the PSNR crop a border of $r$ pixels? Which output pixels of FSRCNN's $9\times9$,
#    stride-$r$ transposed convolution read a zero-padded LR pixel, and how many HR rows is that?
# 3. Count the parameters and multiply-adds per output pixel of the two upsamplers of section 7
#    ($9\times9$ transposed conv from $d = 16$ channels against a $3\times3$ conv to $r^2$ channels)
#    at $\times 2$ and $\times 4$; at which $r$ is the transposed conv the cheaper one?
# 4. The residual model starts at bicubic with a zero last layer. Show that after the first Adam
#    step only the last layer and the head have moved, and estimate how large that first step is
#    (Adam's first step moves every weight by about the learning rate).
# 5. E6.2's sub-pixel kernel has $K^2 r^2$ taps per channel pair; how many of them are zero at
#    $r = 2$ and at $r = 4$, and what does that say about a sub-pixel layer of the same size
#    trained from scratch?

# %% [markdown]
# ## References
#
# * C. Dong, C. C. Loy, K. He, X. Tang. *Learning a Deep Convolutional Network for Image
#   Super-Resolution* (SRCNN). ECCV 2014. Extended as *Image Super-Resolution Using Deep
#   Convolutional Networks*, IEEE TPAMI 38(2), 2016, arXiv:1501.00092.
# * C. Dong, C. C. Loy, X. Tang. *Accelerating the Super-Resolution Convolutional Neural
#   Network* (FSRCNN). ECCV 2016, arXiv:1608.00367.
# * W. Shi, J. Caballero, F. Huszár, J. Totz, A. P. Aitken, R. Bishop, D. Rueckert, Z. Wang.
#   *Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel
#   Convolutional Neural Network* (ESPCN). CVPR 2016, arXiv:1609.05158.
# * W. Shi, J. Caballero, L. Theis, F. Huszár, A. Aitken, C. Ledig, Z. Wang. *Is the
#   deconvolution layer the same as a convolutional layer?* arXiv:1609.07009, 2016.
# * J. Kim, J. K. Lee, K. M. Lee. *Accurate Image Super-Resolution Using Very Deep
#   Convolutional Networks* (VDSR). CVPR 2016, arXiv:1511.04587.
# * R. Keys. *Cubic convolution interpolation for digital image processing.* IEEE Transactions on
#   Acoustics, Speech, and Signal Processing 29(6), 1981.
# * A. Odena, V. Dumoulin, C. Olah. *Deconvolution and Checkerboard Artifacts*. Distill, 2016.
# * D. P. Kingma, J. Ba. *Adam: A Method for Stochastic Optimization*. ICLR 2015,
#   arXiv:1412.6980.
