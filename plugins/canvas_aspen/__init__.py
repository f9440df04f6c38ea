"""Canvas LMS -> Follett Aspen grade passback.

Pure modules (no Airflow import) hold the rules of ``docs/domain.md``; the hooks in
``canvas_aspen.hooks`` talk to the two systems; the DAG in ``dags/`` is thin glue.
"""

__version__ = "0.1.0"
