"""The shared-core wait policy (deconv.kernels.threads.choose_wait_policy) that
``deconv train`` applies before its first kernel: waiting threads sleep
(OMP_WAIT_POLICY=PASSIVE) when other processes keep the machine busy, never
over a choice the user made, and GNU OpenMP is not loaded before it is set."""

import math
import os
import subprocess
import sys

import pytest

from deconv.kernels import threads


def test_a_busy_machine_gets_sleeping_waits(monkeypatch):
    monkeypatch.setattr(threads, "cpu_busy", lambda seconds: threads.BUSY_OTHERS_PCT + 1)
    env = {}
    assert threads.choose_wait_policy(0.0, env) == ("PASSIVE", threads.BUSY_OTHERS_PCT + 1)
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}


@pytest.mark.parametrize("busy", [0.0, threads.BUSY_OTHERS_PCT - 1, float("nan")])
def test_an_idle_machine_or_no_proc_stat_keeps_the_default(monkeypatch, busy):
    monkeypatch.setattr(threads, "cpu_busy", lambda seconds: busy)
    env = {"PATH": "/bin"}
    policy, measured = threads.choose_wait_policy(0.0, env)
    assert policy is None
    assert measured == busy or (math.isnan(busy) and math.isnan(measured))
    assert env == {"PATH": "/bin"}


@pytest.mark.parametrize("name", threads.WAIT_SETTINGS)
def test_a_users_wait_setting_is_left_alone_and_nothing_is_measured(monkeypatch, name):
    def measured(seconds):
        raise AssertionError("measured although the user chose")
    monkeypatch.setattr(threads, "cpu_busy", measured)
    env = {name: "ACTIVE" if name == "OMP_WAIT_POLICY" else "1000"}
    before = dict(env)
    policy, busy = threads.choose_wait_policy(0.0, env)
    assert policy is None and math.isnan(busy)
    assert env == before


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs /proc/stat (Linux)")
def test_busy_processes_are_measured_as_busy():
    # enough busy loops for half of every core: at least BUSY_OTHERS_PCT (25%)
    n = max(1, math.ceil((os.cpu_count() or 1) / 2))
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        env = {}
        policy, busy = threads.choose_wait_policy(0.5, env)
    finally:
        for p in loops:
            p.kill()
            p.wait()
    assert busy >= threads.BUSY_OTHERS_PCT, busy
    assert policy == "PASSIVE" and env["OMP_WAIT_POLICY"] == "PASSIVE"


def test_openmp_is_not_loaded_before_deconv_train_sets_the_policy():
    # GNU OpenMP reads OMP_WAIT_POLICY when it loads: that must come after the
    # CLI's choice, at the first kernel, not at import
    code = ("import deconv.cli, deconv.models.recipes\n"
            "maps = open('/proc/self/maps').read() if __import__('os').path.exists("
            "'/proc/self/maps') else ''\n"
            "print('gomp' in maps)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
                         check=True)
    assert out.stdout.strip() == "False"
