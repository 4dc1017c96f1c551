"""Run settings plus the deterministic building blocks every source module shares."""

from __future__ import annotations

import gzip
import hashlib
import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import IO

from strata.generate.faults import FaultRates

GENERATOR_VERSION = "strata-generate/1.0"

# Key lists in the manifest grow with scale; above this they are replaced by counts and digests.
SMALL_SCALE = 2


@dataclass(frozen=True)
class Run:
    out: Path
    seed: int
    scale: int
    days: int
    start: date
    rates: FaultRates

    @property
    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    @property
    def small(self) -> bool:
        return self.scale <= SMALL_SCALE


def mix(*parts: object) -> int:
    """A 64-bit value that depends only on `parts`: Python's hash() is salted per process."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def rng_for(*parts: object) -> random.Random:
    return random.Random(mix(*parts))


def split_scale(scale: int, cap: int) -> tuple[int, int]:
    """(records multiplier per file, file multiplier): files grow up to `cap` times, then multiply,
    which bounds both a file held in memory and the length of the manifest's file list."""
    return min(scale, cap), -(-scale // cap)


def assign(rng: random.Random, n: int, rates: Mapping[str, float]) -> dict[int, str]:
    """Spread file-level faults over n candidate files, one kind per file.

    Each kind gets round(rate * n) files but at least one when its rate is positive, so that every
    fault kind is present even at scale 1 where there are only a handful of files.
    """
    wanted = [(kind, max(1, round(rate * n))) for kind, rate in rates.items() if rate > 0]
    total = min(n, sum(k for _, k in wanted))
    chosen = iter(rng.sample(range(n), total))
    placed: dict[int, str] = {}
    for kind, k in wanted:
        for index in (next(chosen, None) for _ in range(k)):
            if index is not None:
                placed[index] = kind
    return placed


def gzip_bytes(data: bytes) -> bytes:
    # mtime=0 (and gzip.compress never writes a file name) keeps the output byte-identical across runs.
    return gzip.compress(data, compresslevel=6, mtime=0)


@contextmanager
def open_out(path: Path, *, gz: bool = False) -> Iterator[IO[bytes]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw:
        if not gz:
            yield raw
            return
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as zipped:
            yield zipped


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
