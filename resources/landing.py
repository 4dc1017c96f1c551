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
        """The POSIX path of `path` relative to the root, as it appears in the folder (a symlink is not
        followed): the form stored in the load ledger."""
        return path.absolute().relative_to(self.root_path).as_posix()

    def iter_files(self, prefix: str) -> Iterator[Path]:
        """Files and symlinks under `prefix`, in path order, without following symlinks; hidden names (a
        sender's temporary uploads) are skipped. Callers `resolve` each before reading it."""
        base = self.resolve(prefix)
        if not base.is_dir():
            return
        found = []
        for folder, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            links = [d for d in dirs if os.path.islink(os.path.join(folder, d))]
            found.extend(Path(folder, name) for name in [*files, *links] if not name.startswith("."))
        yield from sorted(found)

    def settled_path(self, relative: str, *, errored: bool) -> str:
        """Where a file of `relative` rests once its load has finished."""
        if self.after_load == "leave":
            return relative
        return f"{'error' if errored else 'archive'}/{relative}"

    def write(self, relative: str, data: bytes) -> Path:
        """Write a file within the root whole or not at all, and durably: under a hidden name (which scans
        skip), flushed to disk, then renamed into place and the rename flushed too. Once this returns, a crash
        of the process or the machine keeps the file."""
        target = self.resolve(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
        return target

    def move(self, source: str, target: str) -> None:
        """Move a file within the root (atomic rename; replaces an identical earlier copy at the target)."""
        src, dst = self.resolve(source), self.resolve(target)
        if src == dst:
            return
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
