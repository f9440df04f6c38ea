"""Deployment settings, read from the environment (an ``.env`` file in docker compose).

Secrets never live here: they are Airflow Connections (``canvas_default``,
``aspen_default``, ``canvas_aspen_ledger``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ON_WORDS = frozenset({"on", "true", "1", "yes", "y", "t"})
OFF_WORDS = frozenset({"off", "false", "0", "no", "n", "f"})


def parse_flag(value: Any) -> bool:
    """On or off: a bool, the number 1 or 0, or a string in :data:`ON_WORDS` / :data:`OFF_WORDS`
    (any case, spaces around ignored). Anything else (``"maybe"``, ``2``, ``""``, ``None``) is a
    ValueError: a switch is never guessed. The one parser of every on/off setting (environment
    variables and Connection extras)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and (word := value.strip().lower()) in ON_WORDS | OFF_WORDS:
        return word in ON_WORDS
    raise ValueError("must be true or false")


def env_flag(name: str, default: bool) -> bool:
    """An on/off environment variable (:func:`parse_flag`); unset or blank: ``default``. A value
    that is neither keeps ``default``, with a warning naming the variable: these switches turn
    speed-ups and extras on or off, and a typo in one never stops a scheduler or a run."""
    raw = os.environ.get(name, "")
    if not raw.strip():
        return default
    try:
        return parse_flag(raw)
    except ValueError:
        log.warning(
            "%s=%r is neither on nor off (on/off, true/false, yes/no, 1/0): it stays %s",
            name,
            raw,
            "on" if default else "off",
        )
        return default


def _airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")


DIGEST_MODES = ("off", "preview", "send")


@dataclass(frozen=True)
class Settings:
    airflow_home: Path
    shard_count: int  # the most shards a run is split into
    courses_per_shard: int  # fewer courses than this per shard only when shard_count caps it
    stage_root: str  # an ObjectStoragePath URL: file:///… by default, s3://… on a cluster
    reports_dir: Path
    timezone: str
    canvas_conn_id: str
    aspen_conn_id: str
    ledger_conn_id: str
    lease_minutes: int
    terms: str = ""  # R19: Canvas term ids or sis_term_id:X, comma-separated; empty = the current terms
    # the teacher digest's settings stay as given: only the digest task checks them, so a typo
    # there fails the digest, never the passback (digest_settings() says what is wrong)
    teacher_digest: str = "preview"  # off | preview | send
    digest_resend_days: str = "7"
    smtp_conn_id: str = "smtp_default"

    def digest_settings(self) -> tuple[str, int]:
        """(mode, resend after days), checked: a clear error names the variable."""
        mode = self.teacher_digest.strip().lower()
        if mode not in DIGEST_MODES:
            raise ValueError(
                f"CANVAS_ASPEN_TEACHER_DIGEST={self.teacher_digest!r}: expected one of "
                f"{', '.join(DIGEST_MODES)}"
            )
        try:
            days = int(self.digest_resend_days)
        except ValueError:
            days = 0
        if days < 1:
            raise ValueError(
                f"CANVAS_ASPEN_DIGEST_RESEND_DAYS={self.digest_resend_days!r}: expected a whole "
                "number of days, at least 1"
            )
        return mode, days

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ.get
        home = _airflow_home()
        return cls(
            airflow_home=home,
            shard_count=max(1, int(env("CANVAS_ASPEN_SHARDS", "8"))),
            courses_per_shard=max(1, int(env("CANVAS_ASPEN_COURSES_PER_SHARD", "10"))),
            stage_root=env("CANVAS_ASPEN_STAGE_ROOT") or f"file://{home / 'canvas_aspen' / 'stage'}",
            reports_dir=Path(env("CANVAS_ASPEN_REPORTS_DIR") or home / "canvas_aspen" / "reports"),
            timezone=env("CANVAS_ASPEN_TIMEZONE", "America/New_York"),
            canvas_conn_id=env("CANVAS_ASPEN_CANVAS_CONN_ID", "canvas_default"),
            aspen_conn_id=env("CANVAS_ASPEN_ASPEN_CONN_ID", "aspen_default"),
            ledger_conn_id=env("CANVAS_ASPEN_LEDGER_CONN_ID", "canvas_aspen_ledger"),
            lease_minutes=int(env("CANVAS_ASPEN_LEASE_MINUTES", "240")),
            terms=env("CANVAS_ASPEN_TERMS", "").strip(),
            teacher_digest=env("CANVAS_ASPEN_TEACHER_DIGEST") or "preview",
            digest_resend_days=env("CANVAS_ASPEN_DIGEST_RESEND_DAYS") or "7",
            smtp_conn_id=env("CANVAS_ASPEN_SMTP_CONN_ID", "smtp_default"),
        )
