"""The workers' Celery settings: Airflow's own plus one preload module, which imports what
the tasks need once per worker (the scheduler, which reads the settings, imports none of it)."""

import json
import subprocess
import sys

from canvas_aspen import celery_config


def test_airflow_settings_kept_and_the_preload_added():
    from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

    assert {k: v for k, v in celery_config.CELERY_CONFIG.items() if k != "imports"} == {
        k: v for k, v in DEFAULT_CELERY_CONFIG.items() if k != "imports"
    }
    assert list(celery_config.CELERY_CONFIG["imports"]) == [
        *DEFAULT_CELERY_CONFIG.get("imports", ()),
        "canvas_aspen.preload",
    ]


def _modules_after(statement: str, repo_root) -> dict[str, bool]:
    code = (
        f"import sys; {statement}; import json; "
        "print(json.dumps({m: m in sys.modules for m in ('great_expectations', 'pyarrow.parquet', "
        "'canvas_aspen.stages')}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=300,
        env={
            "PYTHONPATH": str(repo_root / "plugins"),
            "GX_ANALYTICS_ENABLED": "False",
            "PATH": "/usr/bin:/bin",
        },
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_worker_preloads_great_expectations_and_the_scheduler_does_not(repo_root):
    assert _modules_after("import canvas_aspen.celery_config", repo_root)["great_expectations"] is False
    assert _modules_after("import canvas_aspen.preload", repo_root) == {
        "great_expectations": True,
        "pyarrow.parquet": True,
        "canvas_aspen.stages": True,
    }
