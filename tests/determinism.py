"""Run a script in fresh interpreters with different thread counts and compare output hashes."""

import json
import os
import subprocess
import sys

import deconv


def run_hashes(script, small_work=0, **env_update):
    """Run ``script`` (which prints a JSON list of hashes) in a new process; return the list.

    The package under test is put first on ``PYTHONPATH`` so that the child
    imports the same ``deconv`` as this process. ``small_work`` sets
    ``deconv.kernels.threads.SMALL_WORK`` in the child: 0 (the default here) runs
    every kernel on all its threads whatever the size, so that small test
    arrays exercise the parallel paths; None keeps the library's threshold.
    """
    if small_work is not None:
        script = f"import deconv.kernels.threads\ndeconv.kernels.threads.SMALL_WORK = {small_work}\n" + script
    root = os.path.dirname(os.path.dirname(os.path.abspath(deconv.__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path, **{k: str(v) for k, v in env_update.items()})
    out = subprocess.run([sys.executable, "-c", script], env=env, check=True,
                         capture_output=True, text=True, timeout=600)
    return json.loads(out.stdout)
