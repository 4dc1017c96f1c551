"""The `STRATA_` configuration, read from the environment when a command runs (never at import time).

Every command and the Dagster code location read the same variables. A service whose URL is not set is
embedded: `strata.services` starts it under `STRATA_HOME` and exports its URL in `service_environment`,
so resources always receive a concrete URL through `EnvVar` and never decide the environment themselves.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


@dataclass(frozen=True)
class Settings:
    home: Path
    landing_dir: Path
    postgres_url: str | None
    postgres_port: int
    dagster_storage_url: str | None
    mongo_url: str | None
    mongo_database: str
    qdrant_url: str | None
    dagster_port: int
    pii_salt: str | None
    # Read when the definitions are built: the first day of every daily partitioning (a day before it can hold
    # no data, so the UI never counts it as missing), the default freshness windows, and a factor on every
    # retry delay (the test suite sets it near zero and still asserts how many retries happened).
    partitions_start: date
    freshness_warn_hours: float
    freshness_fail_hours: float
    retry_delay_scale: float
    # The recent-search extraction (landing/x_recent_search): its schedule's cron, and how many days back
    # `strata demo` searches.
    tweets_api_cron: str
    tweets_api_days: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def parsed(name: str, default: str, parse: Callable[[str], object], kind: str):
            value = env.get(name) or default
            try:
                return parse(value)
            except ValueError as exc:
                raise ValueError(f"{name}={value!r} is not {kind}") from exc

        home = Path(env.get("STRATA_HOME") or ".strata").expanduser().absolute()
        landing = env.get("STRATA_LANDING_DIR")
        return cls(
            home=home,
            landing_dir=Path(landing).expanduser().absolute() if landing else home / "landing",
            postgres_url=env.get("STRATA_POSTGRES_URL") or None,
            postgres_port=parsed("STRATA_POSTGRES_PORT", "55432", int, "a port number"),
            dagster_storage_url=env.get("STRATA_DAGSTER_STORAGE_URL") or None,
            mongo_url=env.get("STRATA_MONGO_URL") or None,
            mongo_database=env.get("STRATA_MONGO_DATABASE") or "strata",
            qdrant_url=env.get("STRATA_QDRANT_URL") or None,
            dagster_port=parsed("STRATA_DAGSTER_PORT", "3000", int, "a port number"),
            pii_salt=env.get("STRATA_PII_SALT") or None,
            partitions_start=parsed(
                "STRATA_PARTITIONS_START", "2026-11-01", date.fromisoformat, "a date (YYYY-MM-DD)"
            ),
            freshness_warn_hours=parsed("STRATA_FRESHNESS_WARN_HOURS", "4", float, "a number of hours"),
            freshness_fail_hours=parsed("STRATA_FRESHNESS_FAIL_HOURS", "24", float, "a number of hours"),
            retry_delay_scale=parsed("STRATA_RETRY_DELAY_SCALE", "1", float, "a number"),
            tweets_api_cron=env.get("STRATA_TWEETS_API_CRON") or "*/15 * * * *",
            tweets_api_days=parsed("STRATA_TWEETS_API_DAYS", "7", int, "a number of days"),
        )

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def pii_salt_file(self) -> Path:
        return self.home / "secrets" / "pii_salt"


def redact(url: str) -> str:
    """A URL fit for a log line or a status table: any password replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:***@{host}" if parts.username else f"***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def with_database(url: str, database: str) -> str:
    """The same Postgres server URL pointing at another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def sqlalchemy_psycopg2(url: str) -> str:
    """dagster-postgres needs the psycopg2 driver: with SQLAlchemy 2.1 a plain `postgresql://` URL picks
    psycopg 3, whose parameter style breaks dagster-postgres' NOTIFY statements."""
    scheme, rest = url.split("://", 1)
    return f"postgresql+psycopg2://{rest}" if scheme in ("postgres", "postgresql") else url
