"""Numba kernels of the normalization layers: statistics, standardisation, backward.

Dimension letters: N batch, G groups (the statistics' second axis), K the
parameters per group (channels of a group, or the elements of LayerNorm's
normalized shape), S the inner (spatial) elements that share a parameter,
Ns the statistics' first axis: N when each sample has its own statistics
(GroupNorm, InstanceNorm, LayerNorm), 1 when they are taken over the batch
(BatchNorm) or given (running statistics, eval mode).

Every layer is one view of its input::

    x : (N, G, K, S)          y = xhat * weight[g, k] + bias[g, k]
    statistics (Ns, G)        xhat = (x - mean[ns, g]) * invstd[ns, g]

and the statistics of ``(ns, g)`` cover ``x[n, g]`` for the samples ``n``
of ``ns`` (one sample, or all of them). Each statistic is one ``prange``
job that reads its slab and writes only its own outputs: nothing is written
by two jobs, every sum runs in a fixed order inside its job (each row on
the vector lanes, then the lanes in a fixed tree, then the rows in order),
so the results are bitwise identical for any ``NUMBA_NUM_THREADS``.

Precision: every value is read in its own dtype and widened to float64; the
sums, the mean, the biased variance (below), ``xhat`` and the output are
float64, rounded once when stored in the output's dtype.

The statistics of a group take one pass of sums shifted by the group's first
value ``c``: ``mean = c + sum(x - c) / M`` and ``var = sum((x - c)**2) / M - d**2``
with ``d = mean - c``. That difference cancels when ``d**2`` is large
against ``var`` (the first value an outlier); where ``d**2 > SHIFT_GUARD * var``,
or either is not finite, the group takes the two exact passes instead (the
mean, then the sum of squared deviations from it, which does not cancel).
With ``d**2 <= SHIFT_GUARD * var`` the bound on the variance's relative
rounding error is ``SHIFT_GUARD + 1`` times the two passes' (that of the
sum of squares, ``(var + d**2) / var`` times larger). One pass instead of two
over a group: GroupNorm's forward on U-Net's (8, 64, 64, 64) float32, 8 groups,
2 threads, 0.46 -> 0.35 ms on an input in cache.

The kernels trust their arguments (C-contiguous, native byte order, the
shapes above, float64 parameters and statistics); :mod:`deconv.functional.
normalization` checks and allocates.
"""

import math

from numba import njit, prange


# The sums of one row. fastmath 'reassoc' (and no other flag: NaN and inf keep
# their meaning) lets LLVM vectorise them: the row is summed on the vector
# lanes, then the lanes in a fixed tree. The order is fixed by the compiled
# loop and the row's length, the same at every call and on every thread.

@njit(cache=True, fastmath={"reassoc"})
def _row_sum(row, shift):
    """``sum(row - shift)`` in float64."""
    total = 0.0
    for i in range(row.shape[0]):
        total += row[i] - shift
    return total


@njit(cache=True, fastmath={"reassoc"})
def _row_sum_squares(row, shift):
    """``sum((row - shift)**2)`` in float64."""
    total = 0.0
    for i in range(row.shape[0]):
        d = row[i] - shift
        total += d * d
    return total


@njit(cache=True, fastmath={"reassoc"})
def _row_shifted_sums(row, shift):
    """``(sum(row - shift), sum((row - shift)**2))`` in float64."""
    total = 0.0
    squares = 0.0
    for i in range(row.shape[0]):
        d = row[i] - shift
        total += d
        squares += d * d
    return total, squares


@njit(cache=True, fastmath={"reassoc"})
def _four_rows_shifted_sums(r0, r1, r2, r3, shift):
    """``_row_shifted_sums`` of four rows of one length at once, each row's two
    sums kept apart: ``(sum0, squares0, ..., sum3, squares3)``. Four streams
    from memory instead of one: a core keeps more reads in flight, which is
    what a pass over data just written (by the layer before, by the other
    core) waits on."""
    t0 = t1 = t2 = t3 = 0.0
    q0 = q1 = q2 = q3 = 0.0
    for i in range(r0.shape[0]):
        d0 = r0[i] - shift
        d1 = r1[i] - shift
        d2 = r2[i] - shift
        d3 = r3[i] - shift
        t0 += d0
        t1 += d1
        t2 += d2
        t3 += d3
        q0 += d0 * d0
        q1 += d1 * d1
        q2 += d2 * d2
        q3 += d3 * d3
    return t0, q0, t1, q1, t2, q2, t3, q3


@njit(cache=True)
def _standardize_row(x_row, y_row, m, r, w, b):
    """``y = ((x - m) * r) * w + b`` along a row, in float64, rounded once when stored."""
    for s in range(x_row.shape[0]):
        y_row[s] = ((x_row[s] - m) * r) * w + b


@njit(cache=True)
def _standardize_four_rows(x0, x1, x2, x3, y0, y1, y2, y3, m, r, w0, w1, w2, w3, b0, b1, b2,
                           b3):
    """``_standardize_row`` on four rows of one length at once (four streams each way)."""
    for s in range(x0.shape[0]):
        y0[s] = ((x0[s] - m) * r) * w0 + b0
        y1[s] = ((x1[s] - m) * r) * w1 + b1
        y2[s] = ((x2[s] - m) * r) * w2 + b2
        y3[s] = ((x3[s] - m) * r) * w3 + b3


#: the most ``d**2 / var`` (mean - shift, squared, over the variance) for which the
#: shifted one-pass variance is kept (see the module docstring): a first value more
#: than 4 standard deviations from its group's mean costs a second pass
SHIFT_GUARD = 16.0


@njit(cache=True, fastmath={"reassoc"})
def _row_sums_grad(g_row, x_row, shift):
    """``(sum(g), sum(g * (x - shift)))`` in float64."""
    sum_g = 0.0
    sum_gx = 0.0
    for i in range(g_row.shape[0]):
        g = 1.0 * g_row[i]
        sum_g += g
        sum_gx += g * (x_row[i] - shift)
    return sum_g, sum_gx


@njit(cache=True, parallel=True)
def norm_forward(x, weight, bias, eps, batch_stats, mean, var, invstd, y):
    """Statistics (unless given) and ``y = (x - mean) * invstd * weight + bias``.

    x : (N, G, K, S); weight, bias : (G, K) float64;
    mean, var, invstd : (Ns, G) float64; with ``batch_stats`` written here
    (biased variance, ``invstd = 1 / sqrt(var + eps)``), else ``mean`` and
    ``invstd`` are read and ``var`` is left alone;
    y : (N, G, K, S), written.
    """
    N, G, K, S = x.shape
    Ns = mean.shape[0]
    per = N // Ns                         # samples of one statistic: 1 or N
    for job in prange(Ns * G):
        ns = job // G
        g = job % G
        n_lo = ns * per
        # the statistic's rows (n, k), n = n_lo + q // K, k = q % K, in order:
        # four at a time, then the last few one by one
        rows = per * K
        quads = rows - rows % 4
        if batch_stats:
            count = per * K * S
            shift = 1.0 * x[n_lo, g, 0, 0]
            total = 0.0
            squares = 0.0
            for q in range(0, quads, 4):
                t0, s0, t1, s1, t2, s2, t3, s3 = _four_rows_shifted_sums(
                    x[n_lo + q // K, g, q % K], x[n_lo + (q + 1) // K, g, (q + 1) % K],
                    x[n_lo + (q + 2) // K, g, (q + 2) % K],
                    x[n_lo + (q + 3) // K, g, (q + 3) % K], shift)
                total += t0
                total += t1
                total += t2
                total += t3
                squares += s0
                squares += s1
                squares += s2
                squares += s3
            for q in range(quads, rows):
                a, b = _row_shifted_sums(x[n_lo + q // K, g, q % K], shift)
                total += a
                squares += b
            d = total / count
            m = shift + d
            v = squares / count - d * d
            # False for NaN and inf too: those take the two passes, as before
            if not (d * d <= SHIFT_GUARD * v and v < math.inf):
                total = 0.0
                for n in range(n_lo, n_lo + per):
                    for k in range(K):
                        total += _row_sum(x[n, g, k], 0.0)
                m = total / count
                squares = 0.0
                for n in range(n_lo, n_lo + per):
                    for k in range(K):
                        squares += _row_sum_squares(x[n, g, k], m)
                v = squares / count
            mean[ns, g] = m
            var[ns, g] = v
            invstd[ns, g] = 1.0 / math.sqrt(v + eps)
        m = mean[ns, g]
        r = invstd[ns, g]
        for q in range(0, quads, 4):
            n0, k0 = n_lo + q // K, q % K
            n1, k1 = n_lo + (q + 1) // K, (q + 1) % K
            n2, k2 = n_lo + (q + 2) // K, (q + 2) % K
            n3, k3 = n_lo + (q + 3) // K, (q + 3) % K
            _standardize_four_rows(x[n0, g, k0], x[n1, g, k1], x[n2, g, k2], x[n3, g, k3],
                                   y[n0, g, k0], y[n1, g, k1], y[n2, g, k2], y[n3, g, k3], m,
                                   r, weight[g, k0], weight[g, k1], weight[g, k2],
                                   weight[g, k3], bias[g, k0], bias[g, k1], bias[g, k2],
                                   bias[g, k3])
        for q in range(quads, rows):
            n, k = n_lo + q // K, q % K
            _standardize_row(x[n, g, k], y[n, g, k], m, r, weight[g, k], bias[g, k])
    return y


@njit(cache=True, parallel=True)
def norm_backward(grad_output, x, weight, mean, invstd, batch_stats, sum_g, sum_gxhat,
                  grad_input):
    """The parameter-gradient sums and the input gradient of :func:`norm_forward`.

    grad_output, x : (N, G, K, S); weight : (G, K) float64;
    mean, invstd : (Ns, G) float64, as the forward used them;
    sum_g, sum_gxhat : (Ns, G, K) float64, written: ``sum(grad_output)`` and
    ``sum(grad_output * xhat)`` of each ``(ns, g, k)`` over its samples and S;
    grad_input : (N, G, K, S), written. With ``batch_stats`` (the statistics
    came from ``x``), over the ``M = per * K * S`` elements of a statistic
    and with ``d = grad_output * weight``::

        grad_input = (d - mean(d) - xhat * mean(d * xhat)) * invstd

    else (given statistics) ``grad_input = d * invstd``.
    """
    N, G, K, S = x.shape
    Ns = mean.shape[0]
    per = N // Ns
    for job in prange(Ns * G):
        ns = job // G
        g = job % G
        n_lo = ns * per
        m = mean[ns, g]
        r = invstd[ns, g]
        sum_d = 0.0
        sum_dxhat = 0.0
        for k in range(K):
            sg = 0.0
            sgx = 0.0
            for n in range(n_lo, n_lo + per):
                a, b = _row_sums_grad(grad_output[n, g, k], x[n, g, k], m)
                sg += a
                sgx += b
            sgx *= r                      # sum(g * (x - mean)) * invstd = sum(g * xhat)
            sum_g[ns, g, k] = sg
            sum_gxhat[ns, g, k] = sgx
            sum_d += weight[g, k] * sg
            sum_dxhat += weight[g, k] * sgx
        count = per * K * S
        mean_d = sum_d / count
        mean_dxhat = sum_dxhat / count
        for n in range(n_lo, n_lo + per):
            for k in range(K):
                w = weight[g, k]
                g_row = grad_output[n, g, k]
                x_row = x[n, g, k]
                gi_row = grad_input[n, g, k]
                if batch_stats:
                    for s in range(S):
                        xhat = (x_row[s] - m) * r
                        gi_row[s] = (g_row[s] * w - mean_d - xhat * mean_dxhat) * r
                else:
                    # x does not enter: an infinite x still gives a finite gradient
                    for s in range(S):
                        gi_row[s] = (g_row[s] * w) * r
    return grad_input
