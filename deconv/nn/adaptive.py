"""Adaptive pooling layers: AdaptiveAvgPool1d/2d/3d, AdaptiveMaxPool1d/2d/3d.

Each kind has one shared class (:class:`_AdaptiveAvgPoolNd`,
:class:`_AdaptiveMaxPoolNd`) whose subclasses fix the number of spatial
axes; the computation is that of :mod:`deconv.functional.adaptive`.
"""

from deconv.functional import adaptive as _adaptive
from deconv.functional.validation import as_adaptive_output_size, as_bool
from deconv.nn.module import Module, prefixed

__all__ = ["AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
           "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d"]


def _output_size(module, output_size):
    """Check ``output_size``; keep it as given (an int stays an int, as torch prints it)."""
    sizes = as_adaptive_output_size(output_size, module._nd)
    module.output_size = sizes[0] if not isinstance(output_size, (list, tuple)) else sizes


class _AdaptiveAvgPoolNd(Module):
    """The shared body of the AdaptiveAvgPool layers (``_nd`` spatial axes)."""

    _nd = 2

    def __init__(self, output_size):
        """Check and store ``output_size``; errors name the public class."""
        super().__init__()
        with prefixed(type(self).__name__):
            _output_size(self, output_size)

    def extra_repr(self):
        """``output_size=...``, as torch prints it."""
        return f"output_size={self.output_size}"

    def forward(self, x):
        """Average ``x`` over the adaptive windows.

        Parameters
        ----------
        x : ndarray, shape (N, C, *spatial)

        Returns
        -------
        y : ndarray, shape (N, C, *output_size)
        """
        x = self._input(x, self._nd + 2)
        fn = getattr(_adaptive, f"adaptive_avg_pool{self._nd}d")
        with prefixed(self):
            y = fn(x, self.output_size)
        self._save(y, input_shape=x.shape)
        return y

    def backward(self, grad_output):
        """Spread each output gradient evenly over its window (the adjoint).

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        c, g = self._saved_and_grad(grad_output)
        fn = getattr(_adaptive, f"adaptive_avg_pool{self._nd}d_backward")
        with prefixed(self):
            return fn(g, c["input_shape"])


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """1-D adaptive average pooling, as ``torch.nn.AdaptiveAvgPool1d``.

    Parameters
    ----------
    output_size : int or (int,)
        ``L_out >= 1``.

    Notes
    -----
    Input ``(N, C, L)``, output ``(N, C, L_out)``; output ``o`` averages
    ``x[..., floor(o*L/L_out):ceil((o+1)*L/L_out)]``
    (:func:`deconv.adaptive_avg_pool1d`).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.AdaptiveAvgPool1d(3)(np.array([[[1., 2., 3., 4., 5.]]]))
    array([[[1.5, 3. , 4.5]]])
    """
    _nd = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """2-D adaptive average pooling, as ``torch.nn.AdaptiveAvgPool2d``.

    Parameters
    ----------
    output_size : int or (int or None, int or None)
        ``(H_out, W_out)``, each ``>= 1``; None keeps that input size.

    Notes
    -----
    Input ``(N, C, H, W)``, output ``(N, C, H_out, W_out)``; per axis output
    ``o`` averages ``[floor(o*L/out), ceil((o+1)*L/out))``
    (:func:`deconv.adaptive_avg_pool2d`). ``AdaptiveAvgPool2d(1)`` is
    global average pooling.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.AdaptiveAvgPool2d(1)(np.arange(8.0).reshape(1, 2, 2, 2))
    array([[[[1.5]],
    <BLANKLINE>
            [[5.5]]]])
    """
    _nd = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """3-D adaptive average pooling, as ``torch.nn.AdaptiveAvgPool3d``.

    Parameters
    ----------
    output_size : int or (int or None, int or None, int or None)
        ``(D_out, H_out, W_out)``, each ``>= 1``; None keeps that input size.

    Notes
    -----
    Input ``(N, C, D, H, W)``, output ``(N, C, D_out, H_out, W_out)``
    (:func:`deconv.adaptive_avg_pool3d`).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.AdaptiveAvgPool3d((1, 1, None))(np.arange(8.0).reshape(1, 1, 2, 2, 2))
    array([[[[[3., 4.]]]]])
    """
    _nd = 3


class _AdaptiveMaxPoolNd(Module):
    """The shared body of the AdaptiveMaxPool layers (``_nd`` spatial axes)."""

    _nd = 2

    def __init__(self, output_size, return_indices=False):
        """Check and store the arguments; errors name the public class."""
        super().__init__()
        with prefixed(type(self).__name__):
            _output_size(self, output_size)
            self.return_indices = as_bool(return_indices, "return_indices")

    def extra_repr(self):
        """``output_size=...`` (and ``return_indices=True``), as torch prints it."""
        s = f"output_size={self.output_size}"
        return s + ", return_indices=True" if self.return_indices else s

    @property
    def last_indices(self):
        """int64 switches of the last forward, shape of its output (None before any forward)."""
        return None if self._cache is None else self._cache["indices"]

    def forward(self, x):
        """Max-pool ``x`` over the adaptive windows and record the switches.

        Parameters
        ----------
        x : ndarray, shape (N, C, *spatial)

        Returns
        -------
        y : ndarray, shape (N, C, *output_size)
            With ``return_indices``, the pair ``(y, indices)`` as in torch.
        """
        x = self._input(x, self._nd + 2)
        fn = getattr(_adaptive, f"adaptive_max_pool{self._nd}d")
        with prefixed(self):
            y, idx = fn(x, self.output_size)
        self._save(y, indices=idx, input_shape=x.shape)
        return (y, idx) if self.return_indices else y

    def backward(self, grad_output):
        """Route each output gradient to its switch; overlapping windows accumulate.

        Parameters
        ----------
        grad_output : ndarray, shape of the last output ``y``

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        c, g = self._saved_and_grad(grad_output)
        fn = getattr(_adaptive, f"adaptive_max_pool{self._nd}d_backward")
        with prefixed(self):
            return fn(g, c["indices"], c["input_shape"])


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """1-D adaptive max pooling, as ``torch.nn.AdaptiveMaxPool1d``.

    Parameters
    ----------
    output_size : int or (int,)
        ``L_out >= 1``.
    return_indices : bool, default False
        Make ``forward`` return ``(y, indices)``, as torch. The switches of
        the last forward are kept in :attr:`last_indices` either way, and
        the backward uses them.

    Notes
    -----
    Input ``(N, C, L)``, output ``(N, C, L_out)``; output ``o`` is the
    maximum of ``x[..., floor(o*L/L_out):ceil((o+1)*L/L_out)]``, the first
    one on ties and the first NaN if any (:func:`deconv.adaptive_max_pool1d`).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> pool = nn.AdaptiveMaxPool1d(3)
    >>> pool(np.array([[[1., 3., 2., 5., 4.]]]))
    array([[[3., 5., 5.]]])
    >>> pool.last_indices
    array([[[1, 3, 3]]])
    """
    _nd = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """2-D adaptive max pooling, as ``torch.nn.AdaptiveMaxPool2d``.

    Parameters
    ----------
    output_size : int or (int or None, int or None)
        ``(H_out, W_out)``, each ``>= 1``; None keeps that input size.
    return_indices : bool, default False
        Make ``forward`` return ``(y, indices)``, as torch; the switches
        (flat positions ``h*W + w``) are kept in :attr:`last_indices` either way.

    Notes
    -----
    Input ``(N, C, H, W)``, output ``(N, C, H_out, W_out)``; per axis output
    ``o`` takes the maximum over ``[floor(o*L/out), ceil((o+1)*L/out))``
    (:func:`deconv.adaptive_max_pool2d`).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> y, idx = nn.AdaptiveMaxPool2d(2, return_indices=True)(np.arange(16.0).reshape(1, 1, 4, 4))
    >>> y[0, 0], idx[0, 0]
    (array([[ 5.,  7.],
           [13., 15.]]), array([[ 5,  7],
           [13, 15]]))
    """
    _nd = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """3-D adaptive max pooling, as ``torch.nn.AdaptiveMaxPool3d``.

    Parameters
    ----------
    output_size : int or (int or None, int or None, int or None)
        ``(D_out, H_out, W_out)``, each ``>= 1``; None keeps that input size.
    return_indices : bool, default False
        Make ``forward`` return ``(y, indices)``, as torch; the switches
        (flat positions ``(d*H + h)*W + w``) are kept in :attr:`last_indices`.

    Notes
    -----
    Input ``(N, C, D, H, W)``, output ``(N, C, D_out, H_out, W_out)``
    (:func:`deconv.adaptive_max_pool3d`).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.AdaptiveMaxPool3d(1)(np.arange(8.0).reshape(1, 1, 2, 2, 2))
    array([[[[[7.]]]]])
    """
    _nd = 3
