"""Qdrant: a server URL (`http(s)://`) or qdrant-client local mode on disk (a `file://` URL or a path).

Local mode admits one client per store folder, across processes and within one: every use goes through
`client()`, which always closes, and the assets that use it share the Dagster pool `qdrant`. A store that cannot
be used right now (a local folder held by another process, a server that cannot be reached) raises
`QdrantUnavailableError`, whose message names the store.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from resources.stores import StoreResource

POOL = "qdrant"


class QdrantUnavailableError(RuntimeError):
    """The Qdrant store cannot be used right now; retrying later may succeed."""


class QdrantResource(StoreResource):
    SERVER_SCHEMES = ("http://", "https://")

    # The key itself never enters run config or metadata: it is read from this variable when connecting.
    api_key_env: str = "STRATA_QDRANT_API_KEY"
    timeout_seconds: int = 60

    @contextmanager
    def client(self) -> Iterator:
        from qdrant_client import QdrantClient
        from qdrant_client.http.exceptions import ResponseHandlingException

        if self.is_embedded:
            try:
                client = QdrantClient(path=self.folder)
            except RuntimeError as exc:
                if "already accessed" not in str(exc):
                    raise
                raise QdrantUnavailableError(
                    f"Qdrant local store {self.folder} is in use by another process (local mode admits one "
                    "client per folder)"
                ) from exc
        else:
            api_key = os.environ.get(self.api_key_env) or None
            client = QdrantClient(url=self.url, api_key=api_key, timeout=self.timeout_seconds)
        try:
            yield client
        except ResponseHandlingException as exc:
            # No response at all (refused, timed out): the server is down or unreachable.
            raise QdrantUnavailableError(
                f"Qdrant server {self._server()} is unreachable: {type(exc.source).__name__}: {exc.source}"
            ) from exc
        finally:
            client.close()

    def _server(self) -> str:
        """scheme://host:port of the server URL (never its user info or query)."""
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}"
