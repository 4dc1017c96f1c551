"""The Dagster instance of platform/dagster.yaml on the embedded Postgres: its storages hold their connections
(strata.instance_storage), where dagster-postgres' own open one per statement, and reconnect when the server
ends one."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
import yaml

from strata.config import sqlalchemy_psycopg2
from tests.conftest import scratch_database

REPO = Path(__file__).resolve().parent.parent
LOG_LINES = 40


@dg.asset
def chatty(context: dg.AssetExecutionContext) -> None:
    for n in range(LOG_LINES):
        context.log.info(f"line {n}")


@pytest.fixture
def storage(strata_env) -> Iterator[str]:
    with scratch_database(strata_env, "t_instance_storage") as database:
        yield database.url


@contextmanager
def instance_of(config: dict, home: Path, storage_url: str, monkeypatch) -> Iterator[dg.DagsterInstance]:
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("STRATA_DAGSTER_STORAGE_URL", sqlalchemy_psycopg2(storage_url))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def sessions(storage_url: str) -> int:
    import psycopg

    with psycopg.connect(storage_url) as conn:
        return conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()[0]


def platform_config() -> dict:
    return yaml.safe_load((REPO / "platform" / "dagster.yaml").read_text())


def test_a_run_of_the_platform_instance_writes_its_events_over_a_handful_of_connections(
    storage, tmp_path, monkeypatch
):
    plain = {"storage": {"postgres": {"postgres_url": {"env": "STRATA_DAGSTER_STORAGE_URL"}}}}
    opened = {}
    for name, config in (("dagster-postgres", plain), ("platform", platform_config())):
        with instance_of(config, tmp_path / name, storage, monkeypatch) as instance:
            before = sessions(storage)
            assert dg.materialize([chatty], instance=instance).success
            opened[name] = sessions(storage) - before - 1  # the count's own session

    print(f"connections opened by one run: {opened}")
    # dagster-postgres connects for each of the run's ~50 events; the platform's storages keep theirs.
    assert opened["dagster-postgres"] > LOG_LINES
    assert opened["platform"] <= 5


def test_a_storage_connection_ended_by_the_server_is_replaced_on_next_use(storage, tmp_path, monkeypatch):
    import psycopg

    with instance_of(platform_config(), tmp_path / "home", storage, monkeypatch) as instance:
        assert dg.materialize([chatty], instance=instance).success
        with psycopg.connect(storage, autocommit=True) as conn:
            ended = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()[0]

        again = dg.materialize([chatty], instance=instance)

        assert ended > 0
        assert again.success
        assert len(instance.get_runs()) == 2
