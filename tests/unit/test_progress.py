"""Long stages say how far they are: done of total, rate, and requests sent."""

import logging

from canvas_aspen.stages.progress import Progress


class _Hook:
    stats = {"requests": 42}


def test_progress_logs_done_of_total_and_requests_sent(caplog):
    caplog.set_level(logging.INFO, logger="canvas_aspen.stages")
    p = Progress("extract shard 0: courses", 3, _Hook(), every=3600)
    for _ in range(3):
        p.step()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("extract shard 0: courses: 1 of 3 done")  # the first step always shows
    assert lines[-1].startswith("extract shard 0: courses: 3 of 3 done") and "42 requests sent" in lines[-1]
    assert len(lines) == 2  # throttled in between
