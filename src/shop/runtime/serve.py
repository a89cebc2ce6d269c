"""`shop serve`: gunicorn with uvicorn workers (one per core unless told otherwise) and the background worker.

Both run as children of `shop serve`, which forwards signals and keeps them up: SIGTERM or SIGINT stops both
gracefully (gunicorn finishes its requests, the worker its batch) and exits 0; SIGHUP reloads gunicorn's workers
and restarts the background worker, both on the new code; SIGTTIN, SIGTTOU and SIGUSR1 go to gunicorn's master.
A background worker that dies is started again, and so is a master that dies once it has served; a master that
dies before its first answer (a port in use, an app that does not import) ends `shop serve` with its exit code.
With `--no-worker` (a process manager runs `shop worker` apart) this process becomes gunicorn's master instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import re
import shutil
import signal
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from shop.runtime.background import BackgroundWorker
from shop.runtime.children import STOP_TIMEOUT_S, Child

APP = "shop.bootstrap:create_asgi_app()"
TICK_S = 0.5
PROBE_TIMEOUT_S = 2.0
FORWARDED = (signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR1)  # gunicorn's: a worker more, one fewer, reopen logs

log = logging.getLogger("shop.serve")


@dataclass(frozen=True, slots=True)
class ServeOptions:
    host: str
    port: int
    workers: int
    log_level: str = "info"
    bind: str | None = None  # overrides host:port, e.g. unix:/run/shop.sock
    run_dir: Path = Path("var/run")  # gunicorn's control socket; one per server, so several can run at once
    pool: str = "main"  # the route pool this server serves (SHOP_POOL in its workers)
    max_requests: int = 0  # recycle a worker after this many requests (0: never), against slow leaks
    max_requests_jitter: int | None = None  # default: a tenth of max_requests, so workers do not recycle together

    @property
    def address(self) -> str:
        return self.bind or f"{self.host}:{self.port}"

    @property
    def jitter(self) -> int:
        if self.max_requests_jitter is not None:
            return self.max_requests_jitter
        return self.max_requests // 10


def gunicorn_argv(options: ServeOptions) -> list[str]:
    bind = options.address
    control = options.run_dir / f"gunicorn-{re.sub(r'[^A-Za-z0-9.]+', '-', bind).strip('-')}.ctl"
    argv = [
        sys.executable, "-m", "gunicorn", APP,
        "--config", "python:shop.runtime.gunicorn_conf",
        "--bind", bind,
        "--workers", str(options.workers),
        "--log-level", options.log_level,
        "--control-socket", str(control),
        "--name", f"shop-{options.pool}",
    ]
    if options.max_requests > 0:
        argv += ["--max-requests", str(options.max_requests), "--max-requests-jitter", str(options.jitter)]
    return argv


def gunicorn_env(options: ServeOptions, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of one server: the caller's, with the pool its workers report and log under."""
    env = dict(os.environ if base is None else base)
    env["SHOP_POOL"] = options.pool
    return env


def exec_gunicorn(options: ServeOptions) -> None:
    """Replace this process with gunicorn's master, so signals reach it directly."""
    if shutil.which(sys.executable) is None:  # pragma: no cover - a broken interpreter path
        raise RuntimeError(f"cannot find the Python interpreter {sys.executable}")
    options.run_dir.mkdir(parents=True, exist_ok=True)
    argv = gunicorn_argv(options)
    os.execve(argv[0], argv, gunicorn_env(options))  # noqa: S606


def _probe_target(address: str) -> str | tuple[str, int] | None:
    """Where to ask gunicorn's /healthz: a Unix socket's path, or a numeric host and port; None if it cannot be."""
    if address.startswith("unix:"):
        return address.removeprefix("unix:")
    if "://" in address:  # fd://3: a socket handed down, nothing to dial
        return None
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        host, port = address, "8000"
    host = host.strip("[]")
    wildcard = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104
    if host in wildcard:
        return wildcard[host], int(port)
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(host)), int(port)
    try:  # resolved here, once: asyncio would resolve a name on a thread, and children are forked from here
        return str(socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)[0][4][0]), int(port)
    except OSError:
        return None


async def _answers(target: str | tuple[str, int]) -> bool:
    """GET /healthz answered 200."""
    try:
        if isinstance(target, str):
            connecting = asyncio.open_unix_connection(target)
        else:
            connecting = asyncio.open_connection(*target)
        reader, writer = await asyncio.wait_for(connecting, PROBE_TIMEOUT_S)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        status = await asyncio.wait_for(reader.readline(), PROBE_TIMEOUT_S)
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), PROBE_TIMEOUT_S)
    return status.split()[1:2] == [b"200"]


class SingleServer:
    """One gunicorn (master and workers) and the background worker, supervised together."""

    def __init__(self, options: ServeOptions, *, worker: BackgroundWorker,
                 env: Mapping[str, str] | None = None) -> None:
        self.options = options
        self.master = Child("gunicorn")
        self.worker = worker
        self._argv = gunicorn_argv(options)
        self._env = gunicorn_env(options, env)
        self._target = _probe_target(options.address)
        self.served = self._target is None  # its /healthz has answered: from then on a dead master is restarted
        self._stopping = asyncio.Event()
        self._reload = False

    async def run(self) -> int:
        """Start both, supervise until SIGTERM/SIGINT, stop both; the exit code for `shop serve`."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop, signum)
        loop.add_signal_handler(signal.SIGHUP, self._ask_reload)
        for signum in FORWARDED:
            loop.add_signal_handler(signum, self.master.send, signum)
        self.options.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.master.launch(self._argv, self._env)
            self.worker.start()
            while not self._stopping.is_set():
                code = await self._tick()
                if code is not None:
                    return code
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), TICK_S)
            return 0
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, *FORWARDED):
                loop.remove_signal_handler(signum)
            self._stop_all()

    def _stop(self, signum: int) -> None:
        if not self._stopping.is_set():
            log.info("stopping on %s: gunicorn finishes its requests, the background worker its batch",
                     signal.Signals(signum).name)
        self._stopping.set()

    def _ask_reload(self) -> None:
        self._reload = True

    async def _tick(self) -> int | None:
        """One round of supervision; an exit code when `shop serve` must end."""
        if self._reload:
            self._reload = False
            log.info("reloading: new gunicorn workers and a new background worker, on the new code")
            self.master.send(signal.SIGHUP)
            if self.master.process is None:  # waiting out its back-off: the new code may be what it was missing
                self.master.restart_at = 0.0
            self.worker.reload()
        now = time.monotonic()
        if self.master.died():
            assert self.master.process is not None
            pid, code = self.master.process.pid, self.master.process.returncode
            if not self.served:
                log.error("gunicorn exited with %s before it answered (its output is above)", code)
                return code if code and code > 0 else 1
            delay = self.master.bury(now=now)
            log.warning("gunicorn master %d exited with %s; starting a new one%s", pid, code,
                        f" in {delay:.0f} s" if delay else "")
        if self.master.due(now) and not self._stopping.is_set():
            self.master.launch(self._argv, self._env)
        self.master.kill_stragglers(now=now)
        self.worker.tick(now)
        if not self.served and self._target is not None and self._has_workers():
            self.served = await _answers(self._target)
        return None

    def _has_workers(self) -> bool:
        """gunicorn forks its workers once it holds its socket: before that, whoever answers on the address (a
        shop already running there) is not this one."""
        pid = self.master.pid
        if pid is None:
            return False
        try:
            return bool(psutil.Process(pid).children())
        except psutil.Error:
            return False

    def _stop_all(self) -> None:
        self.master.stop()
        self.worker.stop()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        self.master.wait_stopped(deadline)
        self.worker.wait_stopped(deadline)
        log.info("stopped")


def run_with_worker(options: ServeOptions) -> int:
    """`shop serve`: gunicorn and the background worker until SIGTERM or SIGINT; the exit code."""
    return asyncio.run(SingleServer(options, worker=BackgroundWorker()).run())
