"""Malformed or unexpected answers from either server (issue 8): non-JSON, truncated JSON,
JSON of the wrong shape, a ``Link`` that loops, a PUT answered 200 that never reached Aspen.

A proxy on 127.0.0.1 (``mangler.py``) spoils chosen answers of the sandbox; the run goes
through every stage as the DAG runs them. Each time: a clear error that names the endpoint
(in the report: the course's ``error``, or a ``verify_mismatch`` finding), nothing written
to the class or course whose answers were spoiled, the other courses posted exactly as in an
undisturbed run, R17's buckets adding up, and the run failed: never a partial post
presented as success. A next run with healthy answers finishes the work.
"""

from __future__ import annotations

import pytest

from .conftest import assert_buckets_add_up, assert_ledger_agrees, conn_env, course, ours
from .mangler import Mangler, Rule

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

CLASSES_OF = {101: ["ALG1-P1"], 102: ["BIO-P2", "BIO-P5"], 103: ["ENG10-P3"]}


def proxied(sb, canvas: str | None = None, aspen: str | None = None) -> dict[str, str]:
    """The sandbox's connections with Canvas and/or Aspen reached through a proxy."""
    return conn_env(sb, canvas={"host": canvas or None}, aspen={"host": aspen or None})


def in_class(o: dict, class_id: str) -> dict:
    """Our line items and results of one class (``ours`` format)."""
    items = {k: v for k, v in o["lineItems"].items() if v[1] == class_id}
    return {"lineItems": items, "results": {k: v for k, v in o["results"].items() if v[0] in items}}


CASES = {
    "canvas: non-JSON page, Link loop": dict(
        canvas=[
            Rule("/courses/101/students/submissions", "non_json"),
            Rule("/courses/102/enrollments", "link_loop"),
        ],
        broken={101: ["list_submissions", "not JSON"], 102: ["list_student_enrollments", "pagination loop"]},
    ),
    "canvas: truncated JSON, wrong shapes": dict(
        canvas=[
            Rule("/courses/101/assignment_groups", "truncated"),
            Rule(
                "/courses/102/students/submissions",
                "transform",
                body=lambda subs: [{k: v for k, v in s.items() if k != "user_id"} for s in subs],
            ),
            Rule("/courses/103/sections", "json", body={"errors": [{"message": "surprise"}]}),
        ],
        broken={
            101: ["list_assignment_groups", "not JSON"],
            102: ["list_submissions", "user_id"],
            103: ["list_sections", "unexpected answer"],
        },
    ),
    "aspen: non-JSON, truncated JSON, wrong shapes": dict(
        aspen=[
            Rule(("/categories", "BIO-P2"), "non_json"),
            Rule("/classes/BIO-P5/lineItems", "json", body={"lineItems": {"oops": 1}}),
            Rule("/classes/ENG10-P3/results", "truncated"),
            Rule(
                ("/categories", "ALG1-P1"),
                "transform",
                body=lambda d: {
                    "categories": [{k: v for k, v in c.items() if k != "sourcedId"} for c in d["categories"]]
                },
            ),
        ],
        broken={
            102: ["list_categories", "not JSON", "list_line_items", "unexpected answer"],
            103: ["list_results", "not JSON"],
            101: ["list_categories", "without a sourcedId"],
        },
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_answers_fail_their_course_clearly_and_post_nothing_of_it(
    case, sb, baseline, pipeline, ledger
):
    spec = CASES[case]
    want, _ = baseline
    sb.reset()
    before = ours(sb.state())
    with (
        Mangler(sb.canvas_url, spec.get("canvas", [])) as cm,
        Mangler(sb.aspen_url, spec.get("aspen", [])) as am,
    ):
        state, report = pipeline(sb, "scheduled__spoiled", env=proxied(sb, cm.url, am.url)).run()
        spoiled = {**cm.spoiled(), **am.spoiled()}
    assert all(spoiled.values()), spoiled  # every spoiler was hit

    assert state == "failed"
    assert_buckets_add_up(report)
    after = ours(sb.state())
    for course_id, words in spec["broken"].items():
        c = course(report, course_id)
        assert c["posted"] == 0 and c["error"], c
        for word in words:  # the error names the endpoint and what was wrong with its answer
            assert word in c["error"], (word, c["error"])
        for class_id in CLASSES_OF[course_id]:  # nothing written there
            assert in_class(after, class_id) == in_class(before, class_id), class_id
    for course_id in set(CLASSES_OF) - set(spec["broken"]):  # the others went as if nothing happened
        assert course(report, course_id)["error"] is None
        for class_id in CLASSES_OF[course_id]:
            assert in_class(after, class_id) == in_class(want, class_id), class_id
    assert_ledger_agrees(ledger, sb.state())

    state, report = pipeline(sb, "scheduled__healthy").run()  # healthy answers: the work is finished
    assert state == "success", report["courses"]
    assert ours(sb.state()) == want


def test_a_put_answered_200_that_never_reached_aspen_and_an_unreadable_read_back_fail_verify(
    sb, baseline, pipeline, ledger
):
    """OneRoster: any 2xx is success, so the post stage counts a swallowed PUT as posted; the
    read back (R18) finds it missing and fails the run, as it does when a class cannot be read."""
    want, _ = baseline
    sb.reset()
    rules = [
        Rule("/results/canvas-a3101-s1021-", "swallow", method="PUT"),
        Rule("/classes/ENG10-P3/results", "non_json", skip=1),
    ]  # deltas reads it; verify cannot
    with Mangler(sb.aspen_url, rules) as am:
        state, report = pipeline(sb, "scheduled__swallowed", env=proxied(sb, aspen=am.url)).run()
        swallowed = am.rules[0].spoiled
    assert swallowed >= 3 and am.rules[1].spoiled == 1

    assert state == "failed"
    mismatches = [f for f in report["findings"] if f["kind"] == "verify_mismatch"]
    missing = [f for f in mismatches if "missing in Aspen" in f["message"]]
    assert len(missing) == swallowed
    unreadable = [f for f in mismatches if f["aspen_class_id"] == "ENG10-P3"]
    assert (
        len(unreadable) == 1
        and "list_results" in unreadable[0]["message"]
        and "not JSON" in unreadable[0]["message"]
    )
    assert report["verify"]["mismatched"] == swallowed + 1
    assert_buckets_add_up(report)

    state, report = pipeline(sb, "scheduled__repair").run()  # Aspen lacks them: the next run posts them
    assert state == "success"
    assert report["totals"]["posted"] == swallowed
    assert ours(sb.state()) == want
    assert_ledger_agrees(ledger, sb.state())


@pytest.mark.parametrize(
    "system, rule, endpoint",
    [
        ("canvas", Rule("/accounts/1/courses", "non_json"), "list_courses"),
        ("aspen", Rule("/gradingPeriods", "truncated"), "list_grading_periods"),
    ],
)
def test_a_malformed_answer_to_the_plan_fails_the_run_before_anything_is_read_or_posted(
    system, rule, endpoint, sb, pipeline, ledger
):
    from canvas_aspen.hooks._http import ApiError

    sb.reset()
    before = ours(sb.state())
    target = sb.canvas_url if system == "canvas" else sb.aspen_url
    with Mangler(target, [rule]) as m:
        run = pipeline(sb, "scheduled__no_plan", env=proxied(sb, **{system: m.url}))
        with pytest.raises(ApiError) as err:
            run.plan()
    assert endpoint in str(err.value) and "not JSON" in str(err.value)
    state, report = run.report()  # a report all the same, saying the plan failed
    assert state == "failed" and report["failed_reasons"][0].startswith(
        "plan failed: the plan task did not finish"
    )
    assert ledger.run(run.run_id)["status"] == "failed"
    assert ours(sb.state()) == before
