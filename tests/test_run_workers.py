"""Runs left in progress by a process that is gone: which ones `strata up` fails before `dagster dev` starts
again, and which ones it leaves alone."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from dagster._core.test_utils import instance_for_test

from strata.run_workers import OWNER_TAG, Worker, fail_orphaned_runs

LOCAL = json.dumps({"host": "localhost", "port": 4266})
REMOTE = json.dumps({"host": "worker-7.internal", "port": 4266})


@pytest.fixture
def instance():
    with instance_for_test() as instance:
        yield instance


def run_in(instance: dg.DagsterInstance, status: dg.DagsterRunStatus, tags: dict[str, str]) -> str:
    run = dg.DagsterRun(job_name="__ASSET_JOB", status=status, tags=tags)
    instance.add_run(run)
    return run.run_id


def test_a_stopped_dagster_devs_runs_still_launching_are_failed_and_nothing_else(instance):
    launching = run_in(instance, dg.DagsterRunStatus.STARTING, {".dagster/grpc_info": LOCAL})
    on_another_host = run_in(instance, dg.DagsterRunStatus.STARTING, {".dagster/grpc_info": REMOTE})
    own_process = run_in(instance, dg.DagsterRunStatus.STARTING, {OWNER_TAG: Worker.current().tag()})

    assert fail_orphaned_runs(instance) == []  # while dagster dev may still launch it, nothing is failed
    done = fail_orphaned_runs(instance, launcher_stopped=True)

    assert done == [
        f"run {launching} (STARTING): the `dagster dev` launching it stopped before its run worker started; "
        "marked failed, its pools freed"
    ]
    status = {
        run_id: instance.get_run_by_id(run_id).status for run_id in (launching, on_another_host, own_process)
    }
    assert status == {
        launching: dg.DagsterRunStatus.FAILURE,
        on_another_host: dg.DagsterRunStatus.STARTING,
        # Executed by this very process, which is alive: not a run dagster dev launches.
        own_process: dg.DagsterRunStatus.STARTING,
    }


def test_a_run_whose_worker_died_is_failed_even_while_its_launcher_runs(instance):
    dead = Worker(Worker.current().host, 2**22 + 17, 1.0)  # above Linux's largest pid: no such process
    run_id = run_in(instance, dg.DagsterRunStatus.STARTED, {OWNER_TAG: dead.tag()})

    done = fail_orphaned_runs(instance)

    assert [line.split(":", 1)[0] for line in done] == [f"run {run_id} (STARTED)"]
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
