"""R17: the bucket a grade (a row of the rows frame) is in, one name for each.

Every row starts in ``empty`` (R7), ``hidden`` (R20) or ``eligible`` (validate, from
:func:`canvas_aspen.rules.initial_bucket`); the gates move ``eligible`` rows to ``held_back``;
deltas and post end the rest in ``unchanged``, ``posted`` or ``failed``. A run's rows end in
exactly one of :data:`FINAL`, R17's six, and the report's totals are counts of them.

:class:`Bucket` is a ``StrEnum``: a member equals its string (``Bucket.POSTED == "posted"``),
so the stage files, report.json and the ledger hold the plain strings they always held.
Imports nothing (the UI plugin reads it without pandas).
"""

from __future__ import annotations

from enum import StrEnum


class Bucket(StrEnum):
    EMPTY = "empty"  # R7: no grade in Canvas; not posted, not a finding
    HIDDEN = "hidden"  # R20: graded, but hidden from the student by a manual posting policy
    ELIGIBLE = "eligible"  # may go: not yet gated, matched or posted (never a final bucket)
    HELD_BACK = "held_back"  # a gate held it back, with a finding
    UNCHANGED = "unchanged"  # R8: Aspen already holds what Canvas has
    POSTED = "posted"  # Aspen accepted it (or would have, on a dry run)
    FAILED = "failed"  # not written: the error says why (Aspen's answer, a busy or failed course)


FINAL: tuple[Bucket, ...] = (
    Bucket.POSTED,
    Bucket.UNCHANGED,
    Bucket.EMPTY,
    Bucket.HIDDEN,
    Bucket.HELD_BACK,
    Bucket.FAILED,
)
"""R17's six buckets, in the order reports list them."""

GRADEABLE: tuple[Bucket, ...] = (Bucket.ELIGIBLE, Bucket.HELD_BACK)
"""Rows with a grade the gates look at: may go, or held back by an earlier gate."""

TOTAL_KEYS: tuple[str, ...] = ("considered", *(b.value for b in FINAL))
"""The keys of a report's ``totals`` (and of each course line): the grades considered, then
R17's six buckets (plain strings: report.json, the ledger's run totals, the UI)."""
