"""The bench framework: a context shared by the scenarios of one run, their results, and the report.

A scenario is a function `(BenchContext) -> ScenarioResult`. It records absolute figures (one dict per
measured thing: Strata and each anchor), ratios between them, and targets over figures or ratios; the
framework prints the table and writes `$STRATA_HOME/bench/latest.json`. A missed target is reported, never
raised: the other scenarios still run, and `strata bench` exits 1 at the end (strata.bench.run).
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from strata import services
from strata.config import Settings, with_database

BENCH_DATABASE = "bench"
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Target:
    """`value` (a figure or a ratio) must be ≥, > or ≤ `bound`."""

    name: str
    value: float | None
    op: str  # ">=", ">" or "<="
    bound: float
    unit: str = ""

    @property
    def met(self) -> bool:
        if self.value is None:
            return False
        if self.op == ">":
            return self.value > self.bound
        return self.value >= self.bound if self.op == ">=" else self.value <= self.bound

    def text(self) -> str:
        return f"{self.name} {self.op} {self.bound:g}{self.unit}"

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "value": _round(self.value),
            "target": self.text(),
            "op": self.op,
            "bound": self.bound,
            "unit": self.unit,
            "met": self.met,
        }


@dataclass
class ScenarioResult:
    name: str
    description: str
    figures: dict[str, dict] = field(default_factory=dict)
    ratios: dict[str, float | None] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Columns of the printed table: (header, key in each figure dict, format).
    columns: list[tuple[str, str, str]] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    def ratio(self, name: str, numerator: float | None, denominator: float | None) -> float | None:
        value = numerator / denominator if numerator and denominator else None
        self.ratios[name] = value
        return value

    def target(self, name: str, value: float | None, op: str, bound: float, unit: str = "") -> None:
        self.targets.append(Target(name, value, op, bound, unit))

    @property
    def met(self) -> bool:
        return self.error is None and all(t.met for t in self.targets)

    def to_json(self) -> dict:
        return {
            "description": self.description,
            "figures": {k: {n: _round(v) for n, v in f.items()} for k, f in self.figures.items()},
            "ratios": {k: _round(v) for k, v in self.ratios.items()},
            "target": "; ".join(t.text() for t in self.targets),
            "targets": [t.to_json() for t in self.targets],
            "met": self.met,
            "notes": self.notes,
            "error": self.error,
            "seconds": round(self.seconds, 1),
            "columns": [list(column) for column in self.columns],
        }


@dataclass
class BenchContext:
    settings: Settings
    quick: bool = False
    anchors: bool = True  # False: skip everything that needs the anchors venv (tests)
    records: int | None = None  # override the bronze_load file size (tests)
    database: str = BENCH_DATABASE  # another name lets benches share a server (tests)
    log: Callable[[str], None] = field(default=lambda message: print(f"[bench] {message}", flush=True))
    anchor_versions: dict[str, str] = field(default_factory=dict)
    _server_url: str | None = None

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def work_dir(self) -> Path:
        path = self.home / "bench" / "work"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def url(self) -> str:
        """The bench database (never the warehouse)."""
        assert self._server_url, "services not started"
        return with_database(self._server_url, self.database)

    def start(self) -> None:
        env = services.up(self.settings)
        self._server_url = env["STRATA_POSTGRES_URL"]
        self._recreate_database()

    def finish(self) -> None:
        if self._server_url:
            self._drop_database()

    def connect(self, **kwargs) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True, **kwargs)

    def _recreate_database(self) -> None:
        self._drop_database()
        with psycopg.connect(with_database(self._server_url, "postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))

    def _drop_database(self) -> None:
        with psycopg.connect(with_database(self._server_url, "postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.database))
            )

    def run_json(
        self, args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> dict:
        """Run a child that prints its figures as the last JSON line of stdout."""
        import json

        result = subprocess.run(
            args, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=cwd or REPO_ROOT
        )
        if result.returncode != 0:
            tail = (result.stderr or result.stdout)[-3000:]
            raise RuntimeError(f"{Path(args[1]).name if len(args) > 1 else args[0]} failed:\n{tail}")
        for line in reversed(result.stdout.strip().splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"no JSON figures in the output of {args}:\n{result.stdout[-2000:]}")


def machine(ctx: BenchContext | None = None) -> dict:
    import dagster

    info = {
        "cores": os.cpu_count(),
        "memory_gb": round(_meminfo_kb("MemTotal") / 1024 / 1024, 1),
        "cpu": _cpu_model(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "dagster": dagster.__version__,
        "psycopg": psycopg.__version__,
        "postgres": None,
    }
    if ctx is not None and ctx._server_url:
        with psycopg.connect(ctx._server_url) as conn:
            info["postgres"] = conn.execute("SHOW server_version").fetchone()[0]
    return info


def _meminfo_kb(key: str) -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _round(value):
    if isinstance(value, float):
        return round(value, 4) if abs(value) < 100 else round(value, 1)
    return value


def format_value(value, fmt: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return format(value, fmt)


def render(results: list[ScenarioResult], info: dict) -> str:
    out = []
    out.append(
        f"machine: {info['cores']} cores, {info['memory_gb']} GB, {info['cpu']}; Python {info['python']}, "
        f"PostgreSQL {info['postgres']}, dagster {info['dagster']}, psycopg {info['psycopg']}"
    )
    anchors = info.get("anchors")
    if anchors:
        out.append("anchors venv: " + ", ".join(f"{k} {v}" for k, v in anchors.items()))
    for result in results:
        out.append("")
        out.append(f"== {result.name} — {result.description}")
        if result.error:
            out.append(f"   ERROR: {result.error}")
        if result.figures and result.columns:
            headers = ["", *(h for h, _, _ in result.columns)]
            rows = [
                [name, *(format_value(f.get(key), fmt) for _, key, fmt in result.columns)]
                for name, f in result.figures.items()
            ]
            widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
            for row in [headers, *rows]:
                out.append(
                    "   "
                    + "  ".join(
                        str(c).ljust(w) if i == 0 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))
                    )
                )
        if result.ratios:
            out.append(
                "   ratios: "
                + ", ".join(f"{k} = {format_value(v, '.2f')}×" for k, v in result.ratios.items())
            )
        for t in result.targets:
            value = format_value(t.value, ".3g")
            out.append(f"   [{'MET ' if t.met else 'MISS'}] {t.text()}  (measured {value}{t.unit})")
        for note in result.notes:
            out.append(f"   note: {note}")
    return "\n".join(out)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def isolated_env(home: Path) -> dict[str, str]:
    """The environment of a `strata up` of a scenario's own: its STRATA_HOME, free ports, none of the caller's
    STRATA_* / DAGSTER_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRATA_", "DAGSTER_"))}
    return env | {
        "STRATA_HOME": str(home),
        "STRATA_POSTGRES_PORT": str(free_port()),
        "STRATA_DAGSTER_PORT": str(free_port()),
    }


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


PYTHON = sys.executable
