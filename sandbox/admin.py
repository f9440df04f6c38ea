"""What both servers share: their context object and the common ``/_sandbox/`` admin routes."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from sandbox.faults import ADMIN_PREFIX, Faults, FaultState, Stats, json_bytes
from sandbox.scenario import bulk_load
from sandbox.settings import Settings


def json_response(content: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json_bytes(content), status_code=status, media_type="application/json", headers=headers)


async def json_body(request: Request) -> dict:
    raw = await request.body()
    if not raw:
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


@dataclass
class ServerContext:
    """One server's live state. ``reset()`` brings back the scenario's initial state."""

    system: str  # "canvas" | "aspen"
    scenario: dict
    settings: Settings
    faults: FaultState
    build_state: Callable[[dict], Any]
    stats: Stats = field(default_factory=Stats)
    state: Any = None
    scripted_applied: bool = False
    reset_hooks: list[Callable[[], None]] = field(default_factory=list)  # e.g. empty the throttle bucket

    def __post_init__(self) -> None:
        self.initial_settings = self.settings.as_dict()
        with bulk_load():
            self.state = self.build_state(self.scenario)

    def reset(self) -> None:
        self.state = None  # free the old state first
        with bulk_load():
            self.state = self.build_state(self.scenario)
        self.settings.update({k: v for k, v in self.initial_settings.items() if k not in Settings.START_ONLY})
        self.faults.reset()
        self.stats.reset()
        self.scripted_applied = False
        for hook in self.reset_hooks:
            hook()


def add_common_admin(app: FastAPI, ctx: ServerContext) -> None:
    @app.get(f"{ADMIN_PREFIX}/health")
    async def health() -> Response:
        return json_response({"ok": True, "system": ctx.system, "scenario": ctx.scenario.get("name")})

    @app.get(f"{ADMIN_PREFIX}/stats")
    async def stats() -> Response:
        return json_response(ctx.stats.as_dict())

    @app.post(f"{ADMIN_PREFIX}/stats/reset")
    async def stats_reset() -> Response:
        ctx.stats.reset()
        return json_response({"ok": True})

    @app.post(f"{ADMIN_PREFIX}/reset")
    async def reset() -> Response:
        ctx.reset()
        return json_response({"ok": True})

    @app.get(f"{ADMIN_PREFIX}/faults")
    async def get_faults() -> Response:
        return json_response(ctx.faults.faults.as_dict())

    @app.put(f"{ADMIN_PREFIX}/faults")
    async def put_faults(request: Request) -> Response:
        """Replace the faults (absent keys go back to off); ``?merge=1`` keeps the others."""
        try:
            body = await json_body(request)
            base = ctx.faults.faults if request.query_params.get("merge") else None
            faults = Faults.from_dict(body, base=dataclasses.replace(base) if base else None)
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)
        ctx.faults.set(faults)
        return json_response(faults.as_dict())

    @app.get(f"{ADMIN_PREFIX}/settings")
    async def get_settings() -> Response:
        return json_response(ctx.settings.as_dict())

    @app.patch(f"{ADMIN_PREFIX}/settings")
    async def patch_settings(request: Request) -> Response:
        try:
            ctx.settings.update(await json_body(request), running=True)
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response(ctx.settings.as_dict())
