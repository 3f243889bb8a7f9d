"""Work beside the pose model runs at a lower scheduling priority than the model.

The pose model keeps one core busy and is the pace of the whole analysis; decoding, drawing the
video early and x264 fill the other core.  When the scheduler puts any of them on the model's
core, the model loses time it never gets back, while the background work has slack (it waits
for poses anyway).  So those threads and child processes run at ``nice`` BACKGROUND_NICE: on a
busy core the model's threads get most of the time, on an idle one the background work all of
it.  Linux sets the nice value per thread; elsewhere (or when refused) this does nothing.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Final

BACKGROUND_NICE: Final = 10


def _lower(who: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        current = os.getpriority(os.PRIO_PROCESS, who)
        if current < BACKGROUND_NICE:
            os.setpriority(os.PRIO_PROCESS, who, BACKGROUND_NICE)


def lower_this_thread() -> None:
    """The calling thread yields to the pose model (for the rest of its life)."""
    _lower(threading.get_native_id())


def lower_process(pid: int) -> None:
    """A child process yields to the pose model; threads it starts later inherit it."""
    _lower(pid)
