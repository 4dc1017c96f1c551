"""`strata demo`, the pipeline headless: it lands the sample drop, materializes everything once, prints the
summary, and its exit status says whether every run succeeded and every blocking check passed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from tests.conftest import isolated_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

REPO = Path(__file__).resolve().parent.parent
STRATA = str(Path(sys.executable).with_name("strata"))


@pytest.fixture
def demo_env():
    home = Path(tempfile.mkdtemp(prefix="strata-demo-"))
    env = isolated_env(home, dagster=False)
    try:
        yield env
    finally:
        subprocess.run([STRATA, "down"], cwd=REPO, env=env, capture_output=True, timeout=120)
        shutil.rmtree(home, ignore_errors=True)


def demo(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([STRATA, "demo"], cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)


def test_demo_exits_zero_on_the_sample_drop_and_non_zero_when_a_blocking_check_fails(demo_env):
    passed = demo(demo_env)

    assert passed.returncode == 0, passed.stdout[-4000:] + passed.stderr[-4000:]
    for section in ("== rows per layer ==", "== checks ==", "== freshness ==", "== semantic search"):
        assert section in passed.stdout
    assert "demo: OK" in passed.stdout

    # Someone copies a bronze row by hand: the next load's no_duplicate_records check (ERROR, blocking) fails.
    with psycopg.connect(
        f"postgresql://postgres@127.0.0.1:{demo_env['STRATA_POSTGRES_PORT']}/strata"
    ) as conn:
        conn.execute("INSERT INTO bronze.video_users SELECT * FROM bronze.video_users LIMIT 1")
    failed = demo(demo_env)

    assert failed.returncode == 1, failed.stdout[-4000:]
    assert (
        "blocking check failed: bronze/video_users: bronze/video_users no_duplicate_records" in failed.stdout
    )
    assert "demo: FAILED" in failed.stdout
