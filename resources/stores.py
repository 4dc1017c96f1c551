"""A store named by one URL: a server's URL, or a folder on this machine (a `file://` URL or a plain path)."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit
from urllib.request import url2pathname

import dagster as dg


class StoreResource(dg.ConfigurableResource):
    url: str

    # The URL schemes that name a server; any other URL is the embedded store's folder.
    SERVER_SCHEMES: ClassVar[tuple[str, ...]] = ()

    @property
    def is_embedded(self) -> bool:
        return not self.url.startswith(self.SERVER_SCHEMES)

    @property
    def folder(self) -> str:
        return url2pathname(urlsplit(self.url).path) if self.url.startswith("file:") else self.url
