"""Unfold and Fold layers: sliding blocks to columns (im2col) and back (col2im).

The computation is that of :mod:`deconv.functional.fold`; each layer's
backward is the other op (they are each other's adjoint).
"""

from deconv.functional import fold as _fold
from deconv.functional.validation import as_tuple
from deconv.nn.module import Module, prefixed

__all__ = ["Unfold", "Fold"]


def _block_options(module, kernel_size, dilation, padding, stride):
    """Check and store ``kernel_size``, ``dilation``, ``padding``, ``stride`` as 2-tuples."""
    module.kernel_size = as_tuple(kernel_size, 2, "kernel_size", minimum=1)
    module.dilation = as_tuple(dilation, 2, "dilation", minimum=1)
    module.padding = as_tuple(padding, 2, "padding", minimum=0)
    module.stride = as_tuple(stride, 2, "stride", minimum=1)


class _Blocks(Module):
    """What Unfold and Fold share: the block options, their repr and keywords."""

    def extra_repr(self):
        """The block size and the options that differ from the defaults."""
        s = f"kernel_size={self.kernel_size}"
        for name, default in (("dilation", 1), ("padding", 0), ("stride", 1)):
            value = getattr(self, name)
            if value != (default, default):
                s += f", {name}={value}"
        return s

    def _options(self):
        """The functional ops' options, by keyword."""
        return dict(dilation=self.dilation, padding=self.padding, stride=self.stride)


class Unfold(_Blocks):
    """Sliding blocks as columns, as ``torch.nn.Unfold``, through :func:`deconv.unfold`.

    Parameters
    ----------
    kernel_size : int or (int, int)
        Block size ``(kH, kW)``.
    dilation : int or (int, int), default 1
    padding : int or (int, int), default 0
        Zero padding on both sides of each axis.
    stride : int or (int, int), default 1

    Notes
    -----
    Input ``(N, C, H, W)``, output ``(N, C*kH*kW, L)`` with ``L = H_out*W_out``,
    ``H_out = floor((H + 2pH - dH*(kH-1) - 1)/sH) + 1`` (likewise ``W_out``).
    The backward is :func:`deconv.unfold_backward` (a fold).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.Unfold(2)(np.arange(6.0).reshape(1, 1, 2, 3))
    array([[[0., 1.],
            [1., 2.],
            [3., 4.],
            [4., 5.]]])
    """

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        """Check and store the arguments; errors name the class."""
        super().__init__()
        with prefixed("Unfold"):
            _block_options(self, kernel_size, dilation, padding, stride)

    def forward(self, x):
        """Unfold ``x``.

        Parameters
        ----------
        x : ndarray, shape (N, C, H, W)

        Returns
        -------
        columns : ndarray, shape (N, C*kH*kW, L)
        """
        x = self._input(x, 4)
        with prefixed(self):
            y = _fold.unfold(x, self.kernel_size, **self._options())
        self._save(y, input_shape=x.shape)
        return y

    def backward(self, grad_output):
        """Sum each column gradient back onto the pixels it copied (a fold).

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        c, g = self._saved_and_grad(grad_output)
        with prefixed(self):
            return _fold.unfold_backward(g, c["input_shape"], self.kernel_size,
                                         **self._options())


class Fold(_Blocks):
    """Columns summed into an image, as ``torch.nn.Fold``, through :func:`deconv.fold`.

    Parameters
    ----------
    output_size : int or (int, int)
        Image size ``(H, W)``.
    kernel_size : int or (int, int)
        Block size ``(kH, kW)``.
    dilation : int or (int, int), default 1
    padding : int or (int, int), default 0
    stride : int or (int, int), default 1

    Notes
    -----
    Input ``(N, C*kH*kW, L)`` with ``L = H_out*W_out``,
    ``H_out = floor((H + 2pH - dH*(kH-1) - 1)/sH) + 1`` (likewise ``W_out``);
    output ``(N, C, H, W)``, overlapping blocks summed. The backward is
    :func:`deconv.fold_backward` (an unfold).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> nn.Fold((2, 3), 2)(np.ones((1, 4, 2)))
    array([[[[1., 2., 1.],
             [1., 2., 1.]]]])
    """

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        """Check and store the arguments; errors name the class."""
        super().__init__()
        with prefixed("Fold"):
            self.output_size = as_tuple(output_size, 2, "output_size", minimum=1)
            _block_options(self, kernel_size, dilation, padding, stride)

    def extra_repr(self):
        """The image size, the block size and the options that differ from the defaults."""
        return f"output_size={self.output_size}, " + super().extra_repr()

    def forward(self, x):
        """Fold the columns ``x`` into images.

        Parameters
        ----------
        x : ndarray, shape (N, C*kH*kW, L)

        Returns
        -------
        y : ndarray, shape (N, C, H, W)
        """
        x = self._input(x)
        with prefixed(self):
            y = _fold.fold(x, self.output_size, self.kernel_size, **self._options())
        self._save(y)
        return y

    def backward(self, grad_output):
        """Read each column gradient back from the image gradient (an unfold).

        Returns
        -------
        grad_input : ndarray, shape of the last input
        """
        _, g = self._saved_and_grad(grad_output)
        with prefixed(self):
            return _fold.fold_backward(g, self.kernel_size, **self._options())
