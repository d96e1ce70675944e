"""Numba kernels for padding (constant, reflect, replicate, circular) and its adjoint.

Dimension letters: N batch, C channels, D, H, W the spatial sizes of the
input, ``*_out`` those of the output. 1-D and 2-D padding run on a 5-D view
with dummy axes of size 1.

Every mode is a gather through per-axis *source tables*: output position
``j`` of an axis reads input position ``src[j]``, or the fill ``value``
when ``src[j] == -1`` (constant mode only). The tables are built by
:mod:`deconv.functional.padding`; the kernels know nothing of the modes.

The backward scatters each output gradient into its source position. Every
``prange`` iteration owns one input plane ``(n, c)`` (the modes never mix
planes: leading axes are only ever shifted or cropped), so no element is
written by two threads, and each element sums its contributions in output
order: results are bitwise identical whatever ``NUMBA_NUM_THREADS`` is.

The kernels trust their arguments (C-contiguous, one float dtype, tables in
range); outputs are allocated by the wrappers and passed in.
"""

from numba import njit, prange


@njit(cache=True, parallel=True)
def pad_forward(x, src_n, src_c, src_d, src_h, src_w, value, out):
    """out[n, c, d, h, w] = x[src_n[n], src_c[c], src_d[d], src_h[h], src_w[w]], or value.

    x : (N, C, D, H, W); src_* : int64 tables of the output sizes, -1 where
    the output is the fill; value : a scalar of x's dtype;
    out : (N_out, C_out, D_out, H_out, W_out), written and returned.
    """
    N_out, C_out, D_out, H_out, W_out = out.shape
    for q in prange(N_out * C_out):
        n = q // C_out
        c = q - n * C_out
        sn = src_n[n]
        sc = src_c[c]
        o_plane = out[n, c]
        if sn < 0 or sc < 0:
            for d in range(D_out):
                for h in range(H_out):
                    for w in range(W_out):
                        o_plane[d, h, w] = value
            continue
        x_plane = x[sn, sc]
        for d in range(D_out):
            sd = src_d[d]
            for h in range(H_out):
                sh = src_h[h]
                o_row = o_plane[d, h]
                if sd < 0 or sh < 0:
                    for w in range(W_out):
                        o_row[w] = value
                    continue
                x_row = x_plane[sd, sh]
                for w in range(W_out):
                    sw = src_w[w]
                    o_row[w] = x_row[sw] if sw >= 0 else value
    return out


@njit(cache=True, parallel=True)
def pad_backward(grad_output, out_n, out_c, src_d, src_h, src_w, grad_input):
    """Adjoint of :func:`pad_forward` in x: a scatter-add, one input plane per iteration.

    grad_output : (N_out, C_out, D_out, H_out, W_out); out_n : (N,) int64,
    the output batch index whose source is input batch index ``n`` (-1 when
    cropped away), out_c : (C,) likewise; src_d, src_h, src_w : the
    forward's spatial tables. grad_input : (N, C, D, H, W), written and
    returned: ``grad_input[n, c, i, j, k]`` is the sum of ``grad_output``
    over the outputs of plane ``(out_n[n], out_c[c])`` that read it.
    """
    N, C, D, H, W = grad_input.shape
    D_out = src_d.shape[0]
    H_out = src_h.shape[0]
    W_out = src_w.shape[0]
    zero = grad_input.dtype.type(0)
    for p in prange(N * C):
        n = p // C
        c = p - n * C
        gi = grad_input[n, c]
        for d in range(D):
            for h in range(H):
                for w in range(W):
                    gi[d, h, w] = zero
        on = out_n[n]
        oc = out_c[c]
        if on < 0 or oc < 0:
            continue
        g = grad_output[on, oc]
        for d in range(D_out):
            sd = src_d[d]
            if sd < 0:
                continue
            for h in range(H_out):
                sh = src_h[h]
                if sh < 0:
                    continue
                g_row = g[d, h]
                gi_row = gi[sd, sh]
                for w in range(W_out):
                    sw = src_w[w]
                    if sw >= 0:
                        gi_row[sw] += g_row[w]
    return grad_input
