"""Containers: Sequential (a chain) and Concat (parallel branches joined on channels).

A container's forward runs its children's forwards and its backward runs
their backwards in reverse, so a network needs no autograd. Children are
named ``"0"``, ``"1"``, ... as in ``torch.nn.Sequential``, which gives
parameter names such as ``"0.weight"`` and ``"2.1.bias"``.
"""

from collections import OrderedDict

import numpy as np

from deconv.nn.module import Module

__all__ = ["Sequential", "Concat"]


def _check_unique(container):
    """Refuse a module instance that appears twice in the tree (its cache holds one forward)."""
    seen = {}

    def walk(module, name):
        """Record ``module`` under its dotted ``name``; descend into its children."""
        if id(module) in seen:
            raise ValueError(
                f"{type(container).__name__}: the module instance {module._short_repr()} appears "
                f"twice (as {seen[id(module)]!r} and {name!r}); without autograd a module holds "
                f"the cache of one forward only, so use separate instances (they may share a "
                f"Parameter)")
        seen[id(module)] = name
        for child_name, child in module._modules.items():
            walk(child, f"{name}.{child_name}" if name else child_name)

    walk(container, "")



def _describe(value):
    """``the class ReLU`` or ``a ndarray``: what was passed where a module belongs."""
    return f"the class {value.__name__}" if isinstance(value, type) else f"a {type(value).__name__}"

class Sequential(Module):
    """Modules applied in order; backward runs them in reverse.

    Parameters
    ----------
    *modules : Module
        Registered as children ``"0"``, ``"1"``, ... (so parameter names are
        ``"0.weight"``, ...). A single ``OrderedDict`` of name -> module
        gives named children instead, as in torch.

    Notes
    -----
    Indexable (an int gives the module, a slice a new Sequential of the same
    modules under the same names), iterable, with ``len``. A module instance may appear only once
    in the whole tree (ValueError otherwise).

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=0), nn.ReLU(), nn.MaxPool2d(2))
    >>> [name for name, _ in net.named_parameters()]
    ['0.weight', '0.bias']
    >>> y = net(np.ones((2, 1, 8, 8), dtype=np.float32))
    >>> y.shape, net.backward(np.ones_like(y)).shape
    ((2, 4, 4, 4), (2, 1, 8, 8))
    """

    def __init__(self, *modules):
        """Register the children (by index, or by the names of one OrderedDict)."""
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            items = list(modules[0].items())
        else:
            items = [(str(i), m) for i, m in enumerate(modules)]
        for name, m in items:
            if not isinstance(m, Module):
                raise TypeError(
                    f"Sequential: modules must be Module instances, got {_describe(m)} at "
                    f"position {name}")
            setattr(self, name, m)
        _check_unique(self)

    def append(self, module):
        """Add ``module`` at the end; returns ``self``."""
        if not isinstance(module, Module):
            raise TypeError(f"Sequential.append: expected a Module, got {type(module).__name__}")
        setattr(self, str(len(self)), module)
        try:
            _check_unique(self)
        except ValueError:
            delattr(self, str(len(self) - 1))
            raise
        return self

    def __len__(self):
        """Number of children."""
        return len(self._modules)

    def __iter__(self):
        """The children, in order."""
        return iter(self._modules.values())

    def __getitem__(self, index):
        """``net[i]``: the child; ``net[a:b]``: a Sequential of those children, names kept."""
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))   # keeps the names, as torch
        return items[index][1]

    def forward(self, x):
        """Apply every module in order.

        Parameters
        ----------
        x : ndarray or array-like
            What the first module takes.

        Returns
        -------
        y : ndarray
            What the last module returns.
        """
        for m in self._modules.values():
            x = m.forward(x)
        self._save(done=True)
        return x

    def backward(self, grad_output):
        """Every module's backward in reverse order; returns the first module's input gradient.

        Parameters
        ----------
        grad_output : ndarray, shape and dtype of the last output

        Returns
        -------
        grad_input : ndarray or None
            The first module's input gradient (None after an Embedding, and
            with ``input_grad`` False: the first module is then run with
            ``input_grad`` False, so that a convolution skips that pass).
        """
        self._saved()
        g = grad_output
        children = list(self._modules.values())
        for m in reversed(children[1:]):
            g = m.backward(g)
        if not children:
            return g
        if self.input_grad:
            return children[0].backward(g)
        with self._without_input_grad(children[0]):
            children[0].backward(g)
        return None


class Concat(Module):
    """Run several branches on one input and join their outputs on the channel axis (axis 1).

    Parameters
    ----------
    *branches : Module
        Children ``"0"``, ``"1"``, ... Every branch's output must agree
        with the others on every axis but the channel axis.

    Notes
    -----
    ``forward(x) = concatenate([b(x) for b in branches], axis=1)``;
    ``backward`` splits the gradient by each branch's channel count and
    returns the sum of the branches' input gradients. With
    ``Concat(Identity(), block)`` this is a U-Net-style skip connection::

        (N, C, H, W) -> (N, C + C_block, H, W)

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> skip = nn.Concat(nn.Identity(), nn.Conv2d(3, 5, 3, padding=1, rng=0))
    >>> x = np.ones((2, 3, 4, 4), dtype=np.float32)
    >>> y = skip(x)
    >>> y.shape, skip.backward(np.ones_like(y)).shape
    ((2, 8, 4, 4), (2, 3, 4, 4))
    """

    def __init__(self, *branches):
        """Register the branches as children ``"0"``, ``"1"``, ..."""
        super().__init__()
        if not branches:
            raise ValueError("Concat: give at least one branch")
        for i, m in enumerate(branches):
            if not isinstance(m, Module):
                raise TypeError(
                    f"Concat: branches must be Module instances, got {_describe(m)} at "
                    f"position {i}")
            setattr(self, str(i), m)
        _check_unique(self)

    def __len__(self):
        """Number of children."""
        return len(self._modules)

    def __iter__(self):
        """The children, in order."""
        return iter(self._modules.values())

    def __getitem__(self, index):
        """``cat[i]``: the ``i``-th branch."""
        return list(self._modules.values())[index]

    def forward(self, x):
        """``(N, C, *spatial) -> (N, sum of the branches' channels, *spatial_out)``.

        Parameters
        ----------
        x : ndarray or array-like, shape (N, C, *spatial)
            Given to every branch.

        Returns
        -------
        y : ndarray, shape (N, sum of the branches' channels, *spatial_out)
        """
        outs = [m.forward(x) for m in self._modules.values()]
        first = outs[0]
        for i, o in enumerate(outs):
            if (not isinstance(o, np.ndarray) or o.ndim < 2 or o.ndim != first.ndim
                    or o.shape[:1] + o.shape[2:] != first.shape[:1] + first.shape[2:]):
                shapes = ", ".join(f"branch {j}: {np.shape(a)}" for j, a in enumerate(outs))
                raise ValueError(
                    f"Concat: branch outputs must agree on every axis but the channel axis 1, "
                    f"got {shapes} for an input of shape {np.shape(x)}")
        self._check_bytes("output", (first.shape[:1] + (sum(o.shape[1] for o in outs),)
                                     + first.shape[2:], first.dtype))
        y = np.concatenate(outs, axis=1)
        self._save(y, channels=[o.shape[1] for o in outs])
        return y

    def backward(self, grad_output):
        """Split the gradient along axis 1 and sum the branches' input gradients.

        Parameters
        ----------
        grad_output : ndarray or array-like, shape and dtype of the last output

        Returns
        -------
        grad_input : ndarray, shape of the last input, or None with ``input_grad`` False
        """
        c, g = self._saved_and_grad(grad_output)
        bounds = np.cumsum(c["channels"])[:-1]
        total = None
        for m, part in zip(self._modules.values(), np.split(g, bounds, axis=1)):
            if not self.input_grad:
                with self._without_input_grad(m):
                    m.backward(part)
                continue
            gi = m.backward(part)
            if gi is None:
                continue
            if total is None:
                total = np.array(gi, copy=True)  # never add into a branch's (or the caller's) array
            else:
                total += gi
        return total


