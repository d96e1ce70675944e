"""Finite-difference gradient checking.

Central differences in float64: ``(f(x + eps*e) - f(x - eps*e)) / (2*eps)``
has truncation error O(eps^2) and rounding error O(1e-16 / eps); with
``eps = 1e-6`` both sit near 1e-10 for well-scaled functions.

:func:`numerical_gradient` and :func:`directional_derivative` are the
building blocks; :func:`gradcheck` checks the hand-written backward of any
:mod:`deconv.nn` layer, network or loss against them and returns a
:class:`GradcheckReport` (or raises :class:`GradcheckError`). :func:`compare`
is the one-line check the notebooks print: exact / approx / maxdiff, and an
error when they disagree.

The module itself is callable: ``deconv.gradcheck(layer, x)`` is
``deconv.gradcheck.gradcheck(layer, x)``, as ``torch.autograd.gradcheck``
is a function.
"""

import inspect
import math
import sys
import types
from dataclasses import dataclass

import numpy as np

__all__ = ["numerical_gradient", "directional_derivative", "gradcheck", "GradcheckReport",
           "GradcheckError", "TensorCheck", "compare"]


def compare(name, actual, expected, *, rtol=1e-7, atol=1e-10, quiet=False):
    """Compare two arrays, print one line and raise if they disagree.

    Parameters
    ----------
    name : str
        What is compared, printed first.
    actual, expected : array_like
        The arrays; their shapes must be equal (no broadcasting, so a
        transposed or mis-shaped result is an error, not a pass).
    rtol, atol : float
        ``approx`` holds when ``|actual - expected| <= atol + rtol * |expected|``
        everywhere, NaN matching NaN.
    quiet : bool
        Skip the printed line.

    Returns
    -------
    maxdiff : float
        The largest absolute difference (0.0 for empty arrays).

    Raises
    ------
    AssertionError
        When the shapes differ or ``approx`` does not hold.

    Notes
    -----
    The printed line reads ``name | exact: bool | approx: bool | maxdiff: x``:
    ``exact`` is bitwise equality of the values, ``approx`` the tolerance test.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv.gradcheck import compare
    >>> compare("sum", np.array([0.1 + 0.2]), np.array([0.3]))  # doctest: +ELLIPSIS
    sum | exact: False | approx: True | maxdiff: 5.55e-17
    5.55...e-17
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        raise AssertionError(f"{name}: shape {actual.shape} != expected shape {expected.shape}")
    exact = bool(np.array_equal(actual, expected, equal_nan=True))
    approx = bool(np.allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True))
    if actual.size:
        difference = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
        maxdiff = float(np.nanmax(difference)) if not np.all(np.isnan(difference)) else 0.0
    else:
        maxdiff = 0.0
    if not quiet:
        print(f"{name} | exact: {exact} | approx: {approx} | maxdiff: {maxdiff:.3g}")
    if not approx:
        raise AssertionError(f"{name}: max |difference| {maxdiff:.3g} exceeds atol={atol} + rtol={rtol}*|expected|")
    return maxdiff


def numerical_gradient(func, array, eps=1e-6):
    """Central-difference gradient of the scalar ``func()`` with respect to ``array``.

    ``array`` (float64) is perturbed in place, one element at a time, and
    restored; ``func`` takes no arguments and reads it.

    Parameters
    ----------
    func : callable () -> float
    array : ndarray of float64
    eps : float

    Returns
    -------
    grad : ndarray, same shape as ``array``
    """
    if array.dtype != np.float64:
        raise TypeError(f"array must be float64 for finite differences, got {array.dtype}")
    grad = np.zeros_like(array)
    flat = array.reshape(-1)
    gflat = grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + eps
        plus = func()
        flat[i] = saved - eps
        minus = func()
        flat[i] = saved
        gflat[i] = (plus - minus) / (2.0 * eps)
    return grad


def directional_derivative(func, array, direction, eps=1e-6):
    """Central-difference derivative of ``func()`` along ``direction``.

    For large arrays, comparing ``<grad, v>`` with this number for a few
    random ``v`` checks the whole gradient at the cost of two calls each.
    """
    if array.dtype != np.float64:
        raise TypeError(f"array must be float64 for finite differences, got {array.dtype}")
    saved = array.copy()
    array += eps * direction
    plus = func()
    array[...] = saved - eps * direction
    minus = func()
    array[...] = saved
    return (plus - minus) / (2.0 * eps)


# ---------------------------------------------------------------------------
# gradcheck of layers, networks and losses
# ---------------------------------------------------------------------------

@dataclass
class TensorCheck:
    """The comparison of one gradient (the input's or one parameter's).

    Attributes
    ----------
    name : str
        ``"input"``, ``"prediction"`` (a loss) or the parameter's dotted name.
    shape : tuple
    method : str
        ``"full"`` (every element by central differences) or
        ``"k directions"`` (directional derivatives along ``k`` random unit
        vectors compared with ``<grad, v>``).
    max_abs_error : float
        ``max |analytic - numeric|`` (over elements or directions).
    scale : float
        The gradient's size the error is measured against: ``max(max|analytic|,
        max|numeric|)`` (full) or ``max(||analytic||_2, |numeric|)`` (directions).
    rel_error : float
        ``max_abs_error / (scale + atol / rtol)``.
    rtol, atol : float
        Tolerances; passed iff ``max_abs_error <= atol + rtol * scale``
        (equivalently ``rel_error <= rtol``).
    passed : bool
    note : str
        Why a check failed without numbers (e.g. a gradient of the wrong shape).
    """

    name: str
    shape: tuple
    method: str
    max_abs_error: float
    scale: float
    rel_error: float
    rtol: float
    atol: float
    passed: bool
    note: str = ""


class GradcheckReport:
    """Result of :func:`gradcheck`: one :class:`TensorCheck` per tensor.

    ``report.passed`` (also ``bool(report)``) is True when every tensor
    passed; ``str(report)`` is a table; ``report["0.weight"]`` is one row;
    :meth:`assert_passed` raises :class:`GradcheckError` with the table.
    """

    def __init__(self, subject, checks, eps, evaluations):
        self.subject = subject
        self.checks = list(checks)
        self.eps = eps
        self.evaluations = evaluations

    @property
    def passed(self):
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def failures(self):
        """The rows that failed."""
        return [c for c in self.checks if not c.passed]

    def __bool__(self):
        return self.passed

    def __getitem__(self, name):
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no tensor named {name!r} in the report; have "
                       f"{[c.name for c in self.checks]}")

    def assert_passed(self):
        """Raise :class:`GradcheckError` (with the table) unless every tensor passed."""
        if not self.passed:
            raise GradcheckError(self)

    def __str__(self):
        header = (f"gradcheck of {self.subject}: {'PASSED' if self.passed else 'FAILED'} "
                  f"(float64 central differences, eps={self.eps:g}, "
                  f"{self.evaluations} evaluations)")
        cols = ("tensor", "shape", "check", "max abs err", "grad scale", "rel err", "tol", "ok")
        rows = []
        for c in self.checks:
            rows.append((c.name, str(c.shape), c.method, f"{c.max_abs_error:.2e}",
                         f"{c.scale:.2e}", f"{c.rel_error:.2e}", f"{c.rtol:.0e}",
                         "yes" if c.passed else "NO" + (f" ({c.note})" if c.note else "")))
        widths = [max(len(col), *(len(r[i]) for r in rows)) if rows else len(col)
                  for i, col in enumerate(cols)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [header, fmt.format(*cols).rstrip(),
                 fmt.format(*("-" * w for w in widths)).rstrip()]
        lines += [fmt.format(*r).rstrip() for r in rows]
        return "\n".join(lines)

    def __repr__(self):
        return (f"<GradcheckReport {self.subject}: {'passed' if self.passed else 'FAILED'}, "
                f"{len(self.checks)} tensors>")


class GradcheckError(AssertionError):
    """A failed :func:`gradcheck`; the message is the report's table.

    An AssertionError (a failed check, as in a test); ``error.report`` is the
    :class:`GradcheckReport`, for its rows.
    """

    def __init__(self, report):
        super().__init__("gradcheck failed:\n" + str(report))
        self.report = report


class _Counter:
    def __init__(self, func):
        self.func = func
        self.count = 0

    def __call__(self):
        self.count += 1
        return self.func()


def _compare(name, func, array, analytic, *, eps, rtol, atol, max_full_size, n_directions, rng):
    shape = tuple(array.shape)
    if analytic is None or np.shape(analytic) != shape:
        got = "None" if analytic is None else f"shape {np.shape(analytic)}"
        return TensorCheck(name, shape, "-", math.nan, math.nan, math.nan, rtol, atol, False,
                           note=f"backward gave {got}, expected shape {shape}")
    analytic = np.asarray(analytic, dtype=np.float64)
    floor = atol / rtol
    if array.size <= max_full_size:
        numeric = numerical_gradient(func, array, eps)
        err = float(np.max(np.abs(analytic - numeric))) if array.size else 0.0
        scale = float(max(np.max(np.abs(analytic)), np.max(np.abs(numeric)))) if array.size else 0.0
        method = "full"
        rel = err / (scale + floor)
    else:
        err = scale = rel = 0.0
        norm = float(np.linalg.norm(analytic))
        for _ in range(n_directions):
            v = rng.standard_normal(shape)
            v /= np.linalg.norm(v)
            numeric = directional_derivative(func, array, v, eps)
            e = abs(float(np.vdot(analytic, v)) - numeric)
            s = max(norm, abs(numeric))
            r = e / (s + floor)
            if not r <= rel:           # also picks up NaN
                err, scale, rel = e, s, r
        method = f"{n_directions} directions"
    passed = bool(err <= atol + rtol * scale)   # False for NaN
    return TensorCheck(name, shape, method, err, scale, rel, rtol, atol, passed)


def _generators(module):
    """Every np.random.Generator stored as an attribute of the module or a sub-module."""
    gens, seen = [], set()
    for m in module.modules():
        for value in vars(m).values():
            if isinstance(value, np.random.Generator) and id(value) not in seen:
                seen.add(id(value))
                gens.append(value)
    return gens


def gradcheck(obj, x, target=None, *, loss=None, eps=1e-6, rtol=1e-5, atol=1e-7,
              max_full_size=256, n_directions=4, seed=0, check_input=True,
              raise_exception=True, verbose=False):
    """Check the hand-written backward of a layer, a network or a loss against central differences.

    Parameters
    ----------
    obj : deconv.nn.Module or deconv.nn.Loss
        A Module is checked through the scalar ``L = <obj(x), r>`` with ``r``
        standard normal (``seed``), or ``L = loss(obj(x), target)`` if
        ``loss`` is given: the gradient with respect to ``x`` and to every
        parameter in :meth:`~deconv.nn.Module.named_parameters`. A Loss is
        checked through ``obj(x, target)`` (``<obj(x, target), r>`` for
        ``reduction='none'``), with respect to ``x`` (the prediction).
    x : ndarray
        The input (or prediction), converted to a float64 copy; an integer
        input (indices for :class:`~deconv.nn.Embedding`) is passed as is
        and has no gradient to check.
    target : ndarray, optional
        The loss's target (for a Loss, or with ``loss``).
    loss : deconv.nn.Loss, optional
        Check ``loss(obj(x), target)`` instead of ``<obj(x), r>``.
    eps : float
        Central-difference step.
    rtol, atol : float
        A tensor passes when ``max|analytic - numeric| <= atol + rtol *
        scale`` (see :class:`TensorCheck`); ``atol`` keeps finite-difference
        noise on (nearly) zero gradients from failing the check.
    max_full_size : int
        Tensors with at most this many elements are differentiated element
        by element (``2 * size`` evaluations); larger ones along
        ``n_directions`` random unit directions ``v`` (two evaluations each),
        comparing the directional derivative with ``<grad, v>``.
    n_directions : int
    seed : int
        Seeds ``r`` and the directions.
    check_input : bool
        Set False to check only the parameters.
    raise_exception : bool, default True
        Raise :class:`GradcheckError` (its message is the table) when a
        tensor fails, as ``torch.autograd.gradcheck`` does; False returns
        the failing report instead.
    verbose : bool, default False
        Print the report (the table) before returning or raising.

    Returns
    -------
    GradcheckReport
        A row per tensor (``"input"`` or ``"prediction"`` first, then the
        parameters by dotted name) with the max relative error, tolerance
        and pass/fail; ``.passed``; ``str()`` is the table. It is truthy
        iff every tensor passed, so ``assert gradcheck(layer, x)`` reads as
        in PyTorch.

    Raises
    ------
    GradcheckError
        With ``raise_exception=True`` (the default), when a tensor fails.
        Arguments that are wrong before any check (not a Module or Loss, a
        missing target, bad tolerances) raise TypeError or ValueError.

    Notes
    -----
    *Compared with torch.autograd.gradcheck.* Like it, this raises on a
    failure by default and its result is true on success; unlike it, it
    takes a layer, network or loss (not a function of tensors), checks
    the parameters as well as the input, returns a :class:`GradcheckReport`
    (truthy, one row per tensor) rather than ``True``, tests ``max|analytic
    - numeric| <= atol + rtol * scale`` against the largest gradient of the
    tensor (not element by element), and checks large tensors along random
    directions (``max_full_size``) where PyTorch differentiates every
    element (or checks one direction with ``fast_mode``).

    *float64.* The check runs in float64 whatever the module's dtype: each
    parameter's ``data`` and ``grad`` are replaced by float64 arrays (a copy
    of the values and zeros) for the duration of the check, and the original
    arrays (the very objects, bitwise unchanged) are put back afterwards,
    also on error, so a float32 model can be checked as it is and its
    accumulated gradients survive. Layers must compute in the dtype of
    their input and parameters (every :mod:`deconv.nn` layer does); an
    output that is not float64 is refused.

    *Randomness.* Every ``np.random.Generator`` held as an attribute by the
    module or one of its sub-modules (:class:`~deconv.nn.Dropout`'s ``rng``)
    is rewound to its state at the start before every evaluation, so all
    evaluations see the same dropout mask; at the end it is restored to that
    state, so the check consumes no randomness. The module's training mode
    is left as it is (``eval()`` makes Dropout the identity).

    *Side effects.* The forward caches of the module (and of ``loss``) hold
    the last evaluation afterwards; call ``forward`` again before a
    ``backward`` of your own.

    *Non-differentiable points* are the caller's responsibility: ReLU at 0,
    ties of a max pooling (or a perturbation of ``eps`` that changes which
    element is the maximum), ``|x|`` of L1 at 0. Use random inputs, which
    avoid them almost surely, and keep max-pooling inputs away from ties.

    Examples
    --------
    >>> import numpy as np
    >>> from deconv import nn
    >>> from deconv.gradcheck import gradcheck
    >>> layer = nn.Conv1d(2, 3, 3, padding=1, rng=0)
    >>> report = gradcheck(layer, np.random.default_rng(1).standard_normal((2, 2, 5)))
    >>> report.passed, [c.name for c in report.checks]
    (True, ['input', 'weight', 'bias'])
    >>> layer.weight.dtype       # restored
    dtype('float32')

    The module is callable too, and prints the table when asked:

    >>> import deconv
    >>> report = deconv.gradcheck(nn.Tanh(), np.linspace(-1, 1, 3), verbose=True)
    ... # doctest: +ELLIPSIS
    gradcheck of Tanh(): PASSED (float64 central differences, eps=1e-06, 6 evaluations)
    tensor  shape  check  max abs err  grad scale  rel err   tol    ok
    ------  -----  -----  -----------  ----------  --------  -----  ---
    input   (3,)   full   ...  1e-05  yes
    """
    for value, name in ((eps, "eps"), (rtol, "rtol"), (atol, "atol")):
        if not (isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if eps <= 0 or rtol <= 0:
        raise ValueError(f"eps and rtol must be > 0, got eps={eps!r}, rtol={rtol!r}")
    for value, name, minimum in ((max_full_size, "max_full_size", 0),
                                 (n_directions, "n_directions", 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    for value, name in ((raise_exception, "raise_exception"), (verbose, "verbose")):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must be a bool, got {value!r}")
    report = _gradcheck(obj, x, target, loss, eps, rtol, atol, max_full_size, n_directions,
                        seed, check_input)
    if verbose:
        print(report)
    if raise_exception:
        report.assert_passed()
    return report


def _gradcheck(obj, x, target, loss, eps, rtol, atol, max_full_size, n_directions, seed,
               check_input):
    """:func:`gradcheck` on checked arguments: the report, passed or not."""
    from deconv import nn  # deconv.nn imports the ops; imported here to keep this module light

    settings = dict(eps=eps, rtol=rtol, atol=atol, max_full_size=max_full_size,
                    n_directions=n_directions, rng=np.random.default_rng(seed))
    x = np.asarray(x)
    if x.dtype.kind == "f":
        x64 = np.array(x, dtype=np.float64)           # our copy: perturbed in place
    elif x.dtype.kind in "iu":
        x64 = x.copy()                                 # indices: passed as is, not checked
    else:
        raise TypeError(f"x must be a float or integer array, got dtype {x.dtype}")
    differentiable_input = check_input and x64.dtype == np.float64

    if isinstance(obj, nn.Loss):
        if loss is not None:
            raise ValueError("loss= is for checking a Module followed by a loss; obj is already "
                             "a Loss")
        if target is None:
            raise ValueError(f"checking the loss {obj!r} needs a target")
        if not differentiable_input:
            raise ValueError("a loss is checked with respect to its prediction, which must be a "
                             "float array (and check_input=True)")
        if getattr(obj, "reduction", None) == "none":
            # the per-element loss array, through a random upstream gradient r
            r = settings["rng"].standard_normal(np.shape(obj.forward(x64, target)))
            func = _Counter(lambda: float(np.sum(obj.forward(x64, target) * r)))
            obj.forward(x64, target)
            grad = obj.backward(r)
        else:
            func = _Counter(lambda: float(obj.forward(x64, target)))
            obj.forward(x64, target)
            grad = obj.backward()
        checks = [_compare("prediction", func, x64, grad, **settings)]
        return GradcheckReport(repr(obj), checks, eps, func.count)

    if not isinstance(obj, nn.Module):
        raise TypeError(f"obj must be a deconv.nn.Module or deconv.nn.Loss, got "
                        f"{type(obj).__name__}")
    if loss is not None:
        if not isinstance(loss, nn.Loss):
            raise TypeError(f"loss must be a deconv.nn.Loss, got {type(loss).__name__}")
        if target is None:
            raise ValueError("loss= needs a target")
    elif target is not None:
        raise ValueError("target is only used with loss= (or when checking a Loss)")

    module = obj
    named = module.named_parameters()
    if not named and not differentiable_input:
        raise ValueError(f"nothing to check: {type(module).__name__} has no parameters and the "
                         f"input is not a float array (or check_input=False)")
    saved = [(p, p.data, p.grad) for _, p in named]
    gens = _generators(module)
    states = [g.bit_generator.state for g in gens]

    def rewind():
        for g, s in zip(gens, states):
            g.bit_generator.state = s

    try:
        for p, data, _ in saved:
            p.data = np.array(data, dtype=np.float64)
            p.grad = np.zeros_like(p.data)

        def output():
            rewind()
            return module.forward(x64)

        y = output()
        if not isinstance(y, np.ndarray) or y.dtype != np.float64:
            raise TypeError(
                f"{type(module).__name__} returned "
                f"{y.dtype if isinstance(y, np.ndarray) else type(y).__name__} for float64 "
                f"parameters and input; gradcheck needs float64 outputs")
        if loss is None:
            r = settings["rng"].standard_normal(y.shape)      # shape of the output
            upstream = r
            func = _Counter(lambda: float(np.sum(output() * r)))
        else:
            loss.forward(y, target)
            upstream = loss.backward()
            func = _Counter(lambda: float(loss.forward(output(), target)))
        grad_input = module.backward(upstream)
        analytic = [(name, p.data, p.grad.copy()) for (name, p) in named]

        checks = []
        if differentiable_input:
            checks.append(_compare("input", func, x64, grad_input, **settings))
        for name, data, grad in analytic:
            checks.append(_compare(name, func, data, grad, **settings))
    finally:
        for p, data, grad in saved:
            p.data, p.grad = data, grad
        rewind()
    subject = repr(module).split("\n")[0].rstrip("(") if "\n" in repr(module) else repr(module)
    if loss is not None:
        subject += f" -> {loss!r}"
    return GradcheckReport(subject, checks, eps, func.count)


class _CallableModule(types.ModuleType):
    """``deconv.gradcheck`` is this module, and calling it calls :func:`gradcheck`."""

    # a static method: calling the module calls gradcheck itself
    __call__ = staticmethod(gradcheck)


# what inspect.signature(deconv.gradcheck) reports (it would drop the first parameter of __call__)
__signature__ = inspect.signature(gradcheck)
sys.modules[__name__].__class__ = _CallableModule
