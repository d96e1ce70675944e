"""deconv: convolution, transposed convolution, pooling, unpooling and upsampling,
forward and backward, as hand-written Numba kernels with PyTorch semantics."""

__version__ = "0.1.0"

from deconv import shapes  # noqa: F401
from deconv import gradcheck  # noqa: F401
from deconv import nn  # noqa: F401
from deconv import optim  # noqa: F401
from deconv import train  # noqa: F401
from deconv import data, metrics, models  # noqa: F401

# --- conv (lead) ---
from deconv.conv import (  # noqa: F401
    conv1d, conv1d_backward, conv2d, conv2d_backward,
    conv_transpose1d, conv_transpose1d_backward, conv_transpose2d, conv_transpose2d_backward,
)
# --- end conv ---

# --- pooling ---
from deconv.pooling import (  # noqa: F401
    avg_pool1d,
    avg_pool1d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    max_pool1d,
    max_pool1d_backward,
    max_pool2d,
    max_pool2d_backward,
    max_unpool1d,
    max_unpool1d_backward,
    max_unpool2d,
    max_unpool2d_backward,
)
# --- end pooling ---

# --- upsampling ---
from deconv.upsampling import (  # noqa: F401
    pixel_shuffle,
    pixel_shuffle_backward,
    pixel_unshuffle,
    pixel_unshuffle_backward,
    upsample_bilinear2d,
    upsample_bilinear2d_backward,
    upsample_nearest1d,
    upsample_nearest1d_backward,
    upsample_nearest2d,
    upsample_nearest2d_backward,
)
# --- end upsampling ---
