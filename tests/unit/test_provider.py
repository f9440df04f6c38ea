"""The package registers itself as an Airflow provider with two connection types."""

from airflow.providers_manager import ProvidersManager


def test_provider_is_registered_with_both_connection_types():
    pm = ProvidersManager()
    assert "canvas-aspen-passback" in pm.providers
    hooks = pm.hooks
    assert hooks["canvas"].hook_class_name == "canvas_aspen.hooks.canvas.CanvasHook"
    assert hooks["aspen"].hook_class_name == "canvas_aspen.hooks.aspen.AspenHook"
    assert hooks["canvas"].package_name == "canvas-aspen-passback"
    assert hooks["aspen"].connection_id_attribute_name == "aspen_conn_id"
