"""Shape arithmetic for every op, in one place.

Each function works on one spatial dimension (sizes are plain ints) and
raises ``ValueError`` when the configuration has no valid output, so that the
public ops, the layers and the notebooks all share one set of formulas. The
formulas are PyTorch's (and Dumoulin & Visin's, "A guide to convolution
arithmetic for deep learning", 2016):

======================  =====================================================
convolution             ``out = floor((L + p0 + p1 - d*(k-1) - 1) / s) + 1``
transposed convolution  ``out = (L-1)*s - 2p + d*(k-1) + output_padding + 1``
pooling                 ``out = floor_or_ceil((L + 2p - d*(k-1) - 1) / s) + 1``
                        (ceil mode keeps a last partial window only if
                        it starts inside the input or the left padding)
max unpooling           ``out = (L-1)*s - 2p + k``
adaptive pooling        ``out`` given; output ``o`` pools
                        ``[floor(o*L/out), ceil((o+1)*L/out))``
======================  =====================================================

Examples
--------
>>> from deconv import shapes
>>> shapes.conv_output_size(32, 3, stride=2, padding=1)
16
>>> shapes.conv_transpose_output_size(16, 3, stride=2, padding=1,
...     output_padding=shapes.inverse_output_padding(32, 3, stride=2, padding=1))
32
"""

import math

from deconv.kernels.adaptive import adaptive_window as _adaptive_window
from deconv.kernels.common import valid_range

# Plain Python (no Numba dispatch) for checks made once per call.
_tap_range = valid_range.py_func

__all__ = [
    "effective_kernel_size",
    "same_padding",
    "conv_output_size",
    "conv_transpose_output_size",
    "inverse_output_padding",
    "pool_output_size",
    "unpool_output_size",
    "upsample_output_size",
    "pool_window_has_input",
    "adaptive_pool_output_size",
    "adaptive_pool_window",
]


def effective_kernel_size(kernel_size, dilation=1):
    """Extent of a dilated kernel: ``d*(k-1) + 1``."""
    return dilation * (kernel_size - 1) + 1


def _pad_pair(padding):
    if isinstance(padding, tuple):
        return padding
    return (padding, padding)


def same_padding(kernel_size, dilation=1):
    """Padding ``(before, after)`` that keeps the size of a stride-1 convolution.

    The total is ``d*(k-1)``; when it is odd the extra element goes after
    (right/bottom), as in PyTorch's ``padding='same'``.

    >>> same_padding(4)
    (1, 2)
    """
    total = dilation * (kernel_size - 1)
    return (total // 2, total - total // 2)


def conv_output_size(input_size, kernel_size, stride=1, padding=0, dilation=1):
    """Output length of a convolution along one dimension.

    Parameters
    ----------
    input_size, kernel_size, stride, dilation : int
    padding : int or (int, int)
        Symmetric padding, or ``(before, after)``.

    Notes
    -----
    ``out = floor((L + p_before + p_after - d*(k-1) - 1) / s) + 1``.
    Raises ``ValueError`` when the dilated kernel is larger than the padded
    input (no output position).
    """
    before, after = _pad_pair(padding)
    padded = input_size + before + after
    extent = effective_kernel_size(kernel_size, dilation)
    if extent > padded:
        raise ValueError(
            f"kernel_size={kernel_size} (dilation={dilation}, extent {extent}) is larger "
            f"than the padded input (size {input_size} + padding {before}+{after} = {padded}); "
            f"expected a kernel extent <= the padded input size"
        )
    return (padded - extent) // stride + 1


def conv_transpose_output_size(input_size, kernel_size, stride=1, padding=0,
                               output_padding=0, dilation=1):
    """Output length of a transposed convolution along one dimension.

    Parameters
    ----------
    input_size, kernel_size, stride, output_padding, dilation : int
    padding : int or (int, int)
        Cropped from both ends, or ``(before, after)`` (the transposed
        ``'same'``, see :func:`same_padding`).

    Notes
    -----
    ``out = (L-1)*s - 2p + d*(k-1) + output_padding + 1`` (``p_before +
    p_after`` for ``2p``): the input length of the convolution whose adjoint
    this is. A strided convolution maps ``s`` different input lengths to the
    same output length; ``output_padding`` (``0 <= output_padding < max(s,
    d)``) chooses among them, see :func:`inverse_output_padding` and
    :func:`conv_transpose_size_range`.
    """
    before, after = _pad_pair(padding)
    if output_padding >= max(stride, dilation):
        raise ValueError(
            f"output_padding={output_padding} must be smaller than max(stride, dilation)="
            f"{max(stride, dilation)} (stride={stride}, dilation={dilation})"
        )
    out = ((input_size - 1) * stride - before - after + dilation * (kernel_size - 1)
           + output_padding + 1)
    if out < 1:
        raise ValueError(
            f"transposed convolution output size would be {out} (input size {input_size}, "
            f"kernel_size={kernel_size}, stride={stride}, padding={padding}, "
            f"output_padding={output_padding}, dilation={dilation}); expected >= 1"
        )
    return out


def inverse_output_padding(input_size, kernel_size, stride=1, padding=0, dilation=1):
    """The ``output_padding`` with which a transposed conv restores ``input_size``.

    For a convolution ``L -> conv_output_size(L, ...)``, the transposed
    convolution with the same ``kernel_size, stride, padding, dilation`` and
    this ``output_padding`` maps the output length back to exactly ``L``.

    >>> inverse_output_padding(32, 3, stride=2, padding=1)   # 32 -> 16 -> 32
    1
    """
    out = conv_output_size(input_size, kernel_size, stride, padding, dilation)
    return input_size - ((out - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + 1)


def _check_pool_padding(kernel_size, padding):
    if padding > kernel_size // 2:
        raise ValueError(
            f"padding={padding} must be at most half of kernel_size={kernel_size} "
            f"(<= {kernel_size // 2}), as in PyTorch"
        )


def pool_output_size(input_size, kernel_size, stride=None, padding=0, dilation=1,
                     ceil_mode=False):
    """Output length of max/avg pooling along one dimension.

    Notes
    -----
    ``out = floor((L + 2p - d*(k-1) - 1) / s) + 1`` (``ceil`` with
    ``ceil_mode``); in ceil mode a last window whose start ``(out-1)*s - p``
    would be at or beyond ``L`` (in the right padding) is dropped, as in
    PyTorch. ``stride=None`` means ``stride = kernel_size``. Padding may be
    at most ``k // 2``.
    """
    if stride is None:
        stride = kernel_size
    _check_pool_padding(kernel_size, padding)
    extent = effective_kernel_size(kernel_size, dilation)
    span = input_size + 2 * padding - extent
    if span < 0:
        raise ValueError(
            f"kernel_size={kernel_size} (dilation={dilation}, extent {extent}) is larger than "
            f"the padded input (size {input_size} + 2*padding {padding} = {input_size + 2 * padding})"
        )
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= input_size + padding:
            out -= 1
    else:
        out = span // stride + 1
    return out


def pool_window_has_input(input_size, output_size, kernel_size, stride, padding, dilation):
    """True when every pooling window holds at least one input element.

    With dilation, a window can straddle a short input and see only
    padding; the maximum of such a window is undefined, so max pooling
    refuses it (PyTorch returns an out-of-range index there).
    """
    # The taps of window o inside [0, L) are an index range found by
    # arithmetic (the kernels' valid_range, run as plain Python): O(outputs),
    # whatever kernel_size is.
    for o in range(output_size):
        lo, hi = _tap_range(o * stride - padding, dilation, kernel_size, input_size)
        if lo >= hi:
            return False
    return True


def unpool_output_size(input_size, kernel_size, stride=None, padding=0):
    """Default output length of max unpooling: ``(L-1)*s - 2p + k``."""
    if stride is None:
        stride = kernel_size
    return (input_size - 1) * stride - 2 * padding + kernel_size


def upsample_output_size(input_size, size=None, scale_factor=None):
    """Output length of upsampling: ``size``, or ``floor(L * scale_factor)``."""
    if size is not None:
        return size
    return int(math.floor(float(input_size) * float(scale_factor)))


# --- fold / unfold (issue 13) ---

__all__ += ["sliding_blocks"]


def sliding_blocks(input_size, kernel_size, dilation=1, padding=0, stride=1):
    """Number of sliding blocks along one dimension of ``unfold`` / ``fold``.

    ``unfold`` extracts, and ``fold`` sums back, one block per position of a
    convolution window, so the count is the convolution's output length.

    Notes
    -----
    ``out = floor((L + 2p - d*(k-1) - 1) / s) + 1``, and the number of
    blocks of an image is ``L_blocks = out_H * out_W``. Raises
    ``ValueError`` when the dilated block is larger than the padded input
    (PyTorch: "its components must be at least one").

    >>> sliding_blocks(4, 2)
    3
    >>> sliding_blocks(5, 3, dilation=2, padding=1, stride=2)
    2
    """
    return conv_output_size(input_size, kernel_size, stride, padding, dilation)


def adaptive_pool_output_size(input_size, output_size):
    """Output length of adaptive pooling: ``output_size``, or ``input_size`` for None.

    PyTorch lets an entry of ``output_size`` be None to keep that axis.

    Examples
    --------
    >>> from deconv import shapes
    >>> shapes.adaptive_pool_output_size(7, 3), shapes.adaptive_pool_output_size(7, None)
    (3, 7)
    """
    return input_size if output_size is None else output_size


def adaptive_pool_window(index, input_size, output_size):
    """Input range ``(start, end)`` that output ``index`` of adaptive pooling reduces.

    Notes
    -----
    ``start = floor(index*L/out)``, ``end = ceil((index+1)*L/out)``
    (PyTorch's rule): the windows cover ``[0, L)``, each holds at least one
    element, and neighbours overlap by one when ``L`` is not a multiple of
    ``out``. The kernels use this very function, compiled.

    Examples
    --------
    >>> from deconv import shapes
    >>> [shapes.adaptive_pool_window(o, 5, 3) for o in range(3)]
    [(0, 2), (1, 4), (3, 5)]
    >>> [shapes.adaptive_pool_window(o, 2, 3) for o in range(3)]
    [(0, 1), (0, 2), (1, 2)]
    """
    start, end = _adaptive_window.py_func(index, input_size, output_size)
    return int(start), int(end)


def pad_output_size(input_size, before, after):
    """Length of one axis after padding: ``out = L + before + after``.

    A negative pad crops that side (PyTorch's ``F.pad``); the checks of what
    each mode allows live in :mod:`deconv.functional.padding`.

    >>> pad_output_size(5, 2, 3)
    10
    >>> pad_output_size(5, -1, 2)
    6
    """
    return input_size + before + after


def pad_kept_size(input_size, before, after):
    """How many input positions a pad keeps: ``L - max(-before, 0) - max(-after, 0)``.

    The negative pads crop; circular padding wraps around this kept part.

    >>> pad_kept_size(5, -1, 2)
    4
    """
    return input_size - max(-before, 0) - max(-after, 0)


__all__ += ["pad_output_size", "pad_kept_size"]


# --- transposed-conv output sizes (issue 13) ---

__all__ += ["conv_transpose_size_range"]


def conv_transpose_size_range(input_size, kernel_size, stride=1, padding=0, dilation=1):
    """The output lengths ``(smallest, largest)`` a transposed conv's ``output_size`` may ask for.

    Parameters
    ----------
    input_size, kernel_size, stride, dilation : int
    padding : int or (int, int)
        As in :func:`conv_transpose_output_size`.

    Notes
    -----
    ``smallest = (L-1)*s - 2p + d*(k-1) + 1`` (the output with
    ``output_padding=0``) and ``largest = smallest + s - 1``: the ``s`` input
    lengths of the strided convolution that give ``L``. The ``output_padding``
    that gives ``out`` is ``out - smallest``. This is PyTorch's rule for
    ``ConvTranspose{1,2}d.forward(x, output_size)``, dilation or not (the
    functional op's ``output_padding < max(s, d)`` allows more when ``d > s``,
    the layer's ``output_size`` does not). When ``smallest < 1`` the range
    starts at 1; raises ``ValueError`` when no length >= 1 is in it.

    >>> conv_transpose_size_range(16, 3, stride=2, padding=1)   # 31 or 32
    (31, 32)
    >>> conv_transpose_size_range(5, 4, padding=(1, 2))         # the transposed 'same'
    (5, 5)
    """
    before, after = _pad_pair(padding)
    smallest = (input_size - 1) * stride - before - after + dilation * (kernel_size - 1) + 1
    largest = smallest + stride - 1
    if largest < 1:
        raise ValueError(
            f"a transposed convolution of input size {input_size} (kernel_size={kernel_size}, "
            f"stride={stride}, padding={padding}, dilation={dilation}) has no output size >= 1: "
            f"(L-1)*stride - 2*padding + dilation*(kernel_size-1) + 1 = {smallest}, "
            f"up to {largest} with output_padding"
        )
    return max(smallest, 1), largest


__all__ += ["conv_transpose_output_padding"]


def conv_transpose_output_padding(output_size, input_size, kernel_size, stride=1, padding=0,
                                  dilation=1):
    """The ``output_padding`` with which a transposed conv gives ``output_size``.

    Notes
    -----
    ``output_padding = out - ((L-1)*s - 2p + d*(k-1) + 1)``, for ``out`` in
    :func:`conv_transpose_size_range`; any other ``out`` raises
    ``ValueError`` naming that range.

    >>> conv_transpose_output_padding(32, 16, 3, stride=2, padding=1)
    1
    """
    smallest, largest = conv_transpose_size_range(input_size, kernel_size, stride, padding,
                                                  dilation)
    if not smallest <= output_size <= largest:
        raise ValueError(
            f"output_size {output_size} is impossible: expected a size in [{smallest}, "
            f"{largest}] ((L-1)*stride - 2*padding + dilation*(kernel_size-1) + 1, plus "
            f"0 to stride-1; L={input_size}, kernel_size={kernel_size}, stride={stride}, "
            f"padding={padding}, dilation={dilation})"
        )
    return output_size - (largest - stride + 1)


# issue 13: the 3-D family
def depth_runs(input_size, output_size, kernel, stride, padding, dilation):
    """The outputs of a 1-D correlation cut into runs that read the same taps.

    Output ``o`` reads input ``i = o*s + j*d - p`` through tap ``j``; the taps
    with ``i`` inside ``[0, input_size)`` are a range ``[lo, hi)`` (``i``
    grows with ``j``), which changes only near the two ends. Each run is
    ``(first, count, lo, hi, start)``: the outputs ``first .. first + count - 1``
    all read the taps ``lo .. hi - 1``, output ``first + m`` starting at input
    ``start + m*s``. The runs cover ``[0, output_size)`` in order; a run with
    ``lo == hi`` reads nothing (only padding; its ``start`` is 0). The 3-D convolutions walk the
    depth axis by these runs (:mod:`deconv.functional.conv`): taps over the
    padding are never visited, however large the padding or the dilation.

    >>> depth_runs(5, 3, 3, 2, 1, 1)
    [(0, 1, 1, 3, 0), (1, 1, 0, 3, 1), (2, 1, 0, 2, 3)]
    >>> depth_runs(32, 32, 3, 1, 1, 1)
    [(0, 1, 1, 3, 0), (1, 30, 0, 3, 0), (31, 1, 0, 2, 30)]
    >>> depth_runs(1, 3, 3, 1, 2, 1)
    [(0, 1, 2, 3, 0), (1, 1, 1, 2, 0), (2, 1, 0, 1, 0)]
    >>> depth_runs(1, 1, 2, 1, 2**19, 2**20)
    [(0, 1, 0, 0, 0)]
    """
    def taps(o):
        # j*d >= p - o*s and j*d <= input_size - 1 + p - o*s
        lo = max(0, -((o * stride - padding) // dilation))
        hi = min(kernel, (input_size - 1 + padding - o * stride) // dilation + 1)
        return (lo, hi) if hi > lo else (0, 0)

    # the tap range changes only where o*s crosses a tap's edge of the input:
    # at most 2*kernel places, found without visiting every output
    edges = {0, output_size}
    for j in range(kernel):
        for bound in (padding - j * dilation, input_size + padding - j * dilation):
            o = -(-bound // stride)                 # the first o with o*s >= bound
            if 0 < o < output_size:
                edges.add(o)
    edges = sorted(edges)
    runs = []
    for first, end in zip(edges[:-1], edges[1:]):
        lo, hi = taps(first)
        if runs and runs[-1][2:4] == (lo, hi) and runs[-1][0] + runs[-1][1] == first:
            f, c, _, _, st = runs.pop()
            runs.append((f, c + end - first, lo, hi, st))
            continue
        start = first * stride + lo * dilation - padding if hi > lo else 0
        runs.append((first, end - first, lo, hi, start))
    return runs


__all__ += ["depth_runs"]


def avg_pool_divisors(input_size, output_size, kernel_size, stride, padding, count_include_pad):
    """Per-axis factor of the average-pooling divisor, one per output (a list of ints).

    Window ``o`` spans ``[start, end) = [o*s - p, min(o*s - p + k, L + p))``;
    the factor is ``end - start`` with ``count_include_pad``, else the part
    inside ``[0, L)``. PyTorch's divisor is the product of the factors of
    the axes (or ``divisor_override``), so a pooling over several axes can
    sum axis by axis and divide once.

    >>> avg_pool_divisors(5, 3, 3, 2, 1, True)
    [3, 3, 3]
    >>> avg_pool_divisors(5, 3, 3, 2, 1, False)
    [2, 3, 2]
    """
    factors = []
    for o in range(output_size):
        start = o * stride - padding
        end = min(start + kernel_size, input_size + padding)
        factors.append(end - start if count_include_pad
                       else min(end, input_size) - max(start, 0))
    return factors


__all__ += ["avg_pool_divisors"]
