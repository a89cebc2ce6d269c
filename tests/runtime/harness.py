"""Real servers for the fault tests: `shop serve --pools` (its gunicorns and nginx), a backup `shop serve`, and a
small asyncio load generator that records every request's outcome and latency.

Each process starts in its own session; stopping one sends SIGTERM and then SIGKILL to its whole process group,
so a failed test never leaves a gunicorn or nginx behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psutil

from shop.infrastructure.process_files import FileProcessBoard
from shop.services.process_status import PoolState


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shop_env(db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOP_")}
    env.update(SHOP_MAIN_DB_URL=db_url, SHOP_SECRET_KEY="runtime-tests-" + "k" * 40, SHOP_LOG_LEVEL="warning",
               **extra)
    return env


@dataclass
class Launched:
    """A process in its own session, its output in a file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    output: IO[Any]

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait; SIGKILL to the whole group for anything left. Returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self.output.close()
        return self.process.returncode


def launch(name: str, argv: list[str], *, env: dict[str, str], cwd: Path) -> Launched:
    log = cwd / f"{name}.log"
    output = log.open("wb")
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=output,
                               stderr=subprocess.STDOUT, start_new_session=True)
    return Launched(name, process, log, output)


def wait_until_ready(url: str, launched: Launched, *, seconds: float = 45) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if launched.process.poll() is not None:
            raise AssertionError(f"{launched.name} exited with {launched.process.returncode}:\n{launched.log_tail()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} gave no 200 within {seconds:.0f} s:\n{launched.log_tail()}")
        time.sleep(0.2)


def wait_for(condition: Any, *, seconds: float, what: str, step: float = 0.2) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds:.0f} s")
        time.sleep(step)


@dataclass
class PoolsShop:
    """A running `shop serve --pools` and the files it writes."""

    url: str
    home: Path
    serve: Launched

    @property
    def board(self) -> FileProcessBoard:
        return FileProcessBoard(self.home / "var" / "run")

    @property
    def access_log(self) -> Path:
        return self.home / "var" / "nginx" / "access.log"

    def pool(self, name: str) -> PoolState:
        return next(p for p in self.board.pools() if p.name == name)

    def master(self, name: str) -> int:
        pid = self.pool(name).master_pid
        assert pid is not None, f"pool {name} has no master"
        return pid

    def background_worker(self) -> int | None:
        """The pid of the background worker (`shop worker`) `shop serve --pools` runs beside the pools."""
        for child in psutil.Process(self.serve.pid).children():
            with contextlib.suppress(psutil.Error):
                if child.cmdline()[-2:] == ["shop", "worker"]:
                    return child.pid
        return None

    def workers(self, name: str) -> set[int]:
        """The pool's worker pids as the kernel sees them (children of its current master)."""
        try:
            return {child.pid for child in psutil.Process(self.master(name)).children()}
        except psutil.NoSuchProcess:
            return set()

    def upstreams_since(self, offset: int) -> list[str]:
        """The upstream of each request nginx logged after `offset` bytes of its access log."""
        with self.access_log.open("rb") as log:
            log.seek(offset)
            lines = log.read().decode(errors="replace").splitlines()
        return [part.split("=", 1)[1] for line in lines for part in line.split() if part.startswith("upstream=")]

    def access_log_size(self) -> int:
        return self.access_log.stat().st_size if self.access_log.exists() else 0


def start_pools_shop(home: Path, pools_toml: str, *, db_url: str, extra_args: Iterable[str] = ()) -> PoolsShop:
    port = free_port()
    (home / "pools.toml").write_text(pools_toml)
    serve = launch("serve", [sys.executable, "-m", "shop", "serve", "--pools", "pools.toml", "--port", str(port),
                             *extra_args], env=shop_env(db_url), cwd=home)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{url}/readyz", serve, seconds=60)
        # the first board entry comes with the first tick after nginx is up
        wait_for(lambda: FileProcessBoard(home / "var" / "run").pools(), seconds=10, what="pools on the board")
    except BaseException:
        serve.stop()
        raise
    return PoolsShop(url=url, home=home, serve=serve)


# load
@dataclass(frozen=True, slots=True)
class Outcome:
    started: float  # monotonic
    seconds: float
    status: int | None  # None: the request failed without an answer
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status < 500


@dataclass
class Load:
    outcomes: list[Outcome] = field(default_factory=list)

    def failed(self, *, after: float = 0.0) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok and o.started >= after]

    def p99(self) -> float:
        latencies = sorted(o.seconds for o in self.outcomes if o.ok)
        assert latencies, "no successful requests"
        return latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]


async def hammer(url: str, path: str, *, clients: int, seconds: float, load: Load | None = None,
                 request_timeout: float = 20.0) -> Load:
    """`clients` loops GETting `path` back to back for `seconds`; every outcome is recorded."""
    record = load if load is not None else Load()
    end = time.monotonic() + seconds

    async def one_client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=request_timeout) as client:
            while time.monotonic() < end:
                started = time.monotonic()
                try:
                    response = await client.get(path)
                    record.outcomes.append(Outcome(started, time.monotonic() - started, response.status_code))
                except httpx.HTTPError as exc:
                    record.outcomes.append(Outcome(started, time.monotonic() - started, None, repr(exc)))

    await asyncio.gather(*(one_client() for _ in range(clients)))
    return record
