"""The Dagster UI's GraphQL API, as the tools watching a running `strata up` use it (the bench, the tests)."""

from __future__ import annotations

import time

import httpx

IN_PROGRESS = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]
# The sensors that request refreshes: settled means each has ticked, requesting nothing, since the last run ended.
REQUESTING_SENSORS = ("landing_sensor", "reconciliation_sensor", "automation_sensor")


class Dagster:
    def __init__(self, url: str):
        self.url = url

    def query(self, query: str, **variables) -> dict:
        response = httpx.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=60
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    def runs(self, statuses: list[str] | None = None) -> list[dict]:
        data = self.query(
            """query($filter: RunsFilter) { runsOrError(filter: $filter, limit: 5000) { ... on Runs {
                 results { runId status startTime endTime creationTime tags { key value }
                   assetSelection { path } } } } }""",
            filter={"statuses": statuses} if statuses else {},
        )
        return data["runsOrError"]["results"]

    def latest(self, path: str) -> dict | None:
        """The latest materialization of an asset (any partition): run, time, partition and int metadata."""
        data = self.query(
            """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
                 assetMaterializations(limit: 1) { runId timestamp partition
                   metadataEntries { label ... on IntMetadataEntry { intValue } } } } } }""",
            key={"path": path.split("/")},
        )
        events = data["assetNodeOrError"]["assetMaterializations"]
        if not events:
            return None
        event = events[0]
        event["metadata"] = {e["label"]: e.get("intValue") for e in event.pop("metadataEntries")}
        return event

    def asset_keys(self) -> list[str]:
        return [
            "/".join(n["assetKey"]["path"])
            for n in self.query("{ assetNodes { assetKey { path } } }")["assetNodes"]
        ]

    def checks(self) -> list[dict]:
        """Every check of every asset with the evaluation of its latest execution."""
        data = self.query(
            """{ assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks {
                 name blocking executionForLatestMaterialization { status
                   evaluation { severity success partition } } } } } } }"""
        )
        found = []
        for node in data["assetNodes"]:
            for check in (node["assetChecksOrError"] or {}).get("checks", []):
                found.append({"asset": "/".join(node["assetKey"]["path"]), **check})
        return found

    def ticks(self, sensor: str, limit: int = 5) -> list[dict]:
        data = self.query(
            """query($selector: SensorSelector!, $limit: Int) { sensorOrError(sensorSelector: $selector) {
                 ... on Sensor { sensorState { ticks(limit: $limit) { status timestamp runIds } } } } }""",
            selector={
                "repositoryLocationName": "strata",
                "repositoryName": "__repository__",
                "sensorName": sensor,
            },
            limit=limit,
        )
        return data["sensorOrError"]["sensorState"]["ticks"]

    def settled(self, wanted: list[str], since: float = 0.0) -> bool:
        """No run in progress, every `wanted` asset materialized, and every requesting sensor has ticked without
        asking for anything since the last run ended (and since `since`, epoch seconds: after a file landed)."""
        if self.runs(IN_PROGRESS):
            return False
        if not all(self.latest(path) for path in wanted):
            return False
        ended = max([since, *(float(run["endTime"] or 0) for run in self.runs())])
        for sensor in REQUESTING_SENSORS:
            quiet = [t for t in self.ticks(sensor) if float(t["timestamp"]) > ended and not t["runIds"]]
            if not quiet or quiet[0]["status"] not in ("SKIPPED", "SUCCESS"):
                return False
        return not self.runs(IN_PROGRESS)

    def settle(self, wanted: list[str], timeout: float, since: float | None = None) -> float:
        """Seconds until `settled` (since now, by default); fails after `timeout`."""
        started, since = time.monotonic(), time.time() if since is None else since
        while time.monotonic() - started < timeout:
            if self.settled(wanted, since):
                return time.monotonic() - started
            time.sleep(2)
        raise AssertionError(
            f"not settled after {timeout:.0f} s: {len(self.runs(IN_PROGRESS))} runs in progress"
        )


def cron_repeats(runs: list[dict]) -> list[dict]:
    """The runs (as `Dagster.runs` returns them) that only rebuild, on a cron tick, what earlier runs had already
    built: every asset of the run is refreshed by cron ticks (the extractions on a schedule and what is built from
    them) and was materialized by an earlier run, or only a cron tick ever builds it (the hourly source
    freshness)."""
    from assets.automation.conditions import only_on_cron_ticks, refreshed_by_cron_ticks
    from strata.definitions import defs

    graph = defs.resolve_asset_graph()
    refreshed_by_cron = {key.to_user_string() for key in refreshed_by_cron_ticks(graph)}
    only_on_cron = {key.to_user_string() for key in only_on_cron_ticks(graph)}
    built: set[str] = set()
    repeats = []
    for run in sorted(runs, key=lambda r: float(r["creationTime"])):
        keys = {"/".join(k["path"]) for k in run["assetSelection"] or []}
        if keys and keys <= refreshed_by_cron and (keys <= built or keys <= only_on_cron):
            repeats.append(run)
        built |= keys
    return repeats


def built_from_landed_data(keys: list[str]) -> list[str]:
    """Of `keys`, the assets a landed drop builds: not the observability assets (the check history and dashboard
    follow check outcomes, the source freshness runs on its cron), nor those that may stay empty (a pulled
    source's bronze waits for an extraction no drop holds)."""
    from assets.conventions import MAY_STAY_EMPTY
    from strata.definitions import defs

    graph = defs.resolve_asset_graph()
    not_from_the_drop = {
        key.to_user_string()
        for key in graph.materializable_asset_keys
        if graph.get(key).group_name == "observability" or MAY_STAY_EMPTY in graph.get(key).tags
    }
    return [key for key in keys if key not in not_from_the_drop]
