"""docs/design.md's table "Where each rule lives" cannot drift: every rule R1-R22 of domain.md
has a row, every module it names exists, and every test it names exists in tests/."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DESIGN = REPO / "docs" / "design.md"
RULES = [f"R{i}" for i in range(1, 23)]
_TEST = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")
_MODULE = re.compile(r"`((?:[\w]+/)*[\w]+\.(?:py|json))`")


def _table() -> dict[str, tuple[str, str]]:
    """rule -> (its modules cell, its tests cell)."""
    text = DESIGN.read_text(encoding="utf-8")
    section = text.split("## Where each rule lives", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"R\d+", cells[0]):
            assert cells[0] not in rows, f"{cells[0]} has two rows"
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def _module_exists(name: str) -> bool:
    return (REPO / "plugins" / "canvas_aspen" / name).is_file() or (REPO / name).is_file()


def test_every_rule_r1_to_r22_has_one_row_with_a_module_and_a_test():
    table = _table()
    assert not set(RULES) - set(table), f"rules without a row: {sorted(set(RULES) - set(table))}"
    assert not set(table) - set(RULES), f"rows for no rule: {sorted(set(table) - set(RULES))}"
    for rule, (modules, tests) in table.items():
        assert _MODULE.search(modules), f"{rule}: no module named"
        assert _TEST.search(tests), f"{rule}: no test named"


def test_every_module_and_test_the_rules_table_names_exists():
    missing = []
    names: dict[Path, set[str]] = {}
    for rule, (modules, tests) in _table().items():
        missing += [f"{rule}: module {m}" for m in _MODULE.findall(modules) if not _module_exists(m)]
        for path, test in _TEST.findall(tests):
            file = REPO / path
            if not file.is_file():
                missing.append(f"{rule}: {path}")
                continue
            if test not in names.setdefault(file, _test_names(file)):
                missing.append(f"{rule}: {path}::{test}")
    assert not missing, missing


def _section(title: str) -> str:
    return DESIGN.read_text(encoding="utf-8").split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_the_rows_frame_table_names_every_column_the_stages_write():
    import pandas as pd

    from canvas_aspen import match, rows, students
    from canvas_aspen.stages.post import REFUSED

    written = set(rows.COLUMNS) | {"error", "held_kinds", REFUSED}
    written |= set(
        match.match_table(pd.DataFrame(columns=["aspen_class_id", "group_id", "group_name"]), {}).columns
    )
    written |= set(students.StudentMatch._fields)
    documented = set(
        re.findall(
            r"`(\w+)`",
            "\n".join(
                line.split("|")[1]
                for line in _section("The rows frame").splitlines()
                if line.startswith("| `")
            ),
        )
    )
    assert not written - documented, f"rows columns missing in docs/design.md: {sorted(written - documented)}"


def test_the_stage_files_table_names_every_file_the_stages_write():
    source = "\n".join(
        p.read_text(encoding="utf-8")
        for p in sorted((REPO / "plugins" / "canvas_aspen" / "stages").glob("*.py"))
    )
    written = set(re.findall(r"\"([a-z][\w-]*\.(?:json|parquet))\"", source))
    documented = _section("Stage files")
    missing = sorted(name for name in written if f"`{name}`" not in documented)
    assert not missing, f"stage files missing in docs/design.md: {missing}"
