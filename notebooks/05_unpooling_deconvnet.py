# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5. Unpooling and the deconvnet
#
# How do you look inside a trained convolutional network? Zeiler & Fergus (2014), *Visualizing
# and Understanding Convolutional Networks*, attach to every layer a "deconvnet" that runs the
# network backwards: it takes one strong hidden activation, **max-unpools** it with the
# **switches** (the positions of the maxima) recorded by the forward pooling, **rectifies** it
# with a ReLU and applies the **transposed filters**, layer after layer, until it reaches pixel
# space. The switches come from their earlier *Adaptive deconvolutional networks* (Zeiler,
# Taylor & Fergus, 2011).
#
# In this notebook we re-derive that construction on a small digits CNN trained with deconv, and
# show, with an assertion for every claim, that each of its three steps is one step of
# backpropagation: unpooling with the switches **is** the max-pool backward, the transposed
# filters **are** the convolution's input gradient. The single difference is the ReLU on the
# way down, as Simonyan, Vedaldi & Zisserman (2014) pointed out and Springenberg et al. (2015)
# organised into three rules: backpropagation gates the signal by the *forward* sign, the
# deconvnet rectifies the *backward* signal, guided backpropagation does both. We then redraw
# the paper's Fig. 2 (the top-9 inputs of a few feature maps next to their projections) with the
# plain input gradient (saliency) beside them, and its occlusion experiment (Section 4.2,
# Fig. 7).
#
# You will learn: what a switch is and why unpooling is the transpose of max pooling; why
# "transposed filters" means "flip every filter and swap its input and output channels"; why
# the deconvnet is *almost* the gradient and exactly where it is not; and how to read an
# occlusion map.
#
# The letters are the series', stated once in [NOTATION.md](NOTATION.md): kernel size $k$,
# padding $p$, stride $s$; input pixel $(h, \ell)$, output pixel $(u, v)$, kernel (or pooling
# window) tap $(\alpha, \beta)$; channels $c < C_{in}$, $c_o < C_{out}$.

# %%
import numpy as np
import matplotlib.pyplot as plt
from scipy import ndimage

import deconv
from deconv import nn, optim, data, metrics
from deconv.train import Trainer
from deconv.gradcheck import compare, numerical_gradient
from IPython.display import Markdown, display

from exercise import check_exercise          # notebooks/exercise.py: marks the fill-in cells

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## 1. A small digits CNN
#
# The data are scikit-learn's $8\times 8$ handwritten digits (`deconv.data.digits()`: 1437
# training and 360 validation images, grey levels in $[0, 1]$, labels $0..9$), **upsampled to
# $16\times 16$** with `deconv.interpolate` (bilinear): at $8 \times 8$ a layer-2 unit sees the
# whole digit and its projections are a handful of pixels; at $16\times 16$ it sees a stroke or
# a loop, and the projections have room to show one. The network
# has two convolution–ReLU–max-pool stages, like a two-layer miniature of the paper's
# ImageNet model, and a linear classifier. Dimension letters used throughout:
#
# * $N$ images in a batch; $H = W = 16$ pixels; one input channel;
# * $C_1 = 16$ feature maps in layer 1, $C_2 = 32$ in layer 2; all kernels $k = 3$ with
#   padding $p = 1$ (size-preserving); every pooling is $2\times 2$ with stride 2;
# * $K = 10$ classes.
#
# | symbol | operation | shape |
# |---|---|---|
# | $x$ | input | $(N, 1, 16, 16)$ |
# | $z_1$ | `Conv2d(1, C1, 3, padding=1)`, weight $W_1$ $(C_1, 1, 3, 3)$, bias $b_1$ | $(N, C_1, 16, 16)$ |
# | $a_1$ | ReLU | $(N, C_1, 16, 16)$ |
# | $p_1, s_1$ | `MaxPool2d(2)`: maxima and their int64 switches | $(N, C_1, 8, 8)$ |
# | $z_2$ | `Conv2d(C1, C2, 3, padding=1)`, weight $W_2$ $(C_2, C_1, 3, 3)$, bias $b_2$ | $(N, C_2, 8, 8)$ |
# | $a_2$ | ReLU — **"layer 2"**, the activations we visualise | $(N, C_2, 8, 8)$ |
# | $p_2, s_2$ | `MaxPool2d(2)` | $(N, C_2, 4, 4)$ |
# | logits | `Flatten`, `Linear(16 C2, K)` | $(N, K)$ |
#
# We keep the layers in two `Sequential`s, `features` (up to $a_2$) and `head`, so that
# `features.backward` gives the input gradient of any layer-2 signal.

# %%
ds = data.digits()                                    # float32, train (1437, 1, 8, 8), val (360, 1, 8, 8)
S = 16                                                # image side after upsampling
H1, H2 = S // 2, S // 4                               # side after the first and second pooling


def upsample(digits):
    """(N, 1, 8, 8) -> (N, 1, S, S), bilinear, in the dtype given."""
    return deconv.interpolate(digits, size=(S, S), mode="bilinear")


x_train = upsample(ds.train.x)                        # (1437, 1, 16, 16) float32
C1, C2, K = 16, 32, 10
BIAS0 = 0.1                                           # initial bias of both convolutions
init = np.random.default_rng(0)                       # seeds the initial weights
features = nn.Sequential(
    nn.Conv2d(1, C1, 3, padding=1, rng=init),         # z1 (N, C1, 16, 16)
    nn.ReLU(),                                        # a1
    nn.MaxPool2d(2),                                  # p1 (N, C1, 8, 8), switches s1
    nn.Conv2d(C1, C2, 3, padding=1, rng=init),        # z2 (N, C2, 8, 8)
    nn.ReLU(),                                        # a2 = "layer 2"
)
for conv in (features[0], features[3]):
    conv.bias.data[:] = BIAS0                         # every ReLU starts with a positive input
head = nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(C2 * H2 * H2, K, rng=init))
model = nn.Sequential(features, head)                 # (N, 1, 16, 16) -> (N, K) logits
model

# %% [markdown]
# Training: softmax cross-entropy, Adam (learning rate $10^{-3}$), mini-batches of 32, 8
# epochs, in float32, with the seeded `Trainer` (it shuffles with `seed=0`, so the run is
# reproducible bit for bit).
#
# **Why this recipe: no dead maps.** A feature map is *dead* when its ReLU is never positive: it
# passes no gradient, so it never recovers, and it cannot be visualised. An earlier recipe (Adam
# at $10^{-2}$, biases 0) killed about a third of the layer-2 maps. Two changes remove them: a
# smaller learning rate, so that no early step pushes a map's bias far below its inputs, and
# positive initial biases ($b = 0.1$), so that every ReLU starts with positive input on the
# digits' black background: Krizhevsky et al. (2012) initialised biases to a positive constant
# for the same reason ("providing the ReLUs with positive inputs"). We count the dead maps in
# Section 6 and assert that there are none.

# %%
trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-3),
                  batch_size=32, epochs=8, seed=0, metric=metrics.accuracy, progress="none")
history = trainer.fit(x_train, ds.train.y, upsample(ds.val.x), ds.val.y)
for e, loss, acc in zip(history["epoch"], history["train_loss"], history["val_metric"]):
    print(f"epoch {e}: train loss {loss:.4f}   validation accuracy {acc:.3f}")

# %% [markdown]
# The validation accuracy after 8 epochs is printed above; we assert a margin below it. The
# majority class alone would score 0.10.
#
# For everything that follows we switch the trained model to **float64**, so that algebraic
# identities can be checked to $10^{-12}$ and central differences to $10^{-6}$.

# %%
assert history["val_metric"][-1] > 0.85, history["val_metric"]
model.to(np.float64).eval()
x_val = upsample(ds.val.x.astype(np.float64))         # (360, 1, 16, 16)
y_val = ds.val.y                                      # (360,)
acc64 = metrics.accuracy(model(x_val), y_val)
print(f"validation accuracy with float64 weights: {acc64:.4f}")
assert acc64 > 0.85

W1, b1 = features[0].weight.data, features[0].bias.data    # (C1, 1, 3, 3), (C1,)
W2, b2 = features[3].weight.data, features[3].bias.data    # (C2, C1, 3, 3), (C2,)
W3, b3 = head[2].weight.data, head[2].bias.data            # (K, 16*C2), (K,)

# %% [markdown]
# ## 2. The forward pass, written out, keeping the switches
#
# The deconvnet needs from the forward pass exactly one thing per pooling layer: the
# **switches**. For a $2\times 2$ pooling with stride 2 on an input plane of width $W$, output
# element $(u, v)$ looks at the window $\{(2u+\alpha,\, 2v+\beta) : \alpha, \beta \in \{0, 1\}\}$ and records
#
# $$p[n,c,u,v] = \max_{\alpha,\beta}\, a[n,c,2u+\alpha,2v+\beta], \qquad
#   s[n,c,u,v] = (2u+\alpha^*)\,W + (2v+\beta^*),$$
#
# the flat position of the maximum $(\alpha^*, \beta^*)$ in the input plane (PyTorch's convention; on a
# tie deconv keeps the first maximum in row-major window order). `deconv.max_pool2d` returns
# both.
#
# We write the forward pass with the functional kernels and keep every intermediate: the
# pre-activations $z_1, z_2$ (the backward pass needs their signs), the switches $s_1$, and
# $a_2$. It must agree with the model's layered forward exactly (same kernels, same order of
# operations).

# %%
def forward(x):
    """Functional forward to layer 2 and the head; every intermediate is kept."""
    z1 = deconv.conv2d(x, W1, b1, padding=1)          # (N, C1, 16, 16)
    a1 = np.maximum(z1, 0)                            # (N, C1, 16, 16)
    p1, s1 = deconv.max_pool2d(a1, 2)                 # (N, C1, 8, 8) float, (N, C1, 8, 8) int64
    z2 = deconv.conv2d(p1, W2, b2, padding=1)         # (N, C2, 8, 8)
    a2 = np.maximum(z2, 0)                            # (N, C2, 8, 8)
    p2, s2 = deconv.max_pool2d(a2, 2)                 # (N, C2, 4, 4)
    logits = p2.reshape(len(x), -1) @ W3.T + b3       # (N, K)
    return dict(x=x, z1=z1, a1=a1, p1=p1, s1=s1, z2=z2, a2=a2, p2=p2, s2=s2, logits=logits)


fv = forward(x_val)
compare("a2: functional forward vs features(x)", fv["a2"], features(x_val), rtol=1e-12, atol=0)
compare("logits: functional forward vs model(x)", fv["logits"], model(x_val), rtol=1e-12, atol=1e-12)
print(f"switches s1: {fv['s1'].dtype} {fv['s1'].shape} values in [0, {S * S}):",
      fv["s1"].min(), "..", fv["s1"].max())
assert fv["s1"].dtype == np.int64 and 0 <= fv["s1"].min() and fv["s1"].max() < S * S

# %% [markdown]
# ## 3. Going down through a pooling layer: max-unpooling with the switches
#
# Max pooling throws away three values out of four and cannot be inverted. Zeiler & Fergus's
# answer (Section 2.1, "Unpooling"): remember where each maximum came from, and on the way down
# put each value back **at its switch**, with zeros elsewhere:
#
# $$U(r;\, s)[n,c,h,\ell] = \begin{cases} r[n,c,u,v] & \text{if } hW + \ell = s[n,c,u,v]
#   \text{ for some } (u, v),\\ 0 & \text{otherwise,}\end{cases}
#   \qquad r: (N, C, 8, 8) \;\to\; U(r; s): (N, C, 16, 16).$$
#
# **Why this is the max-pool backward.** Once the switches are fixed, pooling is *linear*: it
# selects entries. Write the plane $a$ as a vector of length $HW = 256$ and $p$ as a vector of
# length 64; then $p = S a$ with a $64 \times 256$ matrix $S$ of zeros and ones, one 1 per row,
# in column $s$: $S_{(u,v),\,m} = [m = s_{uv}]$. Near a point where every window has a unique
# maximum, a small change of $a$ does not move the maxima, so the Jacobian of pooling *is*
# $S$, and the chain rule gives
#
# $$\frac{\partial L}{\partial a} = S^\top \frac{\partial L}{\partial p}, \qquad
#   (S^\top r)_m = \sum_{(u,v)} [m = s_{uv}]\; r_{uv} = U(r; s)_m .$$
#
# The transpose of a selection puts every value back where it was selected: unpooling. The
# windows do not overlap here (kernel = stride = 2), so every input position is selected at most
# once and the sum has at most one term. (With overlapping windows the backward *adds* the
# values of every window that chose the same input; `deconv.max_unpool2d` keeps one, see the
# README's Semantics.)
#
# "Approximate inverse" (the paper's words) has a precise meaning too: $S S^\top = I$ (each
# output selects a distinct input), so pooling what was unpooled gives $r$ back when $r \ge 0$;
# but $S^\top S \neq I$: unpooling what was pooled keeps only the maxima.
#
# **Exercise E5.1.** Write max unpooling yourself: given the signal `r` and the switches, both
# $(N, C, H/2, W/2)$, and the plane size `out_hw` $= (H, W)$, return the $(N, C, H, W)$ array with
# every value of `r` at its switch and zeros elsewhere. `check_exercise` compares it with
# `deconv.max_unpool2d` on the switches of random planes. The worked solution is
# `max_unpool_from_switches` in [solutions.py](solutions.py); ours, a loop, follows the exercise.

# %%
def max_unpool_from_switches(r, switches, out_hw):
    """r, switches (N, C, H', W') -> (N, C, H, W): each r value at its flat switch position, 0 elsewhere."""
    return ...                                     # <- your code here


check_exercise("E5.1", max_unpool_from_switches)

# %% [markdown]
# A naive implementation, a loop over every pooled element:

# %%
def unpool_naive(r, s, out_hw):
    """Put r[n, c, I, J] at flat position s[n, c, I, J] of an (out_h, out_w) plane of zeros."""
    N, C, Hp, Wp = r.shape
    out_h, out_w = out_hw
    out = np.zeros((N, C, out_h, out_w))              # (N, C, H, W)
    for n in range(N):
        for c in range(C):
            for I in range(Hp):
                for J in range(Wp):
                    h, w = divmod(int(s[n, c, I, J]), out_w)   # row, column of the switch
                    out[n, c, h, w] = r[n, c, I, J]
    return out


rng = np.random.default_rng(1)
r = rng.standard_normal((4, C1, H1, H1))              # any downward signal at layer-1 resolution
s1 = fv["s1"][:4]                                     # the switches of the first 4 images
up = deconv.max_unpool2d(r, s1, 2)                    # (4, C1, 16, 16)
compare("max_unpool2d vs naive loop", up, unpool_naive(r, s1, (S, S)), rtol=0, atol=0)
compare("max_unpool2d vs max_pool2d_backward", up,
        deconv.max_pool2d_backward(r, s1, (4, C1, S, S)), rtol=0, atol=0)

# the adjoint identity <S a, r> = <a, S^T r>, with S = "select at the switches"
a = rng.standard_normal((4, C1, S, S))
S_a = np.take_along_axis(a.reshape(4, C1, S * S), s1.reshape(4, C1, H1 * H1), axis=2).reshape(4, C1, H1, H1)
lhs, rhs = np.sum(S_a * r), np.sum(a * up)
compare("<S a, r> vs <a, U(r)>", np.array(lhs), np.array(rhs), rtol=1e-12, atol=0)

# S S^T = I on non-negative signals (pooling undoes unpooling); S^T S keeps only the maxima
p1 = fv["p1"]                                         # (360, C1, 8, 8), >= 0 after the ReLU
compare("max_pool2d(max_unpool2d(p1)) vs p1",
        deconv.max_pool2d(deconv.max_unpool2d(p1, fv["s1"], 2), 2)[0], p1, rtol=0, atol=0)
a1 = fv["a1"]
kept = np.sum(deconv.max_unpool2d(p1, fv["s1"], 2) ** 2) / np.sum(a1 ** 2)
print(f"unpool(pool(a1)) keeps {kept:.1%} of the energy of a1 "
      f"(and {np.count_nonzero(p1) / np.count_nonzero(a1):.1%} of its non-zero entries)")
assert 0 < kept < 1

# %% [markdown]
# The picture: one layer-1 feature map of one digit, its pooled version, and what unpooling with
# the switches makes of it. Every $2\times 2$ window keeps its largest value at its original
# place; the others become zero.

# %%
n_show, c_show = 0, int(np.argmax(fv["a1"][0].sum(axis=(1, 2))))    # the busiest layer-1 map of image 0
a_map, p_map = fv["a1"][n_show, c_show], fv["p1"][n_show, c_show]   # (16, 16), (8, 8)
u_map = deconv.max_unpool2d(fv["p1"][n_show:n_show + 1], fv["s1"][n_show:n_show + 1], 2)[0, c_show]
sw = fv["s1"][n_show, c_show].ravel()                                # 64 flat switch positions

fig, axes = plt.subplots(1, 4, figsize=(11, 3))
panels = [(x_val[n_show, 0], "input digit $x$", None),
          (a_map, f"$a_1$, map {c_show}, switches marked", a_map.max()),
          (p_map, f"$p_1$ = max-pool ({H1}x{H1})", a_map.max()),
          (u_map, "$U(p_1; s_1)$ = unpooled", a_map.max())]
for ax, (img, title, vmax) in zip(axes, panels):
    im = ax.imshow(img, cmap="gray", vmin=0, vmax=vmax)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([]), ax.set_yticks([])
    if vmax is not None:
        fig.colorbar(im, ax=ax, fraction=0.046)
for k in sw:                                           # red dots: where the maxima were
    axes[1].plot(k % S, k // S, "o", ms=3, mfc="none", mec="red")
for ax in axes[1:2]:                                   # the 2x2 pooling grid
    for t in np.arange(1.5, S - 1, 2):
        ax.axhline(t, color="orange", lw=0.8), ax.axvline(t, color="orange", lw=0.8)
fig.suptitle("Max pooling records switches; unpooling puts each maximum back in its place")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Going down through a convolution: the transposed filters
#
# A convolution layer (strictly, a cross-correlation, as in every deep-learning library) with
# filters $F$ $(C_{out}, C_{in}, k, k)$, padding $p$ and stride 1 computes, with $\tilde x$ the
# input zero-padded by $p$ ($\tilde x[\cdot, h+p, \ell+p] = x[\cdot, h, \ell]$):
#
# $$z[n,c_o,u,v] = b_{c_o} + \sum_{c=0}^{C_{in}-1} \sum_{\alpha=0}^{k-1}\sum_{\beta=0}^{k-1}
#   F[c_o,c,\alpha,\beta]\; \tilde x[n,c,\,u+\alpha,\,v+\beta].$$
#
# Given $\delta = \partial L / \partial z$ of shape $(N, C_{out}, H, W)$, the chain rule sums
# over every output that touched input pixel $(h, \ell)$, i.e. every $(u, v, \alpha, \beta)$ with
# $u + \alpha = h + p$ and $v + \beta = \ell + p$:
#
# $$\frac{\partial L}{\partial x[n,c,h,\ell]} = \sum_{c_o}\sum_{\alpha,\beta}
#   \delta[n,c_o,\,h+p-\alpha,\,\ell+p-\beta]\; F[c_o,c,\alpha,\beta]
#   \qquad (\delta = 0 \text{ outside its } H\times W \text{ grid}).$$
#
# Two readings of the same sum:
#
# * **scatter** ("deconvolution", "painting filters"): every $\delta[n,c_o,u,v]$ adds the
#   filter $F[c_o,:,:,:]$, scaled by $\delta$, onto the window of $\tilde x$ at $(u, v)$; then the
#   $p$-wide border is cut off. This is exactly the **transposed convolution** with the *same*
#   array $F$: its weight layout $(C_{in}^{T}, C_{out}^{T}, k, k)$ reads $F$'s
#   $(C_{out}, C_{in}, k, k)$ with the roles of the channels swapped, no reshaping needed.
# * **gather**: substituting $\alpha' = k-1-\alpha$, $\beta' = k-1-\beta$ turns it into an ordinary convolution
#   of $\delta$ (padded by $k-1-p$) with the filters **flipped vertically and horizontally** and
#   input/output channels swapped, $F^{\mathrm{flip}}[c,c_o,\alpha',\beta'] = F[c_o,c,k-1-\alpha',k-1-\beta']$.
#   This is the sentence in Zeiler & Fergus: "the deconvnet uses transposed versions of the same
#   filters, … flipping each filter vertically and horizontally".
#
# Either way, with $p = 1$, $k = 3$ the map goes $(N, C_{out}, H, W) \to (N, C_{in}, H, W)$,
# and it is the **adjoint** of the convolution without bias:
# $\langle \mathrm{conv}(x), \delta\rangle = \langle x, \mathrm{conv}^\top(\delta)\rangle$.
# The bias does not appear in the gradient, and the deconvnet does not use it either.
#
# Both readings are loop nests in `deconv.kernels.naive`, printed below. The scatter is the
# transposed convolution's forward, `conv_transpose2d_forward`, given $\delta$ as its input and
# $F$ as its weight: each $\delta$ value paints its scaled filter, and a product whose target
# falls in the padding is never computed (that is the crop). The displayed sum itself, read as a
# gather over the filters' taps, is the convolution's `conv2d_input_grad`. (In the printed code
# $i, j$ index $\delta$'s grid, $u, v$ the input's and $a, b$ the taps. `conv2d_input_grad`
# names the channels as $F$ does; `conv_transpose2d_forward` names them from the transposed
# convolution's side, so there `c` runs over $\delta$'s channels, $F$'s $o$, and `o` over $F$'s $c$.)
# Then the comparisons, for $F = W_2$ (layer 2's filters, $C_{out} = C_2$, $C_{in} = C_1$, on the
# $8\times 8$ grid):

# %%
import inspect

from deconv.kernels import naive


def conv_transpose_naive(d, F, P):
    """Scatter: naive.conv_transpose2d_forward of d with the conv's filters F, stride 1, no bias."""
    H, W = d.shape[2:]                                # d: (N, C_out, H, W), the conv's output grid
    k = F.shape[2]                                    # F is the convolution's (C_out, C_in, k, k)
    F = np.asarray(F, d.dtype)                        # one dtype through the loop
    H_in, W_in = H + k - 1 - 2 * P, W + k - 1 - 2 * P  # canvas less P a side: H, W for P = (k-1)/2
    return naive.conv_transpose2d_forward(d, F, None, 1, 1, P, P, 1, 1, 1, H_in, W_in)  # (N, C_in, H, W)


def conv_input_grad_naive(d, F, P):
    """Gather: naive.conv2d_input_grad, the displayed sum, for a stride-1 conv that kept the size."""
    H, W = d.shape[2:]
    return naive.conv2d_input_grad(d, np.asarray(F, d.dtype), 1, 1, P, P, 1, 1, 1, H, W)  # (N, C_in, H, W)


for f in (naive.conv_transpose2d_forward, naive.conv2d_input_grad):
    print(inspect.getsource(f))


d = rng.standard_normal((4, C2, H1, H1))              # a signal at layer 2, (N, C2, 8, 8)
p1_small = fv["p1"][:4]                               # the conv's input, (4, C1, 8, 8)
ct = deconv.conv_transpose2d(d, W2, padding=1)        # (4, C1, 8, 8)
compare("conv_transpose2d(W2) vs naive scatter", ct, conv_transpose_naive(d, W2, 1),
        rtol=1e-12, atol=1e-14)
compare("conv_transpose2d(W2) vs naive gather", ct, conv_input_grad_naive(d, W2, 1),
        rtol=1e-12, atol=1e-14)
gi, _, _ = deconv.conv2d_backward(d, p1_small, W2, padding=1)
compare("conv_transpose2d(W2) vs conv2d_backward grad_input", ct, gi, rtol=1e-12, atol=1e-14)
W2_flip = W2[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C1, C2, 3, 3): flipped, channels swapped
compare("conv_transpose2d(W2) vs conv2d(flipped W2)", ct,
        deconv.conv2d(d, W2_flip, padding=1), rtol=1e-12, atol=1e-14)
lhs = np.sum(deconv.conv2d(p1_small, W2, padding=1) * d)
rhs = np.sum(p1_small * ct)
maxdiff = compare("<conv(p1), d> vs <p1, conv^T(d)>", np.array(lhs), np.array(rhs), rtol=1e-12, atol=0)

# %% [markdown]
# **Exercise E5.2: one layer of the deconvnet, downwards.** Given a signal `r` arriving at a
# convolution's output, $(N, C_{out}, H, W)$, the convolution's filters `F` $(C_{out}, C_{in}, k, k)$
# and its padding `p` (stride 1), rectify the signal (the deconvnet's ReLU rule, Section 5) and
# send it through the transposed filters by the *scatter* reading above: every value paints its
# scaled filter, then the $p$-wide border is cut off. Return $(N, C_{in}, H + k - 1 - 2p, \dots)$.
# `check_exercise` compares with `deconv.conv_transpose2d(relu(r), F, padding=p)`. The worked
# solution is `deconvnet_layer_down` in [solutions.py](solutions.py).

# %%
def deconvnet_layer_down(r, F, p):
    """r (N, C_out, H, W), F (C_out, C_in, k, k), p -> relu(r) scattered through F, cropped by p."""
    return ...                                     # <- your code here


check_exercise("E5.2", deconvnet_layer_down)

# %% [markdown]
# ## 5. Going down through a ReLU: three rules
#
# The last piece is the rectifier, and here the deconvnet and backpropagation part ways. Let
# $f = \mathrm{relu}(z)$ be a forward ReLU and $R$ the signal arriving from above (same shape
# as $z$). Following Springenberg et al. (2015), the signal passed further down is
#
# | rule | signal below the ReLU | uses the input through |
# |---|---|---|
# | backpropagation (the gradient) | $R \cdot [z > 0]$ | the forward sign of $z$ |
# | deconvnet (Zeiler & Fergus) | $R \cdot [R > 0] = \mathrm{relu}(R)$ | nothing |
# | guided backpropagation | $R \cdot [R > 0] \cdot [z > 0]$ | the forward sign of $z$ |
#
# Why does the deconvnet do this? Its authors think of it as a network running in the other
# direction, built from the same parts, whose reconstructions should be valid feature maps at
# every layer, and feature maps after a ReLU are never negative, so the reconstructed signal is
# passed through a ReLU too. For the gradient that is the wrong derivative: the derivative of
# $\mathrm{relu}(z)$ is $[z>0]$, a gate set by the *forward* pass. So:
#
# * every other step of the deconvnet is exactly a step of backpropagation (Sections 3 and 4),
# * at each ReLU the deconvnet replaces the forward gate $[z > 0]$ by the sign of the backward
#   signal.
#
# This is Simonyan, Vedaldi & Zisserman's observation (2014, Section 4): the deconvnet
# reconstruction is the gradient of the activation with respect to the input, except at the
# ReLUs. A consequence: apart from which activation is chosen and its value, the deconvnet
# depends on the image **only through the switches**; the gradient also depends on it through
# every forward ReLU mask.
#
# The whole projection, for a signal $r_2$ placed on layer 2 $(N, C_2, 8, 8)$, in the paper's
# order (rectify, filter, unpool, rectify, filter):
#
# $$r_2 \xrightarrow{\ \mathrm{ReLU\ rule}\ (z_2)\ } \cdot
#   \xrightarrow{\ \mathrm{conv}^\top(W_2)\ } (N, C_1, 8, 8)
#   \xrightarrow{\ U(\cdot;\, s_1)\ } (N, C_1, 16, 16)
#   \xrightarrow{\ \mathrm{ReLU\ rule}\ (z_1)\ } \cdot
#   \xrightarrow{\ \mathrm{conv}^\top(W_1)\ } (N, 1, 16, 16).$$

# %%
RULES = {
    "backprop": lambda R, z: R * (z > 0),                       # gate by the forward sign
    "deconvnet": lambda R, z: np.maximum(R, 0),                 # rectify the signal
    "guided": lambda R, z: np.maximum(R, 0) * (z > 0),          # both
}


def project(f, r2, rule):
    """Project a layer-2 signal r2 (N, C2, 8, 8) to pixel space (N, 1, 16, 16) with one ReLU rule.

    f is the dict of forward(x) for the same N images: only its switches s1 and, for the
    'backprop' and 'guided' rules, the signs of z1 and z2 are used.
    """
    relu_rule = RULES[rule]
    r = relu_rule(r2, f["z2"])                                  # (N, C2, 8, 8)
    r = deconv.conv_transpose2d(r, W2, padding=1)               # (N, C1, 8, 8) transposed filters
    r = deconv.max_unpool2d(r, f["s1"], 2)                      # (N, C1, 16, 16) switches
    r = relu_rule(r, f["z1"])                                   # (N, C1, 16, 16)
    return deconv.conv_transpose2d(r, W1, padding=1)            # (N, 1, 16, 16)

# %% [markdown]
# ## 6. The deconvnet *is* the gradient, up to the ReLU rule
#
# **Identity (1).** With the backprop rule (forward ReLU masks instead of rectification),
# `project` must be the vector–Jacobian product $r_2 \mapsto (\partial a_2/\partial x)^\top
# r_2$, which the model computes with its own hand-written layer backwards:
# `features.forward(x)` then `features.backward(r2)`. We check it for a random dense signal on
# all 360 validation images (every feature map and position at once), and for the signal the
# deconvnet actually uses.
#
# **The deconvnet's signal.** Zeiler & Fergus visualise one activation at a time: "we set all
# other activations in the layer to zero". For each validation image and each feature map $c$
# we take the strongest position $(i^*, j^*)$ of $a_2[n, c]$ and the signal
# $r_2 = a_2[n,c,i^*,j^*]\; e_{c,i^*,j^*}$, zero everywhere else. Because the three rules are
# positively homogeneous ($\mathrm{relu}(\lambda R) = \lambda\,\mathrm{relu}(R)$ for
# $\lambda > 0$), the projection is the activation's value times the projection of the unit
# indicator; with the backprop rule it is $a_2[n,c,i^*,j^*]\,\partial a_2[n,c,i^*,j^*]/\partial x$.

# %%
r2_dense = rng.standard_normal(fv["a2"].shape)                  # (360, C2, 8, 8)
features.forward(x_val)
compare("project(backprop), random signal vs features.backward",
        project(fv, r2_dense, "backprop"), features.backward(r2_dense), rtol=1e-10, atol=1e-12)

a2 = fv["a2"]                                                   # (360, C2, 8, 8)
strongest = a2.reshape(len(x_val), C2, H1 * H1).max(axis=2)     # (360, C2) per image and map
where = a2.reshape(len(x_val), C2, H1 * H1).argmax(axis=2)      # (360, C2) flat position i*H1+j
dead = int(np.sum(strongest.max(axis=0) == 0))
dead_layer1 = int(np.sum(fv["a1"].max(axis=(0, 2, 3)) == 0))
print(f"{dead} of {C2} layer-2 maps and {dead_layer1} of {C1} layer-1 maps never fire on the "
      f"validation set (dead ReLUs)")
assert dead == 0 and dead_layer1 == 0                           # the recipe of Section 1


def unit_signal(n_idx, c_idx):
    """r2 for the strongest position of map c_idx[k] in image n_idx[k]: shape (len(n_idx), C2, 8, 8)."""
    r2 = np.zeros((len(n_idx), C2, H1, H1))
    i, j = np.divmod(where[n_idx, c_idx], H1)
    r2[np.arange(len(n_idx)), c_idx, i, j] = a2[n_idx, c_idx, i, j]
    return r2


n_idx, c_idx = np.nonzero(strongest > 0)                        # every live (image, map) pair
f_sel = {k: fv[k][n_idx] for k in ("z1", "s1", "z2", "p2", "s2")}   # forward results, one per pair
r2_units = unit_signal(n_idx, c_idx)                            # (M, C2, 8, 8)
print(f"{len(n_idx)} (image, map) pairs with a positive strongest activation")
features.forward(x_val[n_idx])
maxdiff = compare("project(backprop), top units vs features.backward",
                  project(f_sel, r2_units, "backprop"), features.backward(r2_units), rtol=1e-10, atol=1e-12)

# %% [markdown]
# **Central differences.** The analytic gradient is only the derivative where the function is
# differentiable, and ReLU and max are not everywhere. A central difference with step
# $\varepsilon$ changes one pixel by $\pm\varepsilon$, which moves every $z_1$ by at most
# $\varepsilon \max|W_1|$ and every $z_2$ by at most $\varepsilon \max|W_1| \max_o \sum|W_2[o]|$.
# If every $|z_1|$, every $|z_2|$ and every gap between the two largest values of a $2\times 2$
# pooling window (with a positive maximum) exceeds twice those amounts, no ReLU flips and no
# switch moves inside the stencil, and the central difference of this piecewise-linear
# function is exact up to rounding.
#
# Real digits fail this: their background is exactly 0, so in the corners all four values of a
# pooling window are equal ($= \mathrm{relu}(b_1)$), a tie, where max has no derivative. So we
# check on a digit with a little seeded noise added (standard deviation 0.05), after
# *asserting* the margins.

# %%
eps = 1e-6
x0 = x_val[:1] + 0.05 * np.random.default_rng(2).standard_normal((1, 1, S, S))   # (1, 1, 16, 16)
f0 = forward(x0)
win = f0["a1"].reshape(1, C1, H1, 2, H1, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, C1, H1, H1, 4)
top2 = np.sort(win, axis=-1)[..., -2:]                          # two largest per pooling window
gap = (top2[..., 1] - top2[..., 0])[top2[..., 1] > 0].min()
move1 = eps * np.abs(W1).max()
move2 = move1 * np.abs(W2).sum(axis=(1, 2, 3)).max()
print(f"min |z1| = {np.abs(f0['z1']).min():.2e}, min pooling gap = {gap:.2e}  (moves <= {move1:.1e})")
print(f"min |z2| = {np.abs(f0['z2']).min():.2e}  (moves <= {move2:.1e})")
assert np.abs(f0["z1"]).min() > 2 * move1 and gap > 2 * move1 and np.abs(f0["z2"]).min() > 2 * move2

c0 = int(np.argmax(f0["a2"][0].max(axis=(1, 2))))               # the strongest map of this image
i0, j0 = np.unravel_index(np.argmax(f0["a2"][0, c0]), (H1, H1))
r2_0 = np.zeros((1, C2, H1, H1))
r2_0[0, c0, i0, j0] = 1.0                                       # the unit indicator
numeric = numerical_gradient(lambda: float(features(x0)[0, c0, i0, j0]), x0, eps=eps)
maxdiff = compare(f"project(backprop) vs central differences, unit (c={c0}, i={i0}, j={j0})",
                  project(f0, r2_0, "backprop"), numeric, rtol=1e-6, atol=1e-8)

# %% [markdown]
# **Identity (1), in words**: "deconvnet without the ReLU on the way back, but
# with the forward ReLU mask" is the input gradient, to $10^{-10}$ and against central
# differences. **How different is the real deconvnet?** For every live (image, map) pair we
# compare the deconvnet projection $D$ with the gradient projection $G$ (same signal): the
# relative difference $\|D - G\| / \|G\|$ and the cosine between them. (At layer 2 the three
# rules agree: the signal is one positive activation, where $[z_2 > 0] = [R > 0] = 1$. All the
# difference comes from the layer-1 ReLU.)

# %%
P = {rule: project(f_sel, r2_units, rule).reshape(len(n_idx), S * S) for rule in RULES}   # (M, 256) each


def cosine(u, v):
    return np.sum(u * v, axis=1) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1))


rel = np.linalg.norm(P["deconvnet"] - P["backprop"], axis=1) / np.linalg.norm(P["backprop"], axis=1)
cos_dg = cosine(P["deconvnet"], P["backprop"])
print(f"deconvnet vs gradient: median relative difference {np.median(rel):.3f} "
      f"(10%..90%: {np.quantile(rel, 0.1):.3f}..{np.quantile(rel, 0.9):.3f}), "
      f"median cosine {np.median(cos_dg):.3f}")
assert np.median(rel) > 0.2 and 0.5 < np.median(cos_dg) < 0.99

# the first step agrees for all three rules: the signal is one positive activation
for rule in RULES:
    compare(f"layer-2 ReLU rule '{rule}' leaves the unit signal unchanged",
            RULES[rule](r2_units, f_sel["z2"]), r2_units, rtol=0, atol=0)

# %% [markdown]
# Two more facts worth checking. First, Zeiler & Fergus's layers end with the pooling; starting
# from the *pooled* layer-2 map $p_2$ instead changes nothing, because the strongest activation
# of a map is the maximum of its pooling window: unpooling the one-hot $p_2$ signal with $s_2$
# lands exactly on $(i^*, j^*)$. Second, a projection can only be non-zero inside the unit's
# **receptive field**. With the usual recursion (size $r$ in input pixels, and the distance
# $\Delta$ in input pixels between neighbouring units; a layer with kernel $k$ and stride $t$
# gives $r \leftarrow r + (k-1)\Delta$, $\Delta \leftarrow t\Delta$): conv1 $r = 3, \Delta = 1$;
# pool1 $r = 3 + (2-1)\cdot 1 = 4, \Delta = 2$; conv2 $r = 4 + (3-1)\cdot 2 = 8$. Unit
# $(i, j)$ of layer 2 sees input rows $2i-3, \dots, 2i+4$ and columns $2j-3, \dots, 2j+4$, an
# $8\times 8$ window, a quarter of the $16 \times 16$ image, that overhangs it (into the zero
# padding) for the units on the border.

# %%
p2_signal = np.zeros_like(f_sel["p2"])                          # (M, C2, 4, 4)
ii, jj = np.divmod(where[n_idx, c_idx], H1)
pairs = np.arange(len(n_idx))
p2_signal[pairs, c_idx, ii // 2, jj // 2] = f_sel["p2"][pairs, c_idx, ii // 2, jj // 2]   # its pooled max
compare("U(one-hot p2; s2) vs the layer-2 unit signal",
        deconv.max_unpool2d(p2_signal, f_sel["s2"], 2), r2_units, rtol=0, atol=0)

rf = np.zeros((len(n_idx), S + 6, S + 6), dtype=bool)           # receptive field on the 3-padded canvas
for k, (i, j) in enumerate(zip(ii, jj)):
    rf[k, 2 * i:2 * i + 8, 2 * j:2 * j + 8] = True
for rule in RULES:
    canvas = np.pad(P[rule].reshape(-1, S, S), ((0, 0), (3, 3), (3, 3)))
    outside = np.abs(canvas[~rf]).max()
    print(f"{rule:9s}: largest |value| outside the receptive field = {outside}")
    assert outside == 0.0

# %% [markdown]
# ## 7. The paper's Fig. 2 for our layer 2
#
# Zeiler & Fergus show, for a few feature maps, the 9 strongest activations over the
# validation set, each projected to pixel space, next to the image patches that caused them.
# We take, for each live map, the 9 validation images with the largest maximum activation of
# that map, and show the four maps whose top-9 activations are strongest on average. For each
# map, three $3\times 3$ panels:
#
# * the **patches**: each image cropped to the unit's $8\times 8$ receptive field (light blue =
#   outside the image, the zero padding);
# * the **deconvnet projections** of those activations, same crop;
# * the **gradients** (saliency, Simonyan et al. 2014) of the same activations.
#
# Projections are signed; each tile is scaled to its own largest absolute value (red
# positive, blue negative, white zero), as the paper normalises each reconstruction.

# %%
order = np.argsort(-strongest, axis=0, kind="stable")[:9].T     # (C2, 9) top-9 images per map
top9_mean = np.take_along_axis(strongest.T, order, axis=1).mean(axis=1)   # (C2,)
maps_shown = np.argsort(-top9_mean, kind="stable")[:4]
print("maps shown:", maps_shown, " mean top-9 activation:", top9_mean[maps_shown].round(2))


def crop_rf(img, i, j):
    """The 8x8 receptive field of layer-2 unit (i, j) in an S x S image; NaN = outside the image."""
    canvas = np.pad(img, 3, constant_values=np.nan)             # (S + 6, S + 6)
    return canvas[2 * i:2 * i + 8, 2 * j:2 * j + 8]


OUTSIDE = np.array([0.65, 0.81, 0.89])                         # light blue: outside the image


def mosaic(tiles, signed):
    """9 tiles (8, 8) -> one RGB image (28, 28, 3), 3 x 3 tiles with 2-pixel separators.

    Patches use the grey scale on [0, 1]; signed tiles are scaled to [-1, 1] by their own
    max |value| and coloured with RdBu_r; NaN (outside the image) is light blue.
    """
    out = np.full((28, 28, 3), 0.35 if signed else 1.0)          # separators: dark or white
    cmap = plt.get_cmap("RdBu_r" if signed else "gray")
    for k, t in enumerate(tiles):
        v = 0.5 + 0.5 * t / np.nanmax(np.abs(t)) if signed else t
        rgb = cmap(np.nan_to_num(v))[..., :3]                   # (8, 8, 3)
        rgb[np.isnan(t)] = OUTSIDE
        r, c = divmod(k, 3)
        out[r * 10:r * 10 + 8, c * 10:c * 10 + 8] = rgb
    return out


fig, axes = plt.subplots(2, 6, figsize=(11, 4.8))
for m, c in enumerate(maps_shown):
    imgs = order[c]                                             # (9,) image indices
    i9, j9 = np.divmod(where[imgs, c], H1)
    f9 = {k: v[imgs] for k, v in fv.items()}
    r9 = unit_signal(imgs, np.full(9, c))
    dec = project(f9, r9, "deconvnet")[:, 0]                    # (9, 8, 8)
    grad = project(f9, r9, "backprop")[:, 0]
    patches = [crop_rf(x_val[n, 0], i, j) for n, i, j in zip(imgs, i9, j9)]
    dec_c = [crop_rf(d, i, j) for d, i, j in zip(dec, i9, j9)]
    grad_c = [crop_rf(g, i, j) for g, i, j in zip(grad, i9, j9)]
    row, col = divmod(m, 2)
    for k, (tiles, signed, name) in enumerate([(patches, False, "patches"),
                                                (dec_c, True, "deconvnet"),
                                                (grad_c, True, "gradient")]):
        ax = axes[row, 3 * col + k]
        ax.imshow(mosaic(tiles, signed), interpolation="nearest")
        ax.set_title(f"map {c}: {name}", fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    print(f"map {c}: labels of its top-9 images {y_val[imgs]}, "
          f"positions (i, j) {[(int(i), int(j)) for i, j in zip(i9, j9)]}")
fig.suptitle("Top-9 layer-2 activations over the validation set (after Zeiler & Fergus, Fig. 2)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Reading the figure: each layer-2 map responds to a stroke configuration at one or two
# neighbouring positions (the printed $(i, j)$), and for some maps one class dominates the top
# 9 (the printed labels), a first hint of the class-specificity that the paper sees grow with
# depth. The deconvnet and gradient projections both light up the strokes that drive the unit;
# they share the large-scale layout (the median cosine printed in Section 6) but differ in detail,
# because the gradient is gated by which layer-1 units were on for *this* image, while the
# deconvnet lets through every positive layer-1 signal at the switches.
#
# A number for "less image-specific": for each live map, the mean pairwise cosine similarity
# between the projections of its 9 top activations (9 different images). The deconvnet's
# projections of one map resemble each other a little more than the gradients do, though at
# two layers the effect is modest.

# %%
consistency = {rule: [] for rule in RULES}
for c in np.nonzero(top9_mean > 0)[0]:
    imgs = order[c]
    f9 = {k: v[imgs] for k, v in fv.items()}
    r9 = unit_signal(imgs, np.full(9, c))
    for rule in RULES:
        Q = project(f9, r9, rule).reshape(9, S * S)
        Q = Q / np.linalg.norm(Q, axis=1, keepdims=True)
        consistency[rule].append((Q @ Q.T)[np.triu_indices(9, 1)].mean())
consistency = {rule: np.array(v) for rule, v in consistency.items()}
for rule, v in consistency.items():
    print(f"{rule:9s}: mean pairwise cosine of a map's top-9 projections = {v.mean():.3f}")
more = np.mean(consistency["deconvnet"] > consistency["backprop"])
print(f"deconvnet more self-similar than the gradient for {more:.0%} of the "
      f"{len(consistency['backprop'])} live maps")
assert consistency["deconvnet"].mean() > consistency["backprop"].mean() and more > 0.5

# %% [markdown]
# The three rules side by side, for the single strongest activation of each of the four maps
# (whole $16\times 16$ image; the cross marks the centre of the unit's receptive field, between
# pixels $2i$ and $2i+1$). Guided backpropagation lets through only what both others let
# through: positive signal at layer-1 units that were active in the forward pass. In
# Springenberg et al.'s deeper networks that gives the sharpest pictures; here, with a single
# ReLU below the visualised layer, it looks much like the deconvnet.

# %%
fig, axes = plt.subplots(4, 4, figsize=(8, 8.4))
for row, c in enumerate(maps_shown):
    n = order[c][0]
    i, j = divmod(int(where[n, c]), H1)
    f1 = {k: v[n:n + 1] for k, v in fv.items()}
    r1 = unit_signal(np.array([n]), np.array([c]))
    axes[row, 0].imshow(x_val[n, 0], cmap="gray", vmin=0, vmax=1)
    axes[row, 0].set_ylabel(f"map {c}, unit ({i},{j})", fontsize=9)
    for k, rule in enumerate(RULES):
        img = project(f1, r1, rule)[0, 0]
        lim = np.abs(img).max()
        im = axes[row, k + 1].imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
    for ax in axes[row]:
        ax.plot(2 * j + 0.5, 2 * i + 0.5, "k+", ms=8)
        ax.set_xticks([]), ax.set_yticks([])
for ax, title in zip(axes[0], ["input", "gradient (backprop)", "deconvnet", "guided backprop"]):
    ax.set_title(title, fontsize=10)
fig.suptitle("One activation, three ReLU rules on the way down\n"
             "(each signed map scaled to its own max |value|; red > 0 > blue)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 8. Occlusion sensitivity (the paper's Section 4.2)
#
# The projections say which pixels a unit *could* respond to. Zeiler & Fergus ask a more
# direct question: is the classifier really using the object, or the surroundings? They slide
# a **grey square** over the image and record, for each position, (b) the total activation of
# the strongest top-layer feature map, (d) the probability of the correct class, (e) the most
# probable class. Here: a $6\times 6$ square whose grey level is the mean training pixel
# (printed below), placed on a stride-2 grid: position $(g, g')$, $0 \le g, g' < 8$, covers rows
# $2g-2, \dots, 2g+3$ and columns $2g'-2, \dots, 2g'+3$ (clipped at the border), i.e. it is centred
# on pixel $(g, g')$ of the original $8 \times 8$ digit, which it covers with its neighbours. Each
# occlusion map is therefore $8\times 8$, aligned with the original digit's pixels.
#
# Notation: $\pi_k(x) = \mathrm{softmax}(\mathrm{logits}(x))_k$; $x^{(g,g')}$ is $x$ occluded at
# $(g, g')$; the occlusion map of image $n$ is $O_n[g,g'] = \pi_{y_n}(x_n^{(g,g')})$ and the
# drop is $\pi_{y_n}(x_n) - O_n[g, g']$. All 360 validation images times 64 positions make
# $360 \cdot 64$ forward passes, done in batches.

# %%
grey = float(x_train.mean())
G = S // 2                                                      # occluder positions per axis
print(f"occluder grey level (mean training pixel): {grey:.4f}")


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def occlude(x):
    """(N, 1, S, S) -> (N * G * G, 1, S, S): the 6x6 grey square at each of the G x G positions."""
    xs = np.repeat(x[:, None], G * G, axis=1)                   # (N, 64, 1, 16, 16)
    for k in range(G * G):
        g, g2 = divmod(k, G)
        xs[:, k, :, max(2 * g - 2, 0):2 * g + 4, max(2 * g2 - 2, 0):2 * g2 + 4] = grey
    return xs.reshape(-1, 1, S, S)


N = len(x_val)
p_true = softmax(fv["logits"])[np.arange(N), y_val]             # (N,) unoccluded
c_star = a2.sum(axis=(2, 3)).argmax(axis=1)                     # (N,) strongest layer-2 map
total0 = a2[np.arange(N), c_star].sum(axis=(1, 2))              # (N,) its total activation
occ_p, occ_label, occ_total = [], [], []
for start in range(0, N, 60):
    sl = slice(start, start + 60)
    fo = forward(occlude(x_val[sl]))                            # 60*64 occluded images
    probs = softmax(fo["logits"]).reshape(-1, G * G, K)         # (60, 64, K)
    occ_p.append(probs[np.arange(probs.shape[0]), :, y_val[sl]])  # (60, 64) p(true class)
    occ_label.append(probs.argmax(axis=2))                      # (60, 64) most probable class
    a2o = fo["a2"].reshape(-1, G * G, C2, H1, H1)
    occ_total.append(a2o[np.arange(a2o.shape[0]), :, c_star[sl]].sum(axis=(2, 3)))  # (60, 64)
occ_p, occ_label, occ_total = (np.concatenate(v).reshape(N, G, G) for v in (occ_p, occ_label, occ_total))
drop = p_true[:, None, None] - occ_p                            # (N, 8, 8)

# %% [markdown]
# What we assert, each measured first on this model:
#
# * for (nearly) every image some position of the square lowers the true-class probability:
#   $\min O_n < \pi_{y_n}(x_n)$;
# * how far it can lower it depends on the class (the medians per class are printed, and the
#   sentence after the cell is built from them);
# * averaged over the validation set, occluding a corner (where the digits have no ink) barely
#   matters (mean absolute change of the true-class probability), while occluding the centre
#   costs a lot of probability: we ask for a factor of at least 5 (the measured factor is printed);
# * the paper's link between panels (b) and (c) of its Fig. 7: the positions where the square
#   lowers the strongest map's total activation are the positions where that map's deconvnet
#   projection lives. We project the whole map $c^*$ (all its activations, the other maps zero),
#   sum $|$projection$|$ over the square's footprint at each of the 64 positions, and correlate
#   it with the activation drop, image by image.

# %%
below = np.mean(occ_p.min(axis=(1, 2)) < p_true)
corner = np.abs(drop[:, [0, 0, 7, 7], [0, 7, 0, 7]]).mean()
centre = drop[:, 3:5, 3:5].mean()
print(f"images whose occlusion map dips below the unoccluded probability: {below:.1%}")
print(f"mean |drop| with the square on a corner: {corner:.4f};  mean drop at the 2x2 centre: {centre:.4f}")
assert below > 0.95
lowest_all = occ_p.min(axis=(1, 2))                             # (N,) worst position per image
median_lowest = np.array([np.median(lowest_all[y_val == d]) for d in range(K)])
print("per class, median over images of the lowest p(true) the square achieves:")
print("  " + "  ".join(f"{d}: {m:.2f}" for d, m in enumerate(median_lowest)))
fragile, robust = np.nonzero(median_lowest < 0.1)[0], np.nonzero(median_lowest > 0.5)[0]
assert len(fragile) > 0 and np.ptp(median_lowest) > 0.3      # the class matters
print(f"centre / corner = {centre / corner:.1f}")
assert centre > 0.1 and corner < 0.2 * centre

r2_maps = np.zeros_like(a2)
r2_maps[np.arange(N), c_star] = a2[np.arange(N), c_star]        # the whole strongest map
proj_maps = {rule: project(fv, r2_maps, rule)[:, 0] for rule in ("deconvnet", "backprop")}   # (N, 16, 16)
act_drop = (total0[:, None, None] - occ_total).reshape(N, G * G)
corr = {}
for rule, pm in proj_maps.items():
    blocks = np.abs(pm).reshape(N, G, 2, G, 2).sum(axis=(2, 4))          # (N, 8, 8): 2x2 blocks
    footprint = np.stack([ndimage.uniform_filter(b, 3, mode="constant") for b in blocks])  # 3x3 blocks = square
    corr[rule] = np.array([np.corrcoef(u, v)[0, 1] for u, v in zip(footprint.reshape(N, G * G), act_drop)])
    print(f"{rule:9s}: correlation(footprint of |projection|, activation drop): median "
          f"{np.median(corr[rule]):.3f}, 10% quantile {np.quantile(corr[rule], 0.1):.3f}, "
          f"positive for {np.mean(corr[rule] > 0):.1%} of images")
assert np.median(corr["deconvnet"]) > 0.6 and np.mean(corr["deconvnet"] > 0) > 0.95
display(Markdown(
    f"One square lowers the true-class probability of a typical (median) image below 0.1 for the "
    f"digits {', '.join(map(str, fragile))}, whose identity hangs on one stroke or loop"
    + (f", and leaves it above 0.5 for {', '.join(map(str, robust))}" if len(robust) else
       "; for no digit does the typical image keep it above 0.5")
    + f". The corner costs {corner:.4f} on average, the centre {centre:.4f}; the median correlation "
      f"between the deconvnet footprint and the activation drop is {np.median(corr['deconvnet']):.3f}."))

# %% [markdown]
# The paper's Fig. 7 for four validation digits. Which ones? The most dramatic maps would be
# cherry-picked, so for the digits 2, 4, 5 and 7 we take the correctly classified image whose
# lowest occlusion probability is the *median* of its class: a typical case. Columns:
# (a) the input, occluded where the square lowers the true-class probability most (red frame);
# (b) the total activation of the strongest layer-2 map $c^*$ as a function of where the
# square is centred; (c) the deconvnet projection of that map; (d) the probability of the true
# class (cyan cross: the worst position); (e) the most probable class; and, for comparison,
# (f) the gradient of the true-class logit with respect to the input (Simonyan et al.'s class
# saliency), the infinitesimal version of the occlusion experiment.

# %%
correct = fv["logits"].argmax(axis=1) == y_val
examples = []
for digit in (2, 4, 5, 7):
    idx = np.nonzero(correct & (y_val == digit))[0]
    lowest = occ_p[idx].min(axis=(1, 2))                         # per image: worst occluder position
    examples.append(int(idx[np.argsort(lowest, kind="stable")[len(idx) // 2]]))
print("examples (validation indices):", examples)
logits = model(x_val[examples])                                 # (4, K), fills the layer caches
onehot = np.zeros_like(logits)
onehot[np.arange(4), y_val[examples]] = 1.0
saliency = model.backward(onehot)[:, 0]                         # (4, 16, 16) d logit_true / dx

fig, axes = plt.subplots(4, 6, figsize=(11, 8))
for row, n in enumerate(examples):
    h, w = np.unravel_index(np.argmin(occ_p[n]), (G, G))       # where the square hurts most
    rows, cols = slice(max(2 * h - 2, 0), min(2 * h + 4, S)), slice(max(2 * w - 2, 0), min(2 * w + 4, S))
    shown = x_val[n, 0].copy()
    shown[rows, cols] = grey                                    # the image the network saw there
    panels = [
        (shown, "gray", (0, 1), f"(a) digit {y_val[n]}, worst occluder"),
        (occ_total[n], "viridis", None, f"(b) total act. of map {c_star[n]}"),
        (proj_maps["deconvnet"][n], "RdBu_r", "sym", "(c) its deconvnet projection"),
        (occ_p[n], "magma", (0, 1), f"(d) p(true), unoccluded {p_true[n]:.2f}"),
        (occ_label[n], "tab10", (-0.5, 9.5), "(e) most probable class"),
        (saliency[row], "RdBu_r", "sym", "(f) gradient of true logit"),
    ]
    for ax, (img, cmap, lim, title) in zip(axes[row], panels):
        if lim == "sym":
            lim = (-np.abs(img).max(), np.abs(img).max())
        im = ax.imshow(img, cmap=cmap, vmin=None if lim is None else lim[0],
                       vmax=None if lim is None else lim[1], extent=(-0.5, S - 0.5, S - 0.5, -0.5))
        ax.set_title(title, fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
        if cmap != "tab10":
            fig.colorbar(im, ax=ax, fraction=0.046)
    for (hh, ww), lab in np.ndenumerate(occ_label[n]):
        axes[row, 4].text(2 * ww + 0.5, 2 * hh + 0.5, str(lab), ha="center", va="center", fontsize=6,
                          color="white")
    axes[row, 0].add_patch(plt.Rectangle((cols.start - 0.5, rows.start - 0.5), cols.stop - cols.start,
                                         rows.stop - rows.start, fill=False, ec="red", lw=1.5))
    axes[row, 3].plot(2 * w + 0.5, 2 * h + 0.5, "c+", ms=8)   # its centre on the probability map
    assert occ_p[n].min() < p_true[n]
fig.suptitle("Occlusion sensitivity (after Zeiler & Fergus, Fig. 7): "
             "3x3 grey square centred on each pixel")
plt.tight_layout()
plt.show()

# %% [markdown]
# And averaged over all 360 validation images: where occlusion hurts the true class, next to
# where the ink is and where the class gradient is large.

# %%
logits_all = model(x_val)
onehot_all = np.zeros_like(logits_all)
onehot_all[np.arange(N), y_val] = 1.0
saliency_all = np.abs(model.backward(onehot_all)[:, 0])         # (N, 16, 16)
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
for ax, (img, cmap, title) in zip(axes, [
        (x_val[:, 0].mean(axis=0), "gray", "mean validation digit"),
        (drop.mean(axis=0), "magma", "mean drop of p(true class)\nwhen occluded here"),
        (saliency_all.mean(axis=0), "magma", "mean |d logit_true / dx|")]):
    im = ax.imshow(img, cmap=cmap, extent=(-0.5, S - 0.5, S - 0.5, -0.5))
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=10)
    ax.set_xticks(range(0, S, 2)), ax.set_yticks(range(0, S, 2))
    ax.set_xlabel("column"), ax.set_ylabel("row")
plt.tight_layout()
plt.show()
ink = x_val[:, 0].mean(axis=0).reshape(G, 2, G, 2).mean(axis=(1, 3))    # (8, 8): per occluder cell
corr_ink = np.corrcoef(ink.ravel(), drop.mean(axis=0).ravel())[0, 1]
print(f"correlation between the mean digit and the mean occlusion drop: {corr_ink:.3f}")
assert corr_ink > 0.5

# %% [markdown]
# ## What we found
#
# * **Reproduced exactly (as identities).** The deconvnet's three operations are the layers'
#   backward passes: max-unpooling with the recorded switches equals `max_pool2d_backward`
#   bit for bit (and is the transpose of the selection the pooling made); the transposed
#   filters (`conv_transpose2d` with the conv's own weight array) equal `conv2d_backward`'s
#   input gradient, the naive scatter and gather loop nests of `deconv.kernels.naive`, and the
#   convolution with flipped, channel-swapped filters. Replacing the deconvnet's rectification
#   by the forward ReLU masks turns its projection into the input gradient, equal to the
#   model's hand-written backward to $10^{-10}$ and to central differences to $10^{-6}$ — which
#   is Simonyan et al.'s remark and the first of Springenberg et al.'s three rules.
# * **Reproduced qualitatively.** Top-9 activations of layer-2 maps come mostly from one or two
#   digit classes and a fixed part of the image; their deconvnet projections highlight the
#   strokes that drive them (the paper's Fig. 2). Occlusion (Fig. 7): the true-class
#   probability falls when the square covers the digit's strokes and not when it covers the
#   empty corners, and the strongest map's activation falls where its deconvnet projection
#   lies (median correlation printed above). For some digits one well-placed square typically
#   changes the decision, for others it does not (the classes are named in Section 8).
# * **What differs, and why.** Our network has two small convolutional layers on $16\times 16$
#   digits (upsampled from $8 \times 8$), not five on $224\times 224$ ImageNet photographs, so
#   there is no hierarchy from edges to object parts to see; the receptive field of a layer-2
#   unit covers a quarter of the image, a stroke or a loop. With a single ReLU below the visualised layer the deconvnet differs from the
#   gradient substantially (median relative difference above), but its extra independence
#   from the image is modest (mean pairwise cosine only slightly higher than the gradient's).
#   No map is dead (asserted in Section 6): with Adam at $10^{-2}$ and zero biases about a third
#   of the layer-2 maps used to die, and the recipe of Section 1 (a smaller learning rate,
#   positive initial biases) avoids it; the paper, too, uses its visualisation to find dead
#   features (Section 4.1, in the first layer of Krizhevsky et al.'s architecture) and changes
#   the architecture to avoid them. Our occluder is grey on a black background, so occluding
#   the background adds ink rather than hiding anything; that this barely matters in the
#   corners is a statement about this classifier.

# %% [markdown]
# ## Problems
#
# Work these on paper first, then check each with `deconv` in a new cell.
#
# 1. Max pooling with a $3 \times 3$ window and stride 2 has overlapping windows. Build a
#    $5 \times 5$ plane where one input is the maximum of two windows: what does
#    `max_pool2d_backward` give there, and what does `max_unpool2d` give? Which one is $S^\top$?
# 2. Show that the deconvnet projection of a unit is positively homogeneous of degree 1 in the
#    signal but not linear: find two signals $r, r'$ with
#    $\mathrm{proj}(r + r') \ne \mathrm{proj}(r) + \mathrm{proj}(r')$.
# 3. Extend the receptive-field recursion of Section 6 to a third conv (k = 3) after a second
#    pooling: what are $r$ and $\Delta$ of a layer-3 unit, and how large must the images be for
#    an interior unit's field not to overhang?
# 4. With one ReLU below layer 2, the deconvnet and guided backpropagation differ only at the
#    layer-1 ReLU. For which layer-1 units do they agree? Express the set with the signs of
#    $z_1$ and of the signal arriving there.
# 5. A dead map has $\max_{n, u, v} z_2[n, c, u, v] \le 0$ on the data. Why does no gradient
#    step ever revive it, and why does a positive initial bias make a dead map at the first step
#    less likely?

# %% [markdown]
# ## References
#
# * Zeiler, M. D., & Fergus, R. (2014). Visualizing and Understanding Convolutional Networks.
#   *European Conference on Computer Vision (ECCV 2014)*, LNCS 8689, 818–833.
#   arXiv:1311.2901.
# * Zeiler, M. D., Taylor, G. W., & Fergus, R. (2011). Adaptive Deconvolutional Networks for
#   Mid and High Level Feature Learning. *IEEE International Conference on Computer Vision
#   (ICCV 2011)*, 2018–2025.
# * Simonyan, K., Vedaldi, A., & Zisserman, A. (2014). Deep Inside Convolutional Networks:
#   Visualising Image Classification Models and Saliency Maps. *ICLR 2014 Workshop Track*.
#   arXiv:1312.6034.
# * Springenberg, J. T., Dosovitskiy, A., Brox, T., & Riedmiller, M. (2015). Striving for
#   Simplicity: The All Convolutional Net. *ICLR 2015 Workshop Track*. arXiv:1412.6806.
# * Krizhevsky, A., Sutskever, I., & Hinton, G. E. (2012). ImageNet Classification with Deep
#   Convolutional Neural Networks. *Advances in Neural Information Processing Systems 25
#   (NIPS 2012)*, 1097–1105.
