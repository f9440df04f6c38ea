"""R2: Canvas assignment groups <-> Aspen gradebook categories, per Aspen class.

Order of precedence for one (class, group):
1. an explicit per-class mapping (the seed's "Sync SIS Categories" screen): group name
   or group id -> category sourcedId of that class;
2. the exact (trimmed) name: the Canvas group name equals the category's title
   (Aspen's category *Description*);
3. equal up to case and white space: matched, with a warning;
4. otherwise no category: the group's grades are held back, and the finding names the
   closest Aspen category of the class.

We only ever match: categories cannot be created through OneRoster in Aspen.
This module also builds the groups frame the advice suite (R13, R14) checks.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from canvas_aspen import students
from canvas_aspen.oneroster import is_tombstone

IMPORTED_GROUP = "imported assignments"


def _norm(text: str) -> str:
    return " ".join(str(text).split()).casefold()


@dataclass(frozen=True)
class Category:
    sourced_id: str
    title: str
    weight: float | None

    @classmethod
    def from_oneroster(cls, c: dict[str, Any]) -> Category:
        weight = (c.get("metadata") or {}).get("weight")
        try:
            weight = None if weight in (None, "") else float(weight)
        except (TypeError, ValueError):
            weight = None
        return cls(str(c["sourcedId"]), str(c.get("title") or ""), weight)


def active_categories(answer: list[dict[str, Any]]) -> list[Category]:
    """Aspen's categories of a class (tombstones left out); a category without a sourcedId
    is a malformed answer: ValueError naming the endpoint (the class fails, loudly)."""
    for c in answer:
        if not isinstance(c, dict) or not str(c.get("sourcedId") or "").strip():
            raise ValueError(f"Aspen list_categories: a category without a sourcedId ({str(c)[:60]!r})")
    return [Category.from_oneroster(c) for c in answer if not is_tombstone(c.get("status"))]


@dataclass(frozen=True)
class Match:
    category: Category | None
    kind: str  # mapped | exact | case | none
    suggestion: str | None


SUGGEST_MIN_RATIO = 0.6
"""How alike (``difflib`` ratio of the normalised names) a category must read to be suggested:
"Quizzes"/"Quiz" is 0.73 and "Participaton"/"Participation" 0.96, while unrelated names such as
"Imported Assignments"/"Tests" (0.40) or "Essays"/"Tests" (0.55) stay below it."""


def closest(name: str, categories: list[Category]) -> Category | None:
    """The category whose title reads most like ``name`` (for the finding's suggestion), or
    None when even that one is not close (an unrelated category is no suggestion)."""
    if not categories:
        return None
    target = _norm(name)
    ratio = {c.sourced_id: difflib.SequenceMatcher(None, target, _norm(c.title)).ratio() for c in categories}
    best = max(categories, key=lambda c: ratio[c.sourced_id])
    return best if ratio[best.sourced_id] >= SUGGEST_MIN_RATIO else None


def match_group(
    group_id: int, group_name: str, categories: list[Category], mapping: dict[str, str] | None = None
) -> Match:
    """R2 for one Canvas group in one Aspen class."""
    by_id = {c.sourced_id: c for c in categories}
    mapping = mapping or {}
    mapped = mapping.get(str(group_id), mapping.get(group_name.strip()))
    if mapped is not None:
        if mapped in by_id:
            return Match(by_id[mapped], "mapped", None)
        near = closest(group_name, categories)
        return Match(None, "none", near.title if near else None)
    name = group_name.strip()
    exact = [c for c in categories if c.title.strip() == name]
    if exact:
        return Match(exact[0], "exact", None)
    loose = [c for c in categories if _norm(c.title) == _norm(name)]
    if loose:
        return Match(loose[0], "case", loose[0].title)
    near = closest(name, categories)
    return Match(None, "none", near.title if near else None)


def match_table(
    pairs: pd.DataFrame,
    categories: dict[str, list[Category]],
    mappings: dict[str, dict[str, str]] | None = None,
) -> pd.DataFrame:
    """One row per distinct (aspen_class_id, group_id, group_name) in ``pairs`` with the
    match: category_sourced_id, category_title, aspen_category_weight, match_kind,
    category_suggestion and aspen_categories (the class's titles, for the report)."""
    mappings = mappings or {}
    out = []
    keys = (
        pairs[["aspen_class_id", "group_id", "group_name"]]
        .dropna(subset=["aspen_class_id"])
        .drop_duplicates()
    )
    for class_id, group_id, group_name in keys.itertuples(index=False):
        cats = categories.get(class_id, [])
        m = match_group(int(group_id), str(group_name), cats, mappings.get(class_id))
        out.append(
            {
                "aspen_class_id": class_id,
                "group_id": int(group_id),
                "category_sourced_id": m.category.sourced_id if m.category else None,
                "category_title": m.category.title if m.category else None,
                "aspen_category_weight": m.category.weight if m.category else None,
                "match_kind": m.kind,
                "category_suggestion": m.suggestion,
                "aspen_categories": "; ".join(sorted(c.title for c in cats)),
            }
        )
    return pd.DataFrame(
        out,
        columns=[
            "aspen_class_id",
            "group_id",
            "category_sourced_id",
            "category_title",
            "aspen_category_weight",
            "match_kind",
            "category_suggestion",
            "aspen_categories",
        ],
    )


def apply_matches(
    rows: pd.DataFrame, table: pd.DataFrame, rosters: Mapping[str, students.Roster]
) -> pd.DataFrame:
    """The rows with their category columns and the roster match (``students.apply``:
    ``in_roster`` for R16, ``aspen_student_id`` and ``roster_ambiguous`` for R22)."""
    drop = [c for c in table.columns if c in rows.columns and c not in ("aspen_class_id", "group_id")]
    # one dtype for the keys on both sides (an empty frame read back from parquet has float64 columns)
    keys = {"aspen_class_id": object, "group_id": rows["group_id"].dtype}
    merged = (
        rows.drop(columns=drop)
        .astype({"aspen_class_id": object})
        .merge(table.astype(keys), on=["aspen_class_id", "group_id"], how="left")
    )
    return students.apply(merged, rosters)


def groups_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The advice frame: one row per (course, group, class) that holds sendable grades
    (R13 weights, R14 "Imported Assignments", R2 case-only matches)."""
    cols = [
        "canvas_course_id",
        "group_id",
        "aspen_class_id",
        "group_name",
        "group_weight",
        "course_weighted",
        "aspen_category_weight",
        "match_kind",
    ]
    g = rows.dropna(subset=["aspen_class_id"])[cols].drop_duplicates(
        ["canvas_course_id", "group_id", "aspen_class_id"]
    )
    g = g.reset_index(drop=True)
    g["is_imported_group"] = g["group_name"].map(lambda n: _norm(n) == IMPORTED_GROUP)
    g.insert(0, "row_id", range(len(g)))
    return g


def load_mappings(path: Path) -> dict[str, dict[str, str]]:
    """A mapping file: JSON ``{aspen_class_id: {canvas group name or id: category
    sourcedId}}`` or CSV with columns ``aspen_class_id,canvas_group,category_sourced_id``."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        out: dict[str, dict[str, str]] = {}
        for rec in csv.DictReader(io.StringIO(text)):
            out.setdefault(rec["aspen_class_id"].strip(), {})[rec["canvas_group"].strip()] = rec[
                "category_sourced_id"
            ].strip()
        return out
    data = json.loads(text)
    return {str(c): {str(g): str(cat) for g, cat in groups.items()} for c, groups in data.items()}
