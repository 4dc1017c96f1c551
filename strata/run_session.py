"""Runs executed by this process (`strata demo`): owned, waiting for their pools, and stoppable at once.

Each run is tagged with this process (strata.run_workers), so a later process can tell it was abandoned.
Dagster defers SIGINT inside an execution until a step starts, so a run waiting between steps ignores it; here
runs execute in a worker thread and the main thread keeps the signals. The first SIGINT or SIGTERM cancels this
process's runs, frees their pools, kills its child processes (dbt) and exits; a second one exits at once.
Interrupted work is safe to abandon: every load is one transaction, and the next run completes it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import NoReturn, TypeVar

import dagster as dg
import psutil

from assets.observability.pools import describe, holders
from strata.run_workers import IN_PROGRESS, OWNER_TAG, fail_orphaned_runs, owner_tags, release

T = TypeVar("T")
POLL_SECONDS = 0.2


class StopRequested(BaseException):
    """A SIGINT or SIGTERM reached the main thread."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class RunSession:
    def __init__(self, instance: dg.DagsterInstance, say: Callable[[str], None] = print):
        self.instance = instance
        self.tags = owner_tags()
        self._say = say
        self._stopping = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> RunSession:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        if isinstance(exc, StopRequested):
            self.stop(exc.signum)

    def _on_signal(self, signum: int, frame) -> None:
        if self._stopping:
            os._exit(128 + signum)
        self._stopping = True
        raise StopRequested(signum)

    def recover(self) -> None:
        """Fail the runs that a process which no longer exists left in progress (a killed earlier demo)."""
        for line in fail_orphaned_runs(self.instance):
            self._say(f"recovered: {line}")

    def wait_for_pools(self, pools: set[str]) -> None:
        """Wait, saying who holds them, until every pool in `pools` has room; runs whose worker is gone are
        failed rather than waited for."""
        told = None
        while True:
            full = holders(self.instance, pools)
            abandoned = [record.dagster_run for records in full.values() for record in records]
            if abandoned and fail_orphaned_runs(self.instance, abandoned):
                continue
            if not full:
                return
            message = "; ".join(describe(pool, records) for pool, records in full.items())
            if message != told:
                self._say(f"  waiting: {message}")
                told = message
            time.sleep(1)

    def execute(self, work: Callable[[], T]) -> T:
        """Run `work` (which executes runs tagged with `self.tags`) in a worker thread, signals staying here."""
        outcome: dict[str, object] = {}

        def target() -> None:
            try:
                outcome["value"] = work()
            except BaseException as exc:  # handed to the main thread
                outcome["error"] = exc

        worker = threading.Thread(target=target, name="strata-run", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(POLL_SECONDS)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    def stop(self, signum: int) -> NoReturn:
        name = signal.Signals(signum).name
        # A run created but not yet started counts too: nothing would ever start it.
        statuses = [*IN_PROGRESS, dg.DagsterRunStatus.NOT_STARTED]
        mine = self.instance.get_runs(
            filters=dg.RunsFilter(statuses=statuses, tags={OWNER_TAG: self.tags[OWNER_TAG]})
        )
        for run in mine:
            release(self.instance, run, f"Canceled: the process executing it received {name}.", canceled=True)
            self._say(f"stopped by {name}: run {run.run_id} canceled, its pools freed")
        for child in psutil.Process().children(recursive=True):
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        sys.stdout.flush()
        os._exit(128 + signum)
