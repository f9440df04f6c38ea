"""The real-scheduler benchmark's arithmetic over the REST API's task instances: each task's
queued and running seconds, the stages' sums, and the wall split into time with a task
running and time with none (the scheduler between chained tasks)."""

from datetime import datetime, timezone

from bench.scheduler import pools_named, stage_table, task_table, timeline

T0 = datetime(2026, 12, 1, 10, 0, 0, tzinfo=timezone.utc).timestamp()


def _ti(task_id, map_index, queued, start, end):
    iso = lambda s: datetime.fromtimestamp(T0 + s, tz=timezone.utc).isoformat().replace("+00:00", "Z")  # noqa: E731
    return {
        "task_id": task_id,
        "map_index": map_index,
        "state": "success",
        "try_number": 1,
        "hostname": "h",
        "queued_when": iso(queued),
        "start_date": iso(start),
        "end_date": iso(end),
    }


TIS = [
    _ti("plan", -1, 0.5, 1.0, 2.0),
    _ti("extract", 0, 2.8, 3.0, 5.0),
    _ti("extract", 1, 2.9, 3.5, 6.0),
    _ti("validate", 0, 5.5, 6.0, 9.0),
]


def test_each_task_has_its_stage_queue_and_run_seconds_from_the_trigger():
    tasks = task_table(TIS, T0)
    assert [(t["stage"], t["map_index"]) for t in tasks] == [
        ("plan", -1),
        ("extract", 0),
        ("extract", 1),
        ("validate", 0),
    ]
    assert [t["queued_s"] for t in tasks] == [0.5, 0.2, 0.6, 0.5]
    assert [t["running_s"] for t in tasks] == [1.0, 2.0, 2.5, 3.0]
    assert tasks[1]["start_s"] == 3.0 and tasks[1]["end_s"] == 5.0


def test_stages_sum_their_tasks():
    stages = stage_table(task_table(TIS, T0))
    assert stages["extract"] == {"wall_s": 4.5, "queued_s": 0.8, "max_running_s": 2.5, "tasks": 2}


def test_wall_split_into_tasks_running_and_none_running():
    # running: [1, 2], [3, 6] (two extracts overlap), [6, 9] -> 7 s of a 10 s wall
    assert timeline(task_table(TIS, T0), 10.0) == {
        "tasks_running_s": 7.0,
        "no_task_running_s": 3.0,
        "until_first_task_s": 1.0,
    }


def test_no_pool_is_made_unless_the_environment_names_one():
    assert pools_named({}) == {}
    assert pools_named({"CANVAS_ASPEN_ASPEN_POOL": "aspen_api"}) == {"aspen_api": 1}
    assert pools_named(
        {
            "CANVAS_ASPEN_CANVAS_POOL": "default_pool",
            "CANVAS_ASPEN_ASPEN_POOL": " aspen ",
            "CANVAS_ASPEN_POOL_SLOTS": "2",
        }
    ) == {"aspen": 2}  # Airflow's default_pool exists already


def test_proc_stat_counts_idle_and_iowait_as_not_busy():
    import os

    from bench.scheduler import proc_stat_cpu

    hz = os.sysconf("SC_CLK_TCK")
    text = f"cpu  {3 * hz} 0 {hz} {4 * hz} {2 * hz} 0 0 0 0 0\ncpu0 1 2 3 4 5\n"
    busy, total = proc_stat_cpu(text)
    assert (busy, total) == (4.0, 10.0)


def test_cpu_use_measures_this_machines_busy_share_over_a_block():
    import os
    import time

    from bench.scheduler import CpuUse

    with CpuUse(os.getpid()) as cpu:
        end = time.process_time() + 0.3
        while time.process_time() < end:  # burn 0.3 s of this process's CPU
            pass
    assert cpu.out["cores"] == os.cpu_count()
    assert cpu.out["sandbox_s"] >= 0.29  # "sandbox" here: this process
    assert cpu.out["busy_s"] >= cpu.out["sandbox_s"] - 0.05
    assert 0 < cpu.out["busy_share"] <= 1
