"""The Aspen (OneRoster 1.1) stand-in against the documented behaviour (domain.md §2, sandbox/README.md)."""

from __future__ import annotations

import time

import httpx
import pytest

from .sandbox_helpers import aspen_client, aspen_token

TOKEN_FORM = {"grant_type": "client_credentials"}


def line_item(**changes) -> dict:
    body = {
        "title": "Sandbox test item",
        "description": "",
        "assignDate": "2026-11-10T12:00:00.000Z",
        "dueDate": "2026-11-20T04:59:00.000Z",
        "class": {"sourcedId": "ALG1-P1"},
        "category": {"sourcedId": "cat-ALG1-P1-HW"},
        "gradingPeriod": {"sourcedId": "GP-2627-Q2"},
        "resultValueMin": 0,
        "resultValueMax": 10,
        "status": "active",
    }
    body.update(changes)
    return {"lineItem": body}


def result(line_item_id: str = "t-li", student: str = "S1001", **changes) -> dict:
    body = {
        "lineItem": {"sourcedId": line_item_id},
        "student": {"sourcedId": student},
        "scoreStatus": "fully graded",
        "score": 8,
        "scoreDate": "2026-11-21",
        "status": "active",
    }
    body.update(changes)
    return {"result": body}


@pytest.fixture
def api(demo):
    with aspen_client(demo) as client:
        yield client


# --- tokens --------------------------------------------------------------------------------------


def test_client_credentials_token(demo):
    r = httpx.post(
        f"{demo.aspen_url}/oauth/rest/v2.0/auth",
        trust_env=False,
        data=dict(TOKEN_FORM, client_id=demo.aspen_client_id, client_secret=demo.aspen_client_secret),
    )
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600 and len(body["access_token"]) > 20


def test_token_with_http_basic_client_authentication(demo):
    r = httpx.post(
        f"{demo.aspen_url}/oauth/rest/v2.0/auth",
        data=TOKEN_FORM,
        trust_env=False,
        auth=(demo.aspen_client_id, demo.aspen_client_secret),
    )
    assert r.status_code == 200


@pytest.mark.parametrize(
    "form, status",
    [
        ({"client_id": "sandbox-aspen-client", "client_secret": "wrong"}, 401),
        ({"client_id": "someone-else", "client_secret": "sandbox-aspen-secret"}, 401),
        ({}, 401),
    ],
)
def test_bad_client_credentials_are_401(demo, form, status):
    r = httpx.post(f"{demo.aspen_url}/oauth/rest/v2.0/auth", data=dict(TOKEN_FORM, **form), trust_env=False)
    assert r.status_code == status
    assert r.json()["error"] == "invalid_client"


def test_other_grant_types_are_refused(demo):
    r = httpx.post(
        f"{demo.aspen_url}/oauth/rest/v2.0/auth",
        trust_env=False,
        data={
            "grant_type": "password",
            "client_id": demo.aspen_client_id,
            "client_secret": demo.aspen_client_secret,
        },
    )
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize("header", [None, "Bearer not-a-token", "Basic abc"])
def test_api_without_a_valid_token_is_401(demo, header):
    headers = {"Authorization": header} if header else {}
    r = httpx.get(f"{demo.aspen_url}/ims/oneroster/v1p1/gradingPeriods", headers=headers, trust_env=False)
    assert r.status_code == 401
    assert r.json()["imsx_codeMajor"] == "failure"


def test_expired_tokens_are_401_and_a_new_token_works(demo):
    with aspen_client(demo) as api:
        assert api.get("/gradingPeriods").status_code == 200
        assert demo.aspen_expire_tokens() >= 1
        assert api.get("/gradingPeriods").status_code == 401
    with aspen_client(demo) as fresh:
        assert fresh.get("/gradingPeriods").status_code == 200


def test_tokens_expire_after_their_lifetime(demo):
    demo.set_settings(aspen_token_lifetime_s=0.6)
    token = aspen_token(demo)
    with aspen_client(demo, token) as api:
        assert api.get("/gradingPeriods").status_code == 200
        time.sleep(0.8)
        assert api.get("/gradingPeriods").status_code == 401


# --- reads -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flt", ["metadata.classId='ALG1-P1'", "metadata.classId=ALG1-P1", 'metadata.classId="ALG1-P1"']
)
def test_categories_of_a_class(api, flt):
    cats = api.get("/categories", params={"filter": flt}).json()["categories"]
    assert [(c["title"], c["metadata"].get("weight")) for c in cats] == [
        ("Homework", 30),
        ("Quiz", 30),
        ("Tests", 40),
        ("Participation", None),
    ]
    assert all(c["metadata"]["classId"] == "ALG1-P1" and c["status"] == "active" for c in cats)


def test_categories_filter_edge_cases(api):
    assert api.get("/categories", params={"filter": "metadata.classId='NOPE'"}).json() == {"categories": []}
    assert len(api.get("/categories").json()["categories"]) == 14
    bad = api.get("/categories", params={"filter": "metadata.classId"})
    assert bad.status_code == 400


def test_grading_periods_carry_locked(api):
    periods = api.get("/gradingPeriods").json()["gradingPeriods"]
    assert [(p["sourcedId"], p["startDate"], p["endDate"], p["metadata"]["locked"]) for p in periods][:2] == [
        ("GP-2627-Q1", "2026-08-31", "2026-11-06", True),
        ("GP-2627-Q2", "2026-11-09", "2027-01-29", False),
    ]


def test_class_roster_line_items_and_results(api):
    users = api.get("/classes/BIO-P2/students").json()["users"]
    assert [u["sourcedId"] for u in users] == ["S1001", "S1002", "S1101", "S1102", "S1103", "S1104"]
    assert users[0]["role"] == "student" and users[0]["givenName"] == "Ava"
    items = api.get("/classes/ALG1-P1/lineItems").json()["lineItems"]
    assert [li["sourcedId"] for li in items] == ["canvas-a3099-s1011", "ASPEN-ALG1-NB1"]
    results = api.get("/classes/ALG1-P1/results").json()["results"]
    assert len(results) == 4 and results[0]["lineItem"]["sourcedId"] == "canvas-a3099-s1011"
    assert api.get("/classes/BIO-P2/results").json() == {"results": []}


@pytest.mark.parametrize(
    "path",
    [
        "/classes/NOPE/students",
        "/classes/NOPE/lineItems",
        "/classes/NOPE/results",
        "/lineItems/NOPE",
        "/results/NOPE",
    ],
)
def test_unknown_things_are_404(api, path):
    r = api.get(path)
    assert r.status_code == 404 and "Not Found" in r.json()["imsx_description"]


def test_limit_and_offset_paging(api):
    pages = [
        api.get("/classes/BIO-P2/students", params={"limit": 4, "offset": o}).json()["users"]
        for o in (0, 4, 8)
    ]
    assert [len(p) for p in pages] == [4, 2, 0]
    assert [u["sourcedId"] for u in pages[0] + pages[1]] == [
        "S1001",
        "S1002",
        "S1101",
        "S1102",
        "S1103",
        "S1104",
    ]
    assert api.get("/classes/BIO-P2/students", params={"limit": 0}).status_code == 400
    assert api.get("/classes/BIO-P2/students", params={"offset": "x"}).status_code == 400


def test_limit_is_capped_and_total_count_is_optional(demo, api):
    assert "X-Total-Count" not in api.get("/classes/BIO-P2/students").headers
    demo.set_settings(aspen_max_limit=2, aspen_total_count_header=True)
    r = api.get("/classes/BIO-P2/students", params={"limit": 100})
    assert len(r.json()["users"]) == 2  # silently capped: a short page is not the end here
    assert r.headers["X-Total-Count"] == "6"


def test_generic_filter_and_sort(api):
    r = api.get("/gradingPeriods", params={"filter": "title='Q3'"}).json()["gradingPeriods"]
    assert [p["sourcedId"] for p in r] == ["GP-2627-Q3"]
    desc = api.get("/gradingPeriods", params={"sort": "startDate", "orderBy": "desc"}).json()[
        "gradingPeriods"
    ]
    assert desc[0]["title"] == "Q4"


# --- writes --------------------------------------------------------------------------------------


def test_put_line_item_creates_then_replaces(demo, api):
    created = api.put("/lineItems/t-li", json=line_item())
    assert created.status_code == 201
    assert created.json()["lineItem"]["class"]["sourcedId"] == "ALG1-P1"
    replaced = api.put("/lineItems/t-li", json=line_item(title="Renamed", resultValueMax=20))
    assert replaced.status_code == 200
    got = api.get("/lineItems/t-li").json()["lineItem"]
    assert (got["title"], got["resultValueMax"], got["gradingPeriod"]["sourcedId"]) == (
        "Renamed",
        20,
        "GP-2627-Q2",
    )
    assert got["dateLastModified"] >= created.json()["lineItem"]["dateLastModified"]
    assert "t-li" in demo.state(class_id="ALG1-P1")["lineItems"]
    assert [li["sourcedId"] for li in api.get("/classes/ALG1-P1/lineItems").json()["lineItems"]].count(
        "t-li"
    ) == 1


def test_put_result_creates_then_replaces(demo, api):
    assert api.put("/lineItems/t-li", json=line_item()).status_code == 201
    assert api.put("/results/t-r1", json=result(score=7)).status_code == 201
    r = api.put("/results/t-r1", json=result(score=9.5, comment="Well done"))
    assert r.status_code == 200
    stored = demo.state()["results"]["t-r1"]
    assert (stored["score"], stored["comment"], stored["student"]["sourcedId"]) == (9.5, "Well done", "S1001")
    assert stored["dateLastModified"].endswith("Z")


@pytest.mark.parametrize(
    "changes",
    [
        {"scoreStatus": "exempt", "score": None},
        {"scoreStatus": "exempt"},
        {"scoreStatus": "not submitted", "score": 0},
        {"scoreStatus": "partially graded", "score": 10},
        {"comment": "x" * 100},
    ],
)
def test_accepted_results(api, changes):
    api.put("/lineItems/t-li", json=line_item())
    body = result(**changes)
    if "score" not in changes and changes.get("scoreStatus") == "exempt":
        del body["result"]["score"]
    assert api.put("/results/t-r", json=body).status_code == 201


def test_delete_line_item_removes_its_results(demo, api):
    api.put("/lineItems/t-li", json=line_item())
    api.put("/results/t-r1", json=result())
    api.put("/results/t-r2", json=result(student="S1002"))
    assert api.delete("/lineItems/t-li").status_code == 204
    assert api.get("/results/t-r1").status_code == 404
    assert "t-r2" not in demo.state()["results"]
    assert api.delete("/lineItems/t-li").status_code == 404


def test_a_result_cannot_go_into_a_period_locked_after_the_line_item(demo, api):
    api.put("/lineItems/t-li", json=line_item())
    demo.aspen_set_grading_period("GP-2627-Q2", locked=True)
    r = api.put("/results/t-r1", json=result())
    assert r.status_code == 422 and r.json()["imsx_description"].startswith("Grading Period Locked")


def test_due_date_in_period_check_is_a_setting(demo, api):
    outside = line_item(dueDate="2026-12-31T12:00:00Z", gradingPeriod={"sourcedId": "GP-2627-Q3"})
    assert api.put("/lineItems/t-li", json=outside).status_code == 201  # off by default (unverified)
    demo.set_settings(aspen_check_due_date_in_period=True)
    r = api.put("/lineItems/t-li2", json=outside)
    assert r.status_code == 422 and "outside grading period" in r.json()["imsx_description"]


# --- every rejection, in both error styles --------------------------------------------------------------

LINE_ITEM_REJECTIONS = [
    (
        "/lineItems/t-x",
        "category of another class",
        line_item(category={"sourcedId": "cat-BIO-P2-HW"}),
        404,
        "Grading Category Not Found",
    ),
    ("/lineItems/t-x", "no category", line_item(category=None), 404, "Grading Category Not Found"),
    (
        "/lineItems/t-x",
        "unknown class",
        line_item(**{"class": {"sourcedId": "NOPE"}}),
        404,
        "Class Not Found",
    ),
    (
        "/lineItems/t-x",
        "unknown grading period",
        line_item(gradingPeriod={"sourcedId": "GP-NOPE"}),
        404,
        "Grading Period Not Found",
    ),
    (
        "/lineItems/t-x",
        "locked grading period",
        line_item(gradingPeriod={"sourcedId": "GP-2627-Q1"}),
        422,
        "Grading Period Locked",
    ),
    ("/lineItems/t-x", "no due date", line_item(dueDate=None), 422, "Validation Exception"),
    ("/lineItems/t-x", "no title", line_item(title=""), 422, "Validation Exception"),
    ("/lineItems/t-x", "max below min", line_item(resultValueMax=-1), 422, "Validation Exception"),
    ("/lineItems/t-x", "bad date", line_item(dueDate="next Tuesday"), 422, "Validation Exception"),
    ("/lineItems/t-x", "not wrapped", line_item()["lineItem"], 400, "Invalid payload"),
    ("/lineItems/t-x", "other sourcedId in body", line_item(sourcedId="other"), 400, "sourcedId"),
]
RESULT_REJECTIONS = [
    ("/results/t-x", "unknown line item", result(line_item_id="NOPE"), 404, "Line Item Not Found"),
    ("/results/t-x", "student not on the roster", result(student="S1007"), 404, "Student Not Found In Class"),
    ("/results/t-x", "score above resultValueMax", result(score=12), 422, "Validation Exception"),
    ("/results/t-x", "unknown scoreStatus", result(scoreStatus="late"), 422, "Validation Exception"),
    ("/results/t-x", "comment over 100 characters", result(comment="x" * 101), 422, "Validation Exception"),
    ("/results/t-x", "negative score", result(score=-2), 422, "Validation Exception"),
    ("/results/t-x", "text score", result(score="B+"), 422, "Validation Exception"),
    ("/results/t-x", "no score unless exempt", result(score=None), 422, "Validation Exception"),
    ("/results/t-x", "boolean score", result(score=True), 422, "Validation Exception"),
    ("/results/t-x", "not wrapped", result()["result"], 400, "Invalid payload"),
]


@pytest.mark.parametrize("style", ["json", "text"])
@pytest.mark.parametrize(
    "path, case, body, status, message",
    LINE_ITEM_REJECTIONS + RESULT_REJECTIONS,
    ids=[c[1] for c in LINE_ITEM_REJECTIONS + RESULT_REJECTIONS],
)
def test_rejection(demo, style, path, case, body, status, message):
    demo.set_settings(aspen_error_style=style)
    with aspen_client(demo) as api:
        assert api.put("/lineItems/t-li", json=line_item()).status_code == 201
        r = api.put(path, json=body)
    assert r.status_code == status
    if style == "json":
        assert r.headers["content-type"].startswith("application/json")
        err = r.json()
        assert (err["imsx_codeMajor"], err["imsx_severity"]) == ("failure", "error")
        assert err["imsx_description"].startswith(message)
    else:
        assert r.headers["content-type"].startswith("text/plain")
        assert r.text.startswith(message)
    assert "t-x" not in demo.state()["lineItems"] and "t-x" not in demo.state()["results"]
