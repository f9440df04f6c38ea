"""The post task's process, alone: ``python -m tests.reliability.post_child ARGS_JSON``.

Runs ``stages.post`` for one shard exactly as the DAG's post task does (fresh hook from
``AIRFLOW_CONN_ASPEN_DEFAULT``, the ledger by URL), so a test can SIGKILL it mid-shard.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path


def main() -> None:
    args = json.loads(sys.argv[1])
    from canvas_aspen import stages
    from canvas_aspen.hooks.aspen import AspenHook
    from canvas_aspen.ledger import Ledger

    ledger = Ledger(args["ledger_url"])
    print("post starting", flush=True)
    out = stages.post(
        AspenHook(aspen_conn_id="aspen_default"),
        ledger,
        Path(args["run_dir"]),
        args["shard"],
        run_id=args["run_id"],
        dry_run=False,
        delete_orphans=False,
        chunk=args["chunk"],
        lease=timedelta(minutes=args["lease_minutes"]),
    )
    print("post finished", json.dumps(out, default=str), flush=True)


if __name__ == "__main__":
    main()
