"""Canvas hook (being written under issue 4)."""

from airflow.sdk import BaseHook


class CanvasHook(BaseHook):
    conn_name_attr = "canvas_conn_id"
    default_conn_name = "canvas_default"
    conn_type = "canvas"
    hook_name = "Canvas"

    def __init__(self, canvas_conn_id: str = default_conn_name, **kwargs) -> None:
        super().__init__(**kwargs)
        self.canvas_conn_id = canvas_conn_id
