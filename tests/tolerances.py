"""One table of comparison tolerances, by dtype.

The references compute in float64; a float32 kernel is compared with the
float64 result, so its tolerance reflects float32 rounding over sums of a
few hundred terms of magnitude ~1.
"""

import numpy as np

TOLERANCES = {
    np.dtype(np.float32): dict(rtol=2e-5, atol=2e-5),
    np.dtype(np.float64): dict(rtol=1e-11, atol=1e-12),
}

# float64 central differences: truncation error ~eps^2, cancellation ~1e-16/eps.
FINITE_DIFFERENCE = dict(eps=1e-6, rtol=1e-6, atol=1e-7)


def tolerance(dtype):
    return TOLERANCES[np.dtype(dtype)]


def assert_close(actual, expected, dtype=None, scale=1.0, err_msg=""):
    """Compare a kernel result with a float64 reference under the dtype's tolerance.

    ``scale`` widens atol for results that are sums of many terms (e.g. a
    weight gradient summing over the batch and the image).
    """
    actual = np.asarray(actual)
    dtype = np.dtype(dtype if dtype is not None else actual.dtype)
    tol = TOLERANCES[dtype]
    assert actual.shape == np.shape(expected), f"shape {actual.shape} != {np.shape(expected)} {err_msg}"
    np.testing.assert_allclose(
        actual.astype(np.float64), np.asarray(expected, dtype=np.float64),
        rtol=tol["rtol"], atol=tol["atol"] * scale, err_msg=err_msg,
    )
