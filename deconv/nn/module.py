"""The base classes: :class:`Parameter` (an array and its gradient) and :class:`Module`.

A :class:`Module` registers the :class:`Parameter` and :class:`Module`
attributes assigned to it, in assignment order, and the buffers (state that
is not trained, such as running statistics) given to
:meth:`Module.register_buffer`; from those registries come
:meth:`Module.named_parameters`, :meth:`Module.named_buffers`,
:meth:`Module.state_dict` and :meth:`Module.load_state_dict`, with the key
names of ``torch.nn`` (``"0.weight"``, ``"encoder.1.bias"``,
``"1.running_mean"``). It also holds the helpers every layer
uses to check its input and its upstream gradient, so that their errors name
the layer.
"""

import contextlib
import math
from collections import OrderedDict, namedtuple

import numpy as np

from deconv.functional.validation import (
    FLOAT_DTYPES, as_bool, as_float_array, as_float_dtype, check_bytes, check_ndim, LAYOUT,
)

__all__ = ["Parameter", "Module"]


@contextlib.contextmanager
def prefixed(where):
    """Re-raise TypeError/ValueError with ``where`` (the layer) in front of the message.

    ``where`` is a string, or a module, whose short repr is then made only when
    an error is raised (layers run this on every forward and backward).
    """
    try:
        yield
    except (TypeError, ValueError) as err:
        label = where._short_repr() if hasattr(where, "_short_repr") else where
        raise type(err)(f"{label}: {err}") from None


def check_parameter_bytes(shape, dtype):
    """Refuse a parameter over the byte cap before it is drawn (in float64, then cast)."""
    check_bytes("weight (drawn in float64)", (shape, np.float64), (shape, dtype))


def torch_uniform_bounds(fan_in):
    """Bounds of torch's default init: kaiming_uniform_(a=sqrt(5)) (weight), 1/sqrt(fan_in) (bias).

    Computed with the very float operations of ``torch.nn.init`` (both are
    ``1/sqrt(fan_in)`` up to one rounding).

    Parameters
    ----------
    fan_in : int
        ``weight.shape[1] * prod(kernel_size)`` (``in_features`` for Linear).

    Returns
    -------
    weight_bound, bias_bound : float
    """
    gain = math.sqrt(2.0 / (1 + math.sqrt(5) ** 2))
    weight_bound = math.sqrt(3.0) * (gain / math.sqrt(fan_in))
    bias_bound = 1 / math.sqrt(fan_in)
    return weight_bound, bias_bound


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])
IncompatibleKeys.__doc__ = """What :meth:`Module.load_state_dict` did not match (torch's ``_IncompatibleKeys``).

missing_keys : list of str
    Parameter and buffer names of the module absent from the dict (left unchanged).
unexpected_keys : list of str
    Keys of the dict that name no parameter or buffer (ignored).
"""


class Parameter:
    """A trainable array and its accumulated gradient.

    Parameters
    ----------
    data : ndarray of float32 or float64
        The values; stored as given (not copied).

    Attributes
    ----------
    data : ndarray
        Current values; layers read it at every forward.
    grad : ndarray, same shape and dtype as ``data``
        Sum of the gradients of every backward since the last
        :meth:`zero_grad`; starts at zero.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> p = nn.Parameter(np.ones((2, 3), dtype=np.float32))
    >>> p.grad.dtype, p.grad.shape, float(p.grad.sum())
    (dtype('float32'), (2, 3), 0.0)
    """

    __slots__ = ("data", "grad")

    def __init__(self, data):
        """Keep ``data`` (float32 or float64 ndarray, not copied) and a zero gradient."""
        if not isinstance(data, np.ndarray) or data.dtype not in FLOAT_DTYPES:
            raise TypeError(
                "Parameter data must be a NumPy array of float32 or float64, got "
                + (f"dtype {data.dtype}" if isinstance(data, np.ndarray) else type(data).__name__)
            )
        self.data = data
        self.grad = np.zeros_like(data)

    @property
    def shape(self):
        """Shape of ``data``."""
        return self.data.shape

    @property
    def dtype(self):
        """dtype of ``data`` (float32 or float64)."""
        return self.data.dtype

    @property
    def size(self):
        """Number of elements of ``data``."""
        return self.data.size

    def zero_grad(self):
        """Set ``grad`` to zero in place."""
        self.grad[...] = 0

    def __repr__(self):
        """``Parameter(shape=..., dtype=...)`` (the values are not printed)."""
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class of every layer and network.

    Subclasses call ``super().__init__()`` first, then assign
    :class:`Parameter` and :class:`Module` attributes, which are registered
    in assignment order (that order is the one of :meth:`parameters` and
    :meth:`named_parameters`, as in PyTorch). They implement
    :meth:`forward` and :meth:`backward`.

    :meth:`state_dict` and :meth:`load_state_dict` use the parameter names
    of :meth:`named_parameters`, which are those of ``torch.nn``, so weights
    move between a deconv network and its PyTorch twin as a dict of arrays.

    Attributes
    ----------
    training : bool
        True after construction and :meth:`train`, False after :meth:`eval`.
    input_grad : bool
        Whether :meth:`backward` must return the gradient with respect to the
        input; True after construction. Set it to False on the module that is
        fed the data, which needs no gradient (PyTorch's analogue: an input
        without ``requires_grad``, for which autograd skips that gradient).
        The convolution layers then skip their input-gradient pass (as costly
        as their forward) and return None; a :class:`~deconv.nn.Sequential`
        hands the request to its first child and a
        :class:`~deconv.nn.Concat` to every branch, and both return None.
        Layers whose input gradient is not a pass of its own compute it
        anyway. The parameter gradients are bitwise the same either way.
        :class:`deconv.train.Trainer` sets it on the model it trains.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.ReLU())
    >>> net.input_grad = False
    >>> y = net(np.ones((1, 1, 4, 4), dtype=np.float32))
    >>> net.backward(np.ones_like(y)) is None, net[0].weight.grad.shape
    (True, (2, 1, 3, 3))
    """

    def __init__(self):
        """Empty registries, training mode, no forward saved yet."""
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_input_grad", True)
        object.__setattr__(self, "_cache", None)

    @property
    def input_grad(self):
        """Whether :meth:`backward` must return the input gradient (see the class Attributes)."""
        return self._input_grad

    @input_grad.setter
    def input_grad(self, value):
        """Set the flag: a bool (TypeError naming the module otherwise)."""
        with prefixed(type(self).__name__ + ".input_grad"):
            object.__setattr__(self, "_input_grad", as_bool(value, "value"))

    def __setattr__(self, name, value):
        """Register a :class:`Parameter` or :class:`Module` value under ``name`` (in order)."""
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() is called; call "
                f"super().__init__() first in {type(self).__name__}.__init__"
            )
        # A name re-assigned with the same kind keeps its place in the order
        # (as torch's dict assignment does), so tying ``b.weight = a.weight``
        # leaves the state_dict keys in the order of the PyTorch twin.
        if name in self._buffers:
            # a registered buffer stays one (torch: a buffer takes a tensor or None)
            if value is not None and not isinstance(value, np.ndarray):
                raise TypeError(
                    f"cannot assign {type(value).__name__} to buffer {name!r} of "
                    f"{type(self).__name__}: a buffer holds an ndarray or None")
            self._buffers[name] = value
        elif isinstance(value, Parameter):
            self._modules.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._modules[name] = value
        else:
            self._parameters.pop(name, None)
            self._modules.pop(name, None)
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        """Remove the attribute and its registration."""
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    # -- computation ---------------------------------------------------------

    def forward(self, x):
        """Compute the output and remember what :meth:`backward` needs.

        What a layer remembers may be its input or its output themselves, not
        copies (a copy per layer would cost a pass over each array, as
        torch's saved tensors are not copies either): change neither in place
        between the forward and the backward.

        Parameters
        ----------
        x : ndarray or array-like

        Returns
        -------
        y : ndarray
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def backward(self, grad_output):
        """Input gradient of the last forward; adds the parameter gradients to ``.grad``.

        Parameters
        ----------
        grad_output : ndarray or array-like, shape and dtype of the last output

        Returns
        -------
        grad_input : ndarray or None, shape of the last input
            None when the input was not a float array (indices).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement backward()")

    def __call__(self, x):
        """``module(x)`` is ``module.forward(x)``."""
        return self.forward(x)

    def _save(self, output=None, **values):
        """Keep ``values`` for the backward of this forward (replacing the last ones).

        ``output``, the forward's result, fixes the shape and dtype that
        :meth:`_saved_and_grad` requires of the upstream gradient.
        """
        if output is not None:
            # byte order does not count (a big-endian input may be passed through)
            values["output_like"] = (output.shape, output.dtype.newbyteorder("="))
        object.__setattr__(self, "_cache", values)

    @staticmethod
    @contextlib.contextmanager
    def _without_input_grad(module):
        """Run ``module`` (a child) with ``input_grad`` False for the block, then restore it.

        How a container passes its own "no input gradient" on to the
        children that receive its input.
        """
        before = module._input_grad
        object.__setattr__(module, "_input_grad", False)
        try:
            yield
        finally:
            object.__setattr__(module, "_input_grad", before)

    def _saved(self):
        """The values the last forward saved; RuntimeError if there was none."""
        if self._cache is None:
            raise RuntimeError(
                f"{self._short_repr()}.backward() called before forward(): run a forward "
                f"pass first (backward differentiates the last forward)"
            )
        return self._cache

    def _saved_and_grad(self, grad_output):
        """The saved values and ``grad_output`` checked against the last forward's output.

        ``grad_output`` goes through ``as_float_array`` (array-likes
        accepted, as by the functional ops) and must have the output's shape
        and dtype (float32 in gives float32 out, backward included).
        """
        cache = self._saved()
        shape, dtype = cache["output_like"]
        with prefixed(self):
            grad_output = as_float_array(grad_output, "grad_output")
        if grad_output.shape != shape:
            raise ValueError(
                f"{self._short_repr()}: grad_output must have the shape of the last forward's "
                f"output {shape}, got {grad_output.shape}"
            )
        if grad_output.dtype.newbyteorder("=") != dtype:
            raise TypeError(
                f"{self._short_repr()}: grad_output must have the dtype of the last forward's "
                f"output ({dtype}), got {grad_output.dtype}; convert it with "
                f".astype(np.{dtype})"
            )
        return cache, grad_output

    def _input(self, x, ndim=None, like_input=()):
        """``x`` as a float32/float64 array, as every functional op takes it.

        Array-likes are converted by
        :func:`deconv.functional.validation.as_float_array` (a list of
        Python floats becomes float64; integer, bool, complex and float16
        data are refused). With ``ndim``, the batched layout is required
        (an unbatched input is refused with a hint). ``like_input``: the
        dtypes of the arrays of x's shape the forward allocates (its output
        and what it saves), refused over the byte cap before any is made (x
        may be a broadcast view far larger than its memory). Errors name the
        layer.
        """
        with prefixed(self):
            x = as_float_array(x, "input")
            if ndim is not None:
                check_ndim(x, "x", ndim, LAYOUT[ndim - 2])
            if like_input:
                check_bytes("output", *[(x.shape, x.dtype if d is None else d)
                                        for d in like_input])
        return x

    def _check_bytes(self, what, *parts):
        """:func:`~deconv.functional.validation.check_bytes`, the error naming the layer."""
        with prefixed(self):
            check_bytes(what, *parts)

    def _check_parameter_dtype(self, x, dtype):
        """A layer with parameters takes inputs of their dtype only: say how to convert.

        Byte order does not count: the ops take big-endian data as the same numbers.
        """
        if x.dtype.newbyteorder("=") != dtype:
            raise TypeError(
                f"{self._short_repr()} has {dtype} parameters but the input has dtype "
                f"{x.dtype}; convert the input (x.astype(np.{dtype})) or the layer "
                f"(layer.to(np.{x.dtype}))"
            )

    # -- structure -----------------------------------------------------------

    def register_buffer(self, name, array):
        """Register ``array`` as a buffer: module state that is saved but not trained.

        Parameters
        ----------
        name : str
            The attribute name (``module.<name>``) and the last part of the
            state_dict key; no ``"."``, not already an attribute.
        array : ndarray or None
            float32, float64 or integer data, kept as given (not copied);
            ``None`` registers the name without state (left out of
            :meth:`state_dict`, as in torch).

        Notes
        -----
        As ``torch.nn.Module.register_buffer``: the buffer is listed by
        :meth:`named_buffers`, saved by :meth:`state_dict` after the
        module's own parameters and loaded by :meth:`load_state_dict`;
        :meth:`to` casts float buffers and leaves integer ones (a step
        counter stays int64). Assigning ``module.<name> = other`` later
        replaces it (an ndarray or None). Optimizers never see buffers.

        Examples
        --------
        >>> import numpy as np
        >>> from deconv import nn
        >>> m = nn.Module()
        >>> m.register_buffer("count", np.array(0, dtype=np.int64))
        >>> m.count += 1
        >>> dict(m.state_dict())
        {'count': array(1)}
        """
        where = f"{type(self).__name__}.register_buffer"
        if not isinstance(name, str):
            raise TypeError(f"{where}: name must be a str, got {name!r}")
        if not name or "." in name:
            raise ValueError(f"{where}: name must be a non-empty str without '.', got {name!r}")
        if name not in self._buffers and (hasattr(self, name) or name in self._parameters
                                          or name in self._modules):
            raise ValueError(f"{where}: name {name!r} is already an attribute of "
                             f"{type(self).__name__}")
        if array is not None and not (isinstance(array, np.ndarray) and array.dtype.kind in "fiu"
                                      and array.dtype.itemsize >= 4):
            raise TypeError(
                f"{where}: array must be a float32, float64 or integer ndarray, or None, got "
                + (f"dtype {array.dtype}" if isinstance(array, np.ndarray)
                   else type(array).__name__))
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    def named_buffers(self, prefix=""):
        """``(dotted_name, ndarray)`` of every buffer, in PyTorch's order.

        A module's own buffers (in registration order), then its
        sub-modules', depth-first; ``None`` buffers are skipped and an array
        registered twice is listed once, as in ``torch.nn.Module``.

        Returns
        -------
        list of (str, ndarray)
        """
        out, seen = [], set()
        for mod_name, module in self.named_modules(prefix):
            for name, b in module._buffers.items():
                if b is not None and id(b) not in seen:
                    seen.add(id(b))
                    out.append((f"{mod_name}.{name}" if mod_name else name, b))
        return out

    def buffers(self):
        """Every buffer array, in the order of :meth:`named_buffers`.

        Returns
        -------
        list of ndarray
        """
        return [b for _, b in self.named_buffers()]

    def named_children(self):
        """Iterator over ``(name, module)`` of the direct sub-modules, in registration order."""
        return iter(self._modules.items())

    def children(self):
        """Iterator over the direct sub-modules."""
        return (m for _, m in self.named_children())

    def named_modules(self, prefix=""):
        """Iterator over ``(dotted_name, module)``: this module (named ``prefix``), then the
        sub-modules, depth-first."""
        seen = set()

        def walk(module, name):
            """Yield ``module`` once, then its sub-modules under dotted names."""
            if id(module) in seen:
                return
            seen.add(id(module))
            yield name, module
            for child_name, child in module._modules.items():
                yield from walk(child, f"{name}.{child_name}" if name else child_name)

        return walk(self, prefix)

    def modules(self):
        """Iterator over this module and every sub-module, depth-first."""
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix=""):
        """``(dotted_name, Parameter)`` pairs, in PyTorch's order.

        A module's own parameters (in assignment order) come before those of
        its sub-modules, which follow depth-first; names are dotted paths
        (``"0.weight"``, ``"3.1.0.bias"``), as in ``torch.nn.Module``. A
        parameter shared by several modules is listed once, under its first
        name.

        Returns
        -------
        list of (str, Parameter)
        """
        out, seen = [], set()
        for mod_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append((f"{mod_name}.{name}" if mod_name else name, p))
        return out

    def parameters(self):
        """Every :class:`Parameter`, in the order of :meth:`named_parameters`.

        Returns
        -------
        list of Parameter
        """
        return [p for _, p in self.named_parameters()]

    def zero_grad(self):
        """Set the ``.grad`` of every parameter to zero (in place)."""
        for p in self.parameters():
            p.zero_grad()

    def train(self, mode=True):
        """Set the training flag of this module and every sub-module; returns ``self``."""
        with prefixed(type(self).__name__ + ".train"):
            mode = as_bool(mode, "mode")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        """Evaluation mode (``train(False)``): Dropout becomes the identity. Returns ``self``."""
        return self.train(False)

    def to(self, dtype):
        """Convert every parameter (values and gradients) and float buffer to float32 or float64.

        The :class:`Parameter` objects are kept (an optimizer holding them
        keeps working); their arrays are replaced. Integer buffers
        (``num_batches_tracked``) keep their dtype, as in torch. Returns
        ``self``.
        """
        with prefixed(type(self).__name__ + ".to"):
            dt = as_float_dtype(dtype)
        for p in self.parameters():
            p.data = p.data.astype(dt)
            p.grad = p.grad.astype(dt)
        for module in self.modules():
            for name, b in list(module._buffers.items()):
                if b is not None and b.dtype.kind == "f":
                    setattr(module, name, b.astype(dt))
        return self

    # -- state: PyTorch's key names ------------------------------------------

    def _every_named_state(self, prefix=""):
        """``(dotted_name, module, attribute, Parameter or None)`` of every state_dict entry.

        In ``torch.nn.Module.state_dict`` order: the module's own parameters,
        then its own buffers (``None`` ones skipped), then each child's,
        depth-first. A parameter shared by two modules appears under both
        names. The last item is the Parameter, or None for a buffer.
        """
        for name, p in self._parameters.items():
            yield (f"{prefix}.{name}" if prefix else name), self, name, p
        for name, b in self._buffers.items():
            if b is not None:
                yield (f"{prefix}.{name}" if prefix else name), self, name, None
        for child_name, child in self._modules.items():
            yield from child._every_named_state(
                f"{prefix}.{child_name}" if prefix else child_name)

    def state_dict(self):
        """Copies of every parameter and buffer under PyTorch's key names.

        Returns
        -------
        state : OrderedDict of str -> ndarray
            ``"0.weight"``, ``"encoder.1.bias"``, ``"1.running_mean"``...:
            the dotted path of each parameter and buffer (children of a
            :class:`Sequential` named by index, attributes by name), in the
            order of ``torch.nn.Module.state_dict`` (a module's own
            parameters, then its own buffers, then its children's,
            depth-first). A shared parameter appears under each of its names.
            The arrays are copies: a later optimizer step or training forward
            does not change a saved dict.

        Notes
        -----
        Buffers are the running statistics of the normalization layers
        (``running_mean``, ``running_var`` in the layer's float dtype,
        ``num_batches_tracked`` an int64 0-d array), so the keys, shapes and
        dtypes are exactly those of a PyTorch twin with the same structure;
        ``np.savez(path, **model.state_dict())`` and
        ``model.load_state_dict(np.load(path))`` round-trip.

        Examples
        --------
        >>> import numpy as np
        >>> from deconv import nn
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.ReLU(), nn.Linear(4, 3, rng=0))
        >>> {k: v.shape for k, v in net.state_dict().items()}
        {'0.weight': (2, 1, 3, 3), '0.bias': (2,), '2.weight': (3, 4), '2.bias': (3,)}
        """
        return OrderedDict(
            (name, (p.data if p is not None else module._buffers[attr]).copy())
            for name, module, attr, p in self._every_named_state())

    def load_state_dict(self, state_dict, strict=True):
        """Copy parameter and buffer values from a dict keyed like :meth:`state_dict` (e.g. a PyTorch twin's).

        Parameters
        ----------
        state_dict : mapping of str -> array-like
            A dict, an ``OrderedDict``, the ``NpzFile`` of ``np.load`` or a
            PyTorch ``state_dict()`` (CPU tensors convert with
            ``np.asarray``). Values must have each entry's shape; a
            parameter or float buffer takes float32 or float64 data, an
            integer buffer (``num_batches_tracked``) integer data.
        strict : bool, default True
            Every parameter and buffer must have a key and every key name
            one (ValueError otherwise). With False, missing keys leave
            their entries unchanged and unexpected keys are ignored.

        Returns
        -------
        IncompatibleKeys
            Named tuple ``(missing_keys, unexpected_keys)`` of lists, as
            torch returns (both empty after a strict load).

        Raises
        ------
        TypeError
            A key that is not a str, or a value whose dtype does not fit:
            float32 or float64 for a parameter or float buffer (integer,
            bool, complex and float16 data are refused), an integer dtype
            for an integer buffer.
        ValueError
            Missing or unexpected keys under ``strict``; a value whose shape
            differs from its parameter's (arrays are never reshaped); two
            different values for one shared parameter.

        Notes
        -----
        Everything is checked before any parameter changes, so a failed load
        leaves the module as it was. The values are copied *into* the
        existing arrays (as torch's ``param.copy_``): the :class:`Parameter`
        objects and their arrays stay those an optimizer holds, and the dict
        is not aliased. A value is cast to its parameter's dtype, as torch
        does: a float64 array loads into a float32 model rounded to float32,
        a float32 array into a float64 model exactly. The model's dtype is
        chosen at construction (or with :meth:`to`), never by the dict.
        Gradients are left as they are. An integer buffer takes any integer
        array that fits its dtype and keeps its own dtype. Unlike torch, a
        dict without ``num_batches_tracked`` is not completed silently (torch
        fills it in for dicts without version metadata, such as a NumPy
        ``.npz``): under ``strict`` it is a missing key like any other.

        Examples
        --------
        >>> import numpy as np
        >>> from deconv import nn
        >>> a = nn.Sequential(nn.Linear(2, 2, rng=0), nn.Tanh(), nn.Linear(2, 1, rng=1))
        >>> b = nn.Sequential(nn.Linear(2, 2, rng=2), nn.Tanh(), nn.Linear(2, 1, rng=3))
        >>> b.load_state_dict(a.state_dict())
        IncompatibleKeys(missing_keys=[], unexpected_keys=[])
        >>> x = np.ones((1, 2), dtype=np.float32)
        >>> bool((a(x) == b(x)).all())
        True
        """
        where = f"{type(self).__name__}.load_state_dict"
        if not (hasattr(state_dict, "keys") and hasattr(state_dict, "__getitem__")):
            raise TypeError(
                f"{where}: state_dict must be a mapping of parameter names to arrays (a dict, "
                f"an np.load'ed .npz, a torch state_dict), got {type(state_dict).__name__}")
        with prefixed(where):
            strict = as_bool(strict, "strict")
        keys = list(state_dict.keys())
        for key in keys:
            if not isinstance(key, str):
                raise TypeError(f"{where}: keys must be str parameter names, got {key!r}")
        targets = list(self._every_named_state())
        own = {name for name, *_ in targets}
        given = set(keys)
        missing = [name for name, *_ in targets if name not in given]
        unexpected = [key for key in keys if key not in own]
        if strict and (missing or unexpected):
            raise ValueError(
                f"{where}: the keys do not match the parameter and buffer names: missing keys "
                f"{missing}, unexpected keys {unexpected} (strict=False loads the matching ones)")
        updates = {}                                   # id(target array holder) -> (name, array, values)
        for name, module, attr, p in targets:
            if name not in given:
                continue
            current = p.data if p is not None else module._buffers[attr]
            value = state_dict[name]
            array = value if isinstance(value, np.ndarray) else np.asarray(value)
            if current.dtype.kind == "f":
                if array.dtype.kind != "f" or array.dtype.newbyteorder("=") not in FLOAT_DTYPES:
                    raise TypeError(
                        f"{where}: {name!r} must be a float32 or float64 array, got dtype "
                        f"{array.dtype}")
            elif array.dtype.kind not in "iu":
                raise TypeError(
                    f"{where}: {name!r} is an integer buffer ({current.dtype}) and must be an "
                    f"integer array, got dtype {array.dtype}")
            elif not np.can_cast(array.dtype, current.dtype) and array.size and not (
                    np.iinfo(current.dtype).min <= array.min()
                    and array.max() <= np.iinfo(current.dtype).max):
                raise ValueError(
                    f"{where}: {name!r} holds values outside the range of its buffer's dtype "
                    f"{current.dtype}")
            if array.shape != current.shape:
                raise ValueError(
                    f"{where}: {name!r} has shape {array.shape} but the "
                    f"{'parameter' if p is not None else 'buffer'} has shape {current.shape} "
                    f"(arrays are never reshaped)")
            if not current.flags.writeable:
                raise ValueError(f"{where}: the array of {name!r} is read-only")
            values = array.astype(current.dtype)       # a copy, in the entry's dtype
            key = id(current)
            if key in updates and not np.array_equal(updates[key][2], values, equal_nan=True):
                raise ValueError(
                    f"{where}: {updates[key][0]!r} and {name!r} name one shared parameter "
                    f"but hold different values")
            updates[key] = (name, current, values)
        for _, current, values in updates.values():
            current[...] = values
        return IncompatibleKeys(missing, unexpected)

    # -- printing ------------------------------------------------------------

    def extra_repr(self):
        """The text inside the parentheses of this module's one-line repr."""
        return ""

    def _short_repr(self):
        """``ClassName(extra_repr)``: how errors and containers name this module."""
        return f"{type(self).__name__}({self.extra_repr()})"

    def __repr__(self):
        """One line for a leaf; one line per child, indented, for a container (as torch)."""
        if not self._modules:
            return self._short_repr()
        lines = [f"{type(self).__name__}("]
        if self.extra_repr():
            lines.append(f"  {self.extra_repr()}")
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        lines.append(")")
        return "\n".join(lines)


