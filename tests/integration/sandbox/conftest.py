"""The sandbox's own tests: a demo sandbox that is reset after each test."""

from __future__ import annotations

import pytest


@pytest.fixture
def demo(demo_sandbox):
    """The session's demo sandbox, reset (state, faults, settings, stats) after the test."""
    yield demo_sandbox
    demo_sandbox.reset()
