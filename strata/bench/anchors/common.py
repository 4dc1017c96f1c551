"""Shared by the anchor scripts (they run in the anchors venv and never import Strata)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import orjson

BATCH = 50_000


def lines(path: str, limit: int) -> Iterator[bytes]:
    """The first `limit` lines of a JSONL file (0 = all)."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle):
            if limit and number >= limit:
                return
            yield line


class Flattener:
    """Top-level post fields as one row each: the columns the bench's column plan lists (camelCase variants
    folded into their snake_case column), nested values as JSON text, mixed-type values as text."""

    def __init__(self, plan_path: str):
        with open(plan_path) as handle:
            plan = json.load(handle)
        self.names = [c["name"] for c in plan["columns"]]
        self.types = [c["type"] for c in plan["columns"]]
        position = {name: i for i, name in enumerate(self.names)}
        self.index = {key: position[column] for key, column in plan["renames"].items()}
        self.textual = {i for i, t in enumerate(self.types) if t == "text"}

    def row(self, obj: dict) -> list:
        out = [None] * len(self.names)
        for key, value in obj.items():
            i = self.index[key]
            if isinstance(value, dict | list):
                value = orjson.dumps(value).decode()
            elif i in self.textual and value is not None and not isinstance(value, str):
                value = str(value)
            out[i] = value
        return out

    def batches(self, path: str, limit: int, size: int = BATCH) -> Iterator[list[list]]:
        batch = []
        for line in lines(path, limit):
            batch.append(self.row(orjson.loads(line)))
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch


def report(**figures) -> None:
    print(json.dumps(figures), flush=True)


def quiet_dlt() -> None:
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")


now = time.perf_counter
