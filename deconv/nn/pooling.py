"""Pooling and unpooling layers: MaxPool1d/2d/3d, AvgPool1d/2d/3d, MaxUnpool1d/2d/3d.

Each kind has one shared class (:class:`_MaxPoolNd`, :class:`_AvgPoolNd`,
:class:`_MaxUnpoolNd`) whose subclasses fix the number of spatial axes; the
computation is that of :mod:`deconv.functional.pooling`.
"""

import numpy as np

from deconv.functional import pooling as _pool
from deconv.functional.validation import as_bool, as_positive_int, as_tuple
from deconv.nn.module import Module, prefixed

__all__ = ["MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "MaxUnpool1d", "MaxUnpool2d"]


def _window(module, kernel_size, stride, padding):
    """Check and store the window of a pool layer: ``kernel_size``, ``stride``, ``padding``.

    ``stride`` None (or, as in torch, an empty sequence) means
    ``kernel_size``; ``padding`` is at most half the window per axis.
    """
    nd = module._nd
    module.kernel_size = as_tuple(kernel_size, nd, "kernel_size", minimum=1)
    default_stride = stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0)
    module.stride = (module.kernel_size if default_stride
                     else as_tuple(stride, nd, "stride", minimum=1))
    module.padding = as_tuple(padding, nd, "padding", minimum=0)
    for p, k in zip(module.padding, module.kernel_size):
        if p > k // 2:
            raise ValueError(
                f"padding={module.padding} must be at most half of kernel_size="
                f"{module.kernel_size} per axis")


class _MaxPoolNd(Module):
    """The shared body of :class:`MaxPool1d` and :class:`MaxPool2d` (``_nd`` spatial axes)."""

    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        """Check and store the arguments; errors name the public class."""
        super().__init__()
        nd = self._nd
        with prefixed(type(self).__name__):
            _window(self, kernel_size, stride, padding)
            self.dilation = as_tuple(dilation, nd, "dilation", minimum=1)
            self.ceil_mode = as_bool(ceil_mode, "ceil_mode")

    def extra_repr(self):
        """The window and the options that differ from the defaults."""
        s = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self.ceil_mode:
            s += ", ceil_mode=True"
        return s

    @property
    def last_indices(self):
        """int64 switches of the last forward, shape of its output (None before any forward)."""
        return None if self._cache is None else self._cache["indices"]

    @property
    def last_input_shape(self):
        """Shape of the last forward's input (None before any forward)."""
        return None if self._cache is None else self._cache["input_shape"]

    def forward(self, x):
        """Max-pool ``x`` and record the switches (argmax indices).

        Parameters
        ----------
        x : ndarray, shape (N, C, *spatial)

        Returns
        -------
        y : ndarray, shape (N, C, *spatial_out)
        """
        x = self._input(x, self._nd + 2)
        fn = getattr(_pool, f"max_pool{self._nd}d")
        with prefixed(self):
            y, idx = fn(x, self.kernel_size, stride=self.stride, padding=self.padding,
                        dilation=self.dilation, ceil_mode=self.ceil_mode)
        self._save(y, indices=idx, input_shape=x.shape)
        return y

    def backward(self, grad_output):
        """Route each output gradient to its switch; overlapping windows accumulate.

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        c, g = self._saved_and_grad(grad_output)
        fn = getattr(_pool, f"max_pool{self._nd}d_backward")
        with prefixed(self):
            return fn(g, c["indices"], c["input_shape"])


class MaxPool1d(_MaxPoolNd):
    """1-D max pooling, as ``torch.nn.MaxPool1d``, through :func:`deconv.max_pool1d`.

    Parameters
    ----------
    kernel_size : int or (int,)
    stride : int or (int,), optional
        Default ``kernel_size``.
    padding : int or (int,), default 0
        At most ``kernel_size // 2``.
    dilation : int or (int,), default 1
    ceil_mode : bool, default False

    Notes
    -----
    Input ``(N, C, L)``, output ``(N, C, L_out)`` with
    ``L_out = floor((L + 2p - d*(k-1) - 1)/s) + 1`` (ceil with ``ceil_mode``).
    The switches of the last forward are kept in :attr:`last_indices`
    (torch's ``return_indices`` is not needed: :class:`MaxUnpool1d` reads
    them from this layer).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> pool = nn.MaxPool1d(2)
    >>> pool(np.array([[[1., 3., 2., 5., 4.]]]))
    array([[[3., 5.]]])
    >>> pool.last_indices
    array([[[1, 3]]])
    """
    _nd = 1


class MaxPool2d(_MaxPoolNd):
    """2-D max pooling, as ``torch.nn.MaxPool2d``, through :func:`deconv.max_pool2d`.

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Default ``kernel_size``.
    padding : int or (int, int), default 0
        At most ``kernel_size // 2`` per axis.
    dilation : int or (int, int), default 1
    ceil_mode : bool, default False

    Notes
    -----
    Input ``(N, C, H, W)``, output ``(N, C, H_out, W_out)`` with, per axis,
    ``out = floor((L + 2p - d*(k-1) - 1)/s) + 1`` (ceil with ``ceil_mode``).
    Ties go to the first maximum in row-major window order. The switches
    (flat positions ``h*W + w`` in each input plane) of the last forward are
    kept in :attr:`last_indices` for :class:`MaxUnpool2d`.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> pool = nn.MaxPool2d(2)
    >>> pool(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """
    _nd = 2


class _AvgPoolNd(Module):
    """The shared body of :class:`AvgPool1d` and :class:`AvgPool2d` (``_nd`` spatial axes)."""

    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        """Check and store the arguments; errors name the public class."""
        super().__init__()
        with prefixed(type(self).__name__):
            _window(self, kernel_size, stride, padding)
            self.ceil_mode = as_bool(ceil_mode, "ceil_mode")
            self.count_include_pad = as_bool(count_include_pad, "count_include_pad")
            if divisor_override is not None:
                divisor_override = as_positive_int(divisor_override, "divisor_override")
            self.divisor_override = divisor_override

    def extra_repr(self):
        """The window and the options that differ from the defaults."""
        s = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        if self.ceil_mode:
            s += ", ceil_mode=True"
        if not self.count_include_pad:
            s += ", count_include_pad=False"
        if self.divisor_override is not None:
            s += f", divisor_override={self.divisor_override}"
        return s

    def _kwargs(self):
        """The options of the functional ops, by keyword."""
        return dict(stride=self.stride, padding=self.padding, ceil_mode=self.ceil_mode,
                    count_include_pad=self.count_include_pad,
                    divisor_override=self.divisor_override)

    def forward(self, x):
        """Average-pool ``x``.

        Parameters
        ----------
        x : ndarray, shape (N, C, *spatial)

        Returns
        -------
        y : ndarray, shape (N, C, *spatial_out)
        """
        x = self._input(x, self._nd + 2)
        fn = getattr(_pool, f"avg_pool{self._nd}d")
        with prefixed(self):
            y = fn(x, self.kernel_size, **self._kwargs())
        self._save(y, input_shape=x.shape)
        return y

    def backward(self, grad_output):
        """Spread each output gradient evenly over its window (the adjoint).

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        c, g = self._saved_and_grad(grad_output)
        fn = getattr(_pool, f"avg_pool{self._nd}d_backward")
        with prefixed(self):
            return fn(g, c["input_shape"], self.kernel_size, **self._kwargs())


class AvgPool1d(_AvgPoolNd):
    """1-D average pooling, as ``torch.nn.AvgPool1d``, through :func:`deconv.avg_pool1d`.

    Parameters
    ----------
    kernel_size : int or (int,)
    stride : int or (int,), optional
        Default ``kernel_size``.
    padding : int or (int,), default 0
        Zero padding, at most ``kernel_size // 2``.
    ceil_mode : bool, default False
    count_include_pad : bool, default True
    divisor_override : int, optional
        (An extension: torch's AvgPool1d lacks it; the functional op has it.)

    Notes
    -----
    Input ``(N, C, L)``, output ``(N, C, L_out)``,
    ``L_out = floor((L + 2p - k)/s) + 1`` (ceil with ``ceil_mode``).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.AvgPool1d(2)(np.array([[[1., 3., 2., 6.]]]))
    array([[[2., 4.]]])
    """
    _nd = 1


class AvgPool2d(_AvgPoolNd):
    """2-D average pooling, as ``torch.nn.AvgPool2d``, through :func:`deconv.avg_pool2d`.

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Default ``kernel_size``.
    padding : int or (int, int), default 0
        Zero padding, at most ``kernel_size // 2`` per axis.
    ceil_mode : bool, default False
    count_include_pad : bool, default True
    divisor_override : int, optional

    Notes
    -----
    Input ``(N, C, H, W)``, output ``(N, C, H_out, W_out)``, per axis
    ``out = floor((L + 2p - k)/s) + 1`` (ceil with ``ceil_mode``).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.AvgPool2d(2)(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    _nd = 2


class _MaxUnpoolNd(Module):
    """The shared body of :class:`MaxUnpool1d` and :class:`MaxUnpool2d` (``_nd`` spatial axes)."""

    _nd = 2

    def __init__(self, pool):
        """Pair with ``pool`` (of the same number of axes); errors name the public class."""
        super().__init__()
        expected = globals()[f"MaxPool{self._nd}d"]   # the pool class of as many axes
        if not isinstance(pool, expected):
            raise TypeError(
                f"{type(self).__name__}: pool must be the {expected.__name__} layer whose switches "
                f"are to be used, got {type(pool).__name__}")
        # Not registered as a sub-module: the pool lives elsewhere in the network.
        object.__setattr__(self, "pool", pool)

    def extra_repr(self):
        """The paired pool."""
        return f"pool={self.pool._short_repr()}"

    def forward(self, x):
        """Place each value of ``x`` at the switch its pool recorded; zeros elsewhere.

        Parameters
        ----------
        x : ndarray, shape of the pool's last output (N, C, *spatial_out)

        Returns
        -------
        y : ndarray, shape of the pool's last input (N, C, *spatial)
        """
        pool = self.pool
        if pool._cache is None:
            raise RuntimeError(
                f"{self._short_repr()}: the paired {type(pool).__name__} has not run yet; "
                f"its forward records the switches this layer uses")
        pc = pool._cache
        idx, in_shape = pc["indices"], pc["input_shape"]
        x = self._input(x, self._nd + 2)
        if x.shape != idx.shape:
            raise ValueError(
                f"{self._short_repr()}: input shape {x.shape} must equal the shape of the paired "
                f"pool's last output {idx.shape} (its switches)")
        # The functional op checks output_size against kernel_size; with
        # dilation the pool's window spans d*(k-1)+1 inputs, and with that
        # extent the pool's input size is always an admissible output size.
        extent = tuple(d * (k - 1) + 1 for k, d in zip(pool.kernel_size, pool.dilation))
        fn = getattr(_pool, f"max_unpool{self._nd}d")
        with prefixed(self):
            y = fn(x, idx, extent, stride=pool.stride, padding=pool.padding,
                   output_size=in_shape[2:])
        self._save(y, indices=idx)
        return y

    def backward(self, grad_output):
        """Gather the gradient at the switches used by the last forward.

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        c, g = self._saved_and_grad(grad_output)
        fn = getattr(_pool, f"max_unpool{self._nd}d_backward")
        with prefixed(self):
            return fn(g, c["indices"])


class MaxUnpool1d(_MaxUnpoolNd):
    """Max unpooling with the switches of a paired :class:`MaxPool1d` (Zeiler & Fergus's deconvnet).

    Parameters
    ----------
    pool : MaxPool1d
        The pooling layer whose last forward's switches (argmax indices),
        window and input size are used. It is *not* a sub-module of this
        layer (it appears in the network on its own).

    Notes
    -----
    Input: the shape of the pool's last output ``(N, C, L_out)``; output:
    the pool's last input shape ``(N, C, L)`` (``output_size`` is that size,
    so the round trip restores it exactly, also for odd sizes), zeros
    except at the switches. Unlike ``torch.nn.MaxUnpool1d`` it is built
    from the pool layer rather than from kernel sizes, and needs no indices
    argument. A pool with dilation works too.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> pool = nn.MaxPool1d(2)
    >>> unpool = nn.MaxUnpool1d(pool)
    >>> unpool(pool(np.array([[[1., 3., 2., 5., 4.]]])))
    array([[[0., 3., 0., 5., 0.]]])
    """
    _nd = 1


class MaxUnpool2d(_MaxUnpoolNd):
    """Max unpooling with the switches of a paired :class:`MaxPool2d` (Zeiler & Fergus's deconvnet).

    Parameters
    ----------
    pool : MaxPool2d
        The pooling layer whose last forward's switches, window and input
        size are used (not registered as a sub-module).

    Notes
    -----
    Input: the shape of the pool's last output ``(N, C, H_out, W_out)``;
    output: the pool's last input shape ``(N, C, H, W)``, zeros except at
    the switches. Raises RuntimeError if the pool has not run, ValueError
    if the input shape differs from the pool's output. With overlapping
    windows sharing a maximum, the last duplicate is kept and only it
    receives gradient (see :func:`deconv.max_unpool2d`).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> pool = nn.MaxPool2d(2)
    >>> unpool = nn.MaxUnpool2d(pool)
    >>> unpool(pool(np.arange(9.0).reshape(1, 1, 3, 3)))[0, 0]
    array([[0., 0., 0.],
           [0., 4., 0.],
           [0., 0., 0.]])
    """
    _nd = 2




# issue 13: the 3-D family
class MaxPool3d(_MaxPoolNd):
    """3-D max pooling, as ``torch.nn.MaxPool3d``, through :func:`deconv.max_pool3d`.

    Parameters
    ----------
    kernel_size : int or (int, int, int)
    stride : int or (int, int, int), optional
        Default ``kernel_size``.
    padding : int or (int, int, int), default 0
        At most ``kernel_size // 2`` per axis.
    dilation : int or (int, int, int), default 1
    ceil_mode : bool, default False

    Notes
    -----
    Input ``(N, C, D, H, W)``, output ``(N, C, D_out, H_out, W_out)`` with,
    per axis, ``out = floor((L + 2p - d*(k-1) - 1)/s) + 1`` (ceil with
    ``ceil_mode``). The switches (flat positions ``(d*H + h)*W + w`` in each
    input volume) of the last forward are kept in :attr:`last_indices` for
    :class:`MaxUnpool3d`.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> pool = nn.MaxPool3d(2)
    >>> pool(np.arange(8.0).reshape(1, 1, 2, 2, 2)).ravel(), pool.last_indices.ravel()
    (array([7.]), array([7]))
    """
    _nd = 3


class AvgPool3d(_AvgPoolNd):
    """3-D average pooling, as ``torch.nn.AvgPool3d``, through :func:`deconv.avg_pool3d`.

    Parameters
    ----------
    kernel_size : int or (int, int, int)
    stride : int or (int, int, int), optional
        Default ``kernel_size``.
    padding : int or (int, int, int), default 0
        At most ``kernel_size // 2`` per axis.
    ceil_mode : bool, default False
    count_include_pad : bool, default True
    divisor_override : int, optional

    Notes
    -----
    Input ``(N, C, D, H, W)``, output ``(N, C, D_out, H_out, W_out)`` with,
    per axis, ``out = floor((L + 2p - k)/s) + 1`` (ceil with ``ceil_mode``).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.AvgPool3d(2)(np.arange(8.0).reshape(1, 1, 2, 2, 2)).ravel()
    array([3.5])
    """
    _nd = 3


class MaxUnpool3d(_MaxUnpoolNd):
    """Max unpooling with the switches of a paired :class:`MaxPool3d`.

    Parameters
    ----------
    pool : MaxPool3d
        The pooling layer whose last forward's switches, window and input
        size are used (not registered as a sub-module).

    Notes
    -----
    Input: the shape of the pool's last output ``(N, C, D_out, H_out,
    W_out)``; output: the pool's last input shape ``(N, C, D, H, W)``, zeros
    except at the switches (see :class:`MaxUnpool2d`).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> pool = nn.MaxPool3d(2)
    >>> unpool = nn.MaxUnpool3d(pool)
    >>> unpool(pool(np.arange(8.0).reshape(1, 1, 2, 2, 2))).ravel()
    array([0., 0., 0., 0., 0., 0., 0., 7.])
    """
    _nd = 3


__all__ += ["MaxPool3d", "AvgPool3d", "MaxUnpool3d"]
