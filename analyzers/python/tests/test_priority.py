"""Background work yields to the pose model: the nice values of threads and child processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from cruxlog_vision import priority

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="nice per thread is Linux's")


def test_a_lowered_thread_runs_at_the_background_nice_and_the_caller_does_not() -> None:
    seen: list[int] = []

    def work() -> None:
        priority.lower_this_thread()
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [max(priority.BACKGROUND_NICE, os.getpriority(os.PRIO_PROCESS, 0))]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < priority.BACKGROUND_NICE


def test_a_lowered_child_process_runs_at_the_background_nice() -> None:
    code = "import os, sys; sys.stdin.readline(); print(os.nice(0))"
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        priority.lower_process(child.pid)
        out, _ = child.communicate("go\n", timeout=30)
    finally:
        child.kill()
    assert int(out) == priority.BACKGROUND_NICE


def test_a_process_that_is_gone_is_no_error() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    priority.lower_process(child.pid)  # ESRCH is swallowed
