"""R21: Aspen's gradebook column codes, and line item titles that never collide on them.

Aspen makes the first ``length`` characters of a line item's title (10 in Aspen; the Aspen
connection's extra ``column_code_length``) its gradebook column code, which must be unique
in the class: a second line item with the same code is refused (``GB column name "…"
already exists``) and there is no API to set the code. "Chapter 1 Quiz" and "Chapter 1
Test" collide.

Per Aspen class, every line item this run would send gets a title whose code is free:

1. every live line item Aspen holds in the class (ours or a teacher's own) keeps its code
   for itself, so nothing sent can collide with it;
2. a line item of ours already in Aspen keeps the title it has there while it still derives
   from its Canvas name (the name itself, or the name made unique in an earlier run): a title
   never flips because a colliding assignment appeared later;
3. every other assignment of the class (in assignment id order, so the older one keeps its
   plain name) gets its Canvas name when that code is free, else the name with a short tag in
   front that makes the code unique: ``#2 Chapter 1 Test`` (``#3 …`` when ``#2`` is taken).
   The whole Canvas name stays readable after the tag.

The assignments taking part are every sendable assignment of the class (the rows frame),
also those without a grade to send tonight, so which one keeps its plain name does not
depend on which was graded first. A ``column_code_collision`` warning names each assignment
sent under another title, and the title. ``length`` 0 turns all of this off. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

import pandas as pd

from canvas_aspen.findings import finding
from canvas_aspen.oneroster import without_tombstones

DEFAULT_LENGTH = 10
TITLE_LIMIT = 255  # what oneroster.line_item_body sends at most
MAX_TAG = 999
_TAGGED = re.compile(r"^#(?P<k>\d+) ", re.S)


def column_code(title: Any, length: int = DEFAULT_LENGTH) -> str:
    """The column code Aspen makes of a title: its first ``length`` characters, trimmed,
    compared without regard to case."""
    return str(title or "").strip()[:length].strip().casefold()


def tagged(title: str, k: int) -> str:
    """The title made unique with tag ``k`` (k >= 2): ``#k <Canvas name>``."""
    return f"#{k} {title}"[:TITLE_LIMIT]


def derives_from(aspen_title: Any, base: str) -> bool:
    """Is ``aspen_title`` what this module makes of the Canvas name ``base``: the name itself,
    or the name with a tag (so the Canvas name has not changed since it was sent)?"""
    if not isinstance(aspen_title, str):
        return False
    if aspen_title == base:
        return True
    m = _TAGGED.match(aspen_title)
    return bool(m) and int(m["k"]) >= 2 and tagged(base, int(m["k"])) == aspen_title


class Titles(NamedTuple):
    """``titles``: line_item_id -> the title to send; ``collisions``: line_item_id -> the title
    of what its Canvas name collides with (None when kept from an earlier run and nothing
    collides any more), for the line items sent under a title that is not their Canvas name."""

    titles: dict[str, str]
    collisions: dict[str, str | None]


def unique_titles(items: pd.DataFrame, aspen_items: pd.DataFrame, length: int = DEFAULT_LENGTH) -> Titles:
    """R21 over every class at once.

    ``items``: one row per line item taking part (``line_item_id``, ``aspen_class_id``,
    ``assignment_id``, ``title`` = the title from the Canvas name); ``aspen_items``: what Aspen
    holds now (``line_item_id``, ``aspen_class_id``, ``title``[, ``status``])."""
    base = dict(zip(items["line_item_id"], items["title"], strict=True))
    if length <= 0 or items.empty:
        return Titles({str(k): str(v) for k, v in base.items()}, {})
    live = without_tombstones(aspen_items)
    held_by_class: dict[str, dict[str, str]] = {}
    for sid, cls, title in zip(live["line_item_id"], live["aspen_class_id"], live["title"], strict=True):
        if isinstance(sid, str) and isinstance(cls, str):
            held_by_class.setdefault(cls, {})[sid] = title if isinstance(title, str) else ""
    titles: dict[str, str] = {}
    collisions: dict[str, str | None] = {}
    ordered = items.sort_values(["aspen_class_id", "assignment_id", "line_item_id"], kind="stable")
    for cls, group in ordered.groupby("aspen_class_id", sort=False):
        t, c = _class_titles(group["line_item_id"].tolist(), base, held_by_class.get(cls, {}), length)
        titles.update(t)
        collisions.update(c)
    for sid in base:  # rows without a class take no part (they are never sent)
        titles.setdefault(str(sid), str(base[sid]))
    return Titles(titles, collisions)


def _class_titles(
    ids: list[str], base: Mapping[str, str], held: Mapping[str, str], length: int
) -> tuple[dict[str, str], dict[str, str | None]]:
    owners: dict[str, set[str]] = {}  # code -> who holds it (Aspen's line items, then ours as decided)
    title_of: dict[str, str] = dict(held)
    for sid, title in held.items():
        owners.setdefault(column_code(title, length), set()).add(sid)

    def free(code: str, sid: str) -> bool:
        return owners.get(code, set()) <= {sid}

    def take(sid: str, title: str) -> None:
        owners.setdefault(column_code(title, length), set()).add(sid)
        title_of[sid] = title

    titles: dict[str, str] = {}
    for sid in ids:  # 2. kept from an earlier run while the Canvas name is unchanged
        now = held.get(sid)
        if now is not None and derives_from(now, base[sid]) and free(column_code(now, length), sid):
            titles[sid] = now
    for sid in ids:  # 3. the Canvas name, or the name made unique
        if sid in titles:
            continue
        name = base[sid]
        chosen = name
        if not free(column_code(name, length), sid):
            chosen = next(
                (
                    tagged(name, k)
                    for k in range(2, MAX_TAG + 1)
                    if free(column_code(tagged(name, k), length), sid)
                ),
                name,
            )
        titles[sid] = chosen
        take(sid, chosen)
    collisions: dict[str, str | None] = {}
    for sid in ids:
        if titles[sid] != base[sid]:
            code = column_code(base[sid], length)
            other = sorted(o for o in owners.get(code, set()) if o != sid)
            collisions[sid] = title_of[other[0]] if other else None
    return titles, collisions


def collision_findings(sent: pd.DataFrame, titles: Titles, length: int) -> list[dict[str, Any]]:
    """One ``column_code_collision`` warning per line item in ``sent`` (``line_item_id``,
    ``canvas_course_id``, ``aspen_class_id``, ``assignment_id``, ``assignment_name``,
    ``group_name``, ``title`` = its Canvas name) that goes under another title."""
    out = []
    for r in sent.to_dict("records"):
        sid = r["line_item_id"]
        if sid not in titles.collisions:
            continue
        title, other, name = titles.titles[sid], titles.collisions[sid], r["title"]
        why = (
            f"its first {length} characters ({column_code(name, length)!r}) are Aspen's column code of "
            f"'{other}' too"
            if other is not None
            else "it was made unique in an earlier run and keeps that title while its Canvas name "
            "is unchanged"
        )
        out.append(
            finding(
                "column_code_collision",
                f"'{name}' goes to Aspen class {r['aspen_class_id']} as '{title}': {why}",
                canvas_course_id=_int(r.get("canvas_course_id")),
                aspen_class_id=r["aspen_class_id"],
                assignment_id=_int(r.get("assignment_id")),
                assignment_name=r.get("assignment_name"),
                group_name=r.get("group_name"),
                value=title,
                limit=column_code(title, length),
                suggestion=(
                    f"Rename one of the assignments in Canvas so that their first {length} characters differ"
                ),
            )
        )
    return out


def _int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def participants(rows: pd.DataFrame, title_of: Any) -> pd.DataFrame:
    """The line items taking part: one per line_item_id of the rows that have an Aspen class,
    with ``title`` = ``title_of(row)`` (the title from the Canvas name)."""
    firsts = rows.dropna(subset=["aspen_class_id"]).drop_duplicates("line_item_id")
    cols = ["line_item_id", "aspen_class_id", "assignment_id", "assignment_name"]
    out = firsts[cols].reset_index(drop=True)
    out["title"] = [title_of(r) for r in firsts.to_dict("records")]
    return out
