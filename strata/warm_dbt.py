"""`strata-dbt`: the dbt CLI without its start-up cost. dagster-dbt runs it as its dbt executable.

A dbt process spends a large part of a small build's CPU before it does anything: importing dbt (mashumaro
compiles a (de)serializer for every dataclass at import) and loading the Postgres adapter. Here one server process per environment imports dbt once and forks one child per
invocation. The child takes the client's stdin, stdout and stderr, working directory, environment and
arguments, and then runs what `dbt` runs. Output, exit code and signals are the ones of plain `dbt`:

- SIGINT, SIGTERM, SIGHUP and SIGQUIT received by the client are passed on to the child (dagster-dbt stops dbt
  with SIGINT). A child that dies of one makes the client die of it too.
- A client that dies takes its child along: the child is killed as soon as its connection closes, as a process
  group killed with dbt inside (a container stopped, a run worker killed) always did.
- If the server cannot be reached, the client starts one in the background and runs plain `dbt` itself this
  time; nothing waits for the server.

The server keeps nothing from one invocation to the next (it never runs dbt itself), reads no secret (it starts
with a scrubbed environment; each child gets its client's), listens on a socket only its user can open, and
exits after `IDLE_SECONDS` without a request. Its socket is named after the environment, dbt's version and this
file, so a new install or an edit of this file gets a new server.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from importlib.metadata import version
from pathlib import Path

IDLE_SECONDS = 120
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
# What the server's own environment keeps: enough to import dbt, none of a client's settings or secrets.
SERVER_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "PYTHONPATH")
# Child → client: the child started dbt ("S"); dbt ended ("X" and its exit code, 4 bytes).
STARTED, EXITED = b"S", b"X"
_HEADER = struct.Struct("!I")
_CODE = struct.Struct("!i")


def plain_dbt() -> str:
    """The `dbt` console script of this environment."""
    return str(Path(sys.executable).with_name("dbt"))


def socket_path() -> Path:
    """This environment's server socket, in a folder only the user can enter."""
    key = hashlib.sha256(
        "\0".join([sys.prefix, version("dbt-core"), str(Path(__file__).stat().st_mtime_ns)]).encode()
    ).hexdigest()[:16]
    root = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"strata-dbt-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    return root / f"{key}.sock"


# -- the client ------------------------------------------------------------------------------------------


def main() -> None:
    """Run `dbt ARGS` in a child of the warm server, or plain `dbt ARGS` when there is none yet."""
    args = sys.argv[1:]
    try:
        path = socket_path()
    except OSError:  # no folder of its own for the socket: no server either
        _exec_plain(args)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        with contextlib.suppress(OSError):
            start_server(path)
        _exec_plain(args)
    request = json.dumps({"args": args, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
    try:
        socket.send_fds(conn, [_HEADER.pack(len(request))], [0, 1, 2])
        conn.sendall(request)
        started = conn.recv(1) == STARTED
    except OSError:
        started = False
    if not started:
        # The server went away (its idle exit) before a child took the request: nothing of it ran.
        conn.close()
        _exec_plain(args)
    sys.exit(_follow(conn))


def _exec_plain(args: list[str]) -> None:
    os.execv(sys.executable, [sys.executable, plain_dbt(), *args])


def _follow(conn: socket.socket) -> int:
    """Pass signals on to the child until it reports its exit code; die of the signal that killed it."""
    forwarded: list[int] = []

    def forward(signum, frame):
        forwarded.append(signum)
        with contextlib.suppress(OSError):
            conn.sendall(bytes([signum]))

    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, forward)
    try:
        message = _receive(conn, 1 + _CODE.size)
    except OSError:
        message = b""
    if message[:1] == EXITED:
        return _CODE.unpack(message[1:])[0]
    # The child died without a word: of the signal passed on to it, or of one sent to it directly (SIGKILL).
    died_of = forwarded[-1] if forwarded else signal.SIGKILL
    signal.signal(died_of, signal.SIG_DFL)
    os.kill(os.getpid(), died_of)
    return 128 + died_of


def start_server(path: Path) -> None:
    """Start this environment's server in the background, detached from the caller's process group."""
    environment = {name: os.environ[name] for name in SERVER_ENVIRONMENT if name in os.environ}
    subprocess.Popen(
        [sys.executable, "-m", "strata.warm_dbt", str(path)],
        cwd="/",
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


# -- the server ------------------------------------------------------------------------------------------


def serve(path: Path) -> None:
    """Import dbt, then fork a child per connection until `IDLE_SECONDS` pass without one. One server per
    socket: a second one started meanwhile finds the lock taken and leaves."""
    lock = open(path.with_suffix(".lock"), "a+")  # noqa: SIM115 — held for the server's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()
    from dbt.adapters.postgres import PostgresAdapter  # noqa: F401 — the plugin every invocation loads
    from dbt.cli.main import cli  # noqa: F401

    _build_schemas()
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(64)
    listener.settimeout(1.0)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    server, last = os.getpid(), time.monotonic()
    try:
        while time.monotonic() - last < IDLE_SECONDS:
            _reap()
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            last = time.monotonic()
            if os.fork() == 0:
                # The child's own copies: the server's lock must go with the server, not with its last child.
                listener.close()
                lock.close()
                _child(conn)
            conn.close()
    finally:
        # Only the server cleans up (a child's exit unwinds through here too). New clients find no socket and start
        # a server; those already queued get no answer and run plain dbt.
        if os.getpid() == server:
            path.unlink(missing_ok=True)
            listener.close()


def stop() -> None:
    """Stop this environment's server, if one runs (its lock file names it while it holds the lock)."""
    with contextlib.suppress(FileNotFoundError), open(socket_path().with_suffix(".lock")) as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return  # nobody holds it
        except BlockingIOError:
            pid = lock.read().strip()
        if pid.isdigit():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGTERM)


# dbt validates its project, profile and every node's config against JSON schemas it builds from the
# dataclasses on first use in each process. Built here once, they are cached
# (functools.lru_cache) for every child. A class a later dbt release moved is skipped: a colder start, no error.
VALIDATED = {
    "dbt.contracts.project": ("Project", "ProjectFlags", "ProfileConfig", "PackageConfig", "Configuration"),
    "dbt.adapters.postgres.connections": ("PostgresCredentials",),
    "dbt.artifacts.resources.v1.config": ("TestConfig",),
    "dbt.artifacts.resources.v1.model": ("ModelConfig",),
    "dbt.artifacts.resources.v1.components": ("Contract",),
    "dbt.artifacts.resources.v1.source_definition": ("SourceConfig",),
    "dbt.contracts.graph.nodes": ("ModelNode", "GenericTestNode"),
    "dbt.task.test": ("TestResultData",),
}


def _build_schemas() -> None:
    import importlib

    for module, names in VALIDATED.items():
        for name in names:
            with contextlib.suppress(Exception):
                getattr(importlib.import_module(module), name).json_schema()


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def _child(conn: socket.socket) -> None:
    """Become the client's dbt: its descriptors, folder and environment, then dbt's own entry point."""
    conn.settimeout(None)
    # dbt as a shell would start it, whatever signal state the server inherited from whoever started it: none
    # blocked, SIGINT raising KeyboardInterrupt (dbt's way of stopping), SIGTERM ending the process.
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        header, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 3)
        (length,) = _HEADER.unpack(header + _receive(conn, _HEADER.size - len(header)))
        request = json.loads(_receive(conn, length))
    except (OSError, ValueError, struct.error):
        os._exit(1)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    conn.sendall(STARTED)
    threading.Thread(target=_watch, args=(conn,), name="client-watch", daemon=True).start()
    code = _run_dbt(request["args"])
    sys.stdout.flush()
    sys.stderr.flush()
    with contextlib.suppress(OSError):
        conn.sendall(EXITED + _CODE.pack(code))
    # A normal exit: finalizers release what dbt registered with multiprocessing's resource tracker.
    sys.exit(code)


def _receive(conn: socket.socket, size: int) -> bytes:
    """Exactly `size` bytes; OSError if the other end leaves first."""
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise OSError("the other end left mid-message")
        data += chunk
    return data


def _watch(conn: socket.socket) -> None:
    """Deliver the signals the client passes on; die with the client."""
    while True:
        try:
            data = conn.recv(1)
        except OSError:
            data = b""
        if not data:
            os.kill(os.getpid(), signal.SIGKILL)
        os.kill(os.getpid(), data[0])


def _run_dbt(args: list[str]) -> int:
    """What the `dbt` console script does, returning its exit status."""
    from dbt.cli.main import cli

    sys.argv = [plain_dbt(), *args]
    try:
        # click names the program after `__main__`, which here is this module, not the dbt script.
        cli(prog_name="dbt")
    except SystemExit as ended:
        if ended.code is None or isinstance(ended.code, int):
            return ended.code or 0
        print(ended.code, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
