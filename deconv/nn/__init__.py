"""Layers and losses with hand-written backward passes (no autograd), torch.nn style.

Every layer is a :class:`Module` with ``forward(x)`` (also ``module(x)``) and
``backward(grad_output) -> grad_input``. ``forward`` stores what the backward
needs (the input, the weights it used, max-pool switches, dropout masks...);
``backward`` computes the gradient with respect to the input of the *last*
forward and **adds** the gradients of the layer's parameters into their
``.grad`` arrays, as ``loss.backward()`` does in PyTorch. Call
:meth:`Module.zero_grad` (or the optimizer's) between steps.

Names, constructor arguments, parameter layouts and default initialisation
are those of ``torch.nn``; the convolution, pooling, unpooling and upsampling
layers call the functional kernels of :mod:`deconv` (forward and backward),
so they share their exact semantics (see the README). Linear, the
activations, dropout and the embedding are plain NumPy.

Losses (:class:`MSELoss`, :class:`L1Loss`, :class:`CrossEntropyLoss`, ...) have
``forward(prediction, target) -> float`` and ``backward() -> grad_prediction``;
with ``reduction='none'`` they return the per-element loss and take its
upstream gradient, ``backward(grad_output)``.

A network is a :class:`Sequential` of layers; :class:`Concat` runs several
branches on one input and joins their outputs along the channel axis, which
is how skip connections are written without autograd::

    block = nn.Sequential(
        nn.Concat(nn.Identity(), nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())),
        nn.Conv2d(16, 8, 1),
    )

Rules that follow from "no autograd":

* a module instance may appear only once in a network (its cache holds one
  forward); use separate instances, possibly sharing a :class:`Parameter`
  (gradients of a shared parameter accumulate correctly);
* do not modify an input array between a forward and its backward (layers
  keep a reference to it, as PyTorch would refuse to do after an in-place
  change);
* ``backward`` may be called more than once after one forward; each call
  adds to ``.grad`` again.

Every layer keeps the dtype of its input (float32 stays float32); layers
with parameters require the input to have the parameters' dtype. Inputs and
upstream gradients are never written to. Inputs are taken as the functional
ops take them (:func:`deconv.functional.validation.as_float_array`: a list
becomes an array, float64 for Python floats), and the convolution, pooling
and upsampling layers want the batch axis: one sample ``x`` of shape
``(C, H, W)`` is passed as ``x[None]``.

:meth:`Module.state_dict` and :meth:`Module.load_state_dict` use
PyTorch's key names (``"0.weight"``, ``"encoder.1.bias"``), so the weights
of a PyTorch twin, saved as a dict of NumPy arrays, load into the deconv
network.

One file per kind of layer: :mod:`.module` (Parameter, Module),
:mod:`.conv`, :mod:`.pooling`, :mod:`.upsampling`, :mod:`.activation`,
:mod:`.linear` (Linear, Embedding), :mod:`.reshape` (Flatten, Permute,
Identity), :mod:`.dropout`, :mod:`.container` (Sequential, Concat),
:mod:`.loss`, :mod:`.normalization` (BatchNorm, InstanceNorm, GroupNorm,
LayerNorm), :mod:`.serialization` (weights in and out); :mod:`.init`
(initialisers filling arrays in place, as ``torch.nn.init``) and :mod:`.utils`
(``clip_grad_norm_``, ``clip_grad_value_``) are modules, used as
``nn.init.kaiming_normal_(w)``. The losses are in :mod:`.loss` (the base
class and the regression losses) and :mod:`.loss_likelihood`.
"""

from deconv.nn.activation import ELU, GELU, Hardtanh, LeakyReLU, PReLU, ReLU, Sigmoid, Softplus, Tanh
from deconv.nn.container import Concat, Sequential
from deconv.nn.conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d
from deconv.nn.dropout import Dropout, Dropout1d, Dropout2d, Dropout3d
from deconv.nn.linear import Embedding, Linear
from deconv.nn.loss import HuberLoss, L1Loss, Loss, MSELoss, SmoothL1Loss
from deconv.nn.loss_likelihood import (
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, KLDivLoss, NLLLoss,
)
from deconv.nn.module import Module, Parameter
from deconv.nn.normalization import (
    BatchNorm1d, BatchNorm2d, BatchNorm3d, GroupNorm, InstanceNorm1d, InstanceNorm2d,
    InstanceNorm3d, LayerNorm,
)
from deconv.nn.pooling import AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d, MaxUnpool1d, MaxUnpool2d
from deconv.nn.reshape import Flatten, Identity, Permute
from deconv.nn.serialization import load_weights, save_weights
from deconv.nn.upsampling import PixelShuffle, PixelUnshuffle, Upsample
# issue 13: adaptive pooling
from deconv.nn.adaptive import (
    AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d,
    AdaptiveMaxPool1d, AdaptiveMaxPool2d, AdaptiveMaxPool3d,
)


from deconv.nn import init, utils   # modules, as torch.nn.init and torch.nn.utils


from deconv.nn.padding import (  # issue 13: padding
    CircularPad1d, CircularPad2d, CircularPad3d, ConstantPad1d, ConstantPad2d, ConstantPad3d,
    ReflectionPad1d, ReflectionPad2d, ReflectionPad3d, ReplicationPad1d, ReplicationPad2d,
    ReplicationPad3d, ZeroPad1d, ZeroPad2d, ZeroPad3d,
)

__all__ = [
    "Parameter", "Module",
    "Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d",
    "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "MaxUnpool1d", "MaxUnpool2d",
    "Upsample", "PixelShuffle", "PixelUnshuffle",
    "Linear", "Flatten", "Permute", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity", "Dropout",
    "Embedding", "Sequential", "Concat",
    "Loss", "MSELoss", "L1Loss", "CrossEntropyLoss",
    # issue 14: normalization layers
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d",
    "InstanceNorm3d", "GroupNorm", "LayerNorm",
    # issue 14: weights in and out
    "save_weights", "load_weights",
    # issue 14: activations, channel dropout (deconv.nn.init and deconv.nn.utils are modules)
    "PReLU", "ELU", "GELU", "Softplus", "Hardtanh", "Dropout1d", "Dropout2d", "Dropout3d",
]

# issue 13: fold / unfold
from deconv.nn.fold import Fold, Unfold  # noqa: E402
__all__ += ["Fold", "Unfold"]
# issue 13: adaptive pooling
__all__ += ["AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
            "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d"]
__all__ += [  # issue 13: padding
    "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d",
    "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d",
    "ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "CircularPad1d", "CircularPad2d", "CircularPad3d",
    "ConstantPad1d", "ConstantPad2d", "ConstantPad3d",
]
__all__ += [  # issue 14: losses
    "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "SmoothL1Loss", "HuberLoss", "KLDivLoss",
]
# issue 13: the 3-D family
from deconv.nn.conv import Conv3d, ConvTranspose3d  # noqa: E402
__all__ += ["Conv3d", "ConvTranspose3d"]
from deconv.nn.pooling import AvgPool3d, MaxPool3d, MaxUnpool3d  # noqa: E402
__all__ += ["MaxPool3d", "AvgPool3d", "MaxUnpool3d"]
