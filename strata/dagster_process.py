"""`dagster dev` (webserver + daemon) as a detached background process that `strata down` can stop.

Started with `start_new_session` from Python rather than `&` in a shell: a shell without job control makes
background jobs ignore SIGINT, and dagster maps SIGTERM onto SIGINT's handler, so it would never stop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from strata.config import Settings
from strata.services import port_in_use

REPO_ROOT = Path(__file__).resolve().parent.parent


def _pid_file(settings: Settings) -> Path:
    return settings.home / "dagster-dev.pid"


def server_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.dagster_port}"


def running_pid(settings: Settings) -> int | None:
    pid_file = _pid_file(settings)
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text().strip())
    if not _is_dagster_dev(pid):
        pid_file.unlink()
        return None
    return pid


def _is_dagster_dev(pid: int) -> bool:
    """Whether `pid` is a live `dagster dev`: a killed one can linger as a zombie until it is reaped, and after
    a reboot its pid may belong to another process."""
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and "dev" in process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def is_ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/server_info", timeout=2).is_success
    except httpx.HTTPError:
        return False


def fail_runs_left_behind(env: dict[str, str]) -> list[str]:
    """Before `dagster dev` starts again: fail the runs a stopped one left in progress — a run whose worker died
    with it, or one it was still launching, which would otherwise hold its pools until run monitoring's start
    timeout. Returns one line per run failed."""
    import dagster as dg

    from strata.run_workers import fail_orphaned_runs

    os.environ.update(env)
    with dg.DagsterInstance.get() as instance:
        return fail_orphaned_runs(instance, launcher_stopped=True)


def start(settings: Settings, env: dict[str, str], *, timeout: float = 120) -> str:
    """Start `dagster dev` on 127.0.0.1 unless it already runs; wait until it answers; return its URL."""
    url = server_url(settings)
    if running_pid(settings) is None:
        # Whatever answers there is not ours: waiting for it to answer would adopt another program's server.
        if port_in_use(settings.dagster_port):
            raise RuntimeError(
                f"cannot start dagster dev: 127.0.0.1:{settings.dagster_port} is already in use "
                "(set STRATA_DAGSTER_PORT to a free port)"
            )
        log = (settings.logs_dir / "dagster-dev.log").open("ab")
        process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("dagster")),
                "dev",
                "-w",
                str(REPO_ROOT / "workspace.yaml"),
                "-h",
                "127.0.0.1",
                "-p",
                str(settings.dagster_port),
            ],
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _pid_file(settings).write_text(str(process.pid))
    deadline = time.monotonic() + timeout
    while not is_ready(url):
        if running_pid(settings) is None:
            raise RuntimeError(f"dagster dev exited; see {settings.logs_dir / 'dagster-dev.log'}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"dagster dev did not answer on {url} within {timeout:.0f} s")
        time.sleep(1)
    return url


def stop(settings: Settings, *, timeout: float = 30) -> bool:
    """Stop the whole process group (webserver, daemon, code server, runs). Returns whether one ran."""
    pid = running_pid(settings)
    if pid is None:
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.5)
    else:
        os.killpg(pid, signal.SIGKILL)
    _pid_file(settings).unlink(missing_ok=True)
    return True
