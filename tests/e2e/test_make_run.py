"""The newcomer's path: a fresh clone of the committed repository, `make run`, and a whole shop answers.

`make run` creates its own .venv (pip, as a newcomer's machine would), migrates, seeds the demo shop and serves it
with the background worker beside the web workers: a guest's order e-mail lands in var/mail/ within seconds of the
checkout, an unpaid 3-D Secure order whose reservation ran out gives its stock back, and SIGTERM to `make run`'s
process group stops every process it started. It clones what is committed: commit before running it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRST_START_S = 420  # a fresh .venv: pip installs every dependency
pytestmark = pytest.mark.timeout(FIRST_START_S + 180)
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _eventually(probe: Callable[[], T | None], *, seconds: float, what: str, step: float = 0.1) -> T:
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds:g} s")
        time.sleep(step)


@dataclass
class MadeShop:
    """`make run` in a fresh clone: its process (the leader of its own process group), where it serves, its log."""

    clone: Path
    make: subprocess.Popen[bytes]
    url: str
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def processes(self) -> set[psutil.Process]:
        """Every live process `make run` started, however deep, and any that runs from the clone's venv."""
        found: set[psutil.Process] = set()
        with contextlib.suppress(psutil.NoSuchProcess):
            found.update(psutil.Process(self.make.pid).children(recursive=True))
        venv = str(self.clone / ".venv")
        for process in psutil.process_iter(["cmdline", "status"]):
            with contextlib.suppress(psutil.Error):
                if process.info["status"] != psutil.STATUS_ZOMBIE and \
                        any(venv in part for part in process.info["cmdline"] or ()):
                    found.add(process)
        return {p for p in found if _running(p)}


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(scope="module")
def made_shop() -> Iterator[MadeShop]:
    if shutil.which("git") is None:
        pytest.fail("git is not installed: the newcomer's path starts with `git clone`; apt-get install git")
    if shutil.which("make") is None:
        pytest.fail("make is not installed: the newcomer's path is `make run`; apt-get install make")
    # short: gunicorn's control socket lives under the clone's var/run, and a socket path holds 107 bytes
    home = Path(tempfile.mkdtemp(prefix="shop-mr-", dir="/tmp"))
    clone = home / "shop"
    cloned = subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], capture_output=True, text=True,
                            check=False)
    assert cloned.returncode == 0, f"git clone failed: {cloned.stderr}"
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SHOP_", "PROMETHEUS_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env["SHOP_PORT"] = str(port)
    log = home / "make-run.log"
    with log.open("wb") as output:
        # PYTHON: the interpreter running the tests makes the clone's .venv (make's default is python3)
        make = subprocess.Popen(["make", "run", f"PYTHON={sys.executable}"], cwd=clone, env=env,
                                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True)
    shop = MadeShop(clone=clone, make=make, url=f"http://127.0.0.1:{port}", log=log)
    try:
        def ready() -> bool:
            assert make.poll() is None, f"`make run` exited with {make.returncode}:\n{shop.log_tail()}"
            with contextlib.suppress(httpx.TransportError):
                return httpx.get(f"{shop.url}/readyz", timeout=2).status_code == 200
            return False

        try:
            _eventually(ready, seconds=FIRST_START_S, what="/readyz of `make run`", step=1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{shop.log_tail()}") from None
        yield shop
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(make.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            make.wait(timeout=40)
        for process in shop.processes():  # only if a test failed before it stopped them
            with contextlib.suppress(psutil.Error):
                process.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(make.pid, signal.SIGKILL)
        make.wait()
        shutil.rmtree(home, ignore_errors=True)


def _buyable(client: httpx.Client, skip: int = 0) -> tuple[str, str, int]:
    """A product slug, one of its SKUs with 2 or more units available, and how many are."""
    found = 0
    for item in client.get("/api/v1/products", params={"limit": 50, "in_stock": "true"}).json()["items"]:
        for variant in client.get(f"/api/v1/products/{item['slug']}").json()["variants"]:
            if variant.get("available", 0) >= 2:
                if found == skip:
                    return item["slug"], variant["sku"], variant["available"]
                found += 1
    raise AssertionError("the demo shop has too few products in stock")


def _available(client: httpx.Client, slug: str, sku: str) -> int:
    variants = client.get(f"/api/v1/products/{slug}").json()["variants"]
    return int(next(v["available"] for v in variants if v["sku"] == sku))


def _check_out(client: httpx.Client, sku: str, *, email: str, token: str) -> httpx.Response:
    cart = client.post("/api/v1/carts").json()["id"]
    client.post(f"/api/v1/carts/{cart}/items", json={"sku": sku, "quantity": 1}).raise_for_status()
    method = client.get("/api/v1/shipping-methods", params={"country": "DE"}).json()["items"][0]
    return client.post("/api/v1/checkout", json={
        "cart_id": cart, "email": email, "shipping_method": method.get("code") or method.get("id"),
        "payment": {"token": token},
        "shipping_address": {"name": "Ada", "line1": "1 Test St", "city": "Berlin", "postal_code": "10115",
                             "country": "DE"}})


def test_a_guests_order_email_is_in_var_mail_within_five_seconds(made_shop: MadeShop) -> None:
    with httpx.Client(base_url=made_shop.url, timeout=30) as client:
        for path in ("/", "/app/", "/api/v1/categories"):
            assert client.get(path).status_code == 200, path
        _, sku, _ = _buyable(client)
        email = f"newcomer-{uuid.uuid4().hex[:8]}@example.com"
        placed = _check_out(client, sku, email=email, token="tok_visa")
        assert placed.status_code == 201, placed.text
    mail = made_shop.clone / "var" / "mail"

    def delivered() -> Path | None:
        return next((p for p in mail.rglob("*.eml") if email in p.read_text(errors="ignore")), None) \
            if mail.is_dir() else None

    try:
        _eventually(delivered, seconds=5, what=f"an e-mail to {email} in {mail}")
    except AssertionError as exc:
        raise AssertionError(f"{exc} (is the background worker running under `make run`?)\n"
                             f"{made_shop.log_tail()}") from None


def test_an_unpaid_reservation_that_ran_out_gives_its_stock_back(made_shop: MadeShop) -> None:
    with httpx.Client(base_url=made_shop.url, timeout=30) as client:
        slug, sku, before = _buyable(client, skip=1)
        pending = _check_out(client, sku, email=f"newcomer-3ds-{uuid.uuid4().hex[:8]}@example.com",
                             token="tok_threeDSecure")
        assert pending.status_code == 202, pending.text
        number = pending.json()["number"]
        assert _eventually(lambda: _available(client, slug, sku) == before - 1, seconds=5,
                           what="the order's unit held")
        database = made_shop.clone / "var" / "shop.db"
        with contextlib.closing(sqlite3.connect(database, timeout=10)) as db, db:
            # stored as SQLAlchemy keeps a UTC datetime on SQLite: naive, "YYYY-MM-DD HH:MM:SS.ffffff"
            past = (datetime.now(UTC) - timedelta(minutes=1)).replace(tzinfo=None)
            moved = db.execute("UPDATE orders SET reservation_expires_at = ? WHERE number = ?",
                               (past.isoformat(sep=" ", timespec="microseconds"), number)).rowcount
        assert moved == 1, f"no order {number} in {database}"

        def status() -> Any:
            with contextlib.closing(sqlite3.connect(database, timeout=10)) as db:
                return db.execute("SELECT status FROM orders WHERE number = ?", (number,)).fetchone()[0]

        try:
            _eventually(lambda: _available(client, slug, sku) == before, seconds=5, what="the unit given back")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; order {number} is {status()!r}\n{made_shop.log_tail()}") from None
        assert status() == "canceled"


def test_sigterm_to_make_runs_group_stops_every_process_within_40_seconds(made_shop: MadeShop) -> None:
    started = made_shop.processes()
    commands = [" ".join(p.cmdline()) for p in started]
    assert any("gunicorn" in c for c in commands), commands
    assert any(c.endswith("shop worker") for c in commands), f"no background worker under `make run`: {commands}"
    stop_by = time.monotonic() + 40
    os.killpg(made_shop.make.pid, signal.SIGTERM)
    made_shop.make.wait(timeout=40)
    try:
        _eventually(lambda: not made_shop.processes(), seconds=max(0.5, stop_by - time.monotonic()),
                    what="every process of `make run` gone")
    except AssertionError as exc:
        left = [" ".join(p.cmdline()) for p in made_shop.processes()]
        raise AssertionError(f"{exc}; left: {left}\n{made_shop.log_tail()}") from None
    assert "stopping on SIGTERM" in made_shop.log_tail(80)
