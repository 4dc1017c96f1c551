"""Qdrant: a server URL (`http(s)://`), or an embedded Qdrant Edge store in a folder (a `file://` URL or a path).

Both give a `VectorStore` (resources/vector_store.py): `writer(collection)` for the one sync that changes a
collection, `reader(collection)` for search and checks. Embedded readers open the last published generation and
never wait for, or block, the writer (resources/edge_store.py). A store that cannot be used right now (another sync
writing, a server that cannot be reached, nothing published yet) raises `QdrantUnavailableError`, naming the store.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from resources.stores import StoreResource
from resources.vector_store import VectorStore

POOL = "qdrant"
# What qdrant-client's local mode, the embedded store before Qdrant Edge, left in the folder.
LOCAL_MODE_FILES = ("meta.json", "collection", ".lock")


class QdrantUnavailableError(RuntimeError):
    """The Qdrant store cannot be used right now; retrying later may succeed."""


class QdrantResource(StoreResource):
    SERVER_SCHEMES = ("http://", "https://")

    # The key itself never enters run config or metadata: it is read from this variable when connecting.
    api_key_env: str = "STRATA_QDRANT_API_KEY"
    timeout_seconds: int = 60

    @contextmanager
    def writer(
        self, collection: str, log: Callable[[str], None] = lambda message: None
    ) -> Iterator[VectorStore]:
        """The collection for writing; an embedded store publishes the changes when the block ends without error."""
        if not self.is_embedded:
            with self._server(collection) as store:
                yield store
            return
        from resources.edge_store import StoreBusyError

        legacy = self._local_mode_store()
        if legacy:
            log(
                f"{self.folder} holds a qdrant-client local-mode store: the index is rebuilt into Qdrant Edge by a "
                "full sync, and the old store is removed once the new one is published"
            )
        try:
            with self._edge(collection).writer(log) as store:
                yield store
        except StoreBusyError as exc:
            raise QdrantUnavailableError(str(exc)) from exc
        for name in legacy:
            path = Path(self.folder) / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()

    @contextmanager
    def reader(self, collection: str) -> Iterator[VectorStore]:
        """The collection as last published (embedded) or as the server holds it now."""
        if not self.is_embedded:
            with self._server(collection) as store:
                yield store
            return
        from resources.edge_store import NotPublishedError

        try:
            with self._edge(collection).reader() as store:
                yield store
        except NotPublishedError as exc:
            raise QdrantUnavailableError(f"{exc}: materialize vector/{collection} first") from exc

    def _edge(self, collection: str):
        from resources.edge_store import EdgeCollection

        return EdgeCollection(Path(self.folder) / "edge" / collection)

    def _local_mode_store(self) -> list[str]:
        folder = Path(self.folder)
        if not (folder / "meta.json").is_file():
            return []
        return [name for name in LOCAL_MODE_FILES if (folder / name).exists()]

    @contextmanager
    def _server(self, collection: str) -> Iterator[VectorStore]:
        from qdrant_client import QdrantClient
        from qdrant_client.http.exceptions import ResponseHandlingException

        from resources.server_store import ServerStore

        api_key = os.environ.get(self.api_key_env) or None
        client = QdrantClient(url=self.url, api_key=api_key, timeout=self.timeout_seconds)
        try:
            yield ServerStore(client, collection, server=self._server_address())
        except ResponseHandlingException as exc:
            # No response at all (refused, timed out): the server is down or unreachable.
            raise QdrantUnavailableError(
                f"Qdrant server {self._server_address()} is unreachable: {type(exc.source).__name__}: {exc.source}"
            ) from exc
        finally:
            client.close()

    def _server_address(self) -> str:
        """scheme://host:port of the server URL (never its user info or query)."""
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}"
