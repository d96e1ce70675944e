"""How much a call allocates beyond its results (tracemalloc), for the workspace tests."""

import tracemalloc


def extra_over_result(fn):
    """(peak traced bytes of one call - its results' bytes) / its results' bytes.

    ``fn`` is called once before (compiled and planned beforehand), then once
    measured; it returns an array or a tuple of arrays.
    """
    fn()
    tracemalloc.start()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = sum(a.nbytes for a in out) if isinstance(out, tuple) else out.nbytes
    return (peak - size) / size
