"""Weights in and out: a module's ``state_dict`` as ``.npz`` or ``.safetensors`` files.

Both formats hold the arrays under PyTorch's key names with their shapes and
dtypes, so that a file written here loads into the PyTorch twin with
``load_state_dict(strict=True)`` and a file PyTorch users share loads into
the deconv twin. ``.safetensors`` is the format PyTorch users share weights
in; it is read and written with the `safetensors
<https://github.com/huggingface/safetensors>`_ package (NumPy only, no
PyTorch), which is in the ``train`` and ``test`` extras, not the core install.
"""

import os
from collections import OrderedDict

import numpy as np

from deconv.nn.module import Module

__all__ = ["save_weights", "load_weights"]

FORMATS = (".npz", ".safetensors")


def _format(path, name):
    """The file format of ``path`` from its suffix; ValueError naming ``name`` otherwise."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"{name} must be a str or os.PathLike, got {type(path).__name__}") from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FORMATS:
        raise ValueError(f"{name} must end in .npz or .safetensors (the suffix chooses the "
                         f"format), got {path!r}")
    return path, suffix


def _safetensors_numpy():
    """The safetensors package's NumPy interface, or an ImportError saying how to install it."""
    try:
        from safetensors import numpy as st_numpy
    except ImportError:
        raise ImportError(
            ".safetensors files need the safetensors package: pip install safetensors (it is in "
            "deconv's 'train' and 'test' extras)") from None
    return st_numpy


def save_weights(weights, path):
    """Write a module's weights (or a ``state_dict``) to ``path``.

    Parameters
    ----------
    weights : Module or mapping of str -> ndarray
        A module (its :meth:`~deconv.nn.Module.state_dict` is written) or a
        state dict, e.g. one from PyTorch converted with ``np.asarray``.
    path : str or os.PathLike
        Ending in ``.npz`` (``np.savez``, uncompressed) or ``.safetensors``.

    Returns
    -------
    path : str

    Notes
    -----
    Keys, shapes and dtypes are written as they are: a deconv float32 model
    gives float32 arrays under the keys PyTorch's twin has (``0.weight``,
    ``1.running_mean``...), so PyTorch's ``load_state_dict(strict=True)``
    takes the file. Arrays are written in C order; 0-d arrays (a norm
    layer's ``num_batches_tracked``) stay 0-d in both formats.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from deconv import nn
    >>> net = nn.Sequential(nn.Linear(3, 2, rng=0))
    >>> path = save_weights(net, os.path.join(tempfile.mkdtemp(), "net.npz"))
    >>> {k: v.shape for k, v in load_weights(path).items()}
    {'0.weight': (2, 3), '0.bias': (2,)}
    """
    path, suffix = _format(path, "path")
    state = weights.state_dict() if isinstance(weights, Module) else weights
    if not (hasattr(state, "keys") and hasattr(state, "__getitem__")):
        raise TypeError(f"weights must be a deconv.nn.Module or a mapping of names to arrays, "
                        f"got {type(weights).__name__}")
    arrays = OrderedDict()
    for key in state.keys():
        if not isinstance(key, str):
            raise TypeError(f"weights keys must be str, got {key!r}")
        value = np.asarray(state[key])
        if value.dtype.kind not in "biuf":
            raise TypeError(f"weights[{key!r}] must be a real array, got dtype {value.dtype}")
        # (not np.ascontiguousarray, which makes a 0-d array 1-d)
        arrays[key] = value if value.flags.c_contiguous else value.copy(order="C")
    if suffix == ".npz":
        with open(path, "wb") as f:
            np.savez(f, **arrays)
    else:
        _safetensors_numpy().save_file(dict(arrays), path)
    return path


def load_weights(path):
    """Read the arrays of a ``.npz`` or ``.safetensors`` file into a state dict.

    Parameters
    ----------
    path : str or os.PathLike
        Written by :func:`save_weights`, by PyTorch users
        (``safetensors.torch.save_file(model.state_dict(), path)``), or by
        ``np.savez``.

    Returns
    -------
    state : OrderedDict of str -> ndarray
        In the file's order (``.safetensors`` files store their keys
        sorted); pass it to :meth:`~deconv.nn.Module.load_state_dict`, which
        checks every key, shape and dtype against the model.

    Notes
    -----
    Nothing is executed while reading (``np.load`` with
    ``allow_pickle=False``); a ``.safetensors`` file holding a dtype NumPy
    has no equivalent for (bfloat16) is refused by the safetensors package.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from deconv import nn
    >>> a, b = nn.Linear(2, 2, rng=0), nn.Linear(2, 2, rng=1)
    >>> path = save_weights(a, os.path.join(tempfile.mkdtemp(), "a.npz"))
    >>> b.load_state_dict(load_weights(path))
    IncompatibleKeys(missing_keys=[], unexpected_keys=[])
    >>> bool((a.weight.data == b.weight.data).all())
    True
    """
    path, suffix = _format(path, "path")
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            return OrderedDict((key, archive[key]) for key in archive.files)
    return OrderedDict(_safetensors_numpy().load_file(path).items())
