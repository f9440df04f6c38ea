"""The validation gate: Great Expectations suites decide which rows are held back.

The suites are GX 1.x JSON files in ``expectations/`` (one file per suite, see its README).
Every expectation's ``meta`` says which finding a failure produces:

``kind``, ``rule``, ``severity``
    a kind of :data:`canvas_aspen.findings.KINDS` and copies of its rule and severity (checked
    at load time, so a suite cannot drift from the vocabulary). ``error`` holds rows back;
    ``warning`` only reports.
``finding_key``
    the columns that identify one finding: ``["row_id"]`` gives one per row,
    ``["aspen_class_id", "group_name"]`` one per group per class.
``message``
    a :meth:`str.format` template over the frame's columns.
``value_column``, ``limit_column``, ``suggestion_column`` (optional)
    the columns that fill the finding's ``value``, ``limit`` and ``suggestion``.

:func:`run_gate` validates one frame in a fresh ephemeral GX context (nothing on disk is
shared by concurrent tasks) with a COMPLETE result format that names every failing row by
``row_id``. **The rows that ``error`` expectations flag are exactly the rows held back**: they
are read from GX's ``unexpected_index_list`` and from nowhere else. An expectation GX could not
evaluate raises :class:`GateError`; it never lets rows through.

Data Docs are built once per run, not per gate call: a gate call asked for them
(``data_docs=True``) hands back GX's validation results serialized (:attr:`GateResult.stored`,
GX's own JSON with the key its validation results store files each under); the stages keep
them beside their stage files, and the report task gives every shard's results to
:func:`build_data_docs`, which renders one site for the run. GX leaves the failing values out
of its results (:data:`RESULT_FORMAT`); the serialized results get them from the frame
(:func:`with_samples`), so each failed expectation's page shows its "sample unexpected
values" table.

No Airflow import here; Great Expectations is imported on first use (it takes seconds), so
importing this module at DAG-parse time stays cheap.
"""

from __future__ import annotations

import json
import logging
import math
import os
import string
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from canvas_aspen.findings import FIELDS, KINDS, finding, urgency
from canvas_aspen.settings import env_flag

EXPECTATIONS_DIR_ENV = "CANVAS_ASPEN_EXPECTATIONS_DIR"
DATA_DOCS_ENV = "CANVAS_ASPEN_DATA_DOCS"  # "off": no Data Docs, whatever the caller asks
REPO_EXPECTATIONS_DIR = Path(__file__).resolve().parents[2] / "expectations"
ROW_ID = "row_id"
# GX names each unexpected row by the frame's index, ``row_id``, and leaves the unexpected values
# out ({"row_id": [ids]}): collecting them cell by cell cost GX a third of its time on a district
# shard, and the findings read the values from the frame anyway. (The Data Docs results get them
# from the frame too: with_samples.)
RESULT_FORMAT = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": [ROW_ID],
    "exclude_unexpected_values": True,
}
BLOCKING = "error"

_META_KEYS = ("kind", "rule", "severity", "finding_key", "message")
_COLUMN_META_KEYS = {"value": "value_column", "limit": "limit_column", "suggestion": "suggestion_column"}
# Report fields that an identifying column brings into a finding: they cannot vary within it.
_BROUGHT_BY = {"assignment_id": ("assignment_name", "group_name"), "group_id": ("group_name",)}
_DOCS_SITE = "canvas_aspen_gate"
_SAMPLE_COUNTS = 20  # GX's partial_unexpected_count: the values a Data Docs table lists
_ABSENT = "(none)"

log = logging.getLogger(__name__)


class GateError(RuntimeError):
    """GX could not evaluate an expectation, so the gate cannot say which rows pass.

    Carries the suite's validation result (JSON-able) for the report, like the GX provider's
    ``GXValidationFailed``.
    """

    def __init__(self, suite: str, expectation: Mapping[str, Any], reason: str, result: dict):
        kind = expectation.get("meta", {}).get("kind")
        super().__init__(
            f"suite {suite!r}: {expectation.get('type')} ({kind}) could not be evaluated: {reason}"
        )
        self.suite = suite
        self.expectation = dict(expectation)
        self.result = result


@dataclass
class GateResult:
    """What one gate run decided.

    ``held_back`` maps a ``row_id`` to the kinds of the blocking expectations that flagged it
    (most urgent first); ``findings`` holds one report finding per kind and ``finding_key``;
    ``statistics`` counts expectations per suite; ``results`` are GX's validation results per
    suite as plain JSON (non-finite numbers as strings), converted on first use (on a district
    shard the conversion costs more than a second, and the stages never read it). ``stored``:
    the results for the run's Data Docs (:func:`stored_results`) when the call asked for them.
    """

    held_back: dict[int, list[str]]
    findings: list[dict[str, Any]]
    statistics: dict[str, dict[str, int]]
    gx_results: Mapping[str, Any] = field(default_factory=dict, repr=False)
    stored: list[dict[str, Any]] | None = field(default=None, repr=False)
    timings: dict[str, float] = field(default_factory=dict)
    _results_json: dict[str, dict[str, Any]] | None = field(default=None, init=False, repr=False)

    @property
    def results(self) -> dict[str, dict[str, Any]]:
        if self._results_json is None:
            self._results_json = {name: _result_json(r) for name, r in self.gx_results.items()}
        return self._results_json


# --------------------------------------------------------------------------- the suites


def expectations_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Where the suite files live: ``override``, else ``$CANVAS_ASPEN_EXPECTATIONS_DIR``,
    else the repository's ``expectations/`` (next to ``plugins/``)."""
    chosen = override or os.environ.get(EXPECTATIONS_DIR_ENV)
    return Path(chosen) if chosen else REPO_EXPECTATIONS_DIR


def load_suite(name: str, directory: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The suite ``name`` as a GX 1.x suite dict, its finding metadata checked."""
    path = expectations_dir(directory) / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no suite file {path}; set {EXPECTATIONS_DIR_ENV} to the directory of the suites"
        )
    suite = json.loads(path.read_text(encoding="utf-8"))
    if suite.get("name") != name:
        raise ValueError(f"{path}: suite name {suite.get('name')!r} is not {name!r}")
    if not suite.get("expectations"):
        raise ValueError(f"{path}: suite has no expectations")
    for position, expectation in enumerate(suite["expectations"]):
        _check_meta(f"{path} expectation {position}", expectation.get("meta") or {})
    return suite


def _check_meta(where: str, meta: Mapping[str, Any]) -> None:
    missing = [key for key in _META_KEYS if key not in meta]
    if missing:
        raise ValueError(f"{where}: meta lacks {missing}")
    kind = meta["kind"]
    if kind not in KINDS:
        raise ValueError(f"{where}: unknown finding kind {kind!r}")
    rule, severity, _ = KINDS[kind]
    if (meta["rule"], meta["severity"]) != (rule, severity):
        raise ValueError(
            f"{where}: kind {kind!r} is rule {rule} severity {severity!r}, meta says "
            f"{meta['rule']} {meta['severity']!r}"
        )
    key = meta["finding_key"]
    if not key or not isinstance(key, list) or not all(isinstance(c, str) for c in key):
        raise ValueError(f"{where}: finding_key must be a non-empty list of column names")


def _reported_columns(meta: Mapping[str, Any]) -> set[str]:
    """The frame columns a finding of this expectation reads."""
    from_message = {name for _, name, _, _ in string.Formatter().parse(meta["message"]) if name}
    from_meta = {meta[key] for key in _COLUMN_META_KEYS.values() if meta.get(key)}
    return set(meta["finding_key"]) | from_message | from_meta


def _is_blocking(meta: Mapping[str, Any]) -> bool:
    return meta["severity"] == BLOCKING


# --------------------------------------------------------------------------- the frame


def _prepared(frame: pd.DataFrame, suites: Mapping[str, dict]) -> pd.DataFrame:
    """The frame as GX sees it: a plain index, a unique ``row_id``, and the derived columns."""
    frame = frame.reset_index(drop=True)
    expectations = [e for suite in suites.values() for e in suite["expectations"]]
    if ROW_ID not in frame.columns:
        if any(_is_blocking(e["meta"]) for e in expectations):
            raise ValueError(f"a frame checked by blocking expectations needs a {ROW_ID!r} column")
        frame[ROW_ID] = np.arange(len(frame))  # warnings only: rows are just numbered
    if not frame[ROW_ID].is_unique:
        raise ValueError(f"{ROW_ID!r} is not unique in the frame")
    if {"group_weight", "aspen_category_weight"} <= set(frame.columns):
        # R13's tolerance: GX compares a column with a constant, not two columns within one.
        difference = pd.to_numeric(frame["group_weight"]) - pd.to_numeric(frame["aspen_category_weight"])
        frame["weight_difference"] = difference.abs()
    missing = {c for e in expectations for c in _reported_columns(e["meta"])} - set(frame.columns)
    if missing:
        raise ValueError(f"the frame lacks columns the findings report: {sorted(missing)}")
    return frame


# --------------------------------------------------------------------------- running GX


def _import_gx():
    """Great Expectations, with its INFO chatter kept out of task logs: its logger is raised to
    WARNING before the (noisy) import, and again after it for modules that set their own level."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx

    for name, logger in list(logging.root.manager.loggerDict.items()):
        # inherit WARNING; only loggers with a level of their own are touched: every setLevel
        # clears the logging cache of all loggers, and GX has hundreds (seconds per night)
        if (
            name.startswith("great_expectations.")
            and isinstance(logger, logging.Logger)
            and logger.level != logging.NOTSET
        ):
            logger.setLevel(logging.NOTSET)
    return gx


def load_great_expectations() -> None:
    """Import Great Expectations now (an Airflow worker preloading it for its task processes)."""
    _import_gx()


def _ephemeral_context(data_docs_dir: Path | None):
    """A fresh in-memory GX context: no progress bars, no analytics, at most one local docs site."""
    gx = _import_gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites = {}
    if data_docs_dir is not None:
        sites[_DOCS_SITE] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(data_docs_dir),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        data_docs_sites=sites,
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


# Column-level expectation types: GX reads only their column kwargs and row conditions, so
# the gate hands GX only those columns (the findings are built from the whole frame).
_COLUMN_LEVEL = {
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_null",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set",
    "expect_column_pair_values_a_to_be_greater_than_b",
    "expect_column_pair_values_to_be_equal",
}


def _condition_columns(condition: Any) -> set[str] | None:
    """Columns a structured row condition reads; None for a form this does not understand."""
    if condition is None:
        return set()
    if not isinstance(condition, Mapping):
        return None  # e.g. a pandas query string: any column may be named
    columns: set[str] = set()
    column = condition.get("column")
    if isinstance(column, Mapping) and isinstance(column.get("name"), str):
        columns.add(column["name"])
    elif column is not None:
        return None
    for part in condition.get("conditions") or []:
        inner = _condition_columns(part)
        if inner is None:
            return None
        columns |= inner
    return columns


def _gx_frame(frame: pd.DataFrame, suites: Mapping[str, dict]) -> pd.DataFrame:
    """The columns GX needs: each expectation's columns and row-condition columns, and
    ``row_id`` (named in every unexpected row). Hashing, filtering and copying a frame of
    30 columns cost GX most of its time on a district shard; the results are the same.
    Anything but plain column expectations gets the whole frame."""
    wanted = {ROW_ID}
    for spec in suites.values():
        for expectation in spec["expectations"]:
            kwargs = expectation.get("kwargs") or {}
            condition = _condition_columns(kwargs.get("row_condition"))
            if expectation.get("type") not in _COLUMN_LEVEL or condition is None:
                return frame
            wanted |= condition
            wanted |= {
                v for k, v in kwargs.items() if k in ("column", "column_A", "column_B") and isinstance(v, str)
            }
    return frame[[c for c in frame.columns if c in wanted]]


def _validate(context, frame: pd.DataFrame, suites: Mapping[str, dict], run_name: str) -> dict:
    """GX's validation result per suite: one GX Validator runs every suite on one whole-frame
    batch, and nothing is put into a store. Each result carries its run id in ``meta`` (GX's
    ``ValidationDefinition.run`` puts it there too; its Data Docs page shows it)."""
    gx = _import_gx()
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.validator.v1_validator import Validator

    frame = _gx_frame(frame, suites).set_index(ROW_ID)
    batch = (
        context.data_sources.add_pandas("frame")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("frame")
    )
    run_id = RunIdentifier(run_name=run_name)
    validator = Validator(
        batch_definition=batch, batch_parameters={"dataframe": frame}, result_format=RESULT_FORMAT
    )
    results = {}
    for name, spec in suites.items():
        suite = context.suites.add(gx.ExpectationSuite(**spec))
        if len(suite.expectations) != len(spec["expectations"]):
            # GX logs and drops an expectation whose configuration it cannot build.
            raise ValueError(
                f"suite {name!r}: GX accepted {len(suite.expectations)} of "
                f"{len(spec['expectations'])} expectations (see the GX error above)"
            )
        result = validator.validate_expectation_suite(suite)
        result.meta["run_id"] = run_id
        result.meta["validation_time"] = run_id.run_time
        results[name] = result
    return results


# --------------------------------------------------------------------------- Data Docs, once per run


def stored_results(results: Mapping[str, Any], frame: pd.DataFrame) -> list[dict[str, Any]]:
    """GX's validation results of ``frame`` as a JSON list for the run's Data Docs: per suite,
    ``key`` (the ``ValidationResultIdentifier`` a validation results store files it under, as its
    tuple: suite, run name, run time, batch id) and ``result`` (GX's JSON of the
    ``ExpectationSuiteValidationResult``, which leaves the batch id out), its failing values
    filled in from ``frame`` (:func:`with_samples`)."""
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    rows = frame.set_index(ROW_ID)
    return [
        {
            "key": list(
                ValidationResultIdentifier(
                    ExpectationSuiteIdentifier(name=result.suite_name), result.meta["run_id"], result.batch_id
                ).to_tuple()
            ),
            "result": with_samples(result.to_json_dict(), rows),
        }
        for result in results.values()
    ]


def with_samples(result: dict[str, Any], rows: pd.DataFrame) -> dict[str, Any]:
    """``result`` (GX's JSON of one suite's validation result, values left out) with each failed
    expectation's failing values from ``rows`` (the gated frame indexed by ``row_id``), in GX's
    own shapes, for its Data Docs "sample unexpected values" table.

    GX's renderer (``Expectation._diagnostic_unexpected_table_renderer``, the same for every
    expectation type) draws the table when ``partial_unexpected_counts`` is there, and, given an
    ``unexpected_index_list``, builds it from that list: its rows grouped by their values, shown
    as value, count and ``row_id``s (the first as many groups as ``partial_unexpected_counts``
    holds). So these two are filled, as GX's COMPLETE format fills them when it collects the
    values: ``unexpected_index_list`` one ``{<column>: value, ..., "row_id": id}`` per failing
    row (``partial_unexpected_index_list`` its first 20, as GX keeps it), and
    ``partial_unexpected_counts`` the 20 most common values with their counts, a pair's value as
    ``[a, b]``. The columns are the expectation's ``column``, ``column_A`` and ``column_B``, or
    ``column_list``; an expectation on a column called ``*name*`` keeps GX's result as it is (no
    student's name in the site: it shows SIS ids and scores, like findings.csv)."""
    for outcome in result["results"]:
        listed = (outcome.get("result") or {}).get("unexpected_index_list")
        columns = _sample_columns(outcome["expectation_config"]["kwargs"])
        if outcome["success"] or not listed or not columns or any("name" in c for c in columns):
            continue
        row_ids = _listed_row_ids(listed)
        values = [
            tuple(None if v is pd.NA else _plain(v) for v in row)
            for row in rows.loc[row_ids, columns].to_numpy(dtype=object)
        ]
        index_list = [
            {**dict(zip(columns, value, strict=True)), ROW_ID: row_id}
            for value, row_id in zip(values, row_ids, strict=True)
        ]
        counts = sorted(Counter(values).items(), key=lambda item: (-item[1], str(item[0])))
        outcome["result"].update(
            unexpected_index_list=index_list,
            partial_unexpected_index_list=index_list[:_SAMPLE_COUNTS],
            partial_unexpected_counts=[
                {"value": value[0] if len(columns) == 1 else list(value), "count": count}
                for value, count in counts[:_SAMPLE_COUNTS]
            ],
        )
    return result


def _sample_columns(kwargs: Mapping[str, Any]) -> list[str]:
    """The columns an expectation's failing values are taken from (none: not a column expectation)."""
    if isinstance(kwargs.get("column"), str):
        return [kwargs["column"]]
    if isinstance(kwargs.get("column_A"), str) and isinstance(kwargs.get("column_B"), str):
        return [kwargs["column_A"], kwargs["column_B"]]
    return list(kwargs.get("column_list") or [])


def build_data_docs(
    stored: Iterable[Mapping[str, Any]],
    site_dir: str | os.PathLike[str],
    *,
    expectations_path: str | os.PathLike[str] | None = None,
) -> Path:
    """One GX Data Docs site in ``site_dir`` of every stored result (:func:`stored_results`, of
    any number of gate calls): one ephemeral context, the results put into its validation
    results store, the suites they name into its suite store, ``build_data_docs`` once. GX's
    own ``index.html`` then lists every result (its run name says the shard and stage) and the
    suites they ran (with no results: an index that lists none). Returns the index."""
    from great_expectations.data_context.types.resource_identifiers import ValidationResultIdentifier

    clock = _Stopwatch()
    gx = _import_gx()
    site_dir = Path(site_dir)
    context = _ephemeral_context(site_dir)
    clock.lap("context")
    store = context.validation_results_store
    names: Counter[str] = Counter()
    for entry in stored:
        key = ValidationResultIdentifier.from_tuple(tuple(entry["key"]))
        store.set(key, store.deserialize(entry["result"]))
        names[key.expectation_suite_identifier.name] += 1
    for name in sorted(names):
        context.suites.add(gx.ExpectationSuite(**load_suite(name, expectations_path)))
    clock.lap("results")
    context.build_data_docs(site_names=[_DOCS_SITE])
    clock.lap("build")
    index = site_dir / "index.html"
    if not index.is_file():
        raise RuntimeError(f"GX built no Data Docs index at {index}")
    log.info(
        "Data Docs: %d validation results (%s), seconds %s",
        sum(names.values()),
        dict(sorted(names.items())),
        {**clock.laps, "total": clock.total()},
    )
    return index


# --------------------------------------------------------------------------- reading results


def _result_json(result) -> dict[str, Any]:
    return json_safe(result.to_json_dict())


def _flagged_row_ids(suite: str, outcome, result) -> list[int]:
    """The row ids GX flagged for one expectation; GateError if GX could not say."""
    config = outcome.expectation_config.to_json_dict()
    info = outcome.exception_info or {}
    # One flat record, or one record per metric that failed to resolve.
    records = [info] if "raised_exception" in info else list(info.values())
    errors = [r.get("exception_message") for r in records if r.get("raised_exception")]
    if errors:
        raise GateError(suite, config, "; ".join(map(str, errors)), _result_json(result))
    listed = outcome.result.get("unexpected_index_list")
    if listed is None:
        if outcome.success:
            return []
        raise GateError(
            suite, config, "it failed without naming rows (not a row-level expectation)", _result_json(result)
        )
    row_ids = _listed_row_ids(listed)
    if len(row_ids) != outcome.result.get("unexpected_count", len(row_ids)):
        raise GateError(suite, config, "GX named fewer rows than it counted", _result_json(result))
    return row_ids


def _listed_row_ids(listed: list[dict[str, Any]]) -> list[int]:
    """The row ids of an ``unexpected_index_list``: one ``{"row_id": id, <column>: value}`` per
    row, or ``{"row_id": [ids]}`` without the values."""
    return [
        int(i)
        for entry in listed
        for i in (entry[ROW_ID] if isinstance(entry[ROW_ID], list) else [entry[ROW_ID]])
    ]


def _plain(value: Any) -> Any:
    """A JSON-able scalar: numpy to Python, NaN/NaT to None, infinities and timestamps to text."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return json_safe(value)


def _shown(value: Any) -> Any:
    value = _plain(value)
    return _ABSENT if value is None or value == "" else value


def _report_fields(key: list[str], columns: Iterable[str]) -> list[str]:
    """Report fields a finding with this key fills: all of them for a per-row finding, else the
    key's own, those it brings along, and the course."""
    if ROW_ID in key:
        wanted = set(FIELDS)
    else:
        wanted = {"canvas_course_id", *key, *(f for c in key for f in _BROUGHT_BY.get(c, ()))}
    return [f for f in FIELDS if f in wanted and f in columns]


def _finding(meta: Mapping[str, Any], row: Mapping[str, Any]) -> dict[str, Any]:
    fields = {f: _plain(row[f]) for f in _report_fields(meta["finding_key"], row)}
    for name, meta_key in _COLUMN_META_KEYS.items():
        if meta.get(meta_key):
            fields[name] = _plain(row[meta[meta_key]])
    message = meta["message"].format_map({c: _shown(v) for c, v in row.items()})
    return finding(meta["kind"], message, **fields)


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as text, so strict JSON readers (browsers) accept it."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _assemble(frame: pd.DataFrame, results: Mapping[str, Any]) -> GateResult:
    """Held-back rows, findings and statistics, read from GX's results and nothing else."""
    rows = frame.set_index(ROW_ID, drop=False)
    held: dict[int, set[str]] = defaultdict(set)
    findings: list[dict[str, Any]] = []
    seen: set[tuple] = set()
    statistics = {}
    for name, result in results.items():
        flagged_rows: set[int] = set()
        for outcome in result.results:
            row_ids = _flagged_row_ids(name, outcome, result)
            if not row_ids:
                continue
            meta = outcome.expectation_config.meta
            flagged_rows.update(row_ids)
            if _is_blocking(meta):
                for row_id in row_ids:
                    held[row_id].add(meta["kind"])
            key = meta["finding_key"]
            # only the columns a finding reads: turning every column of thousands of rows into
            # dicts cost more than the findings themselves
            wanted = set(FIELDS) | _reported_columns(meta)
            columns = [c for c in rows.columns if c in wanted]
            for row in rows.loc[row_ids, columns].drop_duplicates(subset=key).to_dict("records"):
                identity = (meta["kind"], tuple(key), tuple(_plain(row[c]) for c in key))
                if identity not in seen:
                    seen.add(identity)
                    findings.append(_finding(meta, row))
        stats = result.statistics
        statistics[name] = {
            "evaluated": int(stats["evaluated_expectations"]),
            "successful": int(stats["successful_expectations"]),
            "unsuccessful": int(stats["unsuccessful_expectations"]),
            "flagged_rows": len(flagged_rows),
        }
    return GateResult(
        held_back={row_id: sorted(kinds, key=urgency) for row_id, kinds in sorted(held.items())},
        findings=sorted(findings, key=lambda f: urgency(f["kind"])),
        statistics=statistics,
        gx_results=dict(results),
    )


# --------------------------------------------------------------------------- the gate


class _Stopwatch:
    """Seconds per step of a gate run, for the task log and the benchmark."""

    def __init__(self) -> None:
        self.started = self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.laps[step] = round(now - self.last, 3)
        self.last = now

    def total(self) -> float:
        return round(time.perf_counter() - self.started, 3)


def data_docs_enabled() -> bool:
    """``CANVAS_ASPEN_DATA_DOCS``: on (default) or off (``settings.env_flag``)."""
    return env_flag(DATA_DOCS_ENV, default=True)


def run_gate(
    frame: pd.DataFrame,
    suite_names: Iterable[str],
    *,
    run_name: str,
    data_docs: bool = False,
    expectations_path: str | os.PathLike[str] | None = None,
) -> GateResult:
    """Validate ``frame`` against the named suites and say which rows are held back and why.

    ``data_docs``: also hand back the validation results serialized (``GateResult.stored``) for
    the run's Data Docs, which :func:`build_data_docs` renders once per run, unless the
    deployment turned them off (``CANVAS_ASPEN_DATA_DOCS=off``). A gate call builds no site.
    """
    clock = _Stopwatch()
    suites = {name: load_suite(name, expectations_path) for name in suite_names}
    gx_frame = _prepared(frame, suites)
    context = _ephemeral_context(None)
    clock.lap("context")  # includes importing GX on a process's first call
    results = _validate(context, gx_frame, suites, run_name)
    clock.lap("validate")

    gate = _assemble(gx_frame, results)
    clock.lap("findings")
    if data_docs and data_docs_enabled():
        gate.stored = stored_results(results, gx_frame)
        clock.lap("stored_results")
    gate.timings = {**clock.laps, "total": clock.total()}
    log.info(
        "gate %s: %d rows, %d held back, %d findings, %s, seconds %s",
        run_name,
        len(frame),
        len(gate.held_back),
        len(gate.findings),
        gate.statistics,
        gate.timings,
    )
    return gate
