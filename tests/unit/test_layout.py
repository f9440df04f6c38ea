"""The tests keep the one layout README.md's "Tests" section gives: every test module is in
tests/unit, tests/integration/<part>, tests/e2e or tests/reliability, and every folder is a
package (so no two modules share a name and no test folder shadows ``sandbox`` or ``bench``)."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
TOP = {"unit", "e2e", "reliability"}


def _folders() -> list[Path]:
    """tests/ and every folder under it (caches left out)."""
    found = [
        p for p in TESTS.rglob("*") if p.is_dir() and p.name != "__pycache__" and not p.name.startswith(".")
    ]
    return [TESTS, *sorted(found)]


def test_every_test_module_is_in_a_folder_of_the_layout():
    misplaced = []
    for path in sorted(TESTS.rglob("test_*.py")):
        parts = path.relative_to(TESTS).parts
        in_top = parts[0] in TOP and len(parts) >= 2
        in_part = parts[0] == "integration" and len(parts) >= 3
        if not (in_top or in_part):
            misplaced.append(str(path.relative_to(TESTS.parent)))
    assert not misplaced, (
        f"{misplaced}: a test module goes in tests/unit (pure logic), tests/integration/<part>, "
        "tests/e2e or tests/reliability (README.md, section Tests)"
    )


def test_every_test_folder_is_a_package():
    bare = [str(p.relative_to(TESTS.parent)) for p in _folders() if not (p / "__init__.py").is_file()]
    assert not bare, f"{bare}: add an __init__.py"
