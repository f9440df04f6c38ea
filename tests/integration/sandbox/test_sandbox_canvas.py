"""The Canvas stand-in against the documented behaviour (domain.md §1, sandbox/README.md)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from .sandbox_helpers import canvas_client, follow

SUBMISSIONS = "/api/v1/courses/{}/students/submissions"


def graded_pairs(client, course_id: int, **params) -> dict[tuple[int, int], dict]:
    items, _ = follow(
        client, SUBMISSIONS.format(course_id), params={"student_ids[]": "all", "per_page": 100, **params}
    )
    return {(s["assignment_id"], s["user_id"]): s for s in items}


# --- auth ------------------------------------------------------------------------------------


def test_missing_token_is_401_user_authorization_required(demo):
    with canvas_client(demo, token="") as c:
        r = c.get("/api/v1/courses/101")
    assert r.status_code == 401
    assert r.json()["errors"][0]["message"] == "user authorization required"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_wrong_token_is_401_invalid_access_token(demo):
    with canvas_client(demo, token="not-the-token") as c:
        r = c.get("/api/v1/accounts/1/courses")
    assert r.status_code == 401
    assert r.json() == {"errors": [{"message": "Invalid access token."}]}


def test_access_token_query_parameter_is_accepted_and_not_echoed_in_links(demo):
    with canvas_client(demo, token="") as c:
        r = c.get("/api/v1/accounts/1/courses", params={"access_token": demo.canvas_token, "per_page": 1})
    assert r.status_code == 200
    assert "access_token" not in r.headers["Link"]


# --- paging ------------------------------------------------------------------------------------


def test_link_header_has_current_next_first_last_and_next_is_absent_on_the_last_page(demo):
    with canvas_client(demo) as c:
        r = c.get("/api/v1/accounts/1/courses", params={"per_page": 2})
        assert {"current", "next", "first", "last"} <= set(r.links)
        assert "prev" not in r.links
        last = c.get(r.links["last"]["url"])
        assert "next" not in last.links and "prev" in last.links
        courses, pages = follow(c, "/api/v1/accounts/1/courses", params={"per_page": 2})
    assert pages == 3
    assert [x["id"] for x in courses] == [101, 102, 103, 104, 105, 106]
    assert len(r.json()) == 2


def test_default_page_size_is_10_and_per_page_is_capped(demo):
    demo.set_settings(canvas_max_per_page=25)
    with canvas_client(demo) as c:
        default = c.get(SUBMISSIONS.format(102), params={"student_ids[]": "all"})
        capped = c.get(SUBMISSIONS.format(102), params={"student_ids[]": "all", "per_page": 1000})
    assert len(default.json()) == 10
    assert len(capped.json()) == 25
    assert "per_page=25" in capped.links["next"]["url"]


def test_next_links_keep_every_filter(demo):
    with canvas_client(demo) as c:
        r = c.get(
            SUBMISSIONS.format(101),
            params=[
                ("student_ids[]", "all"),
                ("assignment_ids[]", "3001"),
                ("assignment_ids[]", "3005"),
                ("per_page", "3"),
            ],
        )
        nxt = r.links["next"]["url"]
        assert "assignment_ids%5B%5D=3001" in nxt and "assignment_ids%5B%5D=3005" in nxt
        items, pages = follow(
            c,
            SUBMISSIONS.format(101),
            params=[
                ("student_ids[]", "all"),
                ("assignment_ids[]", "3001"),
                ("assignment_ids[]", "3005"),
                ("per_page", "3"),
            ],
        )
    assert {s["assignment_id"] for s in items} == {3001, 3005}
    assert len(items) == 14 and pages == 5


def test_last_link_can_be_omitted(demo):
    demo.set_settings(canvas_omit_last_link=True)
    with canvas_client(demo) as c:
        r = c.get("/api/v1/accounts/1/courses", params={"per_page": 2})
    assert "next" in r.links and "last" not in r.links


# --- endpoints and fields ------------------------------------------------------------------------


def test_courses_of_the_account_and_by_term(demo):
    with canvas_client(demo) as c:
        everything, _ = follow(c, "/api/v1/accounts/1/courses", params={"per_page": 100})
        last_year = c.get("/api/v1/accounts/1/courses", params={"enrollment_term_id": 2}).json()
        missing = c.get("/api/v1/accounts/99/courses")
    fields = {"id", "name", "sis_course_id", "workflow_state", "apply_assignment_group_weights"}
    assert all(fields <= set(x) for x in everything)
    assert [x["id"] for x in last_year] == [105, 106]
    assert missing.status_code == 404


def test_one_course_by_id_and_by_sis_id(demo):
    with canvas_client(demo) as c:
        by_id = c.get("/api/v1/courses/102").json()
        by_sis = c.get("/api/v1/courses/sis_course_id:BIO-2627").json()
        unknown = c.get("/api/v1/courses/999")
    assert by_id == by_sis
    assert by_id["sis_course_id"] == "BIO-2627" and by_id["apply_assignment_group_weights"] is True
    assert unknown.status_code == 404
    assert unknown.json()["errors"][0]["message"] == "The specified resource does not exist."


def test_sections_of_a_cross_listed_course(demo):
    with canvas_client(demo) as c:
        sections = c.get("/api/v1/courses/102/sections").json()
    assert [(s["id"], s["sis_section_id"], s["course_id"]) for s in sections] == [
        (1021, "BIO-P2", 102),
        (1022, "BIO-P5", 102),
    ]
    assert sections[1]["nonxlist_course_id"] == 104


def test_enrollments_filter_by_type_and_state(demo):
    with canvas_client(demo) as c:
        students = c.get(
            "/api/v1/courses/102/enrollments",
            params={"type[]": "StudentEnrollment", "state[]": "active", "per_page": 100},
        ).json()
        everyone = c.get("/api/v1/courses/102/enrollments", params={"per_page": 100}).json()
        inactive = c.get("/api/v1/courses/102/enrollments", params={"state[]": "inactive"}).json()
    assert len(students) == 12
    assert {e["type"] for e in students} == {"StudentEnrollment"}
    assert all(e["sis_user_id"] == e["user"]["sis_user_id"] for e in students)
    assert {e["course_section_id"] for e in students} == {1021, 1022}
    assert {e["type"] for e in everyone} == {"StudentEnrollment", "TeacherEnrollment"}
    assert [e["user_id"] for e in inactive] == [5105]


def test_course_teachers_with_emails_once_each(demo):
    """GET /courses/{id}/users?enrollment_type[]=teacher&include[]=email: a teacher of two sections
    is one user; no students; the email only when asked for."""
    with canvas_client(demo) as c:
        bio = c.get(
            "/api/v1/courses/102/users", params={"enrollment_type[]": "teacher", "include[]": "email"}
        ).json()
        eng = c.get(
            "/api/v1/courses/103/users", params={"enrollment_type[]": "teacher", "include[]": "email"}
        ).json()
        plain = c.get("/api/v1/courses/102/users", params={"enrollment_type[]": "teacher"}).json()
        students, _ = follow(
            c, "/api/v1/courses/102/users", params={"enrollment_type[]": "student", "per_page": 100}
        )
    assert [(u["id"], u["name"], u["email"]) for u in bio] == [
        (9001, "Dana Whitfield", "dana.whitfield@district.example.org")
    ]
    assert [(u["id"], u["email"]) for u in eng] == [(9002, "marcus.bell@district.example.org")]
    assert [u["id"] for u in plain] == [9001] and "email" not in plain[0]
    assert len(students) == 12 and 9001 not in {u["id"] for u in students}  # active students only


def test_assignment_groups_with_assignments_and_overrides(demo):
    with canvas_client(demo) as c:
        bare = c.get("/api/v1/courses/102/assignment_groups").json()
        full = c.get(
            "/api/v1/courses/102/assignment_groups",
            params=[("include[]", "assignments"), ("include[]", "overrides")],
        ).json()
        algebra = c.get(
            "/api/v1/courses/101/assignment_groups", params={"include[]": "assignments", "per_page": 100}
        ).json()
    assert "assignments" not in bare[0]
    assert [g["name"] for g in full] == ["Labs ", "Homework", "Imported Assignments", "Tests"]
    a = {x["id"]: x for g in full for x in g["assignments"]}
    assert a[3102]["overrides"] == [
        {
            "id": 71,
            "assignment_id": 3102,
            "due_at": "2026-11-04T16:00:00Z",
            "unlock_at": None,
            "lock_at": None,
            "all_day": False,
            "course_section_id": 1022,
            "title": "Section 1022",
        }
    ]
    assert a[3103]["only_visible_to_overrides"] is True and a[3103]["overrides"][0]["student_ids"] == [
        5102,
        5205,
    ]
    fields = {
        "id",
        "name",
        "assignment_group_id",
        "points_possible",
        "grading_type",
        "published",
        "post_to_sis",
        "only_visible_to_overrides",
        "due_at",
        "unlock_at",
        "created_at",
        "omit_from_final_grade",
    }
    assert all(fields <= set(x) for x in a.values())
    by_id = {x["id"]: x for g in algebra for x in g["assignments"]}
    assert "overrides" not in by_id[3001]
    assert by_id[3003]["published"] is False  # an admin sees unpublished assignments
    assert by_id[3002]["post_to_sis"] is False
    assert 3099 not in by_id  # deleted


# --- submissions ------------------------------------------------------------------------------


def test_submissions_only_of_published_assignments(demo):
    with canvas_client(demo) as c:
        pairs = graded_pairs(c, 101)
    assignments = {a for a, _ in pairs}
    assert 3003 not in assignments  # unpublished, although graded in the scenario
    assert 3099 not in assignments  # deleted
    assert {3001, 3002, 3004, 3005, 3006, 3011} <= assignments
    assert len([p for p in pairs if p[0] == 3001]) == 7  # one per student, graded or not


def test_submission_fields_and_statuses(demo):
    with canvas_client(demo) as c:
        pairs = graded_pairs(c, 101, **{"assignment_ids[]": 3001})
    fields = {
        "assignment_id",
        "user_id",
        "score",
        "grade",
        "excused",
        "late",
        "missing",
        "late_policy_status",
        "workflow_state",
        "graded_at",
    }
    assert all(fields <= set(s) for s in pairs.values())
    late, missing, excused, empty = (pairs[(3001, u)] for u in (5002, 5003, 5004, 5005))
    assert (late["score"], late["late"], late["late_policy_status"]) == (9, True, "late")
    assert (missing["score"], missing["missing"], missing["late_policy_status"]) == (0, True, "missing")
    assert (excused["score"], excused["excused"], excused["grade"]) == (None, True, None)
    assert (empty["score"], empty["workflow_state"], empty["graded_at"]) == (None, "unsubmitted", None)


def test_grade_strings_follow_the_grading_type(demo):
    with canvas_client(demo) as c:
        bio = graded_pairs(c, 102)
        eng = graded_pairs(c, 103)
        alg = graded_pairs(c, 101)
    assert bio[(3106, 5001)]["grade"] == "84%"  # 42 / 50
    assert bio[(3107, 5102)]["grade"] == "incomplete" and bio[(3107, 5001)]["grade"] == "complete"
    assert eng[(3201, 5301)]["grade"] == "B+"  # 88 / 100
    assert alg[(3012, 5001)]["score"] == "B+"  # R4's text-like score, served as the scenario has it
    assert alg[(3012, 5002)]["score"] == -2


def test_only_visible_to_overrides_lists_only_the_assigned_students(demo):
    with canvas_client(demo) as c:
        pairs = graded_pairs(c, 102)
    assert sorted(u for a, u in pairs if a == 3103) == [5102, 5205]  # named students; 5101's score hidden
    assert sorted(u for a, u in pairs if a == 3104) == [5201, 5202, 5203, 5204, 5205, 5206]  # section 1022
    assert sorted(u for a, u in pairs if a == 3101) == [
        5001,
        5002,
        5101,
        5102,
        5103,
        5104,
        5201,
        5202,
        5203,
        5204,
        5205,
        5206,
    ]  # not 5105 (inactive)


def test_assignment_ids_and_student_ids_filters(demo):
    with canvas_client(demo) as c:
        two = c.get(
            SUBMISSIONS.format(101),
            params=[
                ("student_ids[]", "5001"),
                ("student_ids[]", "5002"),
                ("assignment_ids[]", "3005"),
                ("per_page", 100),
            ],
        ).json()
        none = c.get(SUBMISSIONS.format(101), params={"per_page": 100}).json()
    assert sorted((s["assignment_id"], s["user_id"], s["score"]) for s in two) == [
        (3005, 5001, 88),
        (3005, 5002, 92),
    ]
    assert none == []  # without student_ids Canvas lists the caller's own submissions: an admin has none


def test_graded_since_lists_only_what_was_graded_later(demo):
    before = datetime.now(UTC) - timedelta(seconds=1)
    demo.canvas_set_submission(101, 3001, 5005, score=6)
    demo.canvas_set_submission(103, 3202, 5301, score=None)  # a cleared grade counts as graded now
    with canvas_client(demo) as c:
        since = before.strftime("%Y-%m-%dT%H:%M:%SZ")
        alg = graded_pairs(c, 101, graded_since=since)
        eng = graded_pairs(c, 103, graded_since=since)
        old = graded_pairs(c, 101, graded_since="2026-11-24T00:00:00Z")
        bad = c.get(SUBMISSIONS.format(101), params={"student_ids[]": "all", "graded_since": "yesterday"})
    assert list(alg) == [(3001, 5005)] and alg[(3001, 5005)]["score"] == 6
    assert list(eng) == [(3202, 5301)] and eng[(3202, 5301)]["score"] is None
    assert {a for a, _ in old} == {3001, 3006, 3012}  # graded_at = due + 1 day: 11-25 and 11-26, plus now
    assert bad.status_code == 400


# --- throttling --------------------------------------------------------------------------------


def test_every_api_answer_carries_cost_and_remaining_quota(demo):
    with canvas_client(demo) as c:
        r = c.get("/api/v1/courses/101")
    assert float(r.headers["X-Request-Cost"]) > 0
    assert 0 < float(r.headers["X-Rate-Limit-Remaining"]) <= 600


def _parallel_get(sb, n: int, path: str = "/api/v1/courses/101") -> list:
    def one(_):
        with canvas_client(sb) as c:
            return c.get(path)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_too_many_parallel_requests_empty_the_bucket_429(demo):
    # 300 ms per request keeps them in flight together; 3 up-front costs of 50 overflow a bucket of 120
    demo.set_faults("canvas", latency_ms=300)
    demo.set_settings(canvas_bucket_hwm=120)
    answers = _parallel_get(demo, 6)
    throttled = [r for r in answers if r.status_code == 429]
    assert throttled and any(r.status_code == 200 for r in answers)
    assert throttled[0].text == "429 Too Many Requests (Rate Limit Exceeded)"
    assert throttled[0].headers["X-Request-Cost"] == "0"


def test_older_canvas_throttles_with_403_rate_limit_exceeded(demo):
    demo.set_faults("canvas", latency_ms=300)
    demo.set_settings(canvas_max_in_flight=2, canvas_throttle_status=403, canvas_throttling=False)
    answers = _parallel_get(demo, 6)
    refused = [r for r in answers if r.status_code == 403]
    assert refused and refused[0].text == "403 Forbidden (Rate Limit Exceeded)"
    assert sum(r.status_code == 200 for r in answers) >= 2
    assert all("X-Rate-Limit-Remaining" not in r.headers for r in answers)  # bucket off: no quota header


def test_quota_drops_with_cost_and_refills_over_time(demo):
    demo.set_settings(canvas_request_base_cost=40, canvas_bucket_outflow=100)
    with canvas_client(demo) as c:
        first = float(c.get("/api/v1/courses/101").headers["X-Rate-Limit-Remaining"])
        second = float(c.get("/api/v1/courses/101").headers["X-Rate-Limit-Remaining"])
        time.sleep(0.5)  # 100/s refills the 40-ish spent
        later = float(c.get("/api/v1/courses/101").headers["X-Rate-Limit-Remaining"])
    assert first < 600 and second < first - 30
    assert later > second


@pytest.mark.parametrize("path", ["/api/v1/users/self", "/api/v1/accounts/1"])
def test_connection_test_endpoints(demo, path):
    with canvas_client(demo) as c:
        assert c.get(path).status_code == 200


# --- terms and course scope (R19) -------------------------------------------------------------


def test_r19_terms_of_the_account_paged_inside_enrollment_terms(demo):
    with canvas_client(demo) as c:
        first = c.get("/api/v1/accounts/1/terms", params={"per_page": 2})
        second = c.get(first.links["next"]["url"])
        missing = c.get("/api/v1/accounts/99/terms")
    listed = first.json()["enrollment_terms"] + second.json()["enrollment_terms"]
    assert "next" not in second.links and missing.status_code == 404
    by_id = {t["id"]: t for t in listed}
    assert set(by_id) == {1, 2, 3}
    assert {"id", "name", "sis_term_id", "start_at", "end_at", "workflow_state"} <= set(by_id[1])
    assert (by_id[1]["sis_term_id"], by_id[1]["start_at"]) == ("2627", "2026-08-01T04:00:00Z")
    assert (by_id[3]["name"], by_id[3]["start_at"], by_id[3]["end_at"]) == ("Default Term", None, None)


def test_r19_course_list_by_term_id_sis_term_id_and_state(demo):
    def ids(**params):
        with canvas_client(demo) as c:
            r = c.get("/api/v1/accounts/1/courses", params={"per_page": 100, **params})
        return r.status_code, sorted(x["id"] for x in r.json()) if r.status_code == 200 else r.json()

    assert ids(enrollment_term_id=1) == (200, [101, 102, 103, 104])
    assert ids(enrollment_term_id="sis_term_id:2627", **{"state[]": "available"}) == (200, [101, 102, 103])
    assert ids(enrollment_term_id="sis_term_id:2526") == (200, [105, 106])
    assert ids(**{"state[]": ["completed"]}) == (200, [105, 106])
    assert ids(**{"state[]": ["created", "claimed"]}) == (200, [104])  # unpublished
    assert ids(enrollment_term_id=3) == (200, [])  # the Default Term holds nothing here
    assert ids(enrollment_term_id="sis_term_id:1999")[0] == 404


def test_r19_a_concluded_courses_students_are_completed_and_their_grades_listed(demo):
    with canvas_client(demo) as c:
        course = c.get("/api/v1/courses/105").json()
        active = c.get(
            "/api/v1/courses/105/enrollments", params={"type[]": "StudentEnrollment", "state[]": "active"}
        ).json()
        done = c.get(
            "/api/v1/courses/105/enrollments",
            params={"type[]": "StudentEnrollment", "state[]": ["active", "completed"]},
        ).json()
        subs = c.get("/api/v1/courses/105/students/submissions", params={"student_ids[]": "all"}).json()
    assert course["workflow_state"] == "completed" and course["enrollment_term_id"] == 2
    assert active == [] and sorted(e["user_id"] for e in done) == [5001, 5002, 5003]
    assert sorted((s["user_id"], s["score"]) for s in subs) == [(5001, 9), (5002, 7), (5003, 8)]


# --- posting policies (R20) -------------------------------------------------------------------


def _subs(c, course, assignment):
    return {
        s["user_id"]: s
        for s in c.get(
            f"/api/v1/courses/{course}/students/submissions",
            params={"student_ids[]": "all", "assignment_ids[]": assignment, "per_page": 100},
        ).json()
    }


def test_r20_a_manual_posting_policy_hides_graded_submissions_until_posted(demo):
    with canvas_client(demo) as c:
        groups = c.get("/api/v1/courses/103/assignment_groups", params={"include[]": "assignments"}).json()
        manual = {a["id"]: a["post_manually"] for g in groups for a in g["assignments"]}
        hidden = _subs(c, 103, 3204)
        automatic = _subs(c, 103, 3201)
    assert manual[3204] is True and manual[3201] is False
    assert {
        u: (s["score"], s["excused"], s["posted_at"])
        for u, s in hidden.items()
        if s["workflow_state"] == "graded"
    } == {5301: (92, False, None), 5302: (84, False, None), 5303: (None, True, None), 5305: (88, False, None)}
    assert hidden[5301]["graded_at"] is not None
    assert all(s["posted_at"] == s["graded_at"] for s in automatic.values() if s["score"] is not None)

    posted = demo.canvas_post_grades(103, 3204)
    assert posted["posted"] == [5301, 5302, 5303, 5305]
    with canvas_client(demo) as c:
        after = _subs(c, 103, 3204)
    assert all(after[u]["posted_at"] for u in posted["posted"]) and after[5304]["posted_at"] is None
    assert after[5301]["graded_at"] == hidden[5301]["graded_at"]  # posting is not grading


def test_r20_grading_under_a_manual_policy_keeps_new_grades_hidden_and_posted_ones_posted(demo):
    demo.canvas_set_submission(103, 3204, 5304, score=70)  # newly graded: hidden
    demo.canvas_post_grades(103, 3204)
    demo.canvas_set_submission(103, 3204, 5301, score=95)  # regraded after posting: stays posted
    demo.canvas_set_submission(103, 3201, 5301, score=89)  # automatic policy: posted when graded
    with canvas_client(demo) as c:
        manual, automatic = _subs(c, 103, 3204), _subs(c, 103, 3201)
    assert manual[5304]["posted_at"] is not None and manual[5301]["posted_at"] is not None
    assert automatic[5301]["posted_at"] == automatic[5301]["graded_at"]
    demo.canvas_set_submission(103, 3204, 5306, score=60)  # graded after the post: hidden again
    with canvas_client(demo) as c:
        assert _subs(c, 103, 3204)[5306]["posted_at"] is None


def test_r20_hide_grades_unposts_and_day_of_grading_scripts_both(demo):
    hidden = demo.canvas_hide_grades(103, 3201)
    assert 5301 in hidden["hidden"]
    with canvas_client(demo) as c:
        assert all(s["posted_at"] is None for s in _subs(c, 103, 3201).values())
    from sandbox import scenario as scenario_mod
    from sandbox.canvas_state import CanvasState
    from sandbox.grading_day import apply_canvas_event

    state = CanvasState(scenario_mod.load("demo"))
    apply_canvas_event(state, {"action": "post_grades", "course_id": 103, "assignment_id": 3204})
    assert state.courses[103].assignments[3204].submissions[5301].posted_at is not None
    apply_canvas_event(state, {"action": "hide_grades", "course_id": 103, "assignment_id": 3204})
    assert state.courses[103].assignments[3204].submissions[5301].posted_at is None
