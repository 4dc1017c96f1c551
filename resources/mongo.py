"""MongoDB: a real server (`mongodb://`, `mongodb+srv://`) or the on-disk litemongo store (a `file://` URL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit
from urllib.request import url2pathname

import dagster as dg


class MongoResource(dg.ConfigurableResource):
    url: str
    database_name: str = "strata"
    server_selection_timeout_ms: int = 5000

    @property
    def is_embedded(self) -> bool:
        return not self.url.startswith(("mongodb://", "mongodb+srv://"))

    @contextmanager
    def client(self) -> Iterator:
        if self.is_embedded:
            import litemongo

            path = url2pathname(urlsplit(self.url).path) if self.url.startswith("file:") else self.url
            client = litemongo.connect(f"{path}#{self.database_name}")
        else:
            import pymongo

            client = pymongo.MongoClient(self.url, serverSelectionTimeoutMS=self.server_selection_timeout_ms)
        try:
            yield client
        finally:
            client.close()

    @contextmanager
    def database(self, name: str | None = None) -> Iterator:
        """The operational database, or another one of the same server (e.g. `bronze`)."""
        with self.client() as client:
            yield client[name or self.database_name]
