"""`strata-dbt`, the dbt executable of the dbt assets (strata.warm_dbt), is plain `dbt` started warm: the same
output and exit codes; SIGINT stops the forked dbt as it stops plain dbt; a killed client takes its dbt along;
the first call, with no server yet, runs plain dbt and starts one; without a folder for its socket it runs plain
dbt every time. Each test has a server of its own (its own XDG_RUNTIME_DIR)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from assets.transform.env import dbt_env
from strata import warm_dbt
from tests.conftest import shell_signals

REPO = Path(__file__).resolve().parent.parent
PLAIN = [sys.executable, warm_dbt.plain_dbt()]
WARM = [str(Path(sys.executable).with_name("strata-dbt"))]
SLEEPING = "select pg_sleep(600) as slept"


@pytest.fixture
def runtime(monkeypatch) -> Iterator[Path]:
    """A runtime folder of the test's own (short: a socket path has at most 107 bytes); its server is stopped
    afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="wd-"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    try:
        yield folder
    finally:
        warm_dbt.stop()
        for server in servers(folder):
            server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def servers(folder: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "strata.warm_dbt" in cmdline and any(arg.startswith(str(folder)) for arg in cmdline):
            found.append(process)
    return found


def serving(folder: Path, *, start: bool = True) -> psutil.Process:
    """The folder's server (started here if `start`), once it answers."""
    path = warm_dbt.socket_path()
    if start:
        warm_dbt.start_server(path)
    deadline = time.monotonic() + 120
    while True:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(path))
                break
            except OSError:
                assert time.monotonic() < deadline, "the server never listened"
                time.sleep(0.1)
    # The probe's empty request left a child (exiting at once): the server is the one whose parent is not one.
    [server] = [s for s in servers(folder) if s.ppid() not in {other.pid for other in servers(folder)}]
    return server


def run(command: list[str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*command, *args], cwd=REPO / "dbt", env=dict(os.environ), capture_output=True, text=True, timeout=300
    )


def test_the_first_call_runs_plain_dbt_and_starts_the_server_the_next_is_served_with_the_same_output(
    runtime,
):
    plain = run(PLAIN, "--help")

    first = run(WARM, "--help")
    deadline = time.monotonic() + 120
    while not warm_dbt.socket_path().exists():
        assert time.monotonic() < deadline, "the first call started no server"
        time.sleep(0.1)
    serving(runtime, start=False)
    second = run(WARM, "--help")

    assert plain.returncode == first.returncode == second.returncode == 0
    assert plain.stdout == first.stdout == second.stdout and "build" in plain.stdout


def test_a_failing_invocation_exits_with_dbts_code_and_error(runtime, tmp_path):
    serving(runtime)
    args = ("parse", "--project-dir", str(tmp_path / "no-project"))

    plain, warm = run(PLAIN, *args), run(WARM, *args)

    assert plain.returncode == warm.returncode == 2
    assert (warm.stdout, warm.stderr) == (plain.stdout, plain.stderr) and "no-project" in plain.stderr


@pytest.fixture
def show_env(postgres, tmp_path) -> Iterator[dict[str, str]]:
    """The environment of a `dbt show` on the session's warehouse, with target and log folders of its own; the
    queries it leaves sleeping are ended afterwards."""
    yield (
        dict(os.environ)
        | dbt_env(postgres.url)
        | {
            "DBT_TARGET_PATH": str(tmp_path / "target"),
            "DBT_LOG_PATH": str(tmp_path / "logs"),
        }
    )
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        for pid in sleeping_backends(postgres):
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def sleeping_show(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [*command, "show", "--inline", SLEEPING],
        cwd=REPO / "dbt",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=shell_signals,
    )


def sleeping_backends(postgres) -> list[int]:
    with psycopg.connect(postgres.url) as conn:
        return [
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'dbt' AND query LIKE %s",
                ("%pg_sleep(600)%",),
            ).fetchall()
        ]


def wait_until(condition, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.1)


def test_sigint_stops_the_warm_dbt_as_it_stops_plain_dbt(runtime, postgres, show_env):
    server = serving(runtime)

    plain = sleeping_show(PLAIN, show_env)
    wait_until(lambda: sleeping_backends(postgres), "plain dbt's query")
    plain.send_signal(signal.SIGINT)
    plain_code = plain.wait(timeout=120)
    wait_until(lambda: not sleeping_backends(postgres), "end of plain dbt's query")

    client = sleeping_show(WARM, show_env)
    wait_until(lambda: sleeping_backends(postgres), "the warm dbt's query")
    # The dbt running the query is the server's child, not the client's.
    [child] = [c for c in server.children() if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert child.pid not in [p.pid for p in psutil.Process(client.pid).children(recursive=True)]
    client.send_signal(signal.SIGINT)
    warm_code = client.wait(timeout=120)

    assert warm_code == plain_code != 0
    wait_until(lambda: not sleeping_backends(postgres), "end of the warm dbt's query")
    wait_until(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, "the child's end")


def test_a_killed_client_takes_its_dbt_along(runtime, postgres, show_env):
    server = serving(runtime)
    client = sleeping_show(WARM, show_env)
    wait_until(lambda: sleeping_backends(postgres), "the warm dbt's query")
    [child] = [c for c in server.children() if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]

    client.kill()
    client.wait(timeout=60)

    # (Its query sleeps on: a backend inside a statement notices its client is gone when the statement ends, as
    # when plain dbt is killed.)
    wait_until(lambda: not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, "the child's end")
    assert server.is_running()


def test_without_a_folder_for_its_socket_it_runs_plain_dbt(monkeypatch, tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(not_a_folder))

    result = run(WARM, "--help")

    assert result.returncode == 0 and "build" in result.stdout
    assert servers(not_a_folder) == []
