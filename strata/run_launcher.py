"""The run launcher of a Strata instance: Dagster's default launcher, plus a health check of run workers.

Dagster's run monitoring asks the launcher whether a STARTED run's worker is still alive; the default launcher
cannot tell, so a killed worker left its run STARTED, and its pools taken, for ever. This one answers from the
worker's process (strata.run_workers): when it is gone, the monitoring daemon marks the run failed, which frees
its pools, and run retries launch it again.
"""

from dagster import DefaultRunLauncher
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus

from strata.run_workers import worker_gone


class LocalRunLauncher(DefaultRunLauncher):
    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run) -> CheckRunHealthResult:
        reason = worker_gone(self._instance, run)
        if reason:
            return CheckRunHealthResult(WorkerStatus.FAILED, reason)
        # Alive, or on another host: either way nothing to do from here.
        return CheckRunHealthResult(WorkerStatus.RUNNING)
