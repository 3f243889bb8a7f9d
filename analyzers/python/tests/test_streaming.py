"""The video drawn during pass 1: what it draws early, what pass 2 draws again, what it shows."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cruxlog_vision import annotate, pipeline
from cruxlog_vision.encode import EncodeError
from cruxlog_vision.pipeline import FramePlan, Overlay, PoseLog, PoseTrack
from cruxlog_vision.pose import Source
from cruxlog_vision.rules import Finding
from cruxlog_vision.streaming import EarlyVideo
from cruxlog_vision.tracks import smooth_keypoints

from . import synth
from .synth import FloatArray
from .test_chunked import decoded

RATE = 10.0
COUNT = 160  # 16 s: chunks of 40 frames, the last 30 frames are the verdicts
SIZE = (640, 360)
GREY = 128
REACH = Finding("SLOW_REACH", "ERROR", 5000, 5900, 0.5, "Commit to the move.")
SMOOTH = Finding("SMOOTH_MOVEMENT", "STRENGTH", 0, 9900, 0.8, "Smooth movement.")
GHOST = Finding("BENT_ARMS_WHILE_STATIC", "ERROR", 2000, 3000, 0.6, "Only seen early.")


def times() -> FloatArray:
    return np.arange(COUNT) / RATE


def keypoints() -> FloatArray:
    k = synth.track(times(), lambda t: synth.Pose(hip=(320.0, 300.0 - 8 * t)))
    k[:, :, :2] /= 2  # the stick figure is drawn for a 720p frame; ours is 640x360
    return k


def store() -> pipeline.FrameStore:
    s = pipeline.FrameStore(*SIZE)
    frame = np.full((SIZE[1], SIZE[0], 3), GREY, np.uint8)
    for _ in range(COUNT):
        s.add(frame)
    return s


def overlay_of(track: PoseTrack, ghost_until: int = 0) -> Overlay:
    """A stand-in analysis: REACH once it has ended, SMOOTH always; GHOST (an error that the
    final analysis does not confirm) while fewer than ``ghost_until`` frames are known."""
    known_ms = track.times_s[-1] * 1000
    findings = [f for f in (REACH,) if f.end_ms <= known_ms] + [SMOOTH]
    if len(track.times_s) < ghost_until:
        findings.append(GHOST)
    return Overlay(
        keypoints=smooth_keypoints(track.times_s, track.keypoints),
        findings=findings,
        metrics={"smoothness_ratio": 0.8},
        move_starts_s=[1.0, 4.0],
    )


def feed(poses: PoseLog, delay_s: float) -> threading.Thread:
    """The pose pass: one row every ``delay_s``, then the log closes."""
    k, t = keypoints(), times()

    def run() -> None:
        for i in range(COUNT):
            time.sleep(delay_s)
            poses.append(3 * i, float(t[i]), k[i], int(Source.TRACKING))
        poses.decoded_frames = 3 * COUNT
        poses.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def red_pixels(path: Path) -> list[int]:
    """Per decoded frame, how many pixels are clearly red (error banner text, error ring)."""
    out = []
    for bgr in decoded(path):
        b, g, r = (bgr[:, :, c].astype(int) for c in range(3))
        out.append(int(np.count_nonzero((r > 160) & (g < 100) & (b < 100))))
    return out


def run(tmp_path: Path, ghost_until: int, delay_s: float = 0.01) -> tuple[EarlyVideo, int, Path]:
    poses, frames = PoseLog(), store()
    path = tmp_path / "annotated.mp4"
    with pipeline.annotated_video(path, frames.size, RATE) as video:
        early = EarlyVideo(
            poses, frames, video, lambda p: overlay_of(p, ghost_until), expected_frames=COUNT
        )
        with early:
            feed(poses, delay_s).join()
            early.join(30.0)
        track = poses.track()
        late = pipeline.render(
            track,
            overlay_of(track),
            frames,
            video,
            image_out=tmp_path / "summary.jpg",
            drawn=early.drawn,
        )
    return early, late, path


def test_settled_chunks_are_drawn_during_the_pose_pass_and_kept(tmp_path: Path) -> None:
    early, late, path = run(tmp_path, ghost_until=0)
    assert pipeline.chunk_frames(RATE) == 40
    # chunks 0-2 end before the verdicts (frame 130) and a second before the newest pose
    assert sorted(early.drawn) == [0, 1, 2]
    assert (early.analyses, early.redrawn) == (3, 0)  # once per chunk
    assert late == COUNT - 120  # only the chunk the early thread could not settle
    reds = red_pixels(path)
    assert len(reds) == COUNT
    error_at = [i for i, n in enumerate(reds) if n > 30]
    assert error_at == list(range(50, 60)), error_at  # REACH, 5.0-5.9 s


def test_a_chunk_whose_finding_went_away_meanwhile_is_drawn_again_early(tmp_path: Path) -> None:
    # GHOST (2-3 s, chunk 0) is in the analyses of 50 rows, gone from that of 90
    early, late, path = run(tmp_path, ghost_until=80)
    assert early.redrawn == 1
    assert late == COUNT - 120
    error_at = [i for i, n in enumerate(red_pixels(path)) if n > 30]
    assert error_at == list(range(50, 60)), error_at  # no trace of GHOST


def test_a_chunk_whose_finding_went_away_at_the_end_is_drawn_again_after(tmp_path: Path) -> None:
    early, late, path = run(tmp_path, ghost_until=COUNT)  # only the final analysis lacks it
    ghost_line = annotate.banner([GHOST])[0]
    assert any(ghost_line in p.findings for p in early.drawn[0])
    assert late == COUNT - 120 + 40  # chunk 0 again, and the rest
    error_at = [i for i, n in enumerate(red_pixels(path)) if n > 30]
    assert error_at == list(range(50, 60)), error_at


def test_a_failing_early_analysis_leaves_the_whole_video_to_pass_2(tmp_path: Path) -> None:
    poses, frames = PoseLog(), store()
    path = tmp_path / "annotated.mp4"

    def broken(prefix: PoseTrack) -> Overlay | None:
        raise RuntimeError("a bug in the early analysis")

    with pipeline.annotated_video(path, frames.size, RATE) as video:
        with EarlyVideo(poses, frames, video, broken, expected_frames=COUNT) as early:
            feed(poses, 0.0).join()
        track = poses.track()
        late = pipeline.render(
            track, overlay_of(track), frames, video, image_out=tmp_path / "s.jpg", drawn=early.drawn
        )
    assert (early.drawn, late) == ({}, COUNT)
    assert len(red_pixels(path)) == COUNT


def test_no_climber_yet_draws_nothing_early(tmp_path: Path) -> None:
    poses, frames = PoseLog(), store()
    with pipeline.annotated_video(tmp_path / "a.mp4", frames.size, RATE) as video:
        with EarlyVideo(poses, frames, video, lambda p: None, expected_frames=COUNT) as early:
            feed(poses, 0.0).join()
        assert early.analyses >= 1
        assert early.drawn == {}
        track = poses.track()
        pipeline.render(track, overlay_of(track), frames, video, image_out=tmp_path / "s.jpg")


def plans() -> list[FramePlan]:
    track = PoseLog()
    for i, (t, k) in enumerate(zip(times(), keypoints(), strict=True)):
        track.append(3 * i, float(t), k, int(Source.TRACKING))
    overlay = overlay_of(track.track())
    return pipeline.plan_frames(times(), overlay, range(COUNT), 70)


def test_frames_show_timed_findings_then_the_verdicts_on_the_whole_climb() -> None:
    all_plans = plans()
    smooth, reach = annotate.banner([SMOOTH, REACH])
    assert all(smooth not in p.findings for p in all_plans[:70])
    assert all(p.findings[0] == smooth for p in all_plans[70:])  # verdicts from frame 70
    assert [i for i, p in enumerate(all_plans) if reach in p.findings] == list(range(50, 60))
    live, verdict = all_plans[45].panel, all_plans[80].panel
    assert live[0] == "t   4.5 s   moves 2"
    assert live[1].startswith("elbows L 170  R 170")  # the stick figure's arms
    assert verdict == tuple(annotate.panel_rows(8.0, {"smoothness_ratio": 0.8}, 2))


def test_a_plan_is_equal_only_for_the_same_drawing() -> None:
    a, b = plans()[10], plans()[10]
    assert a == b
    assert a != plans()[11]


@pytest.mark.parametrize("rows", [0, 1, 5])
def test_pose_log_hands_out_prefix_tracks(rows: int) -> None:
    poses = PoseLog()
    k = keypoints()
    for i in range(5):
        poses.append(3 * i, i / RATE, k[i], int(Source.TRACKING))
    track = poses.track(rows)
    assert track.keypoints.shape == (rows, 33, 4)
    assert list(track.frame_index) == [3 * i for i in range(rows)]
    assert poses.wait_for(5, 0.01) == 5
    poses.close()
    assert poses.wait_for(9, 5.0) == 5  # closed: no waiting


def test_an_encoder_that_dies_during_the_pose_pass_fails_the_video_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    poses, frames = PoseLog(), store()

    def analyse_while_x264_dies() -> None:
        with pipeline.annotated_video(tmp_path / "annotated.mp4", frames.size, RATE) as video:
            with EarlyVideo(poses, frames, video, overlay_of, expected_frames=COUNT) as early:
                feeding = feed(poses, 0.01)
                while not early.drawn and feeding.is_alive():
                    time.sleep(0.01)
                video._writer._proc.kill()  # after the first chunk
                feeding.join()
            track = poses.track()
            image = tmp_path / "s.jpg"
            pipeline.render(track, overlay_of(track), frames, video, image_out=image)

    with pytest.raises(EncodeError):
        analyse_while_x264_dies()
    assert list(tmp_path.iterdir()) == []
