"""Optimizers and learning-rate schedulers with ``torch.optim`` semantics.

:class:`SGD`, :class:`Adam`, :class:`AdamW`, :class:`RMSprop` and
:class:`Adagrad` follow the single-tensor ("for-loop") implementations of
their ``torch.optim`` namesakes step for step, operation for operation, in
the parameter's own dtype (a float32 parameter is updated in float32
arithmetic, as a float32 tensor is by torch). :mod:`deconv.optim.lr_scheduler`
has the learning-rate schedulers.

Parameters
----------
An optimizer receives an iterable of *parameter objects*, each with two
attributes:

``data``
    a float32 or float64 ndarray, updated **in place** by ``step()`` (layers
    and user code keep references to it);
``grad``
    ``None`` or an ndarray of the same shape and dtype. A parameter whose
    ``grad`` is ``None`` is skipped by ``step()``, as in torch (its
    momentum buffer or moments and step count are left untouched).

:class:`deconv.nn.Parameter` is such an object; so is any small class with
the two attributes. Instead of parameters, ``params`` may be a list of
*parameter groups*, dicts ``{'params': [...], 'lr': ..., ...}`` whose
options override the constructor's for their parameters;
``optimizer.param_groups`` is that list (with every option filled in) and
``add_param_group`` appends one. A parameter may be in one group only.

State
-----
``state_dict()`` returns a flat ``dict`` whose values are only NumPy arrays
and Python numbers (``int``, ``float``, ``bool``), so that it can be stored
in an ``.npz`` archive and loaded back without pickle; ``load_state_dict``
also accepts the 0-d arrays that ``np.savez`` turns numbers into. The first
group's options are top-level keys (``"lr"``, ``"beta1"``, ...), later
groups' are ``"group.{g}.{option}"``; per-parameter entries are keyed by the
parameter's position over all groups (``"state.0.exp_avg"``, ...). Saving,
loading into a fresh optimizer over the same parameters and continuing gives
bitwise the same steps as never stopping.

Differences from torch
----------------------
* No closures, ``maximize``, ``foreach``, ``fused``, ``capturable`` or
  ``differentiable`` options, no sparse gradients.
* ``SGD`` needs ``lr`` (torch >= 2.6 defaults it to ``1e-3``).
* ``zero_grad()`` fills the gradients with zeros in place by default
  (``set_to_none=False``), because deconv layers accumulate into an existing
  ``grad`` array; ``zero_grad(set_to_none=True)`` behaves like torch's default.
* ``state_dict()`` returns copies (torch returns references to the live
  buffers, which later steps keep modifying), in the flat format above.
* Options must be finite (torch accepts ``lr=nan`` in SGD), betas may be
  given as ints, a parameter listed twice is an error (torch warns and then
  updates it twice), and the extra entries of a parameter group must be
  numbers (torch keeps anything there). Options assigned into
  ``param_groups`` are checked at the next ``step()``.
"""

from deconv.optim.optimizer import Optimizer
from deconv.optim.sgd import SGD
from deconv.optim.adam import Adam, AdamW
from deconv.optim.rmsprop import Adagrad, RMSprop
from deconv.optim import lr_scheduler

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler"]
