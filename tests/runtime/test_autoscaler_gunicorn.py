"""The controller driving a real gunicorn through the supervisor's `PoolServer`: TTIN/TTOU change the worker count,
a recycled worker is replaced by a new pid that serves. A tiny ASGI app stands in for the shop, so the test is
about the signals, not the database (gunicorn's flags and worker class are `shop serve`'s own)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from shop.infrastructure.process_files import FileProcessBoard
from shop.runtime import serve, supervisor
from shop.runtime.autoscaler import Budget, Controller
from shop.runtime.pools import PoolSpec
from shop.runtime.supervisor import PoolServer, ServeSettings
from shop.services.process_status import ScalingDecision, SizeRequest

TINY_APP = '''
import os


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
'''
ROOMY = Budget(cores=4, memory_mb=64_000, worker_memory_mb=64_000)


@pytest.fixture
def pool(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PoolServer]:
    (tmp_path / "tiny_shop_app.py").write_text(TINY_APP, encoding="utf-8")

    def tiny_argv(options: serve.ServeOptions) -> list[str]:
        argv = serve.gunicorn_argv(options)
        argv[argv.index(serve.APP)] = "tiny_shop_app:app"
        return [*argv, "--pythonpath", str(tmp_path)]

    monkeypatch.setattr(supervisor, "gunicorn_argv", tiny_argv)
    settings = ServeSettings(run_dir=home / "run", nginx_dir=home / "nginx", nginx_binary="nginx",
                             log_level="warning")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOP_")}
    server = PoolServer(PoolSpec(name="catalog", prefixes=("/",), min_workers=1, max_workers=3), settings, env)
    server.start()
    try:
        _wait(lambda: len(server.worker_pids()) == 1, "gunicorn's first worker")
        yield server
    finally:
        server.stop()
        server.wait_stopped(time.monotonic() + 20)


def _wait(condition: Callable[[], bool], what: str, *, timeout: float = 20.0,
          between: Callable[[], object] = lambda: None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        between()
        time.sleep(0.2)


def _served_by(server: PoolServer) -> int:
    transport = httpx.HTTPTransport(uds=str(server.socket))
    with httpx.Client(transport=transport, timeout=5) as client:
        return int(client.get("http://pool/").text)


def test_staff_sizes_reach_gunicorn_through_ttin_and_ttou(pool: PoolServer, tmp_path: Path) -> None:
    board = FileProcessBoard(tmp_path / "board")
    controller = Controller(board, ROOMY)
    taken: list[ScalingDecision] = []

    def tick() -> None:
        taken.extend(controller.tick([pool]))

    first = pool.worker_pids()
    board.request_size(SizeRequest(pool="catalog", workers=3, requested_by="ada@example.com", at=datetime.now(UTC)))
    _wait(lambda: len(pool.worker_pids()) == 3, "TTIN twice", between=tick)
    assert set(first) < set(pool.worker_pids()) and pool.size == 3
    assert [(d.action, d.from_workers, d.to_workers) for d in taken] == [("set", 1, 3)]
    assert _served_by(pool) in pool.worker_pids()

    board.request_size(SizeRequest(pool="catalog", workers=1, requested_by="ada@example.com", at=datetime.now(UTC)))
    _wait(lambda: len(pool.worker_pids()) == 1, "TTOU twice", between=tick)
    for _ in range(5):  # and it stays there: no signal for a worker that is only slow to go
        tick()
        time.sleep(0.2)
    assert len(pool.worker_pids()) == 1 and pool.size == 1
    assert [(d.action, d.to_workers) for d in board.decisions()] == [("set", 1), ("set", 3)]


def test_a_worker_over_its_memory_limit_is_replaced_by_a_new_one(pool: PoolServer, tmp_path: Path) -> None:
    board = FileProcessBoard(tmp_path / "board")
    # every worker uses more than 1 MB: the real psutil sampler finds this one too heavy
    controller = Controller(board, Budget(cores=4, memory_mb=64_000, worker_memory_mb=1))
    [old] = pool.worker_pids()
    [decision] = controller.tick([pool])
    assert decision.action == "recycle" and decision.reason.startswith(f"worker {old} uses ")
    assert decision.reason.endswith(" MB > 1 MB")
    _wait(lambda: len(pool.worker_pids()) == 1 and old not in pool.worker_pids(), "the replacement")
    [new] = pool.worker_pids()
    _wait(lambda: _answers(pool), "the replacement answering")
    assert _served_by(pool) == new


def _answers(server: PoolServer) -> bool:
    try:
        _served_by(server)
    except httpx.TransportError:
        return False
    return True
