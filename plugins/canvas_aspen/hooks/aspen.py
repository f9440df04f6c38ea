"""Aspen hook (being written under issue 4)."""

from airflow.sdk import BaseHook


class AspenHook(BaseHook):
    conn_name_attr = "aspen_conn_id"
    default_conn_name = "aspen_default"
    conn_type = "aspen"
    hook_name = "Aspen"

    def __init__(self, aspen_conn_id: str = default_conn_name, **kwargs) -> None:
        super().__init__(**kwargs)
        self.aspen_conn_id = aspen_conn_id
