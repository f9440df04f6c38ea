"""Deterministic Aspen sourcedIds derived from Canvas ids only.

A rerun computes the same ids and so PUTs to the same resources: it updates, it never
duplicates. Only line items whose id carries ``PREFIX`` are ever treated as ours.
"""

from __future__ import annotations

import re

PREFIX = "canvas-"
_LINE_ITEM = re.compile(r"^canvas-a(?P<assignment>\d+)-s(?P<section>\d+)$")


def run_folder_name(run_id: str) -> str:
    """The folder of one run (stage files, reports): letters, digits and ``-_.+`` of the run id,
    anything else ``_``. The report stage writes there and the UI plugin looks there."""
    return "".join(ch if ch.isalnum() or ch in "-_.+" else "_" for ch in run_id)


def line_item_id(assignment_id: int, section_id: int) -> str:
    """One line item per Canvas assignment per Aspen class (= Canvas section)."""
    return f"{PREFIX}a{int(assignment_id)}-s{int(section_id)}"


def result_id(assignment_id: int, section_id: int, user_id: int) -> str:
    return f"{line_item_id(assignment_id, section_id)}-u{int(user_id)}"


def parse_line_item_id(sourced_id: str) -> tuple[int, int] | None:
    """(assignment_id, section_id) of one of our line items, None for anybody else's."""
    if not isinstance(sourced_id, str):  # e.g. an Aspen record without a sourcedId
        return None
    m = _LINE_ITEM.match(sourced_id)
    return (int(m["assignment"]), int(m["section"])) if m else None
