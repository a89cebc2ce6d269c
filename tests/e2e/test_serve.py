"""`shop serve`: gunicorn with uvicorn workers and the background worker, really started, really requested.

`shop serve` is the parent of two children, each in its own session: gunicorn's master (with its workers) and
the background worker (`python -m shop worker`). With --no-worker it execs gunicorn: it is the master itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import pytest_asyncio

from shop.bootstrap import build_catalog, build_databases
from shop.config import Settings
from shop.domain.catalog import Product, Variant
from shop.domain.money import Money
from tests.conftest import make_settings, migrate_all


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_serve(cwd: Path, settings: dict[str, str], *args: str,
                within: float = 60) -> tuple[subprocess.Popen[str], str]:
    """`shop serve` on a free port with these SHOP_ settings (none of this process's), once /readyz answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOP_", "PROMETHEUS_"))}
    env.update(settings)
    # its output goes to a file: a pipe nobody reads fills up, and a worker logging into it then blocks
    output = cwd / "serve.out"
    with output.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "shop", "serve", "--port", str(port), *args], env=env,
                                   cwd=cwd, stdout=out, stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + within  # workers importing the app at once on a busy machine
    while True:
        assert process.poll() is None, output.read_text()[-5000:]
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return process, base
        assert time.monotonic() < deadline, f"server did not become ready in {within:.0f} s"
        time.sleep(0.1)


def serve_output(cwd: Path) -> str:
    """What `shop serve` started in `cwd` has printed so far."""
    return (cwd / "serve.out").read_text()


def stop_serve(process: subprocess.Popen[str]) -> None:
    """SIGTERM, as a process manager would; killed if it is not gone in 20 s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def serve_children(pid: int) -> tuple[int | None, int | None]:
    """`shop serve`'s children: gunicorn's master and the background worker (None while one is being restarted)."""
    master, worker = None, None
    for child in psutil.Process(pid).children():
        with contextlib.suppress(psutil.Error):
            command = child.cmdline()
            if "gunicorn" in command:
                master = child.pid
            elif command[-2:] == ["shop", "worker"]:
                worker = child.pid
    return master, worker


def gunicorn_master(pid: int) -> int:
    """The pid of the gunicorn master `shop serve` (pid) runs."""
    master = serve_children(pid)[0]
    assert master is not None, f"`shop serve` ({pid}) has no gunicorn master"
    return master


@pytest.fixture
def server(demo_settings: Settings, tmp_path: Path) -> Iterator[tuple[str, int]]:
    process, base = start_serve(tmp_path, {"SHOP_MAIN_DB_URL": demo_settings.main_db_url,
                                           "SHOP_CATALOG_POLL_INTERVAL": "0.5"}, "--workers", "2", within=30)
    try:
        yield base, gunicorn_master(process.pid)
    finally:
        stop_serve(process)


def _children(pid: int) -> set[int]:
    table = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    return {int(child) for child, parent in (line.split() for line in table.splitlines()) if int(parent) == pid}


def _tree(pid: int) -> set[int]:
    """A process and every descendant of it."""
    try:
        root = psutil.Process(pid)
        return {pid, *(p.pid for p in root.children(recursive=True))}
    except psutil.NoSuchProcess:
        return set()


def _alive(pids: set[int]) -> set[int]:
    left = set()
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.add(pid)
    return left


def _wait_until(condition: Callable[[], object], what: str, *, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds:.0f} s"
        time.sleep(0.1)


async def test_serve_runs_the_requested_workers_and_answers(server: tuple[str, int]) -> None:
    base, master = server
    assert len(_children(master)) == 2
    async with httpx.AsyncClient(base_url=base) as client:
        responses = await asyncio.gather(*(client.get("/api/v1/products", params={"limit": 24}) for _ in range(40)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    # the shop's worker: a Date on every response, no Server header naming what to attack
    assert all("date" in r.headers and "server" not in r.headers for r in responses)


async def test_an_edit_reaches_every_worker_within_a_second(server: tuple[str, int],
                                                            demo_settings: Settings) -> None:
    async with httpx.AsyncClient(base_url=server[0]) as client:
        async def totals() -> set[int]:
            pages = await asyncio.gather(*(client.get("/api/v1/products", params={"limit": 2}) for _ in range(30)))
            return {p.json()["total"] for p in pages}

        before = await totals()
        assert len(before) == 1
        databases = build_databases(demo_settings)
        try:
            catalog = build_catalog(demo_settings, databases).writer
            _, next_id = await catalog.next_ids()
            await catalog.add_products([Product(
                id=next_id, slug=f"served-{next_id}", title="Served Lamp", description="", category_id=None,
                variants=[Variant(sku=f"SERVED-{next_id}", price=Money.of("3.00", "EUR"))])], available={})
        finally:
            await databases.dispose()
        edited = time.monotonic()
        await asyncio.sleep(1.0 - (time.monotonic() - edited))
        assert await totals() == {before.pop() + 1}


@pytest_asyncio.fixture
async def plain_shop(tmp_path: Path) -> AsyncIterator[tuple[Path, str]]:
    """A migrated, empty SQLite shop: for what `shop serve` does with its processes, whatever the data."""
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}")
    await migrate_all(settings)
    yield tmp_path, settings.main_db_url


def _start(home: Path, db_url: str, *args: str, log_level: str = "warning") -> tuple[subprocess.Popen[str], str]:
    return start_serve(home, {"SHOP_MAIN_DB_URL": db_url, "SHOP_LOG_LEVEL": log_level}, *args, within=30)


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_max_requests_recycles_a_worker_that_knows_its_pool(plain_shop: tuple[Path, str]) -> None:
    process, base = _start(*plain_shop, "--workers", "1", "--max-requests", "20", "--max-requests-jitter", "0")
    try:
        master = gunicorn_master(process.pid)
        (first,) = _children(master)
        assert b"SHOP_POOL=main\0" in Path(f"/proc/{first}/environ").read_bytes()
        with httpx.Client(base_url=base) as client:
            assert {client.get("/healthz").status_code for _ in range(30)} == {200}
        deadline = time.monotonic() + 20
        while (now := _children(master)) in ({first}, set()):
            assert time.monotonic() < deadline, "the worker was not recycled after 20 requests"
            time.sleep(0.1)
        assert len(now) == 1
    finally:
        _kill_group(process)


async def test_sighup_brings_new_workers_without_a_failed_request_and_sigterm_ends_cleanly(
        plain_shop: tuple[Path, str]) -> None:
    process, base = _start(*plain_shop, "--workers", "2")
    try:
        master, background = gunicorn_master(process.pid), serve_children(process.pid)[1]
        before = _children(master)
        assert len(before) == 2 and background is not None
        statuses: list[int | str] = []
        retries: list[str] = []

        async def client_loop(seconds: float) -> None:
            end = time.monotonic() + seconds
            async with httpx.AsyncClient(base_url=base, timeout=20) as client:
                while time.monotonic() < end:
                    try:
                        statuses.append((await client.get("/healthz")).status_code)
                    except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                        # An old worker closes its idle kept-alive connections as it leaves; a GET sent on one
                        # in that instant gets no answer at all (a disconnect or a reset), and HTTP/1.1 clients
                        # (browsers, nginx) send it again on a new connection (RFC 9112 §9.3.1). So does this
                        # one; the new connection may be taken by the other old worker as it leaves too, which
                        # counts as that worker's catch (the bound below holds either way).
                        retries.append(repr(exc))
                        for last in (False, True):
                            try:
                                statuses.append((await client.get("/healthz")).status_code)
                                break
                            except (httpx.RemoteProtocolError, httpx.ReadError) as again:
                                if last:
                                    statuses.append(repr(again))
                                else:
                                    retries.append(repr(again))
                            except httpx.HTTPError as again:
                                statuses.append(repr(again))
                                break
                    except httpx.HTTPError as exc:
                        statuses.append(repr(exc))

        async def hup() -> None:
            await asyncio.sleep(0.5)
            process.send_signal(signal.SIGHUP)

        await asyncio.gather(client_loop(5), client_loop(5), hup())
        # each of the two old workers can catch each client's connection at most once as it leaves
        assert set(statuses) == {200} and len(statuses) > 50 and len(retries) <= 4, retries
        deadline = time.monotonic() + 30
        while not ((now := _children(master)) and len(now) == 2 and not now & before):
            assert time.monotonic() < deadline, f"workers not replaced: {before} → {now}"
            await asyncio.sleep(0.2)
        # the same master (a reload, not a restart); a new background worker, on the new code
        _wait_until(lambda: serve_children(process.pid)[1] not in (None, background), "a new background worker")
        assert serve_children(process.pid)[0] == master
        everything = _tree(process.pid)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert _alive(everything) == set(), "`shop serve` exited before its children"
    finally:
        _kill_group(process)


def test_a_dead_background_worker_is_started_again_and_each_death_is_logged(plain_shop: tuple[Path, str]) -> None:
    process, _ = _start(*plain_shop, "--workers", "1")
    try:
        _, first = serve_children(process.pid)
        assert first is not None
        os.kill(first, signal.SIGKILL)
        _wait_until(lambda: serve_children(process.pid)[1] not in (None, first), "a new background worker")
        second = serve_children(process.pid)[1]
        assert second is not None
        os.kill(second, signal.SIGKILL)  # dying again soon after its start: the next one waits longer
        _wait_until(lambda: serve_children(process.pid)[1] not in (None, second), "a third background worker")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        output = serve_output(plain_shop[0])
        delays = [re.search(rf"background worker {pid} exited with -9; starting a new one(?: in (\d+) s)?$", output,
                            re.MULTILINE) for pid in (first, second)]
        assert all(delays), output
        first_delay, second_delay = (int(d[1] or 0) for d in delays if d)
        assert second_delay > first_delay
    finally:
        _kill_group(process)


def test_a_dead_gunicorn_master_is_started_again_and_serves(plain_shop: tuple[Path, str]) -> None:
    process, base = _start(*plain_shop, "--workers", "1")
    try:
        master, background = gunicorn_master(process.pid), serve_children(process.pid)[1]
        os.kill(master, signal.SIGKILL)  # its orphaned worker is told to finish and go

        def serves_again() -> bool:
            with contextlib.suppress(httpx.TransportError):
                return serve_children(process.pid)[0] not in (None, master) and \
                    httpx.get(f"{base}/healthz").status_code == 200
            return False

        _wait_until(serves_again, "a new master that serves", seconds=40)
        assert serve_children(process.pid)[1] == background, "the background worker was left alone"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        _kill_group(process)


def test_ctrl_c_stops_gunicorn_and_the_background_worker_once_and_cleanly(plain_shop: tuple[Path, str]) -> None:
    """A terminal's Ctrl-C hits the whole foreground group: `shop serve` alone gets it (its children have their
    own sessions) and passes one SIGTERM on, so gunicorn stops gracefully instead of being interrupted twice."""
    process, _ = _start(*plain_shop, "--workers", "1", log_level="info")
    try:
        everything = _tree(process.pid)
        assert len(everything) == 4  # shop serve, the master, its worker, the background worker
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert _alive(everything) == set()
        output = serve_output(plain_shop[0])
        assert "stopping on SIGINT" in output
        assert output.count("Handling signal: term") == 1 and "Handling signal: int" not in output
        assert "stopped after 0 outbox jobs" in output  # the background worker ended its loop, not killed
    finally:
        _kill_group(process)


def test_when_shop_serve_is_killed_its_children_stop_too(plain_shop: tuple[Path, str]) -> None:
    process, _ = _start(*plain_shop, "--workers", "1")
    everything = _tree(process.pid)
    assert len(everything) == 4
    _kill_group(process)  # SIGKILL: nothing forwards anything; the kernel tells the children (SIGTERM)
    _wait_until(lambda: not _alive(everything), f"{_alive(everything)} still running after `shop serve` died")


def test_no_worker_makes_shop_serve_gunicorns_master_and_runs_no_background_worker(
        plain_shop: tuple[Path, str]) -> None:
    process, _ = _start(*plain_shop, "--workers", "1", "--no-worker")
    try:
        assert "gunicorn" in " ".join(psutil.Process(process.pid).cmdline())  # exec'd: this is the master
        children = psutil.Process(process.pid).children()
        assert len(children) == 1 and "worker" not in children[0].cmdline()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        _kill_group(process)


class _Healthy(http.server.BaseHTTPRequestHandler):
    """Another server on the port that answers 200 to anything, as a shop already running there would."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_port_in_use_ends_shop_serve_with_gunicorns_error_and_stops_the_worker(
        plain_shop: tuple[Path, str]) -> None:
    """Even when what holds the port answers /healthz: that is not this shop's gunicorn, which never served."""
    home, db_url = plain_shop
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Healthy) as taken:
        threading.Thread(target=taken.serve_forever, daemon=True).start()
        port = taken.server_address[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOP_", "PROMETHEUS_"))}
        env.update(SHOP_MAIN_DB_URL=db_url, SHOP_LOG_LEVEL="warning")
        process = subprocess.Popen([sys.executable, "-m", "shop", "serve", "--port", str(port), "--workers", "1"],
                                   env=env, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True)
        try:
            _wait_until(lambda: process.poll() is None and len(_tree(process.pid)) == 3,
                        "`shop serve`, the master and the background worker", seconds=20)
            everything = _tree(process.pid)
            output, _ = process.communicate(timeout=60)  # gunicorn tries to bind for 5 s
        finally:
            _kill_group(process)
            taken.shutdown()
    assert process.returncode == 1, output
    assert "before it answered" in output and "Connection in use" in output
    _wait_until(lambda: not _alive(everything), "the background worker outlived `shop serve`", seconds=10)
