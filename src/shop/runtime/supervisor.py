"""`shop serve --pools`: one gunicorn per pool on a Unix socket, nginx in front, and a loop that keeps them up.

Once a second the loop restarts a pool's gunicorn master that died, restarts nginx if it stopped, asks every pool's
/readyz whether Main can serve (N failures in a row and nginx sends the pool's traffic to its backup, until it
answers again), lets the autoscaler size the pools, restarts the background worker (`shop worker`, unless
`--no-worker`) if it died, and posts the pools' state on the process board.
SIGTERM or SIGINT stops everything gracefully; SIGHUP reloads every gunicorn (new code) and nginx, and restarts the
background worker on the new code. Every child runs in its own session and is stopped if this process dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

from shop.runtime.autoscaler import Budget, Controller
from shop.runtime.background import BackgroundWorker
from shop.runtime.children import STOP_TIMEOUT_S, Child
from shop.runtime.nginx import Nginx, NginxError, NginxFiles, StaticFile, Upstream, nginx_user, render
from shop.runtime.pools import PoolSpec, PoolsPlan
from shop.runtime.serve import ServeOptions, gunicorn_argv, gunicorn_env
from shop.services.process_status import PoolState, ProcessBoard

log = logging.getLogger("shop.serve")

TICK_S = 1.0
READY_TIMEOUT_S = 60.0  # a pool's first workers import the whole app
HEALTH_TIMEOUT_S = 2.0
DOWN_AFTER = 3  # /readyz failures in a row before nginx is told Main is down
UP_AFTER = 2  # answers in a row before Main takes its traffic back
SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes, with the terminating NUL


class SupervisorError(RuntimeError):
    """Something that stops `shop serve --pools` from starting; the message is one line."""


@dataclass(frozen=True, slots=True)
class ServeSettings:
    run_dir: Path
    nginx_dir: Path
    nginx_binary: str
    log_level: str = "info"
    max_requests: int = 0
    max_requests_jitter: int | None = None
    # read again at each reload: new code may bring static files under new hashed names
    static_files: Callable[[], tuple[StaticFile, ...]] = tuple


class PoolServer(Child):
    """One pool's gunicorn master and its workers (the autoscaler's `ManagedPool`)."""

    def __init__(self, spec: PoolSpec, settings: ServeSettings, env: Mapping[str, str]) -> None:
        super().__init__(f"pool {spec.name}")
        self.spec = spec
        self.name = spec.name
        self.min_workers = spec.min_workers
        self.max_workers = spec.max_workers
        self.manual_size: int | None = None
        self.socket = (settings.run_dir / "pools" / f"{spec.name}.sock").resolve()
        self._settings = settings
        self._env = dict(env)
        self.size = spec.min_workers  # what the master was last asked for; a restart starts there
        self._launched_with = self.size
        self.failures = 0
        self.answers = 0
        self.down = False  # nginx sends this pool's traffic to its backup

    def options(self) -> ServeOptions:
        s = self._settings
        return ServeOptions(host="", port=0, workers=self.size, log_level=s.log_level, bind=f"unix:{self.socket}",
                            run_dir=s.run_dir, pool=self.name, max_requests=s.max_requests,
                            max_requests_jitter=s.max_requests_jitter)

    def start(self) -> None:
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        options = self.options()
        # its own session: when the master dies, its orphaned workers can still be reached as one group
        self.launch(gunicorn_argv(options), gunicorn_env(options, self._env))
        self._launched_with = self.size

    @property
    def master_pid(self) -> int | None:
        return self.pid

    def worker_pids(self) -> list[int]:
        pid = self.master_pid
        if pid is None:
            return []
        try:
            return sorted(child.pid for child in psutil.Process(pid).children())
        except psutil.Error:
            return []

    def add_worker(self) -> None:
        if self.send(signal.SIGTTIN):
            self.size += 1

    def remove_worker(self) -> None:
        if self.size > 1 and self.send(signal.SIGTTOU):
            self.size -= 1

    def recycle(self, pid: int) -> None:
        if pid in self.worker_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def reload(self) -> None:
        """New workers with new code; the old ones finish their requests. A HUP resets gunicorn to its command
        line's worker count, so the size the autoscaler chose is asked for again."""
        if not self.send(signal.SIGHUP):
            return
        change = self.size - self._launched_with
        for _ in range(abs(change)):
            self.send(signal.SIGTTIN if change > 0 else signal.SIGTTOU)

    def state(self) -> PoolState:
        return PoolState(name=self.name, min_workers=self.min_workers, max_workers=self.max_workers,
                         workers=len(self.worker_pids()), master_pid=self.master_pid, updated_at=datetime.now(UTC),
                         prefixes=self.spec.prefixes, backup=self.spec.backup, manual=self.manual_size is not None)


async def _answers(client: httpx.AsyncClient, path: str) -> bool:
    try:
        response = await client.get(f"http://pool{path}")
    except httpx.HTTPError:
        return False
    return response.status_code == 200


class Supervisor:
    def __init__(self, plan: PoolsPlan, settings: ServeSettings, *, board: ProcessBoard,
                 env: Mapping[str, str] | None = None, worker: BackgroundWorker | None = None) -> None:
        self.plan = plan
        self.settings = settings
        self.board = board
        self.worker = worker
        self.pools = [PoolServer(spec, settings, os.environ if env is None else env) for spec in plan.pools]
        for pool in self.pools:
            if len(str(pool.socket)) > SOCKET_PATH_MAX:
                raise SupervisorError(f"the socket path {pool.socket} is longer than {SOCKET_PATH_MAX} bytes; "
                                      "use a shorter SHOP_RUN_DIR")
        self.nginx = Nginx(settings.nginx_binary, NginxFiles.under(settings.nginx_dir))
        budget = plan.budget
        self.controller = Controller(board, Budget(cores=budget.cores, memory_mb=budget.memory_mb,
                                                   worker_memory_mb=budget.worker_memory_mb))
        self._stopping = asyncio.Event()
        self._reload = False
        self._static = settings.static_files()
        self._conf = ""

    # nginx
    def nginx_conf(self) -> str:
        upstreams = [Upstream(pool=p.name, socket=p.socket, prefixes=p.spec.prefixes, backup=p.spec.backup,
                              main_down=p.down) for p in self.pools]
        return render(listen=self.plan.listen, upstreams=upstreams, static_files=self._static,
                      files=self.nginx.files, user=nginx_user())

    def _start_nginx(self) -> None:
        self._conf = self.nginx_conf()
        self.nginx.write(self._conf)
        self.nginx.start()

    # the life of the whole
    async def run(self) -> None:
        """Start, supervise until SIGTERM/SIGINT, stop; SupervisorError or NginxError if it cannot start."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self._ask_reload)
        self.settings.run_dir.mkdir(parents=True, exist_ok=True)
        clients = {p.name: httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(p.socket)),
                                             timeout=HEALTH_TIMEOUT_S,
                                             limits=httpx.Limits(max_keepalive_connections=0))
                   for p in self.pools}
        try:
            self.nginx.write(self.nginx_conf())
            self.nginx.check()  # a bad listen address or a broken nginx fails before any gunicorn starts
            for pool in self.pools:
                pool.start()
            if self.worker is not None:
                self.worker.start()
            await self._wait_ready(clients)
            self._start_nginx()
            await asyncio.sleep(0.3)
            if not self.nginx.alive():
                raise NginxError(f"nginx stopped at once: {self.nginx.error_tail()}")
            log.info("serving on http://%s: %s%s", self.plan.listen,
                     "; ".join(f"{p.name} {p.size} workers ({', '.join(p.spec.prefixes)})" for p in self.pools),
                     "; and the background worker" if self.worker is not None else "")
            self.board.publish_pools([p.state() for p in self.pools])
            while not self._stopping.is_set():
                await self._tick(clients)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), TICK_S)
        finally:
            for client in clients.values():
                await client.aclose()
            self._stop_all()

    def _ask_reload(self) -> None:
        self._reload = True

    async def _wait_ready(self, clients: Mapping[str, httpx.AsyncClient]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        waiting = list(self.pools)
        while waiting:
            if self._stopping.is_set():
                raise SupervisorError("stopped while the pools were starting")
            for pool in list(waiting):
                if not pool.alive():
                    code = pool.process.returncode if pool.process else None
                    raise SupervisorError(f"pool {pool.name}: gunicorn exited with {code} while starting "
                                          "(its output is above)")
                if await _answers(clients[pool.name], "/healthz"):
                    waiting.remove(pool)
            if waiting and time.monotonic() > deadline:
                raise SupervisorError(f"pool {waiting[0].name} did not answer on {waiting[0].socket} within "
                                      f"{READY_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.1)

    async def _tick(self, clients: Mapping[str, httpx.AsyncClient]) -> None:
        if self._reload:
            self._reload = False
            self.reload()
        now = time.monotonic()
        for pool in self.pools:
            if pool.process is not None and not pool.alive():
                log.warning("pool %s: gunicorn master %d exited with %s; starting a new one", pool.name,
                            pool.process.pid, pool.process.returncode)
                pool.bury()
            if pool.due(now):
                pool.start()
            pool.kill_stragglers(now=now)
        if self.worker is not None:
            self.worker.tick(now)
        if not self.nginx.alive():
            code = self.nginx.process.returncode if self.nginx.process else None
            log.warning("nginx exited with %s; starting it again", code)
            try:
                self._start_nginx()
            except NginxError as exc:
                log.error("%s", exc)
        await self._check_health(clients)
        try:
            self.controller.tick(self.pools)
        except Exception:  # a fault in scaling must not take the shop down with it
            log.exception("the autoscaler failed this tick")
        self.board.publish_pools([p.state() for p in self.pools])

    async def _check_health(self, clients: Mapping[str, httpx.AsyncClient]) -> None:
        results = await asyncio.gather(*(_answers(clients[p.name], "/readyz") for p in self.pools))
        changed = False
        for pool, ready in zip(self.pools, results, strict=True):
            pool.failures, pool.answers = (0, pool.answers + 1) if ready else (pool.failures + 1, 0)
            if pool.spec.backup is None:
                continue  # with nowhere else to go, nginx keeps trying Main
            if not pool.down and pool.failures >= DOWN_AFTER:
                pool.down = changed = True
                log.warning("pool %s: /readyz failed %d times; its traffic goes to the backup %s", pool.name,
                            pool.failures, pool.spec.backup)
            elif pool.down and pool.answers >= UP_AFTER:
                pool.down = False
                changed = True
                log.warning("pool %s: /readyz answers again; Main takes its traffic back", pool.name)
        if changed:
            self._reload_nginx()

    def _reload_nginx(self) -> None:
        """Only when the configuration changed: a reload retires nginx's workers, and an old worker closing an idle
        keep-alive connection races the client's next request on it (a client that does not retry sees an
        error), so nginx is left alone when nothing it serves has changed."""
        conf = self.nginx_conf()
        if conf == self._conf:
            return
        try:
            self.nginx.write(conf)
            self.nginx.reload()
            self._conf = conf
        except NginxError as exc:
            log.error("%s", exc)

    def reload(self) -> None:
        log.info("reloading: new workers for every pool%s; nginx too if its static files changed",
                 ", a new background worker" if self.worker is not None else "")
        for pool in self.pools:
            pool.reload()
        if self.worker is not None:
            self.worker.reload()
        self._static = self.settings.static_files()
        self._reload_nginx()

    def _stop_all(self) -> None:
        # nginx first, so no new request reaches a gunicorn that is stopping; its quit waits for what it holds
        self.nginx.stop()
        for pool in self.pools:
            pool.stop()
        if self.worker is not None:
            self.worker.stop()  # it finishes the batch in hand
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for pool in self.pools:
            pool.wait_stopped(deadline)
        if self.worker is not None:
            self.worker.wait_stopped(deadline)
        with contextlib.suppress(OSError):
            self.board.publish_pools([pool.state() for pool in self.pools])
        log.info("stopped")


def static_files(hashed: Mapping[str, Path], plain: Mapping[str, Path]) -> tuple[StaticFile, ...]:
    """nginx's static locations from the asset manifest: content-hashed names (immutable) and plain ones."""
    return tuple([StaticFile(url=f"/static/{name}", file=file, immutable=True) for name, file in hashed.items()]
                 + [StaticFile(url=f"/static/{name}", file=file, immutable=False) for name, file in plain.items()])


def run(plan: PoolsPlan, settings: ServeSettings, *, board: ProcessBoard, with_worker: bool = True) -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the health checks would log a line each per second
    worker = BackgroundWorker() if with_worker else None
    asyncio.run(Supervisor(plan, settings, board=board, worker=worker).run())

