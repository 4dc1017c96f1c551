"""The `STRATA_` configuration, read from the environment when a command runs (never at import time).

Every command and the Dagster code location read the same variables. A service whose URL is not set is
embedded: `strata.services` starts it under `STRATA_HOME` and exports its URL in `service_environment`,
so resources always receive a concrete URL through `EnvVar` and never decide the environment themselves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
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

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("STRATA_HOME") or ".strata").expanduser().absolute()
        landing = env.get("STRATA_LANDING_DIR")
        return cls(
            home=home,
            landing_dir=Path(landing).expanduser().absolute() if landing else home / "landing",
            postgres_url=env.get("STRATA_POSTGRES_URL") or None,
            postgres_port=int(env.get("STRATA_POSTGRES_PORT") or 55432),
            dagster_storage_url=env.get("STRATA_DAGSTER_STORAGE_URL") or None,
            mongo_url=env.get("STRATA_MONGO_URL") or None,
            mongo_database=env.get("STRATA_MONGO_DATABASE") or "strata",
            qdrant_url=env.get("STRATA_QDRANT_URL") or None,
            dagster_port=int(env.get("STRATA_DAGSTER_PORT") or 3000),
            pii_salt=env.get("STRATA_PII_SALT") or None,
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
