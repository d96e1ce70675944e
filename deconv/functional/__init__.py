"""The validated public ops: conv, pooling, upsampling, their shapes and argument checks.

Each public function checks and normalises its arguments (:mod:`.validation`),
computes its output shape (:mod:`.shapes`) and runs a kernel of
:mod:`deconv.kernels`. The ops are re-exported at the top level of
:mod:`deconv`.
"""

from deconv.functional.conv import *  # noqa: F401,F403
from deconv.functional.pooling import *  # noqa: F401,F403
from deconv.functional.upsampling import *  # noqa: F401,F403
