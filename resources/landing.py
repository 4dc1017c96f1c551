"""The landing zone: a local folder where sources drop files. No path handed out may resolve outside it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg


class LandingPathError(ValueError):
    """A path (from a file name, a pattern or a symlink) that would escape the landing root."""


class LandingZoneResource(dg.ConfigurableResource):
    root: str

    @property
    def root_path(self) -> Path:
        return Path(self.root).resolve()

    def resolve(self, relative: str | Path) -> Path:
        """The real location of `relative` under the root; raises `LandingPathError` if it escapes
        (absolute paths, `..` segments, or symlinks pointing outside)."""
        root = self.root_path
        candidate = Path(relative)
        if candidate.is_absolute():
            raise LandingPathError(f"{str(relative)!r}: absolute paths are not allowed in the landing zone")
        resolved = (root / candidate).resolve()
        if not resolved.is_relative_to(root):
            raise LandingPathError(f"{str(relative)!r}: resolves to {resolved}, outside the landing root")
        return resolved

    def relative(self, path: Path) -> str:
        """The POSIX path of `path` relative to the root (the form stored in the load ledger)."""
        return path.resolve().relative_to(self.root_path).as_posix()

    def iter_files(self, prefix: str) -> Iterator[Path]:
        """Regular files under `prefix` in path order, skipping anything that escapes the root."""
        base = self.resolve(prefix)
        if not base.is_dir():
            return
        root = self.root_path
        for path in sorted(base.rglob("*")):
            if path.name.startswith(".") or not path.is_file():
                continue
            if path.resolve().is_relative_to(root):
                yield path
