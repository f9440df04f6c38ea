"""Run the Canvas and the Aspen stand-ins: two uvicorn servers on one event loop, 127.0.0.1 only.

The ports are bound before the servers start (0 = a free port), so the URLs are known up
front; once both answer, they are printed and written to the urls file as JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvicorn

from sandbox import scenario as scenario_mod
from sandbox.aspen_app import build_aspen_app
from sandbox.canvas_app import build_canvas_app
from sandbox.faults import Faults, FaultState
from sandbox.settings import Settings

HOST = "127.0.0.1"


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to ``serve`` (two servers share one process)."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def write_atomically(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".urls-")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)


def serve(
    scenario: str | dict,
    *,
    canvas_port: int = 0,
    aspen_port: int = 0,
    urls_file: str | None = None,
    settings: dict[str, Any] | None = None,
    canvas_faults: dict | None = None,
    aspen_faults: dict | None = None,
    log_level: str = "warning",
) -> None:
    started = time.perf_counter()
    with scenario_mod.bulk_load():
        data = scenario_mod.load(scenario)
    cfg = Settings.from_dict(settings)
    canvas_app, canvas_ctx = build_canvas_app(data, cfg, FaultState(Faults.from_dict(canvas_faults)))
    aspen_app, aspen_ctx = build_aspen_app(data, cfg, FaultState(Faults.from_dict(aspen_faults)))
    loaded = time.perf_counter() - started

    sockets = {"canvas": bind(canvas_port), "aspen": bind(aspen_port)}
    ports = {name: sock.getsockname()[1] for name, sock in sockets.items()}
    servers = {
        name: _Server(
            uvicorn.Config(
                app,
                host=HOST,
                port=ports[name],
                log_level=log_level,
                access_log=False,
                lifespan="off",
                timeout_keep_alive=30,
                backlog=2048,
            )
        )
        for name, app in (("canvas", canvas_app), ("aspen", aspen_app))
    }
    info = {
        "canvas_url": f"http://{HOST}:{ports['canvas']}",
        "aspen_url": f"http://{HOST}:{ports['aspen']}",
        "canvas_token": cfg.canvas_token or canvas_ctx.state.token,
        "aspen_client_id": cfg.aspen_client_id or aspen_ctx.state.client_id,
        "aspen_client_secret": cfg.aspen_client_secret or aspen_ctx.state.client_secret,
        "canvas_account_id": str(canvas_ctx.state.account_id),
        "aspen_token_path": cfg.aspen_token_path,
        "aspen_api_path": cfg.aspen_api_path,
        "scenario": data.get("name"),
        "pid": os.getpid(),
    }

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: [setattr(s, "should_exit", True) for s in servers.values()])
        tasks = [asyncio.create_task(servers[name].serve(sockets=[sockets[name]])) for name in servers]
        while not all(s.started for s in servers.values()):
            if any(t.done() for t in tasks):
                break
            await asyncio.sleep(0.01)
        else:
            print(
                f"sandbox canvas {info['canvas_url']}  aspen {info['aspen_url']}  "
                f"(scenario {info['scenario']}, loaded in {loaded:.1f}s, pid {info['pid']})",
                flush=True,
            )
            if urls_file:
                write_atomically(Path(urls_file), info)
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            if task.exception():
                raise task.exception()

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(main())
    finally:
        for sock in sockets.values():
            sock.close()
        if urls_file:
            with contextlib.suppress(FileNotFoundError):
                Path(urls_file).unlink()


def _loop_factory():
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":  # pragma: no cover
    from sandbox.__main__ import main as cli

    sys.exit(cli(["serve", *sys.argv[1:]]))
