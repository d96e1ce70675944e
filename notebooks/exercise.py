"""The exercises of the notebooks and the checker that marks them.

Each exercise is a function the learner writes in a fill-in cell. The cell
starts with a placeholder body, ``return ...``, and ends with

    check_exercise("E2.1", conv_input_grad_gather)

which runs the learner's function and an independent reference (a ``deconv``
op or ``deconv.shapes``) on the same cases and prints one line:

    E2.1 conv_input_grad_gather: PASS (24 cases against deconv.conv2d_backward)
    E2.1 conv_input_grad_gather: not done yet (replace the `...`; solution: solutions.conv_input_grad_gather)
    E2.1 conv_input_grad_gather: FAIL on case 3 of 24, args ...: expected ..., got ...

It never raises: an unfinished or wrong answer is reported, and the notebook
carries on to its next cell. The worked solutions are in ``solutions.py``;
``tests/test_notebooks.py`` checks that each one passes here, and that the
placeholder is reported as not done.
"""

import itertools
from typing import Callable, NamedTuple

import numpy as np

import deconv
from deconv import metrics, shapes


class Exercise(NamedTuple):
    number: str              # "E1.1": notebook 1, first exercise
    function: str            # the name the fill-in cell defines (and solutions.py too)
    reference: Callable      # same signature, computed by the library
    against: str             # what the reference is, for the printed line
    cases: Callable          # () -> list of argument tuples


def _integers(rng, shape, low=-4, high=5):
    """Small integers as float64: every product and sum is exact, so PASS can demand equality."""
    return rng.integers(low, high, size=shape).astype(np.float64)


# Notebook 1 ---------------------------------------------------------------------------------

def _size_cases():
    """Every (i, k, s, p, d) with i <= 12 whose kernel extent fits the padded input."""
    return [(i, k, s, p, d) for i, k, s, p, d in itertools.product(
                range(1, 13), range(1, 6), range(1, 4), range(0, 4), range(1, 4))
            if d * (k - 1) + 1 <= i + 2 * p]


def _transposed_size_cases():
    """The transposed convolutions of those: input size o, every output padding a < s."""
    cases = []
    for i, k, s, p, d in _size_cases()[::5]:
        o = shapes.conv_output_size(i, k, s, p, d)
        cases += [(o, k, s, p, a, d) for a in range(s) if i - (i + 2 * p - d * (k - 1) - 1) % s + a >= 1]
    return cases


def _conv_cases():
    rng = np.random.default_rng(11)
    cases = []
    for i_h, i_w, k, s, p in [(3, 3, 2, 2, 1), (5, 5, 3, 1, 0), (5, 6, 3, 2, 1), (7, 4, 2, 3, 0),
                              (6, 6, 3, 2, 2), (4, 5, 1, 1, 0)]:
        cases.append((_integers(rng, (i_h, i_w)), _integers(rng, (k, k)), s, p))
    return cases


def _conv_reference(x, w, s, p):
    return deconv.conv2d(x[None, None], w[None, None], stride=s, padding=p)[0, 0]


# Notebook 2 ---------------------------------------------------------------------------------

def _input_grad_cases():
    rng = np.random.default_rng(12)
    cases = []
    for i_h, i_w, k, s in [(3, 3, 2, 2), (5, 5, 3, 1), (6, 7, 3, 2), (7, 7, 2, 3), (5, 4, 1, 2),
                           (8, 6, 3, 3)]:
        o_h, o_w = shapes.conv_output_size(i_h, k, s), shapes.conv_output_size(i_w, k, s)
        cases.append((_integers(rng, (o_h, o_w)), _integers(rng, (k, k)), s, (i_h, i_w)))
    return cases


def _input_grad_reference(dy, w, s, x_shape):
    x = np.zeros((1, 1) + tuple(x_shape))
    return deconv.conv2d_backward(dy[None, None], x, w[None, None], stride=s)[0][0, 0]


def _switch_cases():
    rng = np.random.default_rng(13)
    cases = []
    for shape, k, s in [((4, 4), 2, 2), ((6, 6), 3, 2), ((5, 7), 3, 1), ((6, 4), 2, 2)]:
        x = rng.standard_normal((1, 2) + shape)                       # (N, C, H, W), no ties
        _, switches = deconv.max_pool2d(x, k, s)
        cases.append((_integers(rng, switches.shape), switches, x.shape))
    return cases


# Notebook 3 ---------------------------------------------------------------------------------

def _transposed_cases():
    rng = np.random.default_rng(14)
    return [(_integers(rng, (i_h, i_w)), _integers(rng, (k, k)), s)
            for i_h, i_w, k, s in [(3, 3, 2, 2), (3, 3, 3, 2), (2, 4, 3, 3), (4, 3, 2, 1), (3, 2, 4, 2)]]


def _transposed_reference(x, w, s):
    return deconv.conv_transpose2d(x[None, None], w[None, None], stride=s)[0, 0]


EXERCISES = {e.number: e for e in [
    Exercise("E1.1", "conv_output_size", shapes.conv_output_size, "deconv.shapes.conv_output_size",
             _size_cases),
    Exercise("E1.2", "conv_transpose_output_size", shapes.conv_transpose_output_size,
             "deconv.shapes.conv_transpose_output_size", _transposed_size_cases),
    Exercise("E1.3", "conv2d_sliding_window", _conv_reference, "deconv.conv2d", _conv_cases),
    Exercise("E2.1", "conv_input_grad_gather", _input_grad_reference, "deconv.conv2d_backward",
             _input_grad_cases),
    Exercise("E2.2", "max_pool_backward_from_switches", deconv.max_pool2d_backward,
             "deconv.max_pool2d_backward", _switch_cases),
    Exercise("E3.1", "conv_transpose_by_zero_insertion", _transposed_reference, "deconv.conv_transpose2d",
             _transposed_cases),
    Exercise("E3.2", "output_padding_that_restores", shapes.inverse_output_padding,
             "deconv.shapes.inverse_output_padding", _size_cases),
]}


def _short(value):
    text = np.array2string(np.asarray(value), precision=4, separator=", ", threshold=40)
    return text.replace("\n", " ")


def check_exercise(number, fn, *, quiet=False):
    """Mark one exercise: run ``fn`` and the reference on every case, print one line.

    Parameters
    ----------
    number : str
        The exercise, e.g. ``"E2.1"``.
    fn : callable
        The learner's function, with the signature the exercise states.
    quiet : bool
        Return the verdict without printing.

    Returns
    -------
    verdict : str
        ``"PASS"``, ``"TODO"`` (the placeholder ``...`` or ``None`` came back,
        or ``NotImplementedError`` was raised) or ``"FAIL"``.
    """
    exercise = EXERCISES[number]
    head = f"{number} {exercise.function}:"
    cases = exercise.cases()

    def report(verdict, message):
        if not quiet:
            print(f"{head} {message}")
        return verdict

    for index, args in enumerate(cases, 1):
        try:
            got = fn(*args)
        except NotImplementedError:
            got = ...
        except Exception as error:                                   # a learner's bug: report it
            return report("FAIL", f"FAIL on case {index} of {len(cases)}: raised "
                                  f"{type(error).__name__}: {error}")
        if got is ... or got is None:
            return report("TODO", f"not done yet (replace the `...`; solution: solutions.{exercise.function})")
        expected = np.asarray(exercise.reference(*args))
        got = np.asarray(got)
        shown = ", ".join(f"shape {a.shape}" if isinstance(a, np.ndarray) and a.size > 1 else repr(a)
                          for a in args)
        if got.shape != expected.shape:
            return report("FAIL", f"FAIL on case {index} of {len(cases)} ({shown}): shape {got.shape}, "
                                  f"expected {expected.shape}")
        if not np.allclose(got, expected, rtol=1e-12, atol=1e-12):
            where = ""
            if got.ndim:
                index_of_worst = np.unravel_index(np.argmax(np.abs(got - expected)), got.shape)
                where = f" (largest difference at index {tuple(int(j) for j in index_of_worst)})"
            return report("FAIL", f"FAIL on case {index} of {len(cases)} ({shown}): expected "
                                  f"{_short(expected)}, got {_short(got)}{where}")
    return report("PASS", f"PASS ({len(cases)} cases against {exercise.against})")


# --- notebook 4 ---------------------------------------------------------------------------
# E4.x: the phase tap counts of a transposed convolution, resize-convolution, pixel shuffle.

def _phase_cases():
    """Every (k, s) with k <= 7, s <= 4: uneven, even and k < s (phases with no tap)."""
    return [(k, s) for k in range(1, 8) for s in range(1, 5)]


def _phase_reference(k, s):
    """n_r read off deconv.conv_transpose1d of all-ones arrays: interior position o has phase o mod s."""
    length = k + 2                                            # enough input for a full interior period
    count = deconv.conv_transpose1d(np.ones((1, 1, length)), np.ones((1, 1, k)), stride=s)[0, 0]
    interior = np.arange(k - 1, k - 1 + s)                    # s consecutive interior positions
    by_phase = np.empty(s)
    by_phase[interior % s] = count[interior]
    return by_phase


def _resize_conv_cases():
    rng = np.random.default_rng(41)
    return [(_integers(rng, shape), _integers(rng, (3, 3))) for shape in [(2, 2), (3, 3), (3, 5), (4, 2)]]


def _resize_conv_reference(x, w):
    return deconv.conv2d(deconv.upsample_nearest2d(x[None, None], scale_factor=2), w[None, None],
                         padding=1)[0, 0]


def _shuffle_cases():
    rng = np.random.default_rng(42)
    return [(_integers(rng, (c * r * r, h, w)), r) for c, r, h, w in [(1, 2, 2, 2), (2, 2, 3, 4),
                                                                     (1, 3, 2, 3), (3, 2, 1, 1)]]


def _shuffle_reference(z, r):
    return deconv.pixel_shuffle(z[None], r)[0]


# --- notebook 5 ---------------------------------------------------------------------------
# E5.x: max unpooling from the switches, one layer of the deconvnet's projection.

def _unpool_cases():
    rng = np.random.default_rng(51)
    cases = []
    for shape in [(4, 4), (8, 8), (6, 10), (2, 2)]:
        a = rng.standard_normal((2, 3) + shape)                   # (N, C, H, W), no ties
        _, switches = deconv.max_pool2d(a, 2)
        cases.append((_integers(rng, switches.shape), switches, shape))
    return cases


def _unpool_reference(r, switches, out_hw):
    return deconv.max_unpool2d(r, switches, 2, output_size=tuple(out_hw))


def _deconvnet_layer_cases():
    rng = np.random.default_rng(52)
    return [(_integers(rng, (n, c_out, h, w)), _integers(rng, (c_out, c_in, k, k)), p)
            for n, c_out, c_in, h, w, k, p in [(1, 1, 1, 3, 3, 3, 1), (2, 3, 2, 4, 4, 3, 1),
                                               (1, 2, 3, 5, 4, 3, 0), (2, 2, 2, 4, 3, 2, 0)]]


def _deconvnet_layer_reference(r, F, p):
    return deconv.conv_transpose2d(np.maximum(r, 0), F, padding=p)


EXERCISES.update({e.number: e for e in [
    Exercise("E4.1", "phase_tap_counts", _phase_reference,
             "deconv.conv_transpose1d of all-ones arrays", _phase_cases),
    Exercise("E4.2", "resize_conv", _resize_conv_reference,
             "deconv.conv2d(deconv.upsample_nearest2d(x), w, padding=1)", _resize_conv_cases),
    Exercise("E4.3", "pixel_shuffle_by_hand", _shuffle_reference, "deconv.pixel_shuffle", _shuffle_cases),
    Exercise("E5.1", "max_unpool_from_switches", _unpool_reference, "deconv.max_unpool2d", _unpool_cases),
    Exercise("E5.2", "deconvnet_layer_down", _deconvnet_layer_reference,
             "deconv.conv_transpose2d(relu(r), F, padding=p)", _deconvnet_layer_cases),
]})

# --- notebook 3, misnomer ---------------------------------------------------------------------

def _richardson_lucy_cases():
    """Positive estimates and observations (the step divides by the blur), odd PSFs summing to 1."""
    rng = np.random.default_rng(15)
    cases = []
    for shape, k in [((5, 5), 3), ((6, 8), 3), ((9, 7), 5), ((4, 4), 1), ((7, 7), 5)]:
        psf = rng.random((k, k)) + 0.1
        cases.append((rng.random(shape) + 0.5, rng.random(shape) + 0.5, psf / psf.sum()))
    return cases


def _richardson_lucy_reference(estimate, observed, psf):
    """x A^T(y / A x), A = conv2d with the flipped PSF ('same'), A^T = conv_transpose2d with it."""
    c = psf.shape[0] // 2
    weight = np.ascontiguousarray(psf[::-1, ::-1])[None, None]
    blurred = deconv.conv2d(estimate[None, None], weight, padding=c)
    return estimate * deconv.conv_transpose2d(observed[None, None] / blurred, weight, padding=c)[0, 0]


EXERCISES["E3.3"] = Exercise("E3.3", "richardson_lucy_step", _richardson_lucy_reference,
                             "deconv.conv2d and deconv.conv_transpose2d", _richardson_lucy_cases)


# --- notebook 6 -------------------------------------------------------------------------------

def _pixel_shuffle_cases():
    rng = np.random.default_rng(61)
    return [(_integers(rng, (n, c * r * r, h, w)), r)
            for n, c, r, h, w in [(1, 1, 2, 2, 3), (2, 3, 2, 4, 4), (1, 2, 3, 3, 2), (2, 1, 4, 2, 5)]]


def _fsrcnn_weight_cases():
    rng = np.random.default_rng(62)
    return [(_integers(rng, (c_in, c_out, 9, 9)), r) for c_in, c_out, r in [(1, 1, 2), (3, 2, 2), (2, 1, 4),
                                                                            (1, 3, 4)]]


def _fsrcnn_weight_reference(w, r):
    """V read off the transposed conv: the stamp of LR pixel (D, D), cut into its r x r phases."""
    c_in, c_out = w.shape[:2]
    reach = 4 // r                                     # D: LR offsets -D..D reach an output block
    size = 2 * reach + 1                               # K
    v = np.zeros((c_out * r * r, c_in, size, size))
    for c in range(c_in):
        one_hot = np.zeros((1, c_in, size, size))
        one_hot[0, c, reach, reach] = 1.0
        stamp = deconv.conv_transpose2d(one_hot, w, stride=r, padding=4, output_padding=r - 1)[0]
        for q_h in range(size):                        # output block q sees the pixel at offset D - q
            for q_w in range(size):
                block = stamp[:, q_h * r:(q_h + 1) * r, q_w * r:(q_w + 1) * r]      # (C_out, r, r)
                v[:, c, reach - q_h + reach, reach - q_w + reach] = block.reshape(-1)
    return v


def _psnr_y_cases():
    rng = np.random.default_rng(63)
    cases = []
    for (H, W), border in [((8, 8), 0), ((10, 12), 2), ((16, 9), 4), ((12, 12), 3)]:
        target = rng.random((3, H, W))
        cases.append((np.clip(target + 0.1 * rng.standard_normal((3, H, W)), 0, 1), target, border))
    return cases


def _psnr_y_reference(prediction, target, border):
    return metrics.psnr_y(prediction, target, border=border)


EXERCISES["E6.1"] = Exercise("E6.1", "pixel_shuffle_by_reshape", deconv.pixel_shuffle,
                             "deconv.pixel_shuffle", _pixel_shuffle_cases)
EXERCISES["E6.2"] = Exercise("E6.2", "fsrcnn_subpixel_weight", _fsrcnn_weight_reference,
                             "deconv.conv_transpose2d on one-hot images", _fsrcnn_weight_cases)
EXERCISES["E6.3"] = Exercise("E6.3", "psnr_y_cropped", _psnr_y_reference, "deconv.metrics.psnr_y",
                             _psnr_y_cases)

# --- notebook 7 ---
# Appended after check_exercise: notebook 7's exercises join the table it reads at call time.

def _intensity_cases():
    """conv2d layers: (N, C_in, C_out, H, W, k, s, p, itemsize), strided, padded, both dtypes."""
    return [(8, 64, 64, 32, 32, 3, 1, 1, 4), (1, 3, 16, 28, 28, 5, 1, 0, 4), (32, 128, 256, 16, 16, 3, 2, 1, 4),
            (4, 16, 8, 9, 7, 3, 2, 0, 8), (2, 1, 1, 5, 5, 1, 1, 0, 8), (16, 256, 64, 14, 14, 1, 1, 0, 4),
            (3, 8, 24, 12, 10, 4, 3, 2, 4)]


def _intensity_reference(N, C_in, C_out, H, W, k, s, p, itemsize):
    """The bench's FLOP count (its conv GEMM) over the bytes of its case's x, weight and output."""
    from deconv.bench.cases import conv_case, flops
    case = conv_case("E7.1", "conv2d", N, C_in, C_out, (H, W), k, stride=s, padding=p)
    elements = sum(int(np.prod(case["shapes"][name])) for name in ("x", "w", "gy"))
    return flops(case, "fwd") / (itemsize * elements)


def _im2col_cases():
    rng = np.random.default_rng(71)
    return [(_integers(rng, (C, H, W)), k, s, p)
            for C, H, W, k, s, p in [(1, 3, 3, 2, 2, 1), (2, 4, 4, 3, 1, 0), (3, 5, 6, 3, 1, 1),
                                     (2, 7, 5, 3, 2, 1), (1, 6, 6, 1, 2, 0), (2, 5, 5, 4, 3, 2)]]


def _im2col_reference(x, k, s, p):
    return deconv.unfold(x[None], k, padding=p, stride=s)[0]


def _lane_cases():
    rng = np.random.default_rng(72)
    return [(rng.standard_normal(n).astype(np.float32), lanes)
            for n, lanes in [(1, 16), (16, 16), (100, 16), (9216, 16), (1000, 8), (37, 4), (500, 1)]]


def _lane_reference(values, lanes):
    """np.cumsum adds strictly left to right in the array's dtype: each lane down a column of
    the values laid out in rows of ``lanes`` (zeros past the end add nothing), then the lanes."""
    rows = -(-values.size // lanes)
    table = np.zeros(rows * lanes, np.float32)
    table[:values.size] = values
    per_lane = np.cumsum(table.reshape(rows, lanes), axis=0, dtype=np.float32)[-1]
    return np.cumsum(per_lane, dtype=np.float32)[-1]


EXERCISES.update({e.number: e for e in [
    Exercise("E7.1", "conv_arithmetic_intensity", _intensity_reference,
             "deconv.bench.cases.flops and the case's shapes", _intensity_cases),
    Exercise("E7.2", "im2col", _im2col_reference, "deconv.unfold", _im2col_cases),
    Exercise("E7.3", "lane_sum", _lane_reference, "np.cumsum over lanes, in float32", _lane_cases),
]})


# --- notebook 8 ---
# The references are the deconv layers in float64, in training mode (batch statistics).

def _normalization_cases(rng, shapes_and_eps):
    """Inputs with channel offsets and scales far from 0 and 1, so that forgetting the mean or
    the variance shows; gamma and b random, so that a swapped affine map shows too."""
    cases = []
    for shape, eps in shapes_and_eps:
        C = shape[1]
        x = rng.standard_normal(shape) * rng.uniform(0.5, 3.0, (1, C, 1, 1)) + rng.uniform(-2, 2, (1, C, 1, 1))
        cases.append((x, rng.uniform(0.5, 2.0, C), rng.uniform(-1, 1, C), eps))
    return cases


_NORM_SHAPES = [((2, 3, 2, 2), 1e-5), ((4, 1, 3, 2), 0.1), ((1, 2, 3, 3), 1e-5), ((3, 4, 1, 5), 1.0)]


def _batch_norm_layer(gamma, b, eps):
    layer = deconv.nn.BatchNorm2d(len(gamma), eps=eps, dtype=np.float64)
    layer.weight.data[...], layer.bias.data[...] = gamma, b
    return layer


def _batch_norm_cases():
    return _normalization_cases(np.random.default_rng(81), _NORM_SHAPES)


def _batch_norm_reference(x, gamma, b, eps):
    return _batch_norm_layer(gamma, b, eps)(x)


def _batch_norm_backward_cases():
    rng = np.random.default_rng(82)
    return [(rng.standard_normal(x.shape), x, gamma, eps)
            for x, gamma, _, eps in _normalization_cases(rng, _NORM_SHAPES)]


def _batch_norm_backward_reference(dy, x, gamma, eps):
    layer = _batch_norm_layer(gamma, np.zeros_like(gamma), eps)
    layer(x)
    return layer.backward(dy)


def _group_norm_cases():
    rng = np.random.default_rng(83)
    cases = []
    for (shape, eps), G in zip([((2, 4, 2, 2), 1e-5), ((1, 6, 3, 2), 0.1), ((3, 6, 1, 2), 1e-5),
                                ((2, 8, 2, 1), 1.0)], (2, 3, 6, 4)):
        x, gamma, b, eps = _normalization_cases(rng, [(shape, eps)])[0]
        cases.append((x, G, gamma, b, eps))
    return cases


def _group_norm_reference(x, G, gamma, b, eps):
    layer = deconv.nn.GroupNorm(G, len(gamma), eps=eps, dtype=np.float64)
    layer.weight.data[...], layer.bias.data[...] = gamma, b
    return layer(x)


EXERCISES.update({e.number: e for e in [
    Exercise("E8.1", "batch_norm_train_forward", _batch_norm_reference,
             "deconv.nn.BatchNorm2d in training mode", _batch_norm_cases),
    Exercise("E8.2", "batch_norm_backward_staged", _batch_norm_backward_reference,
             "deconv.nn.BatchNorm2d.backward", _batch_norm_backward_cases),
    Exercise("E8.3", "group_norm_by_reshape", _group_norm_reference, "deconv.nn.GroupNorm",
             _group_norm_cases),
]})
