"""The Aspen side of a district in memory: classes, rosters, per-class categories, grading
periods, line items and results, indexed by class; plus the rules Aspen enforces on PUT.

Line items and results are stored as slotted records (a district holds ~450k results) and
rendered to OneRoster 1.1 JSON only when asked for.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass
from typing import Any

from sandbox.faults import js
from sandbox.scenario import SCORE_STATUSES, category_sourced_id, oneroster_time, parse_time

COMMENT_MAX = 100


class AspenError(Exception):
    """An Aspen rejection: HTTP status, OneRoster imsx_codeMinor, and Aspen's message."""

    def __init__(self, status: int, code_minor: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code_minor, self.message = status, code_minor, message


def invalid(detail: str) -> AspenError:
    return AspenError(422, "invaliddata", f"Validation Exception: {detail}")


def not_found(what: str, sourced_id: Any) -> AspenError:
    return AspenError(404, "unknownobject", f"{what} Not Found: {sourced_id}")


def column_code(title: str, length: int = 10) -> str:
    """Aspen's gradebook column code of a line item: the first ``length`` characters of its
    title, trimmed; unique per class, compared without regard to case."""
    return title.strip()[:length].strip().casefold()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _ref_id(body: dict, key: str) -> str | None:
    ref = body.get(key)
    if isinstance(ref, dict):
        ref = ref.get("sourcedId")
    return ref if isinstance(ref, str) and ref else None


@dataclass(slots=True)
class Category:
    sourcedId: str
    title: str
    class_id: str
    weight: float | None
    code: str | None
    status: str
    dateLastModified: str


@dataclass(slots=True)
class AspenClass:
    sourcedId: str
    title: str
    classCode: str
    roster: list[str]
    roster_set: frozenset
    dateLastModified: str


@dataclass(slots=True)
class LineItem:
    sourcedId: str
    status: str
    dateLastModified: str
    title: str
    description: str | None
    assignDate: str | None
    dueDate: str | None
    class_id: str
    category_id: str
    grading_period_id: str
    resultValueMin: float | None
    resultValueMax: float | None


@dataclass(slots=True)
class Result:
    sourcedId: str
    status: str
    dateLastModified: str
    line_item_id: str
    student_id: str
    scoreStatus: str
    score: float | None
    scoreDate: str | None
    comment: str | None


class AspenState:
    def __init__(self, scenario: dict, api_path: str = "/ims/oneroster/v1p1") -> None:
        aspen = scenario["aspen"]
        self.api = api_path
        self.client_id, self.client_secret = aspen["client_id"], aspen["client_secret"]
        self.tokens: dict[str, float] = {}  # token -> expiry (epoch seconds)
        stamp = aspen.get("dateLastModified", "2025-08-20T12:00:00.000Z")
        self.grading_periods: dict[str, dict] = {gp["sourcedId"]: dict(gp) for gp in aspen["grading_periods"]}
        self.users: dict[str, dict] = {}
        for u in scenario["canvas"].get("users", []):  # Canvas students with a SIS id exist in Aspen too
            if u.get("sis_user_id"):
                first, _, last = u.get("name", "").partition(" ")
                self.users[u["sis_user_id"]] = {
                    "sourcedId": u["sis_user_id"],
                    "givenName": first,
                    "familyName": last,
                }
        for u in aspen.get("students", []):
            self.users[u["sourcedId"]] = dict(self.users.get(u["sourcedId"], {}), **u)
        self.classes: dict[str, AspenClass] = {}
        self.categories: dict[str, Category] = {}
        self.class_categories: dict[str, dict[str, Category]] = {}
        self.line_items: dict[str, LineItem] = {}
        self.results: dict[str, Result] = {}
        self.class_line_items: dict[str, dict[str, LineItem]] = {}
        self.class_results: dict[str, dict[str, Result]] = {}
        self.line_item_results: dict[str, set[str]] = {}
        for c in aspen["classes"]:
            roster = list(c.get("roster", []))
            for sid in roster:
                self.users.setdefault(sid, {"sourcedId": sid, "givenName": "Student", "familyName": sid})
            self.classes[c["sourcedId"]] = AspenClass(
                c["sourcedId"],
                c.get("title", c["sourcedId"]),
                c.get("classCode", c["sourcedId"]),
                roster,
                frozenset(roster),
                stamp,
            )
            self.class_categories[c["sourcedId"]] = {}
            self.class_line_items[c["sourcedId"]] = {}
            self.class_results[c["sourcedId"]] = {}
            for cat in c.get("categories", []):
                sid = cat.get("sourcedId") or category_sourced_id(c["sourcedId"], cat)
                category = Category(
                    sid,
                    cat["title"],
                    c["sourcedId"],
                    cat.get("weight"),
                    cat.get("code"),
                    cat.get("status", "active"),
                    stamp,
                )
                self.categories[sid] = category
                self.class_categories[c["sourcedId"]][sid] = category
        for li in aspen.get("lineItems", []):  # what Aspen already holds: loaded as is, not validated
            self._store_line_item(
                self._line_item_from(li["sourcedId"], li, li.get("dateLastModified", stamp))
            )
        for r in aspen.get("results", []):
            self._store_result(self._result_from(r["sourcedId"], r, r.get("dateLastModified", stamp)))

    # --- tokens ------------------------------------------------------------------------------

    def issue_token(self, lifetime_s: float) -> str:
        token = secrets.token_urlsafe(24)
        self.tokens[token] = time.time() + lifetime_s
        if len(self.tokens) > 10_000:  # forget long-expired tokens
            now = time.time()
            self.tokens = {t: exp for t, exp in self.tokens.items() if exp > now - 3600}
        return token

    def token_valid(self, token: str) -> bool:
        expiry = self.tokens.get(token)
        return expiry is not None and expiry > time.time()

    def expire_tokens(self) -> int:
        count = len(self.tokens)
        self.tokens = {t: 0.0 for t in self.tokens}
        return count

    # --- JSON ------------------------------------------------------------------------------

    def ref(self, kind: str, sourced_id: str, type_: str) -> dict:
        return {"href": f"{self.api}/{kind}/{sourced_id}", "sourcedId": sourced_id, "type": type_}

    def class_json(self, c: AspenClass) -> dict:
        return {
            "sourcedId": c.sourcedId,
            "status": "active",
            "dateLastModified": c.dateLastModified,
            "title": c.title,
            "classCode": c.classCode,
            "classType": "scheduled",
            "location": None,
            "grades": [],
            "subjects": [],
            "periods": [],
        }

    def category_json(self, c: Category) -> dict:
        metadata: dict[str, Any] = {"classId": c.class_id}
        if c.weight is not None:
            metadata["weight"] = c.weight
        return {
            "sourcedId": c.sourcedId,
            "status": c.status,
            "dateLastModified": c.dateLastModified,
            "title": c.title,
            "metadata": metadata,
        }

    def grading_period_json(self, gp: dict) -> dict:
        return {
            "sourcedId": gp["sourcedId"],
            "status": "active",
            "dateLastModified": gp.get("dateLastModified", "2025-08-20T12:00:00.000Z"),
            "title": gp.get("title", gp["sourcedId"]),
            "type": "gradingPeriod",
            "startDate": gp["startDate"],
            "endDate": gp["endDate"],
            "schoolYear": gp.get("schoolYear"),
            "metadata": {"locked": bool(gp.get("locked", False))},
        }

    def user_json(self, sid: str) -> dict:
        u = self.users[sid]
        return {
            "sourcedId": sid,
            "status": "active",
            "dateLastModified": "2025-08-20T12:00:00.000Z",
            "username": u.get("username", sid.lower()),
            "userIds": [],
            "enabledUser": True,
            "givenName": u.get("givenName", ""),
            "familyName": u.get("familyName", ""),
            "middleName": None,
            "role": "student",
            "identifier": u.get("identifier", sid),
            "email": u.get("email"),
            "sms": None,
            "phone": None,
            "agents": [],
            "orgs": [],
            "grades": [],
        }

    def line_item_json(self, li: LineItem) -> dict:
        return {
            "sourcedId": li.sourcedId,
            "status": li.status,
            "dateLastModified": li.dateLastModified,
            "title": li.title,
            "description": li.description,
            "assignDate": li.assignDate,
            "dueDate": li.dueDate,
            "class": self.ref("classes", li.class_id, "class"),
            "category": self.ref("categories", li.category_id, "category"),
            "gradingPeriod": self.ref("academicSessions", li.grading_period_id, "academicSession"),
            "resultValueMin": li.resultValueMin,
            "resultValueMax": li.resultValueMax,
        }

    def result_json(self, r: Result) -> dict:
        return {
            "sourcedId": r.sourcedId,
            "status": r.status,
            "dateLastModified": r.dateLastModified,
            "lineItem": self.ref("lineItems", r.line_item_id, "lineItem"),
            "student": self.ref("users", r.student_id, "user"),
            "scoreStatus": r.scoreStatus,
            "score": r.score,
            "scoreDate": r.scoreDate,
            "comment": r.comment,
        }

    def result_text(self, r: Result) -> str:
        """``result_json`` rendered straight to JSON text (a district holds ~450k results)."""
        li, st = js(r.line_item_id), js(r.student_id)
        return (
            f'{{"sourcedId":{js(r.sourcedId)},"status":{js(r.status)},"dateLastModified":{js(r.dateLastModified)},'
            f'"lineItem":{{"href":{js(f"{self.api}/lineItems/{r.line_item_id}")},"sourcedId":{li},"type":"lineItem"}},'
            f'"student":{{"href":{js(f"{self.api}/users/{r.student_id}")},"sourcedId":{st},"type":"user"}},'
            f'"scoreStatus":{js(r.scoreStatus)},"score":{js(r.score)},"scoreDate":{js(r.scoreDate)},'
            f'"comment":{js(r.comment)}}}'
        )

    def klass(self, class_id: str) -> AspenClass:
        c = self.classes.get(class_id)
        if c is None:
            raise not_found("Class", class_id)
        return c

    # --- storage ---------------------------------------------------------------------------

    def _line_item_from(self, sid: str, body: dict, stamp: str) -> LineItem:
        return LineItem(
            sid,
            body.get("status", "active"),
            stamp,
            body.get("title", ""),
            body.get("description"),
            body.get("assignDate"),
            body.get("dueDate"),
            _ref_id(body, "class") or "",
            _ref_id(body, "category") or "",
            _ref_id(body, "gradingPeriod") or "",
            _number(body.get("resultValueMin")),
            _number(body.get("resultValueMax")),
        )

    def _result_from(self, sid: str, body: dict, stamp: str) -> Result:
        li_id = _ref_id(body, "lineItem") or ""
        li = self.line_items.get(li_id)
        return Result(
            sid,
            body.get("status", "active"),
            stamp,
            li.sourcedId if li else li_id,
            _ref_id(body, "student") or "",
            body.get("scoreStatus", "fully graded"),
            _number(body.get("score")),
            body.get("scoreDate"),
            body.get("comment"),
        )

    def _store_line_item(self, li: LineItem) -> None:
        old = self.line_items.get(li.sourcedId)
        self.line_items[li.sourcedId] = li
        if old is not None and old.class_id != li.class_id:  # moved: its results move with it
            self.class_line_items.get(old.class_id, {}).pop(li.sourcedId, None)
            for rid in self.line_item_results.get(li.sourcedId, ()):
                r = self.class_results.get(old.class_id, {}).pop(rid, None)
                if r is not None:
                    self.class_results.setdefault(li.class_id, {})[rid] = r
        self.class_line_items.setdefault(li.class_id, {})[li.sourcedId] = li

    def _store_result(self, r: Result) -> None:
        old = self.results.get(r.sourcedId)
        if old is not None and old.line_item_id != r.line_item_id:
            self._unstore_result(old)
        self.results[r.sourcedId] = r
        self.line_item_results.setdefault(r.line_item_id, set()).add(r.sourcedId)
        li = self.line_items.get(r.line_item_id)
        if li is not None:
            self.class_results.setdefault(li.class_id, {})[r.sourcedId] = r

    def _unstore_result(self, r: Result) -> None:
        self.results.pop(r.sourcedId, None)
        self.line_item_results.get(r.line_item_id, set()).discard(r.sourcedId)
        li = self.line_items.get(r.line_item_id)
        if li is not None:
            self.class_results.get(li.class_id, {}).pop(r.sourcedId, None)

    # --- the writes Aspen validates ----------------------------------------------------------

    def put_line_item(
        self,
        sid: str,
        payload: Any,
        *,
        require_due_date: bool = True,
        due_in_period: bool = False,
        store: bool = True,
        column_code_length: int | None = 10,
    ) -> tuple[bool, dict]:
        """Create or replace a line item. ``column_code_length``: Aspen makes the first that many
        characters of the title the class's gradebook column code and refuses a second line item
        with the same code in the class (None: no such check)."""
        body = _unwrap(payload, "lineItem", sid)
        title = body.get("title")
        if not isinstance(title, str) or not title.strip():
            raise invalid("title is required")
        class_id = _ref_id(body, "class")
        if class_id is None:
            raise invalid("class.sourcedId is required")
        self.klass(class_id)
        category_id = _ref_id(body, "category")
        if category_id is None or category_id not in self.class_categories[class_id]:
            raise AspenError(404, "unknownobject", "Grading Category Not Found")
        gp_id = _ref_id(body, "gradingPeriod")
        if gp_id is None:
            raise invalid("gradingPeriod.sourcedId is required")
        gp = self.grading_periods.get(gp_id)
        if gp is None:
            raise not_found("Grading Period", gp_id)
        if gp.get("locked"):
            raise AspenError(422, "invaliddata", f"Grading Period Locked: {gp_id}")
        lo, hi = body.get("resultValueMin", 0), body.get("resultValueMax")
        if _number(lo) is None or _number(hi) is None or hi < lo:
            raise invalid("resultValueMin and resultValueMax must be numbers with min <= max")
        for key in ("assignDate", "dueDate"):
            if body.get(key) is not None:
                try:
                    parse_time(body[key])
                except (TypeError, ValueError) as exc:
                    raise invalid(f"{key} is not a date: {body[key]!r}") from exc
        if require_due_date and not body.get("dueDate"):
            raise invalid("dueDate is required")
        if due_in_period and body.get("dueDate"):
            due = parse_time(body["dueDate"]).date().isoformat()
            if not (gp["startDate"][:10] <= due <= gp["endDate"][:10]):
                raise invalid(f"dueDate {due} is outside grading period {gp_id}")
        if body.get("status", "active") not in ("active", "tobedeleted"):
            raise invalid(f"status {body.get('status')!r}")
        if column_code_length is not None and body.get("status", "active") == "active":
            self._check_column_code(sid, class_id, title, column_code_length)
        li = self._line_item_from(sid, {**body, "resultValueMin": lo}, oneroster_time())
        created = sid not in self.line_items
        if store:
            self._store_line_item(li)
        return created, self.line_item_json(li)

    def _check_column_code(self, sid: str, class_id: str, title: str, length: int) -> None:
        """Aspen: ``GB column name "…" already exists`` when another live line item of the class
        has the same column code (the line item itself, replaced under its own sourcedId, is fine)."""
        code = column_code(title, length)
        for other in self.class_line_items.get(class_id, {}).values():
            if (
                other.sourcedId != sid
                and other.status != "tobedeleted"
                and column_code(other.title, length) == code
            ):
                raise AspenError(
                    422, "invaliddata", f'GB column name "{title.strip()[:length].strip()}" already exists'
                )

    def put_result(self, sid: str, payload: Any, *, store: bool = True) -> tuple[bool, dict]:
        body = _unwrap(payload, "result", sid)
        li_id = _ref_id(body, "lineItem")
        if li_id is None:
            raise invalid("lineItem.sourcedId is required")
        li = self.line_items.get(li_id)
        if li is None:
            raise not_found("Line Item", li_id)
        student = _ref_id(body, "student")
        if student is None:
            raise invalid("student.sourcedId is required")
        cls = self.classes.get(li.class_id)
        if cls is None or student not in cls.roster_set:
            raise AspenError(
                404,
                "unknownobject",
                f"Student Not Found In Class: {student} is not enrolled in {li.class_id}",
            )
        status = body.get("scoreStatus")
        if status not in SCORE_STATUSES:
            raise invalid(f"scoreStatus {status!r} is not one of {sorted(SCORE_STATUSES)}")
        score = body.get("score")
        if not (status == "exempt" and score is None):
            value = _number(score)
            if value is None or value < 0:
                raise invalid(f"score must be a number >= 0, got {score!r}")
            if li.resultValueMax is not None and value > li.resultValueMax:
                raise invalid(f"score {value:g} is above the line item's maximum {li.resultValueMax:g}")
            if li.resultValueMin is not None and value < li.resultValueMin:
                raise invalid(f"score {value:g} is below the line item's minimum {li.resultValueMin:g}")
        comment = body.get("comment")
        if comment is not None and (not isinstance(comment, str) or len(comment) > COMMENT_MAX):
            raise invalid(f"comment must be text of at most {COMMENT_MAX} characters")
        if body.get("scoreDate") is not None:
            try:
                parse_time(body["scoreDate"])
            except (TypeError, ValueError) as exc:
                raise invalid(f"scoreDate is not a date: {body['scoreDate']!r}") from exc
        gp = self.grading_periods.get(li.grading_period_id)
        if gp is not None and gp.get("locked"):
            raise AspenError(422, "invaliddata", f"Grading Period Locked: {li.grading_period_id}")
        r = self._result_from(sid, body, oneroster_time())
        created = sid not in self.results
        if store:
            self._store_result(r)
        return created, self.result_json(r)

    def delete_line_item(self, sid: str) -> int:
        li = self.line_items.get(sid)
        if li is None:
            raise not_found("Line Item", sid)
        removed = 0
        for rid in list(self.line_item_results.get(sid, ())):
            r = self.results.get(rid)
            if r is not None:
                self._unstore_result(r)
                removed += 1
        self.line_item_results.pop(sid, None)
        self.class_line_items.get(li.class_id, {}).pop(sid, None)
        del self.line_items[sid]
        return removed

    def delete_result(self, sid: str) -> None:
        r = self.results.get(sid)
        if r is None:
            raise not_found("Result", sid)
        self._unstore_result(r)

    # --- teacher actions (admin API) -----------------------------------------------------------

    def edit_result(self, sid: str, fields: dict) -> dict:
        """A teacher changes a result by hand in Aspen's gradebook (no validation: the UI's business)."""
        r = self.results.get(sid)
        if r is None:
            raise not_found("Result", sid)
        for key, value in fields.items():
            if key not in ("score", "scoreStatus", "comment", "scoreDate"):
                raise invalid(f"cannot edit {key!r}")
            setattr(r, key, _number(value) if key == "score" else value)
        r.dateLastModified = oneroster_time()
        return self.result_json(r)

    def set_grading_period(self, sid: str, fields: dict) -> dict:
        gp = self.grading_periods.get(sid)
        if gp is None:
            raise not_found("Grading Period", sid)
        for key in fields:
            if key not in ("locked", "startDate", "endDate", "title"):
                raise invalid(f"cannot edit {key!r}")
        gp.update(fields)
        return self.grading_period_json(gp)

    def dump(self, class_id: str | None = None) -> dict:
        if class_id is not None:
            self.klass(class_id)
        wanted = [class_id] if class_id else list(self.classes)
        return {
            "classes": {
                cid: dict(self.class_json(self.classes[cid]), roster=self.classes[cid].roster)
                for cid in wanted
            },
            "categories": {
                c.sourcedId: self.category_json(c)
                for cid in wanted
                for c in self.class_categories[cid].values()
            },
            "gradingPeriods": {sid: self.grading_period_json(gp) for sid, gp in self.grading_periods.items()},
            "lineItems": {
                li.sourcedId: self.line_item_json(li)
                for cid in wanted
                for li in self.class_line_items.get(cid, {}).values()
            },
            "results": {
                r.sourcedId: self.result_json(r)
                for cid in wanted
                for r in self.class_results.get(cid, {}).values()
            },
        }

    def summary(self) -> dict:
        return {
            "classes": len(self.classes),
            "categories": len(self.categories),
            "gradingPeriods": len(self.grading_periods),
            "lineItems": len(self.line_items),
            "results": len(self.results),
            "tokens_issued": len(self.tokens),
        }


def _unwrap(payload: Any, key: str, sid: str) -> dict:
    if not isinstance(payload, dict) or not isinstance(payload.get(key), dict):
        raise AspenError(400, "invaliddata", f'Invalid payload: expected {{"{key}": {{...}}}}')
    body = payload[key]
    if body.get("sourcedId") not in (None, sid):
        raise AspenError(
            400, "invaliddata", f"sourcedId {body.get('sourcedId')!r} does not match the URL ({sid!r})"
        )
    return body
