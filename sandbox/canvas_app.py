"""The Canvas LMS stand-in: the read endpoints of ``domain.md`` §1, with Canvas's paging,
bearer auth and leaky-bucket throttling, plus its ``/_sandbox/`` admin routes.
"""

from __future__ import annotations

import math
import time
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import Response

from sandbox.admin import ServerContext, add_common_admin, json_body, json_response
from sandbox.canvas_state import CanvasError, CanvasState
from sandbox.faults import (
    ADMIN_PREFIX,
    FaultMiddleware,
    FaultState,
    StatsMiddleware,
    is_admin,
    json_bytes,
    proxy_error_body,
    send_simple,
    wrap_send,
)
from sandbox.grading_day import canvas_day_of_grading
from sandbox.scenario import parse_time
from sandbox.settings import Settings

API = "/api/v1"


def throttled_body(status: int) -> bytes:
    return (
        b"403 Forbidden (Rate Limit Exceeded)"
        if status == 403
        else b"429 Too Many Requests (Rate Limit Exceeded)"
    )


def canvas_error_body(status: int) -> tuple[str, bytes]:
    """Bodies of the errors the fault injector answers with, as Canvas (or its proxy) sends them."""
    proxied = proxy_error_body(status)
    if proxied:
        return proxied
    if status in (403, 429):
        return "text/plain", throttled_body(status)
    message = "An error occurred." if status >= 500 else "The request could not be processed."
    return "application/json", json_bytes({"errors": [{"message": message}]})


class CanvasThrottle:
    """Canvas's leaky bucket: a request holds an up-front cost while in flight, then is charged its
    actual cost (base + processing time, not the injected network latency); the bucket drains at
    ``outflow`` per second. A request that would overflow it, or that arrives above
    ``canvas_max_in_flight``, is refused with 429 (or 403 "Rate Limit Exceeded").
    """

    def __init__(self, app, settings: Settings) -> None:
        self.app, self.settings = app, settings
        self.in_flight = 0
        self.clear()

    def clear(self) -> None:
        """An empty bucket (full quota)."""
        self.level = 0.0
        self.last = time.monotonic()

    def _leak(self) -> None:
        now = time.monotonic()
        self.level = max(0.0, self.level - (now - self.last) * self.settings.canvas_bucket_outflow)
        self.last = now

    def remaining(self) -> float:
        return round(max(0.0, self.settings.canvas_bucket_hwm - self.level), 3)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or is_admin(scope) or not scope["path"].startswith(API):
            await self.app(scope, receive, send)
            return
        s = self.settings
        self._leak()
        over_cap = s.canvas_max_in_flight is not None and self.in_flight >= s.canvas_max_in_flight
        bucket_full = s.canvas_throttling and self.level + s.canvas_up_front_cost > s.canvas_bucket_hwm
        if over_cap or bucket_full:
            headers = [("X-Request-Cost", "0")]
            if s.canvas_throttling:
                headers.append(("X-Rate-Limit-Remaining", self.remaining()))
            await send_simple(
                send,
                s.canvas_throttle_status,
                throttled_body(s.canvas_throttle_status),
                "text/plain",
                headers,
            )
            return
        up_front = s.canvas_up_front_cost if s.canvas_throttling else 0.0
        self.level += up_front
        self.in_flight += 1
        started = time.perf_counter()
        credited = False

        async def charging_send(message: dict) -> None:
            nonlocal credited
            if message["type"] == "http.response.start" and not credited:
                credited = True
                latency = scope.get("state", {}).get("sandbox_latency_s", 0.0)
                cost = s.canvas_request_base_cost + max(0.0, time.perf_counter() - started - latency)
                self._leak()
                self.level = max(0.0, self.level - up_front + (cost if s.canvas_throttling else 0.0))
                headers = list(message.get("headers", []))
                headers.append((b"x-request-cost", f"{cost:.6f}".encode()))
                if s.canvas_throttling:
                    headers.append((b"x-rate-limit-remaining", str(self.remaining()).encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, wrap_send(charging_send, send))
        finally:
            self.in_flight -= 1
            if not credited:
                self._leak()
                self.level = max(0.0, self.level - up_front)


# --- request helpers -----------------------------------------------------------------------


def authorize(request: Request, ctx: ServerContext) -> None:
    header = request.headers.get("authorization", "")
    token = (
        header[7:].strip()
        if header.lower().startswith("bearer ")
        else request.query_params.get("access_token")
    )
    if not token:
        raise CanvasError(401, "user authorization required")
    if token != (ctx.settings.canvas_token or ctx.state.token):
        raise CanvasError(401, "Invalid access token.")


def paginate(
    request: Request, ctx: ServerContext, items: list, render_text=None, wrap: str | None = None
) -> Response:
    """One page of ``items`` with Canvas's ``Link`` header (current, next, prev, first, last).
    ``render_text`` turns an item into its JSON text (else items are JSON-ready values); with
    ``wrap`` the page is an object holding the items under that key (the terms listing)."""
    s = ctx.settings
    per_page = _int(request.query_params.get("per_page"), s.canvas_default_per_page)
    per_page = min(max(per_page, 1), s.canvas_max_per_page)
    page = max(_int(request.query_params.get("page"), 1), 1)
    last = max(1, math.ceil(len(items) / per_page))
    chunk = items[(page - 1) * per_page : page * per_page]

    params = [
        (k, v) for k, v in request.query_params.multi_items() if k not in ("page", "per_page", "access_token")
    ]
    base = str(request.url.replace(query=""))

    def link(n: int, rel: str) -> str:
        return f'<{base}?{urlencode(params + [("page", n), ("per_page", per_page)])}>; rel="{rel}"'

    links = [link(page, "current")]
    if page < last:
        links.append(link(page + 1, "next"))
    if page > 1:
        links.append(link(page - 1, "prev"))
    links.append(link(1, "first"))
    if not s.canvas_omit_last_link:
        links.append(link(last, "last"))
    headers = {"Link": ",".join(links)}
    if wrap is not None:
        return json_response({wrap: chunk}, headers=headers)
    if render_text is None:
        return json_response(chunk, headers=headers)
    body = ("[" + ",".join(map(render_text, chunk)) + "]").encode()
    return Response(body, media_type="application/json", headers=headers)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def _course(ctx: ServerContext, course_id: str):
    state: CanvasState = ctx.state
    if course_id.startswith("sis_course_id:"):
        sis = course_id.split(":", 1)[1]
        match = next((c for c in state.courses.values() if c.raw.get("sis_course_id") == sis), None)
        if match is None:
            raise CanvasError(404, "The specified resource does not exist.")
        return state.course(match.id)
    if not course_id.isdigit():
        raise CanvasError(404, "The specified resource does not exist.")
    return state.course(int(course_id))


# --- the app -------------------------------------------------------------------------------


def build_canvas_app(scenario: dict, settings: Settings, faults: FaultState) -> tuple[FastAPI, ServerContext]:
    ctx = ServerContext("canvas", scenario, settings, faults, CanvasState)
    app = FastAPI(title="Sandbox Canvas LMS", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(CanvasError)
    async def canvas_error(request: Request, exc: CanvasError) -> Response:
        body = {"errors": [{"message": exc.message}]}
        headers = None
        if exc.status == 401:
            headers = {"WWW-Authenticate": 'Bearer realm="canvas-lms"'}
            if exc.message != "Invalid access token.":
                body["status"] = "unauthenticated"
        return json_response(body, exc.status, headers)

    @app.get(f"{API}/users/self")
    async def user_self(request: Request) -> Response:
        authorize(request, ctx)
        return json_response(
            {
                "id": 1,
                "name": "Sandbox Admin",
                "sortable_name": "Admin, Sandbox",
                "short_name": "Sandbox Admin",
                "login_id": "sandbox-admin",
            }
        )

    @app.get(f"{API}/accounts/{{account_id}}")
    async def account(request: Request, account_id: str) -> Response:
        authorize(request, ctx)
        if account_id not in (str(ctx.state.account_id), "self"):
            raise CanvasError(404, "The specified resource does not exist.")
        return json_response(
            {
                "id": ctx.state.account_id,
                "name": ctx.scenario.get("name", "Sandbox District"),
                "workflow_state": "active",
                "parent_account_id": None,
                "root_account_id": None,
            }
        )

    @app.get(f"{API}/accounts/{{account_id}}/terms")
    async def account_terms(request: Request, account_id: str) -> Response:
        authorize(request, ctx)
        return paginate(request, ctx, ctx.state.terms_of_account(account_id), wrap="enrollment_terms")

    @app.get(f"{API}/accounts/{{account_id}}/courses")
    async def account_courses(request: Request, account_id: str) -> Response:
        authorize(request, ctx)
        q = request.query_params
        items = ctx.state.courses_of_account(account_id, q.get("enrollment_term_id"), q.getlist("state[]"))
        return paginate(request, ctx, items)

    @app.get(f"{API}/courses/{{course_id}}")
    async def course(request: Request, course_id: str) -> Response:
        authorize(request, ctx)
        return json_response(ctx.state.course_json(_course(ctx, course_id)))

    @app.get(f"{API}/courses/{{course_id}}/sections")
    async def sections(request: Request, course_id: str) -> Response:
        authorize(request, ctx)
        return paginate(request, ctx, ctx.state.sections_json(_course(ctx, course_id)))

    @app.get(f"{API}/courses/{{course_id}}/enrollments")
    async def enrollments(request: Request, course_id: str) -> Response:
        authorize(request, ctx)
        q = request.query_params
        c = _course(ctx, course_id)
        return paginate(
            request, ctx, ctx.state.enrollments_json(c, q.getlist("type[]"), q.getlist("state[]"))
        )

    @app.get(f"{API}/courses/{{course_id}}/users")
    async def course_users(request: Request, course_id: str) -> Response:
        authorize(request, ctx)
        q = request.query_params
        c = _course(ctx, course_id)
        return paginate(
            request,
            ctx,
            ctx.state.course_users_json(c, q.getlist("enrollment_type[]"), set(q.getlist("include[]"))),
        )

    @app.get(f"{API}/courses/{{course_id}}/assignment_groups")
    async def assignment_groups(request: Request, course_id: str) -> Response:
        authorize(request, ctx)
        include = set(request.query_params.getlist("include[]"))
        c = _course(ctx, course_id)
        items = ctx.state.groups_json(
            c, "assignments" in include, "assignments" in include and "overrides" in include
        )
        return paginate(request, ctx, items)

    @app.get(f"{API}/courses/{{course_id}}/students/submissions")
    async def submissions(request: Request, course_id: str) -> Response:
        authorize(request, ctx)
        q = request.query_params
        since = None
        if q.get("graded_since"):
            try:
                since = parse_time(q["graded_since"])
            except ValueError as exc:
                raise CanvasError(400, "Invalid datetime for graded_since") from exc
        c = _course(ctx, course_id)
        state: CanvasState = ctx.state
        keys = state.submission_keys(c, q.getlist("student_ids[]"), q.getlist("assignment_ids[]"), since)
        return paginate(request, ctx, keys, render_text=lambda key: state.submission_text(*key))

    add_common_admin(app, ctx)
    add_canvas_admin(app, ctx)

    def resolve(scope) -> str | None:
        for route in app.router.routes:
            match, _ = route.matches(scope)
            if match.name == "FULL":
                return route.path
        return None

    inner = FaultMiddleware(
        app, faults, ctx.stats, canvas_error_body, busy_status=lambda: settings.canvas_throttle_status
    )
    throttle = CanvasThrottle(inner, settings)
    ctx.reset_hooks.append(throttle.clear)
    return StatsMiddleware(throttle, ctx.stats, resolve), ctx


def add_canvas_admin(app: FastAPI, ctx: ServerContext) -> None:
    def guarded(fn):
        try:
            return json_response(fn())
        except CanvasError as exc:
            return json_response({"error": exc.message}, exc.status)
        except (ValueError, TypeError, KeyError) as exc:
            return json_response({"error": str(exc)}, 400)

    @app.get(f"{ADMIN_PREFIX}/state")
    async def state(request: Request) -> Response:
        course_id = request.query_params.get("course_id")
        if course_id is None:
            return guarded(ctx.state.summary)
        return guarded(lambda: ctx.state.course_dump(int(course_id)))

    @app.put(f"{ADMIN_PREFIX}/courses/{{course_id}}/assignments/{{assignment_id}}/submissions/{{user_id}}")
    async def set_submission(request: Request, course_id: int, assignment_id: int, user_id: int) -> Response:
        fields = await json_body(request)
        return guarded(lambda: ctx.state.set_submission(course_id, assignment_id, user_id, fields))

    @app.delete(f"{ADMIN_PREFIX}/courses/{{course_id}}/assignments/{{assignment_id}}")
    async def delete_assignment(course_id: int, assignment_id: int) -> Response:
        return guarded(lambda: ctx.state.delete_assignment(course_id, assignment_id))

    @app.patch(f"{ADMIN_PREFIX}/courses/{{course_id}}/assignments/{{assignment_id}}")
    async def update_assignment(request: Request, course_id: int, assignment_id: int) -> Response:
        fields = await json_body(request)
        return guarded(lambda: ctx.state.set_assignment(course_id, assignment_id, fields))

    @app.post(f"{ADMIN_PREFIX}/courses/{{course_id}}/assignments/{{assignment_id}}/post_grades")
    async def post_grades(course_id: int, assignment_id: int) -> Response:
        return guarded(lambda: ctx.state.post_grades(course_id, assignment_id))

    @app.post(f"{ADMIN_PREFIX}/courses/{{course_id}}/assignments/{{assignment_id}}/hide_grades")
    async def hide_grades(course_id: int, assignment_id: int) -> Response:
        return guarded(lambda: ctx.state.hide_grades(course_id, assignment_id))

    @app.post(f"{ADMIN_PREFIX}/day-of-grading")
    async def day_of_grading(request: Request) -> Response:
        params = await json_body(request)
        return guarded(lambda: canvas_day_of_grading(ctx, **params))
