"""Training: :class:`Trainer` (:mod:`deconv.train.trainer`) and its checkpoints
(:mod:`deconv.train.checkpoint`)."""

from deconv.train.checkpoint import (
    CHECKPOINT_FORMAT, CHECKPOINT_NAME, CHECKPOINT_VERSION, load_checkpoint, save_checkpoint,
)
from deconv.train.trainer import NonFiniteError, Trainer

__all__ = [
    "Trainer", "NonFiniteError", "save_checkpoint", "load_checkpoint",
    "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "CHECKPOINT_NAME",
]
