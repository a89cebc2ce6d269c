"""Starting a gunicorn master for a benchmark, waiting until it answers, and stopping it."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

HOST = "127.0.0.1"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 40.0  # the shop's gunicorn graceful_timeout is 20 s


class ServerError(RuntimeError):
    """A server that did not start, did not answer in time, or answered something unexpected."""


def base_env() -> dict[str, str]:
    """The caller's environment without its SHOP_* settings, so only what a benchmark sets reaches a server."""
    return {name: value for name, value in os.environ.items() if not name.startswith("SHOP_")}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def get_full(port: int, path: str, *, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """One GET to 127.0.0.1:port (never through a proxy): status, headers (lower-case names) and body."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


def get(port: int, path: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
    status, _, body = get_full(port, path, timeout=timeout)
    return status, body


def get_json(port: int, path: str) -> Any:
    status, body = get(port, path)
    if status != 200:
        raise ServerError(f"GET {path} answered {status}: {body[:200]!r}")
    return json.loads(body)


class Server:
    """A gunicorn master in its own session, its output in a log file; a context manager.

    On entry it starts and waits until `ready_path` answers 200; on exit it sends SIGTERM to the master and
    waits for it (SIGKILL to its own process group only if it does not stop in time).
    """

    def __init__(self, name: str, argv: Sequence[str], *, port: int, ready_path: str, env: Mapping[str, str],
                 cwd: Path, log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.ready_path = ready_path
        self.env = dict(env)
        self.cwd = cwd
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None

    @property
    def pid(self) -> int | None:
        """The gunicorn master's pid, which is also its process group's id."""
        return None if self.process is None else self.process.pid

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def __enter__(self) -> Server:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"{self.name} exited with {self.process.returncode} before it was ready; "
                                  f"see {self.log_path}: {self.log_tail()}")
            try:
                status, body = get(self.port, self.ready_path, timeout=2.0)
            except OSError as exc:
                last = str(exc) or type(exc).__name__
            else:
                if status == 200:
                    return
                last = f"{status} {body[:120]!r}"
            time.sleep(0.2)
        raise ServerError(f"{self.name}: GET {self.ready_path} gave no 200 within {timeout:.0f}s ({last})")

    def stop(self) -> None:
        """SIGTERM to the gunicorn master and wait; whatever is left of its own process group is killed."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        # a worker that outlived its master (it should not) would keep the port and a core busy
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        self.exit_code = process.returncode

    def process_groups(self) -> dict[int, list[str]]:
        """The process groups of the server and of every process it started, each with its members' command
        lines: a server may start children in sessions of their own, outside its process group."""
        return {} if self.pid is None else process_groups(self.pid)

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])


def process_groups(root: int) -> dict[int, list[str]]:
    """The process groups of `root` and of its descendants, each with its members' command lines."""
    parents: dict[int, tuple[int, int]] = {}  # pid -> (parent pid, process group)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                raw = (entry / "stat").read_text()
                fields = raw[raw.rindex(")") + 2:].split()
                parents[int(entry.name)] = (int(fields[1]), int(fields[2]))
    family, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [child for child, (parent, _) in parents.items() if parent == pid]
        family.update(children)
        frontier += children
    groups: dict[int, list[str]] = {}
    for pid in sorted(family & parents.keys()):
        with contextlib.suppress(OSError):
            argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
            groups.setdefault(parents[pid][1], []).append(b" ".join(argv).decode(errors="replace").strip())
    return groups
