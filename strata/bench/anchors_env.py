"""The anchors' own virtual environment: dlt, pandas, Sling and their drivers never touch Strata's dependencies.

Created under `$STRATA_HOME/bench/anchors-venv` on first use and reused while its requirements are unchanged
(a stamp file records them). Anchor loads run as subprocesses of its python with the scripts in `anchors/`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

REQUIREMENTS = (
    "dlt[postgres]==1.31.0",
    "pandas",
    "pyarrow",
    "psycopg[binary]",
    "psycopg2-binary",
    "sqlalchemy",
    "sling-linux-amd64==1.4.11",
)
SCRIPTS = Path(__file__).resolve().parent / "anchors"


def venv_dir(home: Path) -> Path:
    return home / "bench" / "anchors-venv"


def python(home: Path, log=print) -> Path:
    """The anchors venv's python, creating and installing the venv first if needed."""
    root = venv_dir(home)
    exe = root / "bin" / "python"
    stamp = root / ".bench-requirements.json"
    wanted = json.dumps(sorted(REQUIREMENTS))
    if exe.exists() and stamp.exists() and stamp.read_text() == wanted:
        return exe
    started = time.monotonic()
    log(f"creating the anchors venv at {root} (first use): {' '.join(REQUIREMENTS)}")
    subprocess.run([_base_python(), "-m", "venv", "--clear", str(root)], check=True)
    subprocess.run(
        [str(exe), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *REQUIREMENTS],
        check=True,
    )
    stamp.write_text(wanted)
    log(f"anchors venv ready in {time.monotonic() - started:.0f} s")
    return exe


def versions(exe: Path) -> dict[str, str]:
    """Versions of the anchor libraries, as installed in the anchors venv."""
    code = (
        "import json, importlib.metadata as m\n"
        "print(json.dumps({n: m.version(n) for n in "
        "('dlt', 'pandas', 'pyarrow', 'psycopg', 'psycopg2-binary', 'sqlalchemy', 'sling-linux-amd64')}))"
    )
    out = subprocess.run([str(exe), "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def _base_python() -> str:
    """The interpreter Strata's venv was made from (a venv of a venv would still share nothing, but the base
    interpreter is the plain one)."""
    return str(Path(getattr(sys, "_base_executable", sys.executable)))
