"""deconv: convolution, transposed convolution, pooling, unpooling and upsampling,
forward and backward, as hand-written Numba kernels with PyTorch semantics.

The package is built in rooms, each importing only the ones before it::

    kernels/      Numba loops that trust their inputs (naive beside tiled; one plan module)
    functional/   the validated public ops, their shape arithmetic and every argument check
    nn/           layers with hand-written backward, losses
    optim, train/, models/    optimizers; the trainer and checkpoints; the five model families
    bench/, cli   the benchmark suite and the command line

``import deconv`` loads ``kernels`` and ``functional`` only (the ops are
re-exported here); ``deconv.nn``, ``deconv.optim``, ``deconv.train``,
``deconv.models``, ``deconv.gradcheck``, ``deconv.reference`` and the rest
load on first use. Modules that moved into a room keep their old import
path (:data:`MOVED`), so ``from deconv.conv import conv2d`` still works.
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

from deconv.functional import shapes  # noqa: F401
from deconv.functional.conv import (  # noqa: F401
    conv1d, conv1d_backward, conv2d, conv2d_backward,
    conv_transpose1d, conv_transpose1d_backward, conv_transpose2d, conv_transpose2d_backward,
)
from deconv.functional.pooling import (  # noqa: F401
    avg_pool1d, avg_pool1d_backward, avg_pool2d, avg_pool2d_backward,
    max_pool1d, max_pool1d_backward, max_pool2d, max_pool2d_backward,
    max_unpool1d, max_unpool1d_backward, max_unpool2d, max_unpool2d_backward,
)
from deconv.functional.upsampling import (  # noqa: F401
    pixel_shuffle, pixel_shuffle_backward, pixel_unshuffle, pixel_unshuffle_backward,
    upsample_bilinear2d, upsample_bilinear2d_backward,
    upsample_nearest1d, upsample_nearest1d_backward,
    upsample_nearest2d, upsample_nearest2d_backward,
)
# issue 13: adaptive pooling
from deconv.functional.adaptive import (  # noqa: F401
    adaptive_avg_pool1d, adaptive_avg_pool1d_backward,
    adaptive_avg_pool2d, adaptive_avg_pool2d_backward,
    adaptive_avg_pool3d, adaptive_avg_pool3d_backward,
    adaptive_max_pool1d, adaptive_max_pool1d_backward,
    adaptive_max_pool2d, adaptive_max_pool2d_backward,
    adaptive_max_pool3d, adaptive_max_pool3d_backward,
)


from deconv.functional.padding import pad, pad_backward  # noqa: F401

# Old import path -> the module's room. Both names give the same module object.
MOVED = {
    "deconv.conv": "deconv.functional.conv",
    "deconv.pooling": "deconv.functional.pooling",
    "deconv.upsampling": "deconv.functional.upsampling",
    "deconv.shapes": "deconv.functional.shapes",
    "deconv.data": "deconv.models.data",
    "deconv.metrics": "deconv.models.metrics",
    "deconv.experiments": "deconv.models.recipes",
}

# Submodules loaded on first attribute access (``deconv.nn.Conv2d`` after
# ``import deconv``), so that importing the ops loads no training, plotting
# or benchmark code.
_LAZY = ("nn", "optim", "train", "models", "gradcheck", "reference", "check", "bench", "cli",
         "kernels", "functional")


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old path of :data:`MOVED` to the module in its room."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        module = importlib.import_module(MOVED[spec.name])
        spec.loader_state = module.__spec__
        return module

    def exec_module(self, module):
        # the import system stamped the alias's spec on the real module: put its own back
        module.__spec__ = module.__spec__.loader_state


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f"deconv.{name}")
    if f"deconv.{name}" in MOVED:
        return importlib.import_module(f"deconv.{name}")
    raise AttributeError(f"module 'deconv' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | {m.split(".", 1)[1] for m in MOVED})

# issue 13: fold / unfold
from deconv.functional.fold import fold, fold_backward, unfold, unfold_backward  # noqa: F401,E402

# issue 13: interpolate
from deconv.functional.interpolate import interpolate, interpolate_backward  # noqa: F401,E402


# issue 13: the 3-D family
from deconv.functional.conv import (  # noqa: F401,E402
    conv3d, conv3d_backward, conv_transpose3d, conv_transpose3d_backward,
)
from deconv.functional.pooling import (  # noqa: F401,E402
    avg_pool3d, avg_pool3d_backward, max_pool3d, max_pool3d_backward,
    max_unpool3d, max_unpool3d_backward,
)
from deconv.functional.upsampling import (  # noqa: F401,E402
    upsample_nearest3d, upsample_nearest3d_backward,
    upsample_trilinear3d, upsample_trilinear3d_backward,
)
