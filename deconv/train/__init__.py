"""Training: :class:`Trainer` (:mod:`deconv.train.trainer`) and its checkpoints."""

from deconv.train.trainer import (
    CHECKPOINT_FORMAT, CHECKPOINT_NAME, CHECKPOINT_VERSION, NonFiniteError, Trainer,
    load_checkpoint, save_checkpoint,
)

__all__ = [
    "Trainer", "NonFiniteError", "save_checkpoint", "load_checkpoint",
    "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "CHECKPOINT_NAME",
]
