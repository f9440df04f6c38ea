"""The trigger form's params: one shape for the stages, and the checks made before any work.

Airflow's Trigger form sends ``null`` for a field the user emptied (and a param left at its
default may be ``null``, ``""``, ``[]`` or ``{}``): every optional param here means "use the
default" when empty, whichever of these it is. No Airflow import: the DAG's ``plan`` task
calls :func:`normalise` and :func:`check` and turns :class:`ParamError` into a failure that
is not retried.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from canvas_aspen.errors import ApiError
from canvas_aspen.settings import parse_flag

BOOLEANS = ("dry_run", "full_resync", "delete_orphans")


class ParamError(ValueError):
    """A trigger-form param that cannot work (a retry would fail the same way)."""


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == [] or value == {}


def _course_ids(value: Any) -> list[int]:
    if _empty(value):
        return []
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ParamError(f"course_ids must be a list of Canvas course ids, not {type(value).__name__}")
    out, bad = [], []
    for v in value:
        try:
            if isinstance(v, bool) or isinstance(v, float) and not v.is_integer():
                raise ValueError
            out.append(int(v))
        except (TypeError, ValueError):
            bad.append(v)
    if bad:
        raise ParamError(f"course_ids must be whole numbers (Canvas course ids); not: {bad!r}")
    return sorted(set(out))


def _mappings(value: Any) -> dict[str, dict[str, str]]:
    if _empty(value):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ParamError(f"category_mappings is not JSON: {exc}") from None
    if not isinstance(value, dict) or not all(isinstance(g, dict) for g in value.values()):
        raise ParamError(
            'category_mappings must be {"<Aspen class id>": {"<Canvas group name or id>": '
            '"<Aspen category sourcedId>"}}'
        )
    return {str(c): {str(k): str(v) for k, v in groups.items()} for c, groups in value.items()}


def _flag(name: str, value: Any) -> bool:
    if value is None or value == "":
        return False
    try:
        return parse_flag(value)
    except ValueError:
        raise ParamError(f"{name} must be true or false, not {value!r}") from None


def normalise(params: dict[str, Any]) -> dict[str, Any]:
    """The params in one shape: ``course_ids`` a sorted list of ints (``[]`` = every course),
    ``mapping_file`` a path string or None, ``category_mappings`` a dict, the flags booleans.
    Other keys (a deployment's own) are kept as they are."""
    out = dict(params)
    out["course_ids"] = _course_ids(params.get("course_ids"))
    path = params.get("mapping_file")
    out["mapping_file"] = None if _empty(path) else str(path).strip()
    out["category_mappings"] = _mappings(params.get("category_mappings"))
    for name in BOOLEANS:
        out[name] = _flag(name, params.get(name))
    return out


def load_mapping_file(path: str | None) -> dict[str, dict[str, str]]:
    """The mapping file's overrides ({} without one); a ParamError naming the path when it is
    missing, unreadable or not a mapping file."""
    if not path:
        return {}
    from canvas_aspen.match import load_mappings

    p = Path(path)
    if not p.is_file():
        raise ParamError(f"mapping_file {path}: no such file (the path is read on the Airflow worker)")
    try:
        return load_mappings(p)
    except (OSError, UnicodeDecodeError) as exc:
        raise ParamError(f"mapping_file {path}: cannot be read ({type(exc).__name__}: {exc})") from None
    except (ValueError, KeyError, AttributeError, TypeError) as exc:
        what = (
            "CSV with columns aspen_class_id,canvas_group,category_sourced_id"
            if p.suffix.lower() == ".csv"
            else 'JSON {"<Aspen class id>": {"<Canvas group>": "<category sourcedId>"}}'
        )
        raise ParamError(
            f"mapping_file {path}: not a mapping file ({what}): {type(exc).__name__}: {exc}"[:500]
        ) from None


def mappings(params: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Per-class category mapping overrides: the trigger form's object, over the file's."""
    params = normalise(params)
    merged = load_mapping_file(params["mapping_file"])
    for class_id, groups in params["category_mappings"].items():
        merged.setdefault(class_id, {}).update(groups)
    return merged


def check(canvas, params: dict[str, Any]) -> dict[str, Any]:
    """Before any work: the mapping file exists and parses, and every course named in
    ``course_ids`` exists in Canvas (one error naming all that do not). Returns the
    normalised params; raises ParamError."""
    params = normalise(params)
    mappings(params)
    wanted = params["course_ids"]
    if wanted:
        answers = canvas.map_concurrent(canvas.get_course, wanted, on_error="collect")
        missing = [
            c for c, a in zip(wanted, answers, strict=True) if isinstance(a, ApiError) and a.status == 404
        ]
        if missing:
            raise ParamError(
                f"course_ids: Canvas has no course with id {', '.join(map(str, missing))} "
                "(nothing was read or posted)"
            )
        failed = next((a for a in answers if isinstance(a, BaseException)), None)
        if failed is not None:
            raise failed
    return params
