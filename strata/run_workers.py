"""Which process executes a run, whether it still exists, and what to do with runs whose process is gone.

A run whose worker died (SIGKILL, the OOM killer, a reboot) stays STARTED in the run storage for ever, and
every pool it counts against stays taken. Two kinds of worker exist on one machine:

- a run launched by the daemon or the UI runs in a subprocess of the code server, which logs
  "Started process for run (pid: N)" before the run starts;
- a run executed in a process of its own (`strata demo`, the tests) carries the `strata/owner` tag,
  written when the run is created.

A worker is judged only on the machine it runs on: a run on another host is never called dead from here.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg
import psutil

OWNER_TAG = "strata/owner"
IN_PROGRESS = (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING)
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
_GRPC_INFO_TAG = ".dagster/grpc_info"
_PROCESS_STARTED = "Started process for run (pid: "


@dataclass(frozen=True)
class Worker:
    """A process on a host; `created` (seconds since the epoch) tells it apart from a later process that
    reuses its pid."""

    host: str
    pid: int
    created: float | None = None
    # For a pid known only from the run's log: the process must have existed by then.
    seen_at: float | None = None

    def tag(self) -> str:
        return f"{self.host}:{self.pid}:{self.created}"

    @classmethod
    def from_tag(cls, value: str) -> Worker | None:
        try:
            host, pid, created = value.rsplit(":", 2)
            return cls(host, int(pid), float(created))
        except ValueError:
            return None

    @classmethod
    def current(cls) -> Worker:
        process = psutil.Process()
        return cls(socket.gethostname(), process.pid, process.create_time())

    def describe(self) -> str:
        return f"process {self.pid} on {self.host}"

    def alive(self) -> bool | None:
        """Whether the process still runs; None when it runs on another host (nothing to tell from here)."""
        if self.host != socket.gethostname():
            return None
        try:
            process = psutil.Process(self.pid)
            created = process.create_time()
            zombie = process.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
        if zombie:
            return False
        if self.created is not None:
            return abs(created - self.created) < 0.05
        return self.seen_at is None or created <= self.seen_at + 1.0


def owner_tags() -> dict[str, str]:
    """Tags naming this process as the worker of the runs it executes itself."""
    return {OWNER_TAG: Worker.current().tag()}


def _launched_here(run: dg.DagsterRun) -> bool:
    """Whether a code server of this machine launched the run (its gRPC address is local)."""
    grpc = json.loads(run.tags.get(_GRPC_INFO_TAG) or "{}")
    return grpc.get("host") in _LOCAL_HOSTS or "socket" in grpc


def worker_of(instance: dg.DagsterInstance, run: dg.DagsterRun) -> Worker | None:
    """The run's worker, if it can be known from this machine."""
    if OWNER_TAG in run.tags:
        return Worker.from_tag(run.tags[OWNER_TAG])
    if not _launched_here(run):
        return None
    for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        if entry.message.startswith(_PROCESS_STARTED):
            pid = int(entry.message[len(_PROCESS_STARTED) :].split(")", 1)[0])
            return Worker(socket.gethostname(), pid, seen_at=entry.timestamp)
    return None


def worker_gone(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str | None:
    """Why the run's worker is known to be gone, or None (alive, or not knowable from here)."""
    worker = worker_of(instance, run)
    if worker is None or worker.alive() is not False:
        return None
    return (
        f"its run worker ({worker.describe()}) no longer exists: killed, out of memory or the machine "
        "restarted"
    )


def release(instance: dg.DagsterInstance, run: dg.DagsterRun, reason: str, *, canceled: bool = False) -> None:
    """End a run that no process will finish, and free every pool slot it holds."""
    if canceled or run.status == dg.DagsterRunStatus.CANCELING:
        instance.report_run_canceled(run, reason)
    else:
        instance.report_run_failed(run, reason)
    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)


def in_progress_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(statuses=list(IN_PROGRESS))))


def never_launched(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str | None:
    """Why a STARTING run that this machine's `dagster dev` was launching will never start, when that
    `dagster dev` is known to be stopped; None when it may still start."""
    if run.status != dg.DagsterRunStatus.STARTING or OWNER_TAG in run.tags or not _launched_here(run):
        return None
    if worker_of(instance, run) is not None:
        return None  # its worker was started: judged by that process
    return "the `dagster dev` launching it stopped before its run worker started"


def fail_orphaned_runs(
    instance: dg.DagsterInstance,
    runs: Iterable[dg.DagsterRun] | None = None,
    *,
    launcher_stopped: bool = False,
) -> list[str]:
    """Mark failed every in-progress run whose worker is gone (and, when this machine's `dagster dev` is known
    to be stopped, every run it was still launching); returns one line per run, saying what was done."""
    done = []
    for run in in_progress_runs(instance) if runs is None else runs:
        reason = worker_gone(instance, run) or (launcher_stopped and never_launched(instance, run))
        if reason:
            release(instance, run, f"Marked failed: {reason}.")
            done.append(f"run {run.run_id} ({run.status.value}): {reason}; marked failed, its pools freed")
    return done
