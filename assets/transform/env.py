"""The warehouse connection for dbt, derived from the one Postgres URL the platform is configured with."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_PORT = 5432


def dbt_env(postgres_url: str, pii_salt: str | None = None) -> dict[str, str]:
    """The STRATA_DBT_* variables dbt/profiles.yml reads, from a `postgresql://user:password@host:port/db` URL,
    and with a PII salt, PGOPTIONS giving dbt's sessions the setting `strata.pii_salt` (macros/pii.sql).

    libpq's `?host=` (a socket directory) and `?port=` query parameters override the netloc, as in libpq.
    """
    parts = urlsplit(postgres_url)
    if parts.scheme.split("+", 1)[0] not in ("postgres", "postgresql"):
        raise ValueError(f"not a Postgres URL (scheme {parts.scheme!r})")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    host = query.get("host") or (unquote(parts.hostname) if parts.hostname else "") or "127.0.0.1"
    port = query.get("port") or (str(parts.port) if parts.port else str(DEFAULT_PORT))
    dbname = unquote(parts.path.lstrip("/")) or query.get("dbname") or "postgres"
    env = {
        "STRATA_DBT_HOST": host,
        "STRATA_DBT_PORT": port,
        "STRATA_DBT_USER": unquote(parts.username) if parts.username else query.get("user", "postgres"),
        "STRATA_DBT_PASSWORD": unquote(parts.password) if parts.password else query.get("password", ""),
        "STRATA_DBT_DBNAME": dbname,
    }
    if pii_salt:
        # Connection options travel in the startup packet, which Postgres never logs as a statement; libpq
        # splits them on unescaped whitespace.
        env["PGOPTIONS"] = "-c strata.pii_salt=" + re.sub(r"([\\\s])", r"\\\1", pii_salt)
    return env
