"""R12: the Trigger form (Airflow 3.3's Run Parameters) can be submitted with its defaults.

What the form does, from Airflow 3.3's UI source (``components/FlexibleForm``): it receives
each param as the REST API's DAG details give it (``{value, schema, description}``, where
``value`` is the default if it validates against its schema, else null); a param is
*required* when its schema has a ``type`` and that type is not a list that holds "null"
(``isParamRequired.tsx``); a required param whose value is null, undefined or "" marks its
section red and keeps the Trigger button disabled (``FlexibleForm.tsx``). A field the user
empties is sent as null (``FieldString``, ``FieldObject``, ``FieldAdvancedArray``). The API
server then validates the conf against every param's schema (``ParamsDict.validate``).
"""

import json

import jsonschema
import pytest
from airflow.dag_processing.dagbag import DagBag

from canvas_aspen import run_params

NAMES = ("course_ids", "dry_run", "full_resync", "delete_orphans", "category_mappings", "mapping_file")


@pytest.fixture(scope="module")
def dag(repo_root):
    return DagBag(dag_folder=str(repo_root / "dags")).dags["canvas_aspen_grade_passback"]


@pytest.fixture(scope="module")
def served(dag):
    """The params as the API server holds them: the DAG serialised (as the dag-processor
    stores it) and read back."""
    from airflow.serialization.serialized_objects import DagSerialization

    stored = json.loads(json.dumps(DagSerialization.to_dict(dag)))
    return DagSerialization.from_dict(stored).params


@pytest.fixture(scope="module")
def form_params(served):
    """The params as the UI receives them: dumped by the DAG details endpoint, through JSON."""
    from airflow.api_fastapi.core_api.datamodels.dags import DAGDetailsResponse

    return json.loads(json.dumps(DAGDetailsResponse.get_params(served)))


def _required(spec: dict) -> bool:  # isParamRequired.tsx
    kind = spec["schema"].get("type")
    return bool(kind) and (not isinstance(kind, list) or "null" not in kind)


def _blocks_the_form(spec: dict) -> bool:  # FlexibleForm.tsx recheckSection
    return _required(spec) and spec.get("value") in (None, "")


def test_r12_trigger_form_submittable_with_its_defaults(form_params):
    assert set(form_params) == set(NAMES)
    blocking = [name for name, spec in form_params.items() if _blocks_the_form(spec)]
    assert blocking == [], f"the Trigger button would stay disabled because of {blocking}"
    for spec in form_params.values():  # the default survives the API's own schema check
        jsonschema.validate(spec["value"], spec["schema"], format_checker=jsonschema.FormatChecker())


def test_r12_every_field_but_the_flags_may_be_left_empty(form_params, served):
    optional = {n for n, spec in form_params.items() if not _required(spec)}
    assert optional == {"course_ids", "category_mappings", "mapping_file"}
    for name in ("dry_run", "full_resync", "delete_orphans"):  # a checkbox always has a value
        assert form_params[name]["schema"]["type"] == "boolean" and form_params[name]["value"] is False
    # what the form sends when the user emptied every optional field: the API server accepts it
    conf = {n: spec["value"] for n, spec in form_params.items()} | dict.fromkeys(optional)
    for name, value in conf.items():
        jsonschema.validate(value, form_params[name]["schema"])
    served.deep_merge(conf).validate()  # what the API server does with a trigger's conf
    served.deep_merge({n: spec["value"] for n, spec in form_params.items()}).validate()


def test_r12_the_form_keeps_its_field_kinds(form_params):
    """course_ids stays a JSON list of integers, category_mappings a JSON object, mapping_file text."""
    assert form_params["course_ids"]["schema"]["items"] == {"type": "integer"}
    assert [t for t in form_params["course_ids"]["schema"]["type"] if t != "null"] == ["array"]
    assert [t for t in form_params["category_mappings"]["schema"]["type"] if t != "null"] == ["object"]
    assert [t for t in form_params["mapping_file"]["schema"]["type"] if t != "null"] == ["string"]
    jsonschema.validate([101, 102], form_params["course_ids"]["schema"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(["101"], form_params["course_ids"]["schema"])


@pytest.mark.parametrize("empty", [None, "", [], {}])
def test_r12_empty_means_the_default_whichever_empty_the_form_sent(empty):
    base = run_params.normalise(
        {
            "course_ids": [],
            "mapping_file": None,
            "category_mappings": {},
            "dry_run": False,
            "full_resync": False,
            "delete_orphans": False,
        }
    )
    sent = run_params.normalise(
        {
            "course_ids": empty,
            "mapping_file": empty,
            "category_mappings": empty,
            "dry_run": False,
            "full_resync": False,
            "delete_orphans": False,
        }
    )
    assert (
        sent
        == base
        == {
            "course_ids": [],
            "mapping_file": None,
            "category_mappings": {},
            "dry_run": False,
            "full_resync": False,
            "delete_orphans": False,
        }
    )
    assert run_params.mappings(sent) == {}


def test_r12_course_ids_normalised_and_bad_ones_named():
    assert run_params.normalise({"course_ids": [102, "101", 102]})["course_ids"] == [101, 102]
    with pytest.raises(run_params.ParamError, match="abc"):
        run_params.normalise({"course_ids": [101, "abc"]})
