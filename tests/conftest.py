"""Shared fixtures: real embedded services in a throwaway STRATA_HOME, on a free port.

The session's services never come from the caller's STRATA_* variables: a developer's own server must not
receive the tests' DROP SCHEMA statements.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from resources import LandingZoneResource, MongoResource, PostgresResource, QdrantResource
from strata import services
from strata.config import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def isolated_env(home: Path, *, dagster: bool = True) -> dict[str, str]:
    """The environment of a `strata` subprocess with its own STRATA_HOME on free ports, none of the caller's
    STRATA_* / DAGSTER_* settings leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRATA_", "DAGSTER_"))}
    env |= {"STRATA_HOME": str(home), "STRATA_POSTGRES_PORT": str(free_port())}
    if dagster:
        env["STRATA_DAGSTER_PORT"] = str(free_port())
    return env


@pytest.fixture(scope="session")
def strata_home() -> Iterator[Path]:
    # Short and outside the repo: Postgres' data dir parents must be traversable by its system user.
    home = Path(tempfile.mkdtemp(prefix="strata-test-"))
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(strata_home: Path) -> Settings:
    return Settings.from_env({"STRATA_HOME": str(strata_home), "STRATA_POSTGRES_PORT": str(free_port())})


@pytest.fixture(scope="session")
def strata_env(settings: Settings) -> Iterator[dict[str, str]]:
    """The services are up and os.environ carries their URLs, as under `strata up`."""
    env = services.up(settings)
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    yield env
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    services.down(settings)


@pytest.fixture(scope="session")
def postgres(strata_env: dict[str, str]) -> PostgresResource:
    return PostgresResource(url=strata_env["STRATA_POSTGRES_URL"])


@pytest.fixture
def mongo(strata_env: dict[str, str], tmp_path: Path) -> MongoResource:
    return MongoResource(url=(tmp_path / "mongo").as_uri(), database_name="strata_test")


@pytest.fixture
def qdrant(tmp_path: Path) -> QdrantResource:
    return QdrantResource(url=(tmp_path / "qdrant").as_uri())


@pytest.fixture
def landing(tmp_path: Path) -> LandingZoneResource:
    root = tmp_path / "landing"
    root.mkdir()
    return LandingZoneResource(root=str(root))


@contextmanager
def scratch_database(strata_env: dict[str, str], name: str) -> Iterator[PostgresResource]:
    """A fresh database `name` of the embedded server, dropped afterwards."""
    import psycopg
    from psycopg import sql

    from strata.config import with_database

    admin = with_database(strata_env["STRATA_POSTGRES_URL"], "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield PostgresResource(url=with_database(strata_env["STRATA_POSTGRES_URL"], name))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def warehouse(strata_env: dict[str, str], request: pytest.FixtureRequest) -> Iterator[PostgresResource]:
    """A fresh database of the embedded server for one test module, dropped afterwards."""
    with scratch_database(strata_env, "t_" + request.module.__name__.rsplit(".", 1)[-1].lower()) as database:
        yield database


@contextmanager
def webhook_receiver() -> Iterator[tuple[int, list[tuple[str, bytes]]]]:
    """A real HTTP endpoint on a free port recording each POST's path and body."""
    received: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 — the http.server API
            received.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port, received
    finally:
        server.shutdown()
        server.server_close()
