"""Unfold (im2col) and fold (col2im), forward and backward.

Public, validated wrappers around the Numba kernels of
:mod:`deconv.kernels.fold`, with the argument names and semantics of
``torch.nn.functional.unfold`` and ``torch.nn.functional.fold``.
:func:`unfold` lays every sliding block of an ``(N, C, H, W)`` image out as
a column of an ``(N, C*kH*kW, L)`` matrix; :func:`fold` sums such columns
back into an image. Each is the other's adjoint, so the backward of one is
the other (:func:`unfold_backward`, :func:`fold_backward`).

This is the view of convolution as a matrix product: ``conv2d(x, w)`` is
``w.reshape(C_out, -1) @ unfold(x, k)`` reshaped to the output image, and
``conv_transpose2d(y, w)`` is ``fold(w.reshape(C_in, -1).T @ y)``.

Every argument a user can get wrong is checked before any work, and raises
``TypeError`` (wrong kind of thing) or ``ValueError`` (wrong value) naming
the argument, the value and what was expected; the output is then held to
the byte cap, and only then are the inputs made contiguous. float32 in
gives float32 out; inputs are never written to.
"""

from deconv.kernels import fold as _k
from deconv.functional import shapes
from deconv.kernels.threads import call
from deconv.functional.validation import (
    LAYOUT,
    as_float_array,
    as_positive_tuple,
    as_tuple,
    check_activation,
    check_bytes,
    check_ndim,
    check_shape_tuple,
    kernel_ready,
)

__all__ = ["unfold", "unfold_backward", "fold", "fold_backward"]

# how error messages name the layout of a column matrix
COLUMNS = "(N, C*kH*kW, L)"


def _options(kernel_size, dilation, padding, stride):
    """The four block options as 2-tuples: kernel, dilation and stride >= 1, padding >= 0."""
    k = as_positive_tuple(kernel_size, 2, "kernel_size")
    d = as_positive_tuple(dilation, 2, "dilation")
    p = as_tuple(padding, 2, "padding", minimum=0)
    s = as_positive_tuple(stride, 2, "stride")
    return k, d, p, s


def _blocks(spatial, k, d, p, s, where):
    """Blocks per axis (H_out, W_out) of an image of size ``spatial``; ``where`` names it."""
    out = []
    for axis, L, kk, dd, pp, ss in zip("HW", spatial, k, d, p, s):
        try:
            out.append(shapes.sliding_blocks(L, kk, dd, pp, ss))
        except ValueError as err:
            raise ValueError(f"{err} (axis {axis} of {where}); there would be no sliding "
                             f"block") from None
    return tuple(out)


def _describe_options(k, d, p, s):
    return f"kernel_size={k}, dilation={d}, padding={p}, stride={s}"


def _unfold_blocks(image, k, d, p, s, where):
    """Blocks per axis of a checked image ``(N, C, H, W)``, its columns held to the byte cap."""
    H_out, W_out = _blocks(image.shape[2:], k, d, p, s, where)
    N, C = image.shape[:2]
    check_bytes("output", ((N, C * k[0] * k[1], H_out * W_out), image.dtype))
    return H_out, W_out


def _run_unfold(image, name, k, d, p, s, H_out, W_out):
    image = kernel_ready(image, name)
    return call(_k.unfold_forward, image, k[0], k[1], d[0], d[1], p[0], p[1], s[0], s[1],
                H_out, W_out)


def _run_fold(cols, name, C, size, k, d, p, s, H_out, W_out):
    cols = kernel_ready(cols, name)
    return call(_k.fold_forward, cols, C, size[0], size[1], k[0], k[1], d[0], d[1], p[0], p[1],
                s[0], s[1], H_out, W_out)


def unfold(x, kernel_size, dilation=1, padding=0, stride=1):
    """Extract sliding blocks as columns, im2col (``torch.nn.functional.unfold``).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        float32 or float64; ``H, W >= 1``, ``N`` and ``C`` may be 0.
    kernel_size : int or (int, int)
        Block size ``(kH, kW)``, each ``>= 1``.
    dilation : int or (int, int), default 1
        Spacing between the taps of a block, each ``>= 1``.
    padding : int or (int, int), default 0
        Implicit zeros on both sides of each axis, each ``>= 0``.
    stride : int or (int, int), default 1
        Step between blocks, each ``>= 1``.

    Returns
    -------
    columns : ndarray, shape (N, C*kH*kW, L)
        Dtype of ``x``. Row ``(c*kH + i)*kW + j`` holds tap ``(i, j)`` of
        channel ``c`` and column ``oh*W_out + ow`` block ``(oh, ow)``:
        ``columns[n, (c*kH + i)*kW + j, oh*W_out + ow] =
        x_padded[n, c, oh*sH + i*dH, ow*sW + j*dW]``.

    Raises
    ------
    TypeError, ValueError
        For invalid arguments, including a dilated block larger than the
        padded image (no block), and unbatched ``(C, H, W)`` input, which
        PyTorch accepts (pass ``x[None]``).

    Notes
    -----
    Per axis, ``H_out = floor((H + 2pH - dH*(kH-1) - 1) / sH) + 1``
    (likewise ``W_out``), the output size of a convolution with the same
    options, and ``L = H_out * W_out``.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import unfold
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> unfold(x, 2)
    array([[[0., 1., 3., 4.],
            [1., 2., 4., 5.],
            [3., 4., 6., 7.],
            [4., 5., 7., 8.]]])
    """
    x = check_activation(x, "x", 2)
    k, d, p, s = _options(kernel_size, dilation, padding, stride)
    H_out, W_out = _unfold_blocks(x, k, d, p, s, f"x with shape {x.shape}")
    return _run_unfold(x, "x", k, d, p, s, H_out, W_out)


def _check_columns(cols, name, k, size, blocks, where, d, p, s):
    """``cols`` (3-D) has C*kH*kW rows and one column per block; returns C.

    ``where`` says which argument gave the image size ``size``.
    """
    rows = k[0] * k[1]
    if cols.shape[1] % rows:
        raise ValueError(
            f"{name} must have a number of rows (axis 1) divisible by kH*kW = {rows} "
            f"(kernel_size={k}), got shape {cols.shape}"
        )
    L = blocks[0] * blocks[1]
    if cols.shape[2] != L:
        raise ValueError(
            f"{name} must have L = {blocks[0]} * {blocks[1]} = {L} columns (axis 2), the "
            f"sliding blocks of {where}={size} with {_describe_options(k, d, p, s)}, got "
            f"shape {cols.shape}"
        )
    return cols.shape[1] // rows


def fold(x, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Sum columns of sliding blocks into an image, col2im (``torch.nn.functional.fold``).

    Parameters
    ----------
    x : ndarray, shape (N, C*kH*kW, L)
        float32 or float64 columns, laid out as :func:`unfold` returns
        them; ``N`` and ``C`` may be 0.
    output_size : int or (int, int)
        Image size ``(H, W)``, each ``>= 1``.
    kernel_size : int or (int, int)
        Block size ``(kH, kW)``, each ``>= 1``.
    dilation : int or (int, int), default 1
    padding : int or (int, int), default 0
        Each ``>= 0``; block taps in the padding are dropped.
    stride : int or (int, int), default 1

    Returns
    -------
    output : ndarray, shape (N, C, H, W)
        Dtype of ``x``; where blocks overlap their entries are summed.

    Raises
    ------
    TypeError, ValueError
        For invalid arguments: axis 1 of ``x`` not a multiple of
        ``kH*kW``, ``L`` not the block count of ``output_size`` (as in
        PyTorch), and unbatched ``(C*kH*kW, L)`` input, which PyTorch
        accepts (pass ``x[None]``).

    Notes
    -----
    ``L`` must equal ``H_out * W_out`` with
    ``H_out = floor((H + 2pH - dH*(kH-1) - 1) / sH) + 1`` (likewise
    ``W_out``). ``fold`` is the adjoint of :func:`unfold` (not its
    inverse): ``fold(unfold(x))`` multiplies each pixel by the number of
    blocks that cover it.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import fold
    >>> fold(np.ones((1, 4, 4)), (3, 3), 2)[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    x = as_float_array(x, "x")
    check_ndim(x, "x", 3, COLUMNS)
    size = as_positive_tuple(output_size, 2, "output_size")
    k, d, p, s = _options(kernel_size, dilation, padding, stride)
    blocks = _blocks(size, k, d, p, s, f"output_size={size}")
    C = _check_columns(x, "x", k, size, blocks, "output_size", d, p, s)
    check_bytes("output", (x.shape[:1] + (C,) + size, x.dtype))
    return _run_fold(x, "x", C, size, k, d, p, s, *blocks)


def unfold_backward(grad_output, input_shape, kernel_size, *, dilation=1, padding=0, stride=1):
    """Gradient of :func:`unfold` with respect to its input: a :func:`fold`.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C*kH*kW, L)
        Gradient with respect to the columns (float32 or float64).
    input_shape : tuple of 4 ints
        ``(N, C, H, W)``, the shape of the unfolded image.
    kernel_size
        As given to :func:`unfold`.
    dilation, padding, stride : keyword-only
        As given to :func:`unfold`.

    Returns
    -------
    grad_input : ndarray, shape (N, C, H, W)
        Dtype of ``grad_output``.

    Notes
    -----
    ``L = H_out * W_out`` with
    ``H_out = floor((H + 2pH - dH*(kH-1) - 1) / sH) + 1`` (likewise
    ``W_out``), the forward's block count. Each pixel receives the sum of
    the gradients of every column entry that copied it; entries copied from
    the padding are dropped. Each (n, c) plane is summed by one thread in a
    fixed order, so results do not depend on the number of threads.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import unfold_backward
    >>> unfold_backward(np.ones((1, 4, 4)), (1, 1, 3, 3), 2)[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    grad_output = as_float_array(grad_output, "grad_output")
    check_ndim(grad_output, "grad_output", 3, COLUMNS)
    shape = check_shape_tuple(input_shape, 4, "input_shape", LAYOUT[2])
    if any(size < 1 for size in shape[2:]):
        raise ValueError(f"input_shape must have spatial sizes >= 1, got {input_shape!r}")
    k, d, p, s = _options(kernel_size, dilation, padding, stride)
    blocks = _blocks(shape[2:], k, d, p, s, f"input_shape={shape}")
    expected = (shape[0], shape[1] * k[0] * k[1], blocks[0] * blocks[1])
    if grad_output.shape != expected:
        raise ValueError(
            f"grad_output must have shape {expected} (N, C*kH*kW, L), the unfold output for "
            f"input_shape={shape} with {_describe_options(k, d, p, s)}, got "
            f"{grad_output.shape}"
        )
    check_bytes("output", (shape, grad_output.dtype))
    return _run_fold(grad_output, "grad_output", shape[1], shape[2:], k, d, p, s, *blocks)


def fold_backward(grad_output, kernel_size, *, dilation=1, padding=0, stride=1):
    """Gradient of :func:`fold` with respect to its input: an :func:`unfold`.

    Parameters
    ----------
    grad_output : ndarray, shape (N, C, H, W)
        Gradient with respect to the folded image (float32 or float64);
        ``(H, W)`` is the forward's ``output_size``.
    kernel_size
        As given to :func:`fold`.
    dilation, padding, stride : keyword-only
        As given to :func:`fold`.

    Returns
    -------
    grad_x : ndarray, shape (N, C*kH*kW, L)
        Dtype of ``grad_output``; zero for the entries the forward dropped
        (taps in the padding).

    Notes
    -----
    ``L = H_out * W_out`` with
    ``H_out = floor((H + 2pH - dH*(kH-1) - 1) / sH) + 1`` (likewise
    ``W_out``), the forward's block count.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import fold_backward
    >>> fold_backward(np.arange(4.0).reshape(1, 1, 2, 2), 1)
    array([[[0., 1., 2., 3.]]])
    """
    grad_output = check_activation(grad_output, "grad_output", 2)
    k, d, p, s = _options(kernel_size, dilation, padding, stride)
    H_out, W_out = _unfold_blocks(grad_output, k, d, p, s,
                                  f"grad_output with shape {grad_output.shape}")
    return _run_unfold(grad_output, "grad_output", k, d, p, s, H_out, W_out)
