"""Sandbox district: faithful stand-ins for Canvas LMS and Follett Aspen (OneRoster 1.1).

Used by the demo, the tests and the benchmark; never deployed with the DAG. Run from the
repository root: ``python -m sandbox serve --scenario demo``. See ``sandbox/README.md``.
"""
