"""The few things that need Airflow: hooks, the ledger's connection, the run folder.

Kept apart from the pure modules so that they stay testable without an Airflow runtime.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

from canvas_aspen.settings import Settings

if TYPE_CHECKING:
    from types import ModuleType

    from canvas_aspen.hooks.aspen import AspenHook
    from canvas_aspen.hooks.canvas import CanvasHook
    from canvas_aspen.ledger import Ledger

log = logging.getLogger(__name__)

_SQLALCHEMY_SCHEMES = {
    "postgres": "postgresql+psycopg2",
    "postgresql": "postgresql+psycopg2",
    "sqlite": "sqlite",
}


def settings() -> Settings:
    return Settings.from_env()


def canvas_hook(s: Settings) -> CanvasHook:
    from canvas_aspen.hooks.canvas import CanvasHook

    return CanvasHook(canvas_conn_id=s.canvas_conn_id)


def aspen_hook(s: Settings) -> AspenHook:
    from canvas_aspen.hooks.aspen import AspenHook

    return AspenHook(aspen_conn_id=s.aspen_conn_id)


@dataclass(frozen=True)
class TaskRun:
    """What one task of the DAG needs, by name: ``canvas``, ``aspen``, ``ledger``, ``run_dir``,
    ``params``, ``settings``, ``run_id``... Each is built when first asked for (a task that
    talks to Aspen only never makes a CanvasHook), and ``stages`` is imported then too: the
    DAG file imports nothing heavy when it is parsed."""

    context: Mapping[str, Any]
    settings: Settings

    @classmethod
    def current(cls) -> TaskRun:
        """The running task's (Airflow's task context, the deployment's settings)."""
        from airflow.sdk import get_current_context

        return cls(get_current_context(), settings())

    @property
    def stages(self) -> ModuleType:
        from canvas_aspen import stages

        return stages

    @property
    def run_id(self) -> str:
        return self.context["run_id"]

    @property
    def params(self) -> Mapping[str, Any]:
        return self.context["params"]

    @property
    def mappings(self) -> dict[str, dict[str, str]]:
        """The run's category mapping overrides (the trigger form's, over its mapping file's)."""
        return mappings(self.params)

    def flag(self, name: str) -> bool:
        """An on/off param of the trigger form (``dry_run``, ``full_resync``, ``delete_orphans``)."""
        return bool(self.params.get(name))

    @cached_property
    def canvas(self) -> CanvasHook:
        return canvas_hook(self.settings)

    @cached_property
    def aspen(self) -> AspenHook:
        return aspen_hook(self.settings)

    @cached_property
    def ledger(self) -> Ledger:
        return ledger(self.settings)

    @cached_property
    def run_dir(self) -> Any:
        return run_dir(self.settings, self.run_id)

    @property
    def lease(self) -> timedelta:
        return lease(self.settings)

    def run_plan(self) -> list[dict[str, Any]]:
        """The plan task: the trigger form's params checked before any work (R12), the run
        started in the ledger, then ``stages.plan``. Should any of it fail, the run's report
        folder says why at once (the report task then writes a report that says so)."""
        from canvas_aspen import run_params

        s, started = self.settings, self.context["dag_run"].start_date
        params = params_for_report(self.params)
        try:
            canvas, aspen = self.canvas, self.aspen
            params = params_for_report(run_params.check(canvas, params))
            self.ledger.start_run(self.run_id, params=params, dry_run=params["dry_run"], started_at=started)
            shards = self.stages.plan(
                canvas,
                aspen,
                self.run_dir,
                params=params,
                shard_count=s.shard_count,
                courses_per_shard=s.courses_per_shard,
                today=run_date(self.context, s),
                term_refs=s.terms,
                timezone_name=s.timezone,
            )
        except Exception as exc:
            when = started.isoformat() if started else None
            self.stages.write_plan_failure(s.reports_dir, self.run_id, exc, params=params, started_at=when)
            raise
        self.stages.clear_plan_failure(s.reports_dir, self.run_id)
        return shards

    def run_report(self) -> dict[str, Any]:
        """The report task: ``stages.report``; the task fails (not retried) when the run must."""
        from airflow.sdk.exceptions import AirflowFailException

        out = self.stages.report(
            self.ledger,
            self.run_dir,
            self.settings.reports_dir,
            run_id=self.run_id,
            started_at=str(self.context["dag_run"].start_date),
        )
        if out["failed_reasons"]:
            raise AirflowFailException("; ".join(out["failed_reasons"]) + f" (report: {out['report']})")
        return out

    def run_digest(self) -> dict[str, Any]:
        """The digest task: ``stages.digest`` in the mode CANVAS_ASPEN_TEACHER_DIGEST says, through
        one SMTP session when it sends; the task fails when a teacher's digest could not be sent."""
        from airflow.sdk.exceptions import AirflowFailException

        s = self.settings
        mode, days = s.digest_settings()
        mailer = DigestMailer(s.smtp_conn_id) if mode == "send" else None
        try:
            out = self.stages.digest(
                self.ledger,
                self.run_dir,
                s.reports_dir,
                run_id=self.run_id,
                mode=mode,
                resend_after=timedelta(days=days),
                mailer=mailer,
                canvas_url=canvas_url(s) if mode != "off" else None,
                timezone_name=s.timezone,
            )
        finally:
            if mailer is not None:
                mailer.close()
        if out["counts"].get("failed"):
            raise AirflowFailException(
                f"{out['counts']['failed']} of {out['teachers']} teacher digest(s) not sent "
                "(recorded; retried next run); the passback itself is not affected"
            )
        return out


def ledger_url(s: Settings) -> str:
    """The ``canvas_aspen_ledger`` connection (extra ``sqlalchemy_url``, or a postgres /
    sqlite connection), else a SQLite file under the Airflow home."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from canvas_aspen.ledger import default_sqlite_url

    try:
        conn = BaseHook.get_connection(s.ledger_conn_id)
    except AirflowNotFoundException:
        return default_sqlite_url(s.airflow_home)
    extra = conn.extra_dejson
    if extra.get("sqlalchemy_url"):
        return extra["sqlalchemy_url"]
    scheme = _SQLALCHEMY_SCHEMES.get(conn.conn_type or "")
    if scheme is None:
        raise ValueError(
            f"connection {s.ledger_conn_id!r}: unsupported type {conn.conn_type!r} for the ledger"
        )
    uri = conn.get_uri()
    return scheme + uri[uri.index("://") :]


@lru_cache(maxsize=4)
def _ledger(url: str):
    from canvas_aspen.ledger import Ledger

    ledger = Ledger(url)
    ledger.migrate()
    return ledger


def ledger(s: Settings):
    return _ledger(ledger_url(s))


def lease(s: Settings) -> timedelta:
    """How long a run may hold its courses against a concurrent run (course leases)."""
    return timedelta(minutes=s.lease_minutes)


def run_date(ctx: Any, s: Settings):
    """The run's date in the district's calendar (R19's "today"): when the run was due
    (``run_after``: 22:00 New York for the nightly run, the trigger time for a manual one)."""
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    dag_run = ctx.get("dag_run")
    when = getattr(dag_run, "run_after", None) or ctx.get("logical_date") or datetime.now(timezone.utc)
    return when.astimezone(ZoneInfo(s.timezone)).date()


def run_dir(s: Settings, run_id: str):
    from airflow.sdk import ObjectStoragePath

    from canvas_aspen.ids import run_folder_name

    return ObjectStoragePath(s.stage_root) / run_folder_name(run_id)


def mappings(params: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Per-class category mapping overrides: the trigger form's object, over the file's."""
    from canvas_aspen import run_params

    return run_params.mappings(params)


def certain_failure(exc: BaseException) -> bool:
    """Whether a retry of the task would fail the same way: a bad param, a Connection that
    lacks something, or an answer of Canvas/Aspen that is a 4xx and not a throttle (429 and
    Canvas's 403 "Rate Limit Exceeded" are retryable; the hooks already retried what was)."""
    from canvas_aspen.errors import ApiError, ConnectionConfigError
    from canvas_aspen.run_params import ParamError

    if isinstance(exc, (ParamError, ConnectionConfigError)):
        return True
    status = getattr(exc, "status", None)
    return isinstance(exc, ApiError) and status is not None and 400 <= status < 500 and not exc.retryable


def fail_without_retry(exc: BaseException):
    """The AirflowFailException (no task retry) for a certain failure, else None."""
    from airflow.sdk.exceptions import AirflowFailException

    if isinstance(exc, AirflowFailException) or not certain_failure(exc):
        return None
    return AirflowFailException(f"{exc} (not retried: a retry would fail the same way)")


def record_stage_error(s: Settings, run_id: str, shard: int, stage: str, exc: BaseException) -> None:
    """What a shard's failed stage leaves for the report (which stage, and why)."""
    from canvas_aspen import stages

    try:
        stages.record_stage_error(run_dir(s, run_id), shard, stage, exc)
    except Exception:  # never hide the task's own error behind this one
        log.exception("could not record the error of %s for shard %s", stage, shard)


def params_for_report(params: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(params), default=str))


class DigestMailer:
    """Teacher digests through Airflow's SMTP provider (connection ``smtp_default``, or
    ``CANVAS_ASPEN_SMTP_CONN_ID``): host, port, login/password, extras ``from_email``,
    ``disable_tls``, ``disable_ssl``, ``timeout``, ``retry_limit``. One SMTP session for the run,
    opened at the first message; each message has a plain-text and an HTML part."""

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self._hook = None

    def _open(self):
        if self._hook is None:
            from airflow.providers.smtp.hooks.smtp import SmtpHook

            hook = SmtpHook(smtp_conn_id=self.conn_id)
            hook.get_conn()  # logs in; raises when the server cannot be reached
            self._hook = hook
            if not hook.from_email:
                self.close()
                raise ValueError(f"connection {self.conn_id!r}: set extra from_email (the digests' sender)")
        return self._hook

    def send(self, to: str, subject: str, text: str, html: str) -> None:
        from email.message import EmailMessage
        from email.utils import formatdate, make_msgid

        hook = self._open()
        msg = EmailMessage()
        msg["Subject"] = subject
        msg["From"] = hook.from_email
        msg["To"] = to
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain=hook.from_email.rpartition("@")[2] or None)
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to a nightly digest
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
        try:
            hook._smtp_client.send_message(msg)  # the provider's own client, logged in by get_conn()
        except Exception:
            self.close()  # a broken session is not reused: the next message opens a new one
            raise

    def close(self) -> None:
        hook, self._hook = self._hook, None
        if hook is not None:
            try:
                hook.__exit__(None, None, None)
            except Exception:  # the session is gone already
                log.debug("SMTP session close failed", exc_info=True)


def canvas_url(s: Settings) -> str | None:
    """The Canvas base URL of the connection (for links in the digests), None if unknown."""
    try:
        return canvas_hook(s).settings.base_url or None
    except Exception:  # no usable canvas connection: digests go without links
        log.warning("digest: the Canvas connection's host is not usable; digests carry no Canvas links")
        return None
