"""The Follett Aspen stand-in: a OneRoster 1.1 provider with the endpoints of ``domain.md`` §2,
client-credentials tokens that expire, limit/offset paging, and Aspen's rejections answered
as OneRoster ``imsx_*`` JSON or as Aspen's plain text (the ``aspen_error_style`` setting).
"""

from __future__ import annotations

import base64
import json
import re
from itertools import islice
from urllib.parse import parse_qs

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from sandbox.admin import ServerContext, add_common_admin, json_body, json_response
from sandbox.aspen_state import AspenError, AspenState
from sandbox.faults import (
    ADMIN_PREFIX,
    FaultMiddleware,
    FaultState,
    StatsMiddleware,
    json_bytes,
    proxy_error_body,
)
from sandbox.grading_day import aspen_day_of_grading
from sandbox.settings import Settings

FILTER = re.compile(r"""^\s*([A-Za-z_][\w.]*)\s*(!=|>=|<=|=|>|<|~)\s*(?:'([^']*)'|"([^"]*)"|(\S+))\s*$""")
HTTP_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
}
CODE_MINOR = {
    400: "invaliddata",
    401: "unauthorisedrequest",
    403: "forbidden",
    404: "unknownobject",
    422: "invaliddata",
    429: "server_busy",
    500: "internal_server_error",
}


def error_payload(style: str, status: int, code_minor: str, message: str) -> tuple[str, bytes]:
    if style == "text":
        return "text/plain; charset=utf-8", message.encode()
    return "application/json", json_bytes(
        {
            "imsx_codeMajor": "failure",
            "imsx_severity": "error",
            "imsx_description": message,
            "imsx_CodeMinor": {
                "imsx_codeMinorField": [
                    {"imsx_codeMinorFieldName": "TargetEndSystem", "imsx_codeMinorFieldValue": code_minor}
                ]
            },
        }
    )


def error_response(settings: Settings, exc: AspenError) -> Response:
    content_type, body = error_payload(settings.aspen_error_style, exc.status, exc.code_minor, exc.message)
    return Response(body, status_code=exc.status, media_type=content_type)


def _field(item: dict, dotted: str):
    value = item
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def parse_filter(text: str) -> tuple[str, str, str]:
    """One OneRoster filter predicate: ``field<op>'value'`` (quotes optional, as clients differ)."""
    m = FILTER.match(text)
    if not m:
        raise AspenError(400, "invalid_filter_field", f"Invalid filter: {text}")
    value = next(v for v in m.group(3, 4, 5) if v is not None)
    return m.group(1), m.group(2), value


def matches(item: dict, field: str, op: str, value: str) -> bool:
    actual = _field(item, field)
    text = "" if actual is None else str(actual)
    return {
        "=": text == value,
        "!=": text != value,
        "~": value.lower() in text.lower(),
        ">": text > value,
        ">=": text >= value,
        "<": text < value,
        "<=": text <= value,
    }[op]


def build_aspen_app(scenario: dict, settings: Settings, faults: FaultState) -> tuple[FastAPI, ServerContext]:
    ctx = ServerContext(
        "aspen", scenario, settings, faults, lambda sc: AspenState(sc, settings.aspen_api_path)
    )
    app = FastAPI(
        title="Sandbox Follett Aspen (OneRoster 1.1)", docs_url=None, redoc_url=None, openapi_url=None
    )
    api = APIRouter(prefix=settings.aspen_api_path)

    @app.exception_handler(AspenError)
    async def aspen_error(request: Request, exc: AspenError) -> Response:
        return error_response(settings, exc)

    def state() -> AspenState:
        return ctx.state

    def authorize(request: Request) -> None:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if faults.tokens_expire_now():
            state().expire_tokens()
        if not token or not state().token_valid(token):
            raise AspenError(
                401, "unauthorisedrequest", "Unauthorized: missing, unknown or expired access token"
            )

    def collection(
        request: Request,
        key: str,
        items,
        render,
        total: int | None = None,
        filtered: bool = False,
        render_text=None,
    ) -> Response:
        """limit/offset paging, with the optional filter and sort of OneRoster collections."""
        q = request.query_params
        use_filter = bool(q.get("filter")) and not filtered
        try:
            limit = int(q.get("limit", settings.aspen_default_limit))
            offset = int(q.get("offset", 0))
        except ValueError as exc:
            raise AspenError(400, "invaliddata", "limit and offset must be integers") from exc
        if limit < 1 or offset < 0:
            raise AspenError(400, "invaliddata", "limit must be >= 1 and offset >= 0")
        limit = min(limit, settings.aspen_max_limit)
        if use_filter or q.get("sort"):
            rendered = [render(x) for x in items]
            if use_filter:
                f, op, value = parse_filter(q["filter"])
                rendered = [x for x in rendered if matches(x, f, op, value)]
            if q.get("sort"):
                rendered.sort(
                    key=lambda x: str(_field(x, q["sort"]) or ""), reverse=q.get("orderBy") == "desc"
                )
            total, page = len(rendered), rendered[offset : offset + limit]
        elif render_text is not None:
            page = None
            text = ",".join(map(render_text, islice(items, offset, offset + limit)))
        else:
            page = [render(x) for x in islice(items, offset, offset + limit)]
        headers = (
            {"X-Total-Count": str(total)} if settings.aspen_total_count_header and total is not None else None
        )
        if page is None:
            return Response(f'{{"{key}":[{text}]}}'.encode(), media_type="application/json", headers=headers)
        return json_response({key: page}, headers=headers)

    @app.post(settings.aspen_token_path)
    async def token(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):  # client_secret_basic is accepted too
            try:
                client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                pass
        if form.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type"}, 400)
        expected = (
            settings.aspen_client_id or state().client_id,
            settings.aspen_client_secret or state().client_secret,
        )
        if (client_id, client_secret) != expected:
            return json_response(
                {"error": "invalid_client", "error_description": "Bad client credentials"}, 401
            )
        lifetime = settings.aspen_token_lifetime_s
        return json_response(
            {
                "access_token": state().issue_token(lifetime),
                "token_type": "bearer",
                "expires_in": int(lifetime),
            }
        )

    @api.get("/categories")
    async def categories(request: Request) -> Response:
        authorize(request)
        s = state()
        text = request.query_params.get("filter")
        if text:
            f, op, value = parse_filter(text)
            if f == "metadata.classId" and op == "=":  # the common case, from the class index
                cats = list(s.class_categories.get(value, {}).values())
                return collection(request, "categories", cats, s.category_json, len(cats), filtered=True)
        return collection(
            request, "categories", list(s.categories.values()), s.category_json, len(s.categories)
        )

    @api.get("/gradingPeriods")
    async def grading_periods(request: Request) -> Response:
        authorize(request)
        s = state()
        return collection(
            request,
            "gradingPeriods",
            list(s.grading_periods.values()),
            s.grading_period_json,
            len(s.grading_periods),
        )

    @api.get("/classes")
    async def classes(request: Request) -> Response:
        authorize(request)
        s = state()
        return collection(request, "classes", list(s.classes.values()), s.class_json, len(s.classes))

    @api.get("/classes/{class_id}")
    async def one_class(request: Request, class_id: str) -> Response:
        authorize(request)
        return json_response({"class": state().class_json(state().klass(class_id))})

    @api.get("/classes/{class_id}/lineItems")
    async def class_line_items(request: Request, class_id: str) -> Response:
        authorize(request)
        s = state()
        s.klass(class_id)
        items = s.class_line_items[class_id]
        return collection(request, "lineItems", items.values(), s.line_item_json, len(items))

    @api.get("/classes/{class_id}/results")
    async def class_results(request: Request, class_id: str) -> Response:
        authorize(request)
        s = state()
        s.klass(class_id)
        items = s.class_results[class_id]
        return collection(
            request, "results", items.values(), s.result_json, len(items), render_text=s.result_text
        )

    @api.get("/classes/{class_id}/students")
    async def class_students(request: Request, class_id: str) -> Response:
        authorize(request)
        s = state()
        roster = s.klass(class_id).roster
        return collection(request, "users", roster, s.user_json, len(roster))

    @api.get("/lineItems/{sourced_id}")
    async def get_line_item(request: Request, sourced_id: str) -> Response:
        authorize(request)
        li = state().line_items.get(sourced_id)
        if li is None:
            raise AspenError(404, "unknownobject", f"Line Item Not Found: {sourced_id}")
        return json_response({"lineItem": state().line_item_json(li)})

    @api.get("/results/{sourced_id}")
    async def get_result(request: Request, sourced_id: str) -> Response:
        authorize(request)
        r = state().results.get(sourced_id)
        if r is None:
            raise AspenError(404, "unknownobject", f"Result Not Found: {sourced_id}")
        return json_response({"result": state().result_json(r)})

    @api.put("/lineItems/{sourced_id}")
    async def put_line_item(request: Request, sourced_id: str) -> Response:
        authorize(request)
        payload = await _payload(request)
        created, body = state().put_line_item(
            sourced_id,
            payload,
            require_due_date=settings.aspen_require_due_date,
            due_in_period=settings.aspen_check_due_date_in_period,
            store=not faults.lose_write(),
            column_code_length=settings.aspen_column_code_length
            if settings.aspen_unique_column_codes
            else None,
        )
        return json_response({"lineItem": body}, 201 if created else 200)

    @api.put("/results/{sourced_id}")
    async def put_result(request: Request, sourced_id: str) -> Response:
        authorize(request)
        payload = await _payload(request)
        if sourced_id in faults.faults.reject_result_ids:
            raise AspenError(422, "invaliddata", "Validation Exception: result rejected (sandbox fault)")
        created, body = state().put_result(sourced_id, payload, store=not faults.lose_write())
        return json_response({"result": body}, 201 if created else 200)

    @api.delete("/lineItems/{sourced_id}")
    async def delete_line_item(request: Request, sourced_id: str) -> Response:
        authorize(request)
        state().delete_line_item(sourced_id)
        return Response(status_code=204)

    @api.delete("/results/{sourced_id}")
    async def delete_result(request: Request, sourced_id: str) -> Response:
        authorize(request)
        state().delete_result(sourced_id)
        return Response(status_code=204)

    app.include_router(api)
    add_common_admin(app, ctx)
    add_aspen_admin(app, ctx)

    def resolve(scope) -> str | None:
        for route in app.router.routes:
            match, _ = route.matches(scope)
            if match.name == "FULL":
                return route.path
        return None

    def fault_body(status: int) -> tuple[str, bytes]:
        proxied = proxy_error_body(status)
        if proxied:
            return proxied
        title = HTTP_TITLES.get(status, "Error")
        return error_payload(
            settings.aspen_error_style, status, CODE_MINOR.get(status, "internal_server_error"), title
        )

    return StatsMiddleware(FaultMiddleware(app, faults, ctx.stats, fault_body), ctx.stats, resolve), ctx


async def _payload(request: Request):
    raw = await request.body()
    try:
        return json.loads(raw) if raw else None
    except ValueError as exc:
        raise AspenError(400, "invaliddata", "Invalid payload: body is not JSON") from exc


def add_aspen_admin(app: FastAPI, ctx: ServerContext) -> None:
    def guarded(fn):
        try:
            return json_response(fn())
        except AspenError as exc:
            return json_response({"error": exc.message}, exc.status)
        except (ValueError, TypeError, KeyError) as exc:
            return json_response({"error": str(exc)}, 400)

    @app.get(f"{ADMIN_PREFIX}/state")
    async def state(request: Request) -> Response:
        q = request.query_params
        if q.get("summary"):
            return guarded(ctx.state.summary)
        return guarded(lambda: ctx.state.dump(q.get("class_id")))

    @app.patch(f"{ADMIN_PREFIX}/results/{{sourced_id}}")
    async def edit_result(request: Request, sourced_id: str) -> Response:
        fields = await json_body(request)
        return guarded(lambda: ctx.state.edit_result(sourced_id, fields))

    @app.patch(f"{ADMIN_PREFIX}/gradingPeriods/{{sourced_id}}")
    async def edit_grading_period(request: Request, sourced_id: str) -> Response:
        fields = await json_body(request)
        return guarded(lambda: ctx.state.set_grading_period(sourced_id, fields))

    @app.post(f"{ADMIN_PREFIX}/tokens/expire")
    async def expire_tokens() -> Response:
        return guarded(lambda: {"expired": ctx.state.expire_tokens()})

    @app.post(f"{ADMIN_PREFIX}/day-of-grading")
    async def day_of_grading(request: Request) -> Response:
        params = await json_body(request)
        return guarded(lambda: aspen_day_of_grading(ctx, **params))
