"""The `strata` command line as a user types it: services up, status and down, generate, search in plain text
and as JSON, env without secrets; and the process handling behind `strata up`/`down` (a stale pid file, a
dagster that ignores SIGTERM, a port already in use)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from datetime import date
from pathlib import Path

import psutil
import pytest

from strata import dagster_process, services
from strata.config import Settings
from tests.conftest import free_port, isolated_env

REPO = Path(__file__).resolve().parent.parent
STRATA = str(Path(sys.executable).with_name("strata"))


def strata(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([STRATA, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def test_services_up_status_and_down_print_one_line_per_service(home):
    env = isolated_env(home, dagster=False)
    port = env["STRATA_POSTGRES_PORT"]
    try:
        up = strata(env, "services", "up")
        status = strata(env, "services", "status")
    finally:
        down = strata(env, "services", "down")

    running = [
        f"postgres running postgresql://postgres@127.0.0.1:{port}/strata",
        f"mongo running {(home / 'mongo').as_uri()}",
        f"qdrant running {(home / 'qdrant').as_uri()}",
    ]
    assert up.stdout.splitlines() == running == status.stdout.splitlines()
    assert down.stdout.splitlines() == [line.replace(" running ", " stopped ") for line in running]


def test_status_masks_passwords_and_env_never_prints_a_secret(home):
    env = isolated_env(home, dagster=False) | {
        "STRATA_POSTGRES_URL": f"postgresql://app:hunter2@127.0.0.1:{free_port()}/db",
        "STRATA_MONGO_URL": f"mongodb://app:s3cr3t@127.0.0.1:{free_port()}",
        "STRATA_PII_SALT": "pepper-42",
    }

    status = strata(env, "services", "status")
    exported = strata(env, "env")
    generated = strata(isolated_env(home, dagster=False), "env")

    assert status.stdout.splitlines()[:2] == [
        f"postgres stopped {env['STRATA_POSTGRES_URL'].replace('hunter2', '***')}",
        f"mongo stopped {env['STRATA_MONGO_URL'].replace('s3cr3t', '***')}",
    ]
    # A secret set by the user is already in the shell; a generated one is read from its file by the shell.
    assert "pepper-42" not in exported.stdout and "STRATA_PII_SALT" not in exported.stdout
    # URLs holding a password, the user's and the instance storage's derived from it, are left out.
    assert "hunter2" not in exported.stdout and "s3cr3t" not in exported.stdout
    assert "# STRATA_POSTGRES_URL holds a password: not printed" in exported.stdout
    assert "# STRATA_DAGSTER_STORAGE_URL holds a password: not printed" in exported.stdout
    salt_file = home / "secrets" / "pii_salt"
    assert f'export STRATA_PII_SALT="$(cat {salt_file})"' in generated.stdout
    assert salt_file.read_text().strip() not in generated.stdout
    assert "export STRATA_POSTGRES_URL=" in generated.stdout


def test_generate_writes_a_deterministic_drop_and_its_manifest(tmp_path):
    env = isolated_env(tmp_path, dagster=False)
    out = tmp_path / "drop"

    first = strata(
        env, "generate", "--out", str(out), "--days", "1", "--sources", "video_users", "--no-mongo"
    )
    digest = json.loads((out / "manifest.json").read_text())["sources"]["video_users"]["files"]
    again = strata(
        env, "generate", "--out", str(tmp_path / "again"), "--days", "1", "--sources", "video_users"
    )

    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0].split() == ["video_users", "files=", "1", "records=500"]
    assert first.stdout.splitlines()[-1] == f"manifest: {out / 'manifest.json'}"
    assert [f["path"] for f in digest] == ["video/users/users.csv"]
    assert (
        json.loads((tmp_path / "again" / "manifest.json").read_text())["sources"]["video_users"]["files"]
        == digest
    )
    assert again.returncode == 0


def test_generate_serve_api_serves_the_drops_tweets_behind_the_token_until_interrupted(tmp_path):
    import httpx

    from tests.conftest import shell_signals

    port = free_port()
    env = isolated_env(tmp_path, dagster=False) | {"STRATA_TWEETS_API_TOKEN": "cli-token"}
    args = [
        "generate",
        "--out",
        str(tmp_path / "drop"),
        "--days",
        "1",
        "--sources",
        "video_users",
        "--no-mongo",
    ]
    child = subprocess.Popen(
        [STRATA, *args, "--serve-api", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=shell_signals,
    )
    try:
        serving = next(line for line in child.stdout if line.startswith("recent search:"))
        url = f"http://127.0.0.1:{port}/2/tweets/search/recent"
        page = httpx.get(
            url, params={"query": "brands"}, headers={"Authorization": "Bearer cli-token"}
        ).json()
        refused = httpx.get(url, params={"query": "brands"})
    finally:
        child.send_signal(signal.SIGINT)
        code = child.wait(timeout=30)

    assert serving.startswith(f"recent search: {url} (300 tweets;")
    assert page["meta"]["result_count"] == 10 and page["meta"]["next_token"] == "p10"
    assert refused.status_code == 401
    assert code == 0


def test_search_prints_ranked_results_in_plain_text_and_as_json(home):
    from assets.vector.content_index import sync_documents
    from assets.vector.search import COLLECTION
    from assets.vector.sync import Document
    from resources import EmbeddingModelResource, QdrantResource

    embedder = EmbeddingModelResource()
    documents = [
        Document(
            "post:youtube:1",
            "post",
            "my kitten chases a red laser dot",
            "youtube",
            "yt_1",
            date(2026, 11, 2),
            5,
        ),
        Document(
            "post:x:2", "post", "quarterly tax filing deadlines explained", "x", "x_1", date(2026, 11, 3), 9
        ),
        Document(
            "video:v1", "video", "a cat naps in the sun all afternoon", None, None, date(2026, 10, 1), None
        ),
    ]
    env = isolated_env(home, dagster=False)
    before = strata(env, "search", "cute cat")
    with QdrantResource(url=(home / "qdrant").as_uri()).writer(COLLECTION) as store:
        sync_documents(store, documents, embedder)

    plain = strata(env, "search", "cute cat", "--limit", "2")
    filtered = strata(env, "search", "cute cat", "--network", "youtube", "--since", "2026-11-01", "--json")
    nothing = strata(env, "search", "cute cat", "--account", "nobody")
    exact = strata(env, "search", "tax", "--mode", "sparse", "--json")

    lines = plain.stdout.splitlines()
    # The two cat texts, ranked, each with its score and payload; the tax text is not among them.
    assert [line[:5] for line in lines] == ["  1. ", "  2. "] and "tax" not in plain.stdout
    assert "[post youtube yt_1 2026-11-02]  my kitten chases a red laser dot" in plain.stdout
    assert "[video 2026-10-01]  a cat naps in the sun all afternoon" in plain.stdout
    results = json.loads(filtered.stdout)["results"]
    assert [r["document_key"] for r in results] == ["post:youtube:1"]
    assert nothing.stdout.strip() == "no results"
    assert [r["document_key"] for r in json.loads(exact.stdout)["results"]] == ["post:x:2"]
    assert json.loads(exact.stdout)["filters"]["mode"] == "sparse"
    assert before.returncode == 1
    assert (
        "no index has been published" in before.stderr and "materialize vector/content_index" in before.stderr
    )


def test_a_stale_pid_file_is_cleared_and_a_dagster_ignoring_sigterm_is_killed(home):
    settings = Settings.from_env({"STRATA_HOME": str(home)})
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    pid_file = home / "dagster-dev.pid"
    pid_file.write_text(str(finished.pid))

    assert dagster_process.running_pid(settings) is None and not pid_file.exists()

    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(120)",
            "dev",  # its command line reads as a `dagster dev`'s: a pid of another program is never stopped
        ],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    stubborn.stdout.readline()
    pid_file.write_text(str(stubborn.pid))

    assert dagster_process.stop(settings, timeout=1) is True
    assert stubborn.wait(timeout=30) == -signal.SIGKILL
    assert not pid_file.exists()


def test_a_port_in_use_is_named_and_the_way_out_given(home):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = Settings.from_env({"STRATA_HOME": str(home), "STRATA_POSTGRES_PORT": str(port)})

        with pytest.raises(RuntimeError) as refused:
            services.up(settings)

    assert f"127.0.0.1:{port} is already in use" in str(refused.value)
    assert "STRATA_POSTGRES_PORT" in str(refused.value) and "STRATA_POSTGRES_URL" in str(refused.value)
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(home) in " ".join(p.info["cmdline"] or [])]


def test_a_dagster_port_in_use_is_named_and_no_dagster_is_started(home):
    # Something that answers like a Dagster webserver: `strata up` must not take it for its own.
    server = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "0"],
        cwd=home,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(server.stdout.readline().split(" port ")[1].split()[0])
        settings = Settings.from_env({"STRATA_HOME": str(home), "STRATA_DAGSTER_PORT": str(port)})
        (home / "server_info").write_text("{}")

        with pytest.raises(RuntimeError) as refused:
            dagster_process.start(settings, {})
    finally:
        server.kill()
        server.wait(timeout=30)

    assert str(refused.value) == (
        f"cannot start dagster dev: 127.0.0.1:{port} is already in use (set STRATA_DAGSTER_PORT to a free port)"
    )
    assert dagster_process.running_pid(settings) is None and not (home / "dagster-dev.pid").exists()
