"""The annotated video drawn and encoded while the pose pass still runs.

The pose model keeps one core busy; the other one decodes and then mostly waits.  Drawing and
encoding the video after the last frame put about 0.3 s per 200 analysed frames on the critical
path, so :class:`EarlyVideo` does it during pass 1 on that second core: each time enough new
poses are in the :class:`~cruxlog_vision.pipeline.PoseLog` to settle a chunk, it analyses the
climb so far (the same analysis as the final one, on the prefix) and draws the chunks that end
at least MARGIN_S before the newest pose, before any timed finding still open there and before
the closing verdict frames.  It analyses only when a chunk may have settled: once per chunk as a
rule, so the analyses of the growing prefix cost about one per chunk, not one per frame.

Findings are speculative: the torso length, the phases and the thresholds can still move as the
climb goes on.  Nothing here is trusted: :func:`~cruxlog_vision.pipeline.render` plans every
frame from the final analysis and draws again each chunk whose plans changed.  The video is
therefore exactly the one drawn after the pose pass, and the early work only decides how much
of it is left to do then.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from typing import Final

import numpy as np

from cruxlog_vision import rules
from cruxlog_vision.chunked import ChunkedVideo
from cruxlog_vision.pipeline import (
    FramePlan,
    FrameStore,
    Overlay,
    PoseLog,
    PoseTrack,
    draw_plan,
    plan_frames,
    verdict_frames,
)
from cruxlog_vision.priority import lower_this_thread

MARGIN_S: Final = 1.0
"""Chunks are drawn when they end at least this long before the newest pose: the phases around
the newest poses are the least settled (a still spell may go on, a reach may not have ended)."""
WAIT_S: Final = 0.5

log = logging.getLogger(__name__)

Analyse = Callable[[PoseTrack], Overlay | None]
"""The analysis of a prefix of the climb (None when it cannot be analysed yet)."""


class EarlyVideo:
    """A thread that draws chunks of ``video`` from the poses in ``poses`` as they come.

    ``drawn`` maps each chunk it wrote to the plans it drew last (a chunk whose plans a later
    analysis changed is drawn again, and the new version replaces the old in ``video``).
    :meth:`stop` ends the thread (after the chunk it is writing) and must be called before
    pass 2 writes to ``video``."""

    def __init__(
        self,
        poses: PoseLog,
        store: FrameStore,
        video: ChunkedVideo,
        analyse: Analyse,
        *,
        expected_frames: int,
    ) -> None:
        self.drawn: dict[int, list[FramePlan]] = {}
        self.analyses = 0
        self.redrawn = 0
        """Chunks drawn again during pass 1 because a later analysis changed their plans."""
        self._poses = poses
        self._store = store
        self._video = video
        self._analyse = analyse
        self._verdict_from = expected_frames - verdict_frames(video.fps)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cruxlog-early-video", daemon=True)

    def __enter__(self) -> EarlyVideo:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, *, wait: bool = True) -> None:
        """End the thread after the chunk it is drawing; ``wait=False`` only asks it to, so the
        caller can do other work first.  Idempotent."""
        self._stop.set()
        if wait and self._thread.is_alive():
            self._thread.join()

    def join(self, timeout_s: float | None = None) -> None:
        """Wait until the thread ends by itself: after the pose log is closed, once it has drawn
        what the complete log settles."""
        self._thread.join(timeout_s)

    def _run(self) -> None:
        lower_this_thread()
        try:
            self._loop()
        except Exception:  # pass 2 draws whatever is missing; the analysis goes on
            log.exception("early video drawing failed; pass 2 draws the whole video")

    def _loop(self) -> None:
        size = self._video.chunk_frames
        margin = math.ceil(MARGIN_S * self._video.fps)
        next_chunk = 0
        want = size + margin  # the poses that could settle the next chunk
        while not self._stop.is_set() and (next_chunk + 1) * size <= self._verdict_from:
            rows = self._poses.wait_for(want, WAIT_S)
            if self._stop.is_set() or (self._poses.closed and rows < want):
                return
            if rows < want:
                continue
            want = rows + margin  # if nothing settles now, look again a margin later
            track = self._poses.track(rows)
            last = self._last_settled_chunk(track, size)
            if last < next_chunk:
                continue
            overlay = self._analyse(track)
            self.analyses += 1
            if overlay is None:
                continue
            last = min(last, self._before_open_findings(track, overlay, size))
            # the chunks drawn before are planned again too: one whose plans moved with the
            # longer climb is drawn again now, on this core, rather than after the pose pass
            scaled = overlay.scaled(self._store.scale)
            every = plan_frames(track.times_s, scaled, range((last + 1) * size), self._verdict_from)
            for k in range(last + 1):
                if self._stop.is_set():
                    return
                frames = range(k * size, (k + 1) * size)
                plans = every[k * size : (k + 1) * size]
                if self.drawn.get(k) == plans:
                    continue
                # drawn in full before the first frame goes out: a failure leaves no half chunk
                images = [
                    draw_plan(self._store.frame(i), p) for i, p in zip(frames, plans, strict=True)
                ]
                self._video.write_chunk(k, images)
                self.redrawn += k in self.drawn
                self.drawn[k] = plans
            next_chunk = max(next_chunk, last + 1)
            want = max(want, (next_chunk + 1) * size + margin)

    @staticmethod
    def _before_open_findings(track: PoseTrack, overlay: Overlay, size: int) -> int:
        """The last chunk that ends before every timed finding still open: one that reaches
        into the last MARGIN_S may go on (a reach not finished yet), and its text with it."""
        open_from = float(track.times_s[-1]) - MARGIN_S
        starts = [
            f.start_ms / 1000
            for f in overlay.findings
            if f.code not in rules.WHOLE_CLIMB and f.end_ms / 1000 >= open_from
        ]
        if not starts:
            return len(track.times_s) // size - 1
        first = min(starts)
        return int(np.searchsorted(track.times_s, first, side="left")) // size - 1

    def _last_settled_chunk(self, track: PoseTrack, size: int) -> int:
        """The last chunk that ends MARGIN_S before the newest pose and before the verdicts."""
        newest = float(track.times_s[-1])
        k = min(len(track.times_s), self._verdict_from) // size - 1
        while k >= 0 and float(track.times_s[(k + 1) * size - 1]) > newest - MARGIN_S:
            k -= 1
        return k
