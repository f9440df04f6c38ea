"""The category setup sheet: what a teacher types into Aspen (the seed's step 3) for each
Canvas group that has no Aspen category in a class.

Aspen's rules: Code = letters, digits and dashes, no spaces, at most 20 characters (and
unique in the class); Description = the Canvas group name exactly, at most 50 characters;
weight = the Canvas group weight.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import pandas as pd

CODE_MAX = 20
DESCRIPTION_MAX = 50
_NOT_CODE = re.compile(r"[^A-Za-z0-9]+")
CODE_PATTERN = re.compile(rf"^[A-Za-z0-9-]{{1,{CODE_MAX}}}$")


def category_code(name: str, taken: set[str]) -> str:
    """A valid Aspen category Code for ``name``, not in ``taken`` (case-insensitive)."""
    ascii_name = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    base = _NOT_CODE.sub("-", ascii_name).strip("-").upper()[:CODE_MAX].strip("-") or "CATEGORY"
    code, n = base, 1
    while code.upper() in {t.upper() for t in taken}:
        n += 1
        suffix = f"-{n}"
        code = base[: CODE_MAX - len(suffix)].rstrip("-") + suffix
    return code


def _suggestion(value: Any) -> str | None:
    return (
        None
        if value is None or (not isinstance(value, str) and pd.isna(value)) or not str(value).strip()
        else str(value)
    )


def setup_sheet(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """One entry per Aspen class, listing the categories to create there; a group whose
    finding suggests an existing category of nearly the same name carries ``use_existing``
    (use that one: rename the Canvas group or map it) instead of a category to create."""
    if rows.empty or "match_kind" not in rows:
        return []
    missing = rows[rows["match_kind"].eq("none") & rows["aspen_class_id"].notna()]
    missing = missing.drop_duplicates(["aspen_class_id", "group_id"]).sort_values(
        ["aspen_class_id", "group_name"]
    )
    sheet = []
    for class_id, part in missing.groupby("aspen_class_id", sort=True):
        taken: set[str] = set()
        entries = []
        for r in part.to_dict("records"):
            code = category_code(r["group_name"], taken)
            taken.add(code)
            desc = str(r["group_name"]).strip()
            entries.append(
                {
                    "code": code,
                    "description": desc,
                    "description_too_long": len(desc) > DESCRIPTION_MAX,
                    "weight": None if pd.isna(r.get("group_weight")) else float(r["group_weight"]),
                    "canvas_course_id": int(r["canvas_course_id"]),
                    "existing_categories": r.get("aspen_categories") or "",
                    "closest_existing": r.get("category_suggestion"),
                    # the finding's suggestion: a category of nearly that name exists; use it (one answer)
                    "use_existing": _suggestion(r.get("category_suggestion")),
                }
            )
        sheet.append({"aspen_class_id": class_id, "categories": entries})
    return sheet
