"""Qdrant: a server URL (`http(s)://`) or qdrant-client local mode on disk (a `file://` URL or a path).

Local mode admits one client per store folder, across processes and within one: every use goes through
`client()`, which always closes, and the assets that use it share the Dagster pool `qdrant`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit
from urllib.request import url2pathname

import dagster as dg

POOL = "qdrant"


class QdrantResource(dg.ConfigurableResource):
    url: str
    # The key itself never enters run config or metadata: it is read from this variable when connecting.
    api_key_env: str = "STRATA_QDRANT_API_KEY"
    timeout_seconds: int = 60

    @property
    def is_local(self) -> bool:
        return not self.url.startswith(("http://", "https://"))

    @contextmanager
    def client(self) -> Iterator:
        from qdrant_client import QdrantClient

        if self.is_local:
            path = url2pathname(urlsplit(self.url).path) if self.url.startswith("file:") else self.url
            client = QdrantClient(path=path)
        else:
            api_key = os.environ.get(self.api_key_env) or None
            client = QdrantClient(url=self.url, api_key=api_key, timeout=self.timeout_seconds)
        try:
            yield client
        finally:
            client.close()
