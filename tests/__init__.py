"""The test suite: unit/, integration/, e2e/, reliability/ (README.md, section Tests)."""
