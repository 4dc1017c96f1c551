"""The landing zone: a local folder where sources drop files. No path handed out may resolve outside it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import dagster as dg


class LandingPathError(ValueError):
    """A path (from a file name, a pattern or a symlink) that would escape the landing root."""


class LandingZoneResource(dg.ConfigurableResource):
    root: str
    # After a load, files move to archive/ (or error/) under the root, or stay where they landed.
    after_load: Literal["archive", "leave"] = "archive"

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

    def settled_path(self, relative: str, *, errored: bool) -> str:
        """Where a file of `relative` rests once its load has finished."""
        if self.after_load == "leave":
            return relative
        return f"{'error' if errored else 'archive'}/{relative}"

    def move(self, source: str, target: str) -> None:
        """Move a file within the root (atomic rename; replaces an identical earlier copy at the target)."""
        src, dst = self.resolve(source), self.resolve(target)
        if src == dst:
            return
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
