"""The lower bound of a run: the fewest requests the endpoints allow, × latency ÷ the
hooks' concurrency cap, per system, summed (docs/benchmarks.md explains each term).

Counted independently of the pipeline, from the sandbox:

* Canvas, before the run (with the latency switched off, before the stats are reset): for
  every course of the account, one request per listing at ``per_page=100`` whose ``Link:
  rel="last"`` says how many pages the listing has. Needed: the course list; per course its
  sections (one page tells a course without SIS sections, which needs nothing else), its
  student enrollments, its assignment groups (with assignments and overrides: R1, R3, R10,
  R15) and the submissions of its *sendable* assignments (``assignment_ids[]``): every
  grade, since the report accounts for each one (R17) and R8 compares each one.
* Aspen, before and after the run, from the admin state of each class the run resolved:
  a token, the grading periods, per class one listing each of categories, roster, line
  items and results (OneRoster paging ends on a short page: ``n // 100 + 1`` pages), one
  PUT per line item and result that is new or different after the run, and the read-back
  (R18) of each class that received a result PUT: the listing of its results modified since
  the run began (``filter=dateLastModified>…``), i.e. of those PUTs.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

PAGE = 100


def _link(resp: requests.Response, rel: str) -> str | None:
    return resp.links.get(rel, {}).get("url")


def canvas_pages(session: requests.Session, url: str, params: list[tuple[str, Any]]) -> tuple[int, Any]:
    """Pages of one Canvas listing at per_page=100 (from rel="last"), and the first page."""
    resp = session.get(url, params=[*params, ("per_page", PAGE)], timeout=60)
    resp.raise_for_status()
    last = _link(resp, "last")
    pages = int(parse_qs(urlsplit(last).query)["page"][0]) if last else None
    if pages is None:  # no rel="last": count by following rel="next"
        pages, nxt = 1, _link(resp, "next")
        while nxt:
            r = session.get(nxt, timeout=60)
            r.raise_for_status()
            pages += 1
            nxt = _link(r, "next")
    return pages, resp.json()


def _sendable(a: dict) -> bool:
    return bool(a.get("published")) and bool(a.get("post_to_sis")) and a.get("grading_type") != "not_graded"


def canvas_minimum(sb) -> dict[str, int]:
    """Fewest Canvas requests of one run over the whole account, by endpoint."""
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {sb.canvas_token}"
    s.trust_env = False
    api = sb.canvas_url + "/api/v1"
    need: Counter = Counter()
    pages, _ = canvas_pages(
        s, f"{api}/accounts/{sb.canvas_account_id}/terms", []
    )  # R19: which terms are current
    need["list_terms"] += pages
    pages, _ = canvas_pages(s, f"{api}/accounts/{sb.canvas_account_id}/courses", [])
    need["list_courses"] += pages
    courses = []
    url: str | None = f"{api}/accounts/{sb.canvas_account_id}/courses?per_page={PAGE}"
    while url:
        r = s.get(url, timeout=60)
        r.raise_for_status()
        courses += r.json()
        url = _link(r, "next")
    for c in courses:
        if c.get("workflow_state") == "deleted":
            continue
        cid = c["id"]
        pages, sections = canvas_pages(s, f"{api}/courses/{cid}/sections", [])
        need["list_sections"] += pages
        if not any((x.get("sis_section_id") or "").strip() for x in sections):
            continue
        need["list_teachers"] += canvas_pages(
            s, f"{api}/courses/{cid}/users", [("enrollment_type[]", "teacher"), ("include[]", "email")]
        )[0]
        need["list_student_enrollments"] += canvas_pages(
            s, f"{api}/courses/{cid}/enrollments", [("type[]", "StudentEnrollment"), ("state[]", "active")]
        )[0]
        pages, groups = canvas_pages(
            s,
            f"{api}/courses/{cid}/assignment_groups",
            [("include[]", "assignments"), ("include[]", "overrides")],
        )
        need["list_assignment_groups"] += pages
        sendable = [a["id"] for g in groups for a in g.get("assignments") or [] if _sendable(a)]
        if pages > 1:  # (never at these sizes) the first page does not list every assignment
            raise NotImplementedError("more than 100 assignment groups in a course")
        if sendable:
            need["list_submissions"] += canvas_pages(
                s,
                f"{api}/courses/{cid}/students/submissions",
                [("student_ids[]", "all"), *(("assignment_ids[]", a) for a in sendable)],
            )[0]
    return dict(need)


def _aspen_pages(n: int) -> int:
    return n // PAGE + 1  # limit/offset paging ends on a short (possibly empty) page


def aspen_snapshot(sb, class_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per class: counts of categories, roster, line items, results and their values."""
    out = {}
    for cid in class_ids:
        st = sb.state(class_id=cid)
        out[cid] = {
            "categories": len(st["categories"]),
            "roster": len(st["classes"][cid].get("roster") or []),
            "line_items": {k: _li_key(v) for k, v in st["lineItems"].items()},
            "results": {k: _result_key(v) for k, v in st["results"].items()},
        }
    return out


def _ref(v: Any) -> Any:
    return v.get("sourcedId") if isinstance(v, dict) else v


def _li_key(li: dict) -> tuple:
    return (
        li.get("status"),
        li.get("title"),
        li.get("description"),
        li.get("assignDate"),
        li.get("dueDate"),
        _ref(li.get("class")),
        _ref(li.get("category")),
        _ref(li.get("gradingPeriod")),
        li.get("resultValueMin"),
        li.get("resultValueMax"),
    )


def _result_key(r: dict) -> tuple:
    score = r.get("score")
    return (
        r.get("status"),
        _ref(r.get("lineItem")),
        _ref(r.get("student")),
        r.get("scoreStatus"),
        None if score is None else round(float(score), 6),
        r.get("comment"),
    )


def aspen_minimum(before: dict[str, dict], after: dict[str, dict]) -> tuple[dict[str, int], dict[str, int]]:
    """Fewest Aspen requests of the run (by endpoint), and the changes Aspen shows."""
    need: Counter = Counter({"token": 1, "list_grading_periods": 1})
    changes: Counter = Counter()
    for cid, b in before.items():
        a = after[cid]
        need["list_categories"] += _aspen_pages(b["categories"])
        need["list_students"] += _aspen_pages(b["roster"])
        need["list_line_items"] += _aspen_pages(len(b["line_items"]))
        need["list_results"] += _aspen_pages(len(b["results"]))
        li_new = sum(1 for k in a["line_items"] if k not in b["line_items"])
        li_changed = sum(
            1 for k, v in a["line_items"].items() if k in b["line_items"] and b["line_items"][k] != v
        )
        li_gone = sum(1 for k in b["line_items"] if k not in a["line_items"])
        r_new = sum(1 for k in a["results"] if k not in b["results"])
        r_changed = sum(1 for k, v in a["results"].items() if k in b["results"] and b["results"][k] != v)
        need["put_line_item"] += li_new + li_changed
        need["delete_line_item"] += li_gone
        need["put_result"] += r_new + r_changed
        if r_new + r_changed:  # R18: the results Aspen modified since the run began (OneRoster filter)
            need["verify_list_results"] += _aspen_pages(r_new + r_changed)
        changes.update(
            {
                "line_items_new": li_new,
                "line_items_changed": li_changed,
                "line_items_deleted": li_gone,
                "results_new": r_new,
                "results_changed": r_changed,
            }
        )
    return {k: v for k, v in need.items() if v}, dict(changes)


def bound_seconds(
    requests_by_system: dict[str, int], latency_ms: dict[str, float], cap: dict[str, int]
) -> dict[str, float]:
    """Per system its term (requests × latency ÷ cap); ``total``, their sum (the bound); and
    ``pipelined``, the larger term: shards overlap the two systems (one shard's Canvas read
    beside another's Aspen writes), so a pipelined run could come down to its busier system."""
    out = {s: n * latency_ms[s] / 1000.0 / cap[s] for s, n in requests_by_system.items()}
    out["total"] = sum(out.values())
    out["pipelined"] = max(out[s] for s in requests_by_system)
    return {k: round(v, 3) for k, v in out.items()}


def naive_minimum(
    canvas_need: dict[str, int], classes: int, line_items: int, results: int
) -> dict[str, dict[str, int]]:
    """What "Post Grades" in every course needs, one request at a time: the Canvas reads, the
    categories of each class (to name the category of each line item), and a PUT of every
    line item and every graded result, whatever Aspen holds already."""
    return {
        "canvas": dict(canvas_need),
        "aspen": {"token": 1, "list_categories": classes, "put_line_item": line_items, "put_result": results},
    }


def ceil_div(a: int, b: int) -> int:
    return math.ceil(a / b)
