"""MongoDB: a real server (`mongodb://`, `mongodb+srv://`) or the on-disk litemongo store (a `file://` URL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from resources.stores import StoreResource


class MongoResource(StoreResource):
    SERVER_SCHEMES = ("mongodb://", "mongodb+srv://")

    database_name: str = "strata"
    server_selection_timeout_ms: int = 5000

    @contextmanager
    def client(self) -> Iterator:
        if self.is_embedded:
            import litemongo

            client = litemongo.connect(f"{self.folder}#{self.database_name}")
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
