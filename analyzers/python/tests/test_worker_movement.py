"""``movement.analyze`` through a real worker subprocess, as the Rust analyzer calls it."""

from __future__ import annotations

from pathlib import Path

from tests.harness import WorkerProcess
from tests.test_worker_process import assert_clean_protocol_stream, assert_error, assert_ok


def test_movement_analyze_twice_on_one_warm_worker(clip: Path, tmp_path: Path) -> None:
    with WorkerProcess() as worker:
        assert "movement.analyze" in worker.hello()["methods"]
        for run in ("first", "second"):
            out = tmp_path / run
            out.mkdir()
            params: dict[str, object] = {
                "video_path": str(clip),
                "out_dir": str(out),
                "analysis_id": run,
                "rotation_degrees": None,
                "history": [],
                "options": {},
            }
            frame = worker.call("movement.analyze", params, request_id=run)
            result = assert_ok(frame, run)
            assert result["analyzer"]["name"] == "movement"
            assert result["video"]["analysed_frames"] == 40
            assert Path(result["artifacts"]["annotated_video"]).is_file()
        assert_clean_protocol_stream(worker)


def test_movement_analyze_failures_are_invalid_input(corrupt_clip: Path, tmp_path: Path) -> None:
    with WorkerProcess() as worker:
        worker.hello()
        frame = worker.call("movement.analyze", {"out_dir": str(tmp_path), "analysis_id": "x"})
        assert assert_error(frame, "req-1", "invalid_input") == "video_path: is required"
        params = {"video_path": str(corrupt_clip), "out_dir": str(tmp_path), "analysis_id": "x"}
        message = assert_error(worker.call("movement.analyze", params), "req-2", "invalid_input")
        assert message.startswith("video.unreadable: ")
        assert assert_ok(worker.call("ping"), "req-3") == {"pong": True}
        assert_clean_protocol_stream(worker)
