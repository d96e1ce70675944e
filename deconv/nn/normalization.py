"""Normalization layers: BatchNorm1d/2d/3d, InstanceNorm1d/2d/3d, GroupNorm, LayerNorm.

Every one standardises ``x`` over some axes, ``xhat = (x - mean) / sqrt(var
+ eps)`` with the biased variance, then applies an optional affine map
``y = xhat * weight + bias``. They differ only in the axes of the statistics
(the *view*), in the shape of the affine parameters and in whether running
statistics are kept (BatchNorm, and InstanceNorm with
``track_running_stats=True``: buffers ``running_mean``, ``running_var`` and
the int64 counter ``num_batches_tracked``, with torch's names).

For float32 input the statistics, the standardisation and the backward's
reductions are computed in float64 and the result rounded once to float32:
a channel mean over ``N * H * W`` float32 values loses ~``log2(N H W)`` bits
when summed in float32, and the backward's ``g - mean(g) - xhat * mean(g
xhat)`` cancels; in float64 the float32 output is the correctly rounded
value up to ~1e-12 relative.

Every layer is one ``(N, G, K, S)`` view of its input, standardised by the
Numba kernels of :mod:`deconv.kernels.normalization` (through
:mod:`deconv.functional.normalization`): they read float32 directly into
float64 accumulators, take the statistics in one pass of shifted sums over
each group (two exact passes where the shift was far from the mean: see
that module) and write the affine output in the next; the backward's two reductions and the
input gradient are one kernel too. The backward recomputes ``xhat`` from
the saved input and statistics rather than keeping a float64 copy.
"""

import math

import numpy as np

from deconv.functional import normalization as _norm
from deconv.functional.validation import (
    as_bool, as_float_dtype, as_positive_int, as_real, check_bytes, check_ndim,
)
from deconv.nn.module import Module, Parameter, check_parameter_bytes, prefixed

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d",
           "InstanceNorm3d", "GroupNorm", "LayerNorm"]

LAYOUTS = {3: "(N, C, L)", 4: "(N, C, H, W)", 5: "(N, C, D, H, W)"}

# What every normalization layer's Notes share: the backward with batch statistics.
BACKWARD_NOTES = """With statistics of the batch, every output of a group depends on every
    input of the group through ``mean`` and ``var``; over the ``M`` elements
    of one group, with ``dxhat = grad_output * weight``::

        grad_input = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / sqrt(var + eps)

    (means over the group). With running statistics (eval mode) the layer is
    the affine map ``x -> (x - running_mean) * weight / sqrt(running_var +
    eps) + bias`` and ``grad_input = dxhat / sqrt(running_var + eps)``. In
    both cases ``grad_weight = sum(grad_output * xhat)`` and ``grad_bias =
    sum(grad_output)`` over every axis but the parameters' own."""


class _Normalization(Module):
    """The shared machinery: parameters, statistics, the affine map, both backwards.

    A subclass sets ``_features`` (the parameters' shape) and describes its
    input as a view ``(N, G, K, S)`` with statistics per sample or over the
    batch (see :mod:`deconv.functional.normalization`).
    """

    def _init_common(self, name, eps, affine, bias, dtype, features, affine_name="affine"):
        """Check ``eps``/``affine``/``bias``/``dtype``; make ``weight`` (ones) and ``bias`` (zeros)."""
        with prefixed(name):
            self.eps = as_real(eps, "eps", 0)
            affine = as_bool(affine, affine_name)
            bias = as_bool(bias, "bias")
            dt = as_float_dtype(dtype)
            check_parameter_bytes(features, dt)
        self._features = features
        self._dtype = dt
        self.weight = Parameter(np.ones(features, dtype=dt)) if affine else None
        self.bias = Parameter(np.zeros(features, dtype=dt)) if affine and bias else None
        return affine

    def _init_running(self, name, momentum, track_running_stats, allow_none):
        """Check ``momentum`` and ``track_running_stats``; register the three buffers."""
        with prefixed(name):
            self.track_running_stats = as_bool(track_running_stats, "track_running_stats")
            if momentum is None and allow_none:
                self.momentum = None
            else:
                self.momentum = as_real(momentum, "momentum", 0, 1)
        track = self.track_running_stats
        c, dt = self._features, self._dtype
        self.register_buffer("running_mean", np.zeros(c, dtype=dt) if track else None)
        self.register_buffer("running_var", np.ones(c, dtype=dt) if track else None)
        self.register_buffer("num_batches_tracked",
                             np.array(0, dtype=np.int64) if track else None)

    # -- input ---------------------------------------------------------------

    def _checked(self, x, ndims):
        """``x`` as a float array of one of ``ndims`` dimensions, with the right channels and dtype."""
        x = self._input(x)
        if len(ndims) == 1:
            with prefixed(self):
                check_ndim(x, "x", ndims[0], LAYOUTS[ndims[0]])
        elif x.ndim not in ndims:
            raise ValueError(
                f"{self._short_repr()}: x must be {' or '.join(f'{d}-D' for d in ndims)} with "
                f"layout {' or '.join(LAYOUTS.get(d, '(N, C)') for d in ndims)}, got shape "
                f"{x.shape}")
        if x.shape[1] != self._features[0]:
            raise ValueError(
                f"{self._short_repr()}: x has {x.shape[1]} channels (axis 1, shape {x.shape}) "
                f"but the layer expects num_features={self._features[0]}")
        return x

    def _finish_checks(self, x):
        """The dtype (the parameters', or the buffers'), the byte cap and a non-empty input."""
        running_mean = self._buffers.get("running_mean")
        if self.weight is not None:
            self._check_parameter_dtype(x, self.weight.dtype)
        elif running_mean is not None:
            self._check_parameter_dtype(x, running_mean.dtype)
        if x.size == 0:
            raise ValueError(f"{self._short_repr()}: x must not be empty, got shape {x.shape}")
        # the kernels allocate the output only (statistics are per group)
        self._check_bytes("output", (x.shape, x.dtype))

    # -- computation ---------------------------------------------------------

    def _run(self, x, view, per_sample, stats=None):
        """Standardise ``x`` over the view with batch statistics (``stats`` None) or given ones.

        ``stats``: float64 ``(mean, invstd)`` of shape ``(1, G)``. Returns
        ``y`` and the float64 statistics ``(mean, var)`` of shape ``(Ns, G)``
        (``var`` None with given statistics), and saves what the backward needs.
        """
        w = None if self.weight is None else self.weight.data
        b = None if self.bias is None else self.bias.data
        with np.errstate(all="ignore"):                 # inf/NaN inputs give NaN, as torch
            y, mean, var, invstd, x_view = _norm.normalize(x, view, w, b, self.eps,
                                                           per_sample, stats)
        self._save(y, x_view=x_view, mean=mean, invstd=invstd, w=w, batch=stats is None)
        return y, (mean, var)

    def backward(self, grad_output):
        """Input gradient (batch coupling included in batch mode); adds ``grad_weight``, ``grad_bias``.

        Parameters
        ----------
        grad_output : ndarray or array-like, shape and dtype of the last output

        Returns
        -------
        grad_input : ndarray, shape and dtype of the last input
        """
        c, g = self._saved_and_grad(grad_output)
        with np.errstate(all="ignore"):
            grad_input, sum_g, sum_gxhat = _norm.normalize_backward(
                g, c["x_view"], c["w"], c["mean"], c["invstd"], c["batch"])
            # (Ns, G, K) -> the parameters' shape: a sum over the statistics' first axis
            if self.weight is not None:
                self.weight.grad += sum_gxhat.sum(axis=0).reshape(self.weight.shape).astype(
                    self.weight.dtype)
            if self.bias is not None:
                self.bias.grad += sum_g.sum(axis=0).reshape(self.bias.shape).astype(
                    self.bias.dtype)
        return grad_input


class _RunningNorm(_Normalization):
    """BatchNorm and InstanceNorm: channel-wise parameters and optional running statistics."""

    _ndims = ()          # the accepted input dimensions
    _instance = False    # statistics per sample (InstanceNorm) or over the batch (BatchNorm)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, *, bias=True, dtype=np.float32):
        """Check the arguments (errors start with the class name); make parameters and buffers."""
        super().__init__()
        name = type(self).__name__
        with prefixed(name):
            self.num_features = as_positive_int(num_features, "num_features")
        self.affine = self._init_common(name, eps, affine, bias, dtype, (self.num_features,))
        self._init_running(name, momentum, track_running_stats, allow_none=True)

    def extra_repr(self):
        """torch's: the features, eps, momentum, affine, bias and tracking (dtype if float64)."""
        s = (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
             f"affine={self.affine}, bias={self.bias is not None or not self.affine}, "
             f"track_running_stats={self.track_running_stats}")
        return s + (f", dtype={self._dtype}" if self._dtype != np.float32 else "")

    def _view(self, x):
        """``(N, C, 1, S)``: one statistic per channel, of each sample (InstanceNorm) or all."""
        return (x.shape[0], x.shape[1], 1, math.prod(x.shape[2:]))

    def forward(self, x):
        """Normalise with batch statistics (training, or no running statistics) or running ones.

        Parameters
        ----------
        x : ndarray or array-like
            See the class's layouts; dtype of the parameters.

        Returns
        -------
        y : ndarray, shape and dtype of ``x``
        """
        x = self._checked(x, self._ndims)
        self._finish_checks(x)
        view = self._view(x)
        use_batch = self.training or not self.track_running_stats
        group = view[3] if self._instance else view[0] * view[3]
        if use_batch and group == 1:
            what = "spatial element" if self._instance else "value per channel"
            raise ValueError(f"{self._short_repr()}: Expected more than 1 {what} when training, "
                             f"got x of shape {x.shape}")
        if not use_batch:
            with np.errstate(all="ignore"):
                invstd = 1.0 / np.sqrt(self.running_var.astype(np.float64) + self.eps)
            stats = (self.running_mean.astype(np.float64), invstd)
            return self._run(x, view, False, stats)[0]
        y, (mean, var) = self._run(x, view, self._instance)
        if self.training and self.track_running_stats:
            self._update_running(mean, var, group)
        return y

    def _update_running(self, mean, var, group):
        """The running estimates: unbiased variance, an exponential or a cumulative average."""
        c = self.num_features
        mean = mean.reshape(-1, c).mean(axis=0)        # InstanceNorm: averaged over samples
        var = (var * (group / (group - 1))).reshape(-1, c).mean(axis=0)
        if self._instance:
            # torch's instance_norm takes momentum=None as 0.0 and never counts batches
            factor = 0.0 if self.momentum is None else self.momentum
        else:
            self.num_batches_tracked += 1
            factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                      else self.momentum)
        for buffer, batch in ((self.running_mean, mean), (self.running_var, var)):
            buffer[...] = (1.0 - factor) * buffer.astype(np.float64) + factor * batch


_RUNNING_DOC = """{what}, as ``torch.nn.{name}``.

    Parameters
    ----------
    num_features : int
        ``C``, the channels of the input.
    eps : float, default 1e-5
        Added to the variance.
    momentum : float in [0, 1] or None, default 0.1
        Weight of the new batch in the running estimates; {momentum_none}
    affine : bool, default {affine}
        Learnable ``weight`` (ones) and ``bias`` (zeros), shape ``(C,)``.
    track_running_stats : bool, default {track}
        Keep ``running_mean`` (zeros), ``running_var`` (ones) and
        ``num_batches_tracked`` (int64 0-d) as buffers, and use them in eval mode.
    bias : bool, default True
        Keyword only (torch 2.13): with False and ``affine``, only ``weight``.
    dtype : np.float32 (default) or np.float64

    Notes
    -----
    Input {layouts}; the output has its shape and dtype. {stats} The mean
    and the biased variance ``var`` of each group give ``xhat = (x - mean) /
    sqrt(var + eps)`` and ``y = xhat * weight + bias`` (per channel).
    {running}

    {backward}

    Errors: an input whose axis 1 is not ``num_features`` (torch only warns
    for InstanceNorm without affine or running statistics; here it is always
    an error), of the wrong dimension (unbatched input is refused, with the
    hint), empty, or {one} when batch statistics are used (torch's message).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> layer = nn.{name}(2)
    >>> x = np.arange({size}, dtype=np.float32).reshape({shape}) ** 2
    >>> y = layer(x)
    >>> y.shape, y.dtype
    ({shape}, dtype('float32'))
    >>> bool(abs(float(y[:, 0].mean())) < 1e-6 and abs(float(y[:, 0].var()) - 1) < 1e-3)
    True
    >>> {example_tail}
    """

_BATCH = dict(
    what="Batch normalization: per-channel statistics over the batch and space",
    momentum_none="None gives the cumulative average ``1 / num_batches_tracked``.",
    affine=True, track=True, one="a single value per channel (``N * L * ...`` = 1)",
    stats=("Training mode (or ``track_running_stats=False``) normalises each channel "
           "with the statistics of the batch, over ``N`` and every spatial axis."),
    running=("In training mode with running statistics each forward updates "
             "``running = (1 - momentum) * running + momentum * batch`` with the "
             "*unbiased* batch variance ``var * M / (M - 1)`` (``M`` values per channel) "
             "and adds 1 to ``num_batches_tracked``; eval mode normalises with the running "
             "estimates instead. The statistics are computed in float64 (for float32 input "
             "as well) and the running estimates rounded to the buffers' dtype."),
    example_tail=("int(layer.num_batches_tracked), layer.running_var.dtype\n"
                  "    (1, dtype('float32'))"),
)
_INSTANCE = dict(
    what="Instance normalization: per-sample, per-channel statistics over space",
    momentum_none=("None leaves the running estimates unchanged (torch passes it to "
                   "``instance_norm`` as 0.0)."),
    affine=False, track=False, one="a single spatial element",
    stats=("Each sample's channel is normalised with its own statistics over the "
           "spatial axes (in training mode, or always without running statistics)."),
    running=("With ``track_running_stats=True`` a training forward moves the running "
             "estimates towards the batch average of the per-sample means and *unbiased* "
             "variances (as torch, which never counts ``num_batches_tracked`` here), and "
             "eval mode normalises with them. Statistics in float64, as BatchNorm."),
    example_tail="layer.running_mean is None\n    True",
)


def _running_class(name, base_kind, ndims, shape, doc):
    """A BatchNorm/InstanceNorm class for the input dimensions ``ndims``."""
    layouts = " or ".join(LAYOUTS.get(d, "(N, C)") for d in ndims)
    cls = type(name, (_RunningNorm,), {"_ndims": ndims, "_instance": base_kind == "instance"})
    cls.__module__ = __name__
    cls.__doc__ = _RUNNING_DOC.format(
        name=name, layouts=layouts, backward=BACKWARD_NOTES, size=math.prod(shape),
        shape=shape, **doc)
    return cls


BatchNorm1d = _running_class("BatchNorm1d", "batch", (2, 3), (3, 2, 4), _BATCH)
BatchNorm2d = _running_class("BatchNorm2d", "batch", (4,), (2, 2, 2, 3), _BATCH)
BatchNorm3d = _running_class("BatchNorm3d", "batch", (5,), (2, 2, 1, 2, 3), _BATCH)


def _instance_init(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                   track_running_stats=False, *, bias=True, dtype=np.float32):
    """Check the arguments (errors start with the class name); torch's InstanceNorm defaults."""
    _RunningNorm.__init__(self, num_features, eps, momentum, affine, track_running_stats,
                          bias=bias, dtype=dtype)


InstanceNorm1d = _running_class("InstanceNorm1d", "instance", (3,), (3, 2, 4), _INSTANCE)
InstanceNorm2d = _running_class("InstanceNorm2d", "instance", (4,), (2, 2, 2, 3), _INSTANCE)
InstanceNorm3d = _running_class("InstanceNorm3d", "instance", (5,), (2, 2, 1, 2, 3), _INSTANCE)
for _cls in (InstanceNorm1d, InstanceNorm2d, InstanceNorm3d):
    _cls.__init__ = _instance_init


class GroupNorm(_Normalization):
    """Group normalization, as ``torch.nn.GroupNorm``.

    Parameters
    ----------
    num_groups : int
        ``G``, dividing ``num_channels``.
    num_channels : int
        ``C``, the channels of the input.
    eps : float, default 1e-5
    affine : bool, default True
        Learnable per-channel ``weight`` (ones) and ``bias`` (zeros), shape ``(C,)``.
    bias : bool, default True
        Keyword only (torch 2.13).
    dtype : np.float32 (default) or np.float64

    Notes
    -----
    Input ``(N, C, *)`` (at least 2-D); the output has its shape and dtype.
    The channels of each sample are split into ``G`` consecutive groups of
    ``C / G``; each group is standardised over its ``M = C / G * prod(*)``
    values with its mean and biased variance, in training and eval mode alike
    (there are no running statistics), then ``y = xhat * weight + bias`` per
    channel. Statistics in float64 (for float32 input as well).

    {backward}

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> layer = nn.GroupNorm(2, 4, dtype=np.float64)
    >>> y = layer(np.arange(16.0).reshape(2, 4, 2))
    >>> y[0].round(4)
    array([[-1.3416, -0.4472],
           [ 0.4472,  1.3416],
           [-1.3416, -0.4472],
           [ 0.4472,  1.3416]])
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, *, bias=True,
                 dtype=np.float32):
        """Check the arguments (errors start with ``GroupNorm:``); weight ones, bias zeros."""
        super().__init__()
        with prefixed("GroupNorm"):
            self.num_groups = as_positive_int(num_groups, "num_groups")
            self.num_channels = as_positive_int(num_channels, "num_channels")
            if self.num_channels % self.num_groups:
                raise ValueError(f"num_channels ({self.num_channels}) must be divisible by "
                                 f"num_groups ({self.num_groups})")
        self.affine = self._init_common("GroupNorm", eps, affine, bias, dtype,
                                        (self.num_channels,))

    def extra_repr(self):
        """torch's: groups, channels, eps, affine, bias (dtype if float64)."""
        s = (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
             f"bias={self.bias is not None or not self.affine}")
        return s + (f", dtype={self._dtype}" if self._dtype != np.float32 else "")

    def forward(self, x):
        """Standardise each group of channels of each sample.

        Parameters
        ----------
        x : ndarray or array-like, shape (N, C, *)

        Returns
        -------
        y : ndarray, shape and dtype of ``x``
        """
        x = self._input(x)
        if x.ndim < 2:
            raise ValueError(f"{self._short_repr()}: x must be at least 2-D with layout "
                             f"(N, C, *), got shape {x.shape}")
        if x.shape[1] != self.num_channels:
            raise ValueError(
                f"{self._short_repr()}: x has {x.shape[1]} channels (axis 1, shape {x.shape}) "
                f"but the layer expects num_channels={self.num_channels}")
        self._finish_checks(x)
        G = self.num_groups
        view = (x.shape[0], G, self.num_channels // G, math.prod(x.shape[2:]))
        return self._run(x, view, True)[0]


GroupNorm.__doc__ = GroupNorm.__doc__.replace("{backward}", BACKWARD_NOTES)


class LayerNorm(_Normalization):
    """Layer normalization over the last axes, as ``torch.nn.LayerNorm``.

    Parameters
    ----------
    normalized_shape : int or sequence of int
        The trailing shape ``S`` standardised as one group, e.g. ``(C, H, W)``.
    eps : float, default 1e-5
    elementwise_affine : bool, default True
        Learnable ``weight`` (ones) of shape ``S``.
    bias : bool, default True
        With ``elementwise_affine``, a learnable ``bias`` (zeros) of shape ``S``.
    dtype : np.float32 (default) or np.float64

    Notes
    -----
    Input ``(*, S)`` of any leading shape (no batch axis is required); the
    output has its shape and dtype. Each of the ``prod(*)`` slices is
    standardised over its ``M = prod(S)`` values with its mean and biased
    variance, in training and eval mode alike, then ``y = xhat * weight +
    bias`` elementwise. Statistics in float64 (for float32 input as well).

    {backward}

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> layer = nn.LayerNorm(3, dtype=np.float64)
    >>> layer(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 6.0]])).round(4)
    array([[-1.2247,  0.    ,  1.2247],
           [-0.7071, -0.7071,  1.4142]])
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, *,
                 dtype=np.float32):
        """Check the arguments (errors start with ``LayerNorm:``); weight ones, bias zeros."""
        super().__init__()
        with prefixed("LayerNorm"):
            if isinstance(normalized_shape, (list, tuple)):
                if not normalized_shape:
                    raise ValueError("normalized_shape must be an int or a non-empty sequence "
                                     "of ints >= 1, got ()")
                shape = tuple(as_positive_int(s, "normalized_shape") for s in normalized_shape)
            else:
                shape = (as_positive_int(normalized_shape, "normalized_shape"),)
            check_bytes("normalized_shape", (shape, np.float64))
        self.normalized_shape = shape
        self.elementwise_affine = self._init_common("LayerNorm", eps, elementwise_affine, bias,
                                                    dtype, shape, "elementwise_affine")

    def extra_repr(self):
        """torch's: the shape, eps, elementwise_affine, bias (dtype if float64)."""
        s = (f"{self.normalized_shape}, eps={self.eps}, "
             f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")
        return s + (f", dtype={self._dtype}" if self._dtype != np.float32 else "")

    def forward(self, x):
        """Standardise every slice over the last ``len(normalized_shape)`` axes.

        Parameters
        ----------
        x : ndarray or array-like, shape (*, *normalized_shape)

        Returns
        -------
        y : ndarray, shape and dtype of ``x``
        """
        x = self._input(x)
        k = len(self.normalized_shape)
        if x.ndim < k or x.shape[x.ndim - k:] != self.normalized_shape:
            raise ValueError(
                f"{self._short_repr()}: x must have shape (*, "
                f"{', '.join(map(str, self.normalized_shape))}) (normalized_shape), got shape "
                f"{x.shape}")
        self._finish_checks(x)
        view = (math.prod(x.shape[:x.ndim - k]), 1, math.prod(self.normalized_shape), 1)
        return self._run(x, view, True)[0]


LayerNorm.__doc__ = LayerNorm.__doc__.replace("{backward}", BACKWARD_NOTES)
